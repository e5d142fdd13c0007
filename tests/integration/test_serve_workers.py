"""``serve --workers N`` (issue 14): several server processes on one port, on SQLite as on PostgreSQL. Writes
from every process land exactly once, reads answer from all of them, a killed server process is started
again, and stopping the parent stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from assistant.db import Database
from assistant.db.people import Interaction
from assistant.settings import Settings
from assistant.model.local_model import free_port
from tests.support.db import scalar
from tests.support.factories import Factory, mention


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


async def wait_until(check, timeout: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.fixture
def server(settings: Settings):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_DATABASE_URL=settings.database_url, ASSISTANT_SECRET_KEY=settings.secret_key,
               ASSISTANT_RATE_LIMIT_PER_MINUTE="1000000")
    process = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--workers", "2", "--no-worker",
                                "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait(10)


async def test_two_server_processes_share_one_port_and_store_every_mention_once(
        server, db: Database, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    process, base_url = server
    kit = await factory.brand("acme")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def up() -> bool:
            assert process.poll() is None, process.stderr.read().decode()  # a server that exits says why
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up)
        assert len(children_of(process.pid)) == 2

        async def send(n: int) -> int:
            # a fresh connection each, so the kernel spreads them over both processes
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as own:
                answer = await own.post("/api/v1/mentions", json=mention(f"w{n % 150}", handle=f"@p{n % 25}"),
                                        headers=kit.ingest)
                assert answer.status_code in (200, 202), answer.text  # 200: a duplicate, with the first's id
                return answer.json()["id"]

        ids = await asyncio.gather(*(send(n) for n in range(300)))  # every mention sent twice
        assert len(set(ids)) == 150
        assert await scalar(db, select(func.count()).select_from(Interaction)) == 150

        victim = children_of(process.pid)[0]
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            now = children_of(process.pid)
            return len(now) == 2 and victim not in now

        await wait_until(replaced)
        await wait_until(up)
        answer = await client.get(f"/api/v1/mentions/{ids[0]}", headers=kit.read)
        assert answer.status_code == 200

    workers = children_of(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
