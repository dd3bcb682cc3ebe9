"""Shared helpers of virt-driver-xen's tests: the xl/xm cases of the conformance corpus.

The corpus is ``$VIRT_CONFORMANCE_DIR`` or ``../shared/conformance`` beside the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from virt_xen.xlconfig import LIBXL_FIRMWARE_DIR

REPO = Path(__file__).resolve().parents[3]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or REPO.parent / "shared" / "conformance")
XEN_DIR = CORPUS / "xen-xl"
ABSENT = "requires the conformance corpus (../shared/conformance or $VIRT_CONFORMANCE_DIR)"
FORMAT_OF = {"xl": "xen-xl", "xm": "xen-xm"}


def cases(direction: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(folder, format, case) for every listed case of ``direction`` (``xml_to_cfg`` or
    ``cfg_to_xml``); empty when the corpus is absent."""
    manifest = XEN_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text())
    return [(folder, FORMAT_OF[folder], case) for folder in ("xl", "xm")
            for case in data[folder]["cases"] if case.get(direction)]


def read(rel: str) -> str:
    """A corpus file, with the build variables of the case filled in as virt_xen uses them."""
    return (XEN_DIR / rel).read_text().replace("/LIBXL_FIRMWARE_DIR", LIBXL_FIRMWARE_DIR)


def case_id(item: tuple[str, str, dict[str, Any]]) -> str:
    return f"{item[0]}-{item[2]['name']}"
