"""libvirt's genericxml2xml vectors: parse a domain (live), format it with SECURE, compare byte for
byte; must-fail inputs raise VirtError with libvirt's error code.  Every output we format must also
validate against libvirt's domain.rng (the schema check is part of each case)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from virt._errors import ErrorNumber, VirtError
from virt.xml.domain import DomainDocument

AREA = "domain/generic"

_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR", _REPO.parent / "shared" / "conformance"))
_BASE = CORPUS / AREA
_MANIFEST = _BASE / "manifest.json"

# The code libvirt 9.0 reports for each must-fail case (checked with its test driver, see
# oracle/libvirt-9.0.0-testdriver/results.json in the corpus).
EXPECTED_ERRORS: dict[str, ErrorNumber] = {
    "graphics-listen-back-compat-mismatch": ErrorNumber.CONFIG_UNSUPPORTED,
    "graphics-vnc-socket-attr-listen-socket-mismatch": ErrorNumber.CONFIG_UNSUPPORTED,
    "graphics-listen-network-invalid": ErrorNumber.XML_ERROR,
    "name-slash-fail": ErrorNumber.XML_ERROR,
    "chardev-tcp-missing-host": ErrorNumber.INTERNAL_ERROR,
    "chardev-tcp-missing-service": ErrorNumber.INTERNAL_ERROR,
    "chardev-tcp-multiple-source": ErrorNumber.XML_ERROR,
    "chardev-udp-missing-connect-service": ErrorNumber.INTERNAL_ERROR,
    "chardev-udp-multiple-source": ErrorNumber.XML_ERROR,
    "chardev-unix-smartcard-missing-path": ErrorNumber.INTERNAL_ERROR,
    "chardev-unix-redirdev-missing-path": ErrorNumber.INTERNAL_ERROR,
    "chardev-unix-rng-missing-path": ErrorNumber.INTERNAL_ERROR,
    "chardev-reconnect-missing-timeout": ErrorNumber.XML_ERROR,
    "chardev-reconnect-invalid-mode": ErrorNumber.INTERNAL_ERROR,
    "cachetune-colliding-allocs": ErrorNumber.XML_ERROR,
    "cachetune-colliding-tunes": ErrorNumber.XML_ERROR,
    "cachetune-colliding-types": ErrorNumber.XML_ERROR,
    "cachetune-colliding-monitor": ErrorNumber.INVALID_ARG,
    "memorytune-colliding-allocs": ErrorNumber.XML_ERROR,
    "memorytune-colliding-cachetune": ErrorNumber.XML_ERROR,
}


def _load_cases() -> list[dict[str, Any]]:
    if not _MANIFEST.is_file():
        return []
    data = json.loads(_MANIFEST.read_text())
    return list(data["cases"])


CASES = _load_cases()


def _oracle_messages() -> dict[str, str]:
    results = CORPUS / "oracle" / "libvirt-9.0.0-testdriver" / "results.json"
    if not results.is_file():
        return {}
    data = json.loads(results.read_text())
    return {
        r["name"]: r["error"]["message"]
        for r in data["results"]
        if r.get("area") == AREA and r.get("error")
    }


@pytest.fixture(scope="module")
def oracle_messages() -> dict[str, str]:
    return _oracle_messages()


def _schema_available() -> bool:
    try:
        from virt.xml._schema import schema_dir

        schema_dir()
    except VirtError:
        return False
    return True


@pytest.mark.skipif(not CASES, reason=f"conformance corpus not found at {CORPUS} (set VIRT_CONFORMANCE_DIR)")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_generic_xml2xml(case: dict[str, Any], oracle_messages: dict[str, str]) -> None:
    text = (_BASE / case["input"]).read_bytes()
    if case["expect"] != "success":
        with pytest.raises(VirtError) as info:
            DomainDocument.from_string(text)
        expected = EXPECTED_ERRORS.get(case["name"])
        if expected is not None:
            assert info.value.code == expected, info.value.message
        message = oracle_messages.get(case["name"])
        if message is not None:
            assert info.value.message == message
        return
    doc = DomainDocument.from_string(text)
    out = doc.to_string(secure=True)
    assert out == (_BASE / case["output"]).read_text()
    # formatting again is a fixed point
    assert DomainDocument.from_string(out).to_string(secure=True) == out
    if not _schema_available():
        pytest.skip("libvirt's RelaxNG schemas are not installed")
    from virt.xml._schema import validate

    validate(DomainDocument.from_string(out).root, "domain")
