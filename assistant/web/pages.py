"""The reviewers' pages: sign-in, the approval queue, a person, audit, fairness and the admin basics.

Handlers are thin: read the form, call one service function, render or redirect. Every POST passed the CSRF
check in ``before_request`` before it gets here. Bad input renders the page again with a message (4xx),
never a 500.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from assistant.auth import service as auth
from assistant.auth.principal import API_SCOPES, ROLES
from assistant.db import Database
from assistant.db.tenancy import Brand
from assistant.drafting.service import request_regenerate
from assistant.errors import Conflict, NotFound, PolicyBlocked, StaleDraft, ValidationFailed
from assistant.people import service as people
from assistant.policy import PolicyFileError, check_text, count_length
from assistant.policy.checks import effective_limit
from assistant.policy.service import brand_policy, set_brand_policy
from assistant.review import service as review
from assistant.web import queries
from assistant.web.render import page
from assistant.web.security import (LOGIN_FAILED, SESSION_COOKIE, Viewer, is_https, load_viewer, require_admin,
                                    secret_of, sign_in, sign_session)

NOTICES = {
    "approved": "Approved. The reply is in the outbox.",
    "rejected": "Rejected. The reason stays with the turn.",
    "escalated": "Escalated.",
    "regenerating": "A new draft is being written; the turn comes back to the queue when it is ready.",
    "note": "Note added.",
    "person": "Saved.",
    "merged": "The two people are now one.",
    "signed_out": "You are signed out.",
}
QUEUE_LIMIT_DEFAULT, QUEUE_LIMIT_MAX = 25, 50


def _int(value: Any, default: int | None = None, *, low: int = 1, high: int = 2**62) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return number if low <= number <= high else default


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _db(request: Request[Any, Any, Any]) -> Database:
    return request.app.state.db


def _notice(request: Request[Any, Any, Any]) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


# Sign-in ---------------------------------------------------------------------------------------------------

@get("/login", operation_id="webLoginForm", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    return page(request, "login.html", error=None, email="", notice=_notice(request))


@post("/login", operation_id="webLogin", include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
    settings = request.app.state.settings
    user = await sign_in(_db(request), form.get("email", ""), form.get("password", ""),
                         max_failures=settings.login_max_failures, lockout_seconds=settings.login_lockout_seconds)
    if user is None:
        return page(request, "login.html", status=401, error=LOGIN_FAILED, email=form.get("email", "")[:320],
                    notice=None)
    cookie = Cookie(key=SESSION_COOKIE, value=sign_session(secret_of(request), user.id,
                                                           settings.session_max_age_seconds),
                    max_age=settings.session_max_age_seconds, httponly=True, samesite="lax",
                    secure=is_https(request), path="/")
    return Redirect("/", status_code=303, cookies=[cookie])


@post("/logout", operation_id="webLogout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    return Redirect("/login?notice=signed_out", status_code=303,
                    cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, expires=0, httponly=True,
                                    samesite="lax", secure=is_https(request), path="/")])


# The queue -------------------------------------------------------------------------------------------------

VIEWS = {"pending_review": "Waiting for review", "escalated": "Escalated"}
"""The queue's views (tabs): drafts to review, and turns a rule or a reviewer escalated for a human to write."""
WAITING_CAP = 10_000
HISTORY_SHOWN = 20


def _view(request: Request[Any, Any, Any]) -> str:
    status = request.query_params.get("status") or "pending_review"
    return status if status in VIEWS else "pending_review"


def _count_label(n: int) -> str:
    return f"{WAITING_CAP:,}+" if n > WAITING_CAP else f"{n:,}"


