"""The person's history is trimmed newest-first to the token budget and told oldest-first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from assistant.model.budget import ITEM_OVERHEAD_TOKENS, estimate_tokens, fit_history
from assistant.model.history import HistoryItem

START = datetime(2024, 5, 1, tzinfo=timezone.utc)


def newest_first(*texts: str) -> list[HistoryItem]:
    """History items as the loader hands them over: the first text is the newest."""
    return [HistoryItem("mention", text, START - timedelta(hours=index)) for index, text in enumerate(texts)]


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0),
    ("abcd", 1),
    ("abcde", 2),
    ("é" * 4, 2),       # 8 UTF-8 bytes
    ("🙂", 1),          # 4 bytes
    ("x" * 400, 100),
])
def test_tokens_are_estimated_from_utf8_bytes(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_newest_items_are_kept_and_told_oldest_first() -> None:
    cost = estimate_tokens("x" * 40) + ITEM_OVERHEAD_TOKENS
    history = newest_first("n" * 40, "m" * 40, "o" * 40, "p" * 40)

    fitted = fit_history(history, budget=3 * cost)

    assert [item.text[0] for item in fitted] == ["o", "m", "n"]
    assert [item.at for item in fitted] == sorted(item.at for item in fitted)


@pytest.mark.parametrize("budget", [0, 13, 50, 101, 500, 10_000])
def test_budget_is_never_exceeded(budget: int) -> None:
    history = newest_first(*("word " * size for size in (3, 40, 7, 90, 1, 12)))

    fitted = fit_history(history, budget)

    assert sum(estimate_tokens(item.text) + ITEM_OVERHEAD_TOKENS for item in fitted) <= budget
    assert fitted == list(reversed(history[:len(fitted)]))


def test_an_item_too_big_ends_the_history_rather_than_leaving_a_gap() -> None:
    history = newest_first("short", "x" * 4000, "also short")

    assert [item.text for item in fit_history(history, budget=100)] == ["short"]


def test_nothing_fits_in_no_budget() -> None:
    assert fit_history(newest_first("hello"), budget=0) == []
