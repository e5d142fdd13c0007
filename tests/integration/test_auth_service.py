"""Brands, keys and users as plain functions of a Connection, on the database under test: what each refusal
is, and that a refusal stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.tenancy import User
from assistant.errors import Conflict, NotFound, ValidationFailed


async def test_a_taken_email_is_a_conflict_and_the_rest_of_the_transaction_still_lands(db: Database,
                                                                                      factory) -> None:
    kit = await factory.brand()

    def invite_twice(conn):  # type: ignore[no-untyped-def]
        with pytest.raises(Conflict):
            auth.create_user(conn, kit.id, kit.reviewer_email.upper(), "reviewer", None)
        return auth.create_user(conn, kit.id, "new@example.com", "reviewer", None)  # the savepoint rolled back

    made = await db.run_write(invite_twice)

    emails = await db.run_read(lambda conn: sorted(conn.execute(select(User.email)).scalars()))
    assert made.email == "new@example.com" and emails.count(kit.reviewer_email) == 1 and "new@example.com" in emails


@pytest.mark.parametrize("call, refusal", [
    (lambda conn, kit: auth.create_brand(conn, kit.slug, "Again"), Conflict),
    (lambda conn, kit: auth.create_brand(conn, "Not A Slug", "x"), ValidationFailed),
    (lambda conn, kit: auth.create_api_key(conn, kit.id, ["approve"]), ValidationFailed),
    (lambda conn, kit: auth.create_user(conn, kit.id, "x@example.com", "owner", None), ValidationFailed),
    (lambda conn, kit: auth.revoke_api_key(conn, kit.id, 987654), NotFound),
    (lambda conn, kit: auth.user_by_email(conn, "nobody@example.com"), NotFound),
    (lambda conn, kit: auth.brand_by_slug(conn, "nowhere"), NotFound),
])
async def test_each_refusal_stores_nothing(db: Database, factory, call, refusal) -> None:
    kit = await factory.brand()
    events_before = await db.run_read(lambda conn: conn.execute(select(func.count()).select_from(AuditEvent)).scalar())

    with pytest.raises(refusal):
        await db.run_write(call, kit)

    assert await db.run_read(lambda conn: conn.execute(select(func.count()).select_from(AuditEvent)).scalar()) \
        == events_before


async def test_a_revoked_key_cannot_be_revoked_again_and_another_brand_cannot_revoke_it(db: Database, factory) -> None:
    kit, stranger = await factory.brand(), await factory.brand()
    issued = await db.run_write(auth.create_api_key, kit.id, ["read"], "tool")

    with pytest.raises(NotFound):
        await db.run_write(auth.revoke_api_key, stranger.id, issued.id)
    await db.run_write(auth.revoke_api_key, kit.id, issued.id)
    with pytest.raises(NotFound):
        await db.run_write(auth.revoke_api_key, kit.id, issued.id)
