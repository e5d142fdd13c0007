"""The reviewers' pages: sign-in, the approval queue, a person, audit, fairness and the admin basics.

Handlers are thin: take the decoded form (``data``, a Struct of ``assistant.web.forms``) and the signed-in
``viewer`` (a dependency), call one service function, render or redirect. Every POST passed the CSRF check in
``before_request`` before it gets here; the admin pages are behind the ``admin_only`` guard (see ``plugin``).
Bad input renders the page again with a message (4xx), never a 500.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from assistant.auth import reviewer_tokens, signin
from assistant.auth import service as auth
from assistant.auth.principal import API_SCOPES, ROLES
from assistant.drafting.service import request_regenerate
from assistant.errors import Conflict, NotFound, PolicyBlocked, RateLimited, StaleDraft, ValidationFailed
from assistant.http import client_address
from assistant.people import privacy
from assistant.review.answered import answered_shares
from assistant.web.memory_pages import person_memory, queue_memory
from assistant.people import service as people
from assistant.policy import PLATFORM_LIMITS, PolicyFileError, check_text, count_length
from assistant.policy.checks import effective_limit
from assistant.policy.service import brand_policy, set_brand_policy
from assistant.review import filters as queue_filters
from assistant.review import presence
from assistant.review.filters import QueueFilter
from assistant.review import service as review
from assistant.services import Services
from assistant.snippets import service as snippets
from assistant.web import charts, queries
from assistant.web.forms import (ApproveForm, DecisionForm, DisableForm, DoNotReplyForm, EraseForm, FollowUpForm,
                                 InviteForm, KeyForm, MergeForm,
                                 NoteForm, PolicyTryForm, PolicyUploadForm, PresenceForm, RegenerateForm, RoleForm,
                                 SignInForm, SnippetEditForm, SnippetForm, TokenRevokeForm)
from assistant.web.render import ago, page, when
from assistant.web.security import (CSRF_COOKIE, LOGIN_FAILED, SESSION_COOKIE, Viewer, admin_only, is_https,
                                    read_session, secret_of, sign_session)

NOTICES = {
    "approved": "Approved. The reply is in the outbox.",
    "follow_up": "Your text is in the queue as a follow-up; it goes out when a reviewer approves it.",
    "rejected": "Rejected. The reason stays with the turn.",
    "escalated": "Escalated.",
    "regenerating": "A new draft is being written; the turn comes back to the queue when it is ready.",
    "note": "Note added.",
    "person": "Saved.",
    "merged": "The two people are now one.",
    "promise": "Promise settled.",
    "summary": "Summary saved.",
    "erased": "The person was erased: nothing they said or that identifies them is kept.",
    "signed_out": "You are signed out.",
}
QUEUE_LIMIT_DEFAULT, QUEUE_LIMIT_MAX = 25, 50


def _int(value: Any, default: int | None = None, *, low: int = 1, high: int = 2**62) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return number if low <= number <= high else default


Form = Body(media_type=RequestEncodingType.URL_ENCODED)
"""A page form: URL-encoded fields decoded into a Struct; a field that does not decode answers 400 naming it."""


def _notice(request: Request[Any, Any, Any]) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


# Sign-in ---------------------------------------------------------------------------------------------------

@get("/login", operation_id="webLoginForm", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    return page(request, "login.html", error=None, email="", notice=_notice(request))


@post("/login", operation_id="webLogin", include_in_schema=False)
async def login(request: Request[Any, Any, Any], services: Services,
                data: Annotated[SignInForm, Form]) -> Response[Any]:
    settings = services.settings
    email = data.email[:320]
    try:
        signed_in = await signin.sign_in(services.db, settings, email, data.password, client_address(request))
    except RateLimited as exc:
        response = page(request, "login.html", status=429, error=exc.detail, email=email, notice=None)
        response.headers.update(exc.headers)
        return response
    if signed_in is None:
        return page(request, "login.html", status=401, error=LOGIN_FAILED, email=email, notice=None)
    secure = is_https(request)
    cookie = Cookie(key=SESSION_COOKIE, value=sign_session(secret_of(request), signed_in.user_id,
                                                           settings.session_max_age_seconds,
                                                           signed_in.session_version),
                    max_age=settings.session_max_age_seconds, httponly=True, samesite="lax", secure=secure, path="/")
    # A CSRF pair planted before sign-in (login CSRF, a shared machine) is not carried into the session.
    csrf = Cookie(key=CSRF_COOKIE, value=secrets.token_urlsafe(32), httponly=True, samesite="lax", secure=secure,
                  path="/")
    return Redirect("/", status_code=303, cookies=[cookie, csrf])


@post("/logout", operation_id="webLogout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any], services: Services) -> Response[Any]:
    session_of = read_session(secret_of(request), request.cookies.get(SESSION_COOKIE))
    if session_of is not None:
        await signin.end_sessions(services.db, session_of[0])  # a copied cookie stops working too
    return Redirect("/login?notice=signed_out", status_code=303,
                    cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, expires=0, httponly=True,
                                    samesite="lax", secure=is_https(request), path="/")])


# The queue -------------------------------------------------------------------------------------------------

VIEWS = {"pending_review": "Waiting for review", "escalated": "Escalated"}
"""The queue's views (tabs): drafts to review, and turns a rule or a reviewer escalated for a human to write."""
WAITING_CAP = 10_000
MATCH_CAP = 1_000
"""A search counts its matches up to here ("1,000+"): each one counted is a turn read and checked."""
HISTORY_SHOWN = 20
PLATFORMS = sorted(PLATFORM_LIMITS)
"""The platforms the filter offers by name (any other platform token is taken when typed in the address)."""


