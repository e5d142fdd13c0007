"""``assistant eval run``: replay past conversations through the drafting path, in a scratch database.

Each case gets its own brand in a fresh SQLite database under ``--out`` (never the configured, live one),
so no case sees another's people. The case's history goes in through the history importer, its mentions
through ingest (which opens the turn and queues the drafting job, as the API does), and the product's own
``Worker`` runs the product's own ``Drafter`` on it: same prompts, history budget, policy, escalation and
output hygiene. Times are shifted so the replay happens "as of" the human's reply: the model reads "2 hours
ago", not "9 years ago".

Every finished case is appended to ``cases.ndjson`` as it completes; running again with the same ``--out``
skips the finished ones (a run of other data, another model or another policy is refused there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from assistant.auth import service as auth
from assistant.db import Database
from assistant.db.base import utcnow
from assistant.db.jobs import Job
from assistant.db.migrate import upgrade_async
from assistant.db.turns import Draft, Turn
from assistant.drafting import hygiene
from assistant.model.client import ModelClient
from assistant.drafting.prompts import SYSTEM_TEMPLATE, USER_TEMPLATE
from assistant.model.templates import template_hash
from assistant.drafting.service import Drafter
from assistant.errors import ValidationFailed
from assistant.eval import dataset as datasets
from assistant.eval import hostile, judge, measures
from assistant.eval.dataset import Case, Dataset
from assistant.jobs import queue
from assistant.jobs.worker import Worker
from assistant.memory import edits
from assistant.mentions.service import ingest, validate
from assistant.people.importer import Record, import_records
from assistant.policy import Policy, count_length, effective_limit
from assistant.policy.service import brand_policy, policy_of, set_brand_policy
from assistant.review import presence
from assistant.settings import Settings

CASES_FILE = "cases.ndjson"
RUN_FILE = "run.json"
SCRATCH_FILE = "scratch.db"


class RunRefused(Exception):
    """The run cannot start (its --out holds another run); the message says why."""


@dataclass(frozen=True)
class Options:
    dataset: Path
    out: Path
    brand: str | None = None
    """A brand of the configured database whose name and policy the replay uses (read, never written)."""
    policy_file: Path | None = None
    limit: int | None = None
    concurrency: int = 8
    judge_model: str | None = None


@dataclass(frozen=True)
class BrandSetup:
    name: str | None
    """None: each case's own (the brand account that replied, where the file says)."""
    policy_source: str | None
    """None: the shipped default policy."""
    reviewer_edits: dict[str, Any] | None = None
    """With ``--brand``: how often that brand's reviewers edited drafts before approving them over the last
    ``EDITS_WINDOW`` (issue 12), for the report to show beside the judge's "approved unchanged" estimate."""

    @property
    def policy(self) -> Policy:
        return policy_of(self.policy_source)


@dataclass
class Outcome:
    """What this invocation did: the cases it ran, in how long, and every result of the run so far."""

    ran: int
    seconds: float
    results: list[dict[str, Any]]
    dataset: Dataset
    setup: BrandSetup
    fingerprint: dict[str, Any]


Progress = Callable[[int], None]


async def brand_setup(settings: Settings, options: Options) -> BrandSetup:
    """The brand name and policy the replay drafts with: ``--policy`` wins over ``--brand``'s stored one."""
    name, source, reviewer_edits = None, None, None
    if options.brand:
        live = Database.from_settings(settings)
        try:
            name, source, reviewer_edits = await live.run_read(_brand_by_slug, options.brand)
        finally:
            await live.dispose()
    if options.policy_file:
        source = options.policy_file.read_text()
        policy_of(source)  # refuses a bad file before anything runs
    return BrandSetup(name=name, policy_source=source, reviewer_edits=reviewer_edits)


EDITS_WINDOW = dt.timedelta(days=30)


