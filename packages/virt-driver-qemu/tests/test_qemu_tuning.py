"""vCPU and memory queries and changes, rename, security model: on real QEMU (no guest OS)."""

from __future__ import annotations

from pathlib import Path

import pytest
import virt
from virt import VirtError
from virt._errors import ErrorNumber

XML = ("<domain type='qemu'><name>tune</name><memory unit='MiB'>128</memory><vcpu current='1'>2</vcpu>"
       "<os><type arch='x86_64' machine='q35'>hvm</type></os>"
       "<devices><memballoon model='virtio'/></devices></domain>")
LIVE, CONFIG, MAXIMUM = 1, 2, 4


@pytest.fixture
def dom(uri: str) -> virt.Domain:
    with virt.open(uri) as conn:
        domain = conn.define_domain(XML)
        yield domain
        if domain.is_active():
            domain.destroy()


def test_vcpu_counts_and_info(dom: virt.Domain) -> None:
    assert dom.vcpus_count(CONFIG | MAXIMUM) == 2 and dom.vcpus_count(CONFIG) == 1
    dom.start()
    assert dom.vcpus_count(LIVE) == 1 and dom.vcpus_count(LIVE | MAXIMUM) == 2
    (vcpu,) = dom.vcpus()
    assert vcpu.number == 0 and vcpu.state == 1 and any(vcpu.affinity)
    with pytest.raises(VirtError) as err:
        dom.set_vcpus(2, LIVE)
    assert err.value.code == ErrorNumber.OPERATION_UNSUPPORTED
    dom.set_vcpus(2, CONFIG)
    assert dom.vcpus_count(CONFIG) == 2 and dom.vcpus_count(LIVE) == 1


def test_balloon(dom: virt.Domain) -> None:
    dom.start()
    dom.set_memory(96 * 1024, LIVE)
    assert dom.info().memory == 96 * 1024
    with pytest.raises(VirtError) as err:
        dom.set_memory(256 * 1024, LIVE)
    assert err.value.code == ErrorNumber.INVALID_ARG


def test_rename_and_security_model(dom: virt.Domain, uri: str) -> None:
    with virt.open(uri) as conn:
        assert conn.security_model().model == "none"
        dom.rename("renamed")
        assert conn.lookup_domain("renamed").uuid == dom.uuid
        with pytest.raises(VirtError):
            conn.lookup_domain("tune")


def test_block_info_cpu_models_and_what_needs_an_agent(uri: str, tmp_path: Path) -> None:
    import subprocess

    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "32M"], check=True)
    xml = XML.replace("<devices>", f"<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                   f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>")
    with virt.open(uri) as conn:
        dom = conn.define_domain(xml.replace("<name>tune</name>", "<name>blk</name>").replace(
            "<uuid>", "<uuid>"))
        info = dom.block_info("vda")
        assert info.capacity == 32 * 1024 * 1024 and info.allocation > 0 and info.physical > 0
        assert dom.block_info(str(disk)) == info
        with pytest.raises(VirtError) as err:
            dom.block_info("vdz")
        assert err.value.code == ErrorNumber.INVALID_ARG
        assert "qemu64" in conn.cpu_model_names("x86_64")
        dom.start()
        try:
            assert dom.block_info("vda").capacity == 32 * 1024 * 1024  # read while QEMU holds the image
            with pytest.raises(VirtError) as err:
                dom.time()
            assert err.value.code == ErrorNumber.ARGUMENT_UNSUPPORTED and "guest agent" in str(err.value)
            assert dom.interface_addresses(0) == []
            with pytest.raises(VirtError) as err:
                dom.scheduler_type()
            assert err.value.code == ErrorNumber.OPERATION_INVALID
        finally:
            dom.destroy()