@dataclass(frozen=True)
class QueueQuery:
    """What the queue page was asked for, as typed values; ``problems`` say, for people, what was left out."""

    view: str
    filters: QueueFilter
    limit: int
    cursor: str | None
    focus: int | None
    problems: list[str]
    typed: dict[str, str]
    """The filters as typed, shown again in the search form (a value left out can be corrected there)."""

    def params(self, *, cursor: bool = True) -> dict[str, str]:
        """The query again (the view, the filters, the page size, and the page unless ``cursor=False``)."""
        out = {"status": self.view} if self.view != "pending_review" else {}
        out |= self.filters.params()
        if cursor and self.cursor:
            out["cursor"] = self.cursor
        if self.limit != QUEUE_LIMIT_DEFAULT:
            out["limit"] = str(self.limit)
        return out


def queue_query(params: Mapping[str, str]) -> QueueQuery:
    """The queue page's query parameters, parsed; a bad value is left out with a sentence saying so."""
    filters, problems = queue_filters.parse(params)
    view = (params.get("status") or "").strip() or "pending_review"
    if view not in VIEWS:
        problems.append("There is no such queue view; showing the people waiting for review.")
        view = "pending_review"
    raw_limit = (params.get("limit") or "").strip()
    limit = _int(raw_limit, None, high=QUEUE_LIMIT_MAX) if raw_limit else QUEUE_LIMIT_DEFAULT
    if limit is None:
        problems.append(f"A page shows 1 to {QUEUE_LIMIT_MAX} people; showing {QUEUE_LIMIT_DEFAULT}.")
        limit = QUEUE_LIMIT_DEFAULT
    typed = {name: (params.get(name) or "")[:300] for name in queue_filters.FIELD_NAMES}
    return QueueQuery(view, filters, limit, params.get("cursor") or None, _int(params.get("focus")), problems, typed)


def _back(back: str, view: str = "", **extra: str) -> str:
    """Where a decision sends the reviewer: the queue view and filters they decided from (``back``, the form's
    copy of them, parsed again so nothing else rides along), plus ``extra``."""
    query = queue_query(dict(parse_qsl(back[:2000])))
    params = query.params(cursor=False)
    if view == "escalated" and "status" not in params:
        params = {"status": "escalated"} | params
    return "/?" + urlencode(params | extra)


def _tab_links(query: QueueQuery) -> dict[str, str]:
    """Each view's link, keeping the filters: the search carries across the tabs, whose counts it narrows."""
    links = {}
    for view in VIEWS:
        params = replace(query, view=view, cursor=None).params(cursor=False)
        links[view] = "/?" + urlencode(params) if params else "/"
    return links


def _count_label(n: int, cap: int | None = None) -> str:
    cap = WAITING_CAP if cap is None else cap
    return f"{cap:,}+" if n > cap else f"{n:,}"


