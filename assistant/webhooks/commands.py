"""``assistant webhooks``: subscriptions, their secrets, and the delivery log (SPEC section 6)."""

from __future__ import annotations

import click

from assistant.cli_support import run_and_say, run_with_db, settings
from assistant.db import Database
from assistant.webhooks import service
from assistant.webhooks.events import EVENTS


@click.group()
def webhooks() -> None:
    """Signed webhooks (Standard Webhooks) that tell other tools about turns and replies."""


@webhooks.command("add")
@click.argument("url")
@click.option("--brand", "slug", required=True)
@click.option("--event", "events", multiple=True, required=True, type=click.Choice(EVENTS),
              help="An event to send; repeat for more.")
def add(url: str, slug: str, events: tuple[str, ...]) -> None:
    """Subscribe URL to events; prints the signing secret once."""
    async def work(db: Database) -> None:
        made = await service.add_webhook(db, settings(), slug, url, list(events))
        click.echo(made.secret)
        click.echo(f"webhook {made.id} added; keep the secret above, it is not shown again", err=True)

    run_with_db(work)


@webhooks.command("list")
@click.option("--brand", "slug", required=True)
def list_(slug: str) -> None:
    """The brand's webhooks (never their secrets)."""
    async def work(db: Database) -> None:
        for hook in await service.list_webhooks(db, slug):
            click.echo(f"{hook.id}\t{hook.url}\t{','.join(hook.events)}\t{hook.created_at:%Y-%m-%d %H:%M}")

    run_with_db(work)


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
def remove(webhook_id: int) -> None:
    """Stop sending to a webhook; its delivery log stays."""
    run_and_say(lambda db: service.remove_webhook(db, webhook_id), f"webhook {webhook_id} removed")


@webhooks.command("rotate-secret")
@click.argument("webhook_id", type=int)
def rotate_secret(webhook_id: int) -> None:
    """Give a webhook a new signing secret; prints it once. The old one stops verifying at once."""
    async def work(db: Database) -> None:
        made = await service.rotate_secret(db, settings(), webhook_id)
        click.echo(made.secret)
        click.echo(f"webhook {webhook_id} has a new secret; it is not shown again", err=True)

    run_with_db(work)


@webhooks.command("deliveries")
@click.option("--brand", "slug", default=None)
@click.option("--status", type=click.Choice(service.DELIVERY_STATES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def deliveries(slug: str | None, status: str | None, limit: int) -> None:
    """Deliveries, newest first: id, status, event, attempts, last answer, URL."""
    async def work(db: Database) -> None:
        for delivery, url in await service.list_deliveries(db, brand_slug=slug, status=status, limit=limit):
            last = delivery.last_error or (f"HTTP {delivery.last_status_code}" if delivery.last_status_code else "-")
            click.echo(f"{delivery.id}\t{delivery.status}\t{delivery.event_type}\t{delivery.event_id}\t"
                       f"attempts={delivery.attempts}\t{last}\t{url}")

    run_with_db(work)


@webhooks.command("retry")
@click.argument("delivery_id", type=int)
def retry(delivery_id: int) -> None:
    """Send a delivered or failed delivery again, with the same webhook-id."""
    run_and_say(lambda db: service.retry_delivery(db, delivery_id), f"delivery {delivery_id} queued")
