"""The real local model end to end: a mention in through the API, a draft from SmolLM2 through the drafting path
(hygiene included), a reviewer's approval, the outbox claim and the posted confirmation; and ``assistant eval``
over more than 20 real-looking conversations with its report and gates.

What a 135M model writes is not predictable, so these tests check what the product promises about any draft
(it is the model's, non-empty, not an echo left unflagged, checked against the policy), not its wording.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, Row, select

from assistant.app import build_worker
from assistant.cli import main
from assistant.db.turns import Draft, Turn
from assistant.drafting import hygiene
from assistant.model.local_model import MODEL_NAME, LocalModelServer, settings_for
from assistant.eval import hostile
from assistant.eval.report import REPORT_HTML, REPORT_JSON
from assistant.services import Services
from assistant.settings import Settings, get_settings
from tests.support.eval_data import write_csv
from tests.support.factories import Factory, mention

pytestmark = pytest.mark.local_model


async def test_a_mention_gets_a_real_draft_that_a_reviewer_approves_and_a_tool_posts(
        settings: Settings, local_model_url: str, client, factory: Factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    accepted = await client.post("/api/v1/mentions", headers=kit.ingest, json=mention(
        handle="@miriam", text="@acme my flat white was stone cold this morning, second time this week"))
    assert accepted.status_code == 202, accepted.text
    turn_id = accepted.json()["turn_id"]

    def look(conn: Connection) -> tuple[Row[Any], Row[Any] | None]:
        turn = conn.execute(select(Turn).where(Turn.id == turn_id)).one()
        return turn, conn.execute(select(Draft).where(Draft.id == turn.current_draft_id)).first()

    state = Services.build(settings_for(settings, local_model_url))
    worker = build_worker(state.db, state.settings, concurrency=1)
    try:
        await worker.run_until_idle(timeout=600)
        turn, draft = await state.db.run_read(look)
    finally:
        await worker.aclose()
        await state.db.dispose()

    assert turn.status == "pending_review" and draft is not None
    assert draft.source == "model", draft.error
    assert draft.model and draft.text.strip() and draft.completion_tokens and draft.latency_ms
    assert "<<<" not in draft.text or hygiene.ECHO in [f["kind"] for f in draft.flags]

    approved = await client.post(f"/api/v1/turns/{turn_id}/approve", headers=kit.reviewer,
                                 json={"draft_id": draft.id, "text": "Hi Miriam, sorry! Next one is on us."})
    assert approved.status_code == 200, approved.text
    [item] = (await client.post("/api/v1/replies/claim", headers=kit.outbox,
                                json={"limit": 1, "lease_seconds": 60})).json()["items"]
    confirmation = {"external_id": "post-1", "claim_token": item["claim_token"]}
    posted = await client.post(f"/api/v1/replies/{item['id']}/posted", headers=kit.outbox, json=confirmation)
    assert posted.status_code == 200, posted.text
    assert posted.json()["status"] == "posted"


def test_an_eval_of_more_than_20_conversations_with_the_real_model(settings: Settings, tmp_path: Path,
                                                                    local_model_installed: None) -> None:
    dataset = write_csv(tmp_path / "tweets.csv", 22)
    out = tmp_path / "run"

    get_settings.cache_clear()
    try:  # --local-model: the operator's way, which starts (and stops) its own server for the run
        done = CliRunner().invoke(main, ["eval", "run", str(dataset), "--out", str(out), "--local-model",
                                         "--concurrency", "2", "--gate", "errors<=0,chrf>=99"],
                                  env={"ASSISTANT_DATABASE_URL": settings.database_url}, catch_exceptions=False)
    finally:
        get_settings.cache_clear()

    assert done.exit_code == 1, done.output  # a human's exact words are beyond any model: that gate must fail
    assert "gate failed: chrf>=99" in done.output and "gate failed: errors" not in done.output
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["counts"]["cases"] == 22 and report["counts"]["errors"] == 0
    assert report["counts"]["drafted"] + report["counts"]["escalated"] + report["counts"]["skipped"] == 22
    assert report["counts"]["hostile"] == len(hostile.PROBES)
    measures = report["measures"]
    assert measures["fallback"] < 0.5, "the real model answered most cases"
    assert measures["latency_p50"] > 0 and measures["tokens_out"] > 0 and measures["chrf"] > 0
    assert report["run"]["model"] == MODEL_NAME
    assert [g["passed"] for g in report["gates"]] == [True, False]
    html = (out / REPORT_HTML).read_text()
    assert "<svg" in html and not re.search(r"""(?:src|href)=["']?https?:""", html)
    cases = [json.loads(line) for line in (out / "cases.ndjson").read_text().splitlines()]
    echoed = [c for c in cases if c.get("draft") and "<<<MENTION" in c["draft"]]
    assert all(hygiene.ECHO in c["flags"] for c in echoed), "an echo reached the report unflagged"


def test_the_server_starts_on_a_free_port_and_stops_with_its_owner(local_model_installed: None) -> None:
    with LocalModelServer() as server:
        port = server.port
        process = server._process
        assert process is not None and process.poll() is None
    assert process.poll() is not None and server._process is None
    assert port > 0
