"""The one wiring place: ``create_app()`` builds the Litestar application and ``build_worker()`` the worker
that runs the background jobs (in the app's process, or alone: ``assistant worker``). Tests build both the same
way.

Handlers get the shared parts (settings, database, authenticator, rate limiter) as one typed ``Services``
dependency; the in-process worker and the database's engines live exactly as long as the app (``lifespan``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from assistant.auth.controllers import ReviewerTokenController
from assistant.db import Database
from assistant.http import AssistantRequest, PathIdRangeMiddleware
from assistant.drafting.service import Drafter
from assistant.jobs import queue
from assistant.jobs.worker import Handler, Worker
from assistant.memory.approvals import READ_PROMISES
from assistant.memory.controllers import MemoryController
from assistant.memory.jobs import MemoryJobs
from assistant.model.client import LazyModelClient
from assistant.mentions.controllers import MentionController
from assistant.openapi import publish_complete_document
from assistant.ops import OpsController
from assistant.outbox.controllers import ReplyController
from assistant.people.controllers import PeopleController
from assistant.people.import_controller import HistoryImportController
from assistant.problems import handle_exception
from assistant.promises.controllers import PromiseController
from assistant.review import presence
from assistant.review.controllers import TurnController
from assistant.services import APP_STATE_KEY, Services
from assistant.settings import Settings, get_settings
from assistant.snippets.controllers import SnippetController
from assistant.web.live import live_streams
from assistant.web.plugin import WebPlugin
from assistant.web.render import error_page
from assistant.webhooks.delivery import WebhookSender

log = logging.getLogger("assistant")

DOCS_ASSETS = "/schema-assets"
"""Swagger UI's script and styles, served from the swagger-ui-bundle package: the docs page works offline."""
docs_assets = create_static_files_router(path=DOCS_ASSETS, directories=[Path(str(swagger_ui_path))],
                                         name="docs-assets", include_in_schema=False)


def build_worker(db: Database, settings: Settings, *, concurrency: int | None = None) -> Worker:
    """The worker, with the code that runs each kind of job."""
    model = LazyModelClient(settings)
    drafter = Drafter(db, settings, being_edited=presence.being_edited, model=model)
    memory = MemoryJobs(db, settings, model)
    handlers: dict[str, Handler] = {queue.DRAFT_TURN: drafter.draft_turn,
                                    queue.REDRAFT_FALLBACK: drafter.redraft_fallback,
                                    queue.DELIVER_WEBHOOK: WebhookSender(db, settings).deliver,
                                    READ_PROMISES: memory.read_promises}
    return Worker(db, handlers, concurrency=concurrency or settings.worker_concurrency,
                  lease_seconds=settings.job_lease_seconds, poll_seconds=settings.job_poll_seconds,
                  closers=[model.aclose], sweeps=[memory.sweep],
                  sweep_seconds=settings.memory_sweep_seconds)


def _handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Problem details for API clients, the HTML error page for a person's browser."""
    return handle_exception(request, exc, error_page=error_page)


def create_app(settings: Settings | None = None, *, run_worker: bool = False) -> Litestar:
    services = Services.build(settings or get_settings())
    settings = services.settings

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        """Runs the worker (if asked) while the app serves, and closes the database's engines after."""
        # Everything made at import and start-up leaves the garbage collector's sight: full collections over
        # those objects paused request handling for 100+ ms (the ingest p99).
        gc.freeze()
        worker = build_worker(services.db, settings) if run_worker else None
        task = asyncio.create_task(worker.run()) if worker is not None else None
        try:
            yield
        finally:
            if worker is not None and task is not None:
                worker.stop()
                await task
            await services.db.dispose()

    app = Litestar(
        route_handlers=[docs_assets, MentionController, PeopleController, HistoryImportController, OpsController, TurnController, ReplyController,
                        PromiseController, MemoryController, SnippetController, ReviewerTokenController],
        plugins=[WebPlugin()],
        state=State({APP_STATE_KEY: services}),
        dependencies={"services": services.provide()},
        exception_handlers={Exception: _handle_exception},
        request_class=AssistantRequest,
        middleware=[PathIdRangeMiddleware],
        request_max_body_size=settings.max_body_bytes,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Reply assistant API", version="1.0.0", path="/schema",
            description="Mentions in, people and their history out, approved replies to post. "
                        "Authenticate with `Authorization: Bearer <token>`. Errors are RFC 9457 problem details.",
            render_plugins=[SwaggerRenderPlugin(js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                                                favicon=f"<link rel='icon' href='{DOCS_ASSETS}/favicon-32x32.png'>")],
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"bearer": []}],
        ),
        debug=settings.debug,
        logging_config=None,
    )
    publish_complete_document(app)
    return app


def serve_app(settings: Settings, host: str, port: int, *, run_worker: bool, workers: int = 1) -> None:
    """Serve the app with uvicorn (uvloop, httptools) until the process is stopped: ``assistant serve``. With
    ``workers`` > 1, that many forked server processes share the port (``assistant/processes.py``); the first
    runs the worker when ``run_worker``."""
    if workers == 1:
        _serve_one(settings, None, host, port, run_worker=run_worker)
        return
    from assistant.processes import serve_forked

    serve_forked(workers, host, port,
                 lambda index, sock: _serve_one(settings, sock, host, port, run_worker=run_worker and index == 0))


def _serve_one(settings: Settings, sock: object, host: str, port: int, *, run_worker: bool) -> None:
    """One server process; with ``sock`` (a listening socket shared by several processes), it serves that."""
    import socket

    from assistant.processes import collect_rarely

    server = uvicorn_server(create_app(settings, run_worker=run_worker), host=host, port=port, loop="uvloop",
                            http="httptools", log_level="warning", access_log=False)
    collect_rarely()
    server.run(sockets=[sock] if isinstance(sock, socket.socket) else None)


def uvicorn_server(app: Litestar, **config: Any) -> Any:
    """A uvicorn server for ``app`` that ends the live-queue streams as its shutdown begins: uvicorn waits for
    every open response before it stops, and a stream would otherwise hold it for minutes."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            live_streams(app).stop()
            await super().shutdown(sockets)

    return Server(uvicorn.Config(app, **config))


def app_factory() -> Litestar:
    """For ``uvicorn --factory assistant.app:app_factory``."""
    from assistant.processes import quiet_request_logs

    quiet_request_logs()
    settings = get_settings()
    settings.require_secret_key()
    return create_app(settings, run_worker=True)


__all__ = ["app_factory", "build_worker", "create_app", "serve_app", "uvicorn_server"]
