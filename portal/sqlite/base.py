"""Django's SQLite backend, with writers queued fairly: in each process and between processes.

SQLite has one writer at a time. The settings open every transaction with BEGIN IMMEDIATE,
so a second writer used to wait in SQLite's busy handler, which sleeps 1, 2, 5, 10, ... ms
between tries: under a burst of webhooks, the web server's processes and threads spent more
time asleep than writing. Here a writer first queues for a lock file beside the database
(``flock``: the kernel wakes the next waiter the moment the lock is released, and frees it
when its holder dies, SIGKILL included), and for a lock in Python between the threads of one
process (``flock`` does not tell threads sharing a file apart). SQLite's own busy timeout
stays as the last line for any writer that comes another way (an autocommit statement).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base

_threads = threading.Lock()
_files: dict[str, tuple[int, int]] = {}  # lock file -> (pid that opened it, descriptor)
_files_guard = threading.Lock()


def _lock_file(database: str) -> int | None:
    """This process's descriptor of the database's lock file (a new one after a fork: a
    descriptor shared with the parent would share its lock)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = f"{database}.writer-lock"
    with _files_guard:
        opened = _files.get(path)
        if opened is None or opened[0] != os.getpid():
            opened = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            _files[path] = opened
        return opened[1]


# Past this a writer stops queueing here and leaves the wait to SQLite's busy timeout, which
# then ends in "database is locked" as it would without this backend (a stuck writer is an
# error to see, not a reason to wait for ever).
QUEUE_SECONDS = 20.0
POLL_SECONDS = 0.0002


def _flock(fd: int, deadline: float) -> bool:
    """The lock file, or False at the deadline; a non-blocking try every 0.2 ms (threads cannot
    be interrupted in a blocking flock, and the wait must end)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_threads = False
    _holds_file: int | None = None

    def _start_transaction_under_autocommit(self):
        deadline = time.monotonic() + QUEUE_SECONDS
        fd = _lock_file(str(self.settings_dict["NAME"]))
        self._holds_threads = _threads.acquire(timeout=QUEUE_SECONDS)
        if fd is not None and self._holds_threads and _flock(fd, deadline):
            self._holds_file = fd
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._writer_release()
            raise

    def _writer_release(self) -> None:
        fd, self._holds_file = self._holds_file, None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if self._holds_threads:
                self._holds_threads = False
                _threads.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._writer_release()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._writer_release()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._writer_release()
