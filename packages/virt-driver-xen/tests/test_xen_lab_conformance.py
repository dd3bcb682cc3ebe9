"""The core's driver conformance suite against ``xen:///system`` on a real Xen (the lab)."""

from __future__ import annotations

import pytest
from virt.testing import DomainXML, DriverConformance
from xenlab_testlib import pv_domain_xml, xenlab


class TestXenLabConformance(DriverConformance):
    event_timeout = 10.0

    @pytest.fixture
    def uri(self, xen_lab: xenlab.XenLab) -> str:
        return "xen:///system"

    @pytest.fixture
    def domain_xml(self) -> DomainXML:
        return pv_domain_xml


class TestXenLabRemoteConformance(DriverConformance):
    """The same, with the driver inside dom0 behind virt's remote plugin (``xen+ext://``)."""

    event_timeout = 10.0

    @pytest.fixture
    def uri(self, xen_remote_uri: str) -> str:
        return xen_remote_uri

    @pytest.fixture
    def domain_xml(self) -> DomainXML:
        return pv_domain_xml
