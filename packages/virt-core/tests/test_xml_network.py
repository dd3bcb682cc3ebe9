"""NetworkDocument: libvirt's network XML parse/format, accessors, errors, and properties
(format(parse(x)) is a fixed point; any input raises nothing but VirtError)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from virt import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import MAX_XML_BYTES
from virt.xml.network import DhcpHost, DhcpLease, DhcpRange, NetworkDocument, NetworkIP
from xml_properties import corpus, mutated, parse_fixed_point, raises_only_virterror

NAT = """<network>
  <name>default</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <bridge name="virbr0"/>
  <mac address='52:54:00:AB:CD:EF'/>
  <forward mode="nat" dev="eth1"/>
  <domain name='example.com' localOnly='yes'/>
  <ip address="192.168.122.1" netmask="255.255.255.0">
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start="192.168.122.2" end="192.168.122.254"><lease expiry='1' unit='hours'/></range>
      <host mac="00:16:3e:77:e2:ed" name="a.example.com" ip="192.168.122.10"/>
      <bootp file='pxe.img' server='192.168.122.5'/>
    </dhcp>
  </ip>
  <ip family="ipv6" address="2001:db8:ac10:fe01:0:0:0:1" prefix="64"/>
</network>
"""

NAT_OUT = """<network>
  <name>default</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward dev='eth1' mode='nat'>
    <interface dev='eth1'/>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:ab:cd:ef'/>
  <domain name='example.com' localOnly='yes'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'>
        <lease expiry='1' unit='hours'/>
      </range>
      <host mac='00:16:3e:77:e2:ed' name='a.example.com' ip='192.168.122.10'/>
      <bootp file='pxe.img' server='192.168.122.5'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:db8:ac10:fe01::1' prefix='64'>
  </ip>
