"""libvirt's nodedevxml2xml vectors: parse a node device, format it, compare byte for byte and
validate against nodedev.rng; the ``*-invalid.xml`` inputs must be rejected."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from virt._errors import VirtError
from virt.xml._base import parse_xml
from virt.xml.nodedev import NodeDeviceDocument

AREA = "nodedev"

_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance")
_BASE = CORPUS / "nodedev"
_MANIFEST = _BASE / "manifest.json"
_ABSENT = f"conformance corpus not found at {CORPUS} (set VIRT_CONFORMANCE_DIR)"


def _cases() -> list[Any]:
    if not _MANIFEST.is_file():
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=_ABSENT))]
    cases = json.loads(_MANIFEST.read_text())["cases"]
    params = [pytest.param(case, id=case["name"]) for case in cases]
    for path in sorted((_BASE / "in").glob("*-invalid.xml")):
        name = path.stem
        params.append(pytest.param({"name": name, "input": f"in/{path.name}", "expect": "error"}, id=name))
    return params


@pytest.fixture(scope="module")
def schemas() -> Iterator[None]:
    """Validate against the corpus' copy of libvirt 9.0's schemas unless told otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("VIRT_SCHEMA_DIR") and (CORPUS / "schemas").is_dir():
            mp.setenv("VIRT_SCHEMA_DIR", str(CORPUS / "schemas"))
        yield


@pytest.mark.parametrize("case", _cases())
def test_nodedev_xml2xml(case: dict[str, Any], schemas: None) -> None:
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