async def _queue(request: Request[Any, Any, Any], services: Services, viewer: Viewer, *, status: int = 200,
                 notice: str | None = None, pinned: Any = None, problem: dict[str, Any] | None = None,
                 back: str | None = None) -> Response[str]:
    """The queue page. ``pinned`` is a turn shown first whatever its place (the stale or blocked one);
    ``problem`` carries what to show on it (edited text, findings); ``back`` is the query of the page a
    refused form came from (its view and filters), in place of this request's.

    One turn is in focus (``?focus=``, the pinned one, else the first): only its card carries the person's
    history; the other cards link to it (``?focus=<id>``, no JavaScript needed) and the script fetches it
    when focus moves there. So the page costs the same few statements and a bounded render whatever its size."""
    query = queue_query(dict(parse_qsl(back[:2000])) if back is not None else request.query_params)
    if pinned is not None and pinned.status in VIEWS:
        query = replace(query, view=pinned.status)
    db = services.db
    options: dict[str, Any] = {"status": query.view, "limit": query.limit,
                               "focus_id": pinned.id if pinned is not None else query.focus, "pinned": pinned,
                               "count_statuses": tuple(VIEWS), "cap": WAITING_CAP, "history_limit": HISTORY_SHOWN,
                               "filters": query.filters, "match_cap": MATCH_CAP}
    try:
        screen = await review.queue_screen(db, viewer.brand_id, cursor=query.cursor, **options)
    except ValidationFailed:
        query = replace(query, cursor=None)
        screen = await review.queue_screen(db, viewer.brand_id, cursor=None, **options)
        notice = notice or "That page link had expired; here is the start of the queue."
    policy, mine = screen.policy, review.initials(viewer.display_name, viewer.email)
    memory = await queue_memory(services.db, viewer.brand_id, [t.person.id for t in screen.items], policy.max_wait)
    default_max_length = services.settings.default_max_length
    saved = await db.run_read(snippets.list_snippets, viewer.brand_id) if screen.focus is not None else []
    focused = screen.focus
    return page(request, "queue.html", status=status, viewer=viewer, turns=screen.items,
                next_cursor=screen.page.next_cursor, limit=query.limit, view=query.view, views=VIEWS,
                counts=screen.counts, matches=screen.matches,
                labels={k: _count_label(n, MATCH_CAP if query.filters.active else WAITING_CAP)
                        for k, n in screen.matches.items()},
                total_label=_count_label(screen.counts["pending_review"]),
                filters=query.filters, filter_problems=query.problems, platforms=PLATFORMS,
                rules=[e.name for e in policy.escalations],
                keep=urlencode(query.params(cursor=False)),
                typed=query.typed, default_limit=QUEUE_LIMIT_DEFAULT, tab_links=_tab_links(query),
                histories={focused.person.id: screen.history} if focused else {}, notice=notice or _notice(request),
                focus=focused.id if focused else None, here=urlencode(query.params()), problem=problem or {},
                sign_off=review.rendered_sign_off(policy, mine), signed=lambda text: review.signed(policy, text, mine),
                limit_for=lambda platform: effective_limit(policy, platform, default_max_length),
                promises_due=memory["due"], undo_seconds=services.settings.undo_seconds,
                snippets=_filled(saved, screen.focus), memory=memory)


def _filled(saved: list[Any], turn: Any) -> dict[str, str]:
    """The brand's saved replies, placeholders filled in for the person in focus (name → text)."""
    if turn is None:
        return {}
    handle = next((h.handle for h in turn.person.handles if h.platform == turn.platform), None)
    return {s.name: snippets.fill(s.text, display_name=turn.person.display_name, handle=handle) for s in saved}


@get(["/", "/queue"], operation_id="webQueue", include_in_schema=False)
async def queue_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    return await _queue(request, services, viewer)


