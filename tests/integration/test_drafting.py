"""Drafting through the whole path: a mention in through the API, the worker until idle, the turn in review.

The model is the fake chat-completions server; what it was asked (``fake_llm.requests``) is how these tests
see the prompts, so every assertion about a prompt is about what really went over the wire.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection, Row, insert, select, update

from assistant.app import build_worker, create_app
from assistant.auth.principal import Principal
from assistant.db import Database
from assistant.db.audit import AuditEvent
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.db.people import Interaction, Person
from assistant.db.tenancy import Brand
from assistant.db.turns import Decision, Draft, Turn
from assistant.drafting.prompts import FALLBACK_TEMPLATE, SYSTEM_TEMPLATE, USER_TEMPLATE
from assistant.model.templates import template_hash
from assistant.drafting.service import Drafter, request_regenerate
from assistant.errors import Conflict, NotFound, ValidationFailed
from assistant.jobs import queue
from assistant.policy import load_policy
from assistant.policy.service import set_brand_policy
from assistant.review import presence
from assistant.services import Services
from assistant.settings import Settings
from tests.support.db import execute, first_row, rows, scalar, scalars
from tests.support.factories import BrandKit, Factory, mention
from tests.support.fake_llm import FakeLLM, Response
from tests.support.worker import drain, drain_with

Client = AsyncTestClient[Litestar]

POLICY = """
[voice]
description = "Warm and plain."

[rules]
banned_phrases = ["valued customer"]

[[escalate]]
name = "legal"
patterns = ['(?i)\\b(lawyer|lawsuit|sue)\\b']

[opt_out]
patterns = ['(?i)leave me alone']
"""


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM) -> Settings:
    """The suite's settings with the fake model configured and a short timeout, so hangs are cheap."""
    return settings.replace(llm_base_url=fake_llm.base_url, llm_model="test", llm_timeout_seconds=0.5)


@pytest.fixture
def db(state: Services) -> Database:
    return state.db


@pytest.fixture
async def kit(factory: Factory, db: Database) -> BrandKit:
    kit = await factory.brand()
    await db.run_write(set_brand_policy, kit.id, POLICY)
    return kit


