"""The ``xen`` driver (open without Xen, the conversion hooks) and the CLI commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import virt
from virt import VirtError
from virt._errcodes import ErrorNumber
from virt.testing import run_cli
from virt_xen import _driver
from virt_xen.xlconfig import domain_xml_from_native, domain_xml_to_native
from xentest_corpus import ABSENT, XEN_DIR, read

CFG = "xl/test-paravirt-maxvcpus.cfg"
XML = "xl/test-paravirt-maxvcpus.xml"
needs_corpus = pytest.mark.skipif(not (XEN_DIR / CFG).is_file(), reason=ABSENT)




def fake_dom0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This host made to look like a dom0 whose `xl info` answers (a captured lab output)."""
    caps = tmp_path / "capabilities"
    caps.write_text("control_d\n")
    monkeypatch.setattr(_driver, "XEN_CAPABILITIES", caps)
    xl = tmp_path / "xl"
    info = Path(__file__).parent / "xl-outputs" / "info.txt"
    outputs = Path(__file__).parent / "xl-outputs"
    # Domain-0 alone: the captured listings without their guest
    (tmp_path / "list-v.txt").write_text("".join((outputs / "list-v.txt").read_text().splitlines(True)[:2]))
    (tmp_path / "vcpu-list.txt").write_text("".join((outputs / "vcpu-list.txt").read_text().splitlines(True)[:2]))
    xl.write_text(f"#!/bin/sh\ncase \"$1 $2\" in\n'info '*) exec cat {info};;\n"
                  f"'list -v') exec cat {tmp_path / 'list-v.txt'};;\n"
                  f"'vcpu-list '*) exec cat {tmp_path / 'vcpu-list.txt'};;\nesac\nexit 1\n")
    xl.chmod(0o755)
    monkeypatch.setenv("VIRT_XEN_TOOLSTACK", f"local:{xl}")
    monkeypatch.setenv("VIRT_XEN_STATE", str(tmp_path / "state"))


def test_open_without_xen_fails_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIRT_XEN_TOOLSTACK", raising=False)
    monkeypatch.setattr(_driver, "XEN_CAPABILITIES", tmp_path / "nowhere" / "capabilities")
    with pytest.raises(VirtError) as info:
        virt.open("xen:///system")
    assert info.value.code == ErrorNumber.NO_CONNECT
    assert "Xen is not running" in info.value.message


def test_open_when_xl_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_dom0(monkeypatch, tmp_path)
    monkeypatch.setenv("VIRT_XEN_TOOLSTACK", "local:/bin/false")
    with pytest.raises(VirtError) as info:
        virt.open("xen:///system")
    assert info.value.code == ErrorNumber.NO_CONNECT
    assert "Xen is not running (`xl info` through local /bin/false failed" in info.value.message
    monkeypatch.setenv("VIRT_XEN_TOOLSTACK", "carrier-pigeon")
    with pytest.raises(VirtError, match="names no toolstack"):
        virt.open("xen:///system")


