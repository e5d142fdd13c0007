"""SQLite: the processes writing one file take turns in the kernel's queue, not in SQLite's busy handler.

SQLite's busy handler sleeps between tries, longer each time (up to 100 ms), so with two ``serve`` processes
ingesting, the one that found the write lock taken slept while the other took it again and again: the pair
served half of what one process did, with p99 over a second. Every write transaction therefore first takes
an ``flock`` on a file beside the database (``<file>-writers``). A process that finds it taken waits for it in
a thread, and the kernel hands it over the moment the holder lets go. The holder keeps it only for one
transaction, which never waits on anything but its own statements (``Database.run_write`` runs the rule
without yielding), and a process that dies lets go of it with its file descriptors.

Writers that do not take turns here (a migration, a backup, another program) still meet ``BEGIN IMMEDIATE``
and ``busy_timeout`` as before: the queue only orders the service's own processes.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger("assistant.db")


class WriterQueue:
    def __init__(self, database_file: Path) -> None:
        self.path = database_file.with_name(database_file.name + "-writers")
        self._fd: int | None = None
        self._pid = 0
        self._unusable = False

    def try_take(self) -> bool:
        """Take the turn if nobody holds it; False when another process does (or the queue cannot be used)."""
        fd = self._descriptor()
        if fd is None:
            return True  # no queue: BEGIN IMMEDIATE and busy_timeout decide alone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def take(self) -> None:
        """Wait for the turn (in a thread: it blocks until the holder lets go)."""
        fd = self._descriptor()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)

    def give_back(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def _descriptor(self) -> int | None:
        """This process's own descriptor: a forked child must not share its parent's (a lock taken through a
        shared descriptor would be both processes' at once)."""
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        if self._unusable:
            return None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("SQLite writers queue %s cannot be used (%s); writers wait in SQLite's busy handler",
                        self.path, exc.strerror)
            self._unusable = True
            return None
        self._pid = os.getpid()
        return self._fd
