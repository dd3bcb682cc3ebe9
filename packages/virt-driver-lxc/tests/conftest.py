"""Fixtures of the LXC driver's tests: a private ``lxc:///embed`` root per test with a busybox
rootfs inside it (embed URIs mount only from below their root)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lxc_testlib


@pytest.fixture(scope="session")
def busybox() -> Iterator[Path]:
    yield lxc_testlib.busybox_or_skip()
    lxc_testlib.remove_empty_parents()


@pytest.fixture
def root(tmp_path: Path, busybox: Path) -> Iterator[Path]:
    top = tmp_path / "embed"
    top.mkdir()
    yield top
    lxc_testlib.kill_leftovers(top)


@pytest.fixture
def uri(root: Path) -> str:
    return f"lxc:///embed?root={root}"


@pytest.fixture
def share(root: Path) -> Path:
    path = root / "share"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def rootfs(root: Path, busybox: Path) -> Path:
    return lxc_testlib.make_rootfs(root / "rootfs", busybox, lxc_testlib.COUNTER_INIT)
