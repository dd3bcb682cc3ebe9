"""The container's cgroups: limits where the XML says, v1 and v2 freezer and accounting."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import virt
from lxc_testlib import domain_xml, init_pid, read_int, wait_until
from virt import DomainState
from virt_lxc import _cgroups
from virt_lxc._driver import _controllers


@pytest.fixture
def conn(uri: str) -> Iterator[virt.Connection]:
    with virt.open(uri) as c:
        yield c


def _status(root: Path, dom: virt.Domain) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "run" / "lxc" / f"{dom.uuid}.json").read_text())
    return data


def test_limits_are_written(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    found = _cgroups.detect()
    if "cpu" not in found.v1 or "memory" not in found.v1:
        pytest.skip("[optional] this check reads cgroup v1 files")
    tune = ("<cputune><shares>512</shares><period>100000</period><quota>50000</quota></cputune>"
            "<memtune><hard_limit unit='MiB'>48</hard_limit><soft_limit unit='MiB'>32</soft_limit></memtune>")
    dom = conn.create_domain(domain_xml("bblimits", rootfs, extra=tune))
    dirs = _status(root, dom)["cgroups"]["dirs"]
    assert Path(dirs["cpu"], "cpu.shares").read_text().strip() == "512"
    assert Path(dirs["cpu"], "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert Path(dirs["memory"], "memory.limit_in_bytes").read_text().strip() == str(48 << 20)  # the lower
    assert Path(dirs["memory"], "memory.soft_limit_in_bytes").read_text().strip() == str(32 << 20)
    assert Path(dirs["pids"], "pids.max").read_text().strip() == str(_cgroups.DEFAULT_PIDS_MAX)
    init = init_pid(root, dom.uuid)
    for directory in dirs.values():
        assert str(init) in Path(directory, "cgroup.procs").read_text().split()
    dom.destroy()
    assert wait_until(lambda: not any(os.path.exists(d) for d in dirs.values()))


@pytest.fixture
def v2_freezer_and_accounting() -> Iterator[None]:
    """Pretend the v1 freezer and cpuacct hierarchies are absent: the v2 tree does those jobs
    (``cgroup.freeze`` and ``cpu.stat`` exist in every v2 cgroup, whatever its controllers)."""
    found = _cgroups.detect()
    if found.v2 is None:
        pytest.skip("[optional] no cgroup v2 hierarchy is mounted")
    _controllers.close()  # a spare made with the real layout must not be used
    v1 = {job: where for job, where in found.v1.items() if job not in ("freezer", "cpuacct")}
    _cgroups._detected = _cgroups.Hierarchies(v1, found.v2, found.v2own)
    try:
        yield
    finally:
        _controllers.close()
        _cgroups._detected = None


def test_v2_freezer_and_cpu_stat(v2_freezer_and_accounting: None, conn: virt.Connection, root: Path,
                                 rootfs: Path, share: Path) -> None:
    for name in ("bbv2a", "bbv2b"):  # the second start uses a spare made with the v2 layout
        dom = conn.create_domain(domain_xml(name, rootfs, share=share))
        cgroups = _status(root, dom)["cgroups"]
        assert cgroups["v2dir"] and cgroups["dirs"]["freezer"] == cgroups["v2dir"]
        first = read_int(share / "counter")
        assert wait_until(lambda f=first: read_int(share / "counter") not in (None, f))  # type: ignore[misc]
        dom.suspend()
        assert dom.state() == (DomainState.PAUSED, 1)
        assert "frozen 1" in Path(cgroups["v2dir"], "cgroup.events").read_text()
        time.sleep(0.1)
        frozen = read_int(share / "counter")
        time.sleep(0.3)
        assert read_int(share / "counter") == frozen
        dom.resume()
        assert wait_until(lambda f=frozen: read_int(share / "counter") != f)  # type: ignore[misc]
        assert dom.info().cpu_time > 0
        dom.suspend()
        dom.destroy()  # a frozen v2 container is killed too
        assert wait_until(lambda d=cgroups["v2dir"]: not os.path.exists(d))  # type: ignore[misc]


def test_shares_to_weight() -> None:
    assert _cgroups.shares_to_weight(1024) == 39
    assert _cgroups.shares_to_weight(2) == 1
    assert _cgroups.shares_to_weight(262144) == 10000
