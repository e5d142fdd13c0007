"""The live queue: a server-sent event stream per open queue page that says when the brand's queue changed.

The page answers each event by re-reading its own server-rendered list (``refresh()`` in ``app.js``), so the
stream carries only a mark and the counts, never a turn. Changes come from any process sharing the database, so
each stream asks the database every ``live_check_seconds`` (``review.live.queue_mark``: one index read) and
sends only when the mark moved, with a comment every ``HEARTBEAT_SECONDS`` so proxies keep the connection.

A process keeps at most ``live_streams_max`` streams (past it: 503, and the page polls); a stream ends after
``live_stream_seconds`` (the browser reconnects), when its viewer is signed out, and at once when the server
shuts down: uvicorn waits for every open response before it stops, so ``app.uvicorn_server`` calls ``stop()``
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.response import ServerSentEventMessage
from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from assistant.db.tenancy import User
from assistant.review import service as review
from assistant.review.live import queue_mark
from assistant.services import Services

log = logging.getLogger("assistant")
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000
"""How long the browser waits before it reconnects a stream that ended."""
STATE_KEY = "live_streams"


class LiveStreams:
    """The open streams of one app (one process), and the signal that ends them all."""

    def __init__(self) -> None:
        self.open = 0
        self._stopping = asyncio.Event()

    def full(self, limit: int) -> bool:
        return self.open >= limit

    def stop(self) -> None:
        """End every stream at its next step (the server is shutting down)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the server shuts down meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def queue_events(self, services: Services, brand_id: int, user_id: int, session_version: int, *,
                           cap: int) -> AsyncIterator[ServerSentEventMessage]:
        """The stream of one page: a ``queue`` event now and on every change of the brand's queue, with the
        counts of each view up to ``cap + 1`` (as the page's header)."""
        settings = services.settings
        if self.full(settings.live_streams_max) or self.stopping:
            return  # several opened at once past the check in the handler: the browser retries later
        self.open += 1
        try:
            ends = time.monotonic() + settings.live_stream_seconds
            sent_mark, sent_at = None, time.monotonic()
            while not self.stopping and time.monotonic() < ends:
                mark = await services.db.run_read(_mark_for_viewer, brand_id, user_id, session_version)
                if mark is None:
                    return  # signed out, disabled or the password changed: the page's next read says so
                if mark != sent_mark:
                    counts = await review.queue_counts(services.db, brand_id, cap=cap)
                    body = {"version": mark, "waiting": counts["pending_review"], "escalated": counts["escalated"]}
                    yield ServerSentEventMessage(event="queue", data=json.dumps(body),
                                                 retry=RETRY_MS if sent_mark is None else None)
                    sent_mark, sent_at = mark, time.monotonic()
                elif time.monotonic() - sent_at >= HEARTBEAT_SECONDS:
                    yield ServerSentEventMessage(comment="still here")
                    sent_at = time.monotonic()
                await self.pause(settings.live_check_seconds)
        except SQLAlchemyError as exc:  # the database is away for a moment: the browser reconnects
            log.warning("live queue stream ended: %s", type(exc).__name__)
        finally:
            self.open -= 1


def _mark_for_viewer(conn: Connection, brand_id: int, user_id: int, session_version: int) -> str | None:
    """The brand's queue mark while the viewer is still signed in (same check as every page), else None."""
    user = conn.execute(select(User.disabled, User.session_version, User.brand_id).where(User.id == user_id)).first()
    if user is None or user.disabled or user.session_version != session_version or user.brand_id != brand_id:
        return None
    return queue_mark(conn, brand_id)


def live_streams(app: Litestar) -> LiveStreams:
    """The app's streams (made by ``WebPlugin``)."""
    streams: Any = app.state[STATE_KEY]
    return streams  # type: ignore[no-any-return]


__all__ = ["LiveStreams", "live_streams"]
