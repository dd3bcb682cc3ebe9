"""Waking one waiting thread without a GIL hand-off in between.

A thread blocked on a ``threading.Lock`` that another thread releases wakes while the
releaser still holds the GIL: on a busy machine it preempts the releaser, finds the GIL taken
and sleeps again, two context switches for nothing.  Here a waiting thread reads its own
eventfd instead, and the waker writes to it, a system call made without the GIL, so the woken
thread takes the GIL at once.  Each thread keeps one eventfd (closed with the thread); where
``os.eventfd`` is missing, the descriptors run out, more than :data:`MAX_FDS` threads of the
process already keep one, or ``VIRT_REMOTE_WAKE=lock``, a lock.

A wait goes on until its own flag is set (the flag is set before the write), so a wake-up
left over in a thread's eventfd from an earlier wait never ends a later one early.  A thread
that wakes its own wait (it read the answer itself: ``SSHLink.read_until``) only sets the flag.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from threading import get_ident

__all__ = ["EVENTFD", "Wake", "thread_fd"]

EVENTFD = hasattr(os, "eventfd") and os.environ.get("VIRT_REMOTE_WAKE") != "lock"
#: at most this many threads of a process keep an eventfd (a daemon with many clients, or a
#: program with many calling threads, must not spend its descriptors on them): beyond, locks
MAX_FDS = 256
_local = threading.local()
_count_lock = threading.Lock()
_count = 0


class ThreadFd:
    """A thread's eventfd, closed when the thread ends (its thread-local goes) and no waiter
    refers to it any more, so that a late wake-up never writes to a number reused by another
    file."""

    __slots__ = ("fd", "pid")

    def __init__(self) -> None:
        global _count
        self.fd = -1
        with _count_lock:
            if _count >= MAX_FDS:
                raise OSError(f"more than {MAX_FDS} threads wait on eventfds")
            self.fd = os.eventfd(0, os.EFD_CLOEXEC)
            _count += 1
        self.pid = os.getpid()

    def __del__(self, _close: Callable[[int], None] = os.close, _getpid: Callable[[], int] = os.getpid) -> None:
        global _count
        if self.fd < 0:
            return
        try:
            _close(self.fd)  # bound at definition: at interpreter exit ``os`` may be gone
        except OSError:
            pass
        try:
            if self.pid == _getpid():  # a forked child counts only its own (see _forked)
                with _count_lock:
                    _count -= 1
        except Exception:  # noqa: BLE001 - interpreter exit
            pass


def thread_fd() -> ThreadFd:
    mine: ThreadFd | None = getattr(_local, "fd", None)
    if mine is None:
        mine = _local.fd = ThreadFd()
    return mine


def _forked() -> None:
    """In a forked child: no thread has an eventfd of its own yet (the parent's stay the
    parent's), so that no wait needs a ``getpid`` (a system call) to find out."""
    global _local, _count, _count_lock
    _local = threading.local()
    _count = 0
    _count_lock = threading.Lock()  # the parent's may have been held by a thread that is not here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class Wake:
    """One wait of the thread that made it (or of any thread, with ``shared``: a lock)."""

    __slots__ = ("done", "fd", "lock", "owner")

    def __init__(self, shared: bool = False) -> None:
        self.done = False
        self.lock: threading.Lock | None = None
        self.fd: ThreadFd | None = None
        self.owner = 0
        if EVENTFD and not shared:
            try:
                self.fd = thread_fd()
                self.owner = get_ident()
            except OSError:  # out of descriptors: a lock will do
                pass
        if self.fd is None:
            self.lock = threading.Lock()
            self.lock.acquire()

    def wake(self) -> None:
        self.done = True
        if self.fd is not None:
            if self.owner != get_ident():  # the waiting thread itself is not blocked
                os.eventfd_write(self.fd.fd, 1)
        else:
            self.lock.release()  # type: ignore[union-attr]

    def wait(self, timeout: float | None = None) -> bool:
        """True once woken; False if ``timeout`` passed first."""
        if self.fd is None:
            return self.lock.acquire(timeout=-1 if timeout is None else timeout)  # type: ignore[union-attr]
        fd = self.fd.fd
        if timeout is None:
            while not self.done:
                os.eventfd_read(fd)
            return True
        import select
        import time

        poller = select.poll()  # not select(): descriptors may be above FD_SETSIZE
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not self.done:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return self.done
            os.eventfd_read(fd)
        return True
