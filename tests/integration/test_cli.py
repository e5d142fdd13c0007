"""The command line as an operator uses it. Most tests run the commands in this process (click's runner,
``cli`` fixture); the last ones start a real ``python -m assistant`` to prove the entry point itself."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from assistant.auth.secrets import hash_secret
from assistant.db import Database
from assistant.db.tenancy import ApiKey, Brand, User
from assistant.processes import REQUEST_LOGGERS
from assistant.settings import Settings
from tests.support.db import one, scalars

Cli = Callable[..., Result]


def assistant(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m assistant ARGS`` as a real process, on ``database_url`` and no other ASSISTANT_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=60)


async def test_brand_key_user_and_token_from_the_command_line(cli: Cli, db: Database,
                                                              client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    def run(*args: str, stdin: str | None = None) -> Result:
        return cli(*args, stdin=stdin)

    assert (await asyncio.to_thread(run, "brands", "create", "acme", "--name", "Acme")).exit_code == 0
    made = await asyncio.to_thread(run, "keys", "create", "--brand", "acme", "--scope", "ingest", "--scope", "read")
    assert made.exit_code == 0
    key = made.stdout.strip()
    assert key.startswith("ak_") and "not shown again" in made.stderr
    stored = await one(db, select(ApiKey))
    assert stored.secret_hash == hash_secret(key) and key not in (stored.prefix, stored.secret_hash)
    assert sorted(stored.scopes) == ["ingest", "read"]

    user = await asyncio.to_thread(run, "users", "create", "Ana@Acme.example", "--role", "admin", "--password-stdin",
                                   stdin="a long enough password\n")
    assert user.exit_code == 0, user.stderr
    row = await one(db, select(User))
    assert row.email == "ana@acme.example" and row.password_hash.startswith("$argon2id$")
    token = (await asyncio.to_thread(run, "users", "token", "ana@acme.example")).stdout.strip()
    assert token.startswith("rt_")

    answer = await client.get("/api/v1/people", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    answer = await client.get("/api/v1/people", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("brands", "create", "Not A Slug", "--name", "X"), None, "slug"),
    (("keys", "create", "--brand", "nobody", "--scope", "ingest"), None, "no brand with slug 'nobody'"),
    (("keys", "create", "--brand", "acme", "--scope", "approve"), None, "Invalid value for '--scope'"),
    (("users", "create", "ana@acme.example", "--role", "admin", "--password-stdin"), "short\n", "at least 10"),
    (("users", "create", "not-an-email", "--role", "reviewer", "--password-stdin"), "long enough pw\n", "email"),
    (("users", "token", "nobody@acme.example"), None, "no user"),
])
def test_bad_input_gets_a_one_line_message_and_exit_code(cli: Cli, args: tuple[str, ...], stdin: str | None,
                                                         message: str) -> None:
    assert cli("brands", "create", "acme", "--name", "Acme").exit_code == 0
    result = cli(*args, stdin=stdin)  # an exception other than click's own would fail the test right here
    assert result.exit_code in (1, 2)  # 1: refused by the service; 2: refused by click's own checks
    assert message in result.stderr


def test_every_command_keeps_the_http_clients_request_lines_out_of_its_log(cli: Cli) -> None:
    """``serve``, ``worker`` and every other command start through the group, which quiets the HTTP clients'
    line per request (it names a webhook's or the model's whole URL, secrets included)."""
    before = {name: logging.getLogger(name).level for name in REQUEST_LOGGERS}
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        assert cli("brands", "create", "acme", "--name", "Acme").exit_code == 0
        assert {name: logging.getLogger(name).level for name in REQUEST_LOGGERS} == \
            {"httpx": logging.WARNING, "httpx2": logging.WARNING}
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def test_a_second_brand_with_the_same_slug_is_refused(cli: Cli) -> None:
    assert cli("brands", "create", "acme", "--name", "Acme").exit_code == 0
    again = cli("brands", "create", "acme", "--name", "Acme again")
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_a_brand_gets_its_policy_from_a_file_and_a_broken_file_changes_nothing(cli: Cli, tmp_path: Path,
                                                                               repo_root: Path) -> None:
    good = repo_root / "examples" / "policies" / "acme.toml"
    made = cli("brands", "create", "acme", "--name", "Acme", "--policy", str(good))
    assert made.exit_code == 0, made.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('[rules]\nmax_emojis = "two"\n')
    refused = cli("brands", "set-policy", "acme", str(broken))
    assert refused.exit_code == 1
    assert "broken.toml:2: rules.max_emojis" in refused.stderr
    replaced = cli("brands", "set-policy", "acme", str(repo_root / "assistant" / "policy" / "demo_policy.toml"))
    assert replaced.exit_code == 0 and "policy of acme set" in replaced.stdout


def test_a_new_password_from_the_command_line_replaces_the_old_one(cli: Cli) -> None:
    assert cli("brands", "create", "acme", "--name", "Acme").exit_code == 0
    made = cli("users", "create", "ana@acme.example", "--role", "admin", "--password-stdin",
               stdin="the first password\n")
    assert made.exit_code == 0, made.stderr
    changed = cli("users", "set-password", "Ana@acme.example", "--password-stdin", stdin="the second password\n")
    assert changed.exit_code == 0, changed.stderr
    assert changed.stdout == "new password set for ana@acme.example; their sessions have ended\n"
    unknown = cli("users", "set-password", "bo@acme.example", "--password-stdin", stdin="the third password\n")
    assert unknown.exit_code == 1 and unknown.stdout == "", "nothing is said to be done when it was not"


# A real process ----------------------------------------------------------------------------------------------

async def test_the_installed_entry_point_creates_a_brand_and_refuses_in_one_line(settings: Settings,
                                                                                  db: Database) -> None:
    made = await asyncio.to_thread(assistant, settings.database_url, "brands", "create", "acme", "--name", "Acme")
    assert made.returncode == 0, made.stderr
    assert await scalars(db, select(Brand.slug)) == ["acme"]
    refused = await asyncio.to_thread(assistant, settings.database_url, "keys", "create", "--brand", "nobody",
                                      "--scope", "ingest")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: no brand with slug 'nobody'"


def test_every_command_answers_help_in_a_real_process(settings: Settings) -> None:
    listed = assistant(settings.database_url, "--help")
    assert listed.returncode == 0
    for command in ("brands", "db", "demo", "import", "keys", "policy", "serve", "users", "webhooks", "worker"):
        assert f"  {command} " in listed.stdout, command
