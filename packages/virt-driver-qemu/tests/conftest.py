"""Fixtures of the QEMU driver's tests: a private ``qemu:///embed`` root per test, the tiny
real guest (tests/tinyguest.py), its domain XML, and a pty console reader."""

from __future__ import annotations

import sys
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qemu_testlib import Console, GuestXML, kill_leftovers, tinyguest


@pytest.fixture(scope="session")
def guest() -> tinyguest.Guest:
    return tinyguest.tiny_guest_or_skip()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    top = tmp_path / "embed"
    top.mkdir()
    yield top
    kill_leftovers(top)


@pytest.fixture
def uri(root: Path) -> str:
    return f"qemu:///embed?root={root}"


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


