"""The virt CLI on qemu:/// URIs: the foundation's commands plus console, save, restore, domstats."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tinyguest
from qemu_testlib import GuestXML

VIRT = [str(Path(sys.executable).parent / "virt")] if (Path(sys.executable).parent / "virt").exists() else ["virt"]


def virt(uri: str, *words: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*VIRT, "-c", uri, *words], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_lifecycle_commands(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    xml = tmp_path / "tiny.xml"
    xml.write_text(guest_xml())
    assert "Domain 'tiny' defined" in virt(uri, "define", str(xml)).stdout
    assert "Domain 'tiny' started" in virt(uri, "start", "tiny").stdout
    listing = virt(uri, "list", "--all").stdout
    assert " tiny " in listing and "running" in listing
    assert virt(uri, "domstate", "tiny", "--reason").stdout.strip() == "running (booted)"
    stats = virt(uri, "domstats", "tiny").stdout
    assert stats.startswith("Domain: 'tiny'\n  state.state=1\n  state.reason=1\n") and "cpu.time=" in stats
    assert "vcpu.0.time=" in stats
    blk = virt(uri, "domblklist", "tiny").stdout
    assert "Target" in blk
    image = tmp_path / "tiny.save"
    assert "Domain 'tiny' saved" in virt(uri, "save", "tiny", str(image)).stdout
    assert virt(uri, "domstate", "tiny", "--reason").stdout.strip() == "shut off (saved)"
    assert "restored" in virt(uri, "restore", str(image)).stdout
    assert virt(uri, "domstate", "tiny", "--reason").stdout.strip() == "running (restored)"
    assert "destroyed" in virt(uri, "destroy", "tiny").stdout
    bad = virt(uri, "start", "nosuch", check=False)
    assert bad.returncode == 1 and "error: failed to get domain 'nosuch'" in bad.stderr


def test_console_attaches_and_escapes(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    xml = tmp_path / "tiny.xml"
    xml.write_text(guest_xml())
    virt(uri, "define", str(xml))
    virt(uri, "start", "tiny")
    pid, fd = pty.fork()
    if pid == 0:  # the child: virt console on a real terminal
        os.execvp(VIRT[0], [*VIRT, "-c", uri, "console", "tiny"])
    out = b""

    def read_until(text: bytes, timeout: float = 30.0) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while text not in out:
            assert time.monotonic() < deadline, f"{text!r} not seen: {out[-400:]!r}"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break

    try:
        read_until(b"Escape character is ^] (Ctrl + ])")
        os.write(fd, b"\n")
        read_until(tinyguest.SHELL_PROMPT.encode())
        os.write(fd, b"echo console-$((6*7))\n")
        read_until(b"console-42")
        os.write(fd, b"\x1d")  # ^]
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    virt(uri, "destroy", "tiny")


def test_console_without_a_terminal(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    xml = tmp_path / "tiny.xml"
    xml.write_text(guest_xml())
    virt(uri, "define", str(xml))
    virt(uri, "start", "tiny")
    proc = subprocess.run([*VIRT, "-c", uri, "console", "tiny"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "Cannot run interactive console without a controlling TTY" in proc.stderr
    virt(uri, "destroy", "tiny")


@pytest.mark.parametrize("words", [["domstats", "--list-running"], ["domstats", "--state", "--json"]])
def test_domstats_of_no_running_domain(uri: str, words: list[str]) -> None:
    assert virt(uri, *words).returncode == 0
