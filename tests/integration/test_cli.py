"""The command line as an operator uses it: a real process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from litestar.testing import AsyncTestClient

from assistant.auth.secrets import hash_secret
from assistant.db import Database
from assistant.db.tenancy import ApiKey, User
from sqlalchemy import select


def assistant(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.fixture
def cli(settings):  # type: ignore[no-untyped-def]
    return lambda *args, stdin=None: assistant(settings.database_url, *args, stdin=stdin)


async def test_brand_key_user_and_token_from_the_command_line(cli, db: Database, client: AsyncTestClient) -> None:  # type: ignore[no-untyped-def]
    assert cli("brands", "create", "acme", "--name", "Acme").returncode == 0
    made = cli("keys", "create", "--brand", "acme", "--scope", "ingest", "--scope", "read")
    assert made.returncode == 0
    key = made.stdout.strip()
    assert key.startswith("ak_") and "not shown again" in made.stderr
    async with db.read() as session:
        stored = (await session.execute(select(ApiKey))).scalar_one()
    assert stored.secret_hash == hash_secret(key) and key not in (stored.prefix, stored.secret_hash)
    assert sorted(stored.scopes) == ["ingest", "read"]

    user = cli("users", "create", "Ana@Acme.example", "--role", "admin", "--password-stdin",
               stdin="a long enough password\n")
    assert user.returncode == 0, user.stderr
    async with db.read() as session:
        row = (await session.execute(select(User))).scalar_one()
    assert row.email == "ana@acme.example" and row.password_hash.startswith("$argon2id$")
    token = cli("users", "token", "ana@acme.example").stdout.strip()
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
def test_bad_input_gets_a_one_line_message_and_exit_code(cli, args, stdin, message) -> None:  # type: ignore[no-untyped-def]
    cli("brands", "create", "acme", "--name", "Acme")
    result = cli(*args, stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_brand_with_the_same_slug_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("brands", "create", "acme", "--name", "Acme").returncode == 0
    again = cli("brands", "create", "acme", "--name", "Acme again")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_a_brand_gets_its_policy_from_a_file_and_a_broken_file_changes_nothing(cli, tmp_path, repo_root) -> None:  # type: ignore[no-untyped-def]
    good = repo_root / "examples" / "policies" / "acme.toml"
    made = cli("brands", "create", "acme", "--name", "Acme", "--policy", str(good))
    assert made.returncode == 0, made.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('[rules]\nmax_emojis = "two"\n')
    refused = cli("brands", "set-policy", "acme", str(broken))
    assert refused.returncode == 1
    assert "broken.toml:2: rules.max_emojis" in refused.stderr
    replaced = cli("brands", "set-policy", "acme", str(repo_root / "assistant" / "policy" / "demo_policy.toml"))
    assert replaced.returncode == 0 and "policy of acme set" in replaced.stdout
