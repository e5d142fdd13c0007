"""Operators' endpoints: liveness, readiness, and Prometheus metrics read from the database."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from assistant.db.jobs import Job
from assistant.db.migrate import current_revision, head_revision
from assistant.db.outbox import Reply
from assistant.db.turns import Turn
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
            async with services.db.read() as session:
                await session.execute(text("SELECT 1"))
            current = await current_revision(services.db.read_engine)
        except Exception:
            return Response({"status": "unavailable", "detail": "database unreachable"}, status_code=503)
        head = head_revision(services.db.url)
        if current != head:
            return Response({"status": "unavailable", "detail": f"schema at {current}, code expects {head}; "
                             "run `assistant db upgrade`"}, status_code=503)
        return Response({"status": "ready"}, status_code=200)

    @get("/metrics", operation_id="metrics", media_type=MediaType.TEXT, summary="Prometheus text format")
    async def metrics(self, services: Services) -> Response[bytes]:
        families = []
        async with services.db.read() as session:
            for name, model, doc in (("assistant_turns", Turn, "Turns by status"),
                                     ("assistant_jobs", Job, "Background jobs by status"),
                                     ("assistant_replies", Reply, "Outbox replies by status")):
                family = GaugeMetricFamily(name, doc, labels=["status"])
                for status, count in await session.execute(select(model.status, func.count()).group_by(model.status)):
                    family.add_metric([status], count)
                families.append(family)
            oldest = await session.scalar(select(func.min(Turn.waiting_since)).where(Turn.status == "pending_review"))
        waiting = GaugeMetricFamily("assistant_oldest_pending_review_timestamp_seconds",
                                    "When the longest-waiting person in the queue started waiting")
        waiting.add_metric([], oldest.timestamp() if oldest else 0)
        families.append(waiting)
        registry = CollectorRegistry()
        registry.register(_Snapshot(families))  # type: ignore[arg-type]
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
