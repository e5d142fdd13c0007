"""Times on the fast paths are exactly what the slow, obvious code gives: SQLite's time text, written and read
(``bulk._utc_text``, ``reads._utc_time``), is SQLAlchemy's own, and the naive UTC the columns hold turns aware and
back (``naive_utc``, ``aware_utc``) as ``astimezone`` and ``replace`` would, for any offset, whole seconds and
the ends of the calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import sqlite

from assistant.db.base import UTCDateTime, aware_utc, naive_utc
from assistant.db.bulk import _utc_text
from assistant.db.reads import _utc_time

DIALECT = sqlite.dialect()
KOLKATA = dt.timezone(dt.timedelta(hours=5, minutes=30))


def sqlalchemy_text(value: dt.datetime) -> str:
    return DIALECT.type_descriptor(UTCDateTime().impl).bind_processor(DIALECT)(
        UTCDateTime().process_bind_param(value, DIALECT))


TIMES = [
    dt.datetime(2026, 11, 20, 12, 30, 15, 123456, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 20, 12, 30, 16, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 21, 3, 0, 0, 5, tzinfo=KOLKATA),
    dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.timezone.utc),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
]


@pytest.mark.parametrize("value", TIMES)
def test_time_text_is_sqlalchemys_and_reads_back_as_the_same_instant_in_utc(value: dt.datetime) -> None:
    text = _utc_text(value)
    assert text == sqlalchemy_text(value)
    back = _utc_time(text)
    assert back == value and back.tzinfo is dt.timezone.utc


def test_a_naive_time_is_refused_and_none_stays_none() -> None:
    with pytest.raises(ValueError, match="naive"):
        _utc_text(dt.datetime(2026, 11, 20))
    assert _utc_text(None) is None and _utc_time(None) is None


@pytest.mark.parametrize("value", TIMES)
def test_naive_utc_and_back_is_what_astimezone_and_replace_give(value: dt.datetime) -> None:
    naive = naive_utc(value)
    assert naive == value.astimezone(dt.timezone.utc).replace(tzinfo=None) and naive.tzinfo is None
    aware = aware_utc(naive)
    assert aware == naive.replace(tzinfo=dt.timezone.utc) and aware.tzinfo is dt.timezone.utc
    assert UTCDateTime().process_result_value(UTCDateTime().process_bind_param(value, DIALECT), DIALECT) == value