async def _queue(request: Request[Any, Any, Any], viewer: Viewer, *, status: int = 200, notice: str | None = None,
                 pinned: Any = None, problem: dict[str, Any] | None = None) -> Response[str]:
    """The queue page. ``pinned`` is a turn shown first whatever its place (the stale or blocked one);
    ``problem`` carries what to show on it (edited text, findings).

    One turn is in focus (``?focus=``, the pinned one, else the first): only its card carries the person's
    history; the other cards link to it (``?focus=<id>``, no JavaScript needed) and the script fetches it
    when focus moves there. So the page costs the same few statements and a bounded render whatever its size."""
    limit = _int(request.query_params.get("limit"), QUEUE_LIMIT_DEFAULT, high=QUEUE_LIMIT_MAX) or QUEUE_LIMIT_DEFAULT
    cursor = request.query_params.get("cursor") or None
    view = pinned.status if pinned is not None and pinned.status in VIEWS else _view(request)
    db = _db(request)
    wanted = pinned.id if pinned is not None else _int(request.query_params.get("focus"))
    options: dict[str, Any] = {"status": view, "limit": limit, "focus_id": wanted, "pinned": pinned,
                               "count_statuses": tuple(VIEWS), "cap": WAITING_CAP, "history_limit": HISTORY_SHOWN}
    try:
        screen = await review.queue_screen(db, viewer.brand_id, cursor=cursor, **options)
    except ValidationFailed:
        cursor = None
        screen = await review.queue_screen(db, viewer.brand_id, cursor=None, **options)
        notice = notice or "That page link had expired; here is the start of the queue."
    policy, mine = screen.policy, review.initials(viewer.display_name, viewer.email)
    default_max_length = request.app.state.settings.default_max_length
    focused = screen.focus
    here = {k: v for k, v in (("status", view if view != "pending_review" else None), ("cursor", cursor),
                              ("limit", str(limit) if limit != QUEUE_LIMIT_DEFAULT else None)) if v}
    return page(request, "queue.html", status=status, viewer=viewer, turns=screen.items,
                next_cursor=screen.page.next_cursor, limit=limit, view=view, views=VIEWS, counts=screen.counts,
                labels={k: _count_label(n) for k, n in screen.counts.items()},
                histories={focused.person.id: screen.history} if focused else {}, notice=notice or _notice(request),
                focus=focused.id if focused else None, here=urlencode(here), problem=problem or {},
                sign_off=review.rendered_sign_off(policy, mine), signed=lambda text: review.signed(policy, text, mine),
                limit_for=lambda platform: effective_limit(policy, platform, default_max_length),
                promises_due=frozenset(), undo_seconds=request.app.state.settings.undo_seconds)  # memory (issue 12) fills this with the people whose promise is due


@get(["/", "/queue"], operation_id="webQueue", include_in_schema=False)
async def queue_view(request: Request[Any, Any, Any]) -> Response[str]:
    return await _queue(request, await load_viewer(request))


@get("/queue/count", operation_id="webQueueCount", include_in_schema=False)
async def queue_count(request: Request[Any, Any, Any]) -> dict[str, Any]:
    viewer = await load_viewer(request)
    counts = await review.queue_counts(_db(request), viewer.brand_id, tuple(VIEWS), cap=WAITING_CAP)
    return {"waiting": min(counts["pending_review"], WAITING_CAP), "label": _count_label(counts["pending_review"]),
            "escalated": min(counts["escalated"], WAITING_CAP), "escalated_label": _count_label(counts["escalated"])}


@get("/turns/{turn_id:int}/history", operation_id="webTurnHistory", include_in_schema=False)
async def turn_history(request: Request[Any, Any, Any], turn_id: int) -> Response[str]:
    """The history column of one card, as an HTML fragment: the script loads it when focus moves to a card."""
    viewer = await load_viewer(request)
    db = _db(request)
    turn = await review.get_turn(db, viewer.brand_id, turn_id)
    async with db.read() as session:
        histories = await people.recent_histories(session, [turn.person.id], limit=HISTORY_SHOWN)
    return page(request, "_history.html", viewer=viewer, t=turn, p=turn.person, past=histories[turn.person.id],
                focused=True, here="")


