"""Engines for SQLite (the embedded default) and PostgreSQL.

SQLite gets WAL, ``busy_timeout`` and ``BEGIN IMMEDIATE`` for every write transaction, and writes inside one
process queue on an asyncio lock instead of spinning on the file lock; readers never wait (WAL). A write that
still cannot get the lock in time becomes ``Overloaded`` (503 with Retry-After), never a 500.

Every rule runs through ``run_write``/``run_read`` (see ``assistant.db``): a plain function of a synchronous
``Connection``, run as one transaction; there is no other way in (no ORM session). On PostgreSQL the whole
transaction runs in one greenlet on a pooled asyncpg connection (``_in_transaction``); a read runs in autocommit
(under READ COMMITTED each statement sees its own snapshot inside a transaction as well, so only the BEGIN and
COMMIT round trips go). On SQLite it runs on a synchronous ``sqlite3`` connection right in the event loop:
through aiosqlite every cursor call is a round trip to its thread (about four per statement, each waiting for
the GIL and the next loop turn), which was most of an ingest's time. A short SQLite transaction
costs less than those hops. The write still takes the same asyncio lock, its turn among the processes writing
the file (``writer_queue``) and ``BEGIN IMMEDIATE``; only if another process holds the turn or the file's write
lock (so the write would have to wait) does it wait without blocking the loop: it tries again in the loop for a
moment when the lock's holder is a writer outside the turns (the checkpoint thread); for another process's turn it
waits in a thread and then writes in the loop; only a file held longer by a writer outside the turns is written
from a thread. SQLite needs a file: an in-memory database would be a different, empty one on each
connection.

Durability: SQLite runs ``synchronous=FULL`` by default, so every committed write transaction (a group commit
of mentions, a decision) is on the disk before its caller is answered and survives a power cut. The writer
connection itself commits with ``NORMAL`` and ``run_write`` then flushes the log in a thread
(``_flush_log``) before it answers: the same promise, but the loop no longer stands still in ``fdatasync``
(a third of its time under single ingest on a 10M store) and serves meanwhile. A reader may see
a commit a few milliseconds before it is on the disk; its writer has not been answered yet. ``NORMAL``
(the setting ``sqlite_synchronous``) survives a crash of the process but may lose the last transactions on a
power cut. PostgreSQL's ``synchronous_commit=on`` (its default) already gives the first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, TypeVar

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_, greenlet_spawn

from assistant.db.checkpoint import Checkpointer
from assistant.db.group_commit import Commit, GroupCommit
from assistant.db.writer_queue import WriterQueue
from assistant.errors import Overloaded
from assistant.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000
LOCKED_RETRY_SECONDS = 0.25
LOCKED_RETRY_INTERVAL = 0.001
"""A write that has the writers' turn but finds the file locked by a writer outside the turns (the checkpoint
thread's restart, a migration) tries again in the loop every millisecond for this long before moving to a
thread: written in a thread, the transaction takes the GIL back from the busy loop at every statement and
took 60-130 ms (against 9 ms in the loop), every mention of the process waiting behind it."""
POOL_WAIT_SECONDS = 30.0
"""How long a PostgreSQL transaction waits for one of the pool's connections before it becomes ``Overloaded``
(503 with Retry-After): long enough for a burst of jobs to take turns, short of a request hanging for good."""
STORAGE_FULL_RETRY_SECONDS = 30
SQLITE_SYNCHRONOUS = ("full", "normal", "off")
"""``full`` (default): a committed transaction survives a power cut; ``normal``: survives a process crash;
``off``: nothing is flushed, for scratch databases that are thrown away (the eval's), never the service's."""

T = TypeVar("T")
log = logging.getLogger("assistant.db")


def normalize_url(url: str) -> str:
    """Accept the plain URLs operators write and pick the async driver for them."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:"):]
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    return url


_JSON = msgspec.json.Encoder()


def _json_text(value: Any) -> str:
    """JSON columns' text on both databases: msgspec writes it in a tenth of ``json.dumps``'s time (each mention
    of a 1,000-mention batch keeps its raw JSON). Plain UTF-8, no spaces: the same values as ``json.dumps``."""
    return _JSON.encode(value).decode()


