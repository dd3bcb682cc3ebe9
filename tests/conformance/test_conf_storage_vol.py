"""libvirt's storagevolxml2xml vectors: parse a volume in the context of its pool (the pool type
decides the default format), format it, compare byte for byte, validate against storagevol.rng."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from virt.xml._base import parse_xml
from virt.xml.storage import PoolDocument, VolumeDocument

AREA = "storage/vol"

_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance")
_BASE = CORPUS / "storage"
_MANIFEST = _BASE / "manifest.json"
_ABSENT = f"conformance corpus not found at {CORPUS} (set VIRT_CONFORMANCE_DIR)"

# libvirt's VIR_VOL_XML_PARSE_* flags -> VolumeDocument.from_string options
_FLAGS = {"VIR_VOL_XML_PARSE_NO_CAPACITY": "no_capacity", "VIR_VOL_XML_PARSE_OPT_CAPACITY": "opt_capacity"}


def _cases() -> list[Any]:
    if not _MANIFEST.is_file():
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=_ABSENT))]
    cases = json.loads(_MANIFEST.read_text())["vol"]["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases]


@pytest.fixture(scope="module")
def schemas() -> Iterator[None]:
    """Validate against the corpus' copy of libvirt 9.0's schemas unless told otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("VIRT_SCHEMA_DIR") and (CORPUS / "schemas").is_dir():
            mp.setenv("VIRT_SCHEMA_DIR", str(CORPUS / "schemas"))
        yield


def _options(case: dict[str, Any]) -> dict[str, bool]:
    flags = [f.strip() for f in case.get("parse_flags", "0").split("|") if f.strip() not in ("", "0")]
    return {_FLAGS[f]: True for f in flags}


@pytest.mark.parametrize("case", _cases())
def test_storage_vol_xml2xml(case: dict[str, Any], schemas: None) -> None:
    pool = PoolDocument.from_string((_BASE / case["pool"]).read_bytes())
    options = _options(case)
    doc = VolumeDocument.from_string((_BASE / case["input"]).read_bytes(), pool=pool, **options)
    out = doc.to_string()
    assert out == (_BASE / case["output"]).read_text()
    assert VolumeDocument.from_string(out, pool=pool, **options).to_string() == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "storagevol")