@get("/queue/count", operation_id="webQueueCount", include_in_schema=False)
async def queue_count(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> dict[str, Any]:
    """The counts of each view, narrowed by the same filters as the page (``problems``: what was left out)."""
    query = queue_query(request.query_params)
    cap = MATCH_CAP if query.filters.active else WAITING_CAP
    counts = await review.queue_counts(services.db, viewer.brand_id, tuple(VIEWS), cap=cap, filters=query.filters)
    return {"waiting": min(counts["pending_review"], cap), "label": _count_label(counts["pending_review"], cap),
            "escalated": min(counts["escalated"], cap), "escalated_label": _count_label(counts["escalated"], cap),
            "problems": query.problems}


@get("/turns/{turn_id:int}/history", operation_id="webTurnHistory", include_in_schema=False)
async def turn_history(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                       turn_id: int) -> Response[str]:
    """The history column of one card, as an HTML fragment: the script loads it when focus moves to a card."""
    db = services.db
    turn = await review.get_turn(db, viewer.brand_id, turn_id)
    histories = await db.run_read(people.recent_histories, [turn.person.id], HISTORY_SHOWN)
    return page(request, "_history.html", viewer=viewer, t=turn, p=turn.person, past=histories[turn.person.id],
                focused=True, here="")


@post("/turns/{turn_id:int}/presence", operation_id="webPresence", include_in_schema=False, status_code=200)
async def turn_presence(services: Services, viewer: Viewer, turn_id: int,
                        data: Annotated[PresenceForm, Form]) -> dict[str, Any]:
    """The page's heartbeat on the person in focus; answers who else has them open or is editing."""
    others = await services.db.run_write(presence.beat, viewer.brand_id, viewer.user_id, turn_id,
                                         data.editing == "1")
    return {"sentence": presence.sentence(others),
            "others": [{"name": o.name, "editing": o.editing, "seen_at": o.seen_at.isoformat()} for o in others]}


@post("/turns/{turn_id:int}/approve", operation_id="webApprove", include_in_schema=False)
async def approve(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn_id: int,
                  data: Annotated[ApproveForm, Form]) -> Response[Any]:
    """Approve the current draft (the form carries its ``draft_id``), or, on an escalated turn's compose box
    (no ``draft_id``), send the reply the reviewer wrote. The page signs the text: a reply the reviewer left
    unsigned gets their sign-off appended (any dash counts as the policy's)."""
    draft_id = _int(data.draft_id)
    text = data.text.replace("\r\n", "\n") if data.text is not None else None
    override = data.override_reason.strip() or None
    db = services.db
    done = _back(data.back, data.view, notice="approved")
    if draft_id is None and data.draft_id and not (text or "").strip():
        raise ValidationFailed.field("draft_id", "is missing; reload the page")
    if text and text.strip():
        policy = await db.run_read(brand_policy, viewer.brand_id)
        text = review.signed(policy, text, review.initials(viewer.display_name, viewer.email))
    try:
        await review.approve(db, viewer.principal, turn_id, draft_id=draft_id, text=text or None,
                             override_reason=override if viewer.is_admin else None,
                             default_max_length=services.settings.default_max_length,
                             model_reads_promises=services.settings.llm_configured)
    except StaleDraft:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, services, viewer, back=data.back, status=409, pinned=turn,
                            problem={"turn_id": turn_id, "stale": True},
                            notice="The person wrote again; here is the new draft." if turn.current_draft
                            else "The person wrote again; a new draft is being written for everything they said.")
    except review.DoNotReply as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, services, viewer, back=data.back, status=409, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text})
    except PolicyBlocked as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, services, viewer, back=data.back, status=422, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text, "findings": exc.extra.get("findings", []),
                                     "blocked": True})
    except ValidationFailed as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, services, viewer, back=data.back, status=422, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text})
    except Conflict:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _lost(request, services, viewer, turn, text, data.back)
    return Redirect(done, status_code=303)


async def _lost(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn: Any, text: str | None,
                back: str, *, notice: str | None = None, status: int = 409) -> Response[str]:
    """The turn someone else decided, pinned, with who decided what and when and the reviewer's text kept
    (``notice``: why, when it is not the race itself)."""
    decided = next((d for d in reversed(turn.decisions) if d.action != "regenerate"), None)
    return await _queue(request, services, viewer, back=back, status=status, pinned=turn,
                        notice=notice or _lost_notice(decided),
                        problem={"turn_id": turn.id, "text": text, "lost": decided})


LOST_VERBS = {"approve": "approved a reply", "reject": "rejected this turn", "escalate": "escalated this turn"}


def _lost_notice(decided: Any) -> str:
    """Two reviewers, one card: say who decided what and when; the loser's text stays on the page."""
    if decided is None:
        return "Someone else changed this turn while you were on it. Your text is kept below."
    return (f"{decided.user} {LOST_VERBS.get(decided.action, 'decided this turn')} {ago(decided.at)} "
            f"({when(decided.at)}), before yours arrived. Your text is kept below: press f to send it as a "
            f"follow-up (a reviewer approves it like any reply), or d to discard it and go on.")