@post("/turns/{turn_id:int}/approve", operation_id="webApprove", include_in_schema=False)
async def approve(request: Request[Any, Any, Any], turn_id: int) -> Response[Any]:
    """Approve the current draft (the form carries its ``draft_id``), or, on an escalated turn's compose box
    (no ``draft_id``), send the reply the reviewer wrote."""
    viewer = await load_viewer(request)
    form = await _form(request)
    draft_id = _int(form.get("draft_id"))
    text = form.get("text")
    text = text.replace("\r\n", "\n") if text is not None else None
    override = (form.get("override_reason") or "").strip() or None
    db = _db(request)
    done = "/?status=escalated&notice=approved" if form.get("view") == "escalated" else "/?notice=approved"
    if draft_id is None and form.get("draft_id") and not (text or "").strip():
        raise ValidationFailed.field("draft_id", "is missing; reload the page")
    try:
        await review.approve(db, viewer.principal, turn_id, draft_id=draft_id, text=text or None,
                             override_reason=override if viewer.is_admin else None,
                             default_max_length=request.app.state.settings.default_max_length)
    except StaleDraft:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, viewer, status=409, pinned=turn, problem={"turn_id": turn_id, "stale": True},
                            notice="The person wrote again; here is the new draft." if turn.current_draft
                            else "The person wrote again; a new draft is being written for everything they said.")
    except review.DoNotReply as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, viewer, status=409, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text})
    except PolicyBlocked as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, viewer, status=422, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text, "findings": exc.extra.get("findings", []),
                                     "blocked": True})
    except ValidationFailed as exc:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, viewer, status=422, pinned=turn, notice=exc.detail,
                            problem={"turn_id": turn_id, "text": text})
    return Redirect(done, status_code=303)


async def _with_reason(request: Request[Any, Any, Any], turn_id: int, action: str) -> Response[Any]:
    viewer = await load_viewer(request)
    form = await _form(request)
    reason = (form.get("reason") or "").strip()
    db = _db(request)
    if not reason:
        turn = await review.get_turn(db, viewer.brand_id, turn_id)
        return await _queue(request, viewer, status=422, pinned=turn, notice=f"Say why you {action} this turn.",
                            problem={"turn_id": turn_id, "reason_missing": action})
    if action == "reject":
        await review.reject(db, viewer.principal, turn_id, reason)
        back = "/?status=escalated&notice=rejected" if form.get("view") == "escalated" else "/?notice=rejected"
        return Redirect(back, status_code=303)
    await review.escalate(db, viewer.principal, turn_id, reason)
    return Redirect("/?notice=escalated", status_code=303)


@post("/turns/{turn_id:int}/reject", operation_id="webReject", include_in_schema=False)
async def reject(request: Request[Any, Any, Any], turn_id: int) -> Response[Any]:
    return await _with_reason(request, turn_id, "reject")


@post("/turns/{turn_id:int}/escalate", operation_id="webEscalate", include_in_schema=False)
async def escalate(request: Request[Any, Any, Any], turn_id: int) -> Response[Any]:
    return await _with_reason(request, turn_id, "escalate")


