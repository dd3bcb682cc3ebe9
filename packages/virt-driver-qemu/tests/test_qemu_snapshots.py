"""Snapshots and metadata of the QEMU driver, with the real tiny guest and a qcow2 data disk.

A running snapshot holds the guest's memory (a marker file in its RAM-backed root) and its disk;
reverting brings both back and the guest goes on from the snapshot point.  An offline snapshot
is ``qemu-img snapshot`` on the image (checked with ``qemu-io``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import virt
from qemu_testlib import Console, GuestXML, tinyguest, wait_until
from virt import VirtError
from virt._errors import ErrorNumber
from virt._records import DomainEvent, DomainEventType, DomainState

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="requires qemu-img (qemu-utils)")

_META_DESCRIPTION, _META_TITLE, _META_ELEMENT = 0, 1, 2
_AFFECT_LIVE, _AFFECT_CONFIG = 1, 2
_LIST_HAS_SNAPSHOT, _LIST_NO_SNAPSHOT = 4096, 8192
_SNAP_LIST_ROOTS, _SNAP_LIST_LEAVES, _SNAP_LIST_INACTIVE, _SNAP_LIST_ACTIVE = 1, 4, 32, 64
_REVERT_RUNNING, _REVERT_PAUSED = 1, 2
_DELETE_CHILDREN, _DELETE_METADATA_ONLY = 1, 2
STARTED_FROM_SNAPSHOT, SUSPENDED_FROM_SNAPSHOT, STOPPED_FROM_SNAPSHOT = 3, 5, 6


def _image(tmp_path: Path, name: str = "data.qcow2", fmt: str = "qcow2") -> Path:
    path = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "16M"], check=True)
    return path


def _disk(path: Path, fmt: str = "qcow2", dev: str = "vda") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{path}'/>"
            f"<target dev='{dev}' bus='virtio'/></disk>")


def _qemu_io(path: Path, command: str) -> str:
    done = subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)], capture_output=True, text=True,
                          check=False)
    return done.stdout + done.stderr


def _booted(dom: virt.Domain) -> Console:
    con = Console(dom.console_path())
    con.read_until(tinyguest.READY_MARKER, 120)
    con.read_until(tinyguest.SHELL_PROMPT, 60)
    return con


def _events(conn: virt.Connection, uuid: str) -> Callable[[], list[tuple[int, int]]]:
    seen: list[DomainEvent] = []
    conn.subscribe(lambda c, e: seen.append(e), DomainEvent)
    return lambda: [(int(e.event), int(e.detail)) for e in list(seen) if e.uuid == uuid]


# -- running snapshots ---------------------------------------------------------------------------


def test_running_snapshot_and_revert_bring_memory_and_disk_back(uri: str, guest_xml: GuestXML,
                                                                 tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        dom.start()
        con = _booted(dom)
        try:
            con.command("echo mem-one > /tmp/m")
            con.command("echo disk-one | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null; sync")
            snap = dom.create_snapshot("<domainsnapshot><name>s1</name><description>first</description>"
                                       "</domainsnapshot>")
            assert snap.name == "s1"
            assert dom.state()[0] == DomainState.RUNNING
            xml = snap.xml()
            assert "<state>running</state>" in xml and "<memory snapshot='internal'/>" in xml
            assert "<disk name='vda' snapshot='internal'/>" in xml and "<description>first</description>" in xml
            assert "<name>tiny</name>" in xml  # the domain definition it was taken from
            assert dom.current_snapshot().name == "s1"
            assert "s1" in _qemu_img_list(image)

            con.command("echo mem-two > /tmp/m")
            con.command("echo disk-two | dd of=/dev/vda bs=512 count=1 conv=sync 2>/dev/null; sync")
            assert "mem-two" in con.command("cat /tmp/m")
            snap.revert()
            assert dom.state() == (DomainState.RUNNING, 4)  # running (from snapshot)
            # the guest goes on from the snapshot point: its memory and its disk are as they were
            out = con.command("cat /tmp/m")
            assert "mem-one" in out and "mem-two" not in out
            out = con.command("echo 3 > /proc/sys/vm/drop_caches; head -c 8 /dev/vda; echo")
            assert "disk-one" in out and "disk-two" not in out
        finally:
            con.close()
        dom.destroy()


def _qemu_img_list(image: Path) -> str:
    """``qemu-img snapshot -l`` of an image, in use or not (-U: without its lock)."""
    return subprocess.run(["qemu-img", "snapshot", "-U", "-l", str(image)], capture_output=True, text=True,
                          check=False).stdout


def test_revert_of_a_stopped_domain_starts_it_from_the_snapshot(uri: str, guest_xml: GuestXML,
                                                                  tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        dom.start()
        con = _booted(dom)
        try:
            con.command("echo one > /tmp/m")
            dom.create_snapshot("<domainsnapshot><name>s1</name></domainsnapshot>")
        finally:
            con.close()
        dom.destroy()
        seen = _events(conn, dom.uuid)
        dom.lookup_snapshot("s1").revert(_REVERT_PAUSED)
        assert dom.state() == (DomainState.PAUSED, 7)  # paused (from snapshot)
        started, suspended = (int(DomainEventType.STARTED), STARTED_FROM_SNAPSHOT), (
            int(DomainEventType.SUSPENDED), SUSPENDED_FROM_SNAPSHOT)
        assert wait_until(lambda: suspended in seen(), 5)
        assert seen()[-2:] == [started, suspended]
        con = Console(dom.console_path())
        try:
            dom.resume()
            assert "one" in con.command("cat /tmp/m", 60)  # no boot: the guest's memory is back
        finally:
            con.close()
        dom.destroy()


def test_snapshot_of_a_paused_domain_reverts_paused(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        dom.start()
        _booted(dom).close()
        dom.suspend()
        snap = dom.create_snapshot("<domainsnapshot><name>p</name></domainsnapshot>")
        assert "<state>paused</state>" in snap.xml()
        assert dom.state()[0] == DomainState.PAUSED
        dom.resume()
        snap.revert()
        assert dom.state() == (DomainState.PAUSED, 7)
        snap.revert(_REVERT_RUNNING)
        assert dom.state() == (DomainState.RUNNING, 4)
        dom.destroy()


def test_halt_stops_the_domain_after_the_snapshot(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        dom.start()
        dom.create_snapshot("<domainsnapshot><name>h</name></domainsnapshot>", 8)  # HALT
        assert dom.state() == (DomainState.SHUTOFF, 7)  # shut off (from snapshot)
        assert "<state>running</state>" in dom.lookup_snapshot("h").xml()


def test_delete_while_running_uses_qemu(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        dom.start()
        snap = dom.create_snapshot("<domainsnapshot><name>gone</name></domainsnapshot>")
        keep = dom.create_snapshot("<domainsnapshot><name>kept</name></domainsnapshot>")
        assert {"gone", "kept"} <= set(_qemu_img_list(image).split())
        snap.delete()
        assert "gone" not in _qemu_img_list(image).split()
        assert [s.name for s in dom.list_snapshots()] == ["kept"]
        assert keep.parent() is None and dom.current_snapshot().name == "kept"
        assert dom.state()[0] == DomainState.RUNNING
        dom.destroy()


def test_revert_restarts_a_domain_whose_definition_changed(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    xml = guest_xml(devices=_disk(image))
    with virt.open(uri) as conn:
        dom = conn.define_domain(xml)
        dom.start()
        con = _booted(dom)
        try:
            con.command("echo mem-one > /tmp/m")
            dom.create_snapshot("<domainsnapshot><name>s1</name></domainsnapshot>")
        finally:
            con.close()
        dom.destroy()
        conn.define_domain(xml.replace("<memory unit='MiB'>128</memory>", "<memory unit='MiB'>160</memory>"))
        dom.start()
        assert dom.info().max_memory == 160 * 1024
        seen = _events(conn, dom.uuid)
        dom.lookup_snapshot("s1").revert()
        assert dom.state() == (DomainState.RUNNING, 4)
        assert wait_until(lambda: (int(DomainEventType.STARTED), STARTED_FROM_SNAPSHOT) in seen(), 5)
        assert (int(DomainEventType.STOPPED), STOPPED_FROM_SNAPSHOT) in seen()
        assert dom.info().max_memory == 128 * 1024  # the snapshot's definition is the domain's again
        assert "<memory unit='KiB'>131072</memory>" in dom.xml(inactive=True)
        con = Console(dom.console_path())
        try:
            assert "mem-one" in con.command("cat /tmp/m", 60)
        finally:
            con.close()
        dom.destroy()


# -- offline snapshots -----------------------------------------------------------------------------


def test_offline_snapshot_and_revert_with_qemu_img(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    assert "wrote" in _qemu_io(image, "write -P 0x41 0 4096")
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        snap = dom.create_snapshot("<domainsnapshot><name>off</name></domainsnapshot>")
        xml = snap.xml()
        assert "<state>shutoff</state>" in xml and "<memory snapshot='no'/>" in xml
        assert "off" in _qemu_img_list(image)
        assert "wrote" in _qemu_io(image, "write -P 0x42 0 4096")
        snap.revert()
        assert "Pattern verification failed" not in _qemu_io(image, "read -P 0x41 0 4096")
        assert dom.state()[0] == DomainState.SHUTOFF
        # a second snapshot is the first's child
        child = dom.create_snapshot("<domainsnapshot><name>off2</name></domainsnapshot>")
        assert child.parent() is not None and child.parent().name == "off"  # type: ignore[union-attr]
        assert [s.name for s in dom.list_snapshots(_SNAP_LIST_ROOTS)] == ["off"]
        assert [s.name for s in dom.list_snapshots(_SNAP_LIST_LEAVES)] == ["off2"]
        assert [s.name for s in dom.list_snapshots(_SNAP_LIST_INACTIVE)] == ["off", "off2"]
        assert dom.list_snapshots(_SNAP_LIST_ACTIVE) == []
        # delete: the child moves up, the image forgets the snapshot
        snap.delete()
        assert [s.name for s in dom.list_snapshots()] == ["off2"]
        assert dom.lookup_snapshot("off2").parent() is None
        assert dom.current_snapshot().name == "off2"
        listed = _qemu_img_list(image)
        assert "off2" in listed and " off " not in listed
        # the revert of an inactive snapshot with --running starts the domain
        seen = _events(conn, dom.uuid)
        dom.lookup_snapshot("off2").revert(_REVERT_RUNNING)
        assert dom.state() == (DomainState.RUNNING, 4)
        assert wait_until(lambda: (int(DomainEventType.STARTED), STARTED_FROM_SNAPSHOT) in seen(), 5)
        # reverting a running domain to an inactive snapshot stops it
        dom.lookup_snapshot("off2").revert()
        assert dom.state() == (DomainState.SHUTOFF, 7)
        assert wait_until(lambda: (int(DomainEventType.STOPPED), STOPPED_FROM_SNAPSHOT) in seen(), 5)


def test_delete_children_and_metadata_only(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        for name in ("a", "b", "c"):
            dom.create_snapshot(f"<domainsnapshot><name>{name}</name></domainsnapshot>")
        dom.lookup_snapshot("a").revert()
        dom.create_snapshot("<domainsnapshot><name>d</name></domainsnapshot>")  # a second child of a
        assert dom.lookup_snapshot("d").parent().name == "a"  # type: ignore[union-attr]
        dom.lookup_snapshot("b").delete(_DELETE_CHILDREN)  # b and c
        assert sorted(s.name for s in dom.list_snapshots()) == ["a", "d"]
        listed = _qemu_img_list(image).split()
        assert "b" not in listed and "c" not in listed and "a" in listed
        dom.lookup_snapshot("d").delete(_DELETE_METADATA_ONLY)
        assert [s.name for s in dom.list_snapshots()] == ["a"]
        assert "d" in _qemu_img_list(image).split()
        assert dom.current_snapshot().name == "a"


# -- errors, undefine, list flags ---------------------------------------------------------------------


def test_raw_disk_is_refused(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path, "data.raw", "raw")
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image, "raw")))
        with pytest.raises(VirtError) as err:
            dom.create_snapshot("<domainsnapshot><name>s</name></domainsnapshot>")
        assert err.value.code == ErrorNumber.CONFIG_UNSUPPORTED
        assert "internal snapshot for disk vda unsupported for storage type raw" in str(err.value)
        assert dom.list_snapshots() == []
        # excluded, it is no obstacle
        snap = dom.create_snapshot("<domainsnapshot><name>s</name><disks><disk name='vda' snapshot='no'/>"
                                   "</disks></domainsnapshot>")
        assert "<disk name='vda' snapshot='no'/>" in snap.xml()


def test_unknown_snapshot_and_duplicate(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        with pytest.raises(VirtError) as err:
            dom.lookup_snapshot("x")
        assert err.value.code == ErrorNumber.NO_DOMAIN_SNAPSHOT
        assert "Domain snapshot not found: no domain snapshot with matching name 'x'" in str(err.value)
        with pytest.raises(VirtError) as err:
            dom.current_snapshot()
        assert err.value.code == ErrorNumber.NO_DOMAIN_SNAPSHOT
        dom.create_snapshot("<domainsnapshot><name>s</name></domainsnapshot>")
        with pytest.raises(VirtError) as err:
            dom.create_snapshot("<domainsnapshot><name>s</name></domainsnapshot>")
        assert err.value.code == ErrorNumber.OPERATION_FAILED
        assert "domain moment s already exists" in str(err.value)  # libvirt 9's words


def test_undefine_refuses_a_domain_with_snapshots(uri: str, guest_xml: GuestXML, tmp_path: Path,
                                                   root: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        other = conn.define_domain(guest_xml("other"))
        dom.create_snapshot("<domainsnapshot><name>s</name></domainsnapshot>")
        assert (root / "lib" / "qemu" / "snapshot" / "tiny" / "s.xml").exists()
        assert [d.name for d in conn.list_domains(flags=_LIST_HAS_SNAPSHOT)] == ["tiny"]
        assert [d.name for d in conn.list_domains(flags=_LIST_NO_SNAPSHOT)] == ["other"]
        with pytest.raises(VirtError) as err:
            dom.undefine()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        assert "cannot delete inactive domain with 1 snapshots" in str(err.value)
        with pytest.raises(VirtError) as err:
            dom.rename("renamed")
        assert "cannot rename domain with snapshots" in str(err.value)
        dom.undefine(2)  # VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        assert not (root / "lib" / "qemu" / "snapshot" / "tiny").exists()
        other.undefine()


def test_redefine_and_set_current(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image)))
        first = dom.create_snapshot("<domainsnapshot><name>a</name></domainsnapshot>")
        dom.create_snapshot("<domainsnapshot><name>b</name></domainsnapshot>")
        assert dom.current_snapshot().name == "b"
        dom.create_snapshot(first.xml(), 1 | 2)  # REDEFINE | CURRENT
        assert dom.current_snapshot().name == "a"
        assert [s.name for s in dom.list_snapshots()] == ["a", "b"]


def test_snapshot_xml_hides_secrets_unless_asked(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    vnc = "<graphics type='vnc' autoport='yes' passwd='s3cret'/>"
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml(devices=_disk(image) + vnc))
        snap = dom.create_snapshot("<domainsnapshot><name>s</name></domainsnapshot>")
        assert "s3cret" not in snap.xml()
        assert "s3cret" in dom.xml(secure=True) and "s3cret" not in dom.xml()
        assert "passwd='s3cret'" in snap.xml(1)  # VIR_DOMAIN_SNAPSHOT_XML_SECURE
        conn.define_domain(guest_xml(devices=_disk(image), uuid=dom.uuid))
        snap.revert()
        assert "passwd='s3cret'" in dom.xml(secure=True)  # the revert brings the whole definition back


# -- metadata ---------------------------------------------------------------------------------------------


def test_metadata_live_and_config(uri: str, guest_xml: GuestXML, root: Path) -> None:
    with virt.open(uri) as conn:
        dom = conn.define_domain(guest_xml())
        dom.set_metadata(_META_TITLE, "offline title", None, None, 0)
        assert dom.metadata(_META_TITLE, None, 0) == "offline title"
        assert "<title>offline title</title>" in (root / "etc" / "qemu" / "tiny.xml").read_text()
        dom.start()
        try:
            dom.set_metadata(_META_DESCRIPTION, "live only", None, None, _AFFECT_LIVE)
            assert dom.metadata(_META_DESCRIPTION, None, _AFFECT_LIVE) == "live only"
            with pytest.raises(VirtError) as err:
                dom.metadata(_META_DESCRIPTION, None, _AFFECT_CONFIG)
            assert err.value.code == ErrorNumber.NO_DOMAIN_METADATA
            dom.set_metadata(_META_ELEMENT, "<app><k>v</k></app>", "my", "http://example.org/my", _AFFECT_CONFIG)
            element = dom.metadata(_META_ELEMENT, "http://example.org/my", _AFFECT_CONFIG)
            assert "".join(element.split()) == "<app><k>v</k></app>"  # as the definition file indents it
            with pytest.raises(VirtError):
                dom.metadata(_META_ELEMENT, "http://example.org/my", _AFFECT_LIVE)
            assert "<my:app xmlns:my=\"http://example.org/my\">" in dom.xml(2)  # --inactive
            with pytest.raises(VirtError) as err:
                dom.set_metadata(_META_TITLE, "two\nlines", None, None, 0)
            assert err.value.code == ErrorNumber.INVALID_ARG
        finally:
            dom.destroy()
        assert dom.metadata(_META_TITLE, None, 0) == "offline title"
        with pytest.raises(VirtError) as err:
            dom.set_metadata(_META_TITLE, "x", None, None, _AFFECT_LIVE)
        assert err.value.code == ErrorNumber.OPERATION_INVALID


# -- the CLI --------------------------------------------------------------------------------------------------


_VIRT = [str(Path(sys.executable).parent / "virt")] if (Path(sys.executable).parent / "virt").exists() else ["virt"]


def _virt(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_VIRT, "-c", uri, *args], capture_output=True, text=True, check=False, timeout=300)


def test_cli_snapshot_commands(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    image = _image(tmp_path)
    xml = tmp_path / "g.xml"
    xml.write_text(guest_xml("g", devices=_disk(image)))
    assert _virt(uri, "define", str(xml)).returncode == 0
    done = _virt(uri, "snapshot-create-as", "g", "s1", "the first")
    assert done.returncode == 0, done.stderr
    assert "Domain snapshot s1 created" in done.stdout
    assert _virt(uri, "snapshot-create-as", "g", "s2").returncode == 0
    listed = _virt(uri, "snapshot-list", "g")
    assert listed.returncode == 0 and "s1" in listed.stdout and "shutoff" in listed.stdout
    tree = _virt(uri, "snapshot-list", "g", "--tree").stdout
    assert tree.splitlines()[0] == "s1" and "s2" in tree
    assert _virt(uri, "snapshot-current", "g", "--name").stdout.strip() == "s2"
    assert "<description>the first</description>" in _virt(uri, "snapshot-dumpxml", "g", "s1").stdout
    done = _virt(uri, "snapshot-revert", "g", "s1")
    assert done.returncode == 0, done.stderr
    assert _virt(uri, "snapshot-current", "g", "--name").stdout.strip() == "s1"
    done = _virt(uri, "snapshot-delete", "g", "s2")
    assert done.returncode == 0 and "Domain snapshot s2 deleted" in done.stdout
    done = _virt(uri, "undefine", "g")
    assert done.returncode != 0 and "cannot delete inactive domain with 1 snapshots" in done.stderr
    done = _virt(uri, "desc", "g", "--title", "--config", "a title")
    assert done.returncode == 0, done.stderr
    assert _virt(uri, "desc", "g", "--title").stdout.strip() == "a title"
    assert _virt(uri, "undefine", "g", "--snapshots-metadata").returncode == 0
