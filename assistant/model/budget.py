"""Fitting a person's history into the prompt's token budget.

Tokens are estimated, not counted: the model behind the endpoint is unknown (OpenAI, Llama, Mistral...)
and a real tokenizer would mean a download. One token per four UTF-8 bytes matches BPE tokenizers on
English text and overestimates on CJK and emoji (several bytes per character, but also more tokens per
character), so an estimate errs towards a prompt that fits.
"""

from __future__ import annotations

import math

from assistant.model.history import HistoryItem

BYTES_PER_TOKEN = 4
ITEM_OVERHEAD_TOKENS = 12
"""What the framing of one history item costs in the prompt: its delimiter lines, kind and time."""
MENTIONS_TOKEN_BUDGET = 3000
"""How much of the turn's own mentions a prompt may hold: 300 long mentions from one handle made one 2.9 MB
prompt before this."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def fit_history(newest_first: list[HistoryItem], budget: int) -> list[HistoryItem]:
    """The newest items that fit in ``budget`` tokens, oldest first, as the prompt tells them.

    It stops at the first item that does not fit rather than skipping to smaller, older ones: a gap in
    the middle of a conversation would mislead the model more than a shorter memory.
    """
    kept: list[HistoryItem] = []
    spent = 0
    for item in newest_first:
        spent += estimate_tokens(item.text) + ITEM_OVERHEAD_TOKENS
        if spent > budget:
            break
        kept.append(item)
    kept.reverse()
    return kept


def fit_mentions(oldest_first: list[HistoryItem], budget: int = MENTIONS_TOKEN_BUDGET) -> tuple[list[HistoryItem], int]:
    """The turn's own mentions that fit in ``budget`` tokens, oldest first, and how many were left out.

    The first (what began the conversation) and the newest (what to answer now) are always kept; then the
    newest before it, back to the first that no longer fits. What is left out is one run in the middle."""
    if len(oldest_first) <= 2:
        return list(oldest_first), 0
    first, rest = oldest_first[0], oldest_first[1:]
    spent = sum(estimate_tokens(item.text) + ITEM_OVERHEAD_TOKENS for item in (first, rest[-1]))
    tail = [rest[-1]]
    for item in reversed(rest[:-1]):
        spent += estimate_tokens(item.text) + ITEM_OVERHEAD_TOKENS
        if spent > budget:
            break
        tail.append(item)
    tail.reverse()
    return [first, *tail], len(oldest_first) - 1 - len(tail)
