"""Relationship memory in the demo: a regular whose long history gets summarised, replies that promise (one
of them falling due, so its follow-up turn opens by itself), reviewers' edits for the edits page, and a
person left behind. Everything goes through the product's services; the one shortcut, moving a promise's due
time into the past so it falls due now, is said so where it is done."""

from __future__ import annotations

import datetime as dt
import json

from typing import Any

from sqlalchemy import Connection, select, update

from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.memory import Promise
from assistant.db.people import Person
from assistant.db.tenancy import Brand, User
from assistant.db.turns import Turn
from assistant.policy.service import brand_policy
from assistant.promises.service import run_sweep
from assistant.review import service as review

REGULAR = ("Margot Lindqvist", "margot_regular")
TOPICS = ["my oat flat white came out cold", "is the Ethiopia Guji back in stock?", "can I pause my subscription?",
          "the grinder at Hill St is making a noise", "do you deliver beans to Uppsala?",
          "my loyalty card lost its stamps", "is the cold brew sweetened?", "can I bring my dog inside?"]
PROMISING_EDIT = ("Hi {first}, sorry about that: I'll check with the roastery and get back to you here tomorrow.")
LEFT_BEHIND_REASON = "demo: rejected so the left-behind page has someone on it"


def regular_history(now: dt.datetime) -> tuple[list[str], dict]:
    """Three years of exchanges with one regular (NDJSON lines for the import), and her mention now."""
    name, handle = REGULAR
    lines = []
    for n in range(42):
        at = now - dt.timedelta(days=1100 - n * 26)
        mention_id = str(40_000_000 + 2 * n)
        lines.append(json.dumps({"direction": "inbound", "platform": "x", "external_id": mention_id,
                                 "text": f"@northwind hi again! {TOPICS[n % len(TOPICS)]} (visit {n + 1})",
                                 "created_at": at.isoformat(), "author": {"handle": handle, "display_name": name},
                                 "conversation_id": mention_id}))
        lines.append(json.dumps({"direction": "outbound", "platform": "x", "external_id": str(40_000_001 + 2 * n),
                                 "text": f"@{handle} Thanks Margot! Sorted: we've noted it for visit {n + 1}. –NW",
                                 "created_at": (at + dt.timedelta(minutes=30)).isoformat(),
                                 "in_reply_to": mention_id, "conversation_id": mention_id}))
    mention = {"platform": "x", "external_id": "40999999", "created_at": (now - dt.timedelta(minutes=7)).isoformat(),
               "text": "@northwind morning! Any chance the Guji is back? Same as always, 250 g whole bean.",
               "author": {"handle": handle, "display_name": name, "followers": 310}}
    return lines, mention


async def show_memory(db: Database, drain) -> None:  # type: ignore[no-untyped-def]
    """After the first drafts: three replies approved with an edit that promises, the first promise made due
    (its follow-up turn opens and is drafted by ``drain``), one turn rejected so someone is left behind."""
    brand_id, admin, policy, waiting = await db.run_read(_demo_state)
    actor = Principal(kind="user", id=admin.id, brand_id=brand_id, label=admin.email, role="admin")
    mine = review.initials(admin.display_name, admin.email)
    for turn_id, draft_id, name in waiting[:3]:
        text = review.signed(policy, PROMISING_EDIT.format(first=(name or "there").split()[0]), mine)
        await review.approve(db, actor, turn_id, draft_id=draft_id, text=text)
    if len(waiting) > 3:
        await review.reject(db, actor, waiting[3].id, LEFT_BEHIND_REASON)
    await db.run_write(_first_promise_due_now, brand_id)
    await run_sweep(db)
    await drain()


def _demo_state(conn: Connection) -> tuple[int, Any, Any, list[Any]]:
    brand_id = conn.scalar(select(Brand.id).where(Brand.slug == "northwind"))
    admin = conn.execute(select(User.id, User.email, User.display_name).where(
        User.brand_id == brand_id, User.role == "admin").order_by(User.id)).first()
    waiting = conn.execute(
        select(Turn.id, Turn.current_draft_id, Person.display_name).join(Person, Person.id == Turn.person_id)
        .where(Turn.brand_id == brand_id, Turn.status == "pending_review", Person.display_name != REGULAR[0])
        .order_by(Turn.waiting_since.desc(), Turn.id).limit(4)).all()
    return brand_id, admin, brand_policy(conn, brand_id), waiting


def _first_promise_due_now(conn: Connection, brand_id: int) -> None:
    """The demo's one shortcut: the first promise falls due now instead of tomorrow."""
    first = conn.scalar(select(Promise.id).where(Promise.brand_id == brand_id).order_by(Promise.id))
    if first is not None:
        conn.execute(update(Promise).where(Promise.id == first).values(
            due_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))


__all__ = ["REGULAR", "regular_history", "show_memory"]
