"""Shared fixtures for the cross-package tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from virt_corpus import conformance_dir


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = conformance_dir()
    if path is None:
        pytest.skip("requires the conformance corpus (../shared/conformance or $VIRT_CONFORMANCE_DIR)")
    return path
