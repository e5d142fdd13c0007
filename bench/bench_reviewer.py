"""A scripted reviewer clears 100 mixed turns (60 approved unchanged, 25 edited, 10 rejected, 5 escalated) by
keyboard in chromium, and prints the keys pressed (typed text not counted: it is the same on every page) and
the seconds of page time per decision (from the first key of a decision until the next person is on screen,
less the time spent typing the reviewer's own words, which is the same on every page). After each decision the scripted reviewer reads the next person for ``--read-seconds``
(1 s by default, not counted), as a person would; a page may use that time to get the next one ready.

    python bench/bench_reviewer.py --page workspace        # this page
    (cd OLD_CHECKOUT && PYTHONPATH=. python /path/to/bench/bench_reviewer.py --page today)  # the page before

``today`` drives the page as it was before the two-pane workspace (one card per person, a reload per decision,
no key for escalate, ``e`` putting the cursor at the start), the same way, so the figures sit side by side.
The app runs in-process (uvicorn on a free port) on a fresh SQLite file; the same 100 turns are seeded for both.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy import create_engine, insert, select

from assistant.app import create_app
from assistant.auth.passwords import hash_password
from assistant.db.migrate import upgrade
from assistant.db.people import Handle, Interaction, Person
from assistant.db.tenancy import Brand, User
from assistant.db.turns import Decision, Draft, Turn
from assistant.settings import Settings

CHROMIUM = "/usr/bin/chromium"
MIX = ["approve"] * 60 + ["edit"] * 25 + ["reject"] * 10 + ["escalate"] * 5
ADDED = " We'll email you the tracking link today."
REASON = "duplicate of a support ticket"
PASSWORD = "bench password"


def _seed(path: Path, n: int) -> None:
    upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Brand), [{"id": 1, "slug": "bench", "name": "Bench", "created_at": now}])
        conn.execute(insert(User), [{"id": 1, "brand_id": 1, "email": "r@bench.example", "role": "reviewer",
                                     "display_name": "Robin Example", "password_hash": hash_password(PASSWORD),
                                     "failed_logins": 0, "disabled": False, "created_at": now}])
        for i in range(1, n + 1):
            at = now - dt.timedelta(minutes=5 * (n - i) + 5)
            conn.execute(insert(Person).values(id=i, brand_id=1, display_name=f"Person {i}", do_not_reply=False,
                                               followers=100 * i, first_seen_at=at, last_seen_at=at, mention_count=1,
                                               reply_count=0, created_at=at))
            conn.execute(insert(Handle).values(id=i, brand_id=1, person_id=i, platform="x", handle=f"person{i}",
                                               created_at=at))
            conn.execute(insert(Turn).values(id=i, brand_id=1, person_id=i, platform="x", status="pending_review",
                                             waiting_since=at, current_draft_id=i, version=1, created_at=at,
                                             updated_at=at))
            conn.execute(insert(Draft).values(id=i, turn_id=i, text=f"Hi Person {i}, sorry about the wait. "
                                              "Your order left the warehouse this morning.", source="model",
                                              findings=[], flags=[], attempts=1, stale=False, created_at=at))
            conn.execute(insert(Interaction).values(id=i, brand_id=1, person_id=i, direction="inbound",
                                                    platform="x", external_id=f"m{i}", turn_id=i, occurred_at=at,
                                                    received_at=at, text=f"@bench where is my order? ({i})"))
    engine.dispose()


def _serve(settings: Settings) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


class Reviewer:
    """Presses keys like a person would and counts them; typed text goes through ``type`` (not counted)."""

    def __init__(self, page: Any) -> None:
        self.page, self.keys, self.typing = page, 0, 0.0

    async def press(self, key: str, times: int = 1) -> None:
        for _ in range(times):
            await self.page.keyboard.press(key)
            self.keys += 1

    async def type(self, text: str) -> None:
        """The reviewer's own words: the same on every page, so their time is not page time."""
        t0 = time.perf_counter()
        await self.page.keyboard.type(text)
        self.typing += time.perf_counter() - t0