</network>
"""

ISOLATED = "<network><name>priv</name></network>"

SEEDS = [
    NAT,
    ISOLATED,
    """<network ipv6='yes' trustGuestRxFilters='no'><name>b</name><forward mode='bridge'/><bridge name='br0'/>
       <virtualport type='openvswitch'/><portgroup name='p' default='yes'><vlan trunk='yes'><tag id='1'/>
       <tag id='2' nativeMode='untagged'/></vlan></portgroup></network>""",
    """<network><name>h</name><forward mode='hostdev' managed='yes'><driver name='vfio'/>
       <address type='pci' domain='0' bus='3' slot='0' function='1'/></forward></network>""",
    """<network><name>d</name><dns enable='yes' forwardPlainNames='no'><forwarder addr='8.8.8.8'/>
       <txt name='t' value='v'/><srv service='s' protocol='tcp' target='.' port='1'/>
       <host ip='10.0.0.5'><hostname>x</hostname></host></dns><ip address='10.0.0.1' prefix='24'/>
       <route address='10.1.0.0' prefix='16' gateway='10.0.0.2'/></network>""",
]


ALL_INPUTS = SEEDS + corpus("network", "*/in/*.xml")


def test_parse_format_canonical() -> None:
    doc = NetworkDocument.from_string(NAT)
    assert doc.to_string() == NAT_OUT
    assert NetworkDocument.from_string(NAT_OUT).to_string() == NAT_OUT
    assert str(doc) == NAT_OUT


def test_accessors() -> None:
    doc = NetworkDocument.from_string(NAT)
    assert doc.name == "default"
    assert doc.uuid == "81ff0d90-c91e-6742-64da-4a736edb9a9b"
    assert doc.bridge == "virbr0"
    assert doc.forward_mode == "nat"
    assert doc.forward_dev == "eth1"
    assert doc.mac == "52:54:00:ab:cd:ef"
    assert doc.domain_name == "example.com"
    assert doc.mtu is None
    ip4, ip6 = doc.ips()
    assert ip4 == NetworkIP(
        address="192.168.122.1", family="ipv4", prefix=24, netmask="255.255.255.0",
        dhcp_ranges=(DhcpRange("192.168.122.2", "192.168.122.254", DhcpLease(1, "hours")),),
        dhcp_hosts=(DhcpHost("192.168.122.10", "00:16:3e:77:e2:ed", "a.example.com"),),
        tftp_root="/srv/tftp", bootp_file="pxe.img", bootp_server="192.168.122.5",
    )
    assert ip6.family == "ipv6" and ip6.prefix == 64 and ip6.netmask is None
    assert ip6.address == "2001:db8:ac10:fe01::1"
    with pytest.raises(AttributeError):
        ip4.address = "x"  # type: ignore[misc]


def test_isolated_defaults_and_generated_uuid() -> None:
    doc = NetworkDocument.from_string(ISOLATED)
    assert doc.forward_mode is None
    assert doc.bridge is None
    assert doc.ips() == ()
    assert uuid.UUID(doc.uuid)
    out = doc.to_string()
    assert out == (f"<network>\n  <name>priv</name>\n  <uuid>{doc.uuid}</uuid>\n"
                   "  <bridge stp='on' delay='0'/>\n</network>\n")
    # the generated uuid is part of the document: formatting is stable
    assert doc.to_string() == out
    assert NetworkDocument.from_string(ISOLATED).uuid != doc.uuid


def test_classful_prefix_and_netmask_derivation() -> None:
    doc = NetworkDocument.from_string(
        "<network><name>n</name><ip address='10.1.2.3'/><ip address='172.16.0.1'/>"
        "<ip address='192.168.0.1' prefix='28'/></network>")
    assert [(i.prefix, i.netmask) for i in doc.ips()] == [
        (8, "255.0.0.0"), (16, "255.255.0.0"), (28, "255.255.255.240")]


def test_setters_keep_libvirt_order() -> None:
    doc = NetworkDocument.from_string(ISOLATED)
    doc.mac = "52:54:00:00:00:AA"
    doc.bridge = "virbr9"
    out = doc.to_string()
    assert out.index("<bridge name='virbr9' stp='on' delay='0'/>") < out.index("<mac address='52:54:00:00:00:aa'/>")
    assert doc.bridge == "virbr9" and doc.mac == "52:54:00:00:00:aa"
    with pytest.raises(VirtError) as info:
        doc.mac = "zz"
    assert info.value.code == ErrorNumber.INVALID_ARG
    doc.mac = None
    assert doc.mac is None and "<mac" not in doc.to_string()


def test_inactive_format_drops_runtime_state() -> None:
    doc = NetworkDocument.from_string(
        "<network connections='3'><name>p</name><forward mode='passthrough'><pf dev='eth0'/></forward></network>")
    assert "connections" not in doc.to_string()  # the parser ignores runtime attributes
    # a driver expands the pf into its VFs at runtime and counts connections
    doc.root.set("connections", "2")
    fwd = doc.root.find("forward")
    assert fwd is not None
    etree.SubElement(fwd, "interface", dev="eth0v0", connections="1")
    live = doc.to_string()
    assert "connections='2'" in live and "<interface dev='eth0v0' connections='1'/>" in live
    inactive = doc.to_string(inactive=True)
    assert "connections" not in inactive and "<interface" not in inactive
    assert "<pf dev='eth0'/>" in inactive


def test_metadata_and_namespaces() -> None:
    doc = NetworkDocument.from_string(
        "<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>m</name>"
        "<uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>"
        "<dnsmasq:options><dnsmasq:option value='a=b'/></dnsmasq:options>"
        "<forward mode='bridge'/><bridge name='br0'/>"
        "<metadata> <x:a xmlns:x='urn:x'>1</x:a><plain/><x:b xmlns:x='urn:x'/> </metadata></network>")
    assert doc.to_string() == (
        "<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>\n"
        "  <name>m</name>\n"
        "  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\n"
        "  <metadata>\n"
        '    <x:a xmlns:x="urn:x">1</x:a>\n'
        "  </metadata>\n"
        "  <forward mode='bridge'/>\n"
        "  <bridge name='br0'/>\n"
        "  <dnsmasq:options>\n"
        "    <dnsmasq:option value='a=b'/>\n"
        "  </dnsmasq:options>\n"
        "</network>\n")


def test_namespace_declarations_like_libvirt() -> None:
    # declared locally -> printed on the root; unused -> dropped; metadata keeps its own
    doc = NetworkDocument.from_string(
        "<network xmlns:u='urn:unused' xmlns:x='urn:x'><name>n</name>"
        "<uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid><metadata><x:a/></metadata>"
        "<dnsmasq:options xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>"
        "<dnsmasq:option value='x'/></dnsmasq:options></network>")
    out = doc.to_string()
    assert out.startswith("<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>\n")
    assert '  <metadata xmlns:x="urn:x">\n    <x:a/>\n  </metadata>\n' in out
    assert "<dnsmasq:options>\n" in out
    assert NetworkDocument.from_string(out).to_string() == out


def test_unknown_elements_are_kept_last() -> None:
    doc = NetworkDocument.from_string("<network><future a='1'/><name>u</name></network>")
    out = doc.to_string()
    assert out.endswith("  <future a='1'/>\n</network>\n")


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<network/>", ErrorNumber.NO_NAME),
        ("<network><name>a/b</name></network>", ErrorNumber.XML_DETAIL),
        ("<network><name>a</name><uuid>nope</uuid></network>", ErrorNumber.INTERNAL_ERROR),
        ("<network ipv6='maybe'><name>a</name></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><forward mode='teleport'/></network>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<network><name>a</name><forward mode='nat'/></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><mac address='01:00:00:00:00:00'/></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><mac address='xx'/></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><ip address='10.0.0.1' netmask='255.0.0.0' prefix='8'/></network>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<network><name>a</name><ip family='ipv6' address='10.0.0.1'/></network>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
         "<range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>", ErrorNumber.INTERNAL_ERROR),
        ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
         "<range start='10.0.0.9' end='10.0.0.2'/></dhcp></ip></network>", ErrorNumber.INTERNAL_ERROR),
        ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
         "<host name='x'/></dhcp></ip></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' "
         "end='10.0.0.9'><lease expiry='30' unit='seconds'/></range></dhcp></ip></network>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<network><name>a</name><dns enable='no'><txt name='a' value='b'/></dns></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><dns><srv service='s' protocol='tcp' port='1'/></dns></network>",
         ErrorNumber.XML_DETAIL),
        ("<network><name>a</name><forward mode='bridge'/><bridge name='br0' stp='on'/></network>",
         ErrorNumber.XML_ERROR),
        ("<network><name>a</name><forward mode='bridge'/><mtu size='9000'/></network>", ErrorNumber.XML_ERROR),
        ("<network><name>a</name><ip address='10.0.0.1' prefix='24'/>"
         "<route address='10.9.0.0' prefix='16' gateway='10.8.0.1'/></network>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<network><name>a</name><forward mode='hostdev'><address type='usb'/></forward></network>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<domain/>", ErrorNumber.XML_ERROR),
    ],
)
def test_invalid_definitions(xml: str, code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        NetworkDocument.from_string(xml)
    assert info.value.code == code, info.value.message
    assert info.value.domain in (ErrorDomain.NETWORK, ErrorDomain.XML)


@pytest.mark.parametrize(
    "data",
    [
        "<network><name>a</name>",
        "",
        "not xml",
        b"\xff\xfe<network/>",
        '<!DOCTYPE n [<!ENTITY e "x">]><network><name>&e;</name></network>',
        "<network><name>" + "a" * MAX_XML_BYTES + "</name></network>",
    ],
    ids=["truncated", "empty", "text", "bad-encoding", "entity", "oversize"],
)
def test_bad_input_is_xml_error(data: str | bytes) -> None:
    with pytest.raises(VirtError) as info:
        NetworkDocument.from_string(data)
    assert info.value.code == ErrorNumber.XML_ERROR
    assert info.value.domain == ErrorDomain.NETWORK


def test_non_string_input() -> None:
    with pytest.raises(VirtError) as info:
        NetworkDocument.from_string(42)  # type: ignore[arg-type]
    assert info.value.code == ErrorNumber.INVALID_ARG


def test_copy_is_independent() -> None:
    doc = NetworkDocument.from_string(NAT)
    dup = doc.copy()
    dup.bridge = "other"
    assert doc.bridge == "virbr0" and dup.bridge == "other"


def _schemas_available() -> bool:
    try:
        from virt.xml._schema import schema_dir

        schema_dir()
    except (ImportError, VirtError):
        return False
    return True


@pytest.mark.skipif(not _schemas_available(), reason="libvirt's RelaxNG schemas are not available")
def test_validate_option_checks_the_schema() -> None:
    assert NetworkDocument.from_string(NAT, validate=True).name == "default"
    with pytest.raises(VirtError) as info:
        NetworkDocument.from_string("<network><name>a</name><bogus/></network>", validate=True)
    assert info.value.code == ErrorNumber.XML_INVALID_SCHEMA
    # without the option, no schema is consulted
    assert NetworkDocument.from_string("<network><name>a</name><bogus/></network>").name == "a"


# ------------------------------------------------------------------------------- properties

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL_INPUTS))
def test_format_is_a_fixed_point(xml: str) -> None:
    parse_fixed_point(NetworkDocument.from_string, xml)


_VALUES = ["", "yes", "no", "0", "-1", "1", "65536", "4294967296", "0x10", "abc", "::1", "10.0.0.1",
           "255.255.255.0", "nat", "route", "open", "bridge", "hostdev", "passthrough", "52:54:00:00:00:01",
           "01:00:00:00:00:00", "a/b", " ", "&<>'\""]
# A newline in an attribute is printed raw (as libvirt does) and reads back as a space, so only
# text gets one.
_TEXTS = [*_VALUES, "\n"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ALL_INPUTS, _VALUES, _TEXTS))
def test_mutated_input_raises_only_virterror(xml: str) -> None:
    doc = parse_fixed_point(NetworkDocument.from_string, xml)
    if doc is None:
        return
    doc.ips()
    _ = (doc.name, doc.uuid, doc.bridge, doc.forward_mode, doc.mac, doc.domain_name)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_arbitrary_input_raises_only_virterror(data: str | bytes) -> None:
    raises_only_virterror([NetworkDocument.from_string], data)
