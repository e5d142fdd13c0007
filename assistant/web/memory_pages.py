"""Relationship memory's pages: the people left behind, a person's promises (settled from their page), and the
pieces other pages include (the queue's "promise due" badges and left-behind count, the fairness page's
share of people answered). Thin handlers: read the form, call one service function, render or redirect."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from assistant.db import Database
from assistant.db.base import utcnow
from assistant.errors import NotFound, ValidationFailed
from assistant.memory import edits, left_behind, merges, summaries
from assistant.promises import service as promises
from assistant.services import Services
from assistant.web.render import page
from assistant.web.security import Viewer

LEFT_BEHIND_PAGE = 50



async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def queue_memory(db: Database, brand_id: int, person_ids: list[int], max_wait: dt.timedelta) -> dict[str, Any]:
    """What the queue page shows of relationship memory, in one read: how many people are left behind (counted
    up to ``left_behind_cap + 1``), each listed person's open and due promises, and who has one due (the
    queue's "promise due" badge)."""
    def read(conn: Any) -> dict[str, Any]:
        owed = promises.unsettled_promises(conn, brand_id, person_ids)
        return {"left_behind": left_behind.left_behind_count(conn, brand_id, max_wait=max_wait, now=utcnow()),
                "left_behind_cap": left_behind.COUNT_CAP, "promises": owed,
                "due": frozenset(pid for pid, found in owed.items() if any(p.status == "due" for p in found))}
    return await db.run_read(read)


async def person_memory(db: Database, brand_id: int, person_id: int) -> dict[str, Any]:
    """What the person page shows of relationship memory, in one read: their promises and their summary (the
    page has already made sure the person is the brand's)."""
    def read(conn: Any) -> dict[str, Any]:
        return {"promises": promises.person_promises(conn, brand_id, person_id, checked=True),
                "summary": summaries.person_summary(conn, brand_id, person_id, checked=True)}
    return await db.run_read(read)


@get("/left-behind", operation_id="webLeftBehind", include_in_schema=False)
async def left_behind_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    why = request.query_params.get("why") or None
    why = why if why in left_behind.WHY else None
    try:
        found = await left_behind.list_left_behind(services.db, viewer.brand_id, limit=LEFT_BEHIND_PAGE,
                                                   cursor=request.query_params.get("cursor") or None, why=why)
    except ValidationFailed:
        found = await left_behind.list_left_behind(services.db, viewer.brand_id, limit=LEFT_BEHIND_PAGE,
                                                   cursor=None, why=why)
    return page(request, "left_behind.html", viewer=viewer, found=found, why=why or "", reasons=left_behind.WHY)


@post("/promises/{promise_id:int}/settle", operation_id="webSettlePromise", include_in_schema=False)
async def settle_promise(request: Request[Any, Any, Any], services: Services, viewer: Viewer, promise_id: int) -> Response[Any]:
    form = await _form(request)
    settled = await promises.settle_promise(services.db, viewer.principal, promise_id, form.get("outcome", ""),
                                            (form.get("reason") or "")[:2000] or None)
    return Redirect(f"/people/{settled.person_id}?notice=promise#promises", status_code=303)


@post("/people/{person_id:int}/summary", operation_id="webEditSummary", include_in_schema=False)
async def edit_summary(request: Request[Any, Any, Any], services: Services, viewer: Viewer, person_id: int) -> Response[Any]:
    text = (await _form(request)).get("text") or ""
    await summaries.put_summary(services.db, viewer.principal, person_id, text)
    return Redirect(f"/people/{person_id}?notice=summary#summary", status_code=303)


PERIODS = {"7": "last 7 days", "30": "last 30 days", "90": "last 90 days", "365": "last year"}


@get("/edits", operation_id="webEdits", include_in_schema=False)
async def edits_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    """The brand's most frequent edits over a period, each with one action that teaches the policy."""
    days = request.query_params.get("days") or "30"
    days = days if days in PERIODS else "30"
    until = utcnow()
    since = until - dt.timedelta(days=int(days))
    found, edited = await services.db.run_read(
        lambda conn: edits.frequent_edits(conn, viewer.brand_id, since=since, until=until))
    rates = await services.db.run_read(lambda conn: edits.edit_rates(conn, viewer.brand_id, since=since, until=until))
    return page(request, "edits.html", viewer=viewer, edits=found, edited=edited, rates=rates, days=days,
                periods=PERIODS, notice=EDIT_NOTICES.get(request.query_params.get("notice", "")))


EDIT_NOTICES = {"rule": "Added to the policy as a warning rule.", "example": "Added to the policy as an example."}


@post("/edits/rule", operation_id="webEditToRule", include_in_schema=False)
async def edit_to_rule(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[Any]:
    phrase = (await _form(request)).get("phrase") or ""
    await services.db.run_write(edits.learn_rule, viewer.principal, phrase)
    return Redirect("/admin/edits?notice=rule", status_code=303)


@post("/edits/example", operation_id="webEditToExample", include_in_schema=False)
async def edit_to_example(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[Any]:
    raw = (await _form(request)).get("decision_id") or ""
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed.field("decision_id", "is missing; reload the page")
    await services.db.run_write(edits.learn_example, viewer.principal, int(raw))
    return Redirect("/admin/edits?notice=example", status_code=303)


@get("/merges", operation_id="webMerges", include_in_schema=False)
async def merges_view(request: Request[Any, Any, Any], services: Services, viewer: Viewer) -> Response[str]:
    """Suggested merges with their evidence, and the merges done (undoable)."""
    found = await services.db.run_read(merges.suggestions, viewer.brand_id)
    names = await services.db.run_read(
        merges.names_of, viewer.brand_id, {pid for s in found for pid in (s.person_id, s.other_person_id)})
    return page(request, "merges.html", viewer=viewer, suggestions=found, names=names,
                notice={"merged": "Merged. You can undo it below.", "undone": "Undone: two people again.",
                        "dismissed": "Dismissed."}.get(request.query_params.get("notice", "")))


@post("/merges/{suggestion_id:int}/{action:str}", operation_id="webMergeDecision", include_in_schema=False)
async def merge_decision(request: Request[Any, Any, Any], services: Services, viewer: Viewer, suggestion_id: int, action: str) -> Response[Any]:
    rules = {"confirm": (merges.confirm, "merged"), "undo": (merges.undo, "undone"),
             "dismiss": (merges.dismiss, "dismissed")}
    if action not in rules:
        raise NotFound(f"no action {action}")
    rule, notice = rules[action]
    await services.db.run_write(rule, viewer.principal, suggestion_id)
    return Redirect(f"/merges?notice={notice}", status_code=303)


ROUTES = [left_behind_view, settle_promise, edit_summary, merges_view, merge_decision]
ADMIN_ROUTES = [edits_view, edit_to_rule, edit_to_example]
"""Under ``/admin``, behind the admin guard."""

__all__ = ["ADMIN_ROUTES", "ROUTES", "person_memory", "queue_memory"]
