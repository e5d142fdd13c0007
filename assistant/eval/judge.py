"""The LLM judge (``--judge-model``): a rubric score for each draft, and so an estimate of how many drafts a
reviewer would approve unchanged.

The judge is any model on the configured OpenAI-compatible endpoint, asked through the same ``ModelClient``
(retries, timeouts). Its prompt lives in ``prompts/eval_judge.*.j2``; the texts it grades are fenced as data
like the drafting prompt's. An answer that is not the asked-for JSON is recorded as a judge error, never as
a score.
"""

from __future__ import annotations

import json
import re
from typing import Any

from assistant.model.client import ModelClient
from assistant.model.templates import environment, template_hash
from assistant.errors import ModelUnavailable
from assistant.eval.dataset import Case

SYSTEM_TEMPLATE = "eval_judge.system.j2"
USER_TEMPLATE = "eval_judge.user.j2"
_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORES = ("answers", "uses_history", "voice")


def prompt_hash() -> str:
    return template_hash(SYSTEM_TEMPLATE, USER_TEMPLATE)


def messages(case: Case, draft: str, voice: str) -> list[dict[str, str]]:
    variables = {
        "brand_name": case.brand_name, "voice": voice, "platform": case.platform, "draft": draft,
        "history": [{"kind": "mention" if r.inbound else "reply", "text": r.text} for r in case.history],
        "mentions": [m.text for m in case.mentions],
    }
    return [{"role": "system", "content": environment.get_template(SYSTEM_TEMPLATE).render(variables)},
            {"role": "user", "content": environment.get_template(USER_TEMPLATE).render(variables)}]


def parse(text: str) -> dict[str, Any]:
    """The judge's scores from its answer: the first JSON object holding all four, each in range."""
    for found in _OBJECT.finditer(text):
        try:
            data = json.loads(found.group())
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        scores = {key: data.get(key) for key in _SCORES}
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 5 for v in scores.values()) \
                and isinstance(data.get("send_unchanged"), bool):
            return {**{k: float(v) for k, v in scores.items()}, "send_unchanged": data["send_unchanged"]}
    return {"error": "the judge's answer held no valid scores", "answer": text[:300]}


async def judge(client: ModelClient, case: Case, draft: str, voice: str) -> dict[str, Any]:
    try:
        result = await client.complete(messages(case, draft, voice))
    except ModelUnavailable as exc:
        return {"error": f"judge unavailable: {exc.reason}"}
    return parse(result.text)


__all__ = ["judge", "messages", "parse", "prompt_hash"]
