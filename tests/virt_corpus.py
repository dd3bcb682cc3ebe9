"""The conformance corpus for tests: where it is, its manifests and libvirt's own verdicts.

A plain module (not conftest) so test files in any folder can import it by this unique name.
The corpus is ``$VIRT_CONFORMANCE_DIR`` or ``../shared/conformance`` beside the repository.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ABSENT = "requires the conformance corpus (../shared/conformance or $VIRT_CONFORMANCE_DIR)"


#: Where the corpus is expected (it may be absent: see :func:`conformance_dir`).
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or REPO.parent / "shared" / "conformance")


def conformance_dir() -> Path | None:
    """The corpus, or None when it is absent."""
    return CORPUS if CORPUS.is_dir() else None


def manifest_cases(folder: str, *keys: str) -> list[Any]:
    """One pytest param per case of ``folder/manifest.json`` (under ``keys``), id = case name;
    a single skipped param when the corpus is absent."""
    if conformance_dir() is None:
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=ABSENT))]
    data = json.loads((CORPUS / folder / "manifest.json").read_text())
    for key in keys:
        data = data[key]
    return [pytest.param(case, id=case["name"]) for case in data["cases"]]


@cache
def _oracle_results() -> list[dict[str, Any]]:
    if conformance_dir() is None:
        return []
    path = CORPUS / "oracle" / "libvirt-9.0.0-testdriver" / "results.json"
    results: list[dict[str, Any]] = json.loads(path.read_text())["results"]
    return results


def oracle_errors(area: str) -> dict[str, dict[str, Any]]:
    """What libvirt 9.0 reported for each rejected case of ``area``: code, domain, message."""
    return {r["name"]: r["error"] for r in _oracle_results() if r.get("area") == area and r.get("error")}


#: The test driver's golden nodes: what libvirt 9.0 showed for test:///default and testnode.xml.
NODES = ("default", "testnode")


@cache
def golden_api(node: str) -> dict[str, Any]:
    """``testdriver/golden/<node>/api.json``, read once per session."""
    data: dict[str, Any] = json.loads((CORPUS / "testdriver/golden" / node / "api.json").read_text())
    return data


def node_uri(node: str) -> str:
    """The URI that opens golden ``node`` on our test driver."""
    if node == "default":
        return "test:///default"
    return "test://" + str(CORPUS / "testdriver/libvirt-examples/testnode.xml")