@post("/turns/{turn_id:int}/follow-up", operation_id="webFollowUp", include_in_schema=False)
async def follow_up(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn_id: int,
                    data: Annotated[FollowUpForm, Form]) -> Response[Any]:
    """The text that lost the race on ``turn_id`` goes to the queue as a follow-up to the same person, where a
    reviewer approves it like any reply. Refused, the page keeps the text and says why."""
    text = data.text.replace("\r\n", "\n")
    db = services.db
    try:
        opened = await review.follow_up(db, viewer.principal, turn_id, text,
                                        default_max_length=services.settings.default_max_length)
    except (Conflict, ValidationFailed) as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        message = _said(exc) if isinstance(exc, ValidationFailed) else exc.detail
        return await _lost(request, services, viewer, turn, text, data.back, notice=message, status=exc.status)
    return Redirect(_back(data.back, focus=str(opened), notice="follow_up"), status_code=303)


async def _decide(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn_id: int,
                  data: DecisionForm, action: str) -> Response[Any]:
    reason = data.reason.strip()
    db = services.db
    if not reason:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, services, viewer, back=data.back, status=422, pinned=turn,
                            notice=f"Say why you {action} this turn.",
                            problem={"turn_id": turn_id, "reason_missing": action})
    if action == "reject":
        await review.reject(db, viewer.principal, turn_id, reason)
        return Redirect(_back(data.back, data.view, notice="rejected"), status_code=303)
    await review.escalate(db, viewer.principal, turn_id, reason)
    return Redirect(_back(data.back, notice="escalated"), status_code=303)


@post("/turns/{turn_id:int}/reject", operation_id="webReject", include_in_schema=False)
async def reject(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn_id: int,
                 data: Annotated[DecisionForm, Form]) -> Response[Any]:
    return await _decide(request, services, viewer, turn_id, data, "reject")


@post("/turns/{turn_id:int}/escalate", operation_id="webEscalate", include_in_schema=False)
async def escalate(request: Request[Any, Any, Any], services: Services, viewer: Viewer, turn_id: int,
                   data: Annotated[DecisionForm, Form]) -> Response[Any]:
    return await _decide(request, services, viewer, turn_id, data, "escalate")


@post("/turns/{turn_id:int}/regenerate", operation_id="webRegenerate", include_in_schema=False)
async def regenerate(services: Services, viewer: Viewer, turn_id: int,
                     data: Annotated[RegenerateForm, Form]) -> Response[Any]:
    await request_regenerate(services.db, viewer.principal, turn_id, data.guidance or None)
    return Redirect(_back(data.back, notice="regenerating"), status_code=303)


# A person --------------------------------------------------------------------------------------------------

@get("/people/{person_id:int}", operation_id="webPerson", include_in_schema=False)
async def person_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                      person_id: int) -> Response[str]:
    db = services.db
    person = await people.get_person(db, viewer.brand_id, person_id)
    try:
        timeline = await people.history(db, viewer.brand_id, person_id, limit=50,
                                        cursor=request.query_params.get("cursor") or None)
    except ValidationFailed:
        timeline = await people.history(db, viewer.brand_id, person_id, limit=50, cursor=None)
    return page(request, "person.html", viewer=viewer, person=person, timeline=timeline, notice=_notice(request),
                memory=await person_memory(db, viewer.brand_id, person_id))


@post("/people/{person_id:int}/notes", operation_id="webAddNote", include_in_schema=False)
async def add_note(services: Services, viewer: Viewer, person_id: int,
                   data: Annotated[NoteForm, Form]) -> Response[Any]:
    text = data.text.strip()
    if not text or len(text) > 5000:
        raise ValidationFailed.field("text", "write a note of 1 to 5,000 characters")
    await people.add_note(services.db, viewer.principal, person_id, text)
    return Redirect(f"/people/{person_id}?notice=note", status_code=303)


@post("/people/{person_id:int}/do-not-reply", operation_id="webDoNotReply", include_in_schema=False)
async def do_not_reply(services: Services, viewer: Viewer, person_id: int,
                       data: Annotated[DoNotReplyForm, Form]) -> Response[Any]:
    await people.update_person(services.db, viewer.principal, person_id, display_name=None,
                               do_not_reply=data.do_not_reply == "on")
    return Redirect(f"/people/{person_id}?notice=person", status_code=303)


