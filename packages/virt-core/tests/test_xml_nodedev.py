"""NodeDeviceDocument and the other host-side documents (CapabilitiesDocument,
InterfaceDocument): libvirt's parse/format, accessors, errors, and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virt import ErrorDomain, ErrorNumber, VirtError
from virt.xml.capabilities import CapabilitiesDocument, GuestCapability, SecurityModel
from virt.xml.interface import InterfaceDocument
from virt.xml.nodedev import NodeDeviceDocument
from xml_properties import corpus, mutated, parse_fixed_point, raises_only_virterror

PCI = """<device>
  <name>pci_0000_00_19_0</name>
  <parent>computer</parent>
  <driver><name>e1000e</name></driver>
  <capability type='pci'>
    <bus>0</bus><domain>0</domain><slot>25</slot><function>0</function>
    <product id='0x1502'>82579LM</product>
    <vendor id='8086'>Intel Corporation</vendor>
    <class>0x20000</class>
    <numa node='1'/>
    <iommuGroup number='7'><address domain='0' bus='0' slot='0x19' function='0'/></iommuGroup>
    <capability type='virt_functions' maxCount='7'/>
    <capability type='mdev_types'><type id='t1'><deviceAPI>vfio-pci</deviceAPI>
      <availableInstances>2</availableInstances></type></capability>
  </capability>
</device>
"""

PCI_OUT = """<device>
  <name>pci_0000_00_19_0</name>
  <parent>computer</parent>
  <driver>
    <name>e1000e</name>
  </driver>
  <capability type='pci'>
    <class>0x020000</class>
    <domain>0</domain>
    <bus>0</bus>
    <slot>25</slot>
    <function>0</function>
    <product id='0x1502'>82579LM</product>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <capability type='virt_functions' maxCount='7'/>
    <capability type='mdev_types'>
      <type id='t1'>
        <deviceAPI>vfio-pci</deviceAPI>
        <availableInstances>2</availableInstances>
      </type>
    </capability>
    <iommuGroup number='7'>
      <address domain='0x0000' bus='0x00' slot='0x19' function='0x0'/>
    </iommuGroup>
    <numa node='1'/>
  </capability>
