"""The test model: a real HTTP server speaking the OpenAI chat-completions protocol.

It is a server rather than a mock so the real ``openai`` client, its timeouts and our tenacity retries are
exercised end to end. Tests script it with ``enqueue(Response(...))`` (consumed in order, then
``default``) and read back what it was asked from ``requests``.

Use it as the ``fake_llm`` pytest fixture, as ``with FakeLLM() as llm:``, or as its own process
(``python -m tests.support.fake_llm --delay 1.0`` prints its base URL), so a benchmark can measure the
client's CPU time without the server's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HANG_SECONDS = 3600.0
"""Long enough to outlast any client timeout; ``stop()`` releases the waiting threads early."""

_PERSON_LINE = re.compile(r"^Person: (?P<name>.+?)(?: \(|$)", re.MULTILINE)
"""The line ``prompts/draft_reply.user.j2`` names the person on, so default replies are personal."""


@dataclass(frozen=True)
class Response:
    """One scripted behaviour of the fake model."""

    text: str | Callable[[dict[str, Any]], str] | None = None
    """The reply text, or a function of the request body; ``None`` greets the person the prompt names."""
    delay: float = 0.0
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | dict[str, Any] | None = None
    """Sent instead of a chat completion: raw bytes as they are, a dict as JSON."""
    finish_reason: str = "stop"
    """``length`` plays a model cut off at its token limit."""

    @classmethod
    def hang(cls) -> Response:
        return cls(delay=HANG_SECONDS)

    @classmethod
    def garbage(cls, content_type: str = "application/json") -> Response:
        return cls(body=b"<html>502 Bad Gateway</html>", headers={"Content-Type": content_type})

    @classmethod
    def no_choices(cls) -> Response:
        return cls(body={"id": "chatcmpl-empty", "object": "chat.completion", "created": 0,
                         "model": "fake-model", "choices": []})


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    json: Any
    at: float
    """``time.monotonic()`` when the request arrived."""


class FakeLLM:
    """A chat-completions server on 127.0.0.1 and a free port, served from daemon threads."""

    def __init__(self, default: Response | None = None) -> None:
        self.default = default or Response()
        self._script: deque[Response] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self.peak_in_flight = 0
        """The most requests the server was answering at one time."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake model first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def enqueue(self, *responses: Response) -> None:
        with self._lock:
            self._script.extend(responses)

    def start(self) -> FakeLLM:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _receive(self, request: RecordedRequest) -> Response:
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return self._script.popleft() if self._script else self.default

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    """The default backlog of 5 drops connections when a client opens dozens at once."""


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real model servers do

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            request_json = json.loads(raw or b"null")
            behaviour = fake._receive(RecordedRequest(
                path=self.path, headers={k.lower(): v for k, v in self.headers.items()},
                json=request_json, at=time.monotonic()))
            try:
                if behaviour.delay and fake._stopping.wait(behaviour.delay):
                    self.close_connection = True
                    return
                self._send(behaviour.status, _body(behaviour, request_json), behaviour.headers)
            finally:
                fake._done()

        def _send(self, status: int, body: bytes | dict[str, Any], headers: Mapping[str, str]) -> None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                if not any(name.lower() == "content-type" for name in headers):
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (its timeout) and closed the connection
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``fake.requests`` instead."""

    return Handler


def _body(behaviour: Response, request_json: Any) -> bytes | dict[str, Any]:
    if behaviour.body is not None:
        return behaviour.body
    if behaviour.status >= 400:
        return {"error": {"message": f"fake model answered {behaviour.status}", "type": "fake_error"}}
    text = behaviour.text(request_json) if callable(behaviour.text) else behaviour.text
    if text is None:
        text = default_reply(request_json)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request_json.get("messages", []))
    completion_tokens = len(text.split())
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request_json.get("model") or "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": behaviour.finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def default_reply(request_json: dict[str, Any]) -> str:
    """A short reply that greets the person the last user message names, so tests can see it is theirs."""
    user_messages = [m for m in request_json.get("messages", []) if m.get("role") == "user"]
    found = _PERSON_LINE.search(str(user_messages[-1].get("content", ""))) if user_messages else None
    name = found["name"].strip() if found else "there"
    return f"Hi {name}, thanks for telling us. We are looking into it now."


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A fresh fake model per test, so one test's script never leaks into the next."""
    with FakeLLM() as fake:
        yield fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--fail-every", type=int, default=0, help="answer 500 to every Nth request (0: never)")
    args = parser.parse_args()
    fake = FakeLLM(Response(delay=args.delay))
    if args.fail_every > 0:  # a model that fails now and then (the soak test)
        scripted, counter = fake._receive, itertools.count(1)

        def failing(request: RecordedRequest) -> Response:
            answer = scripted(request)
            return Response(status=500, delay=args.delay) if next(counter) % args.fail_every == 0 else answer

        fake._receive = failing  # type: ignore[method-assign]
    fake.start()
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
