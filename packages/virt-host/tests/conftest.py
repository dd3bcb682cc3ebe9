"""Fixtures: the ``hosttest`` driver with virt-host's storage provider, embed roots in tmp,
and loop devices (detached in teardown, whatever happened)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import virt
from virt.testing import isolated_plugins

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hosttest_driver


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VIRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with isolated_plugins():
        hosttest_driver.register()
        yield


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def uri(root: Path) -> str:
    return f"hosttest:///embed?root={root}"


@pytest.fixture
def conn(plugins: None, uri: str) -> Iterator[virt.Connection]:
    with virt.open(uri) as connection:
        yield connection


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """``make(size_mib)`` -> a fresh loop device on a sparse file; all detached afterwards."""
    made: list[str] = []

    def make(size_mib: int = 64) -> str:
        backing = tmp_path / f"disk{len(made)}.img"
        with open(backing, "wb") as fh:
            fh.truncate(size_mib << 20)
        out = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True, capture_output=True,
                             text=True)
        device = out.stdout.strip()
        made.append(device)
        return device

    yield make
    for device in made:
        _release(device)


def _release(device: str) -> None:
    """Unmount whatever is mounted from ``device``, remove an LVM signature, detach it."""
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        mounts = [line.split()[4] for line in fh if f" {device} " in line.split(" - ", 1)[-1] + " "]
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    if shutil.which("vgs"):
        out = subprocess.run(["pvs", "--noheadings", "-o", "vg_name", device], capture_output=True, text=True,
                             env=env, check=False)
        vg = out.stdout.strip()
        if out.returncode == 0 and vg:
            subprocess.run(["vgremove", "-f", vg], capture_output=True, env=env, check=False)
        if out.returncode == 0:
            subprocess.run(["pvremove", "-ff", "-y", device], capture_output=True, env=env, check=False)
    subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
