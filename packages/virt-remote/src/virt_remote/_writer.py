"""Frames from many threads onto one descriptor, in order, one write at a time: the client's
socket and pipe links and the server's side of every peer.

A thread that finds no write under way writes its frame and whatever other threads queued
meanwhile, in one write; the others go back to their work (waiting for an answer, running the
next call) instead of queueing on a lock, each a wake-up later.

A thread that must not wait (``wait=False``) writes only what leaves at once: the thread that
reads (a pong: if it waited for a far side that waits for us to read, both would wait for
ever) and the keepalive (a ping that waited for a stalled far side would keep it from
noticing).  What it cannot write at once goes to a writer thread of its own, started the first
time, which may wait.

What waits behind a write under way is bounded (:data:`QUEUE_MAX`).  Past it, a thread that
may wait waits until the writer has taken the queue (a caller sending faster than the peer
reads); a thread that must not wait drops the peer instead (``overflow``): a peer that stopped
reading while we go on sending (events for a stalled client, pongs for a far side that floods
us with pings and reads nothing) goes then, not when memory runs out, whether or not a
keepalive would notice it sooner.
"""

from __future__ import annotations

import errno
import select
import threading
from collections.abc import Callable

__all__ = ["AT_ONCE", "QUEUE_MAX", "Writer"]

#: at most this many bytes are written by a thread that must not wait, and only when the
#: descriptor polls writable: a pipe then takes them whole (``PIPE_BUF``), as a socket does
AT_ONCE = 4096
#: at most this many bytes wait behind a write under way (twice the largest frame)
QUEUE_MAX = 64 * 1024 * 1024


class Writer:
    """``write`` blocks until all its bytes are out; ``fileno`` (if known) is polled for room
    before a write that must not wait; ``failed`` is called with the error of a failed write,
    after which nothing more is written (it may raise: the sending thread's error);
    ``overflow`` is called, once, with the bytes queued when a frame that must not wait would
    take them past ``limit`` (:data:`QUEUE_MAX` by default), after which nothing more is
    written either."""

    def __init__(self, write: Callable[[bytes], object], fileno: int | None,
                 failed: Callable[[OSError], None], name: str = "virt-remote-writer",
                 overflow: Callable[[int], None] | None = None, limit: int | None = None) -> None:
        self._write = write
        self._failed = failed
        self._overflow = overflow
        self._limit = QUEUE_MAX if limit is None else limit
        self._name = name
        self._poll: select.poll | None = None
        if fileno is not None:
            self._poll = select.poll()
            self._poll.register(fileno, select.POLLOUT)
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)  # the queue was taken (or the writing ended)
        self._waiting = 0  # threads waiting on _taken
        self._queue: list[bytes] = []
        self._queued = 0  # bytes in _queue
        self._writing = False
        #: nothing more is written (a write failed, or the owner stopped it)
        self.broken = False
        self._closed = False  # the descriptor is closed, or about to be: no write may use it
        self._ending = False  # the writer thread ends once idle (a later hand-over starts another)
        self._handed = False  # the writing was handed to the writer thread, not yet taken
        self.thread: threading.Thread | None = None
        self._wanted = threading.Event()

    def send(self, frame: bytes, wait: bool = True) -> None:
        """Queue ``frame`` and, if no write is under way, write it and what queues behind it;
        without ``wait``, only what leaves at once (see the module)."""
        with self._lock:
            while wait and self._queued >= self._limit and not self.broken:
                self._waiting += 1
                try:
                    self._taken.wait()
                finally:
                    self._waiting -= 1
            if self.broken:
                return
            self._queue.append(frame)
            self._queued += len(frame)
            if not self._writing:
                self._writing = True
                over = 0
            elif self._queued <= self._limit or wait:
                return  # the writer takes it
            else:
                over = self._queued
                self._stop()  # the write under way ends the writing
        if over:
            if self._overflow is not None:
                self._overflow(over)
            return
        self.run(wait=wait)

    def claim(self, size: int) -> bool:
        """Become the writer if a frame of ``size`` bytes would leave at once (at most
        :data:`AT_ONCE`, nothing written or queued, room); then call :meth:`run` with it."""
        if size > AT_ONCE:
            return False
        with self._lock:
            if self._writing or self._queue or self.broken or not self._room():
                return False
            self._writing = True
            return True

    def stop(self) -> None:
        """Write nothing more: what is queued is dropped, a write under way ends the writing."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        self._queue.clear()
        self._queued = 0
        self.broken = True
        self._wake_waiting()

    def _wake_waiting(self) -> None:
        if self._waiting:
            self._taken.notify_all()

    @property
    def idle(self) -> bool:
        """Nothing written or queued."""
        with self._lock:
            return not self._writing and not self._queue

    def run(self, first: bytes | None = None, wait: bool = True) -> None:
        """As the writer: write ``first`` (if any), then what is queued, until nothing is, and
        stop being the writer; without ``wait``, hand over what cannot leave at once."""
        data = first
        while True:
            if data is not None:
                try:
                    if self._closed:  # its descriptor may be closed, its number reused
                        raise OSError(errno.EPIPE, "the connection is closed")
                    self._write(data)
                except OSError as exc:
                    with self._lock:
                        self._writing = False
                        self._stop()
                    self._failed(exc)
                    return
            with self._lock:
                queue = self._queue
                if not queue or self.broken:
                    queue.clear()
                    self._queued = 0
                    self._writing = False
                    self._wake_waiting()
                    return
                if not wait and (self._queued > AT_ONCE or not self._room()):
                    # handed over, still marked as writing
                    self._handed = True
                    start = self.thread is None
                    if start:
                        self.thread = threading.Thread(target=self._write_handed_over, name=self._name,
                                                       daemon=True)
                    break
                data = queue[0] if len(queue) == 1 else b"".join(queue)
                queue.clear()
                self._queued = 0
                self._wake_waiting()
        if start:
            self.thread.start()  # type: ignore[union-attr]
        self._wanted.set()

    def close(self) -> None:
        """Write nothing more (the descriptor is about to close); the writer thread ends."""
        self._closed = True
        self.release()

    def release(self) -> None:
        """Let the writer thread end once idle (the peer is gone); writes go on as ever."""
        with self._lock:
            self._ending = True
        self._wanted.set()

    def _room(self) -> bool:
        """Whether the descriptor takes :data:`AT_ONCE` bytes now (an error or a hang-up
        counts: the write then fails at once)."""
        poll = self._poll
        return poll is not None and any(events & (select.POLLOUT | select.POLLERR | select.POLLHUP)
                                        for _fd, events in poll.poll(0))

    def _write_handed_over(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            with self._lock:
                handed, self._handed = self._handed, False
            if handed:
                try:
                    self.run()  # after close, the first write fails (and ends the writing)
                except Exception:  # noqa: BLE001 - what ``failed`` raises is for a sending thread
                    pass
            with self._lock:
                if self._ending and not self._handed:
                    self.thread = None
                    return
