"""Issue 13, finding 5: reviewer tokens expire and can be listed and revoked (SPEC 12's CLI); anything but the
demo refuses to start without a shared secret key."""

from __future__ import annotations

from assistant.services import app_services

import datetime as dt

from sqlalchemy import update

from assistant.db.tenancy import UserToken
from tests.integration.test_cli import assistant
from tests.support.db import execute


async def test_tokens_are_listed_by_prefix_and_revoked_at_once(settings, factory, client) -> None:
    kit = await factory.brand()
    token = kit.reviewer["Authorization"].split()[1]
    listed = assistant(settings.database_url, "users", "tokens", kit.reviewer_email)
    assert listed.returncode == 0, listed.stderr
    line = listed.stdout.strip()
    assert "active" in line and "expires" in line and token not in line
    shown_prefix = line.split()[0]
    assert token.startswith(shown_prefix)
    assert (await client.get("/api/v1/turns", headers=kit.reviewer)).status_code == 200
    revoked = assistant(settings.database_url, "users", "revoke-token", shown_prefix)
    assert revoked.returncode == 0, revoked.stderr
    app_services(client.app).authenticator.forget()
    assert (await client.get("/api/v1/turns", headers=kit.reviewer)).status_code == 401
    assert "revoked" in assistant(settings.database_url, "users", "tokens", kit.reviewer_email).stdout
    again = assistant(settings.database_url, "users", "revoke-token", shown_prefix)
    assert again.returncode == 1 and "no active reviewer token" in again.stderr and "Traceback" not in again.stderr


async def test_an_expired_token_no_longer_authenticates(factory, db, client) -> None:
    kit = await factory.brand()
    assert (await client.get("/api/v1/turns", headers=kit.admin)).status_code == 200
    await execute(db, update(UserToken).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    app_services(client.app).authenticator.forget()
    answer = await client.get("/api/v1/turns", headers=kit.admin)
    assert answer.status_code == 401


def test_serve_without_a_secret_key_refuses_in_one_line(settings) -> None:
    result = assistant(settings.database_url, "serve", "--port", "1")
    assert result.returncode == 1
    assert "ASSISTANT_SECRET_KEY is not set" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_the_api_lists_and_revokes_tokens_within_the_brand_and_role(factory, client) -> None:
    kit, other = await factory.brand(), await factory.brand()
    mine = await client.get("/api/v1/reviewer-tokens", headers=kit.reviewer)
    assert mine.status_code == 200
    assert [t["user_email"] for t in mine.json()] == [kit.reviewer_email]
    everyone = (await client.get("/api/v1/reviewer-tokens", headers=kit.admin)).json()
    assert sorted(t["user_email"] for t in everyone) == sorted([kit.reviewer_email, kit.admin_email])
    admin_prefix = next(t["prefix"] for t in everyone if t["user_email"] == kit.admin_email)
    reviewer_prefix = next(t["prefix"] for t in everyone if t["user_email"] == kit.reviewer_email)
    other_prefix = (await client.get("/api/v1/reviewer-tokens", headers=other.reviewer)).json()[0]["prefix"]
    # A reviewer may not revoke the admin's token, an admin not another brand's: 404 either way.
    assert (await client.post(f"/api/v1/reviewer-tokens/{admin_prefix}/revoke", headers=kit.reviewer)).status_code == 404
    assert (await client.post(f"/api/v1/reviewer-tokens/{other_prefix}/revoke", headers=kit.admin)).status_code == 404
    assert (await client.get("/api/v1/reviewer-tokens", headers=kit.ingest)).status_code == 403
    done = await client.post(f"/api/v1/reviewer-tokens/{reviewer_prefix}/revoke", headers=kit.admin)
    assert done.status_code == 200
    assert (await client.get("/api/v1/turns", headers=kit.reviewer)).status_code == 401
    assert (await client.get("/api/v1/turns", headers=other.reviewer)).status_code == 200


async def test_an_admin_revokes_a_token_on_the_users_page(factory, client) -> None:
    from tests.integration.test_web import sign_in, token

    kit = await factory.brand()
    await sign_in(client, kit.admin_email, kit.password)
    page = await client.get("/admin/users")
    assert page.status_code == 200 and "Reviewer tokens" in page.text
    prefix = next(t["prefix"] for t in (await client.get("/api/v1/reviewer-tokens", headers=kit.admin)).json()
                  if t["user_email"] == kit.reviewer_email)
    assert f"Revoke {prefix}" in page.text
    done = await client.post("/admin/tokens/revoke", data={"prefix": prefix, "_csrf_token": token(page.text)},
                             follow_redirects=False)
    assert done.status_code == 303
    assert (await client.get("/api/v1/turns", headers=kit.reviewer)).status_code == 401
    assert "revoked" in (await client.get("/admin/users")).text
