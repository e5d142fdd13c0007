"""The reviewers' pages through the real app: sign-in, CSRF, headers, the queue and its decisions, roles,
escaping, and a query count that does not grow with the page size."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event, select, update

from assistant.db.tenancy import User
from assistant.db.turns import Turn
from assistant.services import app_services
from assistant.web.pages import ADMIN_ROUTES, ROUTES
from assistant.web.security import CSP, read_session, sign_session
from tests.browser.seed import ingest_mention, store_draft, waiting_turn
from tests.support.db import execute, rows

TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def token(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: Any, email: str, password: str) -> Any:
    page = await client.get("/login")
    return await client.post("/login", data={"email": email, "password": password, "_csrf_token": token(page.text)},
                             follow_redirects=False)


async def test_sign_in_sets_a_hardened_session_and_the_pages_carry_security_headers(client, kit) -> None:
    answer = await sign_in(client, kit.reviewer_email, kit.password)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "ra_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Max-Age=28800" in cookie
    queue = await client.get("/")
    assert queue.status_code == 200
    assert queue.headers["content-security-policy"] == CSP
    assert queue.headers["x-content-type-options"] == "nosniff"
    assert queue.headers["referrer-policy"] == "no-referrer"
    assert queue.headers["x-frame-options"] == "DENY"
    assert "<script>" not in queue.text and "style=" not in queue.text and " on" + "click" not in queue.text


async def test_unknown_email_and_wrong_password_read_the_same_and_the_attempts_slow_down(client, kit, settings) -> None:
    unknown = await sign_in(client, "nobody@example.com", kit.password)
    wrong = await sign_in(client, kit.reviewer_email, "not the password")
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda html: TOKEN.sub("", html).replace("nobody@example.com", "").replace(kit.reviewer_email, "")  # noqa: E731
    assert strip(unknown.text) == strip(wrong.text)
    for _ in range(settings.login_max_failures - 1):
        await sign_in(client, kit.reviewer_email, "not the password")
    waiting = await sign_in(client, kit.reviewer_email, kit.password)  # right password, but too soon: not checked
    assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) >= 1
    assert "try again in" in waiting.text


async def test_a_post_without_its_csrf_token_is_refused(client, kit) -> None:
    await sign_in(client, kit.reviewer_email, kit.password)
    page = await client.get("/")
    assert page.status_code == 200
    refused = await client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    forged = await client.post("/logout", data={"_csrf_token": "x" * 43}, follow_redirects=False)
    assert forged.status_code == 403
    assert (await client.post("/logout", data={"_csrf_token": token(page.text)}, follow_redirects=False)).status_code == 303


async def test_the_api_is_not_subject_to_csrf(client, kit) -> None:
    answer = await client.get("/api/v1/turns", headers=kit.reviewer)
    assert answer.status_code == 200


async def test_no_session_redirects_to_login_and_a_forged_cookie_is_no_session(client, kit) -> None:
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/login"
    client.cookies.set("ra_session", sign_session(b"another secret", kit.admin_id, 3600))
    assert (await client.get("/", follow_redirects=False)).status_code == 303
    assert (await client.get("/queue/count")).status_code == 401


def test_session_cookie_expires() -> None:
    cookie = sign_session(b"k", 7, 10, 3, now=1000.0)
    assert read_session(b"k", cookie, now=1005.0) == (7, 3)
    assert read_session(b"k", cookie, now=1011.0) is None
    # The cookie carries a random nonce, so its MAC is random: the tampered text must differ from it by construction
    # (a fixed "AA" ending matched the real MAC about once in a thousand runs and failed a CI run).
    tampered_mac = cookie[:-1] + ("B" if cookie[-1] != "B" else "C")
    assert read_session(b"k", tampered_mac, now=1005.0) is None
    payload, _, mac = cookie.partition(".")
    tampered_payload = payload[:-1] + ("B" if payload[-1] != "B" else "C") + "." + mac
    assert read_session(b"k", tampered_payload, now=1005.0) is None


async def test_a_disabled_user_loses_the_session_at_once(client, kit, db) -> None:
    await sign_in(client, kit.reviewer_email, kit.password)
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    await execute(db, update(User).where(User.id == kit.reviewer_id).values(disabled=True))
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_reviewers_cannot_open_admin_pages(client, kit) -> None:
    await sign_in(client, kit.reviewer_email, kit.password)
    for path in ("/admin/users", "/admin/keys", "/admin/policy"):
        answer = await client.get(path)
        assert answer.status_code == 403, path
        assert answer.headers["content-security-policy"] == CSP


async def test_admin_actions_are_behind_the_admin_guard(client, kit, db) -> None:
    assert (await client.get("/admin/users", follow_redirects=False)).headers["location"] == "/login"
    _, one, _ = await waiting_turn(db, kit.id, handle="@one", text="@acme a", draft="A")
    _, two, _ = await waiting_turn(db, kit.id, handle="@two", text="@acme b", draft="B")
    await sign_in(client, kit.reviewer_email, kit.password)
    csrf = token((await client.get("/")).text)
    refused = await client.post(f"/people/{one}/merge", data={"_csrf_token": csrf, "other_id": str(two)})
    assert refused.status_code == 403 and "Only an admin" in refused.text
    assert (await client.get(f"/people/{two}")).status_code == 200  # not merged away


async def test_every_form_of_every_page_needs_its_csrf_token(client, kit) -> None:
    await sign_in(client, kit.admin_email, kit.password)
    posts = [h for h in [*ROUTES, *ADMIN_ROUTES] if "POST" in h.http_methods]
    assert len(posts) >= 15
    for handler in posts:
        for path in handler.paths:
            path = ("/admin" if handler in ADMIN_ROUTES else "") + re.sub(r"\{[a-z_]+:int\}", "1", path)
            answer = await client.post(path, data={"text": "hi", "reason": "x", "scope": "read"})
            assert answer.status_code == 403 and "security token" in answer.text, path


async def test_a_form_field_that_does_not_decode_is_named_in_a_400(client, kit) -> None:
    await sign_in(client, kit.admin_email, kit.password)
    csrf = token((await client.get("/admin/policy")).text)
    answer = await client.post("/admin/policy", data={"_csrf_token": csrf},
                               files={"source": ("policy.toml", b"[rules]\n")})  # a file where text belongs
    assert answer.status_code == 400
    assert "This form could not be read (source:" in answer.text
    assert "Internal" not in answer.text


async def test_queue_shows_people_in_fair_order_with_untrusted_text_escaped(client, kit, db) -> None:
    famous, _, _ = await waiting_turn(db, kit.id, handle="@famous", text="@acme hi", draft="Hi!", minutes_ago=5,
                                      author={"handle": "@famous", "followers": 1_000_000})
    quiet, _, _ = await waiting_turn(db, kit.id, handle="@quiet", text="<img src=x onerror=alert(1)>",
                                     draft="Hello <b>there</b>", minutes_ago=50)
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    assert html.index(f'id="turn-{quiet}"') < html.index(f'id="turn-{famous}"')
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in html
    count = (await client.get("/queue/count")).json()
    assert (count["waiting"], count["label"], count["escalated"]) == (2, "2", 0)


async def test_findings_are_underlined_by_their_span(client, kit, db) -> None:
    turn_id, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late",
                                       draft="We guarantee <it> by Friday", findings=[
        {"rule": "banned_pattern", "severity": "block", "message": "no promises", "start": 3, "end": 12}])
    await sign_in(client, kit.reviewer_email, kit.password)
    html = (await client.get("/")).text
    assert (f'We <mark class="finding block" title="no promises" aria-describedby="f{turn_id}-0">guarantee</mark>'
            " &lt;it&gt; by Friday") in html
    assert f'id="f{turn_id}-0"' in html


async def test_approve_edit_reject_and_stale_by_form(client, kit, db) -> None:
    t1, _, d1 = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!", minutes_ago=30)
    t2, _, d2 = await waiting_turn(db, kit.id, handle="@bo", text="@acme broken", draft="On it, Bo.", minutes_ago=20)
    t3, p3, d3 = await waiting_turn(db, kit.id, handle="@cy", text="@acme hello", draft="Hi Cy.", minutes_ago=10)
    await sign_in(client, kit.reviewer_email, kit.password)
    csrf = token((await client.get("/")).text)

    done = await client.post(f"/turns/{t1}/approve", data={"_csrf_token": csrf, "draft_id": str(d1),
                                                          "text": "Sorry Ana, on its way."}, follow_redirects=False)
    assert done.status_code == 303
    empty_reason = await client.post(f"/turns/{t2}/reject", data={"_csrf_token": csrf, "reason": "  "})
    assert empty_reason.status_code == 422 and "Say why" in empty_reason.text
    rejected = await client.post(f"/turns/{t2}/reject", data={"_csrf_token": csrf, "reason": "spam"},
                                 follow_redirects=False)
    assert rejected.status_code == 303

    await ingest_mention(db, kit.id, handle="@cy", text="@acme also my card was charged twice")
    new_draft = await store_draft(db, t3, "Hi Cy, refunding the double charge.")
    stale = await client.post(f"/turns/{t3}/approve", data={"_csrf_token": csrf, "draft_id": str(d3)})
    assert stale.status_code == 409
    assert "the person wrote again; here is the new draft" in stale.text.lower()
    assert f'name="draft_id" value="{new_draft}"' in stale.text
    statuses = dict(await rows(db, select(Turn.id, Turn.status)))
    assert statuses[t1] == "approved" and statuses[t2] == "rejected" and statuses[t3] == "pending_review"


async def test_bad_input_is_never_a_500(client, kit, db) -> None:
    t1, _, _ = await waiting_turn(db, kit.id, handle="@ana", text="@acme late", draft="Sorry Ana!")
    await sign_in(client, kit.admin_email, kit.password)
    csrf = token((await client.get("/")).text)
    for path, data in [(f"/turns/{t1}/approve", {"draft_id": "abc"}), (f"/turns/{t1}/approve", {"draft_id": "99999"}),
                       ("/turns/424242/reject", {"reason": "x"}), ("/people/999/notes", {"text": "hi"}),
                       ("/people/1/merge", {"other_id": "x"}), ("/admin/users", {"email": "bad", "role": "god"}),
                       ("/admin/keys", {"scope": "nope"}), ("/admin/users/1/role", {"role": "god"})]:
        answer = await client.post(path, data={"_csrf_token": csrf, **data})
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    for path in ("/?cursor=garbage", "/?limit=abc", "/audit?cursor=zzz", "/fairness?since=yesterday",
                 "/people/999", "/people/abc"):
        answer = await client.get(path)
        assert answer.status_code < 500, (path, answer.status_code)


async def test_admin_pages_invite_key_and_policy(client, kit) -> None:
    await sign_in(client, kit.admin_email, kit.password)
    csrf = token((await client.get("/admin/users")).text)
    invited = await client.post("/admin/users", data={"_csrf_token": csrf, "email": "new@x.example", "role": "reviewer"})
    assert invited.status_code == 200 and "temporary password" in invited.text
    key = await client.post("/admin/keys", data={"_csrf_token": csrf, "scope": ["ingest", "read"], "name": "buffer"})
    assert key.status_code == 200 and "shown only this once" in key.text
    broken = await client.post("/admin/policy", data={"_csrf_token": csrf, "source": "[rules]\nmax_emojis = 'many'\n"})
    assert broken.status_code == 422 and "was not saved" in broken.text
    good = await client.post("/admin/policy", data={"_csrf_token": csrf, "source": "[rules]\nbanned_phrases = [\"valued customer\"]\n"})
    assert good.status_code == 200 and "Saved" in good.text
    tried = await client.post("/admin/policy/try", data={"_csrf_token": csrf, "platform": "x",
                                                          "text": "Dear valued customer"})
    assert tried.status_code == 200 and '<mark class="finding' in tried.text


async def test_queue_statement_count_does_not_grow_with_the_page_size(client, kit, db, app) -> None:
    for i in range(12):
        await waiting_turn(db, kit.id, handle=f"@p{i}", text=f"@acme {i}", draft=f"Hi {i}", minutes_ago=100 - i)
    await sign_in(client, kit.reviewer_email, kit.password)
    await client.get("/")  # the rate limit takes this process's share of the user's allowance once, not per page
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engines = app_services(app).db.engines  # the app's engines: the test's own ``db`` sees none of the page's queries
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        sizes = {}
        for limit in (2, 10):
            statements.clear()
            answer = await client.get(f"/?limit={limit}")
            assert answer.status_code == 200 and answer.text.count('<li class="row') == limit
            sizes[limit] = len(statements)
        statements.clear()
        await client.get("/people/1")
        person = len(statements)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert sizes[2] == sizes[10], sizes
    # relationship memory adds one read of two statements to each page (left-behind count and promises on the
    # queue; promises and summary on the person page)
    assert 0 < sizes[10] <= 15 + 3 and 0 < person <= 10 + 3, (sizes, person)
