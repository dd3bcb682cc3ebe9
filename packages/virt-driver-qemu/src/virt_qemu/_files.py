"""Files the driver shares between processes: atomic writes, per-domain locks, socket paths.

Every configuration and status file is written to a temporary file in the same directory,
flushed, and renamed over the old one, so a reader (or a crash) sees the old or the new content,
never half of one.  Two processes acting on one domain serialise on an ``flock`` of that
domain's lock file; the lock is released by the kernel if the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DomainLock", "atomic_write", "read_json", "short_socket_path", "write_json"]

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_SUN_PATH_MAX = 107


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (same-directory temp file, rename).

    ``durable`` also syncs the data before the rename, so that a power loss leaves the old or
    the new content: what definitions need.  Runtime state (status files, normally on the
    tmpfs of ``/run``) means nothing after a reboot and skips the sync; the rename alone keeps
    every reader from seeing half a file.
    """
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    atomic_write(path, json.dumps(data, sort_keys=True, indent=1) + "\n", durable=durable)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it does not exist (or is torn: never, see above)."""
    try:
        with open(path, "rb") as src:
            return json.loads(src.read())
    except FileNotFoundError:
        return None
    except ValueError:
        return None


class DomainLock:
    """An exclusive lock on one domain, shared by every thread and process.

    ``flock`` locks belong to the open file description, so one process holds one descriptor
    per lock file, and threads of the process queue on a re-entrant mutex in front of it: a
    nested ``with`` in one thread is cheap, and never deadlocks on its own ``flock``.  Get
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

    Deep directories (pytest's tmp dirs, long home paths) exceed 107 bytes; then the socket is
    reached through ``/proc/self/fd/N/NAME``, where N is a descriptor of its directory that
    this process keeps open.
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


@contextlib.contextmanager
def suppress_missing() -> Iterator[None]:
    with contextlib.suppress(FileNotFoundError):
        yield
