"""The prompt templates: the top-level ``prompts/`` folder read through one Jinja environment.

``StrictUndefined`` makes a template that names a missing variable fail at once instead of sending the model a
prompt with a hole in it; nothing is autoescaped (prompts are plain text, never HTML). Text from the public goes
through the ``data`` and ``inline`` filters: between ``<<<KIND`` and ``>>>`` lines any run of three angle brackets
is neutralised, so it cannot close the block and speak as us. ``when`` gives the model a sense of time.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
"""``assistant/prompts``: the top-level ``prompts/`` folder in a checkout (a link), its copy in an installed wheel."""
_DELIMITER_RUN = re.compile(r"<{3,}|>{3,}")


def as_data(text: str) -> str:
    """Untrusted text for inside a ``<<<KIND ... >>>`` block: it can no longer close the block."""
    return _DELIMITER_RUN.sub(lambda run: run.group().replace("<", "‹").replace(">", "›"), text)


def as_inline_data(text: str) -> str:
    """Untrusted text for one line of the prompt (a name, a handle): no delimiters, no line breaks."""
    return as_data(" ".join(text.split()))


def when(at: datetime, now: datetime) -> str:
    """``11 Oct 2017 13:00 UTC (3 days ago)``: the date for the record, the age for the model's sense of time."""
    at_utc, now_utc = _utc(at), _utc(now)
    return f"{at_utc:%d %b %Y %H:%M} UTC ({_age(now_utc - at_utc)})"


def make_environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts and posts are plain text, never HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(data=as_data, inline=as_inline_data, when=when)
    return env


environment = make_environment(PROMPTS_DIR)


def template_hash(*names: str) -> str:
    """sha256 over the named templates' sources, so a draft says which wording produced it."""
    digest = hashlib.sha256()
    for name in names:
        source, _, _ = environment.loader.get_source(environment, name)  # type: ignore[union-attr]
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    return digest.hexdigest()


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, the way the database stores them."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600),
                       ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
