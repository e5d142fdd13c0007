"""How long checking one draft of 280 (as X counts) takes with a realistic policy (50 banned phrases, 20
banned patterns, every other rule on), beside a baseline of 70 plain `str.find` calls on the same text.
Target: median at most 1 ms per check."""

from __future__ import annotations

import statistics
import time

from assistant.policy import check_text, count_length, load_policy

ROUNDS = 2000
PHRASES = [f"corporate filler number {n}" for n in range(48)] + ["valued customer",
                                                                "we apologize for any inconvenience"]
PATTERNS = [rf"(?i)\bpromis(e|ed|ing) {n}\b" for n in range(19)] + [r"(?i)\bguarantee[ds]?\b"]
DRAFT = ("@miriam Thanks for telling us, Miriam. The parcel left our depot late, which is on us, not you. "
         "A new one ships out today and the tracking link is at help.acme.example/orders/119239 so you can "
         "follow it. If it is not with you by Friday, reply here and I will sort it myself 🙏 ^JS")


def _policy_source() -> str:
    quoted = lambda items: ", ".join(f"'{item}'" for item in items)
    return f"""
[voice]
sign_off = "^{{initials}}"
[rules]
banned_phrases = [{quoted(PHRASES)}]
banned_patterns = [{quoted(PATTERNS)}]
max_emojis = 1
max_hashtags = 0
allowed_link_domains = ["help.acme.example"]
only_mention_author = true
"""


def _timings(check) -> list[float]:
    """Microseconds per call, one sample per call."""
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        check()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _figures(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return f"{name:<42} median {statistics.median(samples):8.1f} µs   p99 {p99:8.1f} µs"


def run() -> list[str]:
    policy = load_policy(_policy_source())
    needles = [phrase.lower() for phrase in PHRASES] + [f"promise {n}" for n in range(20)]
    assert count_length("x", DRAFT) == 280 and len(needles) == 70
    assert check_text(policy, DRAFT, platform="x", author_handle="miriam") == []

    check = lambda: check_text(policy, DRAFT, platform="x", author_handle="miriam")

    def baseline() -> list[int]:
        lowered = DRAFT.lower()
        return [lowered.find(needle) for needle in needles]

    for warm_up in (check, baseline):
        warm_up()
    return [
        f"# {ROUNDS} checks of a draft of 280 as x counts it, {len(PHRASES)} phrases, {len(PATTERNS)} patterns",
        _figures("check_text (every rule, x length)", _timings(check)),
        _figures("baseline: 70 str.find on lowered text", _timings(baseline)),
    ]
