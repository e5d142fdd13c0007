"""The app as ``assistant serve`` builds it (``uvicorn_server``), in a uvicorn thread with its own event loop, on
a free loopback port: for the browser tests and the tests of the live queue's event stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from assistant.app import create_app, uvicorn_server
from assistant.model.local_model import free_port
from assistant.settings import Settings


@dataclass(frozen=True)
class Served:
    server: Any
    thread: threading.Thread
    base: str


@contextmanager
def served_app(settings: Settings) -> Iterator[Served]:
    port = free_port()
    server = uvicorn_server(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield Served(server, thread, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=20)
