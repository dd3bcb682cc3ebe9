"""The tiny test guest boots under bare QEMU (TCG) and does what the driver's tests rely on."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tinyguest
from tinyguest import Qmp, SerialSocket, count_ticks, kill, qemu_argv, tiny_guest_or_skip, wait_exit, wait_for_text

pytestmark = pytest.mark.timeout(60)

BOOT_TIMEOUT = 30.0


@pytest.fixture
def guest() -> tinyguest.Guest:
    return tiny_guest_or_skip()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # unix socket paths are limited to 107 bytes: pytest's tmp_path may be longer.
    path = Path(tempfile.mkdtemp(prefix="tg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(argv: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    with open(tmp / "qemu.stderr", "wb") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT)


def _ticks(path: Path) -> int:
    return count_ticks(path.read_text(errors="replace")) if path.exists() else 0


def _wait_ticks(path: Path, above: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := _ticks(path)) <= above:
        assert time.monotonic() < deadline, f"ticks stuck at {n} in {path}"
        time.sleep(0.05)
    return n


def test_boot_ticks_pause_and_acpi_powerdown(guest: tinyguest.Guest, short_tmp: Path) -> None:
    log, ticks, qmp_path = short_tmp / "ttyS0.log", short_tmp / "ttyS1.log", short_tmp / "qmp.sock"
    argv = qemu_argv(guest, serial0=f"file:{log}", serial1=f"file:{ticks}", qmp=f"unix:{qmp_path},server=on,wait=off")
    proc = _start(argv, short_tmp)
    try:
        with Qmp.connect(qmp_path) as qmp:
            qmp.execute("qmp_capabilities")
            wait_for_text(log, guest.ready_marker, BOOT_TIMEOUT, proc=proc)

            # Ticks go to the second serial port and advance while the guest runs...
            first = _wait_ticks(ticks, 0)
            _wait_ticks(ticks, first + 2)
            assert "tick " not in log.read_text(errors="replace")
            # ... stop while it is paused, and go on after cont.
            qmp.execute("stop")
            time.sleep(0.2)  # a tick already on its way may still land
            paused = _ticks(ticks)
            time.sleep(0.6)
            assert _ticks(ticks) == paused
            qmp.execute("cont")
            _wait_ticks(ticks, paused + 1)

            # The ACPI power button makes the guest power off, and QEMU exit by itself.
            qmp.execute("system_powerdown")
            status = wait_exit(proc, 10)
            assert status == 0, f"QEMU still running or failed ({status}) 10 s after system_powerdown"
            assert "tinyguest: power button" in log.read_text(errors="replace")
    finally:
        kill(proc)


def test_guest_initiated_poweroff(guest: tinyguest.Guest, short_tmp: Path) -> None:
    log = short_tmp / "ttyS0.log"
    argv = qemu_argv(guest, serial0=f"file:{log}", append="tinyguest.poweroff_after_ready=1")
    proc = _start(argv, short_tmp)
    try:
        wait_for_text(log, guest.ready_marker, BOOT_TIMEOUT, proc=proc)
        assert wait_exit(proc, 10) == 0
    finally:
        kill(proc)


def test_serial_shell_virtio_net_and_pvpanic(guest: tinyguest.Guest, short_tmp: Path) -> None:
    sock, qmp_path = short_tmp / "ttyS0.sock", short_tmp / "qmp.sock"
    argv = qemu_argv(
        guest,
        serial0=f"unix:{sock},server=on,wait=off",
        qmp=f"unix:{qmp_path},server=on,wait=off",
        append="tinyguest.dhcp=1 tinyguest.tick_ms=200",
        # slirp: QEMU answers the guest's DHCP itself; nothing leaves this machine.
        extra=("-device", "pvpanic", "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"),
    )
    proc = _start(argv, short_tmp)
    try:
        with Qmp.connect(qmp_path) as qmp, SerialSocket(sock) as serial:
            qmp.execute("qmp_capabilities")
            serial.read_until(guest.ready_marker, BOOT_TIMEOUT)
            serial.read_until("tinyguest-dhcp: bound 10.0.2.15", 20)  # virtio_net + udhcpc work
            serial.read_until(tinyguest.SHELL_PROMPT, 10)
            # One serial port only: the ticks share ttyS0 with the shell.
            deadline = time.monotonic() + 10
            while count_ticks(serial.transcript.decode(errors="replace")) < 3:
                assert time.monotonic() < deadline, "no ticks on ttyS0"
                time.sleep(0.05)
            out = serial.command("echo answer-$((6 * 7)); cat /proc/modules", 10)
            assert "answer-42" in out
            assert "pvpanic_mmio" in out and "virtio_net" in out
            # A guest crash: pvpanic tells QEMU, whose default panic action powers off.
            serial.send_line("echo c > /proc/sysrq-trigger")
            event = qmp.wait_event("GUEST_PANICKED", 15)
            assert event["data"]["action"] in ("poweroff", "pause")
            assert wait_exit(proc, 10) is not None
    finally:
        kill(proc)


def test_initramfs_is_a_valid_newc_archive() -> None:
    cpio = tinyguest._Cpio()
    cpio.file("etc/x", b"hello")
    cpio.symlink("bin/sh", "/bin/busybox")
    data = cpio.finish()
    assert len(data) % 512 == 0
    assert data.startswith(b"070701")
    assert b"etc/x\0" in data and b"hello" in data and b"TRAILER!!!\0" in data
    # Every header starts on a 4-byte boundary.
    offset = 0
    names = []
    while True:
        assert data[offset : offset + 6] == b"070701", offset
        namesize = int(data[offset + 94 : offset + 102], 16)
        filesize = int(data[offset + 54 : offset + 62], 16)
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        names.append(name)
        offset += 110 + namesize
        offset += -offset % 4
        offset += filesize
        offset += -offset % 4
        if name == "TRAILER!!!":
            break
    assert names == ["etc", "etc/x", "bin", "bin/sh", "TRAILER!!!"]
