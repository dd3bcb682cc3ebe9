"""A container's limits, enforced by the kernel, on whatever cgroups the host has.

On the build machines memory, cpu and pids are cgroup v1 hierarchies; ``tests/cgroupv2lab.py``
runs this same module in a VM where cgroup v2 is the only hierarchy
(``VIRT_LXC_EXPECT_CGROUP=2``, which makes :func:`test_the_hierarchies_are_the_expected_ones`
insist on it), so both code paths run for real.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import virt
from lxc_testlib import COUNTER_INIT, domain_xml, make_rootfs, read_int, wait_until, written
from virt import DomainState
from virt_lxc import _cgroups

EXPECT = os.environ.get("VIRT_LXC_EXPECT_CGROUP")  # "2": the lab, cgroup v2 only


@pytest.fixture
def conn(uri: str) -> Iterator[virt.Connection]:
    with virt.open(uri) as c:
        yield c


def _cgroups_of(root: Path, dom: virt.Domain) -> _cgroups.Cgroups:
    status: dict[str, Any] = json.loads((root / "run" / "lxc" / f"{dom.uuid}.json").read_text())
    return _cgroups.Cgroups.from_json(status["cgroups"])


def _read(directory: str, name: str) -> str:
    return Path(directory, name).read_text().strip()


def _keyed(directory: str, name: str) -> dict[str, int]:
    out = {}
    for line in Path(directory, name).read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def test_the_hierarchies_are_the_expected_ones(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    found = _cgroups.detect()
    dom = conn.create_domain(domain_xml("lim-layout", rootfs))
    cg = _cgroups_of(root, dom)
    v2_jobs = sorted(job for job in cg.dirs if cg.is_v2(job))
    if EXPECT == "2":
        assert found.v1 == {}, found
        assert found.v2 is not None and {"memory", "cpu", "pids"} <= found.v2[1], found
        assert cg.v2dir is not None
        assert v2_jobs == ["cpu", "cpuacct", "freezer", "memory", "pids"], cg
        assert set(cg.dirs.values()) == {cg.v2dir}
    else:
        assert {"memory", "cpu", "pids"} <= set(found.v1) | set(v2_jobs)
    dom.destroy()


def test_memory_limit_kills_an_allocation_over_it(conn: virt.Connection, root: Path, busybox: Path,
                                                  share: Path) -> None:
    script = """dd if=/dev/zero of=/dev/null bs=48M count=1; echo "big $?" > /share/big
