"""The core's driver conformance suite against ``xen:///system`` on a real Xen (the lab).

Twice: with the driver here (``xl`` forwarded into dom0), and with the driver inside dom0 behind
virt's remote plugin over ``xen+ssh://`` (asyncssh to OpenSSH's sshd there).  The ``xen+ext://``
way reaches the same helper in dom0 and runs the lifecycle tests; a third conformance run
through it would add ~10 minutes (every test opens a connection, and each connection starts
the helper's Python in dom0 under TCG) and prove nothing the ssh run does not.
"""

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


class TestXenLabSshConformance(DriverConformance):
    """The same with the driver inside dom0, over ``xen+ssh://``: asyncssh to OpenSSH's sshd in
    dom0, which runs virt's remote helper there."""

    event_timeout = 10.0

    @pytest.fixture
    def uri(self, xen_ssh_uri: str) -> str:
        return xen_ssh_uri

    @pytest.fixture
    def domain_xml(self) -> DomainXML:
        return pv_domain_xml
