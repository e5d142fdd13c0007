"""The reviewer's word-level edit: phrases removed and added, and the size."""

from __future__ import annotations

import pytest

from assistant.memory.edits import word_diff


@pytest.mark.parametrize(("draft", "final", "removed", "added", "size"), [
    ("Hi Ana, it ships today.", "Hi Ana, it ships today.", [], [], 0),
    ("Hi Ana, we apologize for any inconvenience. It ships today.", "Hi Ana, sorry! It ships today.",
     ["we apologize for any inconvenience."], ["sorry!"], 6),
    ("Hi Ana, it ships today.", "Hi Ana, it ships today. Thanks for your patience!", [], ["Thanks for your patience!"], 4),
    ("Dear valued customer, hello", "Hello", ["Dear valued customer, hello"], ["Hello"], 5),
    ("", "Written from scratch", [], ["Written from scratch"], 3),
])
def test_word_diff(draft, final, removed, added, size) -> None:
    diff = word_diff(draft, final)
    assert (diff.removed, diff.added, diff.size) == (removed, added, size)
    assert diff.draft_words == len(draft.split())
