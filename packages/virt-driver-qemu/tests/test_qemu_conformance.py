"""The core's driver conformance suite, against real QEMU processes (TCG, no devices)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from virt.testing import DomainXML, DriverConformance, generic_domain_xml

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="requires qemu-system-x86_64 (Debian package qemu-system-x86)")


class TestQemuConformance(DriverConformance):
    event_timeout = 10.0

    @pytest.fixture
    def uri(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        root = tmp_path_factory.mktemp("qemu-embed")
        yield f"qemu:///embed?root={root}"
        _kill_leftovers(root)

    @pytest.fixture
    def domain_xml(self) -> DomainXML:
        return generic_domain_xml("qemu")


def _kill_leftovers(root: Path) -> None:
    """Nothing a test started may outlive it."""
    import json
    import os
    import signal

    for status in (root / "run" / "qemu").glob("*.json"):
        try:
            pid = int(json.loads(status.read_text()).get("pid", 0))
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