@post("/people/{person_id:int}/merge", operation_id="webMerge", include_in_schema=False, guards=[admin_only])
async def merge(services: Services, viewer: Viewer, person_id: int,
                data: Annotated[MergeForm, Form]) -> Response[Any]:
    other = _int(data.other_id)
    if other is None:
        raise ValidationFailed.field("other_id", "give the other person's number")
    await people.merge_people(services.db, viewer.principal, person_id, other)
    return Redirect(f"/people/{person_id}?notice=merged", status_code=303)


@get("/people/{person_id:int}/export", operation_id="webExportPerson", include_in_schema=False,
     guards=[admin_only])
async def export_person(services: Services, viewer: Viewer, person_id: int) -> Response[bytes]:
    """A privacy request answered: everything held about the person, as a JSON file to hand over."""
    exported = await privacy.export_person(services.db, viewer.principal, person_id)
    return Response(msgspec.json.encode(exported), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="person-{person_id}.json"'})


@post("/people/{person_id:int}/erase", operation_id="webErasePerson", include_in_schema=False,
      guards=[admin_only])
async def erase_person(services: Services, viewer: Viewer, person_id: int,
                       data: Annotated[EraseForm, Form]) -> Response[Any]:
    if data.confirm.strip() != str(person_id):
        raise ValidationFailed.field("confirm", f"type {person_id}, this person's number, to erase them")
    await privacy.erase_person(services.db, viewer.principal, person_id)
    return Redirect("/?notice=erased", status_code=303)


# Audit and fairness ----------------------------------------------------------------------------------------

@get("/audit", operation_id="webAudit", include_in_schema=False)
async def audit_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    actor = (request.query_params.get("actor") or "").strip()[:320] or None
    action = (request.query_params.get("action") or "").strip()[:64] or None
    try:
        events = await review.audit_page(services.db, viewer.brand_id, actor=actor, action=action, limit=50,
                                         cursor=request.query_params.get("cursor") or None)
    except ValidationFailed:
        events = await review.audit_page(services.db, viewer.brand_id, actor=actor, action=action, limit=50,
                                         cursor=None)
    return page(request, "audit.html", viewer=viewer, events=events, actor=actor or "", action=action or "")


FAIRNESS_FIRST_DAY, FAIRNESS_LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)
"""The period's ends stay a day inside the calendar, whose last day has no next midnight."""


def _date(value: str | None, default: dt.date) -> tuple[dt.date, str | None]:
    if not value:
        return default, None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not FAIRNESS_FIRST_DAY <= day <= FAIRNESS_LAST_DAY:
        return default, "Dates are written YYYY-MM-DD, from 1970 to 9998; showing the default period."
    return day, None


@get("/fairness", operation_id="webFairness", include_in_schema=False)
async def fairness_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    today = dt.datetime.now(dt.timezone.utc).date()
    since, e1 = _date(request.query_params.get("since"), today - dt.timedelta(days=30))
    until, e2 = _date(request.query_params.get("until"), today)
    if until < since:
        since, until = until, since
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    report = await review.fairness(services.db, viewer.brand_id, since=start, until=end)
    answered = await answered_shares(services.db, viewer.brand_id, since=start, until=end)
    return page(request, "fairness.html", viewer=viewer, report=report, since=since.isoformat(),
                until=until.isoformat(), error=e1 or e2, verdict=charts.verdict(report.by_audience, report.overall),
                chart=charts.wait_chart, duration=charts.duration, answered=answered)


# Admin (mounted under /admin behind the admin_only guard) ------------------------------------------------

async def _users_page(request: Request[Any, Any, Any], services: Services, viewer: Viewer, *, status: int = 200,
                      error: str | None = None, issued: dict[str, str] | None = None) -> Response[str]:
    users = await queries.list_users(services.db, viewer.brand_id)
    tokens = await services.db.run_read(reviewer_tokens.list_tokens, viewer.brand_id)
    return page(request, "admin_users.html", status=status, viewer=viewer, users=users, roles=ROLES, error=error,
                issued=issued, tokens=tokens)


@post("/tokens/revoke", operation_id="webRevokeReviewerToken", include_in_schema=False)
async def revoke_reviewer_token(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                                data: Annotated[TokenRevokeForm, Form]) -> Response[Any]:
    try:
        await services.db.run_write(reviewer_tokens.revoke_token, data.prefix[:40], viewer.brand_id, viewer.principal)
    except NotFound as exc:
        return await _users_page(request, services, viewer, status=404, error=exc.detail)
    services.authenticator.forget()
    return Redirect("/admin/users", status_code=303)


