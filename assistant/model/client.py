"""The language model behind one small interface: messages in, a ``ChatResult`` or ``ModelUnavailable`` out.

Any OpenAI-compatible chat-completions endpoint works. The ``openai`` client's own retries are off so
tenacity alone decides: 429, 408, 5xx, timeouts, broken connections and unusable answers (no choices,
empty text, a body that is not JSON) are retried with exponential backoff and jitter, or after the
server's ``Retry-After`` plus a jitter of up to a quarter of it (so the calls a 429 turned away together do
not all come back in the same instant and get turned away again); other 4xx answers are final. A semaphore bounds the requests in flight; it is
held per attempt, so a call sleeping between attempts leaves its slot to others.

Reasons are built from status codes and our own words, never from the exception or the response body,
so the API key cannot leak into a message or a log line (some providers echo part of it back on a 401).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from assistant.errors import ModelUnavailable
from assistant.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_SPREAD = 0.25
"""After a ``Retry-After`` of *n* seconds, each call waits *n* plus a random share of up to this fraction of *n*
(at least ``llm_backoff_initial_seconds``)."""


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    """Of the successful request alone: not the retries before it, nor the wait for a free slot."""
    attempts: int
    finish_reason: str | None = None
    """``length`` when the model stopped at the token limit (see ``drafting/hygiene.py``)."""


class _Failure(Exception):
    """One attempt that gave no usable answer: what a person should read, and whether to try again."""

    def __init__(self, what: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retryable = retryable
        self.retry_after = retry_after


class ModelClient:
    """One per process and event loop: it holds the connection pool and the in-flight limit."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = openai.AsyncOpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key or "not-needed",  # local servers (Ollama, llama.cpp) need none
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
        )
        self._in_flight = asyncio.Semaphore(settings.llm_max_in_flight)
        self._backoff = wait_exponential_jitter(multiplier=settings.llm_backoff_initial_seconds,
                                                max=settings.llm_backoff_max_seconds,
                                                jitter=settings.llm_backoff_initial_seconds)

    async def complete(self, messages: list[dict[str, str]]) -> ChatResult:
        """The model's reply to ``messages``; ``ModelUnavailable`` once the attempts are spent or refused."""
        attempts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _Failure) and exc.retryable),
            stop=stop_after_attempt(self._settings.llm_max_attempts),
            wait=self._wait,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await self._attempt(messages, attempts)
        except _Failure as failure:
            reason = f"{failure.what} after {attempts} attempt{'s' if attempts != 1 else ''}"
            log.warning("model unavailable: %s", reason)
            raise ModelUnavailable(reason, attempts) from None
        raise AssertionError("tenacity ended without a result or an exception")  # pragma: no cover

    async def aclose(self) -> None:
        await self._client.close()

    async def _attempt(self, messages: list[dict[str, str]], attempt_number: int) -> ChatResult:
        async with self._in_flight:
            started = time.perf_counter()
            try:
                completion = await self._client.chat.completions.create(
                    model=self._settings.llm_model,
                    messages=messages,  # type: ignore[arg-type]
                    **{self._settings.llm_token_limit_parameter: self._settings.llm_max_tokens},  # type: ignore[arg-type]
                )
            except openai.APITimeoutError:
                raise _Failure(f"model timed out ({self._settings.llm_timeout_seconds:g} s)", retryable=True) from None
            except openai.APIConnectionError:
                raise _Failure("model unreachable", retryable=True) from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                raise _Failure(f"model answered {status}", retryable=status in (408, 429) or status >= 500,
                               retry_after=_retry_after_seconds(exc.response.headers.get("retry-after"))) from None
            except ValueError:  # the body claimed to be JSON and was not
                completion = None
            latency_ms = round((time.perf_counter() - started) * 1000)
        return self._result(completion, latency_ms, attempt_number)

    def _result(self, completion: object, latency_ms: int, attempt_number: int) -> ChatResult:
        """The answer as a ``ChatResult``, or a retryable failure when it cannot be used as a reply."""
        if not isinstance(completion, ChatCompletion):  # the client hands back raw text for non-JSON bodies
            raise _Failure("model answered with a body that is not JSON", retryable=True)
        if not completion.choices:
            raise _Failure("model answered with no choices", retryable=True)
        text = (completion.choices[0].message.content or "").strip()
        if not text:
            raise _Failure("model answered with empty text", retryable=True)
        usage = completion.usage
        return ChatResult(text=text, model=completion.model or self._settings.llm_model,
                          prompt_tokens=usage.prompt_tokens if usage else None,
                          completion_tokens=usage.completion_tokens if usage else None,
                          latency_ms=latency_ms, attempts=attempt_number,
                          finish_reason=completion.choices[0].finish_reason)

    def _wait(self, state: RetryCallState) -> float:
        """The server's ``Retry-After`` when it sent one (within our maximum) plus a random spread, never less
        than it asked; else backoff with jitter."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Failure) and failure.retry_after is not None:
            settings = self._settings
            asked = min(failure.retry_after, settings.llm_backoff_max_seconds)
            spread = min(max(asked * RETRY_AFTER_SPREAD, settings.llm_backoff_initial_seconds),
                         settings.llm_backoff_max_seconds)
            return asked + random.uniform(0, spread)
        return self._backoff(state)


class LazyModelClient:
    """A process's one ``ModelClient`` for its jobs, made on first use (so a worker without a model configured
    never builds one) and closed by ``aclose``; the jobs sharing it share its connections and in-flight limit."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: ModelClient | None = None

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            self._client = ModelClient(self._settings)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (a past date means now)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _log_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("model attempt %d failed: %s; next in %.2f s", state.attempt_number, failure, wait)
