"""Operators' endpoints: liveness, readiness, and Prometheus metrics read from the database."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated, Any

from litestar import Controller, MediaType, Response, get
from litestar.params import HeaderParameter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Connection, func, select

from assistant.db.jobs import Job
from assistant.db.migrate import current_revision, head_revision
from assistant.db.outbox import Reply
from assistant.db.turns import Turn
from assistant.errors import Unauthorized
from assistant.services import Services


class _Snapshot:
    """A one-off collector holding the figures read for this scrape."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return iter(self.families)


class OpsController(Controller):
    tags = ["operations"]
    include_in_schema = True

    @get("/healthz", operation_id="healthz", summary="The process is alive")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", operation_id="readyz", summary="The database answers and its schema is current")
    async def readyz(self, services: Services) -> Response[dict[str, str]]:
        try:
            current = await services.db.run_read(current_revision)
        except Exception:
            return Response({"status": "unavailable", "detail": "database unreachable"}, status_code=503)
        head = head_revision(services.db.url)
        if current != head:
            return Response({"status": "unavailable", "detail": f"schema at {current}, code expects {head}; "
                             "run `assistant db upgrade`"}, status_code=503)
        return Response({"status": "ready"}, status_code=200)

    @get("/metrics", operation_id="metrics", media_type=MediaType.TEXT, summary="Prometheus text format",
         description="With the `metrics_token` setting, only `Authorization: Bearer <metrics_token>` may read it.")
    async def metrics(self, services: Services,
                      authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None
                      ) -> Response[bytes]:
        expected = services.settings.metrics_token
        if expected and not hmac.compare_digest((authorization or "").encode(), f"Bearer {expected}".encode()):
            raise Unauthorized("Send Authorization: Bearer <metrics token>")
        families = []
        by_status, oldest = await services.db.run_read(_gauges)
        for (name, doc), counts in zip(_GAUGES, by_status):
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, count in counts:
                family.add_metric([status], count)
            families.append(family)
        waiting = GaugeMetricFamily("assistant_oldest_pending_review_timestamp_seconds",
                                    "When the longest-waiting person in the queue started waiting")
        waiting.add_metric([], oldest.timestamp() if oldest else 0)
        families.append(waiting)
        registry = CollectorRegistry()
        registry.register(_Snapshot(families))  # type: ignore[arg-type]
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


_GAUGES = (("assistant_turns", "Turns by status"), ("assistant_jobs", "Background jobs by status"),
           ("assistant_replies", "Outbox replies by status"))


def _gauges(conn: Connection) -> tuple[list[list[Any]], dt.datetime | None]:
    """Turns, jobs and replies by status (in ``_GAUGES`` order), and when the longest wait began."""
    by_status = [list(conn.execute(select(model.status, func.count()).group_by(model.status)).all())
                 for model in (Turn, Job, Reply)]
    oldest = conn.execute(select(func.min(Turn.waiting_since)).where(Turn.status == "pending_review")).scalar()
    return by_status, oldest