@get("/users", operation_id="webUsers", include_in_schema=False)
async def users_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    return await _users_page(request, services, viewer)


@post("/users", operation_id="webInvite", include_in_schema=False)
async def invite(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                 data: Annotated[InviteForm, Form]) -> Response[str]:
    password = secrets.token_urlsafe(12)
    try:
        user = await services.db.run_write(auth.create_user, viewer.brand_id, data.email, data.role, password, "",
                                           viewer.principal)
    except (ValidationFailed, Conflict) as exc:
        return await _users_page(request, services, viewer, status=exc.status, error=exc.detail)
    return await _users_page(request, services, viewer, issued={"email": user.email, "password": password})


@post("/users/{user_id:int}/role", operation_id="webUserRole", include_in_schema=False)
async def user_role(request: Request[Any, Any, Any], services: Services, viewer: Viewer, user_id: int,
                    data: Annotated[RoleForm, Form]) -> Response[Any]:
    try:
        await auth.set_user_role(services.db, viewer.principal, user_id, data.role)
    except ValidationFailed as exc:
        return await _users_page(request, services, viewer, status=422, error=exc.detail)
    return Redirect("/admin/users", status_code=303)


@post("/users/{user_id:int}/disable", operation_id="webUserDisable", include_in_schema=False)
async def user_disable(request: Request[Any, Any, Any], services: Services, viewer: Viewer, user_id: int,
                       data: Annotated[DisableForm, Form]) -> Response[Any]:
    try:
        await auth.set_user_disabled(services.db, viewer.principal, user_id, data.disabled == "1")
    except ValidationFailed as exc:
        return await _users_page(request, services, viewer, status=422, error=exc.detail)
    services.authenticator.forget()
    return Redirect("/admin/users", status_code=303)


async def _keys_page(request: Request[Any, Any, Any], services: Services, viewer: Viewer, *, status: int = 200,
                     error: str | None = None, issued: str | None = None) -> Response[str]:
    keys = await queries.list_keys(services.db, viewer.brand_id)
    return page(request, "admin_keys.html", status=status, viewer=viewer, keys=keys, scopes=API_SCOPES, error=error,
                issued=issued)


@get("/keys", operation_id="webKeys", include_in_schema=False)
async def keys_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    return await _keys_page(request, services, viewer)


@post("/keys", operation_id="webCreateKey", include_in_schema=False)
async def create_key(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                     data: Annotated[KeyForm, Form]) -> Response[str]:
    try:
        issued = await services.db.run_write(auth.create_api_key, viewer.brand_id, data.scopes,
                                             data.name.strip()[:200], viewer.principal)
    except ValidationFailed as exc:
        return await _keys_page(request, services, viewer, status=422, error=exc.detail)
    return await _keys_page(request, services, viewer, issued=issued.token)


@post("/keys/{key_id:int}/revoke", operation_id="webRevokeKey", include_in_schema=False)
async def revoke_key(services: Services, viewer: Viewer, key_id: int) -> Response[Any]:
    await services.db.run_write(auth.revoke_api_key, viewer.brand_id, key_id, viewer.principal)
    services.authenticator.forget()
    return Redirect("/admin/keys", status_code=303)


async def _snippets_page(request: Request[Any, Any, Any], services: Services, viewer: Viewer, *, status: int = 200,
                         error: str | None = None, draft: dict[str, str] | None = None) -> Response[str]:
    """Saved replies with what the policy says about each (their sign-off is the page's to add, so that rule
    is left out; the length depends on the platform and is checked on the reply)."""
    db = services.db
    saved = await db.run_read(snippets.list_snippets, viewer.brand_id)
    policy = await db.run_read(brand_policy, viewer.brand_id)
    findings = {s.id: [f for f in check_text(policy, s.text, platform="x") if f.rule not in ("sign_off", "max_length")]
                for s in saved}
    return page(request, "admin_snippets.html", status=status, viewer=viewer, snippets=saved, findings=findings,
                error=error, draft=draft or {"name": "", "text": ""})


@get("/snippets", operation_id="webSnippets", include_in_schema=False)
async def snippets_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    return await _snippets_page(request, services, viewer)


