"""SQLite: the write-ahead log is copied back into the database file by a thread of its own.

By default SQLite checkpoints inside whichever commit takes the log past 1,000 pages, so now and then one
mention's commit in the event loop also read and wrote up to 4 MB and, with ``synchronous=FULL``, waited for
the disk to flush the database file: every request in the process waited with it (issue 14: ingest p99 grew
with the store). Write connections therefore run ``wal_autocheckpoint=0`` and this thread runs a PASSIVE
checkpoint every half second: it never waits for a lock and never blocks writers or readers, and sqlite3 lets
go of the GIL while it works, so the loop goes on serving. If the thread is not running (a short CLI command),
SQLite still checkpoints when the last connection closes.

A passive checkpoint alone never lets the log start over under steady writes: a writer starts the log from its
beginning only when every frame has been copied back, and by then another commit has always added some. The log
then grew by everything written (60-170 MB after 10 s of single ingest, 4 MB before this thread; the file stays
that large, and every page read searches the log's index). So once the log holds ``RESTART_FRAMES`` frames, the
passive checkpoint is followed by a RESTART one: it holds off writers only while it copies the few frames added
since (an in-loop write that finds the lock taken tries again shortly, ``Database.run_write``) and waits at most
``RESTART_BUSY_MS`` for the writer and readers of the moment; then the next writer starts the log over.

A restart holds the file's write lock while it flushes the log, copies what the last passive checkpoint left and
flushes the database file. With mentions by people spread over a 10M-interaction store (each commit writing
pages all over the file) that was ~50 ms twice a second, and each write that met it ran in a thread for 50-130
ms (the ingest p99 was 78 ms). So passive checkpoints first catch up with the writer, each copying what was
written during the one before, until one copies at most ``CATCH_UP_FRAMES``: the restart then has little to
copy or flush (measured: p50 21 ms with its wait for the writer, against 44-50 ms).

While the restart waits for the file's write lock, the process's own writers hold off (``restarting``, read by
``Database.run_write``): SQLite's busy handler only looks now and then (after 1, 2, 5, 10 ms), and a writer
committing back to back held the lock at nearly every look, so on a loaded machine restart after restart gave up
and the log grew by everything written again (104 MB after 3 s in CI).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("assistant.db.checkpoint")

INTERVAL_SECONDS = 0.5
RESTART_FRAMES = 1000
"""SQLite's own autocheckpoint size (about 4 MB of pages)."""
RESTART_BUSY_MS = 20
"""How long a restart waits for the writer and readers of the moment; past that it is tried again next time."""
CATCH_UP_FRAMES = 64
CATCH_UP_PASSES = 8
"""Before a restart, passive checkpoints repeat (at most this many) until one copies at most ``CATCH_UP_FRAMES``."""


class Checkpointer:
    def __init__(self, path: Path, synchronous: str) -> None:
        self.path, self.synchronous = path, synchronous
        self.completed = 0
        """Checkpoints that ran to the end of the log (for tests and curiosity)."""
        self.restarts = 0
        """Times the log was made to start over (for tests)."""
        self.restarting = False
        """True while a restart waits for the write lock or runs: this process's writers hold off meanwhile."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                if connection is None:
                    if not self.path.exists():
                        continue  # never create the file: it is made by the first migration
                    connection = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None,
                                                 check_same_thread=False)
                    connection.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
                    connection.execute(f"PRAGMA busy_timeout={RESTART_BUSY_MS}")
                busy, log_frames, copied = _checkpoint(connection, "PASSIVE")
                if log_frames >= RESTART_FRAMES:
                    for _ in range(CATCH_UP_PASSES):
                        before = copied
                        busy, log_frames, copied = _checkpoint(connection, "PASSIVE")
                        if copied - before <= CATCH_UP_FRAMES:
                            break
                    self.restarting = True
                    try:
                        busy, log_frames, copied = _checkpoint(connection, "RESTART")
                    finally:
                        self.restarting = False
                    self.restarts += 0 if busy else 1
                if not busy and log_frames >= 0 and copied == log_frames:
                    self.completed += 1
            except sqlite3.Error as exc:  # a busy or vanished file: try again next time
                log.debug("checkpoint of %s skipped: %s", self.path, exc)
                if connection is not None:
                    connection.close()
                    connection = None
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _checkpoint(connection: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    """(busy, frames in the log, frames copied back) after a checkpoint of ``mode``."""
    busy, log_frames, copied = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return busy, log_frames, copied
