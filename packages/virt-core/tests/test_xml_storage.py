"""PoolDocument, VolumeDocument (and SecretDocument, which storage auth/encryption refer to):
libvirt's parse/format, accessors and setters, errors, and hypothesis properties."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virt import ErrorDomain, ErrorNumber, VirtError
from virt.xml.secret import SecretDocument
from virt.xml.storage import POOL_TYPES, PoolDocument, PoolSourceHost, VolumeDocument, sanitize_path, scale_size
from xml_properties import corpus, mutated, parse_fixed_point, raises_only_virterror

DIR_POOL = """<pool type="dir">
  <name>images</name>
  <uuid>70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2</uuid>
  <capacity>42</capacity>
  <source><dir path='/ignored'/></source>
  <target>
    <path>///var//lib/libvirt/images/</path>
    <permissions><owner>-1</owner><mode>0711</mode><group>107</group></permissions>
  </target>
</pool>
"""

DIR_POOL_OUT = """<pool type='dir'>
  <name>images</name>
  <uuid>70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
  </source>
  <target>
    <path>/var/lib/libvirt/images</path>
    <permissions>
      <mode>0711</mode>
      <group>107</group>
    </permissions>
  </target>
</pool>
"""

VOLUME = """<volume>
  <name>disk.qcow2</name>
  <capacity unit='G'>5</capacity>
  <target><format type='qcow2'/><path>/var/lib/libvirt/images/disk.qcow2</path>
    <features><lazy_refcounts/></features><timestamps><atime>1</atime></timestamps></target>
  <backingStore><path>/var/lib/libvirt/images/base.img</path></backingStore>
</volume>
"""

VOLUME_OUT = """<volume type='file'>
  <name>disk.qcow2</name>
  <capacity unit='bytes'>5368709120</capacity>
  <allocation unit='bytes'>5368709120</allocation>
  <target>
    <path>/var/lib/libvirt/images/disk.qcow2</path>
    <format type='qcow2'/>
    <compat>1.1</compat>
    <features>
      <lazy_refcounts/>
    </features>
  </target>
  <backingStore>
    <path>/var/lib/libvirt/images/base.img</path>
    <format type='raw'/>
  </backingStore>
