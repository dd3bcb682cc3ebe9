"""Domain-0, autostart, domstats and consoles through virt's API on the lab's real Xen 4.17,
the driver here and in dom0 over ``xen+ssh://``; a PVH guest (an HVM
container: QEMU's TCG emulates AMD-V with nested paging) with the driver on the host."""

from __future__ import annotations

import shlex
import time
import uuid as uuidlib
from collections.abc import Iterator

import pytest
import virt
from virt import DomainState, VirtError
from virt._errcodes import ErrorNumber
from virt_xen._xl import parse_list
from xenlab_testlib import pv_domain_xml, wait_guest_up, wait_until, xenlab

RUNNING_BOOTED, RUNNING_UNPAUSED = 1, 5
START_PAUSED = 1
LIST_AUTOSTART, LIST_NO_AUTOSTART = 1024, 2048


@pytest.fixture(params=["host", "ssh"])
def xen_uri(request: pytest.FixtureRequest, xen_lab: xenlab.XenLab) -> str:
    """Two of the three ways: the driver here, and in dom0 over ``xen+ssh://`` (the ``ext`` way
    reaches the same helper in dom0; the lifecycle tests run it)."""
    if request.param == "ssh":
        return str(request.getfixturevalue("xen_ssh_uri"))
    return "xen:///system"


@pytest.fixture
def conn(xen_uri: str) -> Iterator[virt.Connection]:
    with virt.open(xen_uri) as connection:
        yield connection


def test_domain0_is_listed(conn: virt.Connection, xen_lab: xenlab.XenLab) -> None:
    rc, out, _ = xen_lab.xl("list", "-v")
    assert rc == 0
    xl_dom0 = next(d for d in parse_list(out) if d.domid == 0)
    listed = {d.name: d for d in conn.list_domains(active=True)}
    assert "Domain-0" in listed and listed["Domain-0"].id == 0
    dom0 = conn.lookup_domain_by_id(0)
    assert dom0.name == "Domain-0" and dom0.uuid == "00000000-0000-0000-0000-000000000000"
    assert dom0.state() == (DomainState.RUNNING, RUNNING_BOOTED)
    info = dom0.info()
    assert info.memory == xl_dom0.mem_mib * 1024 and info.max_memory == xenlab.DOM0_MEMORY_MB * 1024
    assert info.nr_virt_cpu == 1 and info.cpu_time > 0
    xml = dom0.xml()
    assert xml.startswith("<domain type='xen' id='0'>\n  <name>Domain-0</name>")
    assert f"<memory unit='KiB'>{xenlab.DOM0_MEMORY_MB * 1024}</memory>" in xml
    assert [v.number for v in dom0.vcpus()] == [0]
    for op in (dom0.destroy, dom0.shutdown, dom0.suspend):
        with pytest.raises(VirtError) as err:
            op()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        assert "Domain-0 does not support requested operation" in err.value.message
    assert next(d for d in parse_list(xen_lab.xl("list", "-v")[1]) if d.domid == 0).flags.startswith("r")


def test_autostart(conn: virt.Connection, xen_lab: xenlab.XenLab, xen_uri: str) -> None:
    """A domain marked autostart starts with the first connection after Xen boots (a boot is
    simulated by removing the driver's note in xenstore), and only then."""
    uuid = str(uuidlib.uuid4())
    name = f"lab-auto-{uuid[:8]}"
    dom = conn.define_domain(pv_domain_xml(name, uuid))
    try:
        assert not dom.autostart
        dom.set_autostart(True)
        assert dom.autostart
        assert name in [d.name for d in conn.list_domains(flags=LIST_AUTOSTART)]
        assert name not in [d.name for d in conn.list_domains(flags=LIST_NO_AUTOSTART)]
        assert dom.state()[0] == DomainState.SHUTOFF
        assert xen_lab.run("xenstore-rm /tool/virt/autostarted")[0] == 0  # as if Xen had just booted
        with virt.open(xen_uri) as other:
            again = other.lookup_domain_by_uuid(uuid)
            assert again.state() == (DomainState.RUNNING, RUNNING_BOOTED)
        wait_guest_up(xen_lab, name)
        dom.destroy()
        with virt.open(xen_uri) as other:  # not again in the same boot
            assert other.lookup_domain_by_uuid(uuid).state()[0] == DomainState.SHUTOFF
        dom.set_autostart(False)
        assert not dom.autostart
        assert name not in [d.name for d in conn.list_domains(flags=LIST_AUTOSTART)]
        with pytest.raises(VirtError) as err:
            conn.create_domain(pv_domain_xml(f"{name}-t", str(uuidlib.uuid4()))).set_autostart(True)
        assert err.value.code == ErrorNumber.OPERATION_INVALID
    finally:
        for d in conn.list_domains(active=True):
            if d.name in (name, f"{name}-t"):
                d.destroy()
        dom.undefine()