def _brand_by_slug(conn: Connection, slug: str) -> tuple[str, str, dict[str, Any]]:
    """The live brand's name, policy source and reviewers' edit rate (``NotFound`` for an unknown slug)."""
    brand = auth.brand_by_slug(conn, slug)
    until = utcnow()
    rates = edits.edit_rates(conn, brand.id, since=until - EDITS_WINDOW, until=until)
    reviewer_edits = {"days": EDITS_WINDOW.days, "approvals": rates.approvals, "edited": rates.edited,
                      "edit_rate": rates.edit_rate, "unchanged_rate": rates.unchanged_rate}
    return brand.name, brand_policy(conn, brand.id).source, reviewer_edits


def fingerprint(settings: Settings, options: Options, data: Dataset, setup: BrandSetup) -> dict[str, Any]:
    """What makes two runs' results comparable case by case: a resumed run must match it."""
    return {"dataset_sha256": data.fingerprint, "model": settings.llm_model if settings.llm_configured else None,
            "model_url": settings.llm_base_url or None, "judge_model": options.judge_model,
            "policy_hash": setup.policy.hash, "brand_name": setup.name,
            "prompt_hash": template_hash(SYSTEM_TEMPLATE, USER_TEMPLATE),
            "judge_prompt_hash": judge.prompt_hash() if options.judge_model else None}


async def run(settings: Settings, options: Options, *, progress: Progress | None = None,
              on_total: Callable[[int], None] | None = None) -> Outcome:
    """Replay the dataset's cases not yet done under ``options.out``, then every result of the run."""
    data = datasets.load(options.dataset)
    setup = await brand_setup(settings, options)
    stamp = fingerprint(settings, options, data, setup)
    options.out.mkdir(parents=True, exist_ok=True)
    _claim_out_dir(options.out, stamp)
    cases = data.cases[:options.limit] if options.limit is not None else data.cases
    platform = cases[0].platform if cases else "x"
    cases = cases + hostile.cases(platform, setup.name or _common_brand(cases), utcnow())
    done = _finished(options.out / CASES_FILE)
    pending = [case for case in cases if case.id not in done]
    if on_total:
        on_total(len(pending))

    started = time.perf_counter()
    if pending:
        await _replay(settings, options, data, setup, pending, progress)
    seconds = time.perf_counter() - started
    finished = _finished(options.out / CASES_FILE)
    results = [finished[case.id] for case in cases if case.id in finished]
    return Outcome(ran=len(pending), seconds=seconds, results=results, dataset=data, setup=setup,
                   fingerprint=stamp)


def _common_brand(cases: list[Case]) -> str:
    names = [c.brand_name for c in cases if c.brand_name != datasets.DEFAULT_BRAND_NAME]
    return max(set(names), key=names.count) if names else datasets.DEFAULT_BRAND_NAME


def _claim_out_dir(out: Path, stamp: dict[str, Any]) -> None:
    path = out / RUN_FILE
    if path.exists():
        try:
            before = json.loads(path.read_text())
        except ValueError:
            before = None
        if before != stamp:
            differs = sorted(k for k in stamp if not isinstance(before, dict) or before.get(k) != stamp[k])
            raise RunRefused(f"{out} holds a run of other settings ({', '.join(differs) or 'unreadable'} "
                             "differ); choose a new --out")
    else:
        path.write_text(json.dumps(stamp, indent=2) + "\n")


def _finished(path: Path) -> dict[str, dict[str, Any]]:
    """Results already written, by case id (the last line wins; errors are tried again; a line cut short by
    a crash is ignored)."""
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict) and "id" in result:
                if result.get("outcome") == "error":
                    found.pop(result["id"], None)
                else:
                    found[result["id"]] = result
    return found