def test_capabilities_and_node_info(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_dom0(monkeypatch, tmp_path)
    with virt.open("xen:///system") as conn:
        info = conn.node_info()
        assert (info.cpus, info.memory, info.mhz, info.nodes) == (1, 1023 * 1024, 2596, 1)
        assert "<machine>xenpv</machine>" in conn.capabilities()
        assert "<machine>xenfv</machine>" in conn.domain_capabilities(machine="xenfv")
        assert [d.name for d in conn.list_domains()] == ["Domain-0"]
        assert conn.list_domains(active=False) == []


def test_open_bad_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    caps = tmp_path / "capabilities"
    caps.write_text("control_d\n")
    monkeypatch.setattr(_driver, "XEN_CAPABILITIES", caps)
    with pytest.raises(VirtError, match="try xen:///system"):
        virt.open("xen:///session")


@needs_corpus
def test_conversions_through_the_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_dom0(monkeypatch, tmp_path)
    with virt.open("xen:///system") as conn:
        assert conn.type() == "Xen"
        assert conn.version() == 4_017_007
        assert conn.domain_xml_from_native("xen-xl", read(CFG)) == read(XML)
        assert conn.domain_xml_to_native("xen-xl", read(XML)) == read(CFG)
        with pytest.raises(VirtError) as info:
            conn.domain_xml_to_native("qemu-argv", read(XML))
        assert info.value.code == ErrorNumber.INVALID_ARG


def test_test_driver_says_no_support() -> None:
    with virt.open("test:///default") as conn, pytest.raises(VirtError) as info:
        conn.domain_xml_from_native("xen-xl", "name = 'x'\n")
    assert info.value.code == ErrorNumber.NO_SUPPORT
    assert "virConnectDomainXMLFromNative" in info.value.message


def test_errors_are_virterrors() -> None:
    for bad, code in (("name = \n", ErrorNumber.CONF_SYNTAX), ("name = 'x\n", ErrorNumber.CONF_SYNTAX),
                      ("vcpus = 1\n", ErrorNumber.INTERNAL_ERROR),
                      ("name = 'x'\ntype = 'weird'\n", ErrorNumber.CONFIG_UNSUPPORTED),
                      ("name = 'x'\ndisk = [ 'nonsense=1' ]\n", ErrorNumber.CONFIG_UNSUPPORTED)):
        with pytest.raises(VirtError) as info:
            domain_xml_from_native("xen-xl", bad)
        assert info.value.code == code, bad
    with pytest.raises(VirtError) as info:
        domain_xml_from_native("xen-foo", "name = 'x'\n")
    assert info.value.code == ErrorNumber.INVALID_ARG
    with pytest.raises(VirtError) as info:
        domain_xml_to_native("xen-xl", "<domain type='kvm'><name>x</name><memory>1024</memory>"
                                       "<os><type>hvm</type></os></domain>")
    assert info.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    with pytest.raises(VirtError) as info:
        domain_xml_to_native("xen-xl", "<domain")
    assert info.value.code == ErrorNumber.XML_ERROR


@needs_corpus
def test_cli_offline_on_the_test_driver(tmp_path: Path) -> None:
    cfg = tmp_path / "guest.cfg"
    cfg.write_text(read(CFG))
    rc, out, err = run_cli("-q", "-c", "test:///default", "domxml-from-native", "xen-xl", str(cfg))
    assert (rc, err) == (0, "")
    assert out == read(XML)
    xml = tmp_path / "guest.xml"
    xml.write_text(out)
    rc, out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "xen-xl", str(xml))
    assert (rc, out, err) == (0, read(CFG), "")
    rc, out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "xen-xl", "--xml", str(xml))
    assert (rc, out) == (0, read(CFG))


@needs_corpus
def test_cli_errors(tmp_path: Path) -> None:
    xml = tmp_path / "guest.xml"
    xml.write_text(read(XML))
    rc, _out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "qemu-argv", str(xml))
    assert rc == 1
    assert "not supported by the connection driver: virConnectDomainXMLToNative" in err
    rc, _out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "xen-xl")
    assert rc == 1 and "need either domain or domain XML" in err
    bad = tmp_path / "bad.cfg"
    bad.write_text("name = [\n")
    rc, _out, err = run_cli("-q", "-c", "test:///default", "domxml-from-native", "xen-xm", str(bad))
    assert rc == 1 and "configuration file syntax error" in err


NET_XML = """<domain type='xen'>
  <name>n</name>
  <uuid>c7a5fdb2-cdaf-9455-926a-d65c16db1809</uuid>
  <memory>524288</memory>
  <os><type>linux</type></os>
  <devices>
    <interface type='network'><mac address='00:16:3e:00:00:01'/><source network='NET'/></interface>
  </devices>
</domain>
"""


def test_network_interfaces(tmp_path: Path) -> None:
    """A virtual network's bridge comes from the connection; offline there is none to ask."""
    with pytest.raises(VirtError) as info:
        domain_xml_to_native("xen-xl", NET_XML.replace("NET", "default"))
    assert info.value.code == ErrorNumber.NO_NETWORK
    assert domain_xml_to_native("xen-xl", NET_XML.replace("NET", "default"), bridge_of=lambda name: "br7") \
        .endswith('vif = [ "mac=00:16:3e:00:00:01,bridge=br7,script=vif-bridge" ]\n')
    xml = tmp_path / "net.xml"
    xml.write_text(NET_XML.replace("NET", "default"))
    rc, out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "xen-xm", str(xml))
    assert (rc, err) == (0, "")
    assert 'vif = [ "mac=00:16:3e:00:00:01,bridge=virbr0,script=vif-bridge" ]' in out
    xml.write_text(NET_XML.replace("NET", "nope"))
    rc, _out, err = run_cli("-q", "-c", "test:///default", "domxml-to-native", "xen-xl", str(xml))
    assert rc == 1 and "Network not found: nope" in err


