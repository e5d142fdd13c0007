"""``ModelClient`` against the fake model server: the real ``openai`` client, real HTTP, our retries."""

from __future__ import annotations

import asyncio
import email.utils
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from assistant.model.client import ModelClient, _retry_after_seconds
from assistant.errors import ModelUnavailable
from assistant.settings import Settings
from tests.support.fake_llm import FakeLLM, Response

MESSAGES = [{"role": "system", "content": "You draft replies."},
            {"role": "user", "content": "<<<PERSON\nMiriam Okafor (@miri)\n>>>\n<<<MENTION\nwhere is my order\n>>>"}]

MakeClient = Callable[..., ModelClient]


@pytest.fixture
async def model(fake_llm: FakeLLM) -> AsyncIterator[MakeClient]:
    """Builds clients on the fake model with fast backoff; closes them after the test."""
    clients: list[ModelClient] = []

    def make(**changes: Any) -> ModelClient:
        settings = Settings(llm_base_url=fake_llm.base_url, llm_model="test-model", llm_timeout_seconds=5.0,
                            llm_max_attempts=4, llm_backoff_initial_seconds=0.01, llm_backoff_max_seconds=0.05)
        clients.append(ModelClient(settings.replace(**changes)))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


def gaps(fake: FakeLLM) -> list[float]:
    """Seconds between consecutive requests, as the server saw them."""
    arrivals = [request.at for request in fake.requests]
    return [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]


async def test_a_model_call_keeps_the_model_url_out_of_the_log(fake_llm: FakeLLM, model: MakeClient,
                                                              service_logging: pytest.LogCaptureFixture) -> None:
    """A model's base URL may carry a password: the HTTP client's line per request, which names the whole URL,
    stays out of the service's log."""
    result = await model().complete(MESSAGES)

    assert result.text and len(fake_llm.requests) == 1
    assert fake_llm.base_url not in service_logging.text and "chat/completions" not in service_logging.text


