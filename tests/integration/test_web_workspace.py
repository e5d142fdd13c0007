"""The reviewer's workspace on the server side: two reviewers on one card (presence, the stale approve that
keeps the loser's text and says who decided what and when), saved replies on the queue and their admin page."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from assistant.app import create_app
from assistant.db.snippets import Snippet
from assistant.db.turns import Decision
from tests.browser.seed import waiting_turn
from tests.integration.test_web import sign_in, token
from tests.support.db import first_row, scalar, scalars


async def second_reviewer(settings: Any, email: str, password: str) -> AsyncTestClient:
    """Another reviewer on another app instance (its own engine and event loop): a second ``serve`` process."""
    other = AsyncTestClient(create_app(settings))
    await other.__aenter__()
    await sign_in(other, email, password)
    return other


async def test_reviewers_see_who_else_has_the_person_open(settings, client, factory, db) -> None:
    kit = await factory.brand()
    turn_id, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    admin = await second_reviewer(settings, kit.admin_email, kit.password)
    try:
        admin_html = (await admin.get("/")).text
        alone = await client.post(f"/turns/{turn_id}/presence", data={"editing": "0"},
                                  headers={"X-CSRF-Token": token(html)})
        assert alone.status_code == 200 and alone.json() == {"sentence": "", "others": []}
        await admin.post(f"/turns/{turn_id}/presence", data={"editing": "1"}, headers={"X-CSRF-Token": token(admin_html)})
        seen = (await client.post(f"/turns/{turn_id}/presence", data={"editing": "0"},
                                  headers={"X-CSRF-Token": token(html)})).json()
        assert seen["sentence"] == "admin is editing this reply."  # the display name
        back = (await admin.post(f"/turns/{turn_id}/presence", data={}, headers={"X-CSRF-Token": token(admin_html)})).json()
        assert back["sentence"] == "reviewer has it open."
    finally:
        await admin.__aexit__(None, None, None)
    # Another brand's turn, an unknown one, and a beat without the CSRF token.
    other = await factory.brand()
    theirs, _, _ = await waiting_turn(db, other.id, handle="@zed", text="@other hi", draft="Hi")
    for bad, status in ((theirs, 404), (999_999, 404)):
        answer = await client.post(f"/turns/{bad}/presence", data={}, headers={"X-CSRF-Token": token(html)})
        assert answer.status_code == status
    assert (await client.post(f"/turns/{turn_id}/presence", data={})).status_code == 403


async def test_a_stale_approve_keeps_the_losers_text_and_says_who_decided_what_and_when(settings, client, factory,
                                                                                     db) -> None:
    kit = await factory.brand()
    turn_id, _, draft_id = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    admin = await second_reviewer(settings, kit.admin_email, kit.password)
    try:
        admin_html = (await admin.get("/")).text
        first = await admin.post(f"/turns/{turn_id}/approve", follow_redirects=False, data={
            "_csrf_token": token(admin_html), "draft_id": str(draft_id), "text": "Sorry Ana! It ships today."})
        assert first.status_code == 303
    finally:
        await admin.__aexit__(None, None, None)

    late = await client.post(f"/turns/{turn_id}/approve", data={
        "_csrf_token": token(html), "draft_id": str(draft_id), "text": "Sorry Ana, my own words."})

    assert late.status_code == 409
    assert f"{kit.admin_email} approved a reply just now" in late.text
    assert "Sorry Ana! It ships today." in late.text and "Sorry Ana, my own words." in late.text
    assert "data-discard" in late.text and "Conflict" not in late.text and "turn " + str(turn_id) not in late.text
    decisions = await scalars(db, select(Decision.final_text))
    assert decisions == ["Sorry Ana! It ships today."]


async def test_saved_replies_are_filled_in_for_the_person_in_focus(client, factory, db) -> None:
    kit = await factory.brand()
    await waiting_turn(db, kit.id, handle="@ana", text="@acme refund?", draft="Hi",
                       author={"handle": "@ana", "display_name": "Ana <b>López</b>"})
    await sign_in(client, kit.admin_email, kit.password)
    page = (await client.get("/admin/snippets")).text
    assert "No saved replies yet" in page
    made = await client.post("/admin/snippets", follow_redirects=False, data={
        "_csrf_token": token(page), "name": "Refund", "text": "Hi {first_name}, your refund is on its way. {handle}"})
    assert made.status_code == 303

    queue = (await client.get("/")).text
    assert "Hi Ana, your refund is on its way. @ana" in queue
    assert "<b>López</b>" not in queue  # escaped like every untrusted text

    page = (await client.get("/admin/snippets")).text
    taken = await client.post("/admin/snippets", data={"_csrf_token": token(page), "name": "Refund", "text": "x"})
    assert taken.status_code == 409 and "already called “Refund”" in taken.text
    unknown = await client.post("/admin/snippets", data={"_csrf_token": token(page), "name": "New",
                                                         "text": "Hi {nick}"})
    assert unknown.status_code == 422 and "{nick}" in unknown.text and 'value="New"' in unknown.text
    snippet_id = await scalar(db, select(Snippet.id))
    gone = await client.post(f"/admin/snippets/{snippet_id}", follow_redirects=False,
                             data={"_csrf_token": token(page), "do": "delete"})
    assert gone.status_code == 303
    assert await scalar(db, select(func.count()).select_from(Snippet)) == 0


async def test_reviewers_cannot_manage_saved_replies(client, factory) -> None:
    kit = await factory.brand()
    await sign_in(client, kit.reviewer_email, kit.password)
    assert (await client.get("/admin/snippets")).status_code == 403
    html = (await client.get("/")).text
    assert (await client.post("/admin/snippets", data={"_csrf_token": token(html), "name": "A", "text": "a"})).status_code == 403


async def test_browsers_get_an_error_page_and_api_clients_problem_json(client) -> None:
    page = await client.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and "Back to the queue" in page.text and "{" not in page.text.split("<main")[1][:200]
    api = await client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
    under_api = await client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert under_api.status_code == 404 and under_api.headers["content-type"].startswith("application/problem+json")


async def test_the_demo_refuses_a_busy_port_before_touching_the_database(settings, db) -> None:
    import socket

    import click
    import pytest

    from assistant.db.tenancy import Brand
    from assistant.demo import run_demo

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(click.ClickException, match=f"Port {port} on 127.0.0.1 is busy"):
            run_demo(settings, "127.0.0.1", port)
    assert await first_row(db, select(Brand.id).where(Brand.slug == "northwind")) is None
