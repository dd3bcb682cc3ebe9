"""The core's driver conformance suite, against real containers (busybox, lxc:///embed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxc_testlib import domain_xml as make_xml
from virt.testing import DomainXML, DriverConformance


class TestLxcConformance(DriverConformance):
    event_timeout = 10.0

    @pytest.fixture
    def uri(self, root: Path) -> str:
        return f"lxc:///embed?root={root}"

    @pytest.fixture
    def domain_xml(self, rootfs: Path) -> DomainXML:
        return lambda name, uuid: make_xml(name, rootfs, uuid=uuid)
