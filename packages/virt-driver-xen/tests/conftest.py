"""Fixtures of the Xen driver's tests: the Xen lab, booted once per session when enabled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from xenlab_testlib import SKIP_REASON, lab_enabled, xenlab


@pytest.fixture(scope="session")
def xen_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[xenlab.XenLab]:
    """A running Xen lab; ``xen:///system`` of this process drives it (through its command channel)."""
    if not lab_enabled():
        pytest.skip(SKIP_REASON)
    if xenlab.tinyguest.qemu_binary() is None:
        pytest.fail("the Xen lab needs qemu-system-x86_64 (Debian package qemu-system-x86)")
    lab = xenlab.ensure_lab()
    work: Path = tmp_path_factory.mktemp("xenlab")
    old = {k: os.environ.get(k) for k in ("VIRT_XEN_TOOLSTACK", "VIRT_XEN_STATE")}
    with xenlab.XenLab(lab, workdir=work) as vm:
        vm.start()
        print(f"\nxenlab: dom0 ready in {vm.timings['boot_to_ready_s']:.1f} s, xl info in "
              f"{vm.timings['boot_to_xl_info_s']:.1f} s")
        os.environ["VIRT_XEN_TOOLSTACK"] = vm.toolstack
        os.environ["VIRT_XEN_STATE"] = str(work / "state")
        try:
            yield vm
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def xen_virt_in_dom0(xen_lab: xenlab.XenLab) -> xenlab.XenLab:
    """The lab with this checkout's virt copied into dom0 (its remote helper serves xen:///system)."""
    seconds = xen_lab.install_virt()
    print(f"\nxenlab: virt copied into dom0 in {seconds:.1f} s")
    return xen_lab


@pytest.fixture(scope="session")
def xen_remote_uri(xen_virt_in_dom0: xenlab.XenLab) -> str:
    """``xen+ext:///system``: virt's remote plugin, with virt itself (the driver, on the local
    ``xl``) running inside the lab's dom0 behind its remote helper."""
    return xen_virt_in_dom0.remote_uri()


@pytest.fixture(scope="session")
def xen_ssh_uri(xen_virt_in_dom0: xenlab.XenLab) -> str:
    """``xen+ssh://root@127.0.0.1:PORT/system?keyfile=...&known_hosts=...``: virt's remote plugin
    over SSH (asyncssh) to OpenSSH's sshd in dom0, which runs the helper there."""
    return xen_virt_in_dom0.ssh_uri()


@pytest.fixture(params=["host", "dom0", "ssh"])
def xen_uri(request: pytest.FixtureRequest, xen_lab: xenlab.XenLab) -> str:
    """The three ways of driving the lab: the driver here with xl forwarded into dom0 ("host"),
    or the driver inside dom0 reached through virt's remote plugin, over the ``ext`` transport
    ("dom0") or over SSH to dom0's sshd ("ssh")."""
    if request.param == "host":
        return "xen:///system"
    if request.param == "ssh":
        return str(request.getfixturevalue("xen_ssh_uri"))
    return str(request.getfixturevalue("xen_remote_uri"))
