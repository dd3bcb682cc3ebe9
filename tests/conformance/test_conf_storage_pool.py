"""libvirt's storagepoolxml2xml vectors: parse a pool, format it, compare byte for byte, and
validate the output against storagepool.rng."""

from __future__ import annotations

from typing import Any

import pytest
from virt.xml._base import parse_xml
from virt.xml.storage import PoolDocument
from virt_corpus import CORPUS, manifest_cases

AREA = "storage/pool"

_BASE = CORPUS / "storage"


@pytest.mark.parametrize("case", manifest_cases("storage", "pool"))
def test_storage_pool_xml2xml(case: dict[str, Any]) -> None:
    doc = PoolDocument.from_string((_BASE / case["input"]).read_bytes())
    out = doc.to_string()
    assert out == (_BASE / case["output"]).read_text()
    assert PoolDocument.from_string(out).to_string() == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "storagepool")
