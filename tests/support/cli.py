"""The ``assistant`` command run inside the test's process with click's runner, against the test database.

Faster than a process per call and it sees the real exception when a command breaks. A few tests still start
real processes (``test_cli.py``, the workers, the scheduler client): they prove the entry point itself.
"""

from __future__ import annotations

from click.testing import CliRunner, Result

from assistant import cli
from assistant.settings import get_settings


def run_cli(database_url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """One command, as ``assistant ARGS`` with ``ASSISTANT_DATABASE_URL`` (and ``env``) set. A command that ends
    in an exception other than a clean exit (a ``ClickException`` exits 1) fails the test with that exception.
    The commands run their own event loop: from an async test, call this through ``asyncio.to_thread``."""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.main, list(args), input=stdin,
                                    env={"ASSISTANT_DATABASE_URL": database_url, "ASSISTANT_SETTINGS_FILE": None,
                                         **(env or {})})
    finally:
        get_settings.cache_clear()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
