"""Shared fixtures for the cross-package tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def conformance_dir() -> Path | None:
    explicit = os.environ.get("VIRT_CONFORMANCE_DIR")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "conformance"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = conformance_dir()
    if path is None:
        pytest.skip("the conformance corpus (../shared/conformance or $VIRT_CONFORMANCE_DIR) is absent")
    return path
