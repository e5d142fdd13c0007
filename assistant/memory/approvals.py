"""What relationship memory keeps when a reply is approved: the reviewer's word-level edit, the promises the
reply makes, and the follow-up promises it keeps. One call from the approval, in its transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from assistant.jobs import queue
from assistant.memory.edits import record_edit
from assistant.policy import Policy
from assistant.promises.detection import find_promises
from assistant.promises.service import keep_followed_up, record_promises

READ_PROMISES = "read_promises"
"""The job that asks the model what an approved reply promises (queued only when a model is configured)."""


@dataclass(frozen=True)
class ApprovedReply:
    brand_id: int
    person_id: int
    turn_id: int
    reply_id: int
    decision_id: int
    user_id: int
    draft_source: str
    draft_text: str
    """What was proposed ("" when the reviewer wrote the reply from scratch)."""
    final_text: str
    approved_at: dt.datetime


def remember_approval(conn: Connection, approved: ApprovedReply, policy: Policy, *, model_reads_promises: bool) -> None:
    """Record the edit (the sign-off the reviewer adds is not an edit), the promises the patterns find, keep
    the promises this reply follows up, and queue the model's reading of the reply when there is a model."""
    final = approved.final_text
    if policy.sign_off_pattern is not None and not policy.sign_off_pattern.search(approved.draft_text):
        final = policy.sign_off_pattern.sub("", final).rstrip()
    record_edit(conn, brand_id=approved.brand_id, person_id=approved.person_id, turn_id=approved.turn_id,
                decision_id=approved.decision_id, draft_source=approved.draft_source, draft=approved.draft_text,
                final=final, at=approved.approved_at)
    keep_followed_up(conn, brand_id=approved.brand_id, turn_id=approved.turn_id, reply_id=approved.reply_id,
                     user_id=approved.user_id)
    record_promises(conn, brand_id=approved.brand_id, person_id=approved.person_id, turn_id=approved.turn_id,
                    reply_id=approved.reply_id, found=find_promises(policy, approved.final_text),
                    at=approved.approved_at)
    if model_reads_promises:
        queue.enqueue(conn, READ_PROMISES, [approved.reply_id], brand_id=approved.brand_id)


__all__ = ["ApprovedReply", "READ_PROMISES", "remember_approval"]
