"""The driver conformance suite, unchanged, over every transport: OpenSSH's sshd, an
in-process asyncssh server, the local daemon's unix socket, and ``ext`` (a child's pipes).

Each class keeps one connection open for its whole run, so its tests share one SSH connection
and one helper (as connections to one host in one process do), instead of paying for a new
helper per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import virt
from remote_testlib import HELPER, InProcessServer, Sshd
from virt.testing import DriverConformance


class _Warm(DriverConformance):
    event_timeout = 10.0

    @pytest.fixture(autouse=True)
    def _keep_peer(self, uri: str) -> Iterator[None]:
        with virt.open(uri):
            yield


class TestConformanceOverSshd(_Warm):
    @pytest.fixture
    def uri(self, sshd: Sshd) -> str:
        return sshd.uri()


class TestConformanceOverAsyncsshServer(_Warm):
    @pytest.fixture
    def uri(self, asyncssh_server: InProcessServer) -> str:
        return asyncssh_server.uri()


class TestConformanceOverUnixDaemon(_Warm):
    @pytest.fixture
    def uri(self, virtd_socket: str) -> str:
        return f"test+unix:///default?socket={virtd_socket}"


class TestConformanceOverExt(_Warm):
    @pytest.fixture
    def uri(self) -> str:
        return f"test+ext:///default?command={HELPER}"


class TestConformanceOverOpenSSHClient(_Warm):
    """``client=openssh``: OpenSSH's own ``ssh`` carries the channel, as libvirt's +ssh does."""

    @pytest.fixture
    def uri(self, sshd: Sshd) -> str:
        return sshd.uri(client="openssh")
