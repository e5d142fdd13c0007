"""The service as a wheel: built from ``pyproject.toml``, installed into a clean virtual environment, run from
a directory that is not the checkout. Proves the wheel carries everything the service reads at run time
(the model's prompts, the migrations, the page templates) and nothing is found by accident in the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from assistant.model.local_model import free_port
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv holding the wheel and its pinned dependencies; returns its ``bin`` folder."""
    repo_root = Path(__file__).resolve().parents[2]
    work = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", repo_root, cwd=work)
    [wheel] = (work / "dist").glob("reply_assistant-*.whl")
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    bin_dir = work / "venv" / "bin"
    run(bin_dir / "pip", "install", "-q", "--disable-pip-version-check", "--constraint",
        repo_root / "requirements.lock", wheel, cwd=work)
    return bin_dir


@pytest.fixture
def elsewhere(tmp_path: Path, installed: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the checkout, and an environment naming only the installed service."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    env["ASSISTANT_DATABASE_URL"] = f"sqlite:///{folder / 'service.db'}"
    env["ASSISTANT_SECRET_KEY"] = "wheel-test-secret-key-not-for-production"
    return folder, env


def test_the_installed_command_answers_help_from_another_directory(elsewhere, installed) -> None:  # type: ignore[no-untyped-def]
    folder, env = elsewhere
    shown = run(installed / "assistant", "demo", "--help", cwd=folder, env=env)
    assert "Usage: assistant demo" in shown.stdout
    located = run(installed / "python", "-c", "import assistant; print(assistant.__file__)", cwd=folder, env=env)
    assert str(installed.parent) in located.stdout, "the test must exercise the installed copy, not the checkout"


def test_the_installed_service_drafts_a_reply_with_its_packaged_prompts(elsewhere, installed, fake_llm: FakeLLM) -> None:  # type: ignore[no-untyped-def]
    folder, env = elsewhere
    env |= {"ASSISTANT_LLM_BASE_URL": fake_llm.base_url, "ASSISTANT_LLM_MODEL": "fake-model",
            "ASSISTANT_LLM_API_KEY": "sk-test"}
    assistant = installed / "assistant"
    run(assistant, "db", "upgrade", cwd=folder, env=env)
    run(assistant, "brands", "create", "acme", "--name", "Acme", cwd=folder, env=env)
    key = run(assistant, "keys", "create", "--brand", "acme", "--scope", "ingest", "--scope", "read",
              cwd=folder, env=env).stdout.strip()
    port = free_port()
    server = subprocess.Popen([str(assistant), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=folder,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_ready(base, server)
        accepted = _call(base, "POST", "/api/v1/mentions", key, {
            "platform": "x", "external_id": "1", "text": "@acme my order never arrived",
            "created_at": "2026-11-30T09:00:00Z", "author": {"handle": "@miriam", "display_name": "Miriam"}})
        mention = _wait_for(lambda: _call(base, "GET", f"/api/v1/mentions/{accepted['id']}", key),
                            lambda m: m["turn"]["status"] == "pending_review")
        assert mention["turn"]["id"] == accepted["turn_id"]
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    [asked] = fake_llm.requests
    prompt = json.dumps(asked.json)
    assert "my order never arrived" in prompt and "Miriam" in prompt, "the packaged templates rendered the mention"
    assert "Traceback" not in output


def _call(base: str, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _wait_until_ready(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"serve exited: {server.communicate()[0][-3000:]}"
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("the installed service did not become ready in 60 s")


def _wait_for(read, done, seconds: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            assert done(value), value
            return value
        time.sleep(0.1)
