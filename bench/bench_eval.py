"""``assistant eval`` throughput: with the scripted model (its own process, answering after 1 s) at 32 requests
in flight (``--concurrency 32``), against the ideal of 32 cases/s; and with the packaged local model (when the ``local`` extra is
installed), drafts per second and seconds per draft on this machine.

A case costs more than a live draft: its own brand, its history imported, its mention ingested, the draft,
then the measures (chrF among them), all in the eval's scratch SQLite database. ``python -m bench eval``;
``python -m bench.bench_eval --local-only`` runs only the local-model part.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from assistant.model import local_model
from assistant.eval import hostile, runner
from assistant.settings import Settings
from bench.bench_drafting_client import _fake_model_process
from tests.support.eval_data import write_csv

CASES = 600
IN_FLIGHT = 32
MODEL_LATENCY_SECONDS = 1.0
LOCAL_CASES = 20


def run() -> list[str]:
    return scripted() + local()


def scripted() -> list[str]:
    with tempfile.TemporaryDirectory() as folder, _fake_model_process(MODEL_LATENCY_SECONDS) as base_url:
        dataset = write_csv(Path(folder) / "tweets.csv", CASES - len(hostile.PROBES))
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(folder) / 'unused.db'}", llm_base_url=base_url,
                            llm_model="bench-model", llm_timeout_seconds=60.0, job_lease_seconds=600)
        wall, cpu, outcome = _timed(settings, dataset, Path(folder) / "out", IN_FLIGHT)
    ideal = IN_FLIGHT / MODEL_LATENCY_SECONDS
    rate = outcome.ran / wall
    return [
        f"{outcome.ran} cases ({len(hostile.PROBES)} hostile), {IN_FLIGHT} in flight, model answers after "
        f"{MODEL_LATENCY_SECONDS:g} s, scratch SQLite; load average {_load()}",
        f"throughput: {rate:6.2f} cases/s   ideal {ideal:6.2f}/s ({rate / ideal:.0%} of ideal; "
        f"{wall:.1f} s against {outcome.ran / ideal:.1f} s)",
        f"eval CPU per case: {cpu / outcome.ran * 1000:.1f} ms (seeding, drafting, measuring, writing)",
    ]


def local() -> list[str]:
    if not local_model.installed():
        return ["local model: not installed (make local-model), skipped"]
    with tempfile.TemporaryDirectory() as folder, local_model.LocalModelServer() as server:
        dataset = write_csv(Path(folder) / "tweets.csv", LOCAL_CASES)
        base = Settings(database_url=f"sqlite+aiosqlite:///{Path(folder) / 'unused.db'}")
        settings = local_model.settings_for(base, server.base_url)
        wall, _, outcome = _timed(settings, dataset, Path(folder) / "out", 1)
    calls = sum(r.get("attempts") or 0 for r in outcome.results)
    drafted = [r for r in outcome.results if r.get("outcome") == "drafted" and not r.get("fallback")]
    latencies = sorted(r["latency_ms"] for r in drafted if r.get("latency_ms"))
    tokens = sum(r.get("completion_tokens") or 0 for r in drafted)
    model_seconds = sum(latencies) / 1000
    return [
        f"local model {local_model.MODEL_NAME} (llama.cpp, 1 thread), {outcome.ran} cases one at a "
        f"time; load average {_load()}",
        f"drafts: {outcome.ran / wall:.3f} drafts/s, {wall / outcome.ran:.2f} s per draft "
        f"({calls} model calls: redrafts included)",
        f"model calls: median {latencies[len(latencies) // 2] / 1000 if latencies else 0:.2f} s, "
        f"{tokens / model_seconds if model_seconds else 0:.1f} completion tokens/s",
    ]


def _timed(settings: Settings, dataset: Path, out: Path, concurrency: int) -> tuple[float, float, runner.Outcome]:
    options = runner.Options(dataset=dataset, out=out, concurrency=concurrency)
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    outcome = asyncio.run(runner.run(settings, options))
    return time.perf_counter() - wall_started, time.process_time() - cpu_started, outcome


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


if __name__ == "__main__":
    print("\n".join(local() if "--local-only" in sys.argv else run()))
