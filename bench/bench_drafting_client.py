"""The model client under load: does it keep ``llm_max_in_flight`` requests busy, and what does a call cost us?

The fake model answers every request after a fixed second, in its own process so its threads do not
count towards the client's CPU time. The baseline is the ideal throughput for that latency and bound:
``in_flight / latency`` completions per second, measured here as N over the ideal wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from assistant.model.client import ModelClient
from assistant.settings import Settings

COMPLETIONS = 320
IN_FLIGHT = 32
MODEL_LATENCY_SECONDS = 1.0
MESSAGES = [{"role": "system", "content": "You draft replies."},
            {"role": "user", "content": "Person: Miriam Okafor (@miri)\n<<<MENTION\nwhere is my order\n>>>"}]


def run() -> list[str]:
    with _fake_model_process(MODEL_LATENCY_SECONDS) as base_url:
        settings = Settings(llm_base_url=base_url, llm_model="bench-model", llm_max_in_flight=IN_FLIGHT,
                            llm_timeout_seconds=30.0)
        wall, cpu, attempts = asyncio.run(_complete_all(settings))
    ideal_wall = COMPLETIONS / IN_FLIGHT * MODEL_LATENCY_SECONDS
    return [
        f"{COMPLETIONS} completions, {IN_FLIGHT} in flight, model answers after {MODEL_LATENCY_SECONDS:g} s",
        f"throughput: {COMPLETIONS / wall:6.2f} completions/s   ideal {COMPLETIONS / ideal_wall:6.2f}/s "
        f"({wall:.2f} s against {ideal_wall:.2f} s)",
        f"client CPU per call: {cpu / COMPLETIONS * 1000:.2f} ms   attempts: {attempts} for {COMPLETIONS} calls",
    ]


async def _complete_all(settings: Settings) -> tuple[float, float, int]:
    """Wall seconds, client CPU seconds and attempts for all completions through one client."""
    client = ModelClient(settings)
    try:
        await client.complete(MESSAGES)  # connect and import lazily before the clock starts
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(client.complete(MESSAGES) for _ in range(COMPLETIONS)))
        return (time.perf_counter() - wall_started, time.process_time() - cpu_started,
                sum(result.attempts for result in results))
    finally:
        await client.aclose()


@contextlib.contextmanager
def _fake_model_process(delay: float) -> Iterator[str]:
    """``tests.support.fake_llm`` as a child process answering after ``delay``; yields its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm", "--delay", str(delay)],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    print("\n".join(run()))
