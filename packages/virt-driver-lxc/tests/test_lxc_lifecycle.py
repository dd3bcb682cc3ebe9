"""A real busybox container through its whole life: what it sees, its limits, its states."""

from __future__ import annotations

import json
import os
import queue
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import virt
from lxc_testlib import (
    COUNTER_INIT,
    SHELL_INIT,
    Console,
    domain_xml,
    host_mounts_mentioning,
    init_pid,
    make_rootfs,
    read_int,
    wait_until,
)
from virt import DomainEventType, DomainState

SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_FAILED = 1, 2, 6


def _events(conn: virt.Connection) -> queue.Queue[Any]:
    got: queue.Queue[Any] = queue.Queue()
    conn.subscribe(lambda _c, ev: got.put(ev), "lifecycle")
    return got


def _next(got: queue.Queue[Any], kind: DomainEventType, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        ev = got.get(timeout=max(0.01, deadline - time.monotonic()))
        if ev.event == kind:
            return ev


def _counter_moves(share: Path, timeout: float = 5.0) -> bool:
    first = read_int(share / "counter")
    return wait_until(lambda: read_int(share / "counter") not in (None, first), timeout)


@pytest.fixture
def conn(uri: str) -> Any:
    with virt.open(uri) as c:
        yield c


def test_container_sees_itself_only(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    dom = conn.create_domain(domain_xml("bb1", rootfs, share=share))
    assert dom.state() == (DomainState.RUNNING, 1)
    assert dom.id > 0
    assert wait_until(lambda: (share / "hostname").exists() and read_int(share / "counter") is not None)
    assert read_int(share / "pid") == 1  # its init is its pid 1
    assert (share / "hostname").read_text().strip() == "bb1"
    # no host process is visible: its /proc lists its own few processes only
    live = dom.xml()
    assert "tty='/dev/pts/" in live and " id='" in live
    init = conn.create_domain(domain_xml("bb1-ps", rootfs, init="/bin/sh",
                                         initargs=("-c", "ls /proc > /share/procs; ls /dev > /share/dev"),
                                         share=share))
    assert wait_until(lambda: _gone_or_stopped(init))
    pids = [p for p in (share / "procs").read_text().split() if p.isdigit()]
    assert pids and max(int(p) for p in pids) < 10, pids
    assert str(os.getpid()) not in pids
    assert set((share / "dev").read_text().split()) == {
        "console", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty",
        "tty1", "urandom", "zero"}
    dom.destroy()


def _gone_or_stopped(dom: virt.Domain) -> bool:
    """A transient container that has ended: gone (as its init exits) or, a moment before,
    still listed but inactive.  One call, so it cannot vanish between two."""
    try:
        return not dom.is_active()
    except virt.VirtError as exc:
        if exc.code != virt.ErrorNumber.NO_DOMAIN:
            raise
        return True


def _exists(conn: virt.Connection, name: str) -> bool:
    try:
        conn.lookup_domain(name)
    except virt.VirtError:
        return False
    return True


def test_memory_limit_is_enforced(conn: virt.Connection, root: Path, busybox: Path, share: Path) -> None:
    script = """dd if=/dev/zero of=/dev/null bs=48M count=1; echo "big $?" > /share/big
dd if=/dev/zero of=/dev/null bs=1M count=1; echo "small $?" > /share/small
while :; do sleep 1; done"""
    fs = make_rootfs(root / "mem-rootfs", busybox, script)
    dom = conn.create_domain(domain_xml("bbmem", fs, share=share, memory_mib=24))
    assert wait_until(lambda: (share / "small").exists())
    assert (share / "big").read_text().split() == ["big", "137"]  # killed by the OOM killer (SIGKILL)
    assert (share / "small").read_text().split() == ["small", "0"]
    assert dom.memory_stats()["actual"] == 24 * 1024
    # the controller is never the OOM killer's choice: it leaves the container's memory cgroup
    # after the start, and asks for oom_score_adj -1000 (where the host allows: lowering it
    # needs CAP_SYS_RESOURCE, which the build machines' sandbox drops, and the kernel answers
    # EACCES)
    status = json.loads((root / "run" / "lxc" / f"{dom.uuid}.json").read_text())
    controller = int(status["pid"])
    memory = Path(status["cgroups"]["dirs"]["memory"], "cgroup.procs")
    assert wait_until(lambda: str(controller) not in memory.read_text().split())
    if _can_lower_oom_score_adj():
        assert Path(f"/proc/{controller}/oom_score_adj").read_text().strip() == "-1000"
    assert Path(f"/proc/{init_pid(root, dom.uuid)}/oom_score_adj").read_text().strip() == "0"
    assert dom.state() == (DomainState.RUNNING, 1)
    dom.destroy()


def _can_lower_oom_score_adj() -> bool:
    import subprocess
    import sys

    code = "import os; os.write(os.open('/proc/self/oom_score_adj', os.O_WRONLY), b'-1000')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode == 0


def test_suspend_stops_and_resume_continues(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    got = _events(conn)
    dom = conn.create_domain(domain_xml("bbfreeze", rootfs, share=share))
    assert _counter_moves(share)
    dom.suspend()
    assert dom.state() == (DomainState.PAUSED, 1)
    assert _next(got, DomainEventType.SUSPENDED).detail == 0
    time.sleep(0.1)
    frozen = read_int(share / "counter")
    time.sleep(0.4)
    assert read_int(share / "counter") == frozen
    dom.resume()
    assert dom.state() == (DomainState.RUNNING, 5)
    assert _next(got, DomainEventType.RESUMED).detail == 0
    assert _counter_moves(share)
    # destroy works on a frozen container too
    dom.suspend()
    dom.destroy()
    assert not _exists(conn, "bbfreeze")


def test_shutdown_asks_the_init(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    got = _events(conn)
    dom = conn.define_domain(domain_xml("bbdown", rootfs, share=share))
    dom.start()
    assert _next(got, DomainEventType.STARTED).detail == 0
    assert _counter_moves(share)
    dom.shutdown()
    ev = _next(got, DomainEventType.STOPPED)
    assert ev.detail == 0  # shutdown
    assert (share / "bye").exists()
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN)
    assert host_mounts_mentioning(str(rootfs)) == []
    dom.undefine()


def test_shutdown_through_initctl(conn: virt.Connection, root: Path, busybox: Path, share: Path) -> None:
    # a sysvinit-like init: it listens on /run/initctl and stops when asked
    script = """mkdir -p /run; mkfifo /run/initctl; echo > /share/listening
dd if=/run/initctl of=/share/request bs=384 count=1 2>/dev/null
exit 0"""
    fs = make_rootfs(root / "initctl-rootfs", busybox, script)
    got = _events(conn)
    dom = conn.create_domain(domain_xml("bbinitctl", fs, share=share))
    assert wait_until(lambda: (share / "listening").exists())
    time.sleep(0.2)  # from there to dd's open() of the FIFO
    dom.shutdown()  # flags 0: initctl first, the signal only when there is no initctl
    assert _next(got, DomainEventType.STOPPED).detail == 0
    request = (share / "request").read_bytes()
    assert len(request) == 384
    magic, command, runlevel = struct.unpack_from("<iii", request)
    assert (magic, command, chr(runlevel)) == (0x03091969, 1, "0")
    fs2 = make_rootfs(root / "plain-rootfs", busybox, COUNTER_INIT)
    dom = conn.create_domain(domain_xml("bbnoinitctl", fs2, share=share))
    with pytest.raises(virt.VirtError) as info:
        dom.shutdown(4)  # --mode initctl: there is none
    assert info.value.code == virt.ErrorNumber.OPERATION_UNSUPPORTED
    dom.shutdown(8)  # --mode signal
    assert _next(got, DomainEventType.STOPPED).detail == 0


def test_destroy(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    got = _events(conn)
    dom = conn.define_domain(domain_xml("bbkill", rootfs, share=share))
    dom.start()
    assert _counter_moves(share)
    dom.destroy()
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_DESTROYED)
    assert _next(got, DomainEventType.STOPPED).detail == 1
    last = read_int(share / "counter")
    time.sleep(0.2)
    assert read_int(share / "counter") == last
    dom.undefine()


@pytest.mark.parametrize(("init", "reason", "detail"), [("/bin/true", SHUTOFF_SHUTDOWN, 0),
                                                       ("/bin/false", SHUTOFF_FAILED, 5)])
def test_init_that_exits_at_once(conn: virt.Connection, rootfs: Path, init: str, reason: int, detail: int) -> None:
    got = _events(conn)
    dom = conn.define_domain(domain_xml("bbquick", rootfs, init=init))
    dom.start()
    ev = _next(got, DomainEventType.STOPPED)
    assert ev.detail == detail
    assert dom.state() == (DomainState.SHUTOFF, reason)
    assert not dom.is_active()
    dom.undefine()


def test_reboot_starts_the_init_again(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    dom = conn.create_domain(domain_xml("bbreboot", rootfs, share=share))
    assert wait_until(lambda: (share / "pid").exists())
    (share / "pid").unlink()
    dom.reboot()
    assert wait_until(lambda: read_int(share / "pid") == 1)
    assert dom.state()[0] == DomainState.RUNNING
    assert _counter_moves(share)
    dom.destroy()


def test_reboot_and_poweroff_from_inside(conn: virt.Connection, root: Path, busybox: Path, share: Path) -> None:
    # reboot(2) in a PID namespace kills its init with SIGHUP (restart) or SIGINT (power off)
    script = """if [ -e /share/boot1 ]; then echo > /share/boot2; poweroff -f; fi
echo > /share/boot1; reboot -f"""
    fs = make_rootfs(root / "reboot-rootfs", busybox, script)
    got = _events(conn)
    dom = conn.define_domain(domain_xml("bbreboot2", fs, share=share))
    dom.start()
    ev = _next(got, DomainEventType.STOPPED)
    assert (share / "boot1").exists() and (share / "boot2").exists()  # it came back once
    assert ev.detail == 0
    assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN)
    dom.undefine()


@pytest.mark.parametrize(("features", "dropped"), [
    ("", {16, 25, 27, 30, 33}),  # libvirt's defaults: sys_module, sys_time, mknod, audit_control, mac_admin
    ("<features><capabilities policy='default'><mknod state='on'/><net_raw state='off'/></capabilities></features>",
     {13, 16, 25, 30, 33}),
    ("<features><capabilities policy='allow'><sys_admin state='off'/></capabilities></features>", {21}),
    ("<features><capabilities policy='deny'><chown state='on'/><setuid state='on'/></capabilities></features>",
     set(range(37)) - {0, 7}),
])
def test_capabilities(conn: virt.Connection, root: Path, busybox: Path, share: Path, features: str,
                      dropped: set[int]) -> None:
    fs = make_rootfs(root / "caps-rootfs", busybox, "grep CapBnd /proc/self/status > /share/caps")
    conn.create_domain(domain_xml("bbcaps", fs, share=share, extra=features))
    assert wait_until(lambda: (share / "caps").exists() and (share / "caps").read_text().strip() != "")
    bounding = int((share / "caps").read_text().split()[1], 16)
    ours = int(next(ln for ln in Path("/proc/self/status").read_text().splitlines()
                    if ln.startswith("CapBnd")).split()[1], 16)
    missing = {cap for cap in range(37) if not ours & (1 << cap)}  # what this host never gave us
    assert {cap for cap in range(37) if not bounding & (1 << cap)} == dropped | missing


def test_stats_come_from_the_cgroups(conn: virt.Connection, rootfs: Path, share: Path) -> None:
    dom = conn.create_domain(domain_xml("bbstats", rootfs, share=share))
    assert _counter_moves(share)
    info = dom.info()
    assert info.cpu_time > 0
    assert 0 < info.memory <= 64 * 1024
    assert info.max_memory == 64 * 1024
    stats = dom.stats()
    assert stats["state.state"] == 1
    assert stats["cpu.time"] > 0
    assert stats["balloon.maximum"] == 64 * 1024
    assert 0 < stats["balloon.current"] <= 64 * 1024
    mem = dom.memory_stats()
    assert mem["actual"] == 64 * 1024 and mem["rss"] > 0
    dom.destroy()


def test_console_attaches_to_the_container(conn: virt.Connection, root: Path, busybox: Path) -> None:
    fs = make_rootfs(root / "shell-rootfs", busybox, SHELL_INIT)
    dom = conn.create_domain(domain_xml("bbshell", fs))
    con = Console(dom.console_path())
    try:
        con.send("echo $((6*7))-mark; hostname")
        con.read_until("42-mark")  # the shell's answer, not the echo of the line (that has $((6*7)))
        assert "bbshell" in con.read_until("lxc# ")
    finally:
        con.close()
    # a second attach works too
    con = Console(dom.console_path())
    try:
        con.send("echo again-$((1+1))")
        con.read_until("again-2")
    finally:
        con.close()
    dom.destroy()


def test_autostart(conn: virt.Connection, rootfs: Path) -> None:
    dom = conn.define_domain(domain_xml("bbauto", rootfs))
    assert not dom.autostart
    dom.set_autostart(True)
    assert dom.autostart
    assert [d.name for d in conn.list_domains(1024)] == ["bbauto"]
    dom.set_autostart(False)
    dom.undefine()


def test_user_namespace_from_idmap(conn: virt.Connection, root: Path, busybox: Path, share: Path) -> None:
    fs = make_rootfs(root / "userns-rootfs", busybox,
                     "id -u > /share/uid 2>&1; cat /proc/self/uid_map > /share/map; while :; do sleep 1; done")
    os.chmod(share, 0o777)
    idmap = ("<idmap><uid start='0' target='100000' count='65536'/>"
             "<gid start='0' target='100000' count='65536'/></idmap>")
    dom = conn.create_domain(domain_xml("bbuserns", fs, share=share, extra=idmap))
    assert wait_until(lambda: (share / "map").exists() and len((share / "map").read_text().split()) == 3)
    assert (share / "uid").read_text().strip() == "0"
    assert (share / "map").read_text().split() == ["0", "100000", "65536"]
    init = init_pid(root, dom.uuid)
    assert os.stat(f"/proc/{init}").st_uid == 100000
    dom.destroy()


def test_interface_hook_point(conn: virt.Connection, root: Path, busybox: Path, share: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What the host networking plugin will do, done by a stand-in: while the init waits, a
    device appears in the container's own network namespace (the host's is never touched)."""
    import shutil
    import subprocess

    from virt_lxc import _container, _driver

    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("[optional] needs ip (iproute2) and nsenter (util-linux)")
    seen: list[int] = []

    def attach(uri: str, doc: Any, init: int) -> None:
        seen.append(init)
        proc = subprocess.run(["nsenter", "-t", str(init), "-n", "ip", "link", "add", "eth0", "type", "bridge"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    monkeypatch.setattr(_container, "plug_interfaces", lambda doc: None)
    monkeypatch.setattr(_driver, "interface_hooks", [attach])
    fs = make_rootfs(root / "net-rootfs", busybox, "ls /sys/class/net > /share/nets; while :; do sleep 1; done")
    dom = conn.create_domain(domain_xml("bbnet", fs, share=share,
                                        devices="<interface type='ethernet'><target dev='x'/></interface>"))
    assert wait_until(lambda: (share / "nets").exists() and (share / "nets").read_text().strip() != "")
    assert sorted((share / "nets").read_text().split()) == ["eth0", "lo"]  # there before the init ran
    assert len(seen) == 1
    dom.destroy()

    def failing(uri: str, doc: Any, init: int) -> None:
        raise virt.VirtError(virt.ErrorNumber.OPERATION_FAILED, "no bridge for you")

    monkeypatch.setattr(_driver, "interface_hooks", [failing])
    with pytest.raises(virt.VirtError) as info:
        conn.create_domain(domain_xml("bbnet2", fs, share=share, devices="<interface type='ethernet'/>"))
    assert "no bridge for you" in info.value.message
    assert conn.list_domains() == []