</device>
"""

SEEDS = [
    PCI,
    "<device><name>usb_1</name><capability type='usb_device'><bus>1</bus><device>2</device>"
    "<product id='0x1'/><vendor id='0x1d6b'>Linux</vendor></capability></device>",
    "<device><name>scsi_host3</name><capability type='scsi_host'><host>3</host><unique_id>5</unique_id>"
    "<capability type='vport_ops'><max_vports>9</max_vports></capability>"
    "<capability type='fc_host'><wwnn>2000000012341234</wwnn><wwpn>1000000012341234</wwpn></capability>"
    "</capability></device>",
    "<device><name>block_sda</name><capability type='storage'><block>/dev/sda</block><size>100</size>"
    "<capability type='hotpluggable'/></capability></device>",
    "<device><name>net_eth0</name><capability type='net'><interface>eth0</interface>"
    "<feature name='tx'/><feature name='rx'/><link speed='1000' state='up'/><capability type='80203'/>"
    "</capability></device>",
    "<device><name>ap</name><capability type='ap_queue'><ap-adapter>7</ap-adapter><ap-domain>0x38</ap-domain>"
    "</capability></device>",
    "<device><name>computer</name><capability type='system'><hardware>"
    "<uuid>11111111-2222-3333-4444-555555555555</uuid></hardware></capability></device>",
]


ALL_DEVICES = SEEDS + corpus("nodedev", "in/*.xml")
ALL_CAPS = corpus("capabilities", "host*/*.xml") + corpus("capabilities", "qemu-caps2xml/*.xml")
ALL_IFACES = corpus("other", "interface/*.xml") or [
    "<interface type='ethernet' name='eth0'><start mode='onboot'/><mac address='aa:bb:cc:dd:ee:ff'/></interface>"]


# ------------------------------------------------------------------------------ node devices

def test_nodedev_canonical_form() -> None:
    doc = NodeDeviceDocument.from_string(PCI)
    assert doc.to_string() == PCI_OUT
    assert NodeDeviceDocument.from_string(PCI_OUT).to_string() == PCI_OUT


def test_nodedev_accessors() -> None:
    doc = NodeDeviceDocument.from_string(PCI)
    assert (doc.name, doc.parent, doc.driver, doc.sysfs_path) == ("pci_0000_00_19_0", "computer", "e1000e", None)
    assert doc.capability_types() == ("pci", "mdev_types")
    cap = doc.capability("pci")
    assert cap is not None and cap.findtext("slot") == "25"
    assert doc.capability("net") is None
    host = NodeDeviceDocument.from_string(SEEDS[2])
    assert host.capability_types() == ("scsi_host", "fc_host", "vports")
    assert host.parent is None


def test_nodedev_runtime_values_and_quirks() -> None:
    host = NodeDeviceDocument.from_string(SEEDS[2]).to_string()
    # vport counts are read from sysfs by the driver, never from XML
    assert "<max_vports>0</max_vports>\n      <vports>0</vports>" in host
    assert host.index("type='fc_host'") < host.index("type='vport_ops'")
    usb = NodeDeviceDocument.from_string(SEEDS[1]).to_string()
    assert "    <product id='0x0001' />\n    <vendor id='0x1d6b'>Linux</vendor>\n" in usb
    net = NodeDeviceDocument.from_string(SEEDS[4]).to_string()
    assert ("<link speed='1000' state='up'/>\n    <feature name='rx'/>\n    <feature name='tx'/>\n"
            "    <capability type='80203'/>") in net
    system = NodeDeviceDocument.from_string(SEEDS[6]).to_string()
    assert "    <firmware>\n    </firmware>\n" in system
    mdev = NodeDeviceDocument.from_string(
        "<device><name>m</name><capability type='mdev'><type id='x'/></capability></device>").to_string()
    assert "<iommuGroup number='0'/>" in mdev


def test_nodedev_create_mode_needs_no_name() -> None:
    xml = "<device><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='x'/></capability></device>"
    with pytest.raises(VirtError) as info:
        NodeDeviceDocument.from_string(xml)
    assert info.value.code == ErrorNumber.NO_NAME
    assert NodeDeviceDocument.from_string(xml, create=True).name == "new device"


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<device><name>x</name></device>", ErrorNumber.INTERNAL_ERROR),
        ("<device><name>x</name><capability/></device>", ErrorNumber.XML_ERROR),
        ("<device><name>x</name><capability type='toaster'/></device>", ErrorNumber.XML_ERROR),
        ("<device><name>x</name><capability type='vdpa'/></device>", ErrorNumber.INTERNAL_ERROR),
        ("<device><name>x</name><capability type='pci'><domain>0</domain></capability></device>",
         ErrorNumber.INTERNAL_ERROR),
        ("<device><name>x</name><capability type='ccw'><cssid>0xff</cssid><ssid>0</ssid><devno>1</devno>"
         "</capability></device>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<device><name>x</name><capability type='ap_queue'><ap-adapter>1</ap-adapter><ap-domain>256</ap-domain>"
         "</capability></device>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<device><name>x</name><capability type='drm'><type>fancy</type></capability></device>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<device><name>x</name><capability type='net'><interface>e</interface><feature name='warp'/>"
         "</capability></device>", ErrorNumber.XML_ERROR),
        ("<device><name>x</name><capability type='storage'><block>/dev/sda</block></capability></device>",
         ErrorNumber.INTERNAL_ERROR),
        ("<device><name>x</name><capability type='system'><hardware><uuid>no</uuid></hardware></capability>"
         "</device>", ErrorNumber.INTERNAL_ERROR),
        ("<device><name>x</name><parent wwnn='1'>p</parent><capability type='drm'><type>render</type>"
         "</capability></device>", ErrorNumber.XML_ERROR),
        ("<device><name>x</name><devnode type='tty'>/dev/x</devnode><capability type='drm'><type>render</type>"
         "</capability></device>", ErrorNumber.XML_ERROR),
        ("<pool/>", ErrorNumber.XML_ERROR),
    ],
)
def test_invalid_devices(xml: str, code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        NodeDeviceDocument.from_string(xml)
    assert info.value.code == code, info.value.message
    assert info.value.domain in (ErrorDomain.NODEDEV, ErrorDomain.XML)


@pytest.mark.parametrize(
    "data",
    ["<device>", "", '<!DOCTYPE d [<!ENTITY e "x">]><device><name>&e;</name></device>',
     "<device>" + "<name/>" * (1 << 20) + "</device>"],
    ids=["truncated", "empty", "entity", "oversize"],
)
def test_bad_input(data: str) -> None:
    for cls in (NodeDeviceDocument, CapabilitiesDocument, InterfaceDocument):
        with pytest.raises(VirtError) as info:
            cls.from_string(data)
        assert info.value.code == ErrorNumber.XML_ERROR


# ------------------------------------------------------------------------------ capabilities

CAPS = """<capabilities>

  <host>
    <uuid>11111111-2222-3333-4444-555555555555</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Haswell</model>
    </cpu>
    <topology>
      <cells num='1'>
        <cell id='0'/>
      </cells>
    </topology>
    <secmodel>
      <model>none</model>
      <doi></doi>
    </secmodel>
  </host>

  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='255'>pc</machine>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
    <features>
      <acpi default='on' toggle='yes'/>
    </features>
  </guest>

