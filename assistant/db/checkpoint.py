"""SQLite: the write-ahead log is copied back into the database file by a thread of its own.

By default SQLite checkpoints inside whichever commit takes the log past 1,000 pages, so now and then one
mention's commit in the event loop also read and wrote up to 4 MB and, with ``synchronous=FULL``, waited for
the disk to flush the database file: every request in the process waited with it (issue 14: ingest p99 grew
with the store). Write connections therefore run ``wal_autocheckpoint=0`` and this thread runs a PASSIVE
checkpoint every half second: it never waits for a lock and never blocks writers or readers, and sqlite3 lets
go of the GIL while it works, so the loop goes on serving. If the thread is not running (a short CLI command),
SQLite still checkpoints when the last connection closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("assistant.db.checkpoint")

INTERVAL_SECONDS = 0.5


class Checkpointer:
    def __init__(self, path: Path, synchronous: str) -> None:
        self.path, self.synchronous = path, synchronous
        self.completed = 0
        """Checkpoints that ran to the end of the log (for tests and curiosity)."""
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
                busy, log_frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
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
