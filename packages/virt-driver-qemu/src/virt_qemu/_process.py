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
import signal
import subprocess
from collections.abc import Sequence

from virt._state_files import alive as _alive
from virt._state_files import pidfd, start_time, wait_exit

__all__ = ["alive", "cpu_time_ns", "kill", "pidfd", "reap", "spawn", "start_time", "wait_exit"]

# Children this process spawned: reaped as soon as they exit (see ``reap``).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], *, log_fd: int, pass_fds: Sequence[int]) -> int:
    """Start ``argv`` detached (own session, stdin from /dev/null, output to ``log_fd``)."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, pass_fds=tuple(pass_fds),
        start_new_session=True, close_fds=True, cwd="/",
    )
    for pid in [pid for pid, child in _children.items() if child.poll() is not None]:
        del _children[pid]  # exited while nobody asked (each poll reaps its zombie)
    _children[proc.pid] = proc
    return proc.pid


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (so it does not linger as a zombie)."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        _children.pop(pid, None)


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


def alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (reaping it first when
    it is our own child, so that an exited child does not linger as a zombie)."""
    reap(pid)
    if _alive(pid, started):
        return True
    reap(pid)  # it may have exited between the first reap and the check: a zombie now
    return False
