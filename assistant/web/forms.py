"""The pages' forms, as the browser sends them: one Struct per form, decoded by Litestar before the handler runs.

Fields are text with a default, as HTML forms are: an empty input arrives as ``""`` and a missing one takes
the default, so the handler (and the service under it) decides what a bad value means and says so on the page.
Fields the browser adds that the handler does not read (``_csrf_token``, checked before) are ignored.
"""

from __future__ import annotations

from litestar.datastructures import UploadFile
from msgspec import Struct


class SignInForm(Struct):
    email: str = ""
    password: str = ""


class TokenRevokeForm(Struct):
    prefix: str = ""


class ApproveForm(Struct):
    draft_id: str = ""
    """The draft the reviewer saw; absent on an escalated turn's compose box."""
    text: str | None = None
    """The reply as edited; None when the form had no text box."""
    override_reason: str = ""
    """An admin's reason to send a reply the policy blocks."""
    view: str = ""
    """The queue view to go back to (``escalated`` or the default)."""
    back: str = ""
    """The queue's view and filters the reviewer decided from (a query string), to go back to."""


class DecisionForm(Struct):
    """Reject or escalate: a reason is required."""

    reason: str = ""
    view: str = ""
    back: str = ""


class RegenerateForm(Struct):
    guidance: str = ""
    back: str = ""


class FollowUpForm(Struct):
    """A reviewer's text that lost the race on a turn, sent as a follow-up to the same person."""

    text: str = ""
    back: str = ""


class NoteForm(Struct):
    text: str = ""


class DoNotReplyForm(Struct):
    do_not_reply: str = ""
    """A checkbox: ``on`` when ticked, absent when not."""


class MergeForm(Struct):
    other_id: str = ""


class EraseForm(Struct):
    confirm: str = ""
    """The person's number typed again: an erasure cannot be undone, so it is never one click."""


class InviteForm(Struct):
    email: str = ""
    role: str = ""


class RoleForm(Struct):
    role: str = ""


class DisableForm(Struct):
    disabled: str = "1"


class KeyForm(Struct):
    name: str = ""
    scope: str | list[str] = []
    """One ``scope`` field per ticked box: a single value arrives as text, several as a list."""

    @property
    def scopes(self) -> list[str]:
        return [self.scope] if isinstance(self.scope, str) else list(self.scope)


class PresenceForm(Struct):
    editing: str = ""
    """``1`` while the reviewer types in the reply box."""


class SnippetForm(Struct):
    name: str = ""
    text: str = ""


class SnippetEditForm(Struct):
    name: str = ""
    text: str = ""
    do: str = ""
    """``delete`` to delete the saved reply; anything else saves it."""


class PolicyUploadForm(Struct):
    """Sent as multipart: a pasted ``source``, or a ``file`` that wins when it has content."""

    source: str = ""
    file: UploadFile | None = None


class PolicyTryForm(Struct):
    text: str = ""
    platform: str = "x"
    author: str = ""
