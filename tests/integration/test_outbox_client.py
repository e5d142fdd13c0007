"""The example scheduling tool against a real server: claim, post to its stand-in, confirm."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
from sqlalchemy import select

from assistant.db.outbox import Reply
from tests.support.outbox_helpers import approved_replies


async def test_the_example_client_posts_and_confirms_every_approved_reply(settings, db, factory, repo_root, tmp_path):
    kit = await factory.brand()
    ids = await approved_replies(db, kit, 3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATABASE_URL"] = settings.database_url
    env["ASSISTANT_SECRET_KEY"] = settings.secret_key
    server = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--no-worker", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base_url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        posted_file = tmp_path / "posted.ndjson"
        run = subprocess.run([sys.executable, str(repo_root / "examples" / "scheduler_client.py"), "--base-url",
                              base_url, "--once", "--limit", "2", "--posted-file", str(posted_file)],
                             env=env | {"REPLY_ASSISTANT_KEY": kit.outbox["Authorization"].split()[1]},
                             capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in posted_file.read_text().splitlines()]
    assert len(lines) == 3 and run.stdout.count("posted reply") == 3
    async with db.read() as session:
        replies = list((await session.execute(select(Reply).order_by(Reply.id))).scalars())
    assert [r.id for r in replies] == ids and {r.status for r in replies} == {"posted"}
    assert sorted(r.external_post_id for r in replies) == sorted(line["post_id"] for line in lines)
