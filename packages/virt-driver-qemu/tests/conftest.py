"""Fixtures of the QEMU driver's tests: a private ``qemu:///embed`` root per test, the tiny
real guest (tests/tinyguest.py), its domain XML, and a pty console reader."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import termios
import time
import tty
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import tinyguest


@pytest.fixture(scope="session")
def guest() -> tinyguest.Guest:
    return tinyguest.tiny_guest_or_skip()


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


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    top = tmp_path / "embed"
    top.mkdir()
    yield top
    kill_leftovers(top)


@pytest.fixture
def uri(root: Path) -> str:
    return f"qemu:///embed?root={root}"


GuestXML = Callable[..., str]


@pytest.fixture
def guest_xml(guest: tinyguest.Guest, tmp_path: Path) -> GuestXML:
    """XML of the tiny guest: serial0 a pty (the console, with the shell), serial1 a file (ticks)."""

    def make(name: str = "tiny", *, uuid: str | None = None, append: str = "", devices: str = "",
             features: str = "<acpi/>", on_crash: str = "destroy", on_reboot: str = "restart",
             memory_mib: int = 128, vcpus: int = 1) -> str:
        ticks = tmp_path / f"{name}-ticks.log"
        return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid or uuidlib.uuid4()}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{guest.kernel}</kernel>
    <initrd>{guest.initrd}</initrd>
    <cmdline>{guest.cmdline} {append}</cmdline>
  </os>
  <features>{features}</features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>{on_reboot}</on_reboot>
  <on_crash>{on_crash}</on_crash>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <serial type='file'><source path='{ticks}'/><target port='1'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    {devices}
  </devices>
</domain>
"""

    return make


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


@pytest.fixture
def console_of() -> Iterator[Callable[[Any], Console]]:
    opened: list[Console] = []

    def attach(dom: Any) -> Console:
        con = Console(dom.console_path())
        opened.append(con)
        return con

    yield attach
    for con in opened:
        try:
            con.close()
        except OSError:
            pass


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
