"""The virt CLI on lxc:/// URIs: lifecycle commands, domstats, console, domxml-from-native."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxc_testlib import SHELL_INIT, domain_xml, make_rootfs

VIRT = [str(Path(sys.executable).parent / "virt")] if (Path(sys.executable).parent / "virt").exists() else ["virt"]


def virt(uri: str, *words: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*VIRT, "-c", uri, *words], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_lifecycle_commands(uri: str, rootfs: Path, share: Path, tmp_path: Path) -> None:
    xml = tmp_path / "bb.xml"
    xml.write_text(domain_xml("bb", rootfs, share=share))
    assert "Domain 'bb' defined" in virt(uri, "define", str(xml)).stdout
    assert "Domain 'bb' started" in virt(uri, "start", "bb").stdout
    listing = virt(uri, "list", "--all").stdout
    assert " bb " in listing and "running" in listing
    assert virt(uri, "domstate", "bb", "--reason").stdout.strip() == "running (booted)"
    stats = virt(uri, "domstats", "bb").stdout
    assert stats.startswith("Domain: 'bb'\n  state.state=1\n  state.reason=1\n") and "cpu.time=" in stats
    assert "suspended" in virt(uri, "suspend", "bb").stdout
    assert virt(uri, "domstate", "bb", "--reason").stdout.strip() == "paused (user)"
    assert "resumed" in virt(uri, "resume", "bb").stdout
    assert "destroyed" in virt(uri, "destroy", "bb").stdout
    assert virt(uri, "domstate", "bb", "--reason").stdout.strip() == "shut off (destroyed)"
    assert "undefined" in virt(uri, "undefine", "bb").stdout


def test_console_attaches_and_escapes(uri: str, root: Path, busybox: Path, tmp_path: Path) -> None:
    fs = make_rootfs(root / "shell-rootfs", busybox, SHELL_INIT)
    xml = tmp_path / "sh.xml"
    xml.write_text(domain_xml("bbsh", fs))
    virt(uri, "create", str(xml))
    pid, fd = pty.fork()
    if pid == 0:  # the child: virt console on a real terminal
        os.execvp(VIRT[0], [*VIRT, "-c", uri, "console", "bbsh"])
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
        os.write(fd, b"echo console-$((6*7))\n")
        read_until(b"console-42")
        os.write(fd, b"\x1d")  # ^]
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    virt(uri, "destroy", "bbsh")


def test_domxml_from_native(uri: str, tmp_path: Path) -> None:
    corpus = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or Path(__file__).resolve().parents[4] / "shared"
                  / "conformance") / "lxc" / "conf2xml"
    if not corpus.is_dir():
        pytest.skip("requires the conformance corpus (../shared/conformance)")
    proc = virt(uri, "domxml-from-native", "lxc-tools", str(corpus / "lxcconf2xml-simple-v3.config"), check=False)
    if proc.returncode != 0 and "not supported" in proc.stderr:
        pytest.skip("[optional] the core's CLI has no domxml-from-native yet")
    assert proc.returncode == 0, proc.stderr
    assert "<name>migrate_test</name>" in proc.stdout and "<interface type='bridge'>" in proc.stdout
    bad = virt(uri, "domxml-from-native", "lxc-tools", str(corpus / "lxcconf2xml-fstab.config"), check=False)
    assert bad.returncode == 1 and "lxc.mount found" in bad.stderr
