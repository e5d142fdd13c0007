"""The words and pictures the pages show people: relative times, wait colours, audit values, the fairness
verdict and chart, saved-reply placeholders and who else is on a turn."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.review.presence import Present, sentence
from assistant.review.schemas import WaitGroup
from assistant.snippets.service import fill
from assistant.web.charts import duration, verdict, wait_chart
from assistant.web.render import ago, plain, wait_level

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("seconds", "expected"), [
    (10, "just now"), (60, "1 min ago"), (59 * 60, "59 min ago"), (3600, "1 hour ago"), (5 * 3600, "5 hours ago"),
    (86400 + 5, "yesterday"), (3 * 86400, "3 days ago"), (40 * 86400, "21 Oct"), (400 * 86400, "26 Oct 2025"),
])
def test_times_read_relative_to_now(seconds: int, expected: str) -> None:
    assert ago(NOW - dt.timedelta(seconds=seconds), now=NOW) == expected


@pytest.mark.parametrize(("minutes", "level"), [(1, "wait-fresh"), (20, "wait-warm"), (90, "wait-long"),
                                                (5 * 60, "wait-over")])
def test_the_wait_colour_grows_with_the_wait(minutes: int, level: str) -> None:
    assert wait_level(NOW - dt.timedelta(minutes=minutes), now=NOW) == level


@pytest.mark.parametrize(("value", "shown"), [(True, "yes"), (False, "no"), (["a", "b"], "a, b"), (3, "3")])
def test_stored_values_are_shown_in_words_not_python(value: object, shown: str) -> None:
    assert plain(value) == shown


def group(name: str, turns: int, median: float | None) -> WaitGroup:
    return WaitGroup(name, turns, median, None if median is None else median * 2)


def test_the_verdict_says_when_small_accounts_wait_longer() -> None:
    overall = group("all", 40, 600)
    unfair = [group("unknown", 0, None), group("<1k", 20, 3600), group("1k–10k", 5, 900),
              group("10k–100k", 10, 600), group("≥100k", 5, 300)]
    fair = [group("unknown", 0, None), group("<1k", 20, 600), group("1k–10k", 5, 600),
            group("10k–100k", 10, 620), group("≥100k", 5, 610)]
    assert verdict(unfair, overall).startswith("Yes: people with fewer than 1,000 followers wait longer")
    assert verdict(fair, overall).startswith("No:")
    assert verdict(fair, group("all", 0, None)).startswith("No replies were approved")
    assert verdict([group("<1k", 2, 60)], group("all", 2, 60)).startswith("Too few replies")


def test_the_chart_draws_one_bar_per_answered_group_and_says_so_for_the_others() -> None:
    svg = str(wait_chart("Waits <by> size", [group("<1k", 3, 600), group("≥100k", 0, None)], {"<1k": "under 1k"}))
    assert svg.count('class="bar"') == 1 and "nobody answered" in svg
    assert "<title>Waits &lt;by&gt; size</title>" in svg and "under 1k" in svg
    assert duration(90 * 60) == "1.5 h" and duration(30) == "30 s"


def test_placeholders_are_filled_with_the_persons_own() -> None:
    text = "Hi {first_name} ({handle}), {name} is on our list."
    assert fill(text, display_name="Ana María López", handle="ana") == \
        "Hi Ana (@ana), Ana María López is on our list."
    assert fill(text, display_name=None, handle=None) == "Hi  (),  is on our list."
    assert fill("{unknown} stays", display_name="Bo", handle="bo") == "{unknown} stays"


def test_a_sign_off_with_any_dash_is_a_sign_off() -> None:
    from assistant.policy import check_text
    from assistant.policy.loader import load_policy

    policy = load_policy('[voice]\nsign_off = "–{initials}"\n')
    for text in ("Thanks! -RE", "Thanks! –RE", "Thanks! —RE"):
        assert not [f for f in check_text(policy, text, platform="x") if f.rule == "sign_off"], text
    assert [f for f in check_text(policy, "Thanks! RE", platform="x") if f.rule == "sign_off"]


def test_who_else_is_on_the_turn_in_one_sentence() -> None:
    at = NOW
    assert sentence([]) == ""
    assert sentence([Present("Maria", True, at)]) == "Maria is editing this reply."
    assert sentence([Present("Jo", False, at), Present("Sam", False, at), Present("Maria", True, at)]) == \
        "Maria is editing this reply; Jo and Sam have it open."