</capabilities>
"""


def test_capabilities_round_trip_and_accessors() -> None:
    doc = CapabilitiesDocument.from_string(CAPS)
    assert doc.to_string() == CAPS
    assert (doc.host_uuid, doc.host_arch, doc.host_cpu_model, doc.cells()) == (
        "11111111-2222-3333-4444-555555555555", "x86_64", "Haswell", 1)
    assert doc.secmodels() == (SecurityModel("none", ""),)
    assert doc.guests() == (GuestCapability("hvm", "x86_64", 64, "/usr/bin/qemu-system-x86_64", ("pc",),
                                            ("qemu", "kvm"), ("acpi",)),)
    assert doc.host is not None


# ------------------------------------------------------------------------------ interfaces

def test_interface_round_trip_and_accessors() -> None:
    xml = ("<interface type='bridge' name='br0'>\n  <start mode='onboot'/>\n  <mtu size='1500'/>\n"
           "  <bridge stp='off'>\n    <interface type='ethernet' name='eth0'>\n"
           "      <mac address='ab:bb:cc:dd:ee:ff'/>\n    </interface>\n"
           "    <interface type='ethernet' name='eth1'>\n    </interface>\n  </bridge>\n</interface>\n")
    doc = InterfaceDocument.from_string(xml)
    assert doc.to_string() == xml
    assert (doc.name, doc.type, doc.mac, doc.start_mode, doc.mtu) == ("br0", "bridge", None, "onboot", 1500)
    assert doc.members() == ("eth0", "eth1")
    doc.mac = "aa:bb:cc:dd:ee:01"
    assert doc.mac == "aa:bb:cc:dd:ee:01"
    doc.mac = None
    assert doc.mac is None


@pytest.mark.parametrize(
    "xml",
    ["<interface name='x'/>", "<interface type='wifi' name='x'/>", "<interface type='ethernet'/>",
     "<interface type='ethernet' name='x'><mac address='nope'/></interface>"],
)
def test_invalid_interfaces(xml: str) -> None:
    with pytest.raises(VirtError) as info:
        InterfaceDocument.from_string(xml)
    assert info.value.domain == ErrorDomain.INTERFACE


@pytest.mark.skipif(not ALL_CAPS, reason="conformance corpus absent (capabilities samples)")
def test_corpus_capabilities_round_trip() -> None:
    for xml in ALL_CAPS:
        assert CapabilitiesDocument.from_string(xml).to_string() == xml


# ------------------------------------------------------------------------------ properties

_VALUES = ["", "0", "-1", "1", "0x10", "0xffff", "0x10000", "4294967296", "abc", "yes", "pci", "net",
           "mdev_types", "fc_host", "vport_ops", "removable", "render", "cap", "sta", "16", " ", "&<>'\""]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(ALL_DEVICES))
def test_nodedev_format_is_a_fixed_point(xml: str) -> None:
    parse_fixed_point(NodeDeviceDocument.from_string, xml)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ALL_DEVICES, _VALUES))
def test_mutated_nodedev_raises_only_virterror(xml: str) -> None:
    doc = parse_fixed_point(NodeDeviceDocument.from_string, xml)
    if doc is None:
        return
    _ = (doc.name, doc.parent, doc.capability_types())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated([*ALL_IFACES, CAPS, *ALL_CAPS], _VALUES))
def test_mutated_host_documents_raise_only_virterror(xml: str) -> None:
    cls = CapabilitiesDocument if xml.startswith("<capabilities") else InterfaceDocument
    parse_fixed_point(cls.from_string, xml)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_arbitrary_input_raises_only_virterror(data: str | bytes) -> None:
    raises_only_virterror(
        (NodeDeviceDocument.from_string, CapabilitiesDocument.from_string, InterfaceDocument.from_string), data)
