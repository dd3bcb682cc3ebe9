"""libvirt's qemudomainsnapshotxml2xml vectors (domain/snapshot): parse, format, compare byte for byte.

The corpus has no manifest for this area, so the case table of libvirt 9.0's
``tests/qemudomainsnapshotxml2xmltest.c`` is written out here: which file is the input (``in/``
for a new snapshot, ``out/`` for a redefinition), the domain UUID the test passes to the
formatter, the mocked creation time, and the INTERNAL / REDEFINE / RUNNING flags.  Outputs must
also validate against domainsnapshot.rng.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from virt._errors import VirtError
from virt.xml.snapshot import SnapshotDocument
from virt_corpus import ABSENT, CORPUS, conformance_dir

AREA = "domain/snapshot"

_BASE = CORPUS / AREA

_U1 = "9d37b878-a7cc-9f9a-b78f-49b3abad25a8"
_U2 = "c7a5fdbd-edaf-9455-926a-d65c16db1809"


class Case(NamedTuple):
    id: str
    name: str
    source: str  # "in" (new snapshot) or "out" (redefinition of libvirt's own output)
    uuid: str | None = None
    creation_time: int = 0
    internal: bool = False
    running: bool = False
    fail: bool = False


CASES = [
    Case("all_parameters", "all_parameters", "out", _U1, internal=True),
    Case("disk_snapshot_redefine", "disk_snapshot_redefine", "out", _U2, internal=True),
    Case("full_domain", "full_domain", "out", _U2, internal=True),
    Case("noparent_nodescription_noactive", "noparent_nodescription_noactive", "out"),
    Case("noparent_nodescription", "noparent_nodescription", "out", internal=True),
    Case("noparent-redefine", "noparent", "out", _U1),
    Case("metadata", "metadata", "out", _U2),
    Case("external_vm_redefine", "external_vm_redefine", "out", _U2),
    Case("memory-snapshot-inactivedomain", "memory-snapshot-inactivedomain", "out",
         "14beef2c-8cae-4ea8-bf55-e48fe0cd4b73"),
    Case("empty", "empty", "in", _U1, 1386166249),
    Case("noparent", "noparent", "in", _U1, 1272917631, running=True),
    Case("external_vm", "external_vm", "in", None, 1555419243),
    Case("disk_snapshot", "disk_snapshot", "in", None, 1555419243),
    Case("disk_driver_name_null", "disk_driver_name_null", "in", None, 1555419243),
    Case("name_and_description", "name_and_description", "in"),
    Case("qcow2-metadata-cache", "qcow2-metadata-cache", "in", _U1, 1386166249),
    Case("disk-seclabel", "disk-seclabel", "in", _U1, 581484660),
    Case("disk-invalid", "disk-invalid", "in", fail=True),
    Case("disk-network-seclabel-invalid", "disk-network-seclabel-invalid", "in", fail=True),
]


@pytest.mark.skipif(conformance_dir() is None, reason=ABSENT)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_snapshot_xml2xml(case: Case) -> None:
    text = (_BASE / case.source / f"{case.name}.xml").read_text()
    redefine = case.source == "out"
    if case.fail:
        with pytest.raises(VirtError):
            SnapshotDocument.from_string(text, redefine=redefine)
        return
    doc = SnapshotDocument.from_string(text, redefine=redefine, internal=case.internal,
                                       creation_time=case.creation_time)
    if case.running:
        assert doc.state is None
        doc.state = "running"
    out = doc.to_string(domain_uuid=case.uuid, internal=case.internal)
    assert out == (_BASE / "out" / f"{case.name}.xml").read_text()
    # parsing our own output again (same mode) is a fixed point
    if not case.running:
        again = SnapshotDocument.from_string(out, redefine=redefine, internal=case.internal,
                                             creation_time=case.creation_time)
        assert again.to_string(domain_uuid=case.uuid, internal=case.internal) == out

    from virt.xml._base import parse_xml
    from virt.xml._schema import validate

    validate(parse_xml(out), "domainsnapshot")
