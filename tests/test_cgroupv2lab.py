"""The LXC driver's limits on a host with cgroup v2 only: ``tests/cgroupv2lab.py`` boots a VM
(``cgroup_no_v1=all``, cgroup2 alone on ``/sys/fs/cgroup``) that runs
``packages/virt-driver-lxc/tests/test_lxc_limits.py`` with this interpreter and this checkout."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cgroupv2lab
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "virt-driver-lxc" / "tests"))
import lxc_testlib

pytestmark = pytest.mark.timeout(600)

MODULE = "packages/virt-driver-lxc/tests/test_lxc_limits.py"


def test_lxc_limits_on_a_cgroup_v2_only_host() -> None:
    lab = cgroupv2lab.lab_or_skip()
    # the containers' busybox: the host's (or the one the LXC tests fetched), on a share
    busybox = lxc_testlib.busybox_or_skip().resolve()
    result = cgroupv2lab.run(cgroupv2lab.pytest_command("-q", "-rs", MODULE),
                             env={**cgroupv2lab.LAB_ENV, "VIRT_TEST_BUSYBOX": str(busybox)},
                             timeout=300, lab=lab, extra_shares=(busybox.parent,))
    assert "cgroup2 /sys/fs/cgroup cgroup2" in result.serial and " cgroup " not in result.serial, result.serial
    assert result.rc == 0, result.output[-6000:]
    tests = len(re.findall(r"^def test_", (Path(cgroupv2lab.REPO) / MODULE).read_text(), re.M))
    assert re.search(rf"\b{tests} passed\b", result.output), result.output[-3000:]
    assert "skipped" not in result.output and "error" not in result.output.lower(), result.output[-3000:]
    sys.stderr.write(f"cgroupv2lab: {tests} tests passed in the VM, {result.seconds:.1f} s in all\n")