async def test_a_reply_comes_back_with_usage_model_and_latency(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.enqueue(Response(delay=0.2))

    result = await model(llm_max_tokens=123).complete(MESSAGES)

    assert result.text == "Hi Miriam Okafor, thanks for telling us. We are looking into it now."
    assert result.model == "test-model"
    assert (result.prompt_tokens, result.completion_tokens) == (14, 13)  # the fake counts words
    assert result.attempts == 1
    assert 200 <= result.latency_ms < 2000
    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.json["messages"] == MESSAGES
    assert (request.json["model"], request.json["max_tokens"]) == ("test-model", 123)
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_retry_after_is_honoured(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.enqueue(Response(status=429, headers={"Retry-After": "1"}))

    result = await model(llm_backoff_max_seconds=5.0).complete(MESSAGES)

    assert result.attempts == 2
    [gap] = gaps(fake_llm)
    assert 0.95 <= gap < 3


async def test_calls_turned_away_together_come_back_no_sooner_than_asked_and_not_together(
        fake_llm: FakeLLM, model: MakeClient) -> None:
    """Issue 13, finding 8: a 429 with ``Retry-After`` to every call in flight must not bring them all back in the
    same instant (to be turned away again): each waits at least what the server asked, plus its own jitter."""
    calls = 12
    fake_llm.enqueue(*[Response(status=429, headers={"Retry-After": "1"})] * calls)
    client = model(llm_backoff_max_seconds=5.0)

    results = await asyncio.gather(*(client.complete([*MESSAGES, {"role": "user", "content": f"call {n}"}])
                                     for n in range(calls)))

    assert [result.attempts for result in results] == [2] * calls
    arrivals: dict[str, list[float]] = {}
    for request in fake_llm.requests:
        arrivals.setdefault(request.json["messages"][-1]["content"], []).append(request.at)
    waits = [second - first for first, second in arrivals.values()]
    assert len(waits) == calls
    assert min(waits) >= 1.0, "no call may come back before the Retry-After the server asked for"
    retried_at = sorted(second for _, second in arrivals.values())
    assert retried_at[-1] - retried_at[0] > 0.03, "the retries came back together"
    spread = {round(wait, 2) for wait in waits}  # jitter up to a quarter of 1 s: about ten of 25 bins of 10 ms
    assert len(spread) >= 4, f"the waits fell in {len(spread)} bins of 10 ms: the jitter is missing"


async def test_retry_after_is_capped_at_the_longest_backoff(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.enqueue(Response(status=503, headers={"Retry-After": "120"}))

    result = await model(llm_backoff_max_seconds=0.2).complete(MESSAGES)

    assert result.attempts == 2
    [gap] = gaps(fake_llm)
    assert 0.15 <= gap < 1


@pytest.mark.parametrize(("header", "low", "high"), [
    (None, None, None),
    ("2", 2, 2),
    ("0.5", 0.5, 0.5),
    ("-3", 0, 0),
    ("soon", None, None),
])
def test_retry_after_reads_seconds(header: str | None, low: float | None, high: float | None) -> None:
    seconds = _retry_after_seconds(header)

    if low is None:
        assert seconds is None
    else:
        assert seconds is not None and low <= seconds <= high


@pytest.mark.parametrize(("from_now", "low", "high"), [(-60, 0, 0), (30, 28, 30)])
def test_retry_after_reads_http_dates(from_now: float, low: float, high: float) -> None:
    moment = datetime.now(timezone.utc) + timedelta(seconds=from_now)

    seconds = _retry_after_seconds(email.utils.format_datetime(moment, usegmt=True))

    assert seconds is not None and low <= seconds <= high


@pytest.mark.parametrize("status", [429, 500, 502, 503, 408])
async def test_passing_trouble_is_retried(fake_llm: FakeLLM, model: MakeClient, status: int) -> None:
    fake_llm.enqueue(Response(status=status), Response(status=status))

    result = await model().complete(MESSAGES)

    assert result.attempts == 3
    assert len(fake_llm.requests) == 3
    assert all(gap >= 0.01 for gap in gaps(fake_llm))  # a backoff, however short, between attempts


async def test_a_model_that_stays_down_is_unavailable(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.default = Response(status=500)

    with pytest.raises(ModelUnavailable) as caught:
        await model(llm_max_attempts=3).complete(MESSAGES)

    assert (caught.value.reason, caught.value.attempts) == ("model answered 500 after 3 attempts", 3)
    assert len(fake_llm.requests) == 3


async def test_a_hanging_model_times_out_and_is_retried(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.default = Response.hang()
    started = time.monotonic()

    with pytest.raises(ModelUnavailable) as caught:
        await model(llm_timeout_seconds=0.3, llm_max_attempts=2).complete(MESSAGES)

    assert (caught.value.reason, caught.value.attempts) == ("model timed out (0.3 s) after 2 attempts", 2)
    assert len(fake_llm.requests) == 2
    assert 0.6 <= time.monotonic() - started < 3


UNUSABLE = [
    pytest.param(Response.garbage(), "model answered with a body that is not JSON", id="garbage as JSON"),
    pytest.param(Response.garbage("text/html"), "model answered with a body that is not JSON", id="garbage as HTML"),
    pytest.param(Response.no_choices(), "model answered with no choices", id="no choices"),
    pytest.param(Response(text=""), "model answered with empty text", id="empty text"),
    pytest.param(Response(text=" \n "), "model answered with empty text", id="blank text"),
]


@pytest.mark.parametrize(("answer", "what"), UNUSABLE)
async def test_an_unusable_answer_is_retried(fake_llm: FakeLLM, model: MakeClient, answer: Response,
                                             what: str) -> None:
    fake_llm.enqueue(answer)

    result = await model().complete(MESSAGES)

    assert result.attempts == 2
    assert result.text.startswith("Hi Miriam")


@pytest.mark.parametrize(("answer", "what"), UNUSABLE)
async def test_only_unusable_answers_make_the_model_unavailable(fake_llm: FakeLLM, model: MakeClient,
                                                                answer: Response, what: str) -> None:
    fake_llm.default = answer

    with pytest.raises(ModelUnavailable) as caught:
        await model(llm_max_attempts=2).complete(MESSAGES)

    assert (caught.value.reason, caught.value.attempts) == (f"{what} after 2 attempts", 2)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_refusal_is_not_retried(fake_llm: FakeLLM, model: MakeClient, status: int) -> None:
    fake_llm.default = Response(status=status)

    with pytest.raises(ModelUnavailable) as caught:
        await model().complete(MESSAGES)

    assert (caught.value.reason, caught.value.attempts) == (f"model answered {status} after 1 attempt", 1)
    assert len(fake_llm.requests) == 1


async def test_an_unreachable_model_is_unavailable(model: MakeClient) -> None:
    with FakeLLM() as stopped:
        base_url = stopped.base_url

    with pytest.raises(ModelUnavailable) as caught:
        await model(llm_base_url=base_url, llm_max_attempts=2).complete(MESSAGES)

    assert (caught.value.reason, caught.value.attempts) == ("model unreachable after 2 attempts", 2)


async def test_requests_in_flight_are_bounded(fake_llm: FakeLLM, model: MakeClient) -> None:
    fake_llm.default = Response(delay=0.2)
    client = model(llm_max_in_flight=2)

    results = await asyncio.gather(*(client.complete(MESSAGES) for _ in range(6)))

    assert [result.attempts for result in results] == [1] * 6
    assert fake_llm.peak_in_flight == 2


async def test_the_api_key_never_shows_in_errors_or_logs(fake_llm: FakeLLM, model: MakeClient,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-live-DO-NOT-LEAK-4242"
    fake_llm.enqueue(Response(status=500, body={"error": {"message": f"upstream refused {secret}"}}))
    fake_llm.default = Response(status=401, body={"error": {"message": f"Incorrect API key provided: {secret}"}})
    caplog.set_level("DEBUG")

    with pytest.raises(ModelUnavailable) as caught:
        await model(llm_api_key=secret).complete(MESSAGES)

    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {secret}"
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + caplog.text
    assert "model answered 401 after 2 attempts" in shown
    assert "model attempt 1 failed" in caplog.text  # the retry was logged: the log checked below is not empty
    assert secret not in shown
    assert "DO-NOT-LEAK" not in shown
