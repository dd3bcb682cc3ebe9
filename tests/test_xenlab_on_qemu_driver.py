"""The Xen lab launched by virt's own QEMU driver (``<qemu:commandline>`` passthrough, as
libvirt's): the same VM as ``tests/xenlab.py`` starts by hand, defined and started through
``qemu:///embed``, answers ``xl info`` from its dom0, and is destroyed through the API.

Runs with the Xen lab (``nox -s xen-lab``, ``VIRT_XEN_LAB=1``): it needs the lab built, ~1 GB
of memory and ~10-20 s of TCG boot.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinyguest
import xenlab


@pytest.mark.skipif(os.environ.get("VIRT_XEN_LAB", "") in ("", "0"),
                    reason="[optional] the Xen lab runs in `nox -s xen-lab` (set VIRT_XEN_LAB=1 to run it here)")
def test_the_xen_lab_runs_under_virts_qemu_driver(tmp_path: Path) -> None:
    pytest.importorskip("virt_qemu", reason="[optional] virt-driver-qemu is not installed")
    import virt

    lab = xenlab.XenLab(xenlab.ensure_lab(), workdir=tmp_path)
    lab.port, lab.helper_port, lab.ssh_port = (xenlab._free_port() for _ in range(3))
    with virt.open(f"qemu:///embed?root={tmp_path / 'qemu'}") as conn:
        dom = conn.define_domain(lab.domain_xml())
        dom.start()
        try:
            assert dom.state()[0] == virt.DomainState.RUNNING
            tinyguest.wait_for_text(lab.console_log, xenlab.READY_MARKER, 180, interval=0.1)
            deadline = time.monotonic() + 60
            while True:
                try:
                    rc, out, _err = lab.xl("info")
                except OSError:
                    rc, out = -1, ""
                if rc == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert rc == 0, "xl info fails in the dom0 of the lab the QEMU driver started"
            assert "xen_version" in out and "hvm" in out  # Xen runs, with HVM (AMD-V under TCG)
            assert "-netdev" in (tmp_path / "qemu" / "log" / "qemu" / "xenlab.log").read_text()
        finally:
            dom.destroy()
        assert dom.state()[0] == virt.DomainState.SHUTOFF
        dom.undefine()
