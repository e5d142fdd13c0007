"""Saved replies of a brand: listed for reviewers, written by admins. Plain functions of a ``Connection``,
run once per transaction by the caller (``db.run_read`` / ``db.run_write``)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assistant.db.base import utcnow
from assistant.db.snippets import Snippet
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.validation import clean_text
from assistant.snippets.schemas import SnippetOut

PLACEHOLDERS = ("first_name", "name", "handle")
"""What a saved reply may ask to have filled in, from the person the reply is for."""
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_TABLE = Snippet.__table__
_COLUMNS = (_TABLE.c.id, _TABLE.c.name, _TABLE.c.text)


def list_snippets(conn: Connection, brand_id: int) -> list[SnippetOut]:
    rows = conn.execute(select(*_COLUMNS).where(_TABLE.c.brand_id == brand_id).order_by(_TABLE.c.name)).all()
    return [SnippetOut(id=r.id, name=r.name, text=r.text) for r in rows]


def create_snippet(conn: Connection, brand_id: int, name: str, text: str) -> SnippetOut:
    name, text = _name(name), _text(text)
    _name_is_free(conn, brand_id, name)
    now = utcnow()
    snippet_id = conn.execute(insert(_TABLE).values(brand_id=brand_id, name=name, text=text, created_at=now,
                                                    updated_at=now).returning(_TABLE.c.id)).scalar_one()
    return SnippetOut(id=snippet_id, name=name, text=text)


def update_snippet(conn: Connection, brand_id: int, snippet_id: int, name: str | None = None,
                   text: str | None = None) -> SnippetOut:
    current = _get(conn, brand_id, snippet_id)
    values: dict[str, Any] = {}
    if name is not None and _name(name) != current.name:
        values["name"] = _name(name)
        _name_is_free(conn, brand_id, values["name"])
    if text is not None:
        values["text"] = _text(text)
    if values:
        conn.execute(update(_TABLE).where(_TABLE.c.id == snippet_id).values(updated_at=utcnow(), **values))
    return SnippetOut(id=snippet_id, name=values.get("name", current.name), text=values.get("text", current.text))


def delete_snippet(conn: Connection, brand_id: int, snippet_id: int) -> SnippetOut:
    gone = _get(conn, brand_id, snippet_id)
    conn.execute(delete(_TABLE).where(_TABLE.c.id == snippet_id))
    return gone


def fill(text: str, *, display_name: str | None, handle: str | None) -> str:
    """The saved reply for one person: {first_name}, {name} and {handle} filled in (empty when unknown)."""
    name = (display_name or "").strip()
    values = {"first_name": name.split()[0] if name else "", "name": name,
              "handle": f"@{handle.lstrip('@')}" if handle else ""}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _get(conn: Connection, brand_id: int, snippet_id: int) -> Any:
    row = conn.execute(select(*_COLUMNS).where(_TABLE.c.id == snippet_id, _TABLE.c.brand_id == brand_id)).first()
    if row is None:
        raise NotFound(f"There is no saved reply {snippet_id} for this brand.")
    return row


def _name_is_free(conn: Connection, brand_id: int, name: str) -> None:
    taken = conn.execute(select(_TABLE.c.id).where(_TABLE.c.brand_id == brand_id, _TABLE.c.name == name)).first()
    if taken is not None:
        raise Conflict(f"A saved reply is already called “{name}”; choose another name or edit that one.",
                       extra={"snippet_id": taken.id})


def _name(value: str) -> str:
    name = " ".join(clean_text(value, "name").split())
    if len(name) > 80:
        raise ValidationFailed.field("name", "is longer than 80 characters; use a shorter name")
    return name


def _text(value: str) -> str:
    text = clean_text(value.replace("\r\n", "\n"), "text").strip()
    if len(text) > 5000:
        raise ValidationFailed.field("text", "is longer than 5,000 characters")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise ValidationFailed.field("text", f"uses {', '.join('{' + u + '}' for u in unknown)}, which nothing "
                                     f"fills in; the placeholders are {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return text


__all__ = ["PLACEHOLDERS", "create_snippet", "delete_snippet", "fill", "list_snippets", "update_snippet"]
