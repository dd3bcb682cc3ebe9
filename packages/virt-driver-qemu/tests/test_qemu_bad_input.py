"""Bad input: a clear VirtError with QEMU's own words, nothing left running or half-written."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import virt
from qemu_testlib import GuestXML
from virt import VirtError
from virt._errors import ErrorNumber
from virt._records import DomainState


@pytest.fixture
def conn(uri: str) -> virt.Connection:
    with virt.open(uri) as connection:
        yield connection


def _nothing_running(root: Path) -> None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert str(root).encode() not in cmd or b"qemu-system" not in cmd, "a QEMU was left running"
    assert not list((root / "run" / "qemu").glob(".*.tmp"))
    assert not list((root / "etc" / "qemu").glob(".*.tmp"))


def test_unsupported_device_is_config_unsupported(conn: virt.Connection, guest_xml: GuestXML, root: Path) -> None:
    hostdev = ("<hostdev mode='subsystem' type='pci'><source>"
               "<address domain='0' bus='0' slot='31' function='0'/></source></hostdev>")
    dom = conn.define_domain(guest_xml(devices=hostdev))
    with pytest.raises(VirtError) as err:
        dom.start()
    assert err.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert "hostdev" in str(err.value)
    assert dom.state()[0] == DomainState.SHUTOFF
    _nothing_running(root)


def test_missing_disk_file_reports_qemus_message(conn: virt.Connection, guest_xml: GuestXML, root: Path,
                                                 tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.qcow2"
    dom = conn.define_domain(guest_xml(devices=f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                               f"<source file='{missing}'/><target dev='vda' bus='virtio'/></disk>"))
    with pytest.raises(VirtError) as err:
        dom.start()
    assert err.value.code == ErrorNumber.INTERNAL_ERROR
    assert str(missing) in str(err.value) and "No such file or directory" in str(err.value)
    assert dom.state()[0] == DomainState.SHUTOFF
    _nothing_running(root)


def test_missing_kernel(conn: virt.Connection, guest_xml: GuestXML, root: Path, tmp_path: Path) -> None:
    xml_text = re.sub(r"<kernel>[^<]*</kernel>", f"<kernel>{tmp_path}/no-kernel</kernel>", guest_xml())
    dom = conn.define_domain(xml_text)
    with pytest.raises(VirtError) as err:
        dom.start()
    assert "no-kernel" in str(err.value)
    _nothing_running(root)


def test_occupied_vnc_port(conn: virt.Connection, guest_xml: GuestXML, root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        if port < 5900:
            taken.close()
            pytest.skip("[optional] the kernel gave a port below 5900")
        dom = conn.define_domain(guest_xml(devices=f"<graphics type='vnc' port='{port}' autoport='no' "
                                                   "listen='127.0.0.1'/>"))
        with pytest.raises(VirtError) as err:
            dom.start()
    assert "VNC" in str(err.value) or "Address already in use" in str(err.value)
    _nothing_running(root)


def test_qemu_that_fails_to_start(conn: virt.Connection, guest_xml: GuestXML, root: Path, tmp_path: Path) -> None:
    fake = tmp_path / "qemu-system-broken"
    fake.write_text("#!/bin/sh\necho 'qemu-system-broken: this QEMU refuses to start' >&2\nexit 1\n")
    fake.chmod(0o755)
    xml = guest_xml().replace("<devices>", f"<devices>\n    <emulator>{fake}</emulator>")
    dom = conn.define_domain(xml)
    with pytest.raises(VirtError) as err:
        dom.start()
    assert "this QEMU refuses to start" in str(err.value)
    assert dom.state()[0] == DomainState.SHUTOFF
    _nothing_running(root)


@pytest.mark.parametrize("xml", [
    "<domain type='qemu'><name>x</name>",  # malformed
    "<domain type='xen'><name>x</name><memory>1024</memory><os><type>hvm</type></os></domain>",
    "<domain type='qemu'><name>a/b</name><memory>1024</memory><os><type>hvm</type></os></domain>",
])
def test_bad_definitions(conn: virt.Connection, xml: str, root: Path) -> None:
    with pytest.raises(VirtError):
        conn.define_domain(xml)
    assert not list((root / "etc" / "qemu").glob("*.xml"))


def test_restore_of_a_file_that_is_not_an_image(conn: virt.Connection, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.save"
    bogus.write_bytes(b"\0" * 4096)
    with pytest.raises(VirtError) as err:
        conn.restore_domain(str(bogus))
    assert "not a saved domain" in str(err.value)
