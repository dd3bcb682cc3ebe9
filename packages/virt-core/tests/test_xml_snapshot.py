"""SnapshotDocument: libvirt's two parse modes, accessors, formatting, errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.domain import DomainDocument
from virt.xml.snapshot import SnapshotDocument

NEW = """<domainsnapshot>
  <name>before-upgrade</name>
  <description>pre-upgrade state</description>
  <state>running</state>
  <parent><name>ignored</name></parent>
  <memory file='/var/lib/libvirt/qemu/snap.mem'/>
  <disks>
    <disk name='vda' snapshot='external'>
      <source file='/var/lib/libvirt/images/vda.snap'/>
    </disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
</domainsnapshot>
"""

REDEFINE = """<domainsnapshot>
  <name>s1</name>
  <state>shutoff</state>
  <parent>
    <name>s0</name>
  </parent>
  <creationTime>1700000000</creationTime>
  <memory snapshot='no'/>
  <domain type='kvm'>
    <name>vm</name>
    <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
    <memory unit='KiB'>1048576</memory>
    <currentMemory unit='KiB'>1048576</currentMemory>
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
  <active>1</active>
</domainsnapshot>
"""


def test_new_snapshot_keeps_only_the_users_part() -> None:
    doc = SnapshotDocument.from_string(NEW, creation_time=1234)
    assert doc.name == "before-upgrade"
    assert doc.description == "pre-upgrade state"
    assert doc.state is None and doc.parent is None
    assert doc.creation_time == 1234
    assert doc.memory_snapshot == "external"
    assert doc.to_string(domain_uuid="c7a5fdbd-edaf-9455-926a-d65c16db1809") == """<domainsnapshot>
  <name>before-upgrade</name>
  <description>pre-upgrade state</description>
  <creationTime>1234</creationTime>
  <memory snapshot='external' file='/var/lib/libvirt/qemu/snap.mem'/>
  <disks>
    <disk name='vda' snapshot='external' type='file'>
      <source file='/var/lib/libvirt/images/vda.snap'/>
    </disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
  <domain>
    <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  </domain>
</domainsnapshot>
"""


def test_name_defaults_to_creation_time() -> None:
    doc = SnapshotDocument.from_string("<domainsnapshot/>", creation_time=42)
    assert doc.name == "42"
    assert doc.to_string() == (
        "<domainsnapshot>\n  <name>42</name>\n  <creationTime>42</creationTime>\n</domainsnapshot>\n")
    now = SnapshotDocument.from_string("<domainsnapshot/>")
    assert now.creation_time is not None and now.creation_time > 1_600_000_000


def test_driver_fills_state_parent_and_domain() -> None:
    doc = SnapshotDocument.from_string(NEW, creation_time=7)
    doc.state = "running"
    doc.parent = "s0"
    doc.current = True
    dom = DomainDocument.from_string(REDEFINE.split("<domain type='kvm'>")[1].join(["<domain type='kvm'>", ""])
                                     .split("</domain>")[0] + "</domain>")
    doc.set_domain(dom)
    out = doc.to_string(internal=True)
    assert out.index("<state>running</state>") < out.index("<parent>") < out.index("<creationTime>")
    assert "  <domain type='kvm'>\n    <name>vm</name>" in out
    assert out.endswith("  </domain>\n  <active>1</active>\n</domainsnapshot>\n")
    again = SnapshotDocument.from_string(out, redefine=True, internal=True)
    assert again.to_string(internal=True) == out
    assert again.domain() is not None and again.domain().name == "vm"  # type: ignore[union-attr]
    assert again.current


def test_redefine_round_trip_and_internal_flag() -> None:
    doc = SnapshotDocument.from_string(REDEFINE, redefine=True, internal=True)
    assert (doc.name, doc.state, doc.parent, doc.creation_time) == ("s1", "shutoff", "s0", 1700000000)
    assert doc.current
    assert doc.to_string(internal=True) == REDEFINE
    # without INTERNAL, <active> is neither read nor written
    plain = SnapshotDocument.from_string(REDEFINE, redefine=True)
    assert "<active>" not in plain.to_string()
    assert "<active>0</active>" in plain.to_string(internal=True)


@pytest.mark.parametrize(
    ("text", "options", "code"),
    [
        ("<domainsnapshot><state>running</state><creationTime>1</creationTime></domainsnapshot>",
         {"redefine": True}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><name>a</name><creationTime>1</creationTime></domainsnapshot>",
         {"redefine": True}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><name>a</name><state>running</state></domainsnapshot>",
         {"redefine": True}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><name>a</name><state>dancing</state><creationTime>1</creationTime></domainsnapshot>",
         {"redefine": True}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><memory snapshot='sometimes'/></domainsnapshot>", {}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><memory snapshot='internal' file='/x'/></domainsnapshot>", {}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><disks><disk snapshot='no'/></disks></domainsnapshot>", {}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot><disks><disk name='vda' snapshot='maybe'/></disks></domainsnapshot>", {},
         ErrorNumber.XML_ERROR),
        ("<domain/>", {}, ErrorNumber.XML_ERROR),
        ("<domainsnapshot>", {}, ErrorNumber.XML_ERROR),
    ],
    ids=["no-name", "no-state", "no-time", "bad-state", "bad-memory", "memory-file-internal", "disk-no-name",
         "disk-bad-mode", "wrong-root", "malformed"],
)
def test_errors(text: str, options: dict[str, bool], code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as info:
        SnapshotDocument.from_string(text, **options)
    assert info.value.code is code, info.value.message
    assert info.value.domain in (ErrorDomain.DOMAIN_SNAPSHOT, ErrorDomain.XML, ErrorDomain.DOMAIN)


def test_accessor_validation() -> None:
    doc = SnapshotDocument.from_string(NEW, creation_time=1)
    with pytest.raises(VirtError):
        doc.state = "dancing"
    with pytest.raises(VirtError):
        doc.name = ""
    doc.description = None
    assert doc.description is None and "<description>" not in doc.to_string()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.sampled_from([NEW, REDEFINE]).flatmap(
                     lambda s: st.integers(0, len(s) - 1).map(lambda i: s[:i] + s[i + 1:]))),
       st.booleans())
def test_only_virterror_escapes(data: str | bytes, redefine: bool) -> None:
    try:
        doc = SnapshotDocument.from_string(data, redefine=redefine, internal=True, creation_time=5)
    except VirtError:
        return
    out = doc.to_string(internal=True)
    assert SnapshotDocument.from_string(out, redefine=redefine, internal=True, creation_time=5).to_string(
        internal=True) == out
