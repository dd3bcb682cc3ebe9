"""A guest's whole life through virt's API on a real Xen 4.17 (the lab: tests/xenlab.py).

Each test runs three times: with the driver here and ``xl`` forwarded into dom0 ("host"), and
with the driver itself inside dom0, reached through virt's remote plugin over the ``ext``
transport (``xen+ext://``, "dom0") and over SSH to dom0's sshd (``xen+ssh://``, "ssh").

define, start, state, info, vCPUs, pause/unpause, save/restore, reboot, shutdown, destroy,
undefine, with the lifecycle events each step reports; every step is checked against what
Xen itself says (``xl list`` in the lab's dom0).
"""

from __future__ import annotations

import contextlib
import uuid as uuidlib
from collections.abc import Iterator

import pytest
import virt
from virt import DomainEvent, DomainEventType, DomainState, VirtError
from virt._errcodes import ErrorNumber
from virt_xen._xl import parse_list
from xenlab_testlib import pv_domain_xml, wait_guest_up, wait_until, xenlab

E = DomainEventType
# reasons and details (libvirt's numbers)
RUNNING_BOOTED, RUNNING_RESTORED, RUNNING_UNPAUSED, PAUSED_USER = 1, 3, 5, 1
SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_SAVED = 1, 2, 5
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_SAVED, STARTED_RESTORED = 0, 1, 4, 2


@pytest.fixture
def conn(xen_uri: str) -> Iterator[virt.Connection]:
    with virt.open(xen_uri) as connection:
        yield connection


def xen_says(lab: xenlab.XenLab, name: str) -> str:
    """The state flags `xl list` shows for ``name``, or "" when Xen does not run it."""
    rc, out, _ = lab.xl("list", "-v")
    assert rc == 0
    return next((d.flags for d in parse_list(out) if d.name == name), "")


def test_connection_facts(conn: virt.Connection) -> None:
    assert conn.type() == "Xen"
    assert conn.uri.split("?")[0] in ("xen:///system", "xen+ext:///system") or conn.uri.startswith(
        "xen+ssh://root@127.0.0.1:")
    assert conn.version() // 1000 == 4017
    assert conn.hostname() == "xenlab-dom0"
    info = conn.node_info()
    assert info.cpus >= 1 and info.memory > 512 * 1024
    assert "<machine>xenpv</machine>" in conn.capabilities()
    assert "<machine>xenpv</machine>" in conn.domain_capabilities()


def test_lifecycle(conn: virt.Connection, xen_lab: xenlab.XenLab) -> None:
    uuid = str(uuidlib.uuid4())
    name = f"lab-life-{uuid[:8]}"  # a console log of its own in dom0
    events: list[DomainEvent] = []
    conn.subscribe(lambda c, e: events.append(e), DomainEvent, uuid=uuid)

    def seen() -> list[tuple[DomainEventType, int]]:
        return [(e.event, e.detail) for e in events]

    dom = conn.define_domain(pv_domain_xml(name, uuid))
    try:
        assert dom.state() == (DomainState.SHUTOFF, 0) and not dom.is_active()
        assert xen_says(xen_lab, name) == ""

        dom.start()
        assert dom.state() == (DomainState.RUNNING, RUNNING_BOOTED)
        assert dom.id > 0 and conn.lookup_domain_by_id(dom.id).uuid == uuid
        assert xen_says(xen_lab, name) not in ("",)
        wait_guest_up(xen_lab, name)
        info = dom.info()
        assert (info.max_memory, info.memory, info.nr_virt_cpu) == (131072, 131072, 1)
        assert info.cpu_time > 0
        (vcpu,) = dom.vcpus()
        assert vcpu.number == 0 and vcpu.cpu_time > 0
        assert f"id='{dom.id}'" in dom.xml() and "id=" not in dom.xml(inactive=True).splitlines()[0]

        dom.suspend()
        assert dom.state() == (DomainState.PAUSED, PAUSED_USER)
        assert "p" in xen_says(xen_lab, name)
        with pytest.raises(VirtError) as err:
            dom.suspend()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        dom.resume()
        assert dom.state() == (DomainState.RUNNING, RUNNING_UNPAUSED)
        assert "p" not in xen_says(xen_lab, name)

        dom.save(f"/tmp/{name}.save")
        assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SAVED)
        assert xen_says(xen_lab, name) == ""
        restored = conn.restore_domain(f"/tmp/{name}.save")
        xen_lab.run(f"rm -f /tmp/{name}.save")  # 128 MiB of dom0's memory (a tmpfs)
        assert restored.uuid == uuid
        assert dom.state() == (DomainState.RUNNING, RUNNING_RESTORED)
        assert xen_says(xen_lab, name) != "" and dom.is_persistent()

        dom.shutdown()
        wait_until(lambda: dom.state()[0] == DomainState.SHUTOFF, 60, "the guest to power off")
        assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SHUTDOWN)
        assert xen_says(xen_lab, name) == ""

        dom.start()
        wait_guest_up(xen_lab, name, after=1)
        dom.destroy()
        assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_DESTROYED)
        assert xen_says(xen_lab, name) == ""
        with pytest.raises(VirtError) as err:
            dom.destroy()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
    finally:
        with pytest.raises(VirtError):
            dom.destroy()
        dom.undefine()
    with pytest.raises(VirtError) as err:
        conn.lookup_domain(name)
    assert err.value.code == ErrorNumber.NO_DOMAIN
    expected = [(E.DEFINED, 0), (E.STARTED, 0), (E.SUSPENDED, 0), (E.RESUMED, 0), (E.STOPPED, STOPPED_SAVED),
                (E.STARTED, STARTED_RESTORED), (E.STOPPED, STOPPED_SHUTDOWN), (E.STARTED, 0),
                (E.STOPPED, STOPPED_DESTROYED), (E.UNDEFINED, 0)]
    wait_until(lambda: len(events) >= len(expected), 10, "the lifecycle events")
    assert seen() == expected