dd if=/dev/zero of=/dev/null bs=1M count=1; echo "small $?" > /share/small
while :; do sleep 1; done"""
    fs = make_rootfs(root / "mem-rootfs", busybox, script)
    tune = "<memtune><soft_limit unit='MiB'>16</soft_limit></memtune>"
    dom = conn.create_domain(domain_xml("lim-mem", fs, share=share, memory_mib=24, extra=tune))
    cg = _cgroups_of(root, dom)
    memory = cg.dirs["memory"]
    if cg.is_v2("memory"):
        assert _read(memory, "memory.max") == str(24 << 20)
        assert _read(memory, "memory.low") == str(16 << 20)
    else:
        assert _read(memory, "memory.limit_in_bytes") == str(24 << 20)
        assert _read(memory, "memory.soft_limit_in_bytes") == str(16 << 20)
    assert wait_until(lambda: written(share / "small"), 60)
    assert (share / "big").read_text().split() == ["big", "137"]  # the OOM killer's SIGKILL
    assert (share / "small").read_text().split() == ["small", "0"]
    if cg.is_v2("memory"):
        assert _keyed(memory, "memory.events")["oom_kill"] >= 1
    assert dom.state() == (DomainState.RUNNING, 1)  # the init and its controller live on
    assert 0 < dom.info().memory <= 24 * 1024
    dom.destroy()


BUSY_INIT = """trap 'exit 0' TERM
while :; do :; done
"""


def test_cpu_shares_and_quota(conn: virt.Connection, root: Path, busybox: Path) -> None:
    fs = make_rootfs(root / "cpu-rootfs", busybox, BUSY_INIT)
    tune = "<cputune><shares>512</shares><period>100000</period><quota>20000</quota></cputune>"
    dom = conn.create_domain(domain_xml("lim-cpu", fs, extra=tune))
    cg = _cgroups_of(root, dom)
    cpu = cg.dirs["cpu"]
    if cg.is_v2("cpu"):
        assert _read(cpu, "cpu.weight") == str(_cgroups.shares_to_weight(512))
        assert _read(cpu, "cpu.max") == "20000 100000"
    else:
        assert _read(cpu, "cpu.shares") == "512"
        assert _read(cpu, "cpu.cfs_period_us") == "100000"
        assert _read(cpu, "cpu.cfs_quota_us") == "20000"
    # effective: a busy loop gets about 20 % of a CPU, and is throttled
    time.sleep(0.3)
    used0, wall0 = dom.info().cpu_time, time.monotonic()
    time.sleep(1.5)
    used1, wall1 = dom.info().cpu_time, time.monotonic()
    share = (used1 - used0) / 1e9 / (wall1 - wall0)
    assert 0.05 < share < 0.35, f"the busy loop got {share:.0%} of a CPU (quota 20 %)"
    throttled = _keyed(cpu, "cpu.stat")["nr_throttled"]
    assert throttled >= 5, throttled
    dom.destroy()


def test_cpu_shares_divide_a_busy_cpu(conn: virt.Connection, root: Path, busybox: Path) -> None:
    """Two busy containers on one CPU: the one with four times the shares (cpu.shares, or the
    cpu.weight they become on v2) gets about four times the CPU time."""
    fs = make_rootfs(root / "shares-rootfs", busybox, BUSY_INIT)
    doms = {}
    for name, shares in (("lim-big", 1024), ("lim-small", 256)):
        tune = f"<cputune><shares>{shares}</shares></cputune>"
        doms[name] = conn.create_domain(domain_xml(name, fs, extra=tune).replace("<vcpu>1</vcpu>",
                                                                                "<vcpu cpuset='0'>1</vcpu>"))
    time.sleep(0.5)
    before = {name: dom.info().cpu_time for name, dom in doms.items()}
    time.sleep(2.0)
    used = {name: dom.info().cpu_time - before[name] for name, dom in doms.items()}
    ratio = used["lim-big"] / max(1, used["lim-small"])
    assert 2.0 < ratio < 8.0, f"1024 vs 256 shares: {ratio:.2f} times the CPU time ({used})"
    for dom in doms.values():
        dom.destroy()


PIDS_INIT = """trap 'exit 0' TERM
while [ ! -e /share/go ]; do sleep 0.05; done
sh -c 'i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i+1)); echo $i > /share/forked; done'
echo "rc $?" > /share/rc
while :; do sleep 1; done
"""


def test_pids_limit(conn: virt.Connection, root: Path, busybox: Path, share: Path) -> None:
    fs = make_rootfs(root / "pids-rootfs", busybox, PIDS_INIT)
    dom = conn.create_domain(domain_xml("lim-pids", fs, share=share))
    cg = _cgroups_of(root, dom)
    pids = cg.dirs["pids"]
    assert _read(pids, "pids.max") == str(_cgroups.DEFAULT_PIDS_MAX)
    # as an administrator would: a low limit, then the container forks past it
    Path(pids, "pids.max").write_text("8")
    (share / "go").write_text("")
    assert wait_until(lambda: written(share / "rc"), 60)
    assert (share / "rc").read_text().split() != ["rc", "0"]  # its shell could not fork
    assert (read_int(share / "forked") or 0) < 20
    assert int(_read(pids, "pids.current")) <= 8
    assert _keyed(pids, "pids.events")["max"] >= 1
    assert dom.state()[0] == DomainState.RUNNING
    dom.destroy()


def test_suspend_and_resume_freeze_the_cgroup(conn: virt.Connection, root: Path, busybox: Path,
                                              share: Path) -> None:
    fs = make_rootfs(root / "freeze-rootfs", busybox, COUNTER_INIT)
    for name in ("lim-freeze-a", "lim-freeze-b"):  # the second start takes a spare
        dom = conn.create_domain(domain_xml(name, fs, share=share))
        cg = _cgroups_of(root, dom)
        freezer = cg.dirs["freezer"]
        first = read_int(share / "counter")
        assert wait_until(lambda f=first: read_int(share / "counter") not in (None, f), 30)  # type: ignore[misc]
        dom.suspend()
        assert dom.state() == (DomainState.PAUSED, 1)
        if cg.is_v2("freezer"):
            assert _read(freezer, "cgroup.freeze") == "1"
            assert "frozen 1" in Path(freezer, "cgroup.events").read_text()
        else:
            assert _read(freezer, "freezer.state") == "FROZEN"
        frozen = read_int(share / "counter")
        time.sleep(0.5)
        assert read_int(share / "counter") == frozen
        dom.resume()
        assert dom.state() == (DomainState.RUNNING, 5)
        if cg.is_v2("freezer"):
            assert _read(freezer, "cgroup.freeze") == "0"
        assert wait_until(lambda f=frozen: read_int(share / "counter") != f, 30)  # type: ignore[misc]
        dom.suspend()
        dom.destroy()  # a frozen container is killed too
        assert wait_until(lambda c=cg: not any(os.path.exists(d) for d in c.all_dirs()), 30)  # type: ignore[misc]
