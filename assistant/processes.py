"""``serve --workers N``: N server processes accepting on one port.

The parent binds the port (``SO_REUSEPORT``) and forks the servers, each listening on a socket of its own bound
to the same port; the kernel hands each new connection to one of them, spread by the connection's addresses.
Reads (history, pages) then run on as many cores as there are processes, also on SQLite, whose WAL lets
readers in every process go on while one writes. Writes stay serialised by the database: on SQLite each
process queues its own writes and takes the file's write lock with ``BEGIN IMMEDIATE`` (a process finding it
taken waits in a thread, never in its event loop). A server that dies is started again; SIGTERM or SIGINT
to the parent stops them all.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

log = logging.getLogger("assistant.processes")

QUICK_FAILURE_SECONDS = 3.0
REQUEST_LOGGERS = ("httpx", "httpx2")
"""The HTTP clients (webhook deliveries; the model client's, which openai bundles) log a line per request at
INFO that names the whole URL."""
YOUNG_OBJECTS_PER_COLLECTION = 50_000
"""Python's default (700) ran the cycle collector 52 times per 1,000 single mentions and 23 times per
1,000-mention batch, each time walking the objects of every request in flight: 18 µs per single mention, 7 µs
per batched one (3-5% of the server's CPU). At 50,000 it does not run in a 10-second benchmark; what it would
find between runs is bounded by that count (a few MB)."""


def collect_rarely() -> None:
    """Tune the cycle collector for a long-running process, once its code and app are loaded: what is alive now
    (modules, the app, mapped tables: 200,000 objects) is frozen out of every later full collection, and young
    objects are collected after ``YOUNG_OBJECTS_PER_COLLECTION`` instead of 700. Almost everything a request
    makes is freed by its reference count; the collector only finds cycles."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_PER_COLLECTION, *gc.get_threshold()[1:])


def quiet_request_logs() -> None:
    """Keep the HTTP clients' line per request out of every process's log: a webhook's URL often carries its
    secret in its path or query (a Slack webhook's path is one), and a model's base URL may carry a password.
    Their warnings stay; the deliverer and the model client log their own failures without the URL, and
    uvicorn's access log is off for the same reason of volume."""
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _port_socket(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    """A socket bound to the port with ``SO_REUSEPORT``: each server listens on one of its own, and the kernel
    spreads new connections over them by their addresses. On one shared listening socket, whichever process
    woke first accepted a burst of connections: wrk's 32 split 28/4 or 20/12 between two servers, and the
    busier one's queue made the p99."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_forked(count: int, host: str, port: int, serve: Callable[[int, socket.socket], None]) -> None:
    """Run ``serve(index, listening_socket)`` in ``count`` forked processes until told to stop."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _port_socket(family, host, port)  # holds the port (and finds it taken) before any server starts
    port = sock.getsockname()[1]
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, when it started)
    stopping = False
    failed = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                sock.close()
                own = _port_socket(family, host, port)
                own.listen(2048)
                serve(index, own)
            except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
                log.exception("server process %d failed", index)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        start(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        child = children.pop(pid, None)
        if child is None or stopping:
            continue
        index, started = child
        if time.monotonic() - started < QUICK_FAILURE_SECONDS:  # it cannot start: starting it again won't help
            log.error("server process %d ended right after starting (status %d); stopping", index, status)
            failed = True
            stop(signal.SIGTERM, None)
            continue
        log.warning("server process %d (pid %d) ended with status %d; starting it again", index, pid, status)
        start(index)
    sock.close()
    if failed:
        raise SystemExit(1)
