"""What daemonless drivers share between processes: atomic files, per-domain locks, processes.

A driver whose state lives in files (``qemu:///embed``, ``lxc:///``) needs the same few things:

* every file is written to a temporary file in the same directory, flushed, and renamed over
  the old one, so a reader (or a crash) sees the old or the new content, never half of one;
* two processes acting on one domain serialise on an ``flock`` of that domain's lock file,
  which the kernel releases if the process dies;
* a process is identified across processes by its pid *and* its start time (a pid alone may
  be reused), and watched through a pidfd, which becomes readable the moment it exits.

Only the standard library; importing this module costs nothing a driver does not pay anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DomainLock", "alive", "atomic_write", "dispatch_event", "pidfd", "read_json", "short_socket_path",
           "start_time", "wait_exit", "write_json"]

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_SUN_PATH_MAX = 107


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (same-directory temp file, fsync, rename).

    ``durable=False`` leaves out the fsync: for runtime state (what describes running
    processes, which a power loss ends anyway) the rename alone keeps readers and crashed
    writers consistent, at a fraction of the cost on a disk.
    """
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, sort_keys=True, indent=1) + "\n", durable=durable)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it does not exist or does not parse."""
    try:
        with open(path, "rb") as src:
            return json.loads(src.read())
    except (FileNotFoundError, ValueError):
        return None


class DomainLock:
    """An exclusive lock on one domain, shared by every thread and process.

    ``flock`` locks belong to the open file description, so one process holds one descriptor
    per lock file, and threads of the process queue on a re-entrant mutex in front of it: a
    nested ``with`` in one thread is cheap and never deadlocks on its own ``flock``.  Get
    instances through :meth:`of`, never by constructing two for one path.
    """

    _instances: dict[str, DomainLock] = {}
    _guard = threading.Lock()

    @classmethod
    def of(cls, path: Path) -> DomainLock:
        key = str(path)
        with cls._guard:
            lock = cls._instances.get(key)
            if lock is None:
                lock = cls._instances[key] = cls(path)
            return lock

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd = -1

    def __enter__(self) -> DomainLock:
        self._mutex.acquire()
        if self._depth == 0:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                self._mutex.release()
                raise
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1
        self._mutex.release()


_dir_fds: dict[str, int] = {}
_dir_guard = threading.Lock()


def short_socket_path(path: Path) -> str:
    """A name for the unix socket ``path`` that fits ``sun_path``.

    Deep directories (pytest's tmp dirs) exceed 107 bytes; then the socket is reached through
    ``/proc/self/fd/N/NAME``, where N is a descriptor of its directory this process keeps open.
    """
    text = str(path)
    if len(text.encode()) <= _SUN_PATH_MAX:
        return text
    parent = str(path.parent)
    with _dir_guard:
        fd = _dir_fds.get(parent)
        if fd is None:
            fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            _dir_fds[parent] = fd
    return f"/proc/self/fd/{fd}/{path.name}"


def start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of ``pid``; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            data = src.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started``."""
    if pid <= 0:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None when it has already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_exit(fd: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the process behind pidfd ``fd`` to exit."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining < 0:
            return False
        try:
            if poller.poll(remaining * 1000):
                return True
        except InterruptedError:
            continue


class _Dispatcher:
    """Delivers events on a thread of its own, in order, so callbacks may call the API (a
    callback run on a driver's watcher or loop thread could not wait on that same thread)."""

    def __init__(self) -> None:
        import queue

        self._queue: queue.SimpleQueue[tuple[Callable[..., None], Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def put(self, deliver: Callable[..., None], event: Any) -> None:
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="virt-events", daemon=True)
                self._thread.start()
        self._queue.put((deliver, event))

    def _serve(self) -> None:
        while True:
            deliver, event = self._queue.get()
            with contextlib.suppress(Exception):
                deliver(event=event)


_dispatcher = _Dispatcher()


def dispatch_event(deliver: Callable[..., None], event: Any) -> None:
    """Call ``deliver(event=event)`` (an event hook of a connection's relay) on the process's
    event thread, after every event queued before it."""
    _dispatcher.put(deliver, event)