@post("/turns/{turn_id:int}/regenerate", operation_id="webRegenerate", include_in_schema=False)
async def regenerate(request: Request[Any, Any, Any], turn_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    form = await _form(request)
    await request_regenerate(_db(request), viewer.principal, turn_id, form.get("guidance") or None)
    return Redirect("/?notice=regenerating", status_code=303)


# A person --------------------------------------------------------------------------------------------------

@get("/people/{person_id:int}", operation_id="webPerson", include_in_schema=False)
async def person_view(request: Request[Any, Any, Any], person_id: int) -> Response[str]:
    viewer = await load_viewer(request)
    db = _db(request)
    person = await people.get_person(db, viewer.brand_id, person_id)
    try:
        timeline = await people.history(db, viewer.brand_id, person_id, limit=50,
                                        cursor=request.query_params.get("cursor") or None)
    except ValidationFailed:
        timeline = await people.history(db, viewer.brand_id, person_id, limit=50, cursor=None)
    return page(request, "person.html", viewer=viewer, person=person, timeline=timeline, notice=_notice(request))


@post("/people/{person_id:int}/notes", operation_id="webAddNote", include_in_schema=False)
async def add_note(request: Request[Any, Any, Any], person_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    text = ((await _form(request)).get("text") or "").strip()
    if not text or len(text) > 5000:
        raise ValidationFailed.field("text", "write a note of 1 to 5,000 characters")
    await people.add_note(_db(request), viewer.principal, person_id, text)
    return Redirect(f"/people/{person_id}?notice=note", status_code=303)


@post("/people/{person_id:int}/do-not-reply", operation_id="webDoNotReply", include_in_schema=False)
async def do_not_reply(request: Request[Any, Any, Any], person_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    value = (await _form(request)).get("do_not_reply") == "on"
    await people.update_person(_db(request), viewer.principal, person_id, display_name=None, do_not_reply=value)
    return Redirect(f"/people/{person_id}?notice=person", status_code=303)


@post("/people/{person_id:int}/merge", operation_id="webMerge", include_in_schema=False)
async def merge(request: Request[Any, Any, Any], person_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    other = _int((await _form(request)).get("other_id"))
    if other is None:
        raise ValidationFailed.field("other_id", "give the other person's number")
    await people.merge_people(_db(request), viewer.principal, person_id, other)
    return Redirect(f"/people/{person_id}?notice=merged", status_code=303)


# Audit and fairness ----------------------------------------------------------------------------------------

@get("/audit", operation_id="webAudit", include_in_schema=False)
async def audit_view(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    actor = (request.query_params.get("actor") or "").strip()[:320] or None
    action = (request.query_params.get("action") or "").strip()[:64] or None
    try:
        events = await review.audit_page(_db(request), viewer.brand_id, actor=actor, action=action, limit=50,
                                         cursor=request.query_params.get("cursor") or None)
    except ValidationFailed:
        events = await review.audit_page(_db(request), viewer.brand_id, actor=actor, action=action, limit=50,
                                         cursor=None)
    return page(request, "audit.html", viewer=viewer, events=events, actor=actor or "", action=action or "")


def _date(value: str | None, default: dt.date) -> tuple[dt.date, str | None]:
    if not value:
        return default, None
    try:
        return dt.date.fromisoformat(value), None
    except ValueError:
        return default, "Dates are written YYYY-MM-DD; showing the default period."


@get("/fairness", operation_id="webFairness", include_in_schema=False)
async def fairness_view(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    today = dt.datetime.now(dt.timezone.utc).date()
    since, e1 = _date(request.query_params.get("since"), today - dt.timedelta(days=30))
    until, e2 = _date(request.query_params.get("until"), today)
    if until < since:
        since, until = until, since
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    report = await review.fairness(_db(request), viewer.brand_id, since=start, until=end)
    return page(request, "fairness.html", viewer=viewer, report=report, since=since.isoformat(),
                until=until.isoformat(), error=e1 or e2)


# Admin -----------------------------------------------------------------------------------------------------

async def _users_page(request: Request[Any, Any, Any], viewer: Viewer, *, status: int = 200, error: str | None = None,
                      issued: dict[str, str] | None = None) -> Response[str]:
    users = await queries.list_users(_db(request), viewer.brand_id)
    return page(request, "admin_users.html", status=status, viewer=viewer, users=users, roles=ROLES, error=error,
                issued=issued)


@get("/admin/users", operation_id="webUsers", include_in_schema=False)
async def users_view(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    return await _users_page(request, viewer)


@post("/admin/users", operation_id="webInvite", include_in_schema=False)
async def invite(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    form = await _form(request)
    password = secrets.token_urlsafe(12)
    try:
        async with _db(request).write() as session:
            user = await auth.create_user(session, viewer.brand_id, form.get("email", ""), form.get("role", ""),
                                          password, actor=viewer.principal)
    except (ValidationFailed, Conflict) as exc:
        return await _users_page(request, viewer, status=exc.status, error=exc.detail)
    return await _users_page(request, viewer, issued={"email": user.email, "password": password})


@post("/admin/users/{user_id:int}/role", operation_id="webUserRole", include_in_schema=False)
async def user_role(request: Request[Any, Any, Any], user_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    try:
        await auth.set_user_role(_db(request), viewer.principal, user_id, (await _form(request)).get("role", ""))
    except ValidationFailed as exc:
        return await _users_page(request, viewer, status=422, error=exc.detail)
    return Redirect("/admin/users", status_code=303)


@post("/admin/users/{user_id:int}/disable", operation_id="webUserDisable", include_in_schema=False)
async def user_disable(request: Request[Any, Any, Any], user_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    disabled = (await _form(request)).get("disabled", "1") == "1"
    try:
        await auth.set_user_disabled(_db(request), viewer.principal, user_id, disabled)
    except ValidationFailed as exc:
        return await _users_page(request, viewer, status=422, error=exc.detail)
    request.app.state.authenticator.forget()
    return Redirect("/admin/users", status_code=303)


async def _keys_page(request: Request[Any, Any, Any], viewer: Viewer, *, status: int = 200, error: str | None = None,
                     issued: str | None = None) -> Response[str]:
    keys = await queries.list_keys(_db(request), viewer.brand_id)
    return page(request, "admin_keys.html", status=status, viewer=viewer, keys=keys, scopes=API_SCOPES, error=error,
                issued=issued)


@get("/admin/keys", operation_id="webKeys", include_in_schema=False)
async def keys_view(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    return await _keys_page(request, viewer)


@post("/admin/keys", operation_id="webCreateKey", include_in_schema=False)
async def create_key(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    form = await request.form()
    scopes = [s for s in form.getall("scope", []) if isinstance(s, str)] if hasattr(form, "getall") else []
    name = str(form.get("name") or "").strip()[:200]
    try:
        async with _db(request).write() as session:
            issued = await auth.create_api_key(session, viewer.brand_id, scopes, name=name, actor=viewer.principal)
    except ValidationFailed as exc:
        return await _keys_page(request, viewer, status=422, error=exc.detail)
    return await _keys_page(request, viewer, issued=issued.token)


@post("/admin/keys/{key_id:int}/revoke", operation_id="webRevokeKey", include_in_schema=False)
async def revoke_key(request: Request[Any, Any, Any], key_id: int) -> Response[Any]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    async with _db(request).write() as session:
        await auth.revoke_api_key(session, viewer.brand_id, key_id, actor=viewer.principal)
    request.app.state.authenticator.forget()
    return Redirect("/admin/keys", status_code=303)


async def _policy_page(request: Request[Any, Any, Any], viewer: Viewer, *, status: int = 200,
                       **context: Any) -> Response[str]:
    async with _db(request).read() as session:
        brand = await session.get(Brand, viewer.brand_id)
        policy = await brand_policy(session, viewer.brand_id)
    if brand is None:
        raise NotFound("no brand")
    context.setdefault("errors", [])
    context.setdefault("uploaded", None)
    context.setdefault("trial", None)
    context.setdefault("source", brand.policy_toml or "")
    return page(request, "admin_policy.html", status=status, viewer=viewer, brand=brand, policy_hash=policy.hash,
                stored=brand.policy_toml, **context)


@get("/admin/policy", operation_id="webPolicy", include_in_schema=False)
async def policy_view(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    return await _policy_page(request, viewer)


@post("/admin/policy", operation_id="webPolicyUpload", include_in_schema=False)
async def policy_upload(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    form = await request.form()
    source: Any = form.get("source") or ""
    upload = form.get("file")
    if upload is not None and not isinstance(upload, str):
        raw = await upload.read()
        if raw:
            try:
                source = raw.decode("utf-8")
            except UnicodeDecodeError:
                return await _policy_page(request, viewer, status=422, errors=["The file is not UTF-8 text."])
    source = str(source).replace("\r\n", "\n")
    if not source.strip():
        return await _policy_page(request, viewer, status=422, errors=["Paste or upload a policy file."])
    try:
        async with _db(request).write() as session:
            new_hash = await set_brand_policy(session, viewer.brand_id, source, "uploaded policy",
                                              actor=viewer.principal)
    except PolicyFileError as exc:
        messages = [str(m) for m in getattr(exc, "messages", None) or [str(exc)]]
        return await _policy_page(request, viewer, status=422, errors=messages, source=source)
    return await _policy_page(request, viewer, uploaded=new_hash)


@post("/admin/policy/try", operation_id="webPolicyTry", include_in_schema=False)
async def policy_try(request: Request[Any, Any, Any]) -> Response[str]:
    viewer = await load_viewer(request)
    require_admin(viewer)
    form = await _form(request)
    text = (form.get("text") or "")[:10_000]
    platform = (form.get("platform") or "x").strip().lower()[:32] or "x"
    async with _db(request).read() as session:
        policy = await brand_policy(session, viewer.brand_id)
    findings = [f.to_dict() for f in check_text(policy, text, platform=platform,
                                                author_handle=(form.get("author") or None))]
    return await _policy_page(request, viewer, trial={"text": text, "platform": platform, "findings": findings,
                                                      "length": count_length(platform, text)})


ROUTES = [login_form, login, logout, queue_view, queue_count, turn_history, approve, reject, escalate, regenerate, person_view,
          add_note, do_not_reply, merge, audit_view, fairness_view, users_view, invite, user_role, user_disable,
          keys_view, create_key, revoke_key, policy_view, policy_upload, policy_try]

__all__ = ["ROUTES"]
