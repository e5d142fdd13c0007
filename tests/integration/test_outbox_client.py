"""The example scheduling tool against a real server: claim, post to its stand-in, confirm; renew the lease
while it works, and never post or confirm under a claim that is no longer its own."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from assistant.db.outbox import Reply
from assistant.outbox.service import token_digest
from assistant.model.local_model import free_port
from tests.support.db import execute, rows
from tests.support.outbox_helpers import approved_replies, reply_row


@pytest.fixture
def server(settings, repo_root) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """``assistant serve`` in its own process on the test database, and the environment to run the example."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATABASE_URL"] = settings.database_url
    env["ASSISTANT_SECRET_KEY"] = settings.secret_key
    process = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--no-worker", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base_url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield {"url": base_url, "env": env, "script": repo_root / "examples" / "scheduler_client.py"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_client(server: dict[str, Any], key: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(server["script"]), "--base-url", server["url"], "--once", *args],
                          env=server["env"] | {"REPLY_ASSISTANT_KEY": key["Authorization"].split()[1]},
                          capture_output=True, text=True, timeout=120)


def example(server: dict[str, Any]) -> ModuleType:
    spec = importlib.util.spec_from_file_location("scheduler_client", server["script"])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def platform_posts(posted_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in posted_file.read_text().splitlines()] if posted_file.exists() else []


async def test_the_example_client_posts_and_confirms_every_approved_reply(server, db, factory, tmp_path):
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 3)
    posted_file = tmp_path / "posted.ndjson"
    run = run_client(server, kit.outbox, "--limit", "2", "--posted-file", str(posted_file))
    assert run.returncode == 0, run.stderr
    lines = platform_posts(posted_file)
    assert len(lines) == 3 and run.stdout.count("posted reply") == 3
    replies = await rows(db, select(Reply).order_by(Reply.id))
    assert [r.id for r in replies] == ids and {r.status for r in replies} == {"posted"}
    assert sorted(r.external_post_id for r in replies) == sorted(line["post_id"] for line in lines)


async def test_the_example_client_renews_its_lease_while_a_slow_batch_is_posted(server, db, factory, tmp_path):
    """Two posts of 2.5 s each under a 5 s lease: the second is confirmed after the first lease would have
    ended, so without renewal the confirmation is refused and the reply goes out a second time."""
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 2)
    posted_file = tmp_path / "posted.ndjson"
    run = run_client(server, kit.outbox, "--limit", "2", "--lease-seconds", "5", "--platform-delay", "2.5",
                     "--posted-file", str(posted_file))
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout.count("posted reply") == 2
    lines = platform_posts(posted_file)
    assert sorted(line["to"] for line in lines) == ["person0", "person1"], "each reply posted exactly once"
    assert {(await reply_row(db, reply_id)).status for reply_id in ids} == {"posted"}


async def test_the_example_client_does_not_post_under_a_claim_it_lost_or_let_run_out(server, db, factory,
                                                                                      tmp_path, capsys):
    kit = await factory.brand()
    first, second = await approved_replies(db, kit, 2)
    client_module = example(server)
    posted_file = tmp_path / "posted.ndjson"
    with httpx.Client(base_url=server["url"], headers=kit.outbox, timeout=30) as http:
        sent_at = time.monotonic()
        items = http.post("/api/v1/replies/claim", json={"limit": 2, "lease_seconds": 60}).json()["items"]
        lost, run_out = (client_module.Claim(item, 60, sent_at) for item in items)

        # The first one: its lease ended while the tool was stalled, and another tool claimed it.
        await execute(db, update(Reply).where(Reply.id == first).values(
            lease_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        [taken] = http.post("/api/v1/replies/claim", json={"limit": 1, "lease_seconds": 60}).json()["items"]
        assert taken["id"] == first
        lost.renew(http, 60)
        client_module.post_under(http, lost, 60, posted_file, 0.0)

        # The second one: this machine's view of its lease ran out (renewals failed), so it is not posted.
        run_out.deadline = time.monotonic() + 10
        client_module.post_under(http, run_out, 60, posted_file, 0.0)

    assert platform_posts(posted_file) == []
    assert capsys.readouterr().err.count("not posting it") == 2
    held = await reply_row(db, first)
    assert (held.status, held.claim_token_hash) == ("claimed", token_digest(taken["claim_token"]))
    assert (await reply_row(db, second)).status == "claimed"
