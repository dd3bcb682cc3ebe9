"""DomainDocument: libvirt's generic parse/format, the typed accessors, hostile input, and
hypothesis properties (fixed point of format∘parse; nothing but VirtError escapes)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import MAX_XML_BYTES
from virt.xml.domain import DiskInfo, DomainDocument, InterfaceInfo
from xml_properties import CORPUS

MINIMAL = """<domain type='kvm'>
  <name>demo</name>
  <memory unit='MiB'>512</memory>
  <os><type>hvm</type></os>
</domain>
"""

FULL = """<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>C7A5FDBD-EDAF-9455-926A-D65C16DB1809</uuid>
  <title>Web server</title>
  <description>front end</description>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='MiB'>1024</currentMemory>
  <vcpu current='2'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/srv/iso/install.iso'/>
      <target dev='hdc'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:AA:BB:CC'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <source bridge='br0'/>
      <target dev='vnet7'/>
    </interface>
    <serial type='pty'/>
    <graphics type='vnc' port='5901' autoport='no' passwd='s3cret'/>
  </devices>
</domain>
"""


def parse(text: str | bytes, **options: object) -> DomainDocument:
    return DomainDocument.from_string(text, **options)


# --- formatting and normalisation -------------------------------------------------------------


def test_minimal_domain_gets_libvirts_defaults() -> None:
    doc = parse(MINIMAL)
    out = doc.to_string()
    uuid = doc.uuid
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid)
    assert out == f"""<domain type='kvm'>
  <name>demo</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
  </devices>
