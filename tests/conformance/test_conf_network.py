"""libvirt's networkxml2xml vectors: parse, format (with VIR_NETWORK_XML_INACTIVE where the case
says so), compare byte for byte; must-fail inputs raise VirtError (with libvirt 9.0's code and
message where the oracle recorded them).  Every output also validates against network.rng."""

from __future__ import annotations

from typing import Any

import pytest
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import parse_xml
from virt.xml.network import NetworkDocument
from virt_corpus import CORPUS, manifest_cases, oracle_errors

AREA = "network/xml2xml"

_BASE = CORPUS / "network"


@pytest.mark.parametrize("case", manifest_cases("network", "xml2xml"))
def test_network_xml2xml(case: dict[str, Any]) -> None:
    text = (_BASE / case["input"]).read_bytes()
    if case["expect"] != "success":
        with pytest.raises(VirtError) as info:
            NetworkDocument.from_string(text)
        expected = oracle_errors(AREA).get(case["name"])
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
