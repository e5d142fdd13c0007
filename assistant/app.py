"""``create_app()``: the only place the Litestar application is built. Tests build it the same way.

The app's state holds the shared parts every controller reaches through ``state``: ``settings``, ``db``,
``authenticator``, ``rate_limiter``, ``ingestor``, ``counters``, and the ``worker`` when one runs in-process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path
from litestar.openapi.spec import Components, SecurityScheme

from assistant.auth.guards import RateLimiter
from assistant.auth.service import Authenticator
from assistant.db import Database
from assistant.jobs.worker import Worker
from assistant.memory.controllers import MemoryController
from assistant.mentions.controllers import MentionController
from assistant.mentions.service import ingestor
from assistant.ops import OpsController
from assistant.outbox.controllers import ReplyController
from assistant.outbox.service import confirmer
from assistant.people.controllers import PeopleController
from assistant.people.import_controller import HistoryImportController
from assistant.problems import handle_exception
from assistant.promises.controllers import PromiseController
from assistant.review.controllers import TurnController
from assistant.snippets.controllers import SnippetController

DOCS_ASSETS = "/schema-assets"
"""Swagger UI's script and styles, served from the swagger-ui-bundle package: the docs page works offline."""
docs_assets = create_static_files_router(path=DOCS_ASSETS, directories=[Path(str(swagger_ui_path))],
                                         name="docs-assets", include_in_schema=False)
from assistant.settings import Settings, get_settings
from assistant.web.plugin import WebPlugin

log = logging.getLogger("assistant")


def shared_state(settings: Settings) -> State:
    """The parts shared by the web app and a standalone worker process."""
    db = Database(settings.database_url)
    return State({
        "settings": settings,
        "db": db,
        "authenticator": Authenticator(db),
        "rate_limiter": RateLimiter(settings.rate_limit_per_minute),
        "ingestor": ingestor(db),
        "confirmer": confirmer(db),
        "counters": Counter(),
        "worker": None,
    })


def create_app(settings: Settings | None = None, *, run_worker: bool = False) -> Litestar:
    settings = settings or get_settings()
    state = shared_state(settings)
    db = state.db

    async def freeze_startup_objects(app: Litestar) -> None:
        """Move everything made at import and start-up out of the garbage collector's sight: full collections
        over those objects paused request handling for 100+ ms (the ingest p99)."""
        gc.freeze()

    async def start_worker(app: Litestar) -> None:
        if run_worker:
            from assistant.jobs.handlers import build_worker

            worker = build_worker(app.state)
            app.state.worker = worker
            app.state.worker_task = asyncio.create_task(worker.run())

    async def stop(app: Litestar) -> None:
        worker: Worker | None = app.state.worker
        if worker is not None:
            worker.stop()
            await app.state.worker_task
        await db.dispose()

    return Litestar(
        route_handlers=[docs_assets, MentionController, PeopleController, HistoryImportController, OpsController, TurnController, ReplyController,
                        PromiseController, MemoryController, SnippetController],
        plugins=[WebPlugin()],
        state=state,
        exception_handlers={Exception: handle_exception},
        request_max_body_size=settings.max_body_bytes,
        on_startup=[freeze_startup_objects, start_worker],
        on_shutdown=[stop],
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


def app_factory() -> Litestar:
    """For ``uvicorn --factory assistant.app:app_factory``."""
    return create_app(run_worker=True)


__all__ = ["create_app", "app_factory"]
