"""Real boots of the tiny guest under the QEMU driver (TCG): every lifecycle step for real."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import tinyguest
import virt
from qemu_testlib import Console, GuestXML, ticks_file, wait_until
from virt import VirtError
from virt._errors import ErrorNumber
from virt._records import DomainEvent, DomainEventType, DomainState

MARK = tinyguest.READY_MARKER

# libvirt's reasons and event details used below
SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_CRASHED, SHUTOFF_SAVED = 1, 2, 3, 5
RUNNING_BOOTED, RUNNING_RESTORED, RUNNING_UNPAUSED, PAUSED_USER = 1, 3, 5, 1
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_CRASHED, STOPPED_SAVED, STOPPED_FAILED = 0, 1, 2, 4, 5


@pytest.fixture
def conn(uri: str) -> Any:
    with virt.open(uri) as connection:
        yield connection


@pytest.fixture
def events(conn: virt.Connection) -> list[DomainEvent]:
    seen: list[DomainEvent] = []
    conn.subscribe(lambda c, e: seen.append(e), DomainEvent)
    return seen


def booted(conn: virt.Connection, guest_xml: GuestXML, console_of: Any, **kw: Any) -> tuple[virt.Domain, Console]:
    dom = conn.define_domain(guest_xml(**kw))
    dom.start()
    con = console_of(dom)
    con.read_until(MARK)
    con.read_until(tinyguest.SHELL_PROMPT)
    return dom, con


def kinds(events: list[DomainEvent], uuid: str) -> list[tuple[DomainEventType, int]]:
    return [(e.event, e.detail) for e in list(events) if e.uuid == uuid]


def ticks(tmp_path: Path) -> int:
    try:
        return tinyguest.count_ticks(ticks_file(tmp_path).read_text(errors="replace"))
    except FileNotFoundError:
        return 0


def test_boot_console_and_progress(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                                   tmp_path: Path) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    assert dom.state() == (DomainState.RUNNING, RUNNING_BOOTED)
    assert dom.id > 0 and conn.lookup_domain_by_id(dom.id).uuid == dom.uuid
    assert "Linux" in con.command("uname -s")
    assert wait_until(lambda: ticks(tmp_path) >= 3)
    info = dom.info()
    assert info.state == DomainState.RUNNING and info.cpu_time > 0 and info.memory == 128 * 1024
    live = dom.xml()
    assert f"id='{dom.id}'" in live and "/dev/pts/" in live


def test_suspend_stops_progress_and_resume_continues(conn: virt.Connection, guest_xml: GuestXML,
                                                     console_of: Any, tmp_path: Path,
                                                     events: list[DomainEvent]) -> None:
    dom, _ = booted(conn, guest_xml, console_of)
    assert wait_until(lambda: ticks(tmp_path) >= 2)
    dom.suspend()
    assert dom.state() == (DomainState.PAUSED, PAUSED_USER)
    time.sleep(0.1)
    frozen = ticks(tmp_path)
    time.sleep(0.6)
    assert ticks(tmp_path) == frozen, "a paused guest made progress"
    dom.resume()
    assert dom.state() == (DomainState.RUNNING, RUNNING_UNPAUSED)
    assert wait_until(lambda: ticks(tmp_path) > frozen + 2)
    assert wait_until(lambda: len(kinds(events, dom.uuid)) >= 4)
    assert [k for k, _ in kinds(events, dom.uuid)] == [DomainEventType.DEFINED, DomainEventType.STARTED,
                                                       DomainEventType.SUSPENDED, DomainEventType.RESUMED]


def test_acpi_shutdown(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                       events: list[DomainEvent]) -> None:
    dom, _ = booted(conn, guest_xml, console_of)
    dom.shutdown()
    assert wait_until(lambda: dom.state()[0] == DomainState.SHUTOFF, 20)
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN)
    assert wait_until(lambda: (DomainEventType.STOPPED, STOPPED_SHUTDOWN) in kinds(events, dom.uuid))
    assert (DomainEventType.SHUTDOWN, 1) in kinds(events, dom.uuid)  # VIR_DOMAIN_EVENT_SHUTDOWN_GUEST


def test_reboot_boots_again(conn: virt.Connection, guest_xml: GuestXML, console_of: Any) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    pid_before = dom.stats()["cpu.time"]
    dom.reboot()
    con.read_until(MARK, 30)  # the second boot
    assert dom.state()[0] == DomainState.RUNNING
    assert dom.stats()["cpu.time"] >= pid_before
    # and the next ACPI shutdown really powers it off (the fake reboot left nothing armed)
    dom.shutdown()
    assert wait_until(lambda: dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN), 20)


def test_guest_reboot_stays_running(conn: virt.Connection, guest_xml: GuestXML, console_of: Any) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    con.send("reboot -f")
    con.read_until(MARK, 30)
    assert dom.state()[0] == DomainState.RUNNING


def test_reset(conn: virt.Connection, guest_xml: GuestXML, console_of: Any) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    dom.reset()
    con.read_until(MARK, 30)
    assert dom.state()[0] == DomainState.RUNNING


def test_destroy(conn: virt.Connection, guest_xml: GuestXML, console_of: Any, events: list[DomainEvent]) -> None:
    dom, _ = booted(conn, guest_xml, console_of)
    dom.destroy()
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_DESTROYED)
    assert wait_until(lambda: (DomainEventType.STOPPED, STOPPED_DESTROYED) in kinds(events, dom.uuid))
    with pytest.raises(VirtError) as err:
        dom.destroy()
    assert err.value.code == ErrorNumber.OPERATION_INVALID


def test_save_and_restore_continue_the_guest(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                                             tmp_path: Path, events: list[DomainEvent]) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    con.command("echo remembered > /tmp/state")
    assert wait_until(lambda: ticks(tmp_path) >= 3)
    image = tmp_path / "tiny.save"
    dom.save(str(image))
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SAVED)
    saved_at = ticks(tmp_path)
    restored = conn.restore_domain(str(image))
    assert restored.state() == (DomainState.RUNNING, RUNNING_RESTORED)
    con2 = console_of(restored)
    con2.send("")
    con2.read_until(tinyguest.SHELL_PROMPT)
    assert "remembered" in con2.command("cat /tmp/state")
    assert wait_until(lambda: ticks(tmp_path) > saved_at + 2)
    assert ticks(tmp_path) < saved_at + 200, "the guest rebooted instead of continuing"
    assert wait_until(lambda: (DomainEventType.STARTED, 2) in kinds(events, dom.uuid))
    assert (DomainEventType.STOPPED, STOPPED_SAVED) in kinds(events, dom.uuid)


def test_managed_save_and_start_resumes(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                                        tmp_path: Path) -> None:
    dom, con = booted(conn, guest_xml, console_of)
    con.command("echo kept > /tmp/state")
    dom.managed_save()
    assert dom.has_managed_save_image()
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SAVED)
    dom.start()
    assert dom.state() == (DomainState.RUNNING, RUNNING_RESTORED)
    assert not dom.has_managed_save_image()
    con2 = console_of(dom)
    con2.send("")
    con2.read_until(tinyguest.SHELL_PROMPT)
    assert "kept" in con2.command("cat /tmp/state")


def test_guest_initiated_poweroff(conn: virt.Connection, guest_xml: GuestXML, events: list[DomainEvent]) -> None:
    dom = conn.define_domain(guest_xml(append="tinyguest.poweroff_after_ready=1"))
    dom.start()
    assert wait_until(lambda: dom.state()[0] == DomainState.SHUTOFF, 30)
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN)
    assert wait_until(lambda: (DomainEventType.STOPPED, STOPPED_SHUTDOWN) in kinds(events, dom.uuid))


def test_guest_crash_with_pvpanic(conn: virt.Connection, guest_xml: GuestXML, events: list[DomainEvent]) -> None:
    dom = conn.define_domain(guest_xml(append="tinyguest.panic_after_ready=1", devices="<panic model='pvpanic'/>"))
    dom.start()
    assert wait_until(lambda: dom.state()[0] == DomainState.SHUTOFF, 30)
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_CRASHED)
    assert wait_until(lambda: (DomainEventType.STOPPED, STOPPED_CRASHED) in kinds(events, dom.uuid))
    assert (DomainEventType.CRASHED, 0) in kinds(events, dom.uuid)


def test_qemu_killed_from_outside(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                                  events: list[DomainEvent], root: Path) -> None:
    import json
    import os
    import signal

    dom, _ = booted(conn, guest_xml, console_of)
    pid = json.loads((root / "run" / "qemu" / f"{dom.uuid}.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert wait_until(lambda: (DomainEventType.STOPPED, STOPPED_FAILED) in kinds(events, dom.uuid), 5)
    assert time.monotonic() - t0 < 1.0, "the exit was noticed late"
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_CRASHED)


def test_transient_domain(conn: virt.Connection, guest_xml: GuestXML, console_of: Any) -> None:
    dom = conn.create_domain(guest_xml(name="transient"))
    console_of(dom).read_until(MARK)
    assert not dom.is_persistent() and dom.is_active()
    dom.destroy()
    with pytest.raises(VirtError) as err:
        conn.lookup_domain("transient")
    assert err.value.code == ErrorNumber.NO_DOMAIN


def test_stats_lists_and_memstat(conn: virt.Connection, guest_xml: GuestXML, console_of: Any,
                                 tmp_path: Path) -> None:
    import subprocess

    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    devices = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>"
               "<target dev='vda' bus='virtio'/></disk><interface type='user'><model type='virtio'/></interface>"
               "<memballoon model='virtio'/>")
    dom, con = booted(conn, guest_xml, console_of, devices=devices)
    con.command("dd if=/dev/vda of=/dev/null bs=64k count=4 2>/dev/null; echo read")
    stats = dom.stats()
    assert stats["state.state"] == DomainState.RUNNING
    assert stats["cpu.time"] > 0 and stats["vcpu.current"] == 1 and stats["vcpu.0.time"] >= 0
    assert stats["balloon.maximum"] == 128 * 1024 and stats["balloon.current"] > 0
    assert stats["block.count"] == 1 and stats["block.0.name"] == "vda" and stats["block.0.path"] == str(disk)
    assert stats["block.0.rd.reqs"] > 0 and stats["block.0.rd.bytes"] >= 4 * 65536
    assert stats["net.count"] == 1
    block = dom.block_stats("vda")
    assert block.rd_req == stats["block.0.rd.reqs"] or block.rd_req >= stats["block.0.rd.reqs"]
    assert dom.memory_stats()["actual"] > 0
    assert [(d, s) for d, s in conn.get_all_domain_stats() if d.uuid == dom.uuid]


def test_autostart(uri: str, guest_xml: GuestXML, root: Path, console_of: Any) -> None:
    with virt.open(uri) as first:
        dom = first.define_domain(guest_xml(name="auto"))
        dom.set_autostart(True)
        assert dom.autostart
    (root / "run" / "qemu" / "autostarted").unlink()  # as after a host reboot
    with virt.open(uri) as second:
        again = second.lookup_domain("auto")
        assert again.is_active()
        console_of(again).read_until(MARK)
        again.destroy()


def test_kvm_when_asked(conn: virt.Connection, root: Path) -> None:
    """type='kvm' starts QEMU with KVM (no silent TCG fallback), or fails saying why."""
    import os

    xml = ("<domain type='kvm'><name>kvm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")
    dom = conn.define_domain(xml)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        with pytest.raises(VirtError) as err:
            dom.start()
        assert "KVM" in str(err.value) or "kvm" in str(err.value)
        return
    dom.start()
    try:
        pid = json.loads((root / "run" / "qemu" / f"{dom.uuid}.json").read_text())["pid"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"kvm" in argv[argv.index(b"-accel") + 1]
        assert dom.state()[0] == DomainState.RUNNING
    finally:
        dom.destroy()
