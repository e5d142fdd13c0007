"""Typed settings, read from ``ASSISTANT_*`` variables (and an optional TOML file) in this one place.

Nothing else in the project reads ``os.environ``: code asks for a ``Settings`` (tests build their own and
hand it to ``create_app``). ``ASSISTANT_SETTINGS_FILE`` may name a TOML file whose keys are the field
names below; the environment wins over the file.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

PREFIX = "ASSISTANT_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable, never its value."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./assistant.db"
    sqlite_synchronous: str = "full"
    """``full``: an acknowledged mention or decision survives a power cut (each commit waits for the disk);
    ``normal``: survives a crash of the process, not of the machine, and commits cost less."""
    database_pool_size: int = 10
    """PostgreSQL connections one process (``serve`` or ``worker``) holds at most; a transaction that finds them
    all busy waits for one. A connection is held only for a transaction, never while a job waits for the
    model, so a worker running 32 jobs needs few. Keep processes x this below PostgreSQL's ``max_connections``."""
    secret_key: str = ""
    """Signs session cookies and CSRF tokens. Empty means a random one per process (demo only)."""
    debug: bool = False

    # The language model (any OpenAI-compatible chat-completions endpoint).
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = ""
    llm_timeout_seconds: float = 30.0
    llm_max_attempts: int = 4
    llm_max_in_flight: int = 32
    llm_backoff_initial_seconds: float = 0.5
    llm_backoff_max_seconds: float = 20.0
    llm_max_tokens: int = 400
    llm_token_limit_parameter: str = "max_tokens"
    """How the request names ``llm_max_tokens``: ``max_tokens``, or ``max_completion_tokens`` for models that
    refuse the older name (OpenAI's reasoning models)."""
    llm_redraft_schedule: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400)
    """After a fallback draft written because the model was down, the seconds before the model is asked again
    for that turn, one per try; once they are spent the fallback stays."""
    history_token_budget: int = 2000
    policy_max_redrafts: int = 2

    # The worker that drafts turns and delivers webhooks.
    worker_concurrency: int = 32
    job_lease_seconds: float = 60.0
    job_poll_seconds: float = 0.5
    memory_sweep_seconds: float = 30.0
    """How often a worker looks for promises falling due and turns waiting past the brand's ``max_wait``."""

    # The HTTP API.
    rate_limit_per_minute: int = 6000
    max_body_bytes: int = 1024 * 1024
    default_max_length: int = 2000
    """The length limit for platforms the service has no built-in rule for."""

    metrics_token: str = ""
    """When set, ``/metrics`` answers only ``Authorization: Bearer <metrics_token>`` (it counts across brands)."""

    # Webhooks.
    webhook_timeout_seconds: float = 10.0
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_allow_private_addresses: bool = False
    """Let webhooks go to loopback, private, link-local and other non-public addresses (a receiver on this host or
    network). Off: public addresses only, checked when a webhook is added and again before every delivery."""
    webhook_secret_key: str = ""
    """Encrypts the webhooks' signing secrets at rest; empty: derived from ``secret_key``. Keep it when you
    change ``secret_key``, or the stored secrets can no longer be read."""

    # Sign-in.
    session_max_age_seconds: int = 8 * 3600
    login_max_failures: int = 5
    """Sign-in attempts from one address for one account before each further one waits a growing delay."""
    login_lockout_seconds: int = 300
    """The longest such delay."""
    auth_failures_per_address: int = 20
    """Failed bearer-token authentications from one address before each further one waits a growing delay."""
    reviewer_token_days: int = 90
    """How long a reviewer token (``rt_…``) authenticates after it is issued."""

    # The queue page.
    undo_seconds: float = 5.0
    """How long the page holds an approval so the reviewer can undo it: the server (so the outbox and the
    webhooks) hears of the approval only when this has passed."""
    queue_poll_seconds: float = 5.0
    """How often the page re-reads the list when server-sent events are not available."""
    live_streams_max: int = 100
    """Open live-queue streams (``/queue/events``) per process; past it the page is told 503 and polls."""
    live_stream_seconds: float = 300.0
    """A live-queue stream ends after this long; the browser reconnects (and re-reads the list)."""
    live_check_seconds: float = 1.0
    """How often each stream asks the database whether the brand's queue changed (any process may change it)."""

    def __post_init__(self) -> None:
        if self.sqlite_synchronous not in ("full", "normal"):
            raise SettingsError(f"{PREFIX}SQLITE_SYNCHRONOUS must be full or normal")
        if self.database_pool_size < 1:
            raise SettingsError(f"{PREFIX}DATABASE_POOL_SIZE must be at least 1")
        if self.llm_token_limit_parameter not in ("max_tokens", "max_completion_tokens"):
            raise SettingsError(f"{PREFIX}LLM_TOKEN_LIMIT_PARAMETER must be max_tokens or max_completion_tokens")

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_secret_key(self) -> None:
        """Anything but the demo signs cookies with a key every process shares and a restart keeps."""
        if not self.secret_key:
            raise SettingsError(f"{PREFIX}SECRET_KEY is not set: give every process the same long random value "
                                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        settings_file = env.get(PREFIX + "SETTINGS_FILE")
        if settings_file:
            values.update(_read_toml(Path(settings_file)))
        for f in dataclasses.fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        if "llm_api_key" not in values and env.get("OPENAI_API_KEY"):
            values["llm_api_key"] = env["OPENAI_API_KEY"]
        return cls(**{name: _coerce(cls, name, value) for name, value in values.items()})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{PREFIX}SETTINGS_FILE {path}: {exc}") from None
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"{path}: unknown settings {', '.join(unknown)}")
    return data


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    kind = {f.name: f for f in dataclasses.fields(cls)}
    if name not in kind:
        raise SettingsError(f"unknown setting {name}")
    default = kind[name].default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else value
            return tuple(float(item) for item in items)
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{PREFIX}{name.upper()} has an invalid value") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings.from_env()


__all__ = ["Settings", "SettingsError", "get_settings"]
