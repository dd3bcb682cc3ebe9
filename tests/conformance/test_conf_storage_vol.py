"""libvirt's storagevolxml2xml vectors: parse a volume in the context of its pool (the pool type
decides the default format), format it, compare byte for byte, validate against storagevol.rng."""

from __future__ import annotations

from typing import Any

import pytest
from virt.xml._base import parse_xml
from virt.xml.storage import PoolDocument, VolumeDocument
from virt_corpus import CORPUS, manifest_cases

AREA = "storage/vol"

_BASE = CORPUS / "storage"

# libvirt's VIR_VOL_XML_PARSE_* flags -> VolumeDocument.from_string options
_FLAGS = {"VIR_VOL_XML_PARSE_NO_CAPACITY": "no_capacity", "VIR_VOL_XML_PARSE_OPT_CAPACITY": "opt_capacity"}


def _options(case: dict[str, Any]) -> dict[str, bool]:
    flags = [f.strip() for f in case.get("parse_flags", "0").split("|") if f.strip() not in ("", "0")]
    return {_FLAGS[f]: True for f in flags}


@pytest.mark.parametrize("case", manifest_cases("storage", "vol"))
def test_storage_vol_xml2xml(case: dict[str, Any]) -> None:
    pool = PoolDocument.from_string((_BASE / case["pool"]).read_bytes())
    options = _options(case)
    doc = VolumeDocument.from_string((_BASE / case["input"]).read_bytes(), pool=pool, **options)
    out = doc.to_string()
    assert out == (_BASE / case["output"]).read_text()
    assert VolumeDocument.from_string(out, pool=pool, **options).to_string() == out

    from virt.xml._schema import validate

    validate(parse_xml(out), "storagevol")
