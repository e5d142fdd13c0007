"""Drafting end to end: 2,000 waiting turns on a fresh SQLite file, one worker with 32 drafts in flight.

The fake model answers every request after a fixed second, in its own process, so the CPU time measured
here is the service's alone: reading the turn and history, rendering, the client, the policy check and
storing. The baseline is the ideal for that latency and bound, 32 drafts/s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from assistant.app import build_worker
from assistant.auth import service as auth
from assistant.db.migrate import upgrade
from assistant.mentions.service import ingest, validate
from assistant.services import Services
from assistant.settings import Settings
from bench.bench_drafting_client import _fake_model_process

TURNS = 2000
IN_FLIGHT = 32
MODEL_LATENCY_SECONDS = 1.0


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as folder, _fake_model_process(MODEL_LATENCY_SECONDS) as base_url:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        settings = Settings(database_url=url, llm_base_url=base_url, llm_model="bench-model",
                            llm_max_in_flight=IN_FLIGHT, worker_concurrency=IN_FLIGHT, job_lease_seconds=600)
        wall, cpu = asyncio.run(_draft_all(settings))
    ideal = IN_FLIGHT / MODEL_LATENCY_SECONDS
    return [
        f"{TURNS} turns, {IN_FLIGHT} in flight, model answers after {MODEL_LATENCY_SECONDS:g} s, SQLite",
        f"throughput: {TURNS / wall:6.2f} drafts/s   ideal {ideal:6.2f}/s ({wall:.1f} s against {TURNS / ideal:.1f} s)",
        f"service CPU per draft: {cpu / TURNS * 1000:.2f} ms",
    ]


async def _draft_all(settings: Settings) -> tuple[float, float]:
    """Wall and CPU seconds for the worker to draft every waiting turn."""
    state = Services.build(settings)
    worker = build_worker(state.db, settings)
    try:
        brand = await state.db.run_write(auth.create_brand, "bench", "Bench")
        start = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
        mentions = [validate({"platform": "x", "external_id": str(n), "text": f"@bench where is order {n}?",
                              "created_at": (start + dt.timedelta(seconds=n)).isoformat(),
                              "author": {"handle": f"@person{n}", "display_name": f"Person {n}"}})
                    for n in range(TURNS)]
        for first in range(0, TURNS, 500):
            await ingest(state.db, brand.id, mentions[first:first + 500])
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        await worker.run_until_idle(timeout=TURNS)
        return time.perf_counter() - wall_started, time.process_time() - cpu_started
    finally:
        await worker.aclose()
        await state.db.dispose()


if __name__ == "__main__":
    print("\n".join(run()))
