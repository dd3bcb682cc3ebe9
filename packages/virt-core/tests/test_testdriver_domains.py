"""The test driver's domains: libvirt's state machine, events, errors and read-only refusal."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import virt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from virt import VirtError
from virt._errors import ErrorNumber
from virt._records import DomainEvent, DomainEventType, DomainState
from virt.testing import run_cli

EMPTY_NODE = """<node>
  <network>
    <name>default</name>
    <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
</node>
"""


def domain_xml(name: str, uuid: str | None = None, interfaces: int = 1, memory: int = 524288) -> str:
    nets = "".join("<interface type='network'><source network='default'/></interface>" for _ in range(interfaces))
    return (f"<domain type='test'><name>{name}</name><uuid>{uuid or uuidlib.uuid4()}</uuid>"
            f"<memory unit='KiB'>{memory}</memory><vcpu>2</vcpu><os><type>hvm</type></os>"
            f"<devices><disk type='file' device='disk'><source file='/img/{name}'/>"
            f"<target dev='vda' bus='virtio'/></disk>{nets}<memballoon model='virtio'/></devices></domain>")


@pytest.fixture
def node_file(tmp_path: Path) -> str:
    path = tmp_path / "node.xml"
    path.write_text(EMPTY_NODE)
    return str(path)


@pytest.fixture
def conn(node_file: str) -> Iterator[Any]:
    with virt.open(f"test://{node_file}") as connection:
        yield connection


def codes(exc: pytest.ExceptionInfo[VirtError]) -> tuple[ErrorNumber, str]:
    return exc.value.code, exc.value.message


# -- the state machine, against a model ---------------------------------------------------------


@attrs.define
class Model:
    persistent: bool = True
    state: DomainState = DomainState.SHUTOFF
    managed_save: bool = False

    @property
    def active(self) -> bool:
        return self.state != DomainState.SHUTOFF


NAMES = st.sampled_from(["a", "b", "c"])


class DomainMachine(RuleBasedStateMachine):
    """Random define/create/start/suspend/resume/destroy/undefine/managed-save sequences: the
    driver must agree with a small model of libvirt's rules after every step."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._tmp = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)  # noqa: SIM115
        self._tmp.write(EMPTY_NODE)
        self._tmp.close()
        self.conn = virt.open(f"test://{self._tmp.name}")
        self.model: dict[str, Model] = {}
        self.uuids: dict[str, str] = {}

    def teardown(self) -> None:
        self.conn.close()
        Path(self._tmp.name).unlink(missing_ok=True)

    @initialize()
    def start_empty(self) -> None:
        assert self.conn.list_domains() == []

    def _expect(self, name: str, action: Any, error: ErrorNumber | None) -> None:
        if error is None:
            action()
        else:
            with pytest.raises(VirtError) as exc:
                action()
            assert exc.value.code == error, exc.value.message

    @rule(name=NAMES)
    def define(self, name: str) -> None:
        uuid = self.uuids.setdefault(name, str(uuidlib.uuid4()))
        self.conn.define_domain(domain_xml(name, uuid))
        entry = self.model.setdefault(name, Model(state=DomainState.SHUTOFF))
        entry.persistent = True

    @rule(name=NAMES)
    def create_transient(self, name: str) -> None:
        uuid = self.uuids.setdefault(name, str(uuidlib.uuid4()))
        entry = self.model.get(name)
        error = ErrorNumber.OPERATION_INVALID if entry is not None and entry.active else None
        self._expect(name, lambda: self.conn.create_domain(domain_xml(name, uuid)), error)
        if error is None:
            if entry is None:
                self.model[name] = Model(persistent=False, state=DomainState.RUNNING)
            else:
                entry.state, entry.managed_save = DomainState.RUNNING, False

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        entry = self.model[name]
        error = ErrorNumber.INTERNAL_ERROR if entry.active else None
        self._expect(name, lambda: self.conn.lookup_domain(name).start(), error)
        if error is None:
            entry.state, entry.managed_save = DomainState.RUNNING, False

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def suspend(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        entry = self.model[name]
        error = ErrorNumber.INTERNAL_ERROR if entry.state != DomainState.RUNNING else None
        self._expect(name, lambda: self.conn.lookup_domain(name).suspend(), error)
        if error is None:
            entry.state = DomainState.PAUSED

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        entry = self.model[name]
        error = ErrorNumber.INTERNAL_ERROR if entry.state != DomainState.PAUSED else None
        self._expect(name, lambda: self.conn.lookup_domain(name).resume(), error)
        if error is None:
            entry.state = DomainState.RUNNING

    def _stop(self, name: str) -> None:
        entry = self.model[name]
        entry.state = DomainState.SHUTOFF
        if not entry.persistent:
            del self.model[name]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def destroy(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        error = None if self.model[name].active else ErrorNumber.OPERATION_INVALID
        self._expect(name, lambda: self.conn.lookup_domain(name).destroy(), error)
        if error is None:
            self._stop(name)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), with_flag=st.booleans())
    def undefine(self, data: st.DataObject, with_flag: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        entry = self.model[name]
        error = None
        if not entry.persistent or (entry.managed_save and not with_flag):
            error = ErrorNumber.OPERATION_INVALID
        self._expect(name, lambda: self.conn.lookup_domain(name).undefine(1 if with_flag else 0), error)
        if error is None:
            entry.managed_save = False
            if entry.active:
                entry.persistent = False
            else:
                del self.model[name]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def managed_save(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        entry = self.model[name]
        error = None if entry.active and entry.persistent else ErrorNumber.OPERATION_INVALID
        self._expect(name, lambda: self.conn.lookup_domain(name).managed_save(), error)
        if error is None:
            entry.state, entry.managed_save = DomainState.SHUTOFF, True

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def managed_save_remove(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.conn.lookup_domain(name).managed_save_remove()
        self.model[name].managed_save = False

    @invariant()
    def agrees_with_model(self) -> None:
        listed = {d.name: d for d in self.conn.list_domains()}
        assert set(listed) == set(self.model)
        ids = set()
        for name, entry in self.model.items():
            dom = listed[name]
            assert dom.state()[0] == entry.state
            assert dom.is_persistent() == entry.persistent
            assert dom.is_active() == entry.active
            assert dom.has_managed_save_image() == entry.managed_save
            if entry.active:
                assert dom.id > 0 and dom.id not in ids
                ids.add(dom.id)
                assert self.conn.lookup_domain_by_id(dom.id) == dom
            else:
                assert dom.id == -1
        running = [d.name for d in self.conn.list_domains(active=True)]
        assert sorted(running) == sorted(n for n, e in self.model.items() if e.active)


TestDomainStateMachine = DomainMachine.TestCase
TestDomainStateMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])


# -- events ---------------------------------------------------------------------------------------


def test_lifecycle_events_carry_libvirts_numbers(conn: Any) -> None:
    seen: list[tuple[str, int, int]] = []
    conn.subscribe(lambda _c, ev: seen.append((ev.name, int(ev.event), ev.detail)), DomainEvent)
    dom = conn.define_domain(domain_xml("ev"))
    dom.start()
    dom.suspend()
    dom.resume()
    dom.managed_save()
    dom.start()
    dom.destroy()
    conn.define_domain(dom.xml(inactive=True))
    dom.rename("ev2")
    dom.undefine()
    assert seen == [
        ("ev", DomainEventType.DEFINED, 0), ("ev", DomainEventType.STARTED, 0),
        ("ev", DomainEventType.SUSPENDED, 0), ("ev", DomainEventType.RESUMED, 0),
        ("ev", DomainEventType.STOPPED, 4), ("ev", DomainEventType.STARTED, 0),
        ("ev", DomainEventType.STOPPED, 1), ("ev", DomainEventType.DEFINED, 1),
        ("ev", DomainEventType.UNDEFINED, 1), ("ev2", DomainEventType.DEFINED, 2),
        ("ev2", DomainEventType.UNDEFINED, 0),
    ]


def test_events_reach_every_connection_of_the_shared_default_node() -> None:
    with virt.open("test:///default") as watcher, virt.open("test:///default") as actor:
        seen: list[DomainEvent] = []
        dom = watcher.lookup_domain("test")
        watcher.subscribe(lambda _c, ev: seen.append(ev), "lifecycle", uuid=dom.uuid)
        actor.lookup_domain("test").destroy()
        actor.lookup_domain("test").start()
        assert [(int(e.event), e.detail) for e in seen] == [(DomainEventType.STOPPED, 1),
                                                            (DomainEventType.STARTED, 0)]
        assert seen[-1].id == actor.lookup_domain("test").id


def test_shutdown_and_reboot_follow_the_lifecycle_actions(conn: Any) -> None:
    xml = domain_xml("life").replace("<devices>", "<on_poweroff>restart</on_poweroff><on_reboot>destroy</on_reboot>"
                                     "<devices>")
    dom = conn.create_domain(xml)
    dom.shutdown()
    assert dom.state() == (DomainState.RUNNING, 1)
    dom.reboot()
    with pytest.raises(VirtError) as exc:
        dom.state()  # transient: gone once stopped
    assert exc.value.code == ErrorNumber.NO_DOMAIN


# -- bad input leaves the node as it was ------------------------------------------------------------


def test_malformed_xml_is_an_xml_error(conn: Any) -> None:
    with pytest.raises(VirtError) as exc:
        conn.define_domain("<domain type='test'><name>x</name")
    assert exc.value.code == ErrorNumber.XML_ERROR
    with pytest.raises(VirtError) as exc:
        conn.define_domain("<domain type='test'><name>x</name></domain>")
    assert exc.value.code == ErrorNumber.XML_ERROR
    assert conn.list_domains() == []


def test_duplicate_names_and_uuids_are_refused(conn: Any) -> None:
    first = conn.define_domain(domain_xml("one"))
    with pytest.raises(VirtError) as exc:
        conn.define_domain(domain_xml("one"))
    assert codes(exc) == (ErrorNumber.OPERATION_FAILED,
                          f"operation failed: domain 'one' already exists with uuid {first.uuid}")
    with pytest.raises(VirtError) as exc:
        conn.define_domain(domain_xml("two", first.uuid))
    assert codes(exc) == (ErrorNumber.OPERATION_FAILED,
                          f"operation failed: domain 'one' is already defined with uuid {first.uuid}")
    assert [d.name for d in conn.list_domains()] == ["one"]
    first.start()
    with pytest.raises(VirtError) as exc:
        conn.create_domain(first.xml(inactive=True))
    assert codes(exc) == (ErrorNumber.OPERATION_INVALID,
                          "Requested operation is not valid: domain 'one' is already active")


def test_wrong_states_use_libvirts_codes_and_messages(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("w"))
    cases = [
        (dom.destroy, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: domain is not running"),
        (dom.suspend, ErrorNumber.INTERNAL_ERROR, "internal error: domain 'w' not running"),
        (dom.resume, ErrorNumber.INTERNAL_ERROR, "internal error: domain 'w' not paused"),
        (dom.shutdown, ErrorNumber.INTERNAL_ERROR, "internal error: domain 'w' not running"),
        (dom.reboot, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: domain is not running"),
        (dom.managed_save, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: domain is not running"),
        (dom.hostname, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: domain is not running"),
        (dom.vcpus, ErrorNumber.OPERATION_INVALID,
         "Requested operation is not valid: cannot list vcpus for an inactive domain"),
    ]
    for call, code, message in cases:
        with pytest.raises(VirtError) as exc:
            call()
        assert codes(exc) == (code, message), call
    dom.start()
    with pytest.raises(VirtError) as exc:
        dom.start()
    assert codes(exc) == (ErrorNumber.INTERNAL_ERROR, "internal error: Domain 'w' is already running")
    with pytest.raises(VirtError) as exc:
        dom.rename("other")
    assert codes(exc) == (ErrorNumber.OPERATION_INVALID,
                          "Requested operation is not valid: cannot rename active domain")
    assert dom.state() == (DomainState.RUNNING, 1)


def test_unknown_flags_are_refused_like_virCheckFlags(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("f"))
    with pytest.raises(VirtError) as exc:
        dom.undefine(4)
    assert codes(exc) == (ErrorNumber.INVALID_ARG, "unsupported flags (0x4) in function testDomainUndefineFlags")
    assert dom.is_persistent()


def test_readonly_connections_refuse_changes(node_file: str) -> None:
    with virt.open(f"test://{node_file}", readonly=True) as ro:
        with pytest.raises(VirtError) as exc:
            ro.define_domain(domain_xml("ro"))
        assert exc.value.code == ErrorNumber.OPERATION_DENIED
    with virt.open("test:///default", readonly=True) as ro:
        dom = ro.lookup_domain("test")
        for call in (dom.destroy, dom.suspend, dom.managed_save, lambda: dom.set_memory(1024),
                     lambda: dom.set_autostart(True), lambda: dom.create_snapshot()):
            with pytest.raises(VirtError) as exc:
                call()
            assert exc.value.code == ErrorNumber.OPERATION_DENIED
        assert dom.state() == (DomainState.RUNNING, 0)
        assert dom.info().memory == 2097152


# -- configuration and monitoring -------------------------------------------------------------------


def test_memory_and_vcpus_follow_the_affect_flags(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("m", memory=1048576))
    dom.start()
    dom.set_memory(524288, 1)  # live
    assert dom.info().memory == 524288
    assert "<currentMemory unit='KiB'>1048576</currentMemory>" in dom.xml(inactive=True)
    with pytest.raises(VirtError) as exc:
        dom.set_memory(1024, 3)
    assert exc.value.code == ErrorNumber.INVALID_ARG
    with pytest.raises(VirtError) as exc:
        dom.set_max_memory(2048)
    assert exc.value.code == ErrorNumber.OPERATION_INVALID
    dom.set_vcpus(1, 1)
    assert (dom.vcpus_count(1), dom.vcpus_count(2)) == (1, 2)
    dom.set_vcpus(4, 2 | 4)  # config maximum
    assert dom.vcpus_count(2 | 4) == 4
    with pytest.raises(VirtError) as exc:
        dom.set_vcpus(40)
    assert exc.value.code == ErrorNumber.INVALID_ARG
    dom.destroy()
    assert dom.info().max_memory == 1048576 and dom.vcpus_count(4) == 4


def test_metadata_title_description_and_element(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("meta"))
    with pytest.raises(VirtError) as exc:
        dom.metadata(1)
    assert exc.value.code == ErrorNumber.NO_DOMAIN_METADATA
    dom.set_metadata(1, "A title")
    dom.set_metadata(0, "Some words")
    dom.set_metadata(2, "<foo>bar</foo>", key="k", uri="http://example.org/")
    assert (dom.metadata(1), dom.metadata(0)) == ("A title", "Some words")
    assert dom.metadata(2, uri="http://example.org/") == "<foo>bar</foo>"
    assert "<title>A title</title>" in dom.xml()
    dom.set_metadata(1, None)
    with pytest.raises(VirtError):
        dom.metadata(1)


def test_stats_interfaces_and_addresses(conn: Any) -> None:
    dom = conn.create_domain(domain_xml("s", interfaces=2))
    addrs = dom.interface_addresses()
    assert [(i.name, i.addrs[0].addr, i.addrs[0].prefix) for i in addrs] == [
        ("testnet0", "192.168.122.3", 24), ("testnet1", "192.168.122.4", 24)]
    assert dom.memory_stats()["actual"] == 524288
    assert dom.block_stats("vda").rd_req > 0
    assert dom.block_stats("/img/s").errs >= 0
    with pytest.raises(VirtError) as exc:
        dom.block_stats("vdz")
    assert codes(exc) == (ErrorNumber.INVALID_ARG, "invalid argument: invalid path: vdz")
    mac = dom.xml().split("<mac address='")[1].split("'")[0]
    assert dom.interface_stats(mac).rx_bytes > 0
    assert dom.hostname() == "shost"
    assert dom.time() == (627319920, 0)
    with pytest.raises(VirtError) as exc:
        dom.job_info()
    assert exc.value.code == ErrorNumber.NO_SUPPORT


def test_define_gives_every_interface_a_testnet_target(conn: Any) -> None:
    xml = domain_xml("n", interfaces=3).replace("<source network='default'/></interface>",
                                                "<source network='default'/><target dev='testnet1'/></interface>", 1)
    dom = conn.define_domain(xml)
    inactive = dom.xml(inactive=True)
    assert [part.split("'")[0] for part in inactive.split("<target dev='")[2:]] == ["testnet1", "testnet0", "testnet2"]


# -- save images and snapshots ------------------------------------------------------------------------


def test_save_and_restore_through_a_file(conn: Any, tmp_path: Path) -> None:
    dom = conn.define_domain(domain_xml("sv"))
    dom.start()
    dom.suspend()
    image = tmp_path / "sv.img"
    dom.save(str(image))
    assert image.read_bytes().startswith(b"TestGuestMagic\0")
    assert dom.state() == (DomainState.SHUTOFF, 5)
    restored = conn.restore_domain(str(image))
    assert restored == dom
    assert dom.state() == (DomainState.PAUSED, 1)
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(VirtError) as exc:
        conn.restore_domain(str(bad))
    assert codes(exc) == (ErrorNumber.INTERNAL_ERROR, "internal error: mismatched header magic")
    with pytest.raises(VirtError) as exc:
        dom.save(str(tmp_path / "no" / "such" / "dir"))
    assert exc.value.code == ErrorNumber.SYSTEM_ERROR


def test_managed_save_is_listed_and_cleared_by_start(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("ms"))
    dom.start()
    dom.managed_save()
    assert [d.name for d in conn.list_domains(flags=256)] == ["ms"]  # VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE
    with pytest.raises(VirtError):
        dom.undefine()
    dom.start()
    assert not dom.has_managed_save_image()
    assert dom.state() == (DomainState.RUNNING, 1)


def test_snapshot_tree_revert_and_delete(conn: Any) -> None:
    dom = conn.define_domain(domain_xml("snap", memory=1048576))
    dom.start()
    first = dom.create_snapshot("<domainsnapshot><name>one</name><description>d</description></domainsnapshot>")
    dom.set_memory(4096, 1)
    second = dom.create_snapshot("<domainsnapshot><name>two</name></domainsnapshot>")
    assert [s.name for s in dom.list_snapshots()] == ["one", "two"]
    parent = second.parent()
    assert parent is not None and parent.name == first.name and first.parent() is None
    assert dom.current_snapshot().name == "two"
    with pytest.raises(VirtError) as exc:
        dom.create_snapshot("<domainsnapshot><name>one</name></domainsnapshot>")
    assert exc.value.code == ErrorNumber.OPERATION_FAILED
    dom.destroy()
    first.revert()
    assert dom.state() == (DomainState.RUNNING, 4)
    assert dom.info().memory == 1048576
    assert "<description>d</description>" in first.xml()
    first.delete()
    assert second.parent() is None
    assert not dom.has_current_snapshot()  # the deleted current one had no parent
    with pytest.raises(VirtError) as exc:
        dom.lookup_snapshot("one")
    assert exc.value.code == ErrorNumber.NO_DOMAIN_SNAPSHOT
    dom.destroy()
    with pytest.raises(VirtError) as exc:
        dom.undefine()
    assert exc.value.code == ErrorNumber.OPERATION_INVALID
    dom.undefine(2)  # VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA


def test_node_file_runstate_and_transient_elements(tmp_path: Path) -> None:
    ns = "xmlns:test='http://libvirt.org/schemas/domain/test/1.0'"
    off = domain_xml("off").replace("<domain type='test'>", f"<domain type='test' {ns}>").replace(
        "</domain>", "<test:runstate>5</test:runstate><test:hasmanagedsave/></domain>")
    gone = domain_xml("gone").replace("<domain type='test'>", f"<domain type='test' {ns}>").replace(
        "</domain>", "<test:transient/><test:runstate>3</test:runstate></domain>")
    path = tmp_path / "node.xml"
    path.write_text(f"<node>{off}{gone}</node>")
    with virt.open(f"test://{path}") as conn:
        off_dom, gone_dom = conn.lookup_domain("off"), conn.lookup_domain("gone")
        assert off_dom.state() == (DomainState.SHUTOFF, 0) and off_dom.has_managed_save_image()
        assert gone_dom.state() == (DomainState.PAUSED, 0) and not gone_dom.is_persistent()
        assert "test:" not in off_dom.xml()


def test_many_domains_lookup_by_id_and_list(conn: Any) -> None:
    doms = [conn.define_domain(domain_xml(f"d{i:03d}")) for i in range(200)]
    for dom in doms[::2]:
        dom.start()
    listed = conn.list_domains()
    assert [d.name for d in listed[:100]] == [d.name for d in doms[::2]]
    assert [d.name for d in listed[100:]] == [d.name for d in doms[1::2]]
    assert all(conn.lookup_domain_by_id(d.id) == d for d in doms[::2])


# -- the CLI over these domains --------------------------------------------------------------------


def test_cli_event_loop_prints_lifecycle_events_like_virsh() -> None:
    import threading
    import time

    with virt.open("test:///default") as holder:
        def act() -> None:
            time.sleep(0.3)
            dom = holder.lookup_domain("test")
            dom.destroy()
            dom.start()

        worker = threading.Thread(target=act)
        worker.start()
        rc, out, err = run_cli("--plain", "-c", "test:///default", "event --loop --event lifecycle --timeout 2")
        worker.join()
    assert (rc, err) == (0, "")
    assert out == ("event 'lifecycle' for domain 'test': Stopped Destroyed\n"
                   "event 'lifecycle' for domain 'test': Started Booted\n"
                   "event loop timed out\nevents received: 2\n\n")
    rc, out, _ = run_cli("--plain", "-c", "test:///default", "event --all --timeout 1")
    assert (rc, out) == (1, "event loop timed out\nevents received: 0\n\n")


def test_cli_define_create_save_restore_with_files(tmp_path: Path) -> None:
    xml = tmp_path / "dom.xml"
    xml.write_text(domain_xml("clidom", interfaces=0))
    image = tmp_path / "clidom.img"
    command = (f"define {xml}; start clidom; save clidom {image}; list --all; restore {image}; "
               f"domstate clidom --reason; destroy clidom; undefine clidom; create {xml}; list --name")
    rc, out, err = run_cli("--plain", "-c", "test:///default", command)
    assert (rc, err) == (0, "")
    assert out == (f"Domain 'clidom' defined from {xml}\n\n"
                   "Domain 'clidom' started\n\n"
                   f"\nDomain 'clidom' saved to {image}\n\n"
                   " Id   Name     State\n-------------------------\n"
                   " 1    test     running\n -    clidom   shut off\n\n"
                   f"Domain restored from {image}\n\n"
                   "running (restored)\n\n"
                   "Domain 'clidom' destroyed\n\n"
                   "Domain 'clidom' has been undefined\n\n"
                   f"Domain 'clidom' created from {xml}\n\n"
                   "test\nclidom\n\n")
    rc, _, err = run_cli("--plain", "-c", "test:///default", f"define {tmp_path / 'missing.xml'}")
    assert (rc, err) == (1, f"error: Failed to open file '{tmp_path / 'missing.xml'}': No such file or directory\n")


def test_security_model_and_label_as_libvirts_test_driver() -> None:
    # what python3-libvirt 9.0 answers on test:///default
    with virt.open("test:///default") as conn:
        assert conn.security_model() == virt.SecurityModel(model="testSecurity", doi="")
        dom = conn.lookup_domain("test")
        assert dom.security_label() == virt.SecurityLabel(label="libvirt-test", enforcing=True)
        dom.destroy()
        assert dom.security_label() == virt.SecurityLabel(label="", enforcing=False)
