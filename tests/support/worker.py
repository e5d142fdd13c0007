"""Running the job worker in a test the way ``serve`` and ``worker`` run it (``assistant.app.build_worker``)."""

from __future__ import annotations

from assistant.app import build_worker
from assistant.services import Services
from assistant.settings import Settings


async def drain(state: Services) -> None:
    """Run a worker built the way ``serve`` and ``worker`` build it until no job is left."""
    worker = build_worker(state.db, state.settings)
    try:
        await worker.run_until_idle(timeout=30)
    finally:
        await worker.aclose()


async def drain_with(settings: Settings) -> None:
    """``drain`` with services of its own built from ``settings`` (a test's changed ones), closed after."""
    state = Services.build(settings)
    try:
        await drain(state)
    finally:
        await state.db.dispose()