def test_domain0_as_libvirt_shows_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """libvirt's libxl driver lists Domain-0: id 0, running, its memory and vCPUs; it refuses
    lifecycle operations on it with OPERATION_INVALID."""
    fake_dom0(monkeypatch, tmp_path)
    with virt.open("xen:///system") as conn:
        dom0 = conn.lookup_domain("Domain-0")
        assert dom0.uuid == "00000000-0000-0000-0000-000000000000" and dom0.id == 0
        assert conn.lookup_domain_by_id(0).name == "Domain-0"
        assert conn.lookup_domain_by_uuid(dom0.uuid).name == "Domain-0"
        assert dom0.state() == (virt.DomainState.RUNNING, 1) and dom0.is_active() and dom0.is_persistent()
        info = dom0.info()
        assert (info.max_memory, info.memory, info.nr_virt_cpu) == (524288, 524288, 1)
        assert info.cpu_time == 7_900_000_000
        assert dom0.xml() == (
            "<domain type='xen' id='0'>\n  <name>Domain-0</name>\n"
            "  <uuid>00000000-0000-0000-0000-000000000000</uuid>\n  <memory unit='KiB'>524288</memory>\n"
            "  <currentMemory unit='KiB'>524288</currentMemory>\n  <vcpu placement='static'>1</vcpu>\n"
            "  <os>\n    <type>linux</type>\n  </os>\n  <clock offset='utc'/>\n"
            "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
            "  <on_crash>destroy</on_crash>\n  <devices>\n  </devices>\n</domain>\n")
        assert dom0.xml(inactive=True).startswith("<domain type='xen'>\n")
        assert not dom0.autostart and not dom0.has_managed_save_image()
        stats = dom0.stats()
        assert stats["state.state"] == 1 and stats["cpu.time"] == 7_900_000_000
        assert stats["vcpu.current"] == 1 and stats["vcpu.0.state"] == 1
        for op in (dom0.destroy, dom0.shutdown, dom0.reboot, dom0.suspend, dom0.resume, dom0.managed_save,
                   dom0.undefine, lambda: dom0.save("/tmp/x"), lambda: dom0.set_autostart(True)):
            with pytest.raises(VirtError) as err:
                op()
            assert err.value.code == ErrorNumber.OPERATION_INVALID
            assert "Domain-0 does not support requested operation" in err.value.message
        with pytest.raises(VirtError, match="Domain is already running"):
            dom0.start()
        with pytest.raises(VirtError) as err:
            conn.define_domain(dom0.xml())
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        assert [d.name for d in conn.list_domains(flags=2048)] == ["Domain-0"]  # NO_AUTOSTART
        assert conn.list_domains(flags=1024) == []  # AUTOSTART


PV_XML = """<domain type='xen'>
  <name>auto</name>
  <uuid>c7a5fdb2-cdaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='xenpv'>linux</type><kernel>/k</kernel></os>
</domain>
"""


def test_autostart_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The autostart mark is a symlink to the definition; the first connection since Xen booted
    (no note in xenstore yet) starts the marked domains and writes the note; later ones do not."""
    fake_dom0(monkeypatch, tmp_path)
    store = tmp_path / "xenstore"
    (tmp_path / "xenstore-read").write_text(f"#!/bin/sh\n[ -f {store} ] && exec cat {store}\n"
                                            "echo \"xenstore-read: couldn't read path $1\" >&2\nexit 1\n")
    (tmp_path / "xenstore-write").write_text(f"#!/bin/sh\necho \"$2\" > {store}\n")
    for name in ("xenstore-read", "xenstore-write"):
        (tmp_path / name).chmod(0o755)
    with virt.open("xen:///system") as conn:  # the first: nothing marked yet, the note is written
        assert store.exists()
        dom = conn.define_domain(PV_XML)
        assert not dom.autostart
        dom.set_autostart(True)
        assert dom.autostart and (tmp_path / "state/autostart/auto.xml").resolve() == (
            tmp_path / "state/config/auto.xml")
        assert [d.name for d in conn.list_domains(flags=1024)] == ["auto"]
        assert [d.name for d in conn.list_domains(flags=2048)] == ["Domain-0"]
        assert dom.stats() == {"state.state": 5, "state.reason": 0, "balloon.current": 131072,
                               "balloon.maximum": 131072, "vcpu.current": 1, "vcpu.maximum": 1}
        with pytest.raises(VirtError) as err:
            dom.console_path()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
    with virt.open("xen:///system"):  # the same boot: nothing is started
        pass
    assert "Failed to autostart" not in caplog.text
    store.unlink()  # Xen booted again: the fake xl cannot create, and the failure is logged
    with caplog.at_level("ERROR", logger="virt_xen"), virt.open("xen:///system") as conn:
        assert conn.lookup_domain("auto").state()[0] == virt.DomainState.SHUTOFF
    assert "Failed to autostart VM 'auto'" in caplog.text
    with virt.open("xen:///system") as conn:
        conn.lookup_domain("auto").undefine()
        assert not (tmp_path / "state/autostart/auto.xml").exists()
