"""Containers outlive the process that started them; a new process reconnects; controllers die."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import virt
from lxc_testlib import domain_xml, init_pid, read_int, wait_until
from virt import DomainEventType, DomainState

SHUTOFF_CRASHED = 3


def _counter_moves(share: Path, timeout: float = 5.0) -> bool:
    first = read_int(share / "counter")
    return wait_until(lambda: read_int(share / "counter") not in (None, first), timeout)


def _start_elsewhere(uri: str, xml: str, persistent: bool) -> subprocess.Popen[str]:
    """A managing process that starts the container, says so, and then hangs around."""
    code = textwrap.dedent(f"""
        import sys, time, virt
        conn = virt.open({uri!r})
        xml = sys.stdin.read()
        if {persistent!r}:
            dom = conn.define_domain(xml); dom.start()
        else:
            dom = conn.create_domain(xml)
        print(dom.uuid, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(xml)
    proc.stdin.close()
    return proc


def test_managing_process_killed_then_a_new_one_reconnects(uri: str, rootfs: Path, share: Path) -> None:
    proc = _start_elsewhere(uri, domain_xml("bbsurvive", rootfs, share=share), persistent=False)
    assert proc.stdout is not None
    uuid = proc.stdout.readline().strip()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert _counter_moves(share)  # the container did not notice
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("bbsurvive")
        assert dom.uuid == uuid
        assert dom.state() == (DomainState.RUNNING, 1)
        assert dom.info().cpu_time > 0
        got: queue.Queue[Any] = queue.Queue()
        conn.subscribe(lambda _c, ev: got.put(ev), "lifecycle")
        dom.shutdown()  # the new process follows it: the exit arrives as an event
        ev = got.get(timeout=10)
        while ev.event != DomainEventType.STOPPED:
            ev = got.get(timeout=10)
        assert ev.detail == 0
        assert (share / "bye").exists()
        assert conn.list_domains() == []  # transient: gone


def test_container_stopping_while_nobody_watches(uri: str, rootfs: Path, share: Path) -> None:
    proc = _start_elsewhere(uri, domain_xml("bbalone", rootfs, share=share), persistent=True)
    assert proc.stdout is not None
    uuid = proc.stdout.readline().strip()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    os.kill(init_pid(Path(uri.split("root=")[1]), uuid), signal.SIGTERM)  # its init stops while no manager lives
    assert wait_until(lambda: (share / "bye").exists())
    time.sleep(0.2)
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("bbalone")
        # the controller recorded why: a new process still tells a shutdown from a crash
        assert dom.state() == (DomainState.SHUTOFF, 1)
        dom.undefine()


def test_controller_killed_takes_its_container_along(uri: str, rootfs: Path, share: Path) -> None:
    with virt.open(uri) as conn:
        got: queue.Queue[Any] = queue.Queue()
        conn.subscribe(lambda _c, ev: got.put(ev), "lifecycle")
        dom = conn.define_domain(domain_xml("bbctl", rootfs, share=share))
        dom.start()
        assert _counter_moves(share)
        status = json.loads((Path(uri.split("root=")[1]) / "run" / "lxc" / f"{dom.uuid}.json").read_text())
        os.kill(int(status["pid"]), signal.SIGKILL)
        ev = got.get(timeout=10)
        while ev.event != DomainEventType.STOPPED:
            ev = got.get(timeout=10)
        assert ev.detail == 5  # failed
        assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_CRASHED)
        last = read_int(share / "counter")
        time.sleep(0.2)
        assert read_int(share / "counter") == last  # nothing of it runs on
        for directory in (status["cgroups"]["dirs"] or {}).values():
            assert not os.path.exists(directory)
        dom.undefine()


def test_two_processes_starting_one_domain(uri: str, rootfs: Path, share: Path) -> None:
    with virt.open(uri) as conn:
        conn.define_domain(domain_xml("bbrace", rootfs, share=share))
    code = textwrap.dedent(f"""
        import virt
        conn = virt.open({uri!r})
        try:
            conn.lookup_domain("bbrace").start()
            print("started")
        except virt.VirtError as exc:
            print(exc.get_error_code())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["55", "started"]  # one container, one OPERATION_INVALID
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("bbrace")
        assert dom.is_active()
        dom.destroy()
        dom.undefine()


def test_autostart_on_first_open_after_boot(uri: str, root: Path, rootfs: Path) -> None:
    with virt.open(uri) as conn:
        dom = conn.define_domain(domain_xml("bbboot", rootfs))
        dom.set_autostart(True)
    (root / "run" / "lxc" / "autostarted").unlink()  # as after a reboot of the host
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("bbboot")
        assert dom.is_active()
        dom.destroy()
        dom.undefine()


def test_a_spare_controller_goes_when_its_process_goes(uri: str, rootfs: Path) -> None:
    code = textwrap.dedent(f"""
        import os, virt
        from virt_lxc._driver import _controllers
        conn = virt.open({uri!r})
        for _ in range(2):  # from the second start on, a spare waits for the next
            conn.create_domain(open({str(rootfs.parent / "x.xml")!r}).read()).destroy()
        import time; time.sleep(1)
        spare = _controllers._spare
        print(spare.pid, " ".join(spare.cgroups.all_dirs()) if spare.cgroups else "", flush=True)
        os._exit(0)  # no atexit: the spare learns from its stdin's EOF alone
    """)
    (rootfs.parent / "x.xml").write_text(domain_xml("bbspare", rootfs))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    pid_text, _, dirs = out.strip().partition(" ")
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid_text}") or
                      Path(f"/proc/{pid_text}/stat").read_text().split()[2] == "Z")
    assert dirs and wait_until(lambda: not any(os.path.exists(d) for d in dirs.split()))