</domain>
"""
    assert parse(out).to_string() == out


def test_full_domain_normalisation() -> None:
    doc = parse(FULL)
    out = doc.to_string(secure=True)
    assert "<domain type='kvm' id='7'>" in out
    assert "<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>" in out
    assert "<memory unit='KiB'>2097152</memory>" in out
    assert "<currentMemory unit='KiB'>1048576</currentMemory>" in out
    assert "<vcpu placement='static' current='2'>4</vcpu>" in out
    assert "<mac address='52:54:00:aa:bb:cc'/>" in out
    assert "<graphics type='vnc' port='5901' autoport='no' passwd='s3cret'>" in out
    # cdrom: readonly, ide bus and a drive address, and the implicit IDE controller
    assert ("<target dev='hdc' bus='ide'/>\n      <readonly/>\n"
            "      <address type='drive' controller='0' bus='1' target='0' unit='0'/>") in out
    assert "<controller type='ide' index='0'/>" in out
    # the first console of an HVM guest aliases the first serial port
    assert "<console type='pty'>\n      <target type='serial' port='0'/>\n    </console>" in out
    # a graphics device without a video device gets the default one
    assert "<model type='cirrus' vram='16384' heads='1' primary='yes'/>" in out
    assert parse(out).to_string(secure=True) == out


def test_secure_and_inactive_formatting() -> None:
    doc = parse(FULL)
    assert "passwd=" not in doc.to_string()
    assert "passwd='s3cret'" in doc.to_string(secure=True)
    inactive = doc.to_string(inactive=True, secure=True)
    assert "id='7'" not in inactive
    assert "vnet7" not in inactive  # generated tap names are live-only
    assert "vnet7" in doc.to_string()
    # formatting never changes the document
    assert "passwd='s3cret'" in doc.to_string(secure=True)


def test_inactive_parse_drops_live_data() -> None:
    doc = parse(FULL, inactive=True)
    assert doc.id == -1
    assert doc.interfaces()[1].target_dev is None


def test_validate_option_uses_domain_rng() -> None:
    pytest.importorskip("lxml")
    from virt.xml._schema import schema_dir

    try:
        schema_dir()
    except VirtError:
        pytest.skip("libvirt's RelaxNG schemas are not installed")
    parse(MINIMAL, validate=True)
    with pytest.raises(VirtError) as info:
        parse(MINIMAL.replace("<os>", "<bogus/><os>"), validate=True)
    assert info.value.code is ErrorNumber.XML_INVALID_SCHEMA
    assert info.value.message.startswith("XML document failed to validate against schema: ")


# --- accessors -------------------------------------------------------------------------------


def test_accessors_read() -> None:
    doc = parse(FULL)
    assert doc.type == "kvm"
    assert doc.name == "web1"
    assert doc.uuid == "c7a5fdbd-edaf-9455-926a-d65c16db1809"
    assert doc.title == "Web server"
    assert doc.description == "front end"
    assert doc.memory_kib == 2 * 1024 * 1024
    assert doc.current_memory_kib == 1024 * 1024
    assert (doc.max_vcpus, doc.current_vcpus) == (4, 2)
    assert (doc.os_type, doc.arch, doc.machine) == ("hvm", "x86_64", "pc-q35-7.2")
    assert doc.id == 7
    assert doc.disks() == (
        DiskInfo("file", "disk", "/var/lib/libvirt/images/web1.qcow2", "vda", "virtio", "qcow2", False),
        DiskInfo("file", "cdrom", "/srv/iso/install.iso", "hdc", "ide", None, True),
    )
    nets = doc.interfaces()
    assert nets[0] == InterfaceInfo("network", "default", None, "virtio", "52:54:00:aa:bb:cc")
    assert nets[1].type == "bridge" and nets[1].source == "br0" and nets[1].target_dev == "vnet7"
    assert nets[1].mac is not None and nets[1].mac.startswith("52:54:00:")
    with pytest.raises(AttributeError):
        nets[0].mac = "x"  # type: ignore[misc]


def test_accessors_write() -> None:
    doc = parse(MINIMAL)
    assert doc.title is None and doc.description is None
    doc.title = "T"
    doc.description = "D"
    doc.name = "renamed"
    out = doc.to_string()
    assert out.index("<name>renamed</name>") < out.index("<uuid>") < out.index("<title>T</title>") < out.index(
        "<description>D</description>") < out.index("<memory")
    doc.title = None
    assert doc.title is None and "<title>" not in doc.to_string()
    with pytest.raises(VirtError):
        doc.title = "two\nlines"
    with pytest.raises(VirtError):
        doc.name = "a/b"

    doc.memory_kib = 1048576
    doc.current_memory_kib = 262144
    assert (doc.memory_kib, doc.current_memory_kib) == (1048576, 262144)
    doc.memory_kib = 131072  # current memory follows a smaller maximum
    assert doc.current_memory_kib == 131072
    assert "<memory unit='KiB'>131072</memory>" in doc.to_string()

    doc.max_vcpus = 8
    doc.current_vcpus = 3
    assert "<vcpu placement='static' current='3'>8</vcpu>" in doc.to_string()
    doc.current_vcpus = 8
    assert "<vcpu placement='static'>8</vcpu>" in doc.to_string()
    with pytest.raises(VirtError):
        doc.current_vcpus = 9

    doc.set_id(12)
    assert doc.to_string().startswith("<domain type='kvm' id='12'>")
    assert "id=" not in doc.to_string(inactive=True)
    doc.set_id(-1)
    assert doc.to_string().startswith("<domain type='kvm'>")
    assert parse(doc.to_string()).to_string() == doc.to_string()


def test_set_interface_target_and_copy() -> None:
    doc = parse(FULL)
    doc.set_interface_target(0, "testnet0")
    out = doc.to_string()
    assert "<source network='default'/>\n      <target dev='testnet0'/>\n      <model type='virtio'/>" in out
    twin = doc.copy()
    twin.set_interface_target(0, None)
    assert doc.interfaces()[0].target_dev == "testnet0"
    assert twin.interfaces()[0].target_dev is None
    with pytest.raises(VirtError):
        doc.set_interface_target(5, "x")


# --- errors ----------------------------------------------------------------------------------


# What libvirt 9.0's test driver printed for these (virsh define + dumpxml), shuffled on input.
_ORDERS = """<domain type='test'>
  <name>orders</name>
  <memory>524288</memory>
  <os>
    <type>hvm</type>
    <acpi><table type='slic'>/path/slic.dat</table></acpi>
    <root>/dev/sda1</root>
    <dtb>/root/ppc.dtb</dtb>
    <cmdline>ro</cmdline>
    <initrd>/boot/initrd</initrd>
    <kernel>/boot/vmlinuz</kernel>
    <loader stateless='yes' secure='no' readonly='yes'>/usr/lib/xen/boot/hvmloader</loader>
  </os>
  <features><ioapic driver='qemu'/><smm state='on'/><vmport state='off'/><pmu state='on'/><hap/><pae/>
    <acpi/><apic/><viridian/><privnet/></features>
  <blkiotune><device><write_bytes_sec>5</write_bytes_sec><read_iops_sec>3</read_iops_sec>
    <path>/dev/b</path><weight>9</weight></device><weight>800</weight><device><path>/dev/a</path>
    <read_bytes_sec>1</read_bytes_sec><write_iops_sec>2</write_iops_sec><weight>0</weight></device>
    <device><path>/dev/c</path><weight>0</weight></device></blkiotune>
