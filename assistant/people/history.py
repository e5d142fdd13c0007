"""A person's history as other packages add to it: ingest adds mentions, the outbox adds the replies it
posted (with the people's counters) and asks which messages are known (a post id is unique per platform; a
reply joins the conversation of the message it answers). Plain functions of a ``Connection``, in the
caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from assistant.db.bulk import executemany, insert_returning_ids
from assistant.db.dialect import writes_are_serial
from assistant.db.lookup import platform_keys, rows_by_platform_keys
from assistant.db.people import Interaction
from assistant.people.identity import Activity, apply_activity, tally

_KNOWN = (select(Interaction.platform, Interaction.external_id, Interaction.conversation_key)
          .where(Interaction.brand_id == bindparam("brand_id"),
                 platform_keys(Interaction.platform, Interaction.external_id)))


def conversations(conn: Connection, brand_id: int,
                  keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """The brand's messages among ``(platform, external_id)`` keys, each with its conversation key (absent
    keys are unknown messages)."""
    return {(platform, external_id): key for platform, external_id, key
            in rows_by_platform_keys(conn, _KNOWN, keys, brand_id=brand_id)}


def add_mentions(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Inbound messages (interaction rows, ``direction`` "inbound") join their people's history; answers their
    ids, in order. The caller counts them in the people's profiles (``identity.apply_activity``).

    Where writers run side by side (PostgreSQL), the rows go in ordered by ``(platform, external_id)``: two
    transactions storing the same message wait on its unique key, and taking those keys in one order
    everywhere means they wait for each other in turn instead of deadlocking (each holding the key the other
    needs next)."""
    if writes_are_serial(conn):
        return insert_returning_ids(conn, Interaction.__table__, rows)
    insert_returning_ids(conn, Interaction.__table__, sorted(rows, key=lambda r: (r["platform"], r["external_id"])))
    return [row["id"] for row in rows]


def add_replies(conn: Connection, brand_id: int, replies: Sequence[dict[str, Any]], now: dt.datetime) -> None:
    """Posted replies join their people's history (each in the conversation of the message it answers) and
    count in their profiles. Each reply: ``person_id, platform, external_id, text, occurred_at, in_reply_to,
    url, turn_id``."""
    if not replies:
        return
    conversation = conversations(conn, brand_id, {(r["platform"], r["in_reply_to"]) for r in replies})
    executemany(conn, Interaction.__table__, [
        {"brand_id": brand_id, "person_id": r["person_id"], "direction": "outbound", "platform": r["platform"],
         "external_id": r["external_id"], "text": r["text"], "occurred_at": r["occurred_at"], "received_at": now,
         "in_reply_to": r["in_reply_to"], "conversation_key": conversation.get((r["platform"], r["in_reply_to"])),
         "url": r["url"], "turn_id": r["turn_id"]} for r in replies])
    activity: dict[int, Activity] = {}
    for r in replies:
        tally(activity, r["person_id"], r["occurred_at"], inbound=False)
    apply_activity(conn, activity)
