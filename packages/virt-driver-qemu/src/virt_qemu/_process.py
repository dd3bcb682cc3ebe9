"""QEMU processes: started detached, identified across processes, watched without polling.

A guest's QEMU runs in its own session (``setsid``) so that it outlives the process that
started it.  While that process lives, QEMU is its child and is reaped at once; after it is
gone, any process watches QEMU through a pidfd, which becomes readable when QEMU exits (reaped
or not), so an exit is seen immediately even though PID 1 here reaps orphans only every second
or two.  A pid alone could be reused: the status file keeps the process's start time from
``/proc/PID/stat`` too, and a pid whose start time differs is not our QEMU.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence

__all__ = ["alive", "kill", "pidfd", "spawn", "start_time", "wait_exit"]

# Children this process spawned: reaped as soon as they exit (see ``reap``).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], *, log_fd: int, pass_fds: Sequence[int]) -> int:
    """Start ``argv`` detached (own session, stdin from /dev/null, output to ``log_fd``)."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, pass_fds=tuple(pass_fds),
        start_new_session=True, close_fds=True, cwd="/",
    )
    _children[proc.pid] = proc
    return proc.pid


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (so it does not linger as a zombie)."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        _children.pop(pid, None)


def start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of ``pid``, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            data = src.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":  # exited, not yet reaped: it is gone for our purposes
        return None
    return int(fields[19])


def cpu_time_ns(pid: int) -> int:
    """utime + stime of ``pid`` (all its threads) in nanoseconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            data = src.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started``."""
    if pid <= 0:
        return False
    reap(pid)
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


def kill(pid: int, started: int | None, *, force_after: float | None = 10.0) -> bool:
    """SIGTERM ``pid``, wait for it to exit, then SIGKILL when ``force_after`` seconds pass.

    Returns False when the process is still there (``force_after`` None and it did not exit).
    """
    if not alive(pid, started):
        return True
    fd = pidfd(pid)
    if fd is None:
        return True
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGTERM)
        if wait_exit(fd, force_after if force_after is not None else 10.0):
            return True
        if force_after is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        return wait_exit(fd, 10.0)
    finally:
        os.close(fd)
        reap(pid)


def is_gone_error(exc: OSError) -> bool:
    return exc.errno in (errno.ESRCH, errno.ECHILD)