</domain>
"""


def test_libvirt_orders_os_features_and_blkiotune() -> None:
    out = parse(_ORDERS).to_string()
    body = re.sub(r"\n\s*", "", out)
    assert "<os><type arch='x86_64'>hvm</type>" \
        "<loader readonly='yes' secure='no' type='rom' stateless='yes'>/usr/lib/xen/boot/hvmloader</loader>" \
        "<kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd</initrd><cmdline>ro</cmdline>" \
        "<dtb>/root/ppc.dtb</dtb><root>/dev/sda1</root><acpi><table type='slic'>/path/slic.dat</table></acpi>" \
        "<boot dev='hd'/></os>" in body
    assert "<features><acpi/><apic/><pae/><hap/><viridian/><privnet/><pmu state='on'/><vmport state='off'/>" \
        "<smm state='on'/><ioapic driver='qemu'/></features>" in body
    assert "<blkiotune><weight>800</weight><device><path>/dev/b</path><weight>9</weight>" \
        "<read_iops_sec>3</read_iops_sec><write_bytes_sec>5</write_bytes_sec></device><device>" \
        "<path>/dev/a</path><write_iops_sec>2</write_iops_sec><read_bytes_sec>1</read_bytes_sec>" \
        "</device></blkiotune>" in body
    # no type with firmware autoselection, nor without a path
    auto = parse(_ORDERS.replace("<os>", "<os firmware='efi'>")).to_string()
    assert "<loader readonly='yes' secure='no' stateless='yes'>" in auto
    empty = parse(re.sub(r"<loader .*</loader>", "<loader stateless='yes'/>", _ORDERS)).to_string()
    assert "<loader stateless='yes'/>" in empty


_DISKS = """<domain type='test'>
  <name>disks</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory>524288</memory>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='floppy'><source file='/root/fd.img'/><target dev='fda'/></disk>
    <disk type='file'><source file='/root/fv0'/><target dev='hda'/></disk>
    <disk type='file' device='cdrom'><source file='/root/x.iso'/><target dev='hdc'/><readonly/></disk>
    <disk type='file'><source file='/root/v'/><target dev='vda'/></disk>
    <disk type='file'><source file='/root/s'/><target dev='sda'/></disk>
    <disk type='file' device='floppy'><source file='/root/fd2.img'/><target dev='fdb' bus='fdc'/></disk>
  </devices>
