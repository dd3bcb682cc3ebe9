"""State outlives the managing process; two processes on one domain never corrupt it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import tinyguest
import virt
from qemu_testlib import Console, GuestXML, wait_until
from virt._records import DomainState

HERE = Path(__file__).resolve().parent


def _script(body: str) -> list[str]:
    prelude = f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parents[2] / 'tests')!r}]\n"
    return [sys.executable, "-c", prelude + textwrap.dedent(body)]


def test_manager_killed_and_a_new_process_reconnects(uri: str, guest_xml: GuestXML, tmp_path: Path,
                                                     root: Path) -> None:
    xml_path = tmp_path / "tiny.xml"
    xml_path.write_text(guest_xml())
    # a manager starts the guest and is then killed with SIGKILL while it holds its monitors
    manager = subprocess.Popen(_script(f"""
        import time, virt
        conn = virt.open({uri!r})
        dom = conn.define_domain(open({str(xml_path)!r}).read())
        dom.start()
        print("started", flush=True)
        time.sleep(60)
    """), stdout=subprocess.PIPE, text=True)
    try:
        assert manager.stdout is not None
        assert manager.stdout.readline().strip() == "started"
    finally:
        manager.send_signal(signal.SIGKILL)
        manager.wait()
        if manager.stdout is not None:
            manager.stdout.close()
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("tiny")
        assert dom.state()[0] == DomainState.RUNNING and dom.id > 0
        con = Console(dom.console_path())
        try:
            con.send("")
            con.read_until(tinyguest.SHELL_PROMPT)
            assert "alive" in con.command("echo alive")
        finally:
            con.close()
        dom.suspend()
        assert dom.state()[0] == DomainState.PAUSED
        dom.resume()
        # the reconnected process holds the event monitor: a guest-initiated poweroff is seen
        dom.shutdown()
        assert wait_until(lambda: dom.state() == (DomainState.SHUTOFF, 1), 20)


def test_guest_exit_while_no_manager_runs(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    xml_path = tmp_path / "tiny.xml"
    xml_path.write_text(guest_xml(append="tinyguest.poweroff_after_ready=1"))
    subprocess.run(_script(f"""
        import virt
        with virt.open({uri!r}) as conn:
            conn.define_domain(open({str(xml_path)!r}).read()).start()
    """), check=True, timeout=60)
    # the guest powers itself off while no process watches it
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("tiny")
        assert wait_until(lambda: dom.state()[0] == DomainState.SHUTOFF, 30)
        dom.start()  # and it can be started again: nothing stale is left behind
        assert dom.state()[0] == DomainState.RUNNING
        dom.destroy()


def test_two_processes_racing_on_one_domain(uri: str, guest_xml: GuestXML, tmp_path: Path, root: Path) -> None:
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml())
    racer = _script(f"""
        import sys, virt
        from virt import VirtError
        conn = virt.open({uri!r})
        dom = conn.lookup_domain("tiny")
        outcome = {{"start": 0, "refused": 0, "cycles": 0}}
        try:
            dom.start()
            outcome["start"] += 1
        except VirtError as exc:
            assert exc.code.name == "OPERATION_INVALID", exc
            outcome["refused"] += 1
        for _ in range(15):
            try:
                dom.suspend()
                dom.resume()
                outcome["cycles"] += 1
            except VirtError as exc:
                assert exc.code.name in ("OPERATION_INVALID",), exc
        print(outcome, flush=True)
    """)
    procs = [subprocess.Popen(racer, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(eval(out.strip()))
    assert sorted(r["start"] for r in results) == [0, 1], results  # exactly one start won
    with virt.open(uri) as conn:
        dom = conn.lookup_domain("tiny")
        assert dom.state()[0] == DomainState.RUNNING
        status = json.loads((root / "run" / "qemu" / f"{dom.uuid}.json").read_text())
        assert status["state"] == DomainState.RUNNING
        assert not list((root / "run" / "qemu").glob(".*.tmp")), "a half-written file was left"
        running = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_guest(p, dom.uuid)]
        assert len(running) == 1, "two QEMUs for one domain"
        dom.destroy()


def _is_guest(proc: Path, uuid: str) -> bool:
    try:
        return uuid in (proc / "cmdline").read_bytes().decode(errors="replace") and \
            b"qemu-system" in (proc / "cmdline").read_bytes()
    except OSError:
        return False
    finally:
        os.sched_yield()
