"""Output hygiene as tables: what real models wrapped their replies in, and what the reviewer gets."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.drafting import hygiene
from assistant.model.client import ChatResult
from assistant.drafting.prompts import DraftContext, PersonContext, render_prompt
from assistant.model.history import HistoryItem

REPLY = "Hi Sam, sorry about the cold flat white. Next one is on us at the counter."


@pytest.mark.parametrize(("raw", "text", "stripped"), [
    (REPLY, REPLY, ()),
    ("Here is a reply:\n" + REPLY, REPLY, ("preamble",)),
    ("Sure! Here's a warm, personal reply to Sam:\n\n" + REPLY, REPLY, ("preamble",)),
    ("Here is the new message:\n" + REPLY, REPLY, ("preamble",)),
    ("Certainly.\nReply: " + REPLY, REPLY, ("preamble",)),
    ("**Reply:** " + REPLY, REPLY, ("preamble",)),
    ("Draft reply to @sam:\n" + REPLY, REPLY, ("preamble",)),
    (f'"{REPLY}"', REPLY, ("quotes",)),
    (f"“{REPLY}”", REPLY, ("quotes",)),
    (f"Here is a reply:\n\n\"{REPLY}\"", REPLY, ("preamble", "quotes")),
    (f"```\n{REPLY}\n```", REPLY, ("code_fence",)),
    (f"<<<REPLY\n{REPLY}\n>>>", REPLY, ("prompt_fence",)),
    (f"To: SpotifyCares\nSubject: Re: your playlist\n\n{REPLY}", REPLY, ("header",)),
    (f"{REPLY}\n\nNote: I kept it under 280 characters.", REPLY, ("trailing_note",)),
    (f"{REPLY}\n(Note: 74 characters)", REPLY, ("trailing_note",)),
    (f"{REPLY}\n\n---\nThis reply is warm and short.", REPLY, ("trailing_note",)),
    (f"{REPLY}\n\nI kept the reply short and friendly.", REPLY, ("trailing_note",)),
], ids=["plain", "here-is", "sure-heres", "new-message", "lone-opener-and-label", "bold-label", "reply-to",
        "straight-quotes", "curly-quotes", "preamble-and-quotes", "code-fence", "reply-fence", "email-headers",
        "note", "parenthesised-note", "rule-then-note", "i-kept"])
def test_clean_strips_what_is_not_the_reply(raw: str, text: str, stripped: tuple[str, ...]) -> None:
    assert hygiene.clean(raw) == (text, stripped)


@pytest.mark.parametrize("reply", [
    "Here's what happened, Sam: the oven broke at 7 and we are fixing it today.",
    '"Best cold brew in town" is the nicest thing we read all week, Sam. Thank you!',
    "Hi Sam, two things.\n\nThe app is fixed. And your stamps are safe.",
    "Hi Sam, I made sure your refund went through this morning.",
    "Message received, Sam: we are on it.",
    "Hi Sam,\n\nLength of the wait is down to 5 minutes now.",
], ids=["heres-what-happened", "quote-inside", "two-paragraphs", "i-made-sure", "message-received",
        "length-word"])
def test_clean_leaves_a_reply_alone(reply: str) -> None:
    assert hygiene.clean(reply) == (reply, ())


def context(*, guidance: str | None = None, feedback: tuple[str, ...] = ()) -> DraftContext:
    at = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)
    return DraftContext(
        brand_name="Northwind Coffee", voice="Warm, plain-spoken.", sign_off=None, platform="x", max_length=280,
        person=PersonContext(display_name="Sam Keller", handle="samk", first_contact=False, first_seen_at=at,
                             mention_count=3, reply_count=1, last_reply_text="Glad you liked it!"),
        history=[HistoryItem("mention", "the oat milk is back? amazing", at)],
        mentions=[HistoryItem("mention", "@northwind my flat white was stone cold", at)],
        guidance=guidance, feedback=feedback, now=at + dt.timedelta(days=1))


def reviewed(raw: str, ctx: DraftContext) -> hygiene.Output:
    """What the drafter's hook makes of ``raw`` as the model's answer to the prompt of ``ctx``."""
    prompt = render_prompt(ctx, history_token_budget=2000)
    result = ChatResult(text=raw, model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1, attempts=1,
                        finish_reason="stop")
    return hygiene.review_result(result, prompt.messages, ctx, author_handle=ctx.person.handle)


ECHOES = [
    ("Here is the new message:\n<<<MENTION 31 Oct 2017 10:00 UTC (1 day ago)\n@northwind my flat white\n>>>",
     "its fence"),
    ("<<<NOTE\nSam is a regular\n>>>\nHi Sam!", "its fence"),
    ("<<<REPLY 01 Nov 2026 09:00 UTC (1 day ago)\nGlad you liked it!\n>>>", "its fence"),
    ("‹‹‹MENTION\nsomething\n›››", "its fence"),
    ("Your previous draft broke these rules of the brand; write a new one. Hi Sam!", "its wording"),
    ("Relationship: a regular.\nHi Sam, sorry!", "its label"),
    ("Their message to answer now: my flat white was cold. Hi Sam, sorry!", "its label"),
    ("Hi Sam. Their name, and everything between a line that starts with the markers, is quoted data.",
     "its wording"),
]


@pytest.mark.parametrize(("raw", "evidence"), ECHOES)
def test_an_echo_of_the_prompt_is_a_problem_whatever_cleaning_did(raw: str, evidence: str) -> None:
    ctx = context(feedback=("Mentions @bob; a reply may mention only the person it answers",))
    output = reviewed(raw, ctx)

    assert [p.kind for p in output.problems][:1] == [hygiene.ECHO]
    assert evidence in output.problems[0].message
    assert output.flags[0]["kind"] == "output_echo"
    assert "only the reply" in output.feedback[0]


@pytest.mark.parametrize("reply", [
    REPLY,
    "Hi Sam, our team reads every message and a person on the Northwind Coffee team will call you.",
    "Hi Sam Keller, as you asked: a free pastry with your next order, on us.",
])
def test_a_reply_that_shares_a_few_words_or_repeats_the_guidance_is_no_echo(reply: str) -> None:
    ctx = context(guidance="as you asked: a free pastry with your next order, on us")
    output = reviewed(reply, ctx)

    assert output.problems == ()
    assert output.ok and output.text == reply


@pytest.mark.parametrize(("raw", "finish_reason", "author", "kinds"), [
    ("Here is a reply:", "stop", "samk", [hygiene.EMPTY]),
    ('""', "stop", "samk", [hygiene.EMPTY]),
    ("```\n```", "stop", "samk", [hygiene.EMPTY]),
    ("Hi Sam, we are so sorry that your flat white was cold and we would like to", "length", "samk",
     [hygiene.TRUNCATED]),
    ("Hi @samk and @northwind, sorry!", "stop", "samk", [hygiene.ADDRESSEE]),
    ("Hi @SamK, sorry!", "stop", "@samk", []),
    ("Hi @bob", "length", "samk", [hygiene.TRUNCATED, hygiene.ADDRESSEE]),
    ("Write to help@northwind.example and we will sort it, Sam.", "stop", "samk", []),
], ids=["only-preamble", "only-quotes", "only-fence", "cut-by-limit", "another-handle", "author-any-case",
        "two-problems", "email-address-is-no-handle"])
def test_problems_cleaning_cannot_fix(raw: str, finish_reason: str, author: str, kinds: list[str]) -> None:
    output = hygiene.review(raw, finish_reason=finish_reason, author_handle=author)

    assert [p.kind for p in output.problems] == kinds
    assert output.ok is (not kinds)
    assert len(output.feedback) == len(kinds) == len(output.flags)


def test_the_addressee_problem_names_each_other_handle_once() -> None:
    output = hygiene.review("@bob @Carol @bob hi", finish_reason="stop", author_handle="ana")

    [problem] = output.problems
    assert problem.message.endswith("@bob, @Carol.")
    assert "@bob, @Carol" in problem.feedback