async def ingest(client: Client, kit: BrandKit, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/mentions", json=mention(**fields), headers=kit.ingest)
    assert response.status_code == 202, response.text
    return response.json()


async def turn_and_drafts(db: Database, turn_id: int) -> tuple[Row[Any], list[Row[Any]]]:
    def look(conn: Connection) -> tuple[Row[Any] | None, list[Row[Any]]]:
        return (conn.execute(select(Turn).where(Turn.id == turn_id)).first(),
                conn.execute(select(Draft).where(Draft.turn_id == turn_id).order_by(Draft.id)).all())
    turn, drafts = await db.run_read(look)
    assert turn is not None
    return turn, drafts


def current(turn: Row[Any], drafts: list[Row[Any]]) -> Row[Any]:
    """The turn's one current draft; fails unless exactly one draft is fresh and it is the current one."""
    fresh = [d for d in drafts if not d.stale]
    assert [d.id for d in fresh] == [turn.current_draft_id]
    return fresh[0]


def user_prompt(request: Any) -> str:
    return next(m["content"] for m in request.json["messages"] if m["role"] == "user")


def reviewer(kit: BrandKit) -> Principal:
    return Principal(kind="user", id=kit.reviewer_id, brand_id=kit.id, label=kit.reviewer_email, role="reviewer")


async def add_history(db: Database, kit: BrandKit, person_id: int, texts: list[str], *,
                      direction: str = "inbound") -> None:
    """Earlier messages of one person, an hour apart, oldest first (as an import would leave them)."""
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    await execute(db, *(insert(Interaction).values(
        brand_id=kit.id, person_id=person_id, direction=direction, platform="x",
        external_id=f"h-{person_id}-{direction}-{n}", text=text,
        occurred_at=start + dt.timedelta(hours=n), received_at=start + dt.timedelta(hours=n))
        for n, text in enumerate(texts)))


async def test_a_mention_gets_a_model_draft_for_its_person(client: Client, state: Services, kit: BrandKit,
                                                          fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit, handle="@Miriam", text="@acme where is order 4471?")

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert (turn.status, turn.version) == ("pending_review", 1)
    assert draft.text == "Hi Miriam, thanks for telling us. We are looking into it now."
    assert (draft.source, draft.model, draft.error, draft.guidance) == ("model", "test", None, None)
    assert draft.prompt_hash == template_hash(SYSTEM_TEMPLATE, USER_TEMPLATE)
    assert draft.policy_hash == load_policy(POLICY).hash
    assert (draft.attempts, draft.findings, draft.flags) == (1, [], [])
    assert draft.prompt_tokens and draft.completion_tokens and draft.latency_ms is not None
    assert draft.answers_through_id == accepted["id"]
    [request] = fake_llm.requests
    assert "<<<MENTION" in user_prompt(request) and "where is order 4471?" in user_prompt(request)
    job = await first_row(state.db, select(Job).where(Job.kind == queue.DRAFT_TURN))
    assert job is not None and job.status == "done"


@pytest.mark.parametrize("failure", [
    Response(status=500), Response(status=503), Response(status=429), Response.hang(), Response.garbage(),
    Response.no_choices(),
], ids=["500", "503", "429", "timeout", "garbage", "no-choices"])
async def test_a_model_failure_is_retried_and_the_draft_counts_the_attempts(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM, failure: Response) -> None:
    fake_llm.enqueue(failure)
    accepted = await ingest(client, kit)

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert (turn.status, draft.source, draft.attempts, draft.error) == ("pending_review", "model", 2, None)
    assert len(fake_llm.requests) == 2


async def test_a_model_that_stays_down_gives_a_labelled_fallback_draft(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    fake_llm.default = Response(status=500)
    accepted = await ingest(client, kit, handle="@ana")

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert (turn.status, draft.source, draft.model) == ("pending_review", "fallback", None)
    assert draft.error == "model answered 500 after 4 attempts"
    assert draft.attempts == 4 == len(fake_llm.requests)
    assert draft.prompt_hash == template_hash(FALLBACK_TEMPLATE)
    assert draft.text.startswith("Hi Ana, thank you for getting in touch.")


async def test_retry_after_is_waited_for(client: Client, kit: BrandKit, fake_llm: FakeLLM, settings: Settings) -> None:
    fake_llm.enqueue(Response(status=429, headers={"Retry-After": "1"}))
    await ingest(client, kit)
    await drain_with(settings.replace(llm_backoff_max_seconds=5.0))

    first, second = fake_llm.requests
    assert 0.95 <= second.at - first.at < 3.0


async def test_with_no_model_configured_every_turn_gets_a_fallback_draft_at_once(
        client: Client, kit: BrandKit, fake_llm: FakeLLM, settings: Settings, db: Database) -> None:
    accepted = await ingest(client, kit, handle="@ana")
    await drain_with(settings.replace(llm_base_url="", llm_model=""))

    turn, drafts = await turn_and_drafts(db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert (turn.status, draft.source, draft.error, draft.attempts) == ("pending_review", "fallback",
                                                                        "no model configured", 0)
    assert fake_llm.requests == []


async def test_a_reply_that_breaks_a_blocking_rule_is_redrafted_with_the_findings_as_feedback(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    fake_llm.enqueue(Response(text="Thank you, valued customer!"))
    accepted = await ingest(client, kit, handle="@ana")

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert draft.text == "Hi Ana, thanks for telling us. We are looking into it now."
    assert (draft.findings, draft.attempts) == ([], 2)
    first, second = fake_llm.requests
    assert "broke these rules" not in user_prompt(first)
    assert 'broke these rules of the brand; write a new one that does not:\n- Banned phrase "valued customer"' \
        in user_prompt(second)


SIGNED = POLICY.replace('description = "Warm and plain."', 'description = "Warm and plain."\nsign_off = "–{initials}"')


async def test_a_sign_off_with_initials_is_left_to_the_reviewer(client: Client, state: Services, kit: BrandKit,
                                                                 fake_llm: FakeLLM, settings: Settings) -> None:
    await state.db.run_write(set_brand_policy, kit.id, SIGNED)
    accepted = await ingest(client, kit, handle="@ana")
    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert draft.source == "model" and draft.findings == [] and len(fake_llm.requests) == 1  # no redraft for it
    system = next(m["content"] for m in fake_llm.requests[0].json["messages"] if m["role"] == "system")
    assert "the reviewer who approves the reply adds their own sign-off" in system and "{initials}" not in system
    assert "within 275 characters" in system  # 280 less " –MMM"

    other = await ingest(client, kit, handle="@bo")
    await drain_with(settings.replace(llm_base_url="", llm_model=""))
    turn, drafts = await turn_and_drafts(state.db, other["turn_id"])
    fallback = current(turn, drafts)
    assert fallback.source == "fallback" and "{initials}" not in fallback.text and "–" not in fallback.text
    assert fallback.findings == []


async def test_a_model_that_keeps_breaking_the_rules_goes_to_review_with_its_findings(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    fake_llm.default = Response(text="Thank you, valued customer!")
    accepted = await ingest(client, kit)

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert len(fake_llm.requests) == 1 + state.settings.policy_max_redrafts
    assert (turn.status, draft.source, draft.text) == ("pending_review", "model", "Thank you, valued customer!")
    assert [(f["rule"], f["severity"], f["start"], f["end"]) for f in draft.findings] == \
        [("banned_phrase", "block", 11, 26)]


async def test_an_escalating_mention_never_reaches_the_model(client: Client, state: Services, kit: BrandKit,
                                                             fake_llm: FakeLLM) -> None:
    legal = await ingest(client, kit, handle="@carol", text="@acme my lawyer will hear about this")
    ordinary = await ingest(client, kit, handle="@dan", text="@acme hello there")

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, legal["turn_id"])
    assert (turn.status, turn.escalation_rule, turn.current_draft_id, drafts) == ("escalated", "legal", None, [])
    [request] = fake_llm.requests
    assert "hello there" in user_prompt(request) and "lawyer" not in user_prompt(request)
    assert (await turn_and_drafts(state.db, ordinary["turn_id"]))[0].status == "pending_review"
    actions = await scalars(state.db, select(AuditEvent.action).where(
        AuditEvent.subject_id == legal["turn_id"], AuditEvent.subject_type == "turn"))
    assert actions == ["turn.escalated"]


async def test_a_person_who_asks_us_to_stop_is_marked_do_not_reply_and_skipped(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit, handle="@erin", text="@acme just leave me alone")

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    assert (turn.status, drafts, fake_llm.requests) == ("skipped", [], [])
    person = await first_row(state.db, select(Person).where(Person.id == accepted["person_id"]))
    assert person is not None and person.do_not_reply


async def test_a_person_already_marked_do_not_reply_is_skipped(client: Client, state: Services, kit: BrandKit,
                                                               fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit, handle="@finn")
    await execute(state.db, update(Person).where(  # marked while the turn was still waiting for its draft
        Person.id == accepted["person_id"]).values(do_not_reply=True))

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    assert (turn.status, drafts, fake_llm.requests) == ("skipped", [], [])


async def test_a_mention_joining_a_drafted_turn_makes_the_draft_stale_and_a_fresh_one_answers_both(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    first = await ingest(client, kit, text="@acme my parcel is late", conversation_id="c1")
    await drain(state)
    second = await ingest(client, kit, text="@acme and the box was wet", conversation_id="c1")
    assert second["turn_id"] == first["turn_id"] and second["status"] == "drafting"
    turn, [old] = await turn_and_drafts(state.db, first["turn_id"])
    assert old.stale and turn.status == "drafting"

    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, first["turn_id"])
    fresh = current(turn, drafts)
    assert [d.id for d in drafts] == [old.id, fresh.id]
    assert fresh.answers_through_id == second["id"] and old.answers_through_id == first["id"]
    prompt = user_prompt(fake_llm.requests[-1])
    assert prompt.index("my parcel is late") < prompt.index("and the box was wet")
    assert "Their messages to answer now, oldest first" in prompt


async def test_regenerate_drafts_again_with_the_guidance_and_keeps_the_old_draft(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit)
    await drain(state)

    await request_regenerate(state.db, reviewer(kit), accepted["turn_id"], "  Offer a replacement.  ")
    turn, [old] = await turn_and_drafts(state.db, accepted["turn_id"])
    assert (turn.status, old.stale) == ("drafting", True)
    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    fresh = current(turn, drafts)
    assert [d.id for d in drafts] == [old.id, fresh.id]
    assert fresh.guidance == "Offer a replacement."
    assert "Guidance from the reviewer on our team for this draft (follow it):\nOffer a replacement." \
        in user_prompt(fake_llm.requests[-1])
    decision, job = await state.db.run_read(lambda conn: (
        conn.execute(select(Decision).where(Decision.turn_id == turn.id)).first(),
        conn.execute(select(Job).order_by(Job.id.desc())).first()))
    assert decision is not None and (decision.action, decision.reason, decision.draft_id, decision.user_id) == (
        "regenerate", "Offer a replacement.", old.id, kit.reviewer_id)
    assert job is not None and job.payload == {"guidance": "Offer a replacement."}


async def test_regenerating_an_escalated_turn_gets_the_reviewer_a_model_draft(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit, text="@acme should I sue you?")
    await drain(state)
    assert (await turn_and_drafts(state.db, accepted["turn_id"]))[0].status == "escalated"

    await request_regenerate(state.db, reviewer(kit), accepted["turn_id"], "Say no lawsuit is needed.")
    await drain(state)

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    assert (turn.status, current(turn, drafts).source, len(fake_llm.requests)) == ("pending_review", "model", 1)


@pytest.mark.parametrize(("turn_brand", "status", "guidance", "error"), [
    ("other", "pending_review", None, NotFound),
    ("own", "skipped", None, Conflict),
    ("own", "approved", None, Conflict),
    ("own", "pending_review", "x" * 2001, ValidationFailed),
])
async def test_regenerate_refuses(client: Client, state: Services, factory: Factory, kit: BrandKit, turn_brand: str,
                                  status: str, guidance: str | None, error: type[Exception]) -> None:
    other = await factory.brand()
    accepted = await ingest(client, other if turn_brand == "other" else kit)
    await execute(state.db, update(Turn).where(Turn.id == accepted["turn_id"]).values(status=status))

    with pytest.raises(error):
        await request_regenerate(state.db, reviewer(kit), accepted["turn_id"], guidance)

    assert await scalar(state.db, select(Turn.status).where(Turn.id == accepted["turn_id"])) == status
    assert await rows(state.db, select(Decision)) == []


async def test_each_prompt_holds_only_its_own_persons_history(client: Client, state: Services, kit: BrandKit,
                                                              fake_llm: FakeLLM) -> None:
    people = 30
    marks = {n: [f"zq{n:02d}{kind}x" for kind in ("mention", "reply", "note", "now")] for n in range(people)}
    for n in range(people):
        person_id = (await ingest(client, kit, handle=f"@person{n:02d}", text=f"@acme hi {marks[n][0]}",
                                  conversation_id=f"old-{n}"))["person_id"]
        await add_history(state.db, kit, person_id, [f"We said {marks[n][1]}"], direction="outbound")
        note = await client.post(f"/api/v1/people/{person_id}/notes", json={"text": f"Likes {marks[n][2]}"},
                                 headers=kit.reviewer)
        assert note.status_code == 201, note.text
    await drain(state)
    before = len(fake_llm.requests)
    response = await client.post("/api/v1/mentions/batch", headers=kit.ingest, json={"mentions": [
        mention(handle=f"@person{n:02d}", text=f"@acme again {marks[n][3]}", conversation_id=f"new-{n}")
        for n in range(people)]})
    assert response.status_code == 200

    await drain(state)

    requests = fake_llm.requests[before:]
    assert len(requests) == people
    for request in requests:
        prompt = user_prompt(request)
        [n] = [n for n in range(people) if marks[n][3] in prompt]
        assert all(mark in prompt for mark in marks[n]), prompt
        others = [mark for m in range(people) if m != n for mark in marks[m]]
        assert not [mark for mark in others if mark in prompt]


async def test_history_is_trimmed_to_the_budget_newest_first(client: Client, state: Services, kit: BrandKit,
                                                             fake_llm: FakeLLM, settings: Settings) -> None:
    accepted = await ingest(client, kit, handle="@gus", text="@acme any news?")
    # 20 earlier mentions of 100 bytes: 25 tokens plus 12 of framing each, so a budget of 120 holds three.
    texts = [f"old message {n:02d} ".ljust(100, ".") for n in range(20)]
    await add_history(state.db, kit, accepted["person_id"], texts)
    await drain_with(settings.replace(history_token_budget=120))

    summary_request, draft_request = fake_llm.requests  # the older 17 no longer fit: summarised first
    assert [n for n in range(20) if f"old message {n:02d} " in user_prompt(summary_request)] == list(range(17))
    prompt = user_prompt(draft_request)
    shown = [n for n in range(20) if f"old message {n:02d} " in prompt]
    assert shown == [17, 18, 19]
    assert prompt.index("What we know from their older messages") < prompt.index("old message 17")
    assert prompt.index("old message 17") < prompt.index("old message 19") < prompt.index("any news?")


async def test_a_job_run_twice_at_once_leaves_one_current_draft(client: Client, state: Services, kit: BrandKit,
                                                                fake_llm: FakeLLM, settings: Settings) -> None:
    """What a lease takeover looks like from the turn's side: two workers drafting the same job."""
    fake_llm.default = Response(delay=0.2)
    accepted = await ingest(client, kit)
    [job] = await queue.claim(state.db, "first", [queue.DRAFT_TURN], 1, 60)
    drafters = [Drafter(state.db, settings, being_edited=presence.being_edited) for _ in range(2)]
    try:
        await asyncio.gather(*(drafter.draft_turn(job) for drafter in drafters))
        await drafters[0].draft_turn(job)  # and once more, after the fact
    finally:
        for drafter in drafters:
            await drafter.aclose()

    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    assert len(drafts) == 1 and current(turn, drafts) and turn.version == 1
    assert len(fake_llm.requests) == 2


async def test_the_worker_inside_serve_drafts_what_ingest_queues(settings: Settings, db: Database,
                                                                 kit: BrandKit) -> None:
    async with AsyncTestClient(create_app(settings, run_worker=True)) as client:
        accepted = await ingest(client, kit)
        for _ in range(100):
            turn, drafts = await turn_and_drafts(db, accepted["turn_id"])
            if turn.status == "pending_review":
                break
            await asyncio.sleep(0.05)
    assert turn.status == "pending_review" and current(turn, drafts).source == "model"



async def test_a_job_that_keeps_failing_backs_off_and_ends_dead_with_its_error(
        client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    accepted = await ingest(client, kit)
    await execute(state.db,  # a policy that no longer loads: every attempt fails the same way
                  update(Brand).where(Brand.id == kit.id).values(policy_toml="[rules\n"),
                  update(Job).values(max_attempts=2))

    await drain(state)

    job = await first_row(state.db, select(Job).where(Job.kind == queue.DRAFT_TURN))
    assert job is not None and (job.status, job.attempts) == ("queued", 1)
    assert job.last_error and job.last_error.startswith("PolicyFileError")
    assert job.run_after > utcnow() + dt.timedelta(seconds=2)  # backed off, so this drain left it alone

    await execute(state.db, update(Job).values(run_after=utcnow()))
    await drain(state)

    job = await first_row(state.db, select(Job).where(Job.kind == queue.DRAFT_TURN))
    assert job is not None and (job.status, job.attempts) == ("dead", 2) and job.last_error
    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    assert (turn.status, drafts, fake_llm.requests) == ("drafting", [], [])


# A fallback written while the model was down is drafted again by the model once it answers (issue 13, 8) --------

REDRAFT_SOON = (0.05, 0.05, 0.05)


async def work_until(state: Services, done: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Run a worker built as ``serve`` builds it (polling, so a job due later is run when it is due) until
    ``done`` answers true."""
    worker = build_worker(state.db, state.settings)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await task


async def redraft_jobs(db: Database) -> list[Row[Any]]:
    return await rows(db, select(Job).where(Job.kind == queue.REDRAFT_FALLBACK).order_by(Job.id))


async def fallback_while_down(client: Client, state: Services, kit: BrandKit, fake_llm: FakeLLM) -> tuple[int, int]:
    """A turn in the queue with a fallback draft because the model answered 500; its turn id and draft id."""
    fake_llm.default = Response(status=500)
    accepted = await ingest(client, kit, handle="@ana")
    await drain(state)
    turn, drafts = await turn_and_drafts(state.db, accepted["turn_id"])
    draft = current(turn, drafts)
    assert (turn.status, draft.source) == ("pending_review", "fallback")
    return turn.id, draft.id


@pytest.fixture
async def redrafting(settings: Settings) -> AsyncIterator[Services]:
    """The worker's side with a short redraft schedule."""
    state = Services.build(settings.replace(llm_redraft_schedule=REDRAFT_SOON))
    yield state
    await state.db.dispose()


async def test_a_fallback_written_while_the_model_was_down_becomes_a_model_draft_once_it_answers(
        client: Client, redrafting: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    state = redrafting
    turn_id, fallback_id = await fallback_while_down(client, state, kit, fake_llm)
    [job] = await redraft_jobs(state.db)
    assert (job.subject_id, job.payload, job.max_attempts) == (turn_id, {"draft_id": fallback_id}, 3)

    async def tried_once_more() -> bool:
        return (await redraft_jobs(state.db))[0].attempts >= 1

    await work_until(state, tried_once_more)  # the model is still down: the fallback stays, tried again later
    turn, drafts = await turn_and_drafts(state.db, turn_id)
    assert current(turn, drafts).id == fallback_id and (await redraft_jobs(state.db))[0].status == "queued"

    fake_llm.default = Response()  # the model is back; nobody asks for anything

    async def replaced() -> bool:
        turn, _ = await turn_and_drafts(state.db, turn_id)
        return turn.current_draft_id != fallback_id

    await work_until(state, replaced)
    turn, drafts = await turn_and_drafts(state.db, turn_id)
    draft = current(turn, drafts)
    assert (turn.status, draft.source, draft.model, draft.error) == ("pending_review", "model", "test", None)
    assert draft.text == "Hi Ana, thanks for telling us. We are looking into it now."
    assert [d.id for d in drafts if d.stale] == [fallback_id]
    [job] = await redraft_jobs(state.db)
    assert job.status == "done"
    seen = (await client.get(f"/api/v1/turns/{turn_id}", headers=kit.reviewer)).json()
    assert seen["current_draft"]["id"] == draft.id and seen["current_draft"]["source"] == "model"
    assert seen["decisions"] == [], "nobody asked for the new draft"
    redrafted = await rows(state.db, select(AuditEvent).where(AuditEvent.action == "turn.redrafted"))
    assert [(e.subject_id, e.data["replaced_draft_id"]) for e in redrafted] == [(turn_id, fallback_id)]
    stale = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": fallback_id},
                              headers=kit.reviewer)
    assert stale.status_code == 409 and stale.json()["current_draft_id"] == draft.id


async def test_a_fallback_a_reviewer_is_editing_is_left_alone(
        client: Client, redrafting: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    state = redrafting
    turn_id, fallback_id = await fallback_while_down(client, state, kit, fake_llm)
    await state.db.run_write(presence.beat, kit.id, kit.reviewer_id, turn_id, True)
    fake_llm.default = Response()

    async def settled() -> bool:
        return (await redraft_jobs(state.db))[0].status == "done"

    await work_until(state, settled)
    turn, drafts = await turn_and_drafts(state.db, turn_id)
    assert current(turn, drafts).id == fallback_id and len(drafts) == 1


async def test_a_fallback_already_decided_is_left_alone(
        client: Client, redrafting: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    state = redrafting
    turn_id, fallback_id = await fallback_while_down(client, state, kit, fake_llm)
    approved = await client.post(f"/api/v1/turns/{turn_id}/approve", json={"draft_id": fallback_id},
                                 headers=kit.reviewer)
    assert approved.status_code == 200, approved.text
    fake_llm.default = Response()

    async def settled() -> bool:
        return (await redraft_jobs(state.db))[0].status == "done"

    await work_until(state, settled)
    turn, drafts = await turn_and_drafts(state.db, turn_id)
    assert (turn.status, turn.current_draft_id, len(drafts)) == ("approved", fallback_id, 1)


async def test_a_model_that_stays_down_leaves_the_fallback_after_the_schedule(
        client: Client, redrafting: Services, kit: BrandKit, fake_llm: FakeLLM) -> None:
    state = redrafting
    turn_id, fallback_id = await fallback_while_down(client, state, kit, fake_llm)

    async def given_up() -> bool:
        return (await redraft_jobs(state.db))[0].status == "dead"

    await work_until(state, given_up)
    [job] = await redraft_jobs(state.db)
    assert job.attempts == len(REDRAFT_SOON)
    assert job.last_error == f"turn {turn_id}: still no model draft (model answered 500 after 4 attempts)"
    turn, drafts = await turn_and_drafts(state.db, turn_id)
    assert current(turn, drafts).id == fallback_id


async def test_only_a_fallback_because_the_model_was_down_is_drafted_again(
        client: Client, kit: BrandKit, fake_llm: FakeLLM, settings: Settings, db: Database) -> None:
    await ingest(client, kit, handle="@ana")
    await ingest(client, kit, handle="@bo", text="I will sue you")  # escalated by a rule: no draft at all
    await drain_with(settings.replace(llm_base_url="", llm_model="", llm_redraft_schedule=REDRAFT_SOON))

    assert await redraft_jobs(db) == []
    assert fake_llm.requests == []
