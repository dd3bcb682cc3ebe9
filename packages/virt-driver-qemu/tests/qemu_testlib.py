"""Helpers of the QEMU driver's tests (a module of its own: with every package's tests in one
pytest run, ``from conftest import ...`` would find another package's conftest)."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import tinyguest

GuestXML = Callable[..., str]


def kill_leftovers(root: Path) -> None:
    """Nothing a test started may outlive it."""
    for status in (root / "run" / "qemu").glob("*.json"):
        try:
            pid = int(json.loads(status.read_text()).get("pid", 0))
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def ticks_file(tmp_path: Path, name: str = "tiny") -> Path:
    return tmp_path / f"{name}-ticks.log"


class Console:
    """The guest's serial console through its pty (what ``virt console`` attaches to)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)
        self.buffer = b""

    def read_until(self, text: str, timeout: float = 30.0) -> str:
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} not seen on the console within {timeout} s: {self.buffer[-400:]!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise EOFError(f"console closed before {text!r}: {self.buffer[-400:]!r}")
                self.buffer += chunk
        end = self.buffer.index(needle) + len(needle)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return out.decode(errors="replace")

    def command(self, line: str, timeout: float = 15.0) -> str:
        os.write(self.fd, line.encode() + b"\n")
        return self.read_until(tinyguest.SHELL_PROMPT, timeout)

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        os.close(self.fd)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