</volume>
"""

POOL_SEEDS = [
    DIR_POOL,
    "<pool type='logical'><source><name>vg0</name><device path='/dev/sdb1'/></source></pool>",
    "<pool type='netfs'><name>n</name><source><host name='nfs.example.com' port='2049'/><dir path='/export/'/>"
    "<format type='nfs'/><protocol ver='4'/></source><target><path>/mnt</path></target></pool>",
    "<pool type='rbd'><name>ceph</name><source><name>rbd</name><host name='mon'/><auth type='ceph' username='admin'>"
    "<secret usage='client.admin'/></auth></source></pool>",
    "<pool type='scsi'><name>hba</name><source><adapter type='fc_host' wwnn='20000000c9831b4b' "
    "wwpn='10000000c9831b4b'/></source><target><path>/dev/disk/by-path</path></target></pool>",
    "<pool type='iscsi-direct'><name>i</name><source><host name='h'/><device path='iqn.x'/>"
    "<initiator><iqn name='iqn.y'/></initiator></source></pool>",
]

VOL_SEEDS = [
    VOLUME,
    "<volume type='block'><name>sda1</name><key>/dev/sda1</key><capacity>1024</capacity>"
    "<target><path>/dev/sda1</path><permissions><mode>0660</mode><owner>0</owner></permissions></target></volume>",
    "<volume><name>e.img</name><capacity unit='MiB'>1</capacity><target><format type='raw'/>"
    "<encryption format='luks'><secret type='passphrase' uuid='f52a81b2-424e-490c-823d-6bd4235bc572'/>"
    "<cipher name='aes' size='256' mode='xts'/><ivgen name='plain64'/></encryption>"
    "<clusterSize unit='KiB'>64</clusterSize></target></volume>",
]

SECRET_SEEDS = [
    "<secret ephemeral='no' private='yes'><description>d</description><usage type='volume'>"
    "<volume>/var/lib/libvirt/images/a.img</volume></usage></secret>",
    "<secret><usage type='ceph'><name>client.admin secret</name></usage>"
    "<uuid>f52a81b2-424e-490c-823d-6bd4235bc572</uuid></secret>",
]


ALL_POOLS = POOL_SEEDS + corpus("storage", "pool/in/*.xml") + corpus("storage", "examples/pool-*.xml")
ALL_VOLS = VOL_SEEDS + corpus("storage", "vol/in/*.xml") + corpus("storage", "examples/vol-*.xml")
ALL_SECRETS = SECRET_SEEDS + corpus("other", "secret/*.xml")


# ----------------------------------------------------------------------------------- pools

def test_pool_canonical_form() -> None:
    doc = PoolDocument.from_string(DIR_POOL)
    assert doc.to_string() == DIR_POOL_OUT
    assert PoolDocument.from_string(DIR_POOL_OUT).to_string() == DIR_POOL_OUT


def test_pool_accessors_and_runtime_sizes() -> None:
    doc = PoolDocument.from_string(DIR_POOL)
    assert (doc.name, doc.uuid, doc.type) == ("images", "70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2", "dir")
    assert doc.target_path == "/var/lib/libvirt/images"
    assert doc.source_device_paths == ()
    assert doc.volume_formats is not None and "qcow2" in doc.volume_formats
    # sizes are runtime values: parsing ignores them, drivers set them
    assert (doc.capacity, doc.allocation, doc.available) == (0, 0, 0)
    doc.capacity, doc.allocation, doc.available = 100, 60, 40
    assert (doc.capacity, doc.allocation, doc.available) == (100, 60, 40)
    out = doc.to_string()
    assert "<capacity unit='bytes'>100</capacity>\n  <allocation unit='bytes'>60</allocation>" in out
    assert PoolDocument.from_string(out).capacity == 0
    with pytest.raises(VirtError) as info:
        doc.capacity = -1
    assert info.value.code == ErrorNumber.INVALID_ARG
    doc.target_path = "/srv//pool/"
    assert doc.target_path == "/srv/pool"


def test_pool_type_defaults() -> None:
    logical = PoolDocument.from_string(POOL_SEEDS[1])
    assert logical.name == "vg0" and logical.source_name == "vg0"
    assert logical.target_path == "/dev/vg0" and logical.source_format == "lvm2"
    assert logical.source_device_paths == ("/dev/sdb1",)
    assert uuid.UUID(logical.uuid)
    gluster = PoolDocument.from_string(
        "<pool type='gluster'><name>g</name><source><host name='h'/><name>vol</name></source></pool>")
    assert gluster.source_dir == "/" and gluster.target_path is None
    netfs = PoolDocument.from_string(POOL_SEEDS[2])
    assert netfs.source_hosts == (PoolSourceHost("nfs.example.com", 2049),)
    assert netfs.source_dir == "/export" and netfs.source_format == "nfs"
    zfs = PoolDocument.from_string("<pool type='zfs'><name>tank</name></pool>")
    assert zfs.target_path == "/dev/zvol/tank"


def test_pool_namespace_is_printed_after_type() -> None:
    doc = PoolDocument.from_string(
        "<pool xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0' type='fs'><name>f</name>"
        "<uuid>70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2</uuid><source><device path='/dev/sdc'/></source>"
        "<target><path>/mnt</path></target><fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>")
    out = doc.to_string()
    assert out.startswith("<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>\n")
    assert out.endswith("  <fs:mount_opts>\n    <fs:option name='sync'/>\n  </fs:mount_opts>\n</pool>\n")


def test_pool_namespace_declared_locally_moves_to_root() -> None:
    doc = PoolDocument.from_string(
        "<pool type='rbd' xmlns:junk='urn:j'><name>c</name><source><name>r</name><host name='h'/></source>"
        "<rbd:config_opts xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>"
        "<rbd:option name='a' value='1'/></rbd:config_opts></pool>")
    out = doc.to_string()
    assert out.startswith("<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>\n")
    assert "  <rbd:config_opts>\n    <rbd:option name='a' value='1'/>\n  </rbd:config_opts>\n" in out


def test_pool_perms_print_like_libvirt() -> None:
    doc = PoolDocument.from_string(
        "<pool type='dir'><name>p</name><target><path>/p</path><permissions><mode>0</mode>"
        "<owner>3000000000</owner><group>4294967295</group><label>l</label></permissions></target></pool>")
    out = doc.to_string()
    assert "<mode>00</mode>\n      <owner>-1294967296</owner>\n      <label>l</label>" in out


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<pool><name>p</name></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='floppy'><name>p</name></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='dir'><name>p</name></pool>", ErrorNumber.XML_ERROR),  # no target path
        ("<pool type='dir'><name>a/b</name><target><path>/p</path></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='dir'><uuid>x</uuid><name>p</name><target><path>/p</path></target></pool>",
         ErrorNumber.XML_ERROR),
        ("<pool type='dir'><name>p</name><target><path>/p</path><permissions><mode>999</mode>"
         "</permissions></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='dir'><name>p</name><target><path>/p</path><permissions><owner>x</owner>"
         "</permissions></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='netfs'><name>p</name><source><dir path='/x'/></source>"
         "<target><path>/p</path></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='netfs'><name>p</name><source><host name='h'/><dir path='/x'/><format type='cifs'/>"
         "<protocol ver='3'/></source><target><path>/p</path></target></pool>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<pool type='fs'><name>p</name><source><device path='/d'/><format type='zfs'/></source>"
         "<target><path>/p</path></target></pool>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<pool type='fs'><name>p</name><target><path>/p</path></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='rbd'><name>p</name><source><host name='h'/></source></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='rbd'><name>p</name><source><name>r</name><host name='h'/><auth username='u'>"
         "<secret usage='x'/></auth></source></pool>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<pool type='scsi'><name>p</name><source><adapter type='fc_host' wwnn='1' wwpn='2'/></source>"
         "<target><path>/p</path></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='scsi'><name>p</name><source><adapter wwnn='1'/></source>"
         "<target><path>/p</path></target></pool>", ErrorNumber.XML_ERROR),
        ("<pool type='iscsi-direct'><name>p</name><source><host name='h'/><device path='d'/></source></pool>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<pool type='logical'><name>p</name><features><cow state='yes'/></features></pool>",
         ErrorNumber.NO_SUPPORT),
        ("<volume/>", ErrorNumber.XML_ERROR),
    ],
)
def test_invalid_pools(xml: str, code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        PoolDocument.from_string(xml)
    assert info.value.code == code, info.value.message
    assert info.value.domain in (ErrorDomain.STORAGE, ErrorDomain.XML)


# --------------------------------------------------------------------------------- volumes

def test_volume_canonical_form() -> None:
    pool = PoolDocument.from_string(DIR_POOL)
    doc = VolumeDocument.from_string(VOLUME, pool=pool)
    assert doc.to_string() == VOLUME_OUT
    assert VolumeDocument.from_string(VOLUME_OUT, pool=pool).to_string() == VOLUME_OUT
    assert doc.pool_type == "dir" and doc.copy().pool_type == "dir"


def test_volume_accessors_and_setters() -> None:
    doc = VolumeDocument.from_string(VOLUME, pool_type="dir")
    assert (doc.name, doc.type, doc.key) == ("disk.qcow2", "file", None)
    assert doc.target_path == "/var/lib/libvirt/images/disk.qcow2"
    assert doc.format_type == "qcow2"
    assert doc.capacity == doc.allocation == 5 * 1024**3
    assert (doc.backing_path, doc.backing_format) == ("/var/lib/libvirt/images/base.img", "raw")
    assert doc.encryption_format is None and doc.physical is None
    doc.key = doc.target_path
    doc.allocation = 196608
    doc.physical = 200000
    doc.capacity = 1
    out = doc.to_string()
    assert out.index("<key>") < out.index("<capacity unit='bytes'>1</capacity>")
    assert "<allocation unit='bytes'>196608</allocation>\n  <physical unit='bytes'>200000</physical>" in out
    assert doc.key == "/var/lib/libvirt/images/disk.qcow2"
    doc.format_type = "raw"
    doc.target_path = "/elsewhere"
    assert (doc.format_type, doc.target_path) == ("raw", "/elsewhere")


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [("<capacity>10</capacity>", 10), ("<capacity unit='bytes'>10</capacity>", 10),
     ("<capacity unit='b'>10</capacity>", 10), ("<capacity unit='K'>1</capacity>", 1024),
     ("<capacity unit='KiB'>1</capacity>", 1024), ("<capacity unit='KB'>1</capacity>", 1000),
     ("<capacity unit='M'>2</capacity>", 2 * 1024**2), ("<capacity unit='MB'>2</capacity>", 2_000_000),
     ("<capacity unit='G'>1</capacity>", 1024**3), ("<capacity unit='GiB'>1</capacity>", 1024**3),
     ("<capacity unit='GB'>10</capacity>", 10**10), ("<capacity unit='T'>1</capacity>", 1024**4),
     ("<capacity unit='PiB'>1</capacity>", 1024**5), ("<capacity unit='E'>1</capacity>", 1024**6)],
)
def test_volume_units(capacity: str, expected: int) -> None:
    doc = VolumeDocument.from_string(f"<volume><name>v</name>{capacity}</volume>")
    assert doc.capacity == expected and doc.allocation == expected


def test_volume_formats_follow_the_pool() -> None:
    xml = "<volume><name>v</name><capacity>1</capacity><target><format type='none'/></target></volume>"
    disk = VolumeDocument.from_string(xml, pool_type="disk")
    assert disk.format_type == "none"
    logical = VolumeDocument.from_string(xml, pool_type="logical")
    assert logical.format_type is None and "<format" not in logical.to_string()
    with pytest.raises(VirtError) as info:
        VolumeDocument.from_string(xml, pool_type="dir")
    assert info.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert VolumeDocument.from_string("<volume><name>v</name><capacity>1</capacity></volume>",
                                      pool_type="rbd").format_type == "raw"


def test_volume_capacity_flags() -> None:
    xml = "<volume><name>v</name><backingStore><path>/b</path></backingStore></volume>"
    with pytest.raises(VirtError):
        VolumeDocument.from_string(xml)
    assert VolumeDocument.from_string(xml, no_capacity=True).capacity == 0
    assert VolumeDocument.from_string(xml, opt_capacity=True).capacity == 0
    with pytest.raises(VirtError):
        VolumeDocument.from_string("<volume><name>v</name></volume>", opt_capacity=True)


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<volume><capacity>1</capacity></volume>", ErrorNumber.XML_ERROR),
        ("<volume><name>v</name><capacity>-1</capacity></volume>", ErrorNumber.XML_ERROR),
        ("<volume><name>v</name><capacity>1x</capacity></volume>", ErrorNumber.XML_ERROR),
        ("<volume><name>v</name><capacity unit='Q'>1</capacity></volume>", ErrorNumber.INVALID_ARG),
        ("<volume><name>v</name><capacity unit='KiBB'>1</capacity></volume>", ErrorNumber.INVALID_ARG),
        ("<volume><name>v</name><capacity unit='E'>16</capacity></volume>", ErrorNumber.OVERFLOW),
        ("<volume type='tape'><name>v</name><capacity>1</capacity></volume>", ErrorNumber.CONFIG_UNSUPPORTED),
        ("<volume><name>v</name><capacity>1</capacity><target><format type='zip'/></target></volume>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<volume><name>v</name><capacity>1</capacity><target><compat>x</compat></target></volume>",
         ErrorNumber.XML_ERROR),
        ("<volume><name>v</name><capacity>1</capacity><target><features><turbo/></features></target></volume>",
         ErrorNumber.CONFIG_UNSUPPORTED),
        ("<volume><name>v</name><capacity>1</capacity><target><encryption format='rot13'/></target></volume>",
         ErrorNumber.XML_ERROR),
    ],
)
def test_invalid_volumes(xml: str, code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        VolumeDocument.from_string(xml, pool_type="dir")
    assert info.value.code == code, info.value.message


def test_unknown_pool_type_for_volume() -> None:
    with pytest.raises(VirtError) as info:
        VolumeDocument.from_string(VOLUME, pool_type="floppy")
    assert info.value.code == ErrorNumber.INTERNAL_ERROR


def test_helpers() -> None:
    assert scale_size(3, "KiB") == 3072
    assert scale_size(0, "E") == 0
    assert sanitize_path("///a//b/") == "/a/b"
    assert sanitize_path("//a//b") == "//a/b"
    assert sanitize_path("/") == "/"
    assert set(POOL_TYPES) >= {"dir", "fs", "netfs", "logical", "disk", "iscsi", "rbd", "gluster", "zfs"}


@pytest.mark.parametrize(
    ("data", "code"),
    [("<pool type='dir'", ErrorNumber.XML_ERROR), ("", ErrorNumber.XML_ERROR),
     ('<!DOCTYPE p [<!ENTITY e "x">]><pool type="dir"><name>&e;</name></pool>', ErrorNumber.XML_ERROR),
     ("<pool type='dir'>" + "<x/>" * (1 << 20) + "</pool>", ErrorNumber.XML_ERROR)],
    ids=["truncated", "empty", "entity", "oversize"],
)
def test_bad_input(data: str, code: ErrorNumber) -> None:
    for cls in (PoolDocument, VolumeDocument):
        with pytest.raises(VirtError) as info:
            cls.from_string(data)
        assert info.value.code == code
        assert info.value.domain == ErrorDomain.STORAGE


# --------------------------------------------------------------------------------- secrets

def test_secret_normalisation_and_accessors() -> None:
    doc = SecretDocument.from_string(SECRET_SEEDS[1])
    assert doc.to_string() == (
        "<secret ephemeral='no' private='no'>\n"
        "  <uuid>f52a81b2-424e-490c-823d-6bd4235bc572</uuid>\n"
        "  <usage type='ceph'>\n"
        "    <name>client.admin secret</name>\n"
        "  </usage>\n"
        "</secret>\n")
    assert (doc.usage_type, doc.usage_id, doc.ephemeral, doc.private) == ("ceph", "client.admin secret", False, False)
    gen = SecretDocument.from_string(SECRET_SEEDS[0])
    assert uuid.UUID(gen.uuid) and gen.private and gen.description == "d"
    assert gen.usage_id == "/var/lib/libvirt/images/a.img"


@pytest.mark.parametrize(
    "xml",
    ["<secret ephemeral='maybe'/>", "<secret><uuid>nope</uuid></secret>", "<secret><usage/></secret>",
     "<secret><usage type='floppy'/></secret>", "<secret><usage type='volume'/></secret>"],
)
def test_invalid_secrets(xml: str) -> None:
    with pytest.raises(VirtError) as info:
        SecretDocument.from_string(xml)
    assert info.value.domain == ErrorDomain.SECRET


# ------------------------------------------------------------------------------ properties

_VALUES = ["", "yes", "no", "0", "-1", "1", "0700", "9", "4294967296", "0x10", "abc", "G", "KiB", "bytes",
           "raw", "qcow2", "none", "dir", "logical", "/a//b/", "fc_host", "scsi_host", "chap", "ceph",
           "f52a81b2-424e-490c-823d-6bd4235bc572", " ", "&<>'\""]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(ALL_POOLS))
def test_pool_format_is_a_fixed_point(xml: str) -> None:
    parse_fixed_point(PoolDocument.from_string, xml)


def _volume_parser(pool_type: str) -> Callable[[str], VolumeDocument]:
    return lambda xml: VolumeDocument.from_string(xml, pool_type=pool_type)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(ALL_VOLS), st.sampled_from(POOL_TYPES))
def test_volume_format_is_a_fixed_point(xml: str, pool_type: str) -> None:
    parse_fixed_point(_volume_parser(pool_type), xml)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ALL_POOLS, _VALUES))
def test_mutated_pool_raises_only_virterror(xml: str) -> None:
    doc = parse_fixed_point(PoolDocument.from_string, xml)
    if doc is None:
        return
    _ = (doc.name, doc.uuid, doc.type, doc.target_path, doc.source_device_paths, doc.source_hosts, doc.capacity)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ALL_VOLS, _VALUES), st.sampled_from(POOL_TYPES))
def test_mutated_volume_raises_only_virterror(xml: str, pool_type: str) -> None:
    doc = parse_fixed_point(_volume_parser(pool_type), xml)
    if doc is None:
        return
    _ = (doc.name, doc.key, doc.target_path, doc.format_type, doc.capacity, doc.allocation, doc.backing_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ALL_SECRETS, _VALUES))
def test_mutated_secret_raises_only_virterror(xml: str) -> None:
    doc = parse_fixed_point(SecretDocument.from_string, xml)
    if doc is None:
        return
    _ = (doc.uuid, doc.usage_type, doc.usage_id)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_arbitrary_input_raises_only_virterror(data: str | bytes) -> None:
    raises_only_virterror((PoolDocument.from_string, VolumeDocument.from_string, SecretDocument.from_string), data)
