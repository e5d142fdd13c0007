"""Issue 13, findings 2 and 5: sign-in that cannot be raced or used to lock someone out, and sessions that end.

What each kind of abuse gets:
- thirty guesses at once: at most ``login_max_failures`` passwords are checked; the rest are 429 with
  Retry-After, the right password among them included once the allowance is spent (race test);
- a stranger guessing from other addresses: the owner's own address still signs in (no hard lock);
- one address spraying many accounts: slowed down (429) after its allowance;
- a copied session cookie after sign-out or a password change: back to the sign-in form;
- a CSRF cookie planted before sign-in: replaced at sign-in.
"""

from __future__ import annotations

from assistant.services import app_services

import asyncio
import datetime
import threading
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from assistant.app import create_app
from assistant.auth import passwords, signin
from assistant.errors import RateLimited
from tests.integration.test_web import sign_in, token


@pytest.fixture
async def kit(factory: Any) -> Any:
    return await factory.brand()


def count_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every password the service verifies (the real argon2 check still runs)."""
    checked: list[str] = []
    lock = threading.Lock()
    real = passwords.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        with lock:
            checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(signin, "verify_password", counting)
    return checked


def stop_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt reads the same time, so a slow machine cannot let the growing delay run out mid-burst."""
    now = datetime.datetime.now(datetime.timezone.utc)
    monkeypatch.setattr(signin, "utcnow", lambda: now)


async def form_token(client: Any) -> str:
    return token((await client.get("/login")).text)


async def post_login(client: Any, csrf: str, email: str, password: str) -> Any:
    return await client.post("/login", data={"email": email, "password": password, "_csrf_token": csrf},
                             follow_redirects=False)


async def test_thirty_parallel_guesses_check_at_most_the_allowance_and_none_bypasses_it(
        client, kit, settings, monkeypatch) -> None:
    stop_the_clock(monkeypatch)
    checked = count_checks(monkeypatch)
    csrf = await form_token(client)
    guesses = [f"wrong guess {i}" for i in range(29)] + [kit.password]
    answers = await asyncio.gather(*(post_login(client, csrf, kit.reviewer_email, g) for g in guesses))
    statuses = [a.status_code for a in answers]
    assert len(checked) <= settings.login_max_failures
    assert statuses.count(429) >= 30 - settings.login_max_failures
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
    signed_in = statuses[-1] == 303
    assert signed_in == (kit.password in checked)  # the right password signs in only if it was among those checked


async def test_once_the_allowance_is_spent_a_parallel_burst_with_the_right_password_does_not_sign_in(
        client, kit, settings, monkeypatch) -> None:
    stop_the_clock(monkeypatch)
    csrf = await form_token(client)
    for i in range(settings.login_max_failures):
        assert (await post_login(client, csrf, kit.reviewer_email, f"wrong {i}")).status_code == 401
    checked = count_checks(monkeypatch)
    guesses = [f"again {i}" for i in range(29)] + [kit.password]
    answers = await asyncio.gather(*(post_login(client, csrf, kit.reviewer_email, g) for g in guesses))
    assert {a.status_code for a in answers} == {429}
    assert checked == []


async def test_throttles_are_per_address_and_account(db, settings) -> None:
    """The rules at the service edge, with two addresses: the stranger's guesses slow the stranger only."""
    from tests.support.factories import Factory

    kit = await Factory(db).brand()
    for i in range(settings.login_max_failures):
        assert await signin.sign_in(db, settings, kit.reviewer_email, f"x{i}", "203.0.113.9") is None
    with pytest.raises(RateLimited):
        await signin.sign_in(db, settings, kit.reviewer_email, "x", "203.0.113.9")
    owner = await signin.sign_in(db, settings, kit.reviewer_email, kit.password, "198.51.100.7")
    assert owner is not None and owner.user_id == kit.reviewer_id
    # One address trying many accounts is slowed down too, whatever the accounts.
    statuses = []
    for i in range(settings.login_max_failures * 6 + 1):
        try:
            await signin.sign_in(db, settings, f"someone{i}@example.com", "x", "192.0.2.44")
            statuses.append(401)
        except RateLimited as exc:
            statuses.append(exc.status)
    assert statuses[-1] == 429 and statuses[:settings.login_max_failures] == [401] * settings.login_max_failures


async def test_sign_out_ends_the_session_and_a_copied_cookie_stops_working(client, settings, kit) -> None:
    assert (await sign_in(client, kit.reviewer_email, kit.password)).status_code == 303
    copied = client.cookies.get("ra_session")
    page = await client.get("/")
    assert page.status_code == 200
    assert (await client.post("/logout", data={"_csrf_token": token(page.text)},
                              follow_redirects=False)).status_code == 303
    async with AsyncTestClient(create_app(settings)) as thief:
        thief.cookies.set("ra_session", copied)
        answer = await thief.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_a_new_password_ends_every_session(client, app, db, kit) -> None:
    assert (await sign_in(client, kit.reviewer_email, kit.password)).status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    await signin.set_password(db, kit.reviewer_email, "a brand new password")
    assert (await client.get("/", follow_redirects=False)).status_code == 303
    assert (await sign_in(client, kit.reviewer_email, "a brand new password")).status_code == 303


async def test_the_csrf_cookie_is_replaced_at_sign_in(client, kit) -> None:
    await client.get("/login")
    planted = client.cookies.get("ra_csrf")
    assert planted
    assert (await sign_in(client, kit.reviewer_email, kit.password)).status_code == 303
    assert client.cookies.get("ra_csrf") not in (None, planted)
    assert (await client.get("/")).status_code == 200


async def test_password_checks_run_off_the_event_loop(db, settings, monkeypatch) -> None:
    from tests.support.factories import Factory

    kit = await Factory(db).brand()
    threads: list[str] = []
    real = passwords.verify_password

    def where(password_hash: str | None, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real(password_hash, password)

    monkeypatch.setattr(signin, "verify_password", where)
    await signin.sign_in(db, settings, kit.reviewer_email, kit.password, "192.0.2.1")
    assert threads and all(name.startswith("argon2") for name in threads)


async def test_failed_authentication_from_one_address_is_slowed_in_every_process(app, client, factory, db,
                                                                                  monkeypatch) -> None:
    """After the free allowance of unknown tokens, the address waits (429, Retry-After); the count lives in the
    database, so a second app (another process) refuses that address too."""
    from assistant.auth import guards

    now = datetime.datetime.now(datetime.timezone.utc)
    monkeypatch.setattr(guards, "utcnow", lambda: now)  # a slow machine must not outlast the delay
    kit = await factory.brand()
    free = app_services(app).settings.auth_failures_per_address
    statuses = [(await client.get("/api/v1/people", headers={"Authorization": f"Bearer ak_nope_{i}"})).status_code
                for i in range(free + 1)]
    assert statuses[:free] == [401] * free and statuses[-1] == 429
    waiting = await client.get("/api/v1/people", headers={"Authorization": "Bearer ak_nope_again"})
    assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) >= 1
    async with AsyncTestClient(create_app(app_services(app).settings)) as other_process:
        answer = await other_process.get("/api/v1/people", headers={"Authorization": "Bearer ak_nope_x"})
        assert answer.status_code == 429
    del kit
