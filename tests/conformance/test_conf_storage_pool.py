"""libvirt's storagepoolxml2xml vectors: parse a pool, format it, compare byte for byte, and
validate the output against storagepool.rng."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from virt.xml._base import parse_xml
from virt.xml.storage import PoolDocument

AREA = "storage/pool"

_REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance")
_BASE = CORPUS / "storage"
_MANIFEST = _BASE / "manifest.json"
_ABSENT = f"conformance corpus not found at {CORPUS} (set VIRT_CONFORMANCE_DIR)"


def _cases() -> list[Any]:
    if not _MANIFEST.is_file():
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=_ABSENT))]
    cases = json.loads(_MANIFEST.read_text())["pool"]["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases]


@pytest.fixture(scope="module")
def schemas() -> Iterator[None]:
    """Validate against the corpus' copy of libvirt 9.0's schemas unless told otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("VIRT_SCHEMA_DIR") and (CORPUS / "schemas").is_dir():
            mp.setenv("VIRT_SCHEMA_DIR", str(CORPUS / "schemas"))
        yield


@pytest.mark.parametrize("case", _cases())
def test_storage_pool_xml2xml(case: dict[str, Any], schemas: None) -> None:
    doc = PoolDocument.from_string((_BASE / case["input"]).read_bytes())
    out = doc.to_string()
    assert out == (_BASE / case["output"]).read_text()
    assert PoolDocument.from_string(out).to_string() == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "storagepool")