def test_stats_and_console(conn: virt.Connection, xen_lab: xenlab.XenLab, xen_uri: str) -> None:
    uuid = str(uuidlib.uuid4())
    name = f"lab-stats-{uuid[:8]}"
    dom = conn.create_domain(pv_domain_xml(name, uuid), START_PAUSED)
    try:
        path = dom.console_path() if xen_uri == "xen:///system" else None
        rc, tty, _ = xen_lab.run(f"xenstore-read /local/domain/{dom.id}/console/tty")
        assert rc == 0 and tty.decode().strip().startswith("/dev/pts/")
        pty = tty.decode().strip()  # the running XML names it, as libvirt's does
        assert f"<console type='pty' tty='{pty}'>\n      <source path='{pty}'/>" in dom.xml()
        if path is not None:  # the driver here: the pty is dom0's, and the channel carries no streams
            assert path == tty.decode().strip()
            with pytest.raises(VirtError) as err:
                dom.open_console()
            assert err.value.code == ErrorNumber.OPERATION_UNSUPPORTED and path in err.value.message
            dom.resume()
        else:  # the driver in dom0: virt's remote plugin relays the pty as a stream
            stream = dom.open_console()
            try:
                dom.resume()
                seen = b""
                deadline = time.monotonic() + 90
                while xenlab.DOMU_READY_MARKER.encode() not in seen and time.monotonic() < deadline:
                    seen += stream.read(65536, timeout=1.0)
                assert xenlab.DOMU_READY_MARKER.encode() in seen, seen[-500:]
            finally:
                stream.close()
        wait_guest_up(xen_lab, name)
        stats = dom.stats()
        assert (stats["state.state"], stats["state.reason"]) == (int(DomainState.RUNNING), RUNNING_UNPAUSED)
        assert stats["cpu.time"] > 0
        assert (stats["balloon.current"], stats["balloon.maximum"]) == (131072, 131072)
        assert (stats["vcpu.current"], stats["vcpu.maximum"]) == (1, 1)
        assert stats["vcpu.0.time"] > 0 and stats["vcpu.0.state"] in (1, 2)
        assert set(dom.stats(1)) == {"state.state", "state.reason"}
        with pytest.raises(VirtError) as err:
            if path is not None:
                dom.console_path("serial3")
            else:
                dom.open_console("serial3")
        assert err.value.code == ErrorNumber.INTERNAL_ERROR
        assert "cannot find character device serial3" in err.value.message
    finally:
        dom.destroy()


def test_pvh_guest(xen_lab: xenlab.XenLab) -> None:
    """A PVH guest (Xen's HVM container without a device model): the lab's Xen has HAP."""
    uuid = str(uuidlib.uuid4())
    name = f"lab-pvh-{uuid[:8]}"
    xml = pv_domain_xml(name, uuid).replace("machine='xenpv'>linux<", "machine='xenpvh'>xenpvh<")
    with virt.open("xen:///system") as conn:
        dom = conn.create_domain(xml)
        try:
            wait_guest_up(xen_lab, name)
            rc, out, _ = xen_lab.run(f"xl list -l {shlex.quote(name)}")
            assert rc == 0 and '"type": "pvh"' in out.decode()
            assert dom.state()[0] == DomainState.RUNNING
        finally:
            dom.destroy()
    wait_until(lambda: name not in xen_lab.xl("list")[1], 10, "the PVH guest to go")
