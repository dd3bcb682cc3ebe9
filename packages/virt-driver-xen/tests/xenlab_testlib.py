"""Helpers of the Xen lab tests (a module of its own: with every package's tests in one pytest
run, ``from conftest import ...`` would find another package's conftest).

The lab (``tests/xenlab.py``) is a real Xen 4.17 booted under QEMU TCG; it takes a minute or
two to build the first time and ~10 s to boot, and ~1 GB of memory, so its tests run only
when ``VIRT_XEN_LAB=1`` (``nox -s xen-lab``).  The driver runs here and reaches ``xl`` in the
lab's dom0 through ``$VIRT_XEN_TOOLSTACK=tcp:127.0.0.1:PORT``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import xenlab

LAB_ENV = "VIRT_XEN_LAB"
SKIP_REASON = "[optional] the Xen lab runs in `nox -s xen-lab` (set VIRT_XEN_LAB=1 to run it here)"


def lab_enabled() -> bool:
    return os.environ.get(LAB_ENV, "") not in ("", "0")


def pv_domain_xml(name: str, uuid: str, memory_kib: int = 131072) -> str:
    """A PV guest of the lab: the cloud kernel and its busybox initramfs, inside dom0."""
    return (
        "<domain type='xen'>\n"
        f"  <name>{name}</name>\n"
        f"  <uuid>{uuid}</uuid>\n"
        f"  <memory unit='KiB'>{memory_kib}</memory>\n"
        f"  <currentMemory unit='KiB'>{memory_kib}</currentMemory>\n"
        "  <vcpu placement='static'>1</vcpu>\n"
        "  <os>\n"
        "    <type arch='x86_64' machine='xenpv'>linux</type>\n"
        f"    <kernel>{xenlab.DOMU_KERNEL}</kernel>\n"
        f"    <initrd>{xenlab.DOMU_RAMDISK}</initrd>\n"
        f"    <cmdline>{xenlab.DOMU_CMDLINE}</cmdline>\n"
        "  </os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <console type='pty'>\n"
        "      <target type='xen' port='0'/>\n"
        "    </console>\n"
        "  </devices>\n"
        "</domain>\n"
    )


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_guest_up(lab: xenlab.XenLab, name: str, timeout: float = 60.0, after: int = 0) -> None:
    """Until the guest ``name`` has printed its ready marker (more than ``after`` times)."""
    wait_until(lambda: lab.guest_console(name).count(xenlab.DOMU_READY_MARKER) > after, timeout,
               f"guest {name} to print {xenlab.DOMU_READY_MARKER}")


__all__ = ["LAB_ENV", "SKIP_REASON", "lab_enabled", "pv_domain_xml", "wait_guest_up", "wait_until", "xenlab"]
