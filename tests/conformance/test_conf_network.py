"""libvirt's networkxml2xml vectors: parse, format (with VIR_NETWORK_XML_INACTIVE where the case
says so), compare byte for byte; must-fail inputs raise VirtError (with libvirt 9.0's code and
message where the oracle recorded them).  Every output also validates against network.rng."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import parse_xml
from virt.xml.network import NetworkDocument

AREA = "network/xml2xml"

_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance")
_BASE = CORPUS / "network"
_MANIFEST = _BASE / "manifest.json"
_ABSENT = f"conformance corpus not found at {CORPUS} (set VIRT_CONFORMANCE_DIR)"


def _cases() -> list[Any]:
    if not _MANIFEST.is_file():
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=_ABSENT))]
    cases = json.loads(_MANIFEST.read_text())["xml2xml"]["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases]


def _oracle() -> dict[str, dict[str, Any]]:
    path = CORPUS / "oracle" / "libvirt-9.0.0-testdriver" / "results.json"
    if not path.is_file():
        return {}
    results = json.loads(path.read_text())["results"]
    return {r["name"]: r["error"] for r in results if r.get("area") == AREA and r.get("error")}


@pytest.fixture(scope="module")
def oracle() -> dict[str, dict[str, Any]]:
    return _oracle()


@pytest.fixture(scope="module")
def schemas() -> Iterator[None]:
    """Validate against the corpus' copy of libvirt 9.0's schemas unless told otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("VIRT_SCHEMA_DIR") and (CORPUS / "schemas").is_dir():
            mp.setenv("VIRT_SCHEMA_DIR", str(CORPUS / "schemas"))
        yield


@pytest.mark.parametrize("case", _cases())
def test_network_xml2xml(case: dict[str, Any], oracle: dict[str, dict[str, Any]], schemas: None) -> None:
    text = (_BASE / case["input"]).read_bytes()
    if case["expect"] != "success":
        with pytest.raises(VirtError) as info:
            NetworkDocument.from_string(text)
        expected = oracle.get(case["name"])
        if expected is not None:
            assert info.value.code == ErrorNumber(expected["code"])
            assert info.value.domain == ErrorDomain(expected["domain"])
            assert info.value.message == expected["message"]
        return
    inactive = case.get("format_flags", "0") == "VIR_NETWORK_XML_INACTIVE"
    out = NetworkDocument.from_string(text).to_string(inactive=inactive)
    assert out == (_BASE / case["output"]).read_text()
    assert NetworkDocument.from_string(out).to_string(inactive=inactive) == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "network")