async def _today(r: Reviewer, action: str, base: str) -> None:
    """The page before the workspace: each decision posts a form and the page reloads."""
    page = r.page
    async with page.expect_navigation():
        if action == "approve":
            await r.press("a")
        elif action == "edit":
            await r.press("e")              # the cursor lands at the start
            await r.press("Control+End")
            await r.type(ADDED)
            await r.press("Escape")
            await r.press("a")
        elif action == "reject":
            await r.press("r")
            await r.type(REASON)
            await r.press("Enter")
        else:                               # no key for escalate: Tab from the reply box to its reason
            await r.press("e")
            while not await page.evaluate("document.activeElement.matches('form[data-action=escalate] input')"):
                await r.press("Tab")
            await r.type(REASON)
            await r.press("Enter")
    await page.wait_for_load_state("domcontentloaded")


async def _workspace(r: Reviewer, action: str, base: str) -> None:
    """The two-pane page: the next person is on screen as soon as the decision is taken."""
    page = r.page
    before = await page.get_attribute("#person", "data-turn")
    if action == "approve":
        await r.press("a")
    elif action == "edit":
        await r.press("e")                  # the cursor lands at the end
        await r.type(ADDED)
        await r.press("Control+Enter")
    else:
        await r.press("r" if action == "reject" else "x")
        await r.type(REASON)
        await r.press("Enter")
    await page.wait_for_function(
        "(before) => { const p = document.getElementById('person'); "
        "return (!p && document.querySelector('#waiting-list .empty')) || (p && p.dataset.turn !== before); }",
        arg=before)


def run(kind: str, n: int, read_seconds: float = 1.0) -> dict[str, Any]:
    actions = MIX[:]
    random.Random(11).shuffle(actions)
    actions = (actions * (n // len(actions) + 1))[:n]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        _seed(path, n)
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key="bench-secret")
        if kind == "workspace":
            settings = settings.replace(undo_seconds=1.0)  # the hold does not slow the reviewer; keep the run short
        base, server, thread = _serve(settings)
        try:
            per, elapsed = asyncio.run(_drive(kind, base, actions, read_seconds))
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            statuses = dict(conn.execute(select(Turn.id, Turn.status)).all())
            edited = conn.execute(select(Decision.final_text).where(Decision.final_text.like(f"%{ADDED}"))).all()
        engine.dispose()
    wanted = {"approve": "approved", "edit": "approved", "reject": "rejected", "escalate": "escalated"}
    wrong = sum(1 for i, a in enumerate(actions, start=1) if statuses.get(i) != wanted[a])
    return {"page": kind, "decisions": n, "read_seconds": read_seconds, "seconds": elapsed, "wrong": wrong, "edited_as_typed": len(edited),
            "per": {k: {"n": len(v), "keys": statistics.mean(x[0] for x in v) if v else 0,
                        "seconds": statistics.mean(x[1] for x in v) if v else 0} for k, v in per.items()},
            "keys": sum(x[0] for v in per.values() for x in v)}


async def _drive(kind: str, base: str, actions: list[str],
                 read_seconds: float) -> tuple[dict[str, list[tuple[int, float]]], float]:
    per: dict[str, list[tuple[int, float]]] = {k: [] for k in ("approve", "edit", "reject", "escalate")}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
        await page.goto(f"{base}/login")
        await page.fill("#email", "r@bench.example")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        started, typed = time.perf_counter(), 0.0
        for action in actions:
            r = Reviewer(page)
            t0 = time.perf_counter()
            await (_today if kind == "today" else _workspace)(r, action, base)
            per[action].append((r.keys, time.perf_counter() - t0 - r.typing))
            typed += r.typing
            await page.wait_for_timeout(read_seconds * 1000)
        elapsed = time.perf_counter() - started - read_seconds * len(actions) - typed
        await page.wait_for_timeout(2500)  # held approvals reach the server
        await browser.close()
    return per, elapsed


def report(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['page']}: {result['decisions']} decisions in {result['seconds']:.1f} s of page time "
             f"({result['seconds'] / result['decisions']:.2f} s and {result['keys'] / result['decisions']:.2f} keys "
             f"per decision); {result['wrong']} turns in the wrong state, {result['edited_as_typed']} edits as typed"]
    for kind, figures in result["per"].items():
        lines.append(f"  {kind:<9} x{figures['n']:<3} {figures['keys']:.1f} keys, {figures['seconds']:.3f} s each")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", choices=("workspace", "today"), default="workspace")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--read-seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    outcome = run(args.page, args.turns, args.read_seconds)
    print("\n".join(report(outcome)))
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=2))
