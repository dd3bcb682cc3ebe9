"""Fixtures of virt-remote's tests: keys, a private OpenSSH sshd and an in-process asyncssh
server, all on 127.0.0.1 (see remote_testlib)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote_testlib import InProcessServer, Keys, Sshd


@pytest.fixture(autouse=True)
def _no_machine_ssh_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients read neither this machine's ~/.ssh nor /etc/ssh/ssh_config, nor its agent:
    HOME is an empty directory, OpenSSH's ssh gets ``-F /dev/null``."""
    home = tmp_path_factory.getbasetemp() / "client-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("VIRT_SSH_CONFIG", "/dev/null")


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("ssh-keys"))


@pytest.fixture(scope="session")
def sshd(keys: Keys) -> Iterator[Sshd]:
    server = Sshd(keys).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def asyncssh_server(keys: Keys) -> Iterator[InProcessServer]:
    server = InProcessServer(keys).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def virtd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A virtd started by hand on a private socket for the whole run."""
    from remote_testlib import Virtd

    daemon = Virtd(tmp_path_factory.mktemp("virtd") / "virtd-sock").start()
    try:
        yield str(daemon.socket)
    finally:
        daemon.stop()
