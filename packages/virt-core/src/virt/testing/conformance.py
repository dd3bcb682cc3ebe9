"""The driver conformance suite: the contract every hypervisor driver keeps, as pytest tests.

A driver author subclasses :class:`DriverConformance` in their own test suite and says which
URI to open; every test then runs against that driver through the public API only
(:func:`virt.open`, :class:`virt.Connection`, :class:`virt.Domain`)::

    import pytest
    from virt.testing import DriverConformance


    class TestMyDriver(DriverConformance):
        @pytest.fixture
        def uri(self) -> str:
            return "mydrv:///session"

        # optional: when the generic XML below is not a valid domain for your driver
        @pytest.fixture
        def domain_xml(self):
            return lambda name, uuid: f"<domain type='mydrv'><name>{name}</name>...</domain>"

A feature the contract leaves optional (suspend, transient domains, ...) is skipped, with
``[optional]`` in the reason, when the driver answers it with ``VirtError(NO_SUPPORT)``.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lxml import etree

import virt
from virt._errors import ErrorNumber, VirtError
from virt._plugins import LIBVIRT_API
from virt._records import DomainEvent, DomainEventType, DomainInfo, DomainState

__all__ = ["DomainXML", "DriverConformance", "generic_domain_xml"]

#: Makes the XML of a domain for the driver under test from a name and a UUID.
DomainXML = Callable[[str, str], str]


def generic_domain_xml(domain_type: str) -> DomainXML:
    """A minimal libvirt domain of ``domain_type`` (128 MiB, one vCPU, no devices)."""

    def make(name: str, uuid: str) -> str:
        return (
            f"<domain type='{domain_type}'>\n"
            f"  <name>{name}</name>\n"
            f"  <uuid>{uuid}</uuid>\n"
            "  <memory unit='KiB'>131072</memory>\n"
            "  <currentMemory unit='KiB'>131072</currentMemory>\n"
            "  <vcpu placement='static'>1</vcpu>\n"
            "  <os>\n"
            "    <type>hvm</type>\n"
            "  </os>\n"
            "</domain>\n"
        )

    return make


def _expect(code: ErrorNumber | tuple[ErrorNumber, ...], call: Callable[[], object], what: str) -> VirtError:
    """Run ``call``; it must raise ``VirtError`` with ``code`` (or one of several codes)."""
    codes = code if isinstance(code, tuple) else (code,)
    expected = " or ".join(f"VirtError({c.name})" for c in codes)
    try:
        call()
    except VirtError as exc:
        assert exc.code in codes, f"{what}: expected {expected}, got {exc!r}"
        return exc
    except Exception as exc:  # noqa: BLE001 - any other exception type breaks the contract
        pytest.fail(f"{what}: expected {expected}, got {type(exc).__name__}: {exc}")
    pytest.fail(f"{what}: expected {expected}, but it succeeded")


def _optional(call: Callable[[], Any], what: str) -> Any:
    """Run ``call``; skip the test when the driver does not implement ``what``."""
    try:
        return call()
    except VirtError as exc:
        if exc.code == ErrorNumber.NO_SUPPORT:
            pytest.skip(f"[optional] the driver does not implement {what}: {exc.message}")
        raise


def _identity(domain_xml_text: str) -> tuple[str | None, str | None]:
    root = etree.fromstring(domain_xml_text.encode())
    assert root.tag == "domain", f"the domain XML has root <{root.tag}>, expected <domain>"
    return root.findtext("name"), root.findtext("uuid")


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# Calls that change nothing, by the hook they make; used to check that every failure is a
# VirtError and that a hook nobody implements is NO_SUPPORT naming the libvirt function.
_CONNECTION_PROBES: dict[str, Callable[[virt.Connection], object]] = {
    "virt_connect_get_type": lambda c: c.type(),
    "virt_connect_get_version": lambda c: c.version(),
    "virt_connect_get_hostname": lambda c: c.hostname(),
    "virt_connect_get_capabilities": lambda c: c.capabilities(),
    "virt_connect_get_domain_capabilities": lambda c: c.domain_capabilities(),
    "virt_connect_get_sysinfo": lambda c: c.sysinfo(),
    "virt_connect_get_max_vcpus": lambda c: c.max_vcpus(),
    "virt_connect_get_cpu_model_names": lambda c: c.cpu_model_names("x86_64"),
    "virt_node_get_info": lambda c: c.node_info(),
    "virt_node_get_cells_free_memory": lambda c: c.cells_free_memory(),
    "virt_node_get_free_memory": lambda c: c.free_memory(),
    "virt_node_get_cpu_stats": lambda c: c.node_cpu_stats(),
    "virt_node_get_memory_stats": lambda c: c.node_memory_stats(),
    "virt_nodedev_list": lambda c: c.list_node_devices(),
    "virt_interface_list": lambda c: c.list_interfaces(),
    "virt_secret_list": lambda c: c.list_secrets(),
    "virt_domain_list": lambda c: c.list_domains(),
    "virt_network_list": lambda c: c.list_networks(),
    "virt_network_lookup_by_name": lambda c: c.lookup_network("virt-conformance-no-such-network"),
    "virt_pool_list": lambda c: c.list_storage_pools(),
    "virt_pool_lookup_by_name": lambda c: c.lookup_storage_pool("virt-conformance-no-such-pool"),
    "virt_vol_lookup_by_path": lambda c: c.lookup_volume_by_path("/virt-conformance/no/such/volume"),
}

_DOMAIN_PROBES: dict[str, Callable[[virt.Domain], object]] = {
    "virt_domain_get_info": lambda d: d.info(),
    "virt_domain_get_state": lambda d: d.state(),
    "virt_domain_get_xml": lambda d: d.xml(),
    "virt_domain_get_os_type": lambda d: d.os_type(),
    "virt_domain_get_id": lambda d: d.id,
    "virt_domain_is_active": lambda d: d.is_active(),
    "virt_domain_is_persistent": lambda d: d.is_persistent(),
    "virt_domain_get_autostart": lambda d: d.autostart,
    "virt_domain_has_managed_save_image": lambda d: d.has_managed_save_image(),
    "virt_domain_get_vcpus_flags": lambda d: d.vcpus_count(),
    "virt_domain_get_vcpus": lambda d: d.vcpus(),
    "virt_domain_get_metadata": lambda d: d.metadata(0),
    "virt_domain_get_scheduler_type": lambda d: d.scheduler_type(),
    "virt_domain_get_scheduler_parameters": lambda d: d.scheduler_parameters(),
    "virt_domain_get_memory_parameters": lambda d: d.memory_parameters(),
    "virt_domain_get_blkio_parameters": lambda d: d.blkio_parameters(),
    "virt_domain_get_numa_parameters": lambda d: d.numa_parameters(),
    "virt_domain_memory_stats": lambda d: d.memory_stats(),
    "virt_domain_block_stats": lambda d: d.block_stats("vda"),
    "virt_domain_interface_stats": lambda d: d.interface_stats("eth0"),
    "virt_domain_get_block_info": lambda d: d.block_info("vda"),
    "virt_domain_interface_addresses": lambda d: d.interface_addresses(),
    "virt_domain_get_job_info": lambda d: d.job_info(),
    "virt_domain_get_time": lambda d: d.time(),
    "virt_domain_get_hostname": lambda d: d.hostname(),
    "virt_snapshot_list": lambda d: d.list_snapshots(),
    "virt_snapshot_current": lambda d: d.current_snapshot(),
}


def _probe(supported: bool, hook: str, call: Callable[[], object]) -> None:
    """A supported call returns or raises VirtError; an unsupported one raises NO_SUPPORT."""
    try:
        call()
    except VirtError as exc:
        if not supported:
            assert exc.code == ErrorNumber.NO_SUPPORT, f"{hook} is not implemented, yet raised {exc!r}"
            api = LIBVIRT_API[hook]
            assert exc.message == f"this function is not supported by the connection driver: {api}", (
                f"{hook}: NO_SUPPORT must name {api} as libvirt does, got {exc.message!r}")
    except Exception as exc:  # noqa: BLE001 - any other exception type breaks the contract
        pytest.fail(f"{hook} raised {type(exc).__name__} ({exc}); every failure must be a VirtError")
    else:
        assert supported, f"{hook} is not implemented, yet the call succeeded"


class DriverConformance:
    """Mixin of pytest tests that any driver must pass; override the :meth:`uri` fixture.

    Fixtures a subclass may override: ``uri`` (required), ``domain_xml`` (a
    :data:`DomainXML`; the default is :func:`generic_domain_xml` of the connection's type).
    Class attribute ``event_timeout``: how long to wait for events a driver reports from
    another thread.
    """

    #: Seconds to wait for an event that a driver delivers from a background thread.
    event_timeout: float = 5.0

    # -- fixtures a driver's test class overrides -----------------------------------------

    @pytest.fixture
    def uri(self) -> str:
        pytest.fail("DriverConformance needs a `uri` fixture: override it in your subclass")

    @pytest.fixture
    def domain_xml(self, conn: virt.Connection) -> DomainXML:
        return generic_domain_xml(conn.type().lower())

    # -- fixtures of the suite ------------------------------------------------------------

    @pytest.fixture
    def conn(self, uri: str) -> Iterator[virt.Connection]:
        connection = virt.open(uri)
        try:
            yield connection
        finally:
            connection.close()

    @pytest.fixture
    def new_name(self) -> str:
        return f"virt-conformance-{uuidlib.uuid4().hex[:12]}"

    @pytest.fixture
    def new_uuid(self) -> str:
        return str(uuidlib.uuid4())

    @pytest.fixture
    def domain(self, conn: virt.Connection, domain_xml: DomainXML, new_name: str,
               new_uuid: str) -> Iterator[virt.Domain]:
        """A freshly defined, inactive, persistent domain; removed after the test."""
        dom = conn.define_domain(domain_xml(new_name, new_uuid))
        try:
            yield dom
        finally:
            self._remove(conn, new_uuid)

    @staticmethod
    def _remove(conn: virt.Connection, uuid: str) -> None:
        if not conn.is_alive():
            return
        try:
            dom = conn.lookup_domain_by_uuid(uuid)
        except VirtError:
            return
        for step in (dom.destroy, dom.undefine):
            try:
                step()
            except VirtError:
                pass

    # -- the connection -------------------------------------------------------------------

    def test_open_and_close(self, uri: str) -> None:
        connection = virt.open(uri)
        assert connection.is_alive()
        connection.close()
        assert not connection.is_alive()
        connection.close()  # closing twice is harmless
        _expect(ErrorNumber.INVALID_CONN, connection.type, "a call on a closed connection")

    def test_connection_is_a_context_manager(self, uri: str) -> None:
        with virt.open(uri) as connection:
            assert connection.is_alive()
        assert not connection.is_alive()

    def test_type_version_and_uri(self, conn: virt.Connection, uri: str) -> None:
        hv_type = conn.type()
        assert isinstance(hv_type, str) and hv_type, "type() must name the hypervisor"
        version = conn.version()
        assert isinstance(version, int) and version >= 0, "version() is major*1000000+minor*1000+micro"
        canonical = virt.parse_uri(conn.uri)
        assert canonical.driver == virt.parse_uri(uri).driver, (
            f"the connection's URI {conn.uri!r} is not for the driver of {uri!r}")

    def test_unknown_domain_is_no_domain(self, conn: virt.Connection) -> None:
        _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain("virt-conformance-no-such-domain"),
                "lookup of an unknown name")
        _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain_by_uuid(str(uuidlib.uuid4())),
                "lookup of an unknown UUID")

    # -- define and look up ---------------------------------------------------------------

    def test_define_then_look_up(self, conn: virt.Connection, domain: virt.Domain, new_name: str,
                                 new_uuid: str) -> None:
        assert (domain.name, domain.uuid) == (new_name, new_uuid)
        by_name = conn.lookup_domain(new_name)
        assert (by_name.name, by_name.uuid) == (new_name, new_uuid)
        by_uuid = conn.lookup_domain_by_uuid(new_uuid)
        assert (by_uuid.name, by_uuid.uuid) == (new_name, new_uuid)
        assert by_name == by_uuid == domain

    def test_defined_domain_is_inactive_and_persistent(self, conn: virt.Connection, domain: virt.Domain) -> None:
        assert not domain.is_active()
        assert domain.is_persistent()
        assert domain.state()[0] == DomainState.SHUTOFF
        assert domain.id == -1
        assert domain in conn.list_domains()
        assert domain in conn.list_domains(active=False)
        assert domain not in conn.list_domains(active=True)

    def test_xml_keeps_name_and_uuid(self, domain: virt.Domain, new_name: str, new_uuid: str) -> None:
        assert _identity(domain.xml()) == (new_name, new_uuid)
        assert _identity(domain.xml(inactive=True)) == (new_name, new_uuid)

    def test_redefine_from_own_xml(self, conn: virt.Connection, domain: virt.Domain, new_name: str,
                                   new_uuid: str) -> None:
        again = conn.define_domain(domain.xml(inactive=True))
        assert (again.name, again.uuid) == (new_name, new_uuid)
        assert _identity(again.xml(inactive=True)) == (new_name, new_uuid)
        assert [d.uuid for d in conn.list_domains()].count(new_uuid) == 1

    def test_malformed_xml_is_xml_error(self, conn: virt.Connection) -> None:
        _expect(ErrorNumber.XML_ERROR, lambda: conn.define_domain("<domain type='x'><name>broken"),
                "define with malformed XML")

    def test_name_of_another_domain_is_refused(self, conn: virt.Connection, domain: virt.Domain,
                                               domain_xml: DomainXML, new_name: str) -> None:
        _expect(ErrorNumber.OPERATION_FAILED, lambda: conn.define_domain(domain_xml(new_name, str(uuidlib.uuid4()))),
                "define with the name of another domain")

    # -- lifecycle ------------------------------------------------------------------------

    def test_start_runs_the_domain(self, conn: virt.Connection, domain: virt.Domain) -> None:
        domain.start()
        assert domain.state()[0] == DomainState.RUNNING
        assert domain.is_active()
        assert domain.id >= 0, "a running domain has an id"
        assert domain in conn.list_domains(active=True)
        assert domain not in conn.list_domains(active=False)

    def test_running_domain_by_id(self, conn: virt.Connection, domain: virt.Domain) -> None:
        domain.start()
        found = _optional(lambda: conn.lookup_domain_by_id(domain.id), "virDomainLookupByID")
        assert found == domain

    def test_info_of_running_domain(self, domain: virt.Domain) -> None:
        domain.start()
        info = domain.info()
        assert isinstance(info, DomainInfo)
        assert info.state == DomainState.RUNNING
        assert info.memory > 0 and info.max_memory >= info.memory, "memory in KiB, current <= maximum"
        assert info.nr_virt_cpu >= 1
        assert info.cpu_time >= 0

    def test_start_of_running_domain_is_refused(self, domain: virt.Domain) -> None:
        domain.start()
        # The spec asks OPERATION_INVALID; libvirt's own test driver answers INTERNAL_ERROR
        # ("Domain 'x' is already running") and virt's copies it word for word.
        _expect((ErrorNumber.OPERATION_INVALID, ErrorNumber.INTERNAL_ERROR), domain.start,
                "start of a running domain")
        assert domain.state()[0] == DomainState.RUNNING

    def test_suspend_and_resume(self, domain: virt.Domain) -> None:
        domain.start()
        _optional(domain.suspend, "virDomainSuspend")
        assert domain.state()[0] == DomainState.PAUSED
        assert domain.is_active()
        domain.resume()
        assert domain.state()[0] == DomainState.RUNNING

    def test_destroy_stops_the_domain(self, conn: virt.Connection, domain: virt.Domain) -> None:
        domain.start()
        domain.destroy()
        assert domain.state()[0] == DomainState.SHUTOFF
        assert not domain.is_active()
        assert domain.id == -1
        assert domain.is_persistent(), "a persistent domain stays defined when it stops"
        assert domain in conn.list_domains(active=False)

    def test_destroy_of_inactive_domain_is_invalid(self, domain: virt.Domain) -> None:
        _expect(ErrorNumber.OPERATION_INVALID, domain.destroy, "destroy of an inactive domain")

    def test_undefine_removes_the_domain(self, conn: virt.Connection, domain: virt.Domain, new_name: str,
                                         new_uuid: str) -> None:
        domain.undefine()
        _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain(new_name), "lookup of an undefined domain")
        _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain_by_uuid(new_uuid), "lookup of an undefined domain")
        assert new_uuid not in [d.uuid for d in conn.list_domains()]

    def test_transient_domain_goes_away_when_stopped(self, conn: virt.Connection, domain_xml: DomainXML,
                                                     new_name: str, new_uuid: str) -> None:
        try:
            dom = _optional(lambda: conn.create_domain(domain_xml(new_name, new_uuid)), "virDomainCreateXML")
            assert dom.is_active() and not dom.is_persistent()
            assert dom.state()[0] == DomainState.RUNNING
            dom.destroy()
            _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain_by_uuid(new_uuid),
                    "lookup of a stopped transient domain")
        finally:
            self._remove(conn, new_uuid)

    def test_full_lifecycle(self, conn: virt.Connection, domain_xml: DomainXML, new_name: str,
                            new_uuid: str) -> None:
        """define → look up → list → XML → start → info → suspend/resume → destroy → undefine."""
        try:
            dom = conn.define_domain(domain_xml(new_name, new_uuid))
            assert conn.lookup_domain(new_name) == conn.lookup_domain_by_uuid(new_uuid) == dom
            assert dom in conn.list_domains()
            assert _identity(dom.xml()) == (new_name, new_uuid)
            dom.start()
            assert dom.state()[0] == DomainState.RUNNING
            assert dom.info().state == DomainState.RUNNING
            if conn.supports("virt_domain_suspend"):
                dom.suspend()
                assert dom.state()[0] == DomainState.PAUSED
                dom.resume()
                assert dom.state()[0] == DomainState.RUNNING
            dom.destroy()
            assert dom.state()[0] == DomainState.SHUTOFF
            dom.undefine()
            _expect(ErrorNumber.NO_DOMAIN, lambda: conn.lookup_domain(new_name), "lookup after undefine")
        finally:
            self._remove(conn, new_uuid)

    # -- errors: NO_SUPPORT and nothing but VirtError -------------------------------------

    @pytest.mark.parametrize("hook", sorted(_CONNECTION_PROBES))
    def test_connection_call_fails_only_with_virt_error(self, conn: virt.Connection, hook: str) -> None:
        _probe(conn.supports(hook), hook, lambda: _CONNECTION_PROBES[hook](conn))

    @pytest.mark.parametrize("hook", sorted(_DOMAIN_PROBES))
    def test_domain_call_fails_only_with_virt_error(self, conn: virt.Connection, domain: virt.Domain,
                                                    hook: str) -> None:
        _probe(conn.supports(hook), hook, lambda: _DOMAIN_PROBES[hook](domain))

    # -- read-only connections ------------------------------------------------------------

    def test_read_only_connection_refuses_define(self, uri: str, domain_xml: DomainXML, new_name: str,
                                                 new_uuid: str) -> None:
        with virt.open(uri, readonly=True) as ro:
            assert ro.readonly
            error = _expect(ErrorNumber.OPERATION_DENIED, lambda: ro.define_domain(domain_xml(new_name, new_uuid)),
                            "define on a read-only connection")
            assert "virDomainDefineXMLFlags" in error.message
            _expect(ErrorNumber.OPERATION_DENIED, lambda: ro.create_domain(domain_xml(new_name, new_uuid)),
                    "create on a read-only connection")
            ro.list_domains()  # reading is allowed
            _expect(ErrorNumber.NO_DOMAIN, lambda: ro.lookup_domain(new_name), "lookup of a refused define")

    def test_read_only_connection_refuses_lifecycle(self, uri: str, domain: virt.Domain) -> None:
        with virt.open(uri, readonly=True) as ro:
            try:
                seen = ro.lookup_domain_by_uuid(domain.uuid)
            except VirtError:
                pytest.skip("[optional] a second connection to this URI does not see the first one's domains")
            for name, call in (("start", seen.start), ("undefine", seen.undefine)):
                _expect(ErrorNumber.OPERATION_DENIED, call, f"{name} on a read-only connection")
            assert seen.state()[0] == DomainState.SHUTOFF

    # -- events ---------------------------------------------------------------------------

    def test_lifecycle_events_are_delivered(self, conn: virt.Connection, domain_xml: DomainXML,
                                            new_name: str, new_uuid: str) -> None:
        seen: list[tuple[virt.Connection, DomainEvent]] = []
        sub = conn.subscribe(lambda c, e: seen.append((c, e)), DomainEvent)
        expected = [DomainEventType.DEFINED, DomainEventType.STARTED]
        try:
            dom = conn.define_domain(domain_xml(new_name, new_uuid))
            dom.start()
            if conn.supports("virt_domain_suspend"):
                dom.suspend()
                dom.resume()
                expected += [DomainEventType.SUSPENDED, DomainEventType.RESUMED]
            dom.destroy()
            dom.undefine()
            expected += [DomainEventType.STOPPED, DomainEventType.UNDEFINED]

            def mine() -> list[DomainEventType]:
                return [e.event for _, e in list(seen) if e.uuid == new_uuid]

            _wait(lambda: len(mine()) >= len(expected), self.event_timeout)
            assert mine() == expected, f"lifecycle events {mine()}, expected {expected}"
            for source, event in seen:
                if event.uuid == new_uuid:
                    assert source is conn, "a callback receives the connection it subscribed on"
                    assert event.name == new_name
        finally:
            conn.unsubscribe(sub)
            self._remove(conn, new_uuid)

    def test_subscription_by_uuid_and_unsubscribe(self, conn: virt.Connection, domain: virt.Domain) -> None:
        other_uuid = str(uuidlib.uuid4())
        for_other: list[DomainEvent] = []
        for_mine: list[DomainEvent] = []
        conn.subscribe(lambda c, e: for_other.append(e), DomainEvent, uuid=other_uuid)
        sub = conn.subscribe(lambda c, e: for_mine.append(e), "lifecycle", uuid=domain.uuid)
        domain.start()
        assert _wait(lambda: bool(for_mine), self.event_timeout), "no event for the started domain"
        assert all(e.uuid == domain.uuid for e in for_mine)
        conn.unsubscribe(sub)
        count = len(for_mine)
        domain.destroy()
        time.sleep(min(0.2, self.event_timeout))
        assert len(for_mine) == count, "an unsubscribed callback was still called"
        assert for_other == [], "a callback for another UUID received this domain's events"
        _expect(ErrorNumber.INVALID_ARG, lambda: conn.unsubscribe(sub), "unsubscribe twice")