@post("/snippets", operation_id="webCreateSnippet", include_in_schema=False)
async def create_snippet(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                         data: Annotated[SnippetForm, Form]) -> Response[Any]:
    try:
        await services.db.run_write(snippets.create_snippet, viewer.brand_id, data.name, data.text)
    except (ValidationFailed, Conflict) as exc:
        return await _snippets_page(request, services, viewer, status=exc.status, error=_said(exc),
                                    draft={"name": data.name[:80], "text": data.text[:5000]})
    return Redirect("/admin/snippets", status_code=303)


@post("/snippets/{snippet_id:int}", operation_id="webEditSnippet", include_in_schema=False)
async def edit_snippet(request: Request[Any, Any, Any], services: Services, viewer: Viewer, snippet_id: int,
                       data: Annotated[SnippetEditForm, Form]) -> Response[Any]:
    try:
        if data.do == "delete":
            await services.db.run_write(snippets.delete_snippet, viewer.brand_id, snippet_id)
        else:
            await services.db.run_write(snippets.update_snippet, viewer.brand_id, snippet_id, data.name, data.text)
    except (ValidationFailed, Conflict) as exc:
        return await _snippets_page(request, services, viewer, status=exc.status, error=_said(exc))
    return Redirect("/admin/snippets", status_code=303)


def _said(exc: ValidationFailed | Conflict) -> str:
    """A service error as a sentence for the page: the field's message when there is one."""
    return "; ".join(f"{e['field'].replace('_', ' ').capitalize()} {e['message']}" for e in exc.errors) or exc.detail


async def _policy_page(request: Request[Any, Any, Any], services: Services, viewer: Viewer, *, status: int = 200,
                       **context: Any) -> Response[str]:
    brand, policy = await queries.policy_screen(services.db, viewer.brand_id)
    context.setdefault("errors", [])
    context.setdefault("uploaded", None)
    context.setdefault("trial", None)
    context.setdefault("source", brand.policy_toml or "")
    return page(request, "admin_policy.html", status=status, viewer=viewer, brand=brand, policy_hash=policy.hash,
                stored=brand.policy_toml, **context)


@get("/policy", operation_id="webPolicy", include_in_schema=False)
async def policy_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    return await _policy_page(request, services, viewer)


@post("/policy", operation_id="webPolicyUpload", include_in_schema=False)
async def policy_upload(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                        data: Annotated[PolicyUploadForm, Body(media_type=RequestEncodingType.MULTI_PART)]
                        ) -> Response[str]:
    source = data.source
    if data.file is not None:
        raw = await data.file.read()
        if raw:
            try:
                source = raw.decode("utf-8")
            except UnicodeDecodeError:
                return await _policy_page(request, services, viewer, status=422, errors=["The file is not UTF-8 text."])
    source = source.replace("\r\n", "\n")
    if not source.strip():
        return await _policy_page(request, services, viewer, status=422, errors=["Paste or upload a policy file."])
    try:
        new_hash = await services.db.run_write(set_brand_policy, viewer.brand_id, source, "uploaded policy",
                                               viewer.principal)
    except PolicyFileError as exc:
        messages = [str(m) for m in getattr(exc, "messages", None) or [str(exc)]]
        return await _policy_page(request, services, viewer, status=422, errors=messages, source=source)
    return await _policy_page(request, services, viewer, uploaded=new_hash)


@post("/policy/try", operation_id="webPolicyTry", include_in_schema=False)
async def policy_try(request: Request[Any, Any, Any], services: Services, viewer: Viewer,
                     data: Annotated[PolicyTryForm, Form]) -> Response[str]:
    text = data.text[:10_000]
    platform = data.platform.strip().lower()[:32] or "x"
    policy = await services.db.run_read(brand_policy, viewer.brand_id)
    findings = [f.to_dict() for f in check_text(policy, text, platform=platform, author_handle=data.author or None)]
    return await _policy_page(request, services, viewer, trial={"text": text, "platform": platform,
                                                                "findings": findings,
                                                                "length": count_length(platform, text)})


ROUTES = [login_form, login, logout, queue_view, queue_count, turn_history, turn_presence, approve, follow_up, reject,
          escalate, regenerate, person_view, add_note, do_not_reply, merge, export_person, erase_person,
          audit_view, fairness_view]
ADMIN_ROUTES = [revoke_reviewer_token, users_view, invite, user_role, user_disable, keys_view, create_key, revoke_key,
                snippets_view,
                create_snippet, edit_snippet, policy_view, policy_upload, policy_try]
"""Mounted under ``/admin`` behind the ``admin_only`` guard."""

__all__ = ["ADMIN_ROUTES", "ROUTES"]
