"""The built-in test driver keeps the driver contract (virt.testing.DriverConformance)."""

from __future__ import annotations

import pytest
from virt.testing import DriverConformance


class TestTestDriver(DriverConformance):
    @pytest.fixture
    def uri(self) -> str:
        return "test:///default"
