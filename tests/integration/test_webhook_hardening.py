"""Issue 13, finding 8: webhooks go to public addresses only, and their signing secrets are encrypted at rest.

No test sends anything to a non-loopback address: refusals of other addresses are checked without connecting
(literal IPs in the URL, or a resolver the test stands in for), and a refusal at delivery is shown on a receiver
listening on loopback that hears nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import standardwebhooks
from alembic import command
from sqlalchemy import select, update

from assistant.db import Database
from assistant.db.migrate import alembic_config, head_revision
from assistant.db.webhooks import Webhook
from assistant.errors import ValidationFailed
from assistant.settings import Settings, SettingsError, get_settings
from assistant.webhooks import addresses, service
from assistant.webhooks.secret_box import SecretBox
from tests.integration.test_webhooks import Receiver, attempts, deliver_until_settled, deliveries, emit_event
from tests.support.cli import run_cli

REFUSED = [
    ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
    ("http://localhost:9/hook", "localhost resolves to a loopback address"),
    ("http://[::1]:9/hook", "::1 is a loopback address"),
    ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
    ("https://192.168.1.20/hook", "192.168.1.20 is a private address"),
    ("http://[fd12:3456::1]/hook", "fd12:3456::1 is a private address"),
    ("http://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ("http://240.0.0.1/hook", "240.0.0.1 is a reserved address"),
    ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
    ("http://100.64.0.1/hook", "100.64.0.1 is not a public address"),
]


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The product's default: webhooks to public addresses only (the tests' settings allow loopback receivers)."""
    return settings.replace(webhook_allow_private_addresses=False, webhook_retry_schedule=(0.05,),
                            webhook_timeout_seconds=2.0)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Stands in for DNS: ``resolver[name] = [addresses]``; every lookup is counted under ``"#name"``."""
    answers: dict[str, Any] = {}

    async def resolve(host: str, port: int) -> list[str]:
        answers[f"#{host}"] = answers.get(f"#{host}", 0) + 1
        return list(answers[host])

    monkeypatch.setattr(addresses, "resolve", resolve)
    return answers


def test_the_tests_allow_loopback_receivers_explicitly_and_the_product_does_not(settings: Settings) -> None:
    assert settings.webhook_allow_private_addresses is True
    assert Settings().webhook_allow_private_addresses is False


@pytest.mark.parametrize("url, reason", REFUSED)
async def test_a_url_of_a_non_public_address_is_refused_when_added(db, factory, strict, url, reason) -> None:
    kit = await factory.brand()

    with pytest.raises(ValidationFailed) as refused:
        await service.add_webhook(db, strict, kit.slug, url, ["reply.posted"])

    [error] = refused.value.errors
    assert error["field"] == "url" and reason in error["message"]
    assert refused.value.status == 422 and addresses.ALLOW_SETTING in error["message"]
    assert await service.list_webhooks(db, kit.slug) == []


async def test_a_name_is_refused_if_any_of_its_addresses_is_not_public(db, factory, strict, resolver) -> None:
    kit = await factory.brand()
    resolver["mixed.example"] = ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(ValidationFailed) as refused:
        await service.add_webhook(db, strict, kit.slug, "https://mixed.example/hook", ["reply.posted"])

    assert "mixed.example resolves to a private address (10.1.2.3)" in refused.value.errors[0]["message"]


async def test_the_command_line_refuses_a_private_address_in_one_line(db, factory, settings) -> None:
    kit = await factory.brand()

    result = await asyncio.to_thread(run_cli, settings.database_url, "webhooks", "add", "http://10.0.0.1/hook",
                                     "--brand", kit.slug, "--event", "reply.posted",
                                     env={"ASSISTANT_SECRET_KEY": settings.secret_key})

    assert result.exit_code == 1
    assert "10.0.0.1 is a private address" in result.stderr and "Traceback" not in result.stderr
    assert await service.list_webhooks(db, kit.slug) == []


async def test_a_delivery_to_an_address_that_became_private_is_refused_and_nothing_is_sent(
        db, factory, settings, strict) -> None:
    """Added while allowed (as if the name pointed elsewhere then): the check before the delivery refuses it,
    records the attempt with the reason, and the receiver hears nothing."""
    kit = await factory.brand()
    with Receiver() as receiver:
        await service.add_webhook(db, settings, kit.slug, receiver.url, ["turn.escalated"])
        await emit_event(db, kit.id)
        await deliver_until_settled(db, strict)
    assert receiver.received == []
    log = await attempts(db)
    assert [a.status_code for a in log] == [None, None]
    assert all(a.error == "refused, nothing sent: 127.0.0.1 is a loopback address" for a in log)
    [delivery] = await deliveries(db)
    assert delivery.status == "failed" and delivery.last_error == log[-1].error


async def test_a_name_that_moves_to_a_private_address_after_it_was_added_is_refused(
        db, factory, strict, resolver) -> None:
    """DNS can change: a name that was public when added and resolves to loopback at delivery is refused."""
    kit = await factory.brand()
    resolver["hooks.example"] = ["93.184.216.34"]
    hook = await service.add_webhook(db, strict, kit.slug, "http://hooks.example:9/hook", ["turn.escalated"])
    resolver["hooks.example"] = ["127.0.0.1"]
    await emit_event(db, kit.id)

    await deliver_until_settled(db, strict)

    log = await attempts(db)
    assert log and all(a.error == "refused, nothing sent: hooks.example resolves to a loopback address (127.0.0.1)"
                       for a in log)
    assert resolver["#hooks.example"] == 1 + len(log)  # once when added, again before every attempt
    del hook


async def test_a_delivery_goes_to_the_address_that_was_checked_with_the_name_in_the_host_header(
        db, factory, strict, resolver, monkeypatch) -> None:
    """The request is aimed at the address checked, so the name is never resolved a second time in between
    (``hooks.example`` has no real address: a second lookup would fail). Loopback stands in for a public address
    here, so the test need not send anything off this machine."""
    kit = await factory.brand()
    monkeypatch.setattr(addresses, "kind_refused", lambda address: None)
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        resolver["hooks.example"] = ["127.0.0.1"]
        hook = await service.add_webhook(db, strict, kit.slug, f"http://hooks.example:{port}/hooks",
                                         ["turn.escalated"])
        await emit_event(db, kit.id, turn_id=7)
        await deliver_until_settled(db, strict)
    [(headers, _)] = receiver.received
    assert headers["host"] == f"hooks.example:{port}"
    assert [event["data"] for event in receiver.verified(hook.secret)] == [{"turn_id": 7}]
    assert resolver["#hooks.example"] == 2  # when added, and before the one delivery


async def stored_secrets(db: Database) -> list[str]:
    return await db.run_read(lambda conn: list(conn.execute(select(Webhook.secret).order_by(Webhook.id)).scalars()))


async def test_secrets_are_stored_encrypted_and_deliveries_still_sign_with_them(db, factory, settings) -> None:
    kit = await factory.brand()
    with Receiver() as receiver:
        hook = await service.add_webhook(db, settings, kit.slug, receiver.url, ["turn.escalated"])
        rotated = await service.rotate_secret(db, settings, hook.id)
        await emit_event(db, kit.id, turn_id=3)
        await deliver_until_settled(db, settings.replace(webhook_retry_schedule=(0.05,)))
    [stored] = await stored_secrets(db)
    for secret in (hook.secret, rotated.secret):
        assert secret not in stored and secret[6:] not in stored and secret[6:30] not in stored
    assert "whsec_" not in stored
    assert SecretBox.from_settings(settings).open(stored) == rotated.secret
    assert [event["data"] for event in receiver.verified(rotated.secret)] == [{"turn_id": 3}]
    listed = await service.list_webhooks(db, kit.slug)
    assert [set(row._mapping) for row in listed] == [{"id", "url", "events", "created_at"}]


async def test_a_secret_that_does_not_decrypt_is_a_failed_attempt_and_nothing_is_sent(db, factory, settings) -> None:
    kit = await factory.brand()
    with Receiver() as receiver:
        await service.add_webhook(db, settings, kit.slug, receiver.url, ["turn.escalated"])
        await emit_event(db, kit.id)
        other_key = settings.replace(secret_key="another-key", webhook_retry_schedule=(0.05,))
        await deliver_until_settled(db, other_key)
    assert receiver.received == []
    log = await attempts(db)
    assert log and all(a.error is not None and "does not decrypt with the configured key" in a.error for a in log)


async def test_a_separate_webhook_key_keeps_secrets_readable_when_the_session_key_changes(db, factory,
                                                                                        settings) -> None:
    kit = await factory.brand()
    pinned = settings.replace(webhook_secret_key="webhook-key-kept-apart")
    hook = await service.add_webhook(db, pinned, kit.slug, "http://127.0.0.1:9/hook", ["turn.escalated"])
    [stored] = await stored_secrets(db)

    assert SecretBox.from_settings(pinned.replace(secret_key="rotated-session-key")).open(stored) == hook.secret
    with pytest.raises(SettingsError):
        SecretBox.from_settings(settings.replace(secret_key="", webhook_secret_key=""))


def _migrate(url: str, settings: Settings | None, target: str, down: bool = False) -> None:
    config = alembic_config(url, settings)
    (command.downgrade if down else command.upgrade)(config, target)


async def test_the_migration_encrypts_the_secrets_stored_in_plain_text(db, factory, settings, monkeypatch) -> None:
    """From the revision before, a plain secret (as the service stored it then) is encrypted by the upgrade, and
    decrypted again by the downgrade; without a key the upgrade stops with a message saying which to set."""
    kit = await factory.brand()
    await service.add_webhook(db, settings, kit.slug, "http://127.0.0.1:9/hook", ["turn.escalated"])
    url, head = settings.database_url, head_revision(settings.database_url)
    before = _before(head)
    await db.dispose()  # the migrations change the schema under the pools
    plain = "whsec_" + "A" * 43 + "="
    try:
        await asyncio.to_thread(_migrate, url, settings, before, True)
        await db.run_write(lambda conn: conn.execute(update(Webhook).values(secret=plain)))
        monkeypatch.delenv("ASSISTANT_SECRET_KEY", raising=False)
        monkeypatch.delenv("ASSISTANT_WEBHOOK_SECRET_KEY", raising=False)
        get_settings.cache_clear()
        with pytest.raises(SettingsError, match="SECRET_KEY"):
            await asyncio.to_thread(_migrate, url, settings.replace(secret_key=""), head)
        assert await stored_secrets(db) == [plain]

        await asyncio.to_thread(_migrate, url, settings, head)
        [sealed] = await stored_secrets(db)
        assert plain not in sealed and SecretBox.from_settings(settings).open(sealed) == plain

        await asyncio.to_thread(_migrate, url, settings, before, True)
        assert await stored_secrets(db) == [plain]
    finally:
        get_settings.cache_clear()
        await db.dispose()
        await asyncio.to_thread(_migrate, url, settings, head)
        await db.dispose()


def _before(head: str | None) -> str:
    """The revision before the one that encrypts webhook secrets."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_revision("0009_webhook_secrets_encrypted")
    assert revision is not None and head is not None
    return str(revision.down_revision)

