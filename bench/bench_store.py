"""Ingest as the store grows (issue 14): single mentions through the real server (one ``serve --no-worker``, wrk
32 connections) on stores of 0, 1M and 10M interactions (``BENCH_STORE_SIZES=0,1000000,10000000`` chooses),
on SQLite and, with ``BENCH_DATABASE_URL``, PostgreSQL. The stores come from ``bench/stores.py``: built once
(minutes for 10M) and kept, each run on a copy.

Two streams per store: the ingest bench's own (1,000 authors new to the store: its writes land at the ends of
the indexes) and, on a store that has people, mentions by the store's people at random (their handle, open turn
and history index entries lie anywhere in the store: the pages a large store cannot keep in memory). Each figure
stands beside the empty store's and the bare Litestar echo of the same run, with the server's CPU time per
mention (less disturbed by a busy machine than the rate) and the load average. Targets: p99 <= 50 ms at 10M,
throughput not more than 10% below the empty store's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import httpx

from bench.bench_ingest import (DURATION, assistant_server, batch_bodies, brand_key, cpu_seconds, echo_server,
                                load_line, wrk)
from bench.databases import BENCH_DATABASE_URL, PG_ONLY, Engine, analyze, backend_pids
from bench.stores import Prepared, prepared, size_label

SIZES = [int(n) for n in os.environ.get("BENCH_STORE_SIZES", "0,1000000,10000000").split(",") if n.strip()]
P99_TARGET_MS = 50.0
RATE_TARGET = 0.9


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


Figures = tuple[float, float, float, int, float, float | None]
"""mentions/s, p50 ms, p99 ms, errors, the server's CPU ms per mention, PostgreSQL's CPU ms per mention (None:
SQLite, or a server on another machine)."""


def _measure(port: int, pid: int, token: str, workdir: Path, authors: int, engine: Engine) -> Figures:
    """One wrk run. PostgreSQL's CPU is that of the backends serving the database at the end of the run (the
    service's pool), each counted from the start of the run or from its own start within it."""
    before = cpu_seconds(pid)
    backends_before = {each: cpu_seconds(each) for each in backend_pids(engine)}
    rate, p50, p99, errors = wrk(port, "/api/v1/mentions", token, workdir, authors=authors)
    mentions = max(rate * DURATION, 1)
    cpu = (cpu_seconds(pid) - before) / mentions * 1000
    backends = backend_pids(engine)
    database = (sum(cpu_seconds(each) - backends_before.get(each, 0.0) for each in backends) / mentions * 1000
                if backends else None)
    return rate, p50, p99, errors, cpu, database


def _line(label: str, figures: Figures, empty: float | None, echo: float) -> str:
    rate, p50, p99, errors, cpu, database = figures
    against = f"{rate / empty:.0%} of the empty store's, " if empty else ""
    database_cpu = "" if database is None else f", {database:.2f} ms PostgreSQL CPU"
    met = p99 <= P99_TARGET_MS and (empty is None or rate >= RATE_TARGET * empty)
    verdict = (f"  [target p99 <= {P99_TARGET_MS:.0f} ms, >= {RATE_TARGET:.0%} of the empty store's: "
               f"{'met' if met else 'MISSED'}]")
    return (f"{label}: {rate:,.0f} mentions/s ({against}{rate / echo:.0%} of the echo), p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, {cpu:.2f} ms server CPU{database_cpu} per mention, non-2xx/errors {errors}, "
            f"{_load()}{verdict}")


def _describe(copy: Prepared) -> str:
    store = copy.store
    how = "kept from an earlier run" if copy.built_seconds is None else f"built in {copy.built_seconds:.0f} s, kept"
    return (f"{copy.engine.name}, store of {store.interactions:,} interactions over {store.people:,} people: "
            f"{copy.bytes / 1e9:.2f} GB on disk, {how if store.interactions else 'migrated'}")


def run() -> Iterator[str]:
    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        workdir = Path(tmp)
        with echo_server(workdir) as echo_port:
            echo = wrk(echo_port, "/echo", "none", workdir)[0]
        yield f"baseline: bare Litestar JSON echo, 1 process, wrk 32 conn {DURATION}s: {echo:,.0f} req/s, {_load()}"
        kinds = ([] if PG_ONLY and BENCH_DATABASE_URL else [True]) + ([False] if BENCH_DATABASE_URL else [])
        for sqlite in kinds:
            empty: float | None = None
            for size in SIZES:
                copy = prepared(sqlite, size, workdir)
                yield _describe(copy)
                token = brand_key(copy.engine.url)
                with assistant_server(copy.engine.url) as (port, proc):  # a first batch, then planner statistics
                    httpx.post(f"http://127.0.0.1:{port}/api/v1/mentions/batch", timeout=120,
                               content=batch_bodies(1, run="first-")[0],
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                analyze(copy.engine)
                name = f"{copy.engine.name}, {size_label(size)} store, 1 serve --no-worker, wrk 32 conn {DURATION}s"
                with assistant_server(copy.engine.url) as (port, proc):
                    figures = _measure(port, proc.pid, token, workdir, 0, copy.engine)
                    yield _line(f"{name}, 1,000 new authors", figures, empty, echo)
                    if size == 0:
                        empty = figures[0]
                    if copy.store.people:
                        yield _line(f"{name}, authors among the store's {copy.store.people:,} people",
                                    _measure(port, proc.pid, token, workdir, copy.store.people, copy.engine),
                                    empty, echo)
                if sqlite:  # the copy of a 10M store takes gigabytes
                    for path in workdir.glob(Path(copy.engine.url.split("///", 1)[1]).name + "*"):
                        path.unlink()
    yield load_line(started_load)


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
