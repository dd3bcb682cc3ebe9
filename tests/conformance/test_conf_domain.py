"""libvirt's genericxml2xml vectors: parse a domain (live), format it with SECURE, compare byte for
byte; must-fail inputs raise VirtError with libvirt's error code.  Every output we format must also
validate against libvirt's domain.rng (the schema check is part of each case)."""

from __future__ import annotations

from typing import Any

import pytest
from virt._errors import ErrorNumber, VirtError
from virt.xml.domain import DomainDocument
from virt_corpus import CORPUS, manifest_cases, oracle_errors

AREA = "domain/generic"

_BASE = CORPUS / AREA
_EXPECTED_ERRORS = oracle_errors(AREA)


@pytest.mark.parametrize("case", manifest_cases(AREA))
def test_generic_xml2xml(case: dict[str, Any]) -> None:
    text = (_BASE / case["input"]).read_bytes()
    if case["expect"] != "success":
        with pytest.raises(VirtError) as info:
            DomainDocument.from_string(text)
        # libvirt 9.0 rejects every must-fail case; we say what it says, with its code.
        expected = _EXPECTED_ERRORS[case["name"]]
        assert info.value.code == ErrorNumber(expected["code"]), info.value.message
        assert info.value.message == expected["message"]
        return
    doc = DomainDocument.from_string(text)
    out = doc.to_string(secure=True)
    assert out == (_BASE / case["output"]).read_text()
    # formatting again is a fixed point
    assert DomainDocument.from_string(out).to_string(secure=True) == out
    from virt.xml._schema import validate

    validate(DomainDocument.from_string(out).root, "domain")
