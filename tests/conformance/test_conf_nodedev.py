"""libvirt's nodedevxml2xml vectors: parse a node device, format it, compare byte for byte and
validate against nodedev.rng; the ``*-invalid.xml`` inputs must be rejected."""

from __future__ import annotations

from typing import Any

import pytest
from virt._errors import VirtError
from virt.xml._base import parse_xml
from virt.xml.nodedev import NodeDeviceDocument
from virt_corpus import CORPUS, conformance_dir, manifest_cases

AREA = "nodedev"

_BASE = CORPUS / "nodedev"


def _cases() -> list[Any]:
    params = manifest_cases("nodedev")
    if conformance_dir() is None:
        return params
    # libvirt's schema test also rejects these inputs; they are not in the manifest.
    for path in sorted((_BASE / "in").glob("*-invalid.xml")):
        name = path.stem
        params.append(pytest.param({"name": name, "input": f"in/{path.name}", "expect": "error"}, id=name))
    return params


@pytest.mark.parametrize("case", _cases())
def test_nodedev_xml2xml(case: dict[str, Any]) -> None:
    text = (_BASE / case["input"]).read_bytes()
    if case.get("expect") == "error":
        with pytest.raises(VirtError):
            NodeDeviceDocument.from_string(text)
        return
    out = NodeDeviceDocument.from_string(text).to_string()
    assert out == (_BASE / case["output"]).read_text()
    assert NodeDeviceDocument.from_string(out).to_string() == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "nodedev")