def _sqlite_engine(url: str, *, immediate: bool, synchronous: str) -> Engine:
    """A synchronous engine on the file, with its pragmas and BEGIN. Used one transaction at a time (in the event
    loop, or by the thread a busy write moves to), so one connection is enough."""
    engine = create_engine(url, pool_size=1, max_overflow=1, pool_timeout=60, json_serializer=_json_text,
                           connect_args={"check_same_thread": False})
    _sqlite_events(engine, immediate=immediate, synchronous=synchronous)
    return engine


def _sqlite_events(engine: Engine, *, immediate: bool, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        if immediate:  # writers leave checkpoints to the checkpoint thread (db/checkpoint.py)
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if immediate:  # may find the file busy: SQLAlchemy's error, which run_write turns into a wait
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:  # a deferred BEGIN takes no lock and cannot be busy: straight to sqlite3
            conn.connection.dbapi_connection.execute("BEGIN")


_RUNS_AGAIN = ContextVar("_RUNS_AGAIN", default=False)
"""Set while a read takes a pooled connection: it runs again on a dead one, so it needs no ping."""


def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """PostgreSQL: a connection taken from the pool for a write begins its transaction at once, and that ``BEGIN``
    is the ping: a dead connection (the server restarted) makes the pool drop every connection it holds and open a
    new one, so the transaction runs on a live connection. SQLAlchemy's asyncpg adapter would send the same
    ``BEGIN`` at the transaction's first statement (PostgreSQL takes the snapshot there, not at ``BEGIN``); a
    separate ``SELECT 1`` before it was one of an ingest group commit's 13 round trips. SQLAlchemy's own
    ``pool_pre_ping`` costs three on asyncpg (BEGIN, the ping, ROLLBACK: for pgbouncer's transaction mode, not used
    here), which was three of a history read's eight round trips. Reads skip it (``Database.run_read`` runs again
    instead)."""
    if _RUNS_AGAIN.get():
        return
    try:
        if dbapi_connection.autocommit or dbapi_connection._transaction is not None:
            await_(dbapi_connection.driver_connection.execute("SELECT 1"))
        else:
            await_(dbapi_connection._start_transaction())
    except Exception as exc:
        raise InvalidatePoolError(f"the connection did not answer: {exc!r}") from exc


def _sync_url(url: str) -> str | None:
    """The pysqlite URL of a SQLite file; None for in-memory databases (each connection would have its own)."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("///") or rest in ("///", "///:memory:") or "mode=memory" in rest:
        return None
    return "sqlite+pysqlite:" + rest


class Database:
    """Owns the engines; ``run_write``/``run_read`` run a rule in one transaction on them."""

    def __init__(self, url: str, *, echo: bool = False, synchronous: str = "full",
                 pool_size: int = Settings.database_pool_size, pool_wait_seconds: float = POOL_WAIT_SECONDS) -> None:
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.checkpointer: Checkpointer | None = None
        if self.is_sqlite:
            sync_url = _sync_url(self.url)
            if sync_url is None:
                raise ValueError("SQLite needs a database file; an in-memory database is not supported")
            self._postgres = None
            self._write_lock = asyncio.Lock()
            # FULL: the log is flushed after each commit off the loop, before the write is answered (_flush_log)
            self._flushes_log = synchronous == "full"
            self._sqlite_write = _sqlite_engine(sync_url, immediate=True,
                                                synchronous="normal" if self._flushes_log else synchronous)
            self._sqlite_read = _sqlite_engine(sync_url, immediate=False, synchronous=synchronous)
            self._reader: Connection | None = None
            """The read connection, kept open for the thread that reads first (the server's loop, where reads run
            one at a time): checking a connection out of the pool and back for each read cost more than a
            history page's queries."""
            self._reader_thread = 0
            database_file = Path(sync_url.split("///", 1)[1].split("?", 1)[0])
            self._log_file = database_file.with_name(database_file.name + "-wal")
            self.checkpointer = Checkpointer(database_file, synchronous)
            self._writers = WriterQueue(database_file)
        else:
            # At most pool_size connections; past them a transaction waits its turn, up to pool_wait_seconds
            self._postgres = create_async_engine(self.url, pool_size=pool_size, max_overflow=0,
                                                 pool_timeout=pool_wait_seconds, echo=echo,
                                                 json_serializer=_json_text)
            event.listen(self._postgres.sync_engine, "checkout", _ping)
            self._pool_size, self._pool_wait_seconds = pool_size, pool_wait_seconds
            self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
            # reads need no transaction: under READ COMMITTED each statement sees its own snapshot either way
            self._postgres_reads = self._postgres.execution_options(isolation_level="AUTOCOMMIT")
        self._group_commits: dict[str, GroupCommit[Any, Any]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database, opened the way every process of the service opens it."""
        return cls(settings.database_url, synchronous=settings.sqlite_synchronous,
                   pool_size=settings.database_pool_size)

    def group_commit(self, name: str, commit: Commit) -> GroupCommit[Any, Any]:
        """This database's one group commit called ``name`` in this process, made with ``commit`` on first use:
        every caller of the same name shares its transactions."""
        found = self._group_commits.get(name)
        if found is None:
            found = self._group_commits[name] = GroupCommit(commit)
        return found

    @property
    def engines(self) -> set[Engine]:
        """Every synchronous engine this database's statements run on (to listen to them, as tests do)."""
        if self._postgres is not None:
            return {self._postgres.sync_engine}
        return {self._sqlite_write, self._sqlite_read}

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    async def run_write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` in one write transaction, committed when it returns."""
        if self._postgres is not None:
            async with _reachable(), self._guard(), self._turn():
                return await greenlet_spawn(_in_transaction, self._postgres.sync_engine.begin, fn, args)
        await asyncio.sleep(0)  # the write will run in the loop without yielding: let the tasks ready first go first
        async with self._write_lock, self._guard():
            done, result = False, None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LOCKED_RETRY_SECONDS
            while True:
                if not self._checkpoint_restarting():
                    if not self._writers.try_take():
                        break  # another process has the turn: wait for it in a thread
                    try:
                        done, result = self._write_now(fn, args)
                    finally:
                        self._writers.give_back()
                if done or loop.time() >= deadline:
                    break
                await asyncio.sleep(LOCKED_RETRY_INTERVAL)  # the file is locked by a writer outside the turns
            if not done:  # another process has the turn: wait for it in a thread, then write here in the loop
                done, result = await self._write_after_turn(fn, args)
            if not done:  # the turn is ours but a writer outside the turns still holds the file: wait in a thread
                result = await asyncio.to_thread(self._write_waiting, fn, args)
        if self._flushes_log:  # other writes may run meanwhile; this one is answered once its log is on the disk
            await asyncio.to_thread(_flush_log, self._log_file)
        return result

    def _checkpoint_restarting(self) -> bool:
        """The checkpoint thread wants the write lock to let the log start over (``db/checkpoint.py``)."""
        return self.checkpointer is not None and self.checkpointer.restarting

    def _write_now(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """In the loop, if the file's write lock is free at once; (False, None) when another writer holds it."""
        with self._sqlite_write.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA busy_timeout=0")
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                if _is_busy(exc):
                    return False, None
                raise
            finally:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            with transaction:
                return True, fn(conn, *args)

    async def _write_after_turn(self, fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """Wait in a thread for another process to hand over the writers' turn, then write in the loop, as
        ``_write_now`` does. Written in the thread instead, each statement waited for the busy loop's GIL: with two
        ``serve`` processes, half of each one's group commits ran that way, the turn held all the while."""
        taking = asyncio.get_running_loop().run_in_executor(None, self._writers.take)
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:  # the thread still gets the turn: it must not keep it
            taking.add_done_callback(lambda _: self._writers.give_back())
            raise
        try:
            return self._write_now(fn, args)
        finally:
            self._writers.give_back()

    def _write_waiting(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """In a thread: wait for this process's turn among the writers (``writer_queue``), then for the file (a
        writer outside the turns holds it past ``LOCKED_RETRY_SECONDS``: rare, so the GIL's toll is paid rarely)."""
        self._writers.take()
        try:
            with self._sqlite_write.connect() as conn, conn.begin():
                return fn(conn, *args)
        finally:
            self._writers.give_back()

    async def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` in one read transaction (on SQLite: in the loop, on the kept read connection;
        WAL readers never wait)."""
        if self._postgres is not None:
            return await self._read_postgres(fn, args)
        async with self._guard():
            conn = self._reader
            if conn is None or conn.closed:
                conn = self._reader = self._sqlite_read.connect()
                self._reader_thread = threading.get_ident()
            elif self._reader_thread != threading.get_ident():  # another thread's loop: a connection of its own
                with self._sqlite_read.connect() as own, own.begin():
                    return fn(own, *args)
            with conn.begin():
                return fn(conn, *args)

    async def _read_postgres(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """PostgreSQL: the read's statements in autocommit (no BEGIN and COMMIT, two of a history read's four
        round trips) on a connection taken without a ping (a third); a dead connection, which the ping would
        have found, is dropped by the pool on its first error, and the read runs once more on a live one."""
        runs_again = _RUNS_AGAIN.set(True)
        try:
            async with _reachable():
                try:
                    return await self._read_postgres_once(fn, args)
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                return await self._read_postgres_once(fn, args)
        finally:
            _RUNS_AGAIN.reset(runs_again)

    async def _read_postgres_once(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        async with self._guard(), self._turn():
            return await greenlet_spawn(_in_transaction, self._postgres_reads.sync_engine.connect, fn, args)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """PostgreSQL: wait for one of the pool's connections in order of arrival. The pool's own queue is not
        fair: a waiter woken for a connection handed back needs three turns of the loop to take it, a caller
        asking meanwhile takes it at once, and the waiter queues again at the end (counted: 1,500 of 3,500
        waits queued again, some 45 times). With 32 reads at once for a pool of 10, p50 was 2.7 ms and p99
        32 ms; ``asyncio.Semaphore`` serves its waiters first come, first served, and holders of a turn always
        find a connection free (the turn is given back after the connection)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Semaphore(self._pool_size))
        turns = self._turns[1]
        if not turns.locked():
            await turns.acquire()  # at once: no timer to set
        else:
            try:  # a timer, not wait_for, which runs every wait as a task of its own
                async with asyncio.timeout(self._pool_wait_seconds):
                    await turns.acquire()
            except TimeoutError:
                raise PoolTimeout() from None
        try:
            yield
        finally:
            turns.release()

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except PoolTimeout:
            raise Overloaded(2, "Every database connection is busy; retry shortly") from None
        except OperationalError as exc:
            if _is_busy(exc):
                raise Overloaded(2, "The database is busy; retry shortly") from None
            if _is_storage_full(exc.orig):
                raise _storage_full() from None
            raise
        except DBAPIError as exc:
            if _is_serialization_failure(exc):
                raise Overloaded(1, "The database is busy; retry shortly") from None
            if _is_storage_full(exc.orig):
                raise _storage_full() from None
            raise
        except sqlite3.OperationalError as exc:  # bulk writes call sqlite3 directly (db/bulk.py)
            if _is_storage_full(exc):
                raise _storage_full() from None
            raise

    async def dispose(self) -> None:
        if self._postgres is not None:
            await self._postgres.dispose()
            return
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._sqlite_write.dispose()
        self._sqlite_read.dispose()
        self._writers.close()


