"""Every table, imported in one place so metadata (and Alembic) sees them all."""

from assistant.db.audit import AuditEvent
from assistant.db.base import Base
from assistant.db.jobs import Job
from assistant.db.memory import IdentityClue, MergeSuggestion, OverdueTurn, Promise, RelationshipSummary, ReplyEdit
from assistant.db.outbox import Reply
from assistant.db.people import Handle, Interaction, Note, Person
from assistant.db.presence import Presence
from assistant.db.snippets import Snippet
from assistant.db.tenancy import ApiKey, Brand, User, UserToken
from assistant.db.throttles import Throttle
from assistant.db.turns import Decision, Draft, Turn
from assistant.db.webhooks import Webhook, WebhookAttempt, WebhookDelivery

__all__ = ["ApiKey", "AuditEvent", "Base", "Brand", "Decision", "Draft", "Handle", "IdentityClue", "Interaction", "Job",
           "MergeSuggestion", "Note", "OverdueTurn", "Person", "Presence", "Promise", "RelationshipSummary", "Reply",
           "ReplyEdit", "Snippet", "Throttle", "Turn", "User", "UserToken", "Webhook", "WebhookAttempt",
           "WebhookDelivery"]
