"""A soak test with faults, on PostgreSQL, bounded in time, loopback only (issue 14).

``BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_NAME .venv/bin/python -m bench.soak``
(a database ``bench_NAME_soak`` is dropped and created for it). Options: ``--seconds`` (arrivals, default
120), ``--rate`` (mentions/s, default 10), ``--no-pg-restart``.

Two ``serve --no-worker`` and two ``worker`` processes run against one PostgreSQL; the scripted model
(``tests/support/fake_llm.py`` as its own process) answers after 0.2 s and fails every 7th call. Mentions
arrive at a steady rate (a client retries on a refused connection or a 5xx, against the other server, as a
scheduling tool would); a reviewer approves through the API; three outbox clients claim, "post" (a line in
their platform log) and confirm. During the run one serve and one worker are killed with SIGKILL and started
again, and PostgreSQL is restarted once (this disturbs every database on the cluster for a few seconds).
After the arrivals stop, everything drains, then the database is checked: every acknowledged mention stored
once, every turn drafted, every approved reply posted exactly once, no turn or job stuck (a job still queued or
running when the drain time runs out fails the run).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from assistant.model.local_model import free_port
from bench.bench_ingest import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]
DRAIN_SECONDS = 240


class Processes:
    """The service's processes, each startable again after a kill."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, list[str]] = {}

    def start(self, name: str, args: list[str] | None = None) -> None:
        if args is not None:
            self.args[name] = args
        log = open(self.logs / f"{name}.log", "ab")
        self.running[name] = subprocess.Popen([sys.executable, "-m", "assistant", *self.args[name]], cwd=ROOT,
                                              env=self.env, stdout=log, stderr=log)

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait()

    def peak_rss_mb(self) -> dict[str, float]:
        """Each running process's peak resident memory (``VmHWM``); a process started again counts from then."""
        return {name: peak_rss_mb(process.pid) for name, process in self.running.items()}

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_up(client: httpx.AsyncClient, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url + "/healthz", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def setup(url: str) -> dict[str, str]:
    from assistant.auth import service as auth
    from assistant.db import Database

    db = Database(url)
    try:
        def make(conn):  # type: ignore[no-untyped-def]
            brand = auth.create_brand(conn, "soak", "Soak")
            keys = {scope: auth.create_api_key(conn, brand.id, [scope]).token for scope in ("ingest", "outbox", "read")}
            reviewer = auth.create_user(conn, brand.id, "reviewer@soak.example", "reviewer", "soak reviewer password")
            keys["reviewer"] = auth.create_user_token(conn, reviewer).token
            return keys

        return await db.run_write(make)
    finally:
        await db.dispose()


class Soak:
    def __init__(self, urls: list[str], keys: dict[str, str], rate: float) -> None:
        self.urls, self.keys, self.rate = urls, keys, rate
        self.acknowledged: dict[str, int] = {}  # external_id -> mention id
        self.latencies: list[float] = []
        self.retries = 0
        self.unacknowledged = 0
        self.posted_log: collections.Counter[int] = collections.Counter()  # reply id -> times posted
        self.approved: set[int] = set()
        self.review_conflicts = 0
        self.arriving = True
        self.draining = True
        self.events: list[str] = []
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        self.events.append(f"t={time.monotonic() - self.started:6.1f}s {text}")
        print(self.events[-1], flush=True)

    async def call(self, client: httpx.AsyncClient, method: str, path: str, key: str, start: int = 0,
                   attempts: int = 60, **kwargs: Any) -> httpx.Response | None:
        """One request, retried on a refused connection, a timeout or a 5xx, alternating servers."""
        for attempt in range(attempts):
            base = self.urls[(start + attempt) % len(self.urls)]
            try:
                answer = await client.request(method, base + path, headers={"Authorization": f"Bearer {key}"},
                                              timeout=10, **kwargs)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code < 500:
                return answer
            if attempt:
                self.retries += 1
            await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
        return None

    async def arrivals(self, client: httpx.AsyncClient) -> None:
        n = 0
        pending: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while self.arriving:
            n += 1
            task = asyncio.create_task(self.send(client, n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += 1 / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*pending)

    async def send(self, client: httpx.AsyncClient, n: int) -> None:
        external_id = f"soak-{n}"
        body = {"platform": "x", "external_id": external_id, "text": f"@soak where is order {n}?",
                "created_at": "2026-11-30T09:00:00Z",
                "author": {"handle": f"@person{n % 400}", "display_name": f"Person {n % 400}"}}
        started = time.monotonic()
        answer = await self.call(client, "POST", "/api/v1/mentions", self.keys["ingest"], start=n, json=body)
        if answer is not None and answer.status_code in (200, 202):
            self.acknowledged[external_id] = answer.json()["id"]
            self.latencies.append(time.monotonic() - started)
        else:
            self.unacknowledged += 1

    async def reviewer(self, client: httpx.AsyncClient) -> None:
        while self.draining:
            page = await self.call(client, "GET", "/api/v1/turns?status=pending_review&limit=50",
                                   self.keys["reviewer"])
            items = page.json()["items"] if page is not None and page.status_code == 200 else []
            for turn in items:
                draft = turn.get("current_draft")
                if draft is None:
                    continue
                answer = await self.call(client, "POST", f"/api/v1/turns/{turn['id']}/approve",
                                         self.keys["reviewer"], json={"draft_id": draft["id"]})
                if answer is not None and answer.status_code == 200:
                    self.approved.add(turn["id"])
                elif answer is not None and answer.status_code == 422:  # the policy refused it: a human rejects
                    await self.call(client, "POST", f"/api/v1/turns/{turn['id']}/reject", self.keys["reviewer"],
                                    json={"reason": "off policy"})
                else:
                    self.review_conflicts += 1
            if not items:
                await asyncio.sleep(0.5)

    async def outbox_client(self, client: httpx.AsyncClient, number: int) -> None:
        while self.draining:
            answer = await self.call(client, "POST", "/api/v1/replies/claim", self.keys["outbox"], start=number,
                                     json={"limit": 20, "lease_seconds": 60})
            items = answer.json()["items"] if answer is not None and answer.status_code == 200 else []
            for item in items:
                # As the example client does: post only under a claim the service just renewed (SPEC 12).
                renewed = await self.call(client, "POST", f"/api/v1/replies/{item['id']}/renew", self.keys["outbox"],
                                          start=number, json={"claim_token": item["claim_token"], "lease_seconds": 60})
                if renewed is None or renewed.status_code != 200:
                    self.note(f"outbox client {number}: reply {item['id']} not posted: the claim is no longer ours")
                    continue
                self.posted_log[item["id"]] += 1  # posted to the platform
                body = {"external_id": f"post-{item['id']}-{number}", "claim_token": item["claim_token"]}
                confirmed = await self.call(client, "POST", f"/api/v1/replies/{item['id']}/posted",
                                            self.keys["outbox"], start=number, attempts=600, json=body)
                if confirmed is None or confirmed.status_code != 200:
                    self.note(f"outbox client {number}: reply {item['id']} not confirmed: "
                              f"{confirmed.status_code if confirmed else 'no answer'}")
            if not items:
                await asyncio.sleep(0.5)


async def check(url: str, soak: Soak) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        stored = collections.Counter(r["external_id"] for r in await conn.fetch(
            "SELECT external_id FROM interactions WHERE direction = 'inbound'"))
        turns = await conn.fetch("SELECT t.id, t.status, t.current_draft_id FROM turns t")
        replies = await conn.fetch("SELECT id, status FROM replies")
        jobs = await conn.fetch("SELECT kind, status FROM jobs WHERE status NOT IN ('done', 'failed', 'dead')")
    finally:
        await conn.close()
    lost = [e for e in soak.acknowledged if stored[e] == 0]
    duplicated = [e for e, times in stored.items() if times > 1]
    open_states = {"drafting", "pending_review"}
    stuck_turns = [t["id"] for t in turns if t["status"] in open_states]
    undrafted = [t["id"] for t in turns if t["current_draft_id"] is None and t["status"] not in ("skipped",)]
    unposted = [r["id"] for r in replies if r["status"] != "posted"]
    posted_twice = [rid for rid, times in soak.posted_log.items() if times > 1]
    return {"acknowledged": len(soak.acknowledged), "unacknowledged (client gave up)": soak.unacknowledged,
            "lost": len(lost), "duplicated": len(duplicated), "turns": len(turns),
            "stuck turns (drafting or waiting for review at the end)": len(stuck_turns),
            "turns never drafted": len(undrafted), "replies approved": len(replies),
            "replies not posted": len(unposted), "replies posted twice": len(posted_twice),
            "jobs not finished": len(jobs), "client retries": soak.retries,
            "review conflicts": soak.review_conflicts}


def prepare() -> tuple[str, dict[str, str]]:
    """A fresh, migrated database with a brand, its keys and a reviewer's token."""
    from assistant.db.migrate import upgrade
    from bench.databases import BENCH_DATABASE_URL, fresh_postgres

    if not BENCH_DATABASE_URL.startswith("postgres"):
        raise SystemExit("set BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_NAME")
    url = fresh_postgres(BENCH_DATABASE_URL + "_soak")
    upgrade(url)
    return url, asyncio.run(setup(url))


async def main(url: str, keys: dict[str, str], seconds: float, rate: float, restart_pg: bool) -> int:
    load_start = os.getloadavg()
    logs = Path(os.environ.get("SOAK_LOGS", "/tmp")) / f"soak-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    model = subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm", "--delay", "0.2", "--fail-every", "7"],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert model.stdout is not None
    model_url = model.stdout.readline().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_DATABASE_URL=url, ASSISTANT_LLM_BASE_URL=model_url, ASSISTANT_LLM_MODEL="soak-model",
               ASSISTANT_LLM_API_KEY="soak", ASSISTANT_RATE_LIMIT_PER_MINUTE="10000000",
               ASSISTANT_SECRET_KEY="soak-secret-key-not-for-production",
               ASSISTANT_JOB_LEASE_SECONDS="15", ASSISTANT_LLM_TIMEOUT_SECONDS="5", PYTHONPATH=str(ROOT))
    processes = Processes(env, logs)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    for n, port in enumerate(ports):
        processes.start(f"serve{n}", ["serve", "--no-worker", "--port", str(port)])
    for n in range(2):
        processes.start(f"worker{n}", ["worker", "--concurrency", "16"])
    soak = Soak(urls, keys, rate)
    memory: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:
            for base in urls:
                await wait_up(client, base)
            soak.started = time.monotonic()
            soak.note(f"arrivals start: {rate:g} mentions/s for {seconds:g} s")
            tasks = [asyncio.create_task(soak.arrivals(client)), asyncio.create_task(soak.reviewer(client))]
            tasks += [asyncio.create_task(soak.outbox_client(client, n)) for n in range(3)]

            async def kill_and_start_again(name: str, why: str = "") -> None:
                processes.kill(name)
                soak.note(f"kill -9 {name}{why}")
                await asyncio.sleep(2)
                processes.start(name)
                soak.note(f"{name} started again")

            async def faults() -> None:
                await asyncio.sleep(seconds * 0.25)
                await kill_and_start_again("serve0")
                await asyncio.sleep(seconds * 0.2)
                await kill_and_start_again("worker0", " (its leased jobs come back after the 15 s lease)")
                if restart_pg:
                    await asyncio.sleep(seconds * 0.2)
                    soak.note("PostgreSQL restart begins")
                    await asyncio.to_thread(subprocess.run, PG_CLUSTER + ["restart"], check=True)
                    soak.note("PostgreSQL restarted")

            fault_task = asyncio.create_task(faults())
            await asyncio.sleep(seconds)
            soak.arriving = False
            await tasks[0]
            await fault_task
            soak.note(f"arrivals stopped; {len(soak.acknowledged)} acknowledged; draining")
            deadline = time.monotonic() + DRAIN_SECONDS
            while time.monotonic() < deadline:
                counts = await check(url.replace("+asyncpg", ""), soak)
                if not counts["stuck turns (drafting or waiting for review at the end)"] \
                        and not counts["replies not posted"] and not counts["jobs not finished"]:
                    break  # the jobs too: an approval just before queues a promise reading the worker has not run
                await asyncio.sleep(2)
            soak.note("drained" if time.monotonic() < deadline else "drain time ran out")
            soak.draining = False
            await asyncio.gather(*tasks[1:])
            memory = processes.peak_rss_mb()
    finally:
        processes.stop_all()
        model.terminate()
        model.wait(10)
    counts = await check(url.replace("+asyncpg", ""), soak)
    latencies = sorted(soak.latencies)
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    end = os.getloadavg()
    print(f"soak on PostgreSQL: 2 serve --no-worker + 2 worker, model 0.2 s failing every 7th call, "
          f"{rate:g} mentions/s for {seconds:g} s, 3 outbox clients, 1 reviewer")
    for line in soak.events:
        print("  " + line)
    for name, value in counts.items():
        print(f"{name}: {value}")
    print(f"ingest latency as the client saw it (retries included): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print("peak RSS at the end (VmHWM; serve0 and worker0 since they were started again): "
          + ", ".join(f"{name} {mb:.0f} MB" for name, mb in memory.items()))
    print(f"machine load average (1/5/15 min): {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f} at the "
          f"start, {end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f} at the end, {os.cpu_count()} cores; logs in {logs}")
    bad = counts["lost"] + counts["duplicated"] + counts["replies posted twice"] + counts["replies not posted"] \
        + counts["stuck turns (drafting or waiting for review at the end)"] + counts["turns never drafted"] \
        + counts["jobs not finished"]
    print("RESULT: " + ("every acknowledged mention stored once, every turn drafted, every approved reply posted "
                        "exactly once, nothing stuck" if not bad else "FAILED (see the counts above)"))
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--no-pg-restart", action="store_true")
    options = parser.parse_args()
    database_url, api_keys = prepare()
    sys.exit(asyncio.run(main(database_url, api_keys, options.seconds, options.rate, not options.no_pg_restart)))