def _in_transaction(open_transaction: Callable[[], Any], fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """PostgreSQL: the whole transaction (the pool's checkout, ``fn``, the commit or rollback, the check-in) in
    the one greenlet ``greenlet_spawn`` starts. SQLAlchemy's ``AsyncConnection`` starts one for each of these steps
    and runs its exit as a shielded task of its own: a sixth of a history read's CPU."""
    with open_transaction() as conn:
        return fn(conn, *args)


def _flush_log(path: Path) -> None:
    """Wait for the disk to hold SQLite's write-ahead log as written so far (every commit before this call)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # no log: every commit is in the database file, which a checkpoint flushed
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def sqlite_write_problem(url: str) -> str | None:
    """Why this process cannot write the SQLite database at ``url`` (read-only file, folder or mount), in one
    line; None when it can. The probe rewrites the header's ``user_version`` with its own value in a
    transaction that is rolled back."""
    sync_url = _sync_url(normalize_url(url))
    if sync_url is None:
        return None
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.isolation_level = None
            version = raw.execute("PRAGMA user_version").fetchone()[0]
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                raw.execute("ROLLBACK")
    except (OperationalError, sqlite3.Error) as exc:
        reason = str(getattr(exc, "orig", exc) or exc)
        return (f"cannot write the database {make_url(sync_url).database!r}: {reason} (the process must be able to "
                "write the file and its folder, where SQLite keeps its journal)")
    finally:
        engine.dispose()
    return None


def postgres_write_problem(url: str) -> str | None:
    """Why this process cannot write the PostgreSQL database at ``url``, in one line; None when it can. A read-only
    connection (``default_transaction_read_only`` for the role or database, a standby) and a role without the
    right to write the service's tables are both found, by an update that matches no row, rolled back."""
    shown = make_url(url).render_as_string(hide_password=True)

    def probe(conn: Connection) -> str | None:
        if conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on":
            return (f"cannot write the database {shown}: the connection is read-only (default_transaction_read_only "
                    "is on for this role or database, or the server is a standby)")
        try:
            conn.exec_driver_sql("UPDATE jobs SET id = id WHERE false")
        except DBAPIError as exc:
            reason = _driver_reason(exc)
            if "does not exist" in reason:
                return (f"the database {shown} has no tables this role can see: run `assistant db upgrade`, or "
                        "connect as a role that may use them")
            return f"cannot write the database {shown}: {reason}"
        return None

    async def check() -> str | None:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                try:
                    return await conn.run_sync(probe)
                finally:
                    await conn.rollback()
        finally:
            await engine.dispose()

    try:
        return asyncio.run(check())
    except (DBAPIError, OSError) as exc:
        return f"cannot reach the database {shown}: {_driver_reason(exc)}"


def _driver_reason(exc: BaseException) -> str:
    """The driver's own one-line message (asyncpg's error, not SQLAlchemy's wrapping of it)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(getattr(orig, "__cause__", None) or orig) or type(orig).__name__
    return text.strip().splitlines()[0]


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def _is_storage_full(orig: BaseException | None) -> bool:
    """The disk (or SQLite's ``max_page_count``) is full: SQLITE_FULL, or PostgreSQL's class 53 (insufficient
    resources: disk full, out of memory, too many connections)."""
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(orig)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    return isinstance(code, str) and code.startswith("53")


def _storage_full() -> Overloaded:
    """The transaction was rolled back, so nothing of the request was stored or acknowledged: 503."""
    return Overloaded(STORAGE_FULL_RETRY_SECONDS, "The database is out of room (disk, memory or connections) right "
                                                  "now; nothing was stored, retry later")


_UNREACHABLE_STATES = {"57P01", "57P02", "57P03"}
"""PostgreSQL shutting down (by an administrator or after a crash) or not yet accepting connections; class 08
(connection exceptions) counts too."""


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """PostgreSQL out of reach (the connection refused, the server shutting down or starting up, the connection
    lost mid-transaction) is ``Overloaded``: 503 with Retry-After, not a 500 with a traceback. The request may be
    retried as it is: mentions are stored once per ``external_id``, and decisions check the turn's version. A read
    whose pooled connection died has already run once more on a new one (``Database._read_postgres``)."""
    try:
        yield
    except OSError as exc:  # refused, reset or timed out while connecting
        raise _unreachable(exc) from None
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", None) or ""
        if exc.connection_invalidated or state in _UNREACHABLE_STATES or state.startswith("08"):
            raise _unreachable(exc.orig or exc) from None
        raise


def _unreachable(cause: BaseException) -> Overloaded:
    """One line in the log (the driver's words name the server's address, never the URL's password)."""
    words = str(cause).splitlines()
    log.warning("PostgreSQL cannot be reached: %s: %s", type(cause).__name__, words[0][:200] if words else "")
    return Overloaded(2, "The database cannot be reached right now; retry shortly")


def _is_serialization_failure(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in {"40001", "40P01"}