</domain>
"""


def test_first_parse_keeps_libvirts_disk_order() -> None:
    def targets(doc: DomainDocument) -> list[str | None]:
        return [d.target for d in doc.disks()]

    # libvirt inserts by the bus as written (none for all but fdb), as its test driver showed
    first = parse(_DISKS, first_parse=True)
    assert targets(first) == ["fda", "hda", "vda", "sda", "hdc", "fdb"]
    # parsing that output again sorts by the final buses: the default, a fixed point
    again = parse(first.to_string())
    assert targets(again) == ["fda", "fdb", "hda", "hdc", "vda", "sda"] == targets(parse(_DISKS))
    assert parse(again.to_string()).to_string() == again.to_string() == parse(_DISKS).to_string()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("<domain", ErrorNumber.XML_ERROR),
        ("", ErrorNumber.XML_ERROR),
        ("<network/>", ErrorNumber.XML_ERROR),
        (MINIMAL.replace("<name>demo</name>", "<name>foo/bar</name>"), ErrorNumber.XML_ERROR),
        (MINIMAL.replace("<name>demo</name>", ""), ErrorNumber.NO_NAME),
        (MINIMAL.replace(" type='kvm'", ""), ErrorNumber.INTERNAL_ERROR),
        (MINIMAL.replace("type='kvm'", "type='bogus'"), ErrorNumber.CONFIG_UNSUPPORTED),
        (MINIMAL.replace("<os><type>hvm</type></os>", ""), ErrorNumber.XML_ERROR),
        (MINIMAL.replace("<memory unit='MiB'>512</memory>", ""), ErrorNumber.XML_ERROR),
        (MINIMAL.replace("unit='MiB'", "unit='parsecs'"), ErrorNumber.INVALID_ARG),
        (MINIMAL.replace("512", "lots"), ErrorNumber.XML_ERROR),
        (MINIMAL.replace("<name>", "<uuid>not-a-uuid</uuid><name>"), ErrorNumber.INTERNAL_ERROR),
        (MINIMAL.replace("</os>", "</os><vcpu current='5'>4</vcpu>"), ErrorNumber.CONFIG_UNSUPPORTED),
        (MINIMAL.replace("</os>", "</os><devices><interface type='network'><mac address='01:00:00:00:00:01'/>"
                                  "<source network='n'/></interface></devices>"), ErrorNumber.XML_ERROR),
    ],
    ids=["truncated", "empty", "wrong-root", "name-slash", "no-name", "no-type", "bad-type", "no-os",
         "no-memory", "bad-unit", "bad-number", "bad-uuid", "vcpu-current", "multicast-mac"],
)
def test_invalid_definitions(text: str, code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        parse(text)
    assert info.value.code is code, info.value.message


def test_libvirt_messages() -> None:
    with pytest.raises(VirtError) as info:
        parse(MINIMAL.replace("<name>demo</name>", "<name>foo/bar</name>"))
    assert info.value.message == "XML error: name foo/bar cannot contain '/'"
    assert info.value.domain is ErrorDomain.DOMAIN
    with pytest.raises(VirtError) as info:
        parse(MINIMAL.replace("<name>demo</name>", ""))
    assert info.value.message == "missing name information"


def test_external_entities_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("top secret")
    xxe = (f"<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY x SYSTEM 'file://{secret}'>]>"
           "<domain type='kvm'><name>&x;</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    with pytest.raises(VirtError) as info:
        parse(xxe)
    assert info.value.code is ErrorNumber.XML_ERROR
    assert "top secret" not in info.value.message


def test_billion_laughs_is_refused() -> None:
    lol = "<!DOCTYPE d [<!ENTITY a 'lol'>" + "".join(
        f"<!ENTITY {chr(98 + i)} '{('&' + chr(97 + i) + ';') * 10}'>" for i in range(9)
    ) + "]><domain type='kvm'><name>&j;</name></domain>"
    with pytest.raises(VirtError) as info:
        parse(lol)
    assert info.value.code is ErrorNumber.XML_ERROR


def test_undeclared_entity_reference_is_an_error() -> None:
    with pytest.raises(VirtError) as info:
        parse(MINIMAL.replace("demo", "&nope;"))
    assert info.value.code is ErrorNumber.XML_ERROR


def test_oversized_document_is_refused() -> None:
    big = MINIMAL.replace("<name>demo</name>", "<name>demo</name><description>" + "x" * MAX_XML_BYTES
                          + "</description>")
    for data in (big, big.encode()):
        with pytest.raises(VirtError) as info:
            parse(data)
        assert info.value.code is ErrorNumber.XML_ERROR


def test_non_text_input_is_invalid_arg() -> None:
    with pytest.raises(VirtError) as info:
        parse(42)  # type: ignore[arg-type]
    assert info.value.code is ErrorNumber.INVALID_ARG


# --- corpus: every domain that parses formats to a fixed point --------------------------------


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    found: set[Path] = set()
    for pattern in ("domain/*/in/*.xml", "domain/*/out/*.xml", "domain/schema-valid/*.xml", "lxc/*/*/*.xml",
                    "xen-xl/*/*.xml", "oracle/libvirt-9.0.0-testdriver/domain/*/*.xml"):
        found.update(CORPUS.glob(pattern))
    return sorted(p for p in found if b"<domain" in p.read_bytes()[:400])


CORPUS_FILES = _corpus_files()
_SAMPLES = [MINIMAL.encode(), FULL.encode()] + [p.read_bytes() for p in CORPUS_FILES[::7]]


@pytest.mark.skipif(not CORPUS_FILES, reason=f"conformance corpus not found at {CORPUS}")
def test_corpus_fixed_point() -> None:
    parsed = 0
    for path in CORPUS_FILES:
        try:
            first = parse(path.read_bytes()).to_string(secure=True)
        except VirtError:
            continue
        parsed += 1
        assert parse(first).to_string(secure=True) == first, path.name
    assert parsed > 1000


# --- hypothesis: hostile and mutated input ----------------------------------------------------


def _check(data: str | bytes) -> None:
    """Only VirtError may escape; whatever parses formats to a fixed point."""
    try:
        doc = parse(data)
    except VirtError:
        return
    out = doc.to_string(secure=True)
    assert parse(out).to_string(secure=True) == out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_random_input_only_raises_virterror(data: str | bytes) -> None:
    _check(data)


_XML_BITS = st.sampled_from([
    "<", ">", "/>", "</", "'", '"', "&", "&amp;", "<![CDATA[x]]>", "<!--c-->", "\x00", "\u00e9", "-1",
    "0", "99999999999999999999", "", " ", "\n", "type='x'", "<devices>", "</devices>", "<disk/>", "vda",
])


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.integers(0, 3))
        if action == 0:
            del data[pos:pos + draw(st.integers(1, 40))]
        elif action == 1:
            data[pos:pos] = draw(_XML_BITS).encode()
        elif action == 2:
            data[pos] = draw(st.integers(0, 255))
        else:
            end = min(len(data), pos + draw(st.integers(1, 80)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_corpus_only_raises_virterror(data: bytes) -> None:
    _check(data)


@st.composite
def _tree_mutated(draw: st.DrawFn) -> bytes:
    """Structure-aware mutations: drop, duplicate or move elements; change or drop attributes."""
    raw = draw(st.sampled_from(_SAMPLES))
    try:
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return raw
    elems = [e for e in root.iter() if isinstance(e.tag, str)]
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 6))):
        el = rnd.choice(elems)
        parent = el.getparent()
        action = rnd.randrange(6)
        if action == 0 and parent is not None:
            parent.remove(el)
        elif action == 1 and parent is not None:
            parent.append(etree.fromstring(etree.tostring(el)))
        elif action == 2 and el.attrib:
            key = rnd.choice(list(el.attrib))
            el.set(key, draw(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)))
        elif action == 3 and el.attrib:
            del el.attrib[rnd.choice(list(el.attrib))]
        elif action == 4:
            el.text = draw(st.sampled_from(["", "0", "-5", "abc", "1024", "hvm", "yes", "4294967296"]))
        elif parent is not None:
            other = rnd.choice(elems)
            if other is not el and el not in other.iterancestors() and other not in el.iter():
                other.append(el)
        elems = [e for e in root.iter() if isinstance(e.tag, str)]
        if not elems:
            break
    return etree.tostring(root)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree_mutated())
def test_structurally_mutated_corpus_only_raises_virterror(data: bytes) -> None:
    _check(data)


# --- inactive formatting and the schema helper ------------------------------------------------


def test_inactive_drops_generated_aliases_only() -> None:
    text = MINIMAL.replace("</os>", "</os><devices><disk type='file'><source file='/a'/><target dev='vda'/>"
                                    "<alias name='virtio-disk0'/></disk><disk type='file'><source file='/b'/>"
                                    "<target dev='vdb'/><alias name='ua-data'/></disk></devices>")
    live = parse(text)
    assert "virtio-disk0" in live.to_string() and "ua-data" in live.to_string()
    assert "virtio-disk0" not in live.to_string(inactive=True) and "ua-data" in live.to_string(inactive=True)
    inactive = parse(text, inactive=True)
    assert "virtio-disk0" not in inactive.to_string() and "ua-data" in inactive.to_string()


def test_schema_helper_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from virt.xml import _schema

    with pytest.raises(VirtError) as info:
        _schema.validate(parse(MINIMAL).root, "../etc/passwd")
    assert info.value.code is ErrorNumber.INVALID_ARG
    monkeypatch.setattr(_schema, "_candidates", lambda: [tmp_path])
    with pytest.raises(VirtError) as info:
        _schema.validate(parse(MINIMAL).root, "domain")
    assert info.value.code is ErrorNumber.NO_SUPPORT


def test_console_target_type_defaults_to_the_drivers_then_serial() -> None:
    """A console that names no target type gets the driver's (virDomainDeviceDefPostParse: lxc
    for the LXC driver), then serial; one that names its type keeps it."""
    xml = ("<domain type='lxc'><name>a</name><memory>1024</memory><os><type>exe</type><init>/sbin/init</init></os>"
           "<devices><console type='pty'/><console type='pty'><target type='serial'/></console></devices></domain>")
    lxc = DomainDocument.from_string(xml, inactive=True, console_target="lxc").to_string()
    assert "<target type='lxc' port='0'/>" in lxc and "<target type='serial' port='0'/>" in lxc
    generic = DomainDocument.from_string(xml, inactive=True).to_string()
    assert "<target type='lxc'" not in generic