async def _replay(settings: Settings, options: Options, data: Dataset, setup: BrandSetup, pending: list[Case],
                  progress: Progress | None) -> None:
    scratch_path = options.out / SCRATCH_FILE
    for leftover in (scratch_path, *(scratch_path.with_name(SCRATCH_FILE + s) for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    scratch = settings.replace(database_url=f"sqlite+aiosqlite:///{scratch_path.resolve()}",
                               worker_concurrency=options.concurrency,
                               llm_max_in_flight=min(settings.llm_max_in_flight, options.concurrency))
    await upgrade_async(scratch.database_url)
    db = Database(scratch.database_url, synchronous="off")  # a scratch file: a flush per commit buys nothing
    replay = _Replay(db, scratch, options, data, setup)
    worker_task = asyncio.create_task(replay.worker.run())
    slots = asyncio.Semaphore(options.concurrency)
    try:
        with (options.out / CASES_FILE).open("a", encoding="utf-8") as sink:
            async def one(index: int, case: Case) -> None:
                async with slots:
                    result = await replay.case(index, case)
                sink.write(json.dumps(result, ensure_ascii=False) + "\n")
                sink.flush()
                if progress:
                    progress(1)

            await asyncio.gather(*(one(index, case) for index, case in enumerate(pending)))
    finally:
        replay.worker.stop()
        await worker_task
        await replay.aclose()
        await db.dispose()


class _Replay:
    """One invocation's machinery: the scratch database, the worker with the product's drafter, the judge."""

    def __init__(self, db: Database, settings: Settings, options: Options, data: Dataset,
                 setup: BrandSetup) -> None:
        self.db = db
        self.settings = settings
        self.setup = setup
        self.policy = setup.policy
        self.owners = measures.leakable_tokens(data.texts_by_person)
        self.drafter = Drafter(db, settings, being_edited=presence.being_edited)
        self.drafted: dict[int, asyncio.Future[str | None]] = {}
        self.worker = Worker(db, {queue.DRAFT_TURN: self._draft}, concurrency=options.concurrency,
                             lease_seconds=settings.job_lease_seconds, poll_seconds=0.05,
                             closers=[self.drafter.aclose])
        self.judge = (ModelClient(settings.replace(llm_model=options.judge_model, llm_max_tokens=200))
                      if options.judge_model else None)
        from sacrebleu.metrics import CHRF  # numpy and friends load only when an eval runs
        self.chrf = CHRF()

    async def aclose(self) -> None:
        if self.judge is not None:
            await self.judge.aclose()

    def _future(self, turn_id: int) -> asyncio.Future[str | None]:
        return self.drafted.setdefault(turn_id, asyncio.get_running_loop().create_future())

    async def _draft(self, job: Job) -> None:
        """The worker's drafting handler: the product's ``Drafter``, then word to the case waiting for it."""
        error: str | None = None
        try:
            await self.drafter.draft_turn(job)
        except Exception as exc:  # noqa: BLE001 - the case records it; the worker must not retry a replay
            error = f"{type(exc).__name__}: {exc}"
        future = self._future(job.subject_id or 0)
        if not future.done():
            future.set_result(error)

    async def case(self, index: int, case: Case) -> dict[str, Any]:
        started = time.perf_counter()
        base = {"id": case.id, "hostile": case.hostile, "platform": case.platform, "handle": case.handle,
                "mentions": [m.text for m in case.mentions], "history": len(case.history),
                "human_reply": case.human_reply}
        try:
            turn_id, status = await self.seed(index, case)
            if status == "drafting":
                self.worker.wake()
                error = await self._future(turn_id)
                if error:
                    return base | {"outcome": "error", "error": error}
            found = await self.db.run_read(_turn_outcome, turn_id)
        except (ValidationFailed, OSError) as exc:
            return base | {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
        wall_ms = round((time.perf_counter() - started) * 1000)
        result = base | self.measure(case, found) | {"wall_ms": wall_ms}
        if self.judge is not None and case.hostile is None and result["outcome"] == "drafted":
            result["judge"] = await judge.judge(self.judge, case, result["draft"], self.policy.voice_description)
        return result

    async def seed(self, index: int, case: Case) -> tuple[int, str]:
        """The case as the product would hold it at the moment of the human's reply: its own brand, the
        person's history imported, their mentions ingested (which queues the drafting job)."""
        shift = utcnow() - case.replied_at

        def moved(record: Record) -> Record:
            return dataclasses.replace(record, at=record.at + shift)

        brand_id = await self._brand(f"eval-{index}", self.setup.name or case.brand_name)
        if case.history:
            report = await import_records(self.db, brand_id, [moved(r) for r in case.history], one_transaction=True)
            if report.invalid:
                raise ValidationFailed.field("history", f"{len(report.invalid)} messages could not be imported")
        outcomes = await ingest(self.db, brand_id, [validate(_mention(moved(m), case)) for m in case.mentions])
        last = outcomes[-1]
        return last.turn_id or 0, last.status

    async def _brand(self, slug: str, name: str) -> int:
        """A brand of its own for one case, with the run's policy."""
        return await self.db.run_write(_new_brand, slug, name, self.setup.policy_source)

    def measure(self, case: Case, found: dict[str, Any]) -> dict[str, Any]:
        """The case's measures from its turn as the drafter left it."""
        if found["status"] != "pending_review" or found["text"] is None:
            outcome = "escalated" if found["status"] == "escalated" else "skipped"
            return {"outcome": outcome, "rule": found["escalation_rule"]}
        text: str = found["text"]
        flags = [flag.get("kind") for flag in found["flags"] or []]
        findings = found["findings"] or []
        limit = effective_limit(self.policy, case.platform, self.settings.default_max_length)
        length = count_length(case.platform, text)
        result: dict[str, Any] = {
            "outcome": "drafted", "draft": text, "source": found["source"], "model": found["model"],
            "error": found["error"], "findings": [f.get("rule") for f in findings],
            "policy_pass": not any(f.get("severity") == "block" for f in findings),
            "length": length, "limit": limit, "length_pass": length <= limit,
            "other_handles": hygiene.other_handles(text, case.handle),
            "leaks": measures.leaks(text, [*case.own_texts, self.setup.name or case.brand_name], self.owners,
                                    (case.platform, case.handle)),
            "flags": flags, "fallback": found["source"] == "fallback", "attempts": found["attempts"],
            "latency_ms": found["latency_ms"], "prompt_tokens": found["prompt_tokens"],
            "completion_tokens": found["completion_tokens"],
            "chrf": (round(self.chrf.sentence_score(text, [case.human_reply]).score, 2)
                     if case.human_reply else None),
        }
        if case.hostile is not None:
            result["obeyed"] = hostile.obeyed(case.hostile, text, flags)
        return result


def _new_brand(conn: Connection, slug: str, name: str, policy_source: str | None) -> int:
    brand = auth.create_brand(conn, slug, name)
    if policy_source is not None:
        set_brand_policy(conn, brand.id, policy_source, "eval policy")
    return int(brand.id)


def _mention(record: Record, case: Case) -> dict[str, Any]:
    """A mention body, as a scheduling tool would send it, for one of the case's messages."""
    author = {"handle": case.handle} | ({"display_name": case.display_name} if case.display_name else {})
    body = {"platform": record.platform, "external_id": record.external_id, "text": record.text,
            "created_at": record.at.isoformat(), "author": author}
    if record.in_reply_to:
        body["in_reply_to"] = record.in_reply_to
    if record.conversation:
        body["conversation_id"] = record.conversation
    return body


_OUTCOME = (select(Turn.status, Turn.escalation_rule, Draft.text, Draft.source, Draft.model, Draft.error,
                   Draft.findings, Draft.flags, Draft.attempts, Draft.latency_ms, Draft.prompt_tokens,
                   Draft.completion_tokens)
            .outerjoin(Draft, Draft.id == Turn.current_draft_id))


def _turn_outcome(conn: Connection, turn_id: int) -> dict[str, Any]:
    """The turn's status and its current draft, read back from the scratch database."""
    row = conn.execute(_OUTCOME.where(Turn.id == turn_id)).mappings().first()
    if row is None:
        raise ValidationFailed.field("turn", f"turn {turn_id} vanished from the scratch database")
    return dict(row)


__all__ = ["CASES_FILE", "Options", "Outcome", "RunRefused", "brand_setup", "run"]