def test_reboot_keeps_the_domain(conn: virt.Connection, xen_lab: xenlab.XenLab) -> None:
    uuid = str(uuidlib.uuid4())
    name = f"lab-reboot-{uuid[:8]}"
    dom = conn.create_domain(pv_domain_xml(name, uuid))
    try:
        assert not dom.is_persistent()
        wait_guest_up(xen_lab, name)
        first = dom.id
        dom.reboot()
        wait_until(lambda: conn.lookup_domain_by_uuid(uuid).id != first, 60, "a new domid after reboot")
        wait_guest_up(xen_lab, name, after=1)
        wait_until(lambda: dom.state()[0] == DomainState.RUNNING, 30, "the rebuilt domain to run")
    finally:
        dom.destroy()
    with pytest.raises(VirtError) as err:
        conn.lookup_domain_by_uuid(uuid)
    assert err.value.code == ErrorNumber.NO_DOMAIN


def test_start_failure_says_why(conn: virt.Connection) -> None:
    xml = pv_domain_xml("lab-broken", str(uuidlib.uuid4())).replace(xenlab.DOMU_KERNEL, "/nonexistent/vmlinuz")
    dom = conn.define_domain(xml)
    try:
        with pytest.raises(VirtError) as err:
            dom.start()
        assert "failed to create new domain 'lab-broken'" in err.value.message
        assert "/nonexistent/vmlinuz" in err.value.message or "xc_dom_kernel_file" in err.value.message
        assert dom.state()[0] == DomainState.SHUTOFF
    finally:
        dom.undefine()


def test_managed_save(conn: virt.Connection, xen_lab: xenlab.XenLab) -> None:
    uuid = str(uuidlib.uuid4())
    name = f"lab-msave-{uuid[:8]}"
    image = f"/var/lib/xen/virt-save/{name}.save"
    dom = conn.define_domain(pv_domain_xml(name, uuid))
    try:
        dom.start()
        wait_guest_up(xen_lab, name)
        dom.managed_save()
        assert dom.state() == (DomainState.SHUTOFF, SHUTOFF_SAVED) and dom.has_managed_save_image()
        assert xen_lab.run(f"test -s {image}")[0] == 0 and xen_says(xen_lab, name) == ""
        with pytest.raises(VirtError) as err:
            dom.undefine()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        dom.start()  # resumes from the image, which is then gone
        assert dom.state() == (DomainState.RUNNING, RUNNING_RESTORED)
        assert not dom.has_managed_save_image() and xen_lab.run(f"test -e {image}")[0] != 0
        dom.managed_save()
        dom.managed_save_remove()
        assert not dom.has_managed_save_image() and xen_lab.run(f"test -e {image}")[0] != 0
        dom.start()
        assert dom.state() == (DomainState.RUNNING, RUNNING_BOOTED)
    finally:
        with contextlib.suppress(VirtError):
            dom.destroy()
        dom.undefine(1)  # VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
