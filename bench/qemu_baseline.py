"""Bare-QEMU baseline: what QEMU itself costs, with no virt (and no libvirt) in the way.

    python bench/qemu_baseline.py [--rounds 5] [--json out.json]

Three figures, each the median over ``--rounds`` fresh QEMU processes (milliseconds):

* ``exec_to_qmp_ms``: exec ``qemu-system-x86_64 -S -accel tcg -machine q35 -m 128 -nodefaults
  -no-user-config -display none -qmp unix:PATH,server=on,wait=off`` until ``qmp_capabilities``
  is answered (the client connects as soon as the socket accepts, polling every millisecond);
* ``quit_to_exit_ms``: QMP ``quit`` sent until the process has exited (pidfd, no polling);
* ``acpi_powerdown_to_exit_ms``: the tiny test guest (``tests/tinyguest.py``) booted to its
  ready marker, then QMP ``system_powerdown`` until the process has exited: the guest's acpid
  sees the power button and runs ``poweroff -f``;

and, for information, ``boot_to_ready_ms``: exec until the guest's ready marker is on ttyS0
(TCG: this machine's KVM cannot run a stock kernel), and the first two again with
``-machine none`` (no board, no accelerator set-up: QEMU's floor).  QEMU answers the QMP
greeting before it has built the machine; ``qmp_capabilities`` waits for that, so a q35 board
costs ~20-30 ms more than ``-machine none`` here.  The QMP client is a minimal synchronous
one (``tinyguest.Qmp``) so the numbers are QEMU's, not a client library's.

The QEMU driver's own figures for the same operations can be put beside these: the difference
is what virt adds.  Reference figures on these machines: 23 ms, 3 ms and 49 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import tinyguest  # noqa: E402

BASE_ARGS = (
    "-accel",
    "tcg",
    "-machine",
    "q35",
    "-m",
    "128",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
)


def _qemu() -> str:
    binary = tinyguest.qemu_binary()
    if binary is None:
        raise SystemExit(f"{tinyguest.QEMU_BINARY} not found (Debian package qemu-system-x86)")
    return binary


NONE_ARGS = ("-machine", "none", "-nodefaults", "-no-user-config", "-display", "none")


def _empty_vm_round(tmp: Path, args: tuple[str, ...] = BASE_ARGS) -> tuple[float, float]:
    """(exec -> qmp_capabilities answered, quit -> exit), in ms, for one paused empty VM."""
    sock = tmp / "qmp.sock"
    argv = [_qemu(), "-S", *args, "-qmp", f"unix:{sock},server=on,wait=off"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        with tinyguest.Qmp.connect(sock, timeout=20) as qmp:
            qmp.execute("qmp_capabilities")
            t1 = time.perf_counter()
            qmp.send("quit")
            t2 = time.perf_counter()
            status = tinyguest.wait_exit(proc, 20)
            t3 = time.perf_counter()
        if status is None:
            raise RuntimeError("QEMU did not exit within 20 s of quit")
    finally:
        tinyguest.kill(proc)
    return (t1 - t0) * 1000, (t3 - t2) * 1000


def _guest_round(guest: tinyguest.Guest, tmp: Path) -> tuple[float, float]:
    """(exec -> ready marker, system_powerdown -> exit), in ms, for one tiny-guest boot."""
    sock, log = tmp / "qmp.sock", tmp / "ttyS0.log"
    argv = tinyguest.qemu_argv(
        guest,
        serial0=f"file:{log}",
        qmp=f"unix:{sock},server=on,wait=off",
        append="tinyguest.ticks=0 tinyguest.shell=0",
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        with tinyguest.Qmp.connect(sock, timeout=20) as qmp:
            qmp.execute("qmp_capabilities")
            tinyguest.wait_for_text(log, guest.ready_marker, 60, proc=proc, interval=0.002)
            t1 = time.perf_counter()
            time.sleep(0.05)  # let the guest settle into its idle loop after the marker
            t2 = time.perf_counter()
            qmp.execute("system_powerdown")
            status = tinyguest.wait_exit(proc, 20)
            t3 = time.perf_counter()
        if status is None:
            raise RuntimeError("QEMU did not exit within 20 s of system_powerdown")
    finally:
        tinyguest.kill(proc)
    return (t1 - t0) * 1000, (t3 - t2) * 1000


def run(rounds: int = 5) -> dict[str, float]:
    """Medians over ``rounds`` runs, in milliseconds."""
    guest = tinyguest.ensure_guest()
    samples: dict[str, list[float]] = {
        "exec_to_qmp_ms": [],
        "quit_to_exit_ms": [],
        "acpi_powerdown_to_exit_ms": [],
        "boot_to_ready_ms": [],
        "exec_to_qmp_machine_none_ms": [],
        "quit_to_exit_machine_none_ms": [],
    }
    with tempfile.TemporaryDirectory(prefix="qemu-baseline-") as tmpdir:
        tmp = Path(tmpdir)
        # One untimed start first: page cache, dynamic linker, QEMU's module loading.
        _empty_vm_round(tmp)
        for _ in range(rounds):
            ready, quit_exit = _empty_vm_round(tmp)
            samples["exec_to_qmp_ms"].append(ready)
            samples["quit_to_exit_ms"].append(quit_exit)
            ready, quit_exit = _empty_vm_round(tmp, NONE_ARGS)
            samples["exec_to_qmp_machine_none_ms"].append(ready)
            samples["quit_to_exit_machine_none_ms"].append(quit_exit)
            boot, powerdown = _guest_round(guest, tmp)
            samples["boot_to_ready_ms"].append(boot)
            samples["acpi_powerdown_to_exit_ms"].append(powerdown)
            for leftover in tmp.iterdir():
                leftover.unlink()
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        results = run(args.rounds)
    except tinyguest.TinyGuestError as exc:
        print(f"qemu_baseline: {exc}", file=sys.stderr)
        return 1
    load = os.getloadavg()[0]
    print(f"bare QEMU baseline, median of {args.rounds} (load {load:.2f}):")
    for name, ms in results.items():
        print(f"  {name:28s} {ms:8.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
