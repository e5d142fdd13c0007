"""The turn's life: open or join, drafts made current, a human's decisions, posted or failed. The only
package that changes a turn's status (see ``service``)."""

from assistant.turns.service import (TRANSITIONS, TURN_COLUMNS, Approval, Arrival, Placement, TurnRow, approve,
                                     draft_to_approve, erase, escalate, escalate_by_rule, fail, load,
                                     open_follow_up, place, post, regenerate, reject, replace_fallback, skip,
                                     store_draft)

__all__ = ["Approval", "Arrival", "Placement", "TRANSITIONS", "TURN_COLUMNS", "TurnRow", "approve",
           "draft_to_approve", "erase", "escalate", "escalate_by_rule", "fail", "load", "open_follow_up", "place",
           "post", "regenerate", "reject", "replace_fallback", "skip", "store_draft"]
