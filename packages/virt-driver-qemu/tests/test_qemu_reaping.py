"""QEMU processes this process started are reaped: none lingers as a zombie, whenever it exits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from virt_qemu import _process


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:].split()[0] == b"Z"


def _exited_unreaped(pid: int) -> None:
    """Wait until ``pid`` has exited, leaving it a zombie (``WNOWAIT``)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert _zombie(pid)


def _spawn(tmp_path: Path, script: str) -> int:
    log = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return _process.spawn(["/bin/sh", "-c", script], log_fd=log, pass_fds=())
    finally:
        os.close(log)


def test_a_child_exiting_between_the_reap_and_the_check_is_reaped(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The child exits just after alive() polled it and just before it reads /proc: the
    # window of a failed start (QEMU exits at once) that left a zombie and a
    # "ResourceWarning: subprocess N is still running" at the end of the test session.
    pid = _spawn(tmp_path, "exec sleep 30")
    started = _process.start_time(pid)
    real_alive = _process._alive

    def exits_first(p: int, s: int | None) -> bool:
        if p == pid:  # alive() has polled it (still running): it exits now
            os.kill(pid, signal.SIGKILL)
            _exited_unreaped(pid)
        return real_alive(p, s)

    monkeypatch.setattr(_process, "_alive", exits_first)
    assert _process.kill(pid, started, force_after=1.0)
    assert not _zombie(pid)
    assert pid not in _process._children


def test_children_that_exited_unasked_are_reaped_by_the_next_spawn(tmp_path: Path) -> None:
    first = _spawn(tmp_path, "exit 0")
    _exited_unreaped(first)
    second = _spawn(tmp_path, "sleep 30")
    try:
        assert not _zombie(first)
        assert first not in _process._children
        assert second in _process._children
    finally:
        assert _process.kill(second, _process.start_time(second), force_after=1.0)
    deadline = time.monotonic() + 5
    while _zombie(second) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _zombie(second) and second not in _process._children
    with pytest.raises(ChildProcessError):
        os.waitpid(second, os.WNOHANG)


def test_spawn_keeps_children_that_still_run(tmp_path: Path) -> None:
    pid = _spawn(tmp_path, "sleep 30")
    other = 0
    try:
        other = _spawn(tmp_path, "exit 0")
        assert pid in _process._children and _process._children[pid].returncode is None
    finally:
        _process.kill(pid, _process.start_time(pid), force_after=1.0)
        if other:
            _process.kill(other, None, force_after=1.0)
    assert pid not in _process._children and other not in _process._children
