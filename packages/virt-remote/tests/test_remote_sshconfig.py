"""What OpenSSH users rely on: the agent, ``~/.ssh/config`` and ``~/.ssh/known_hosts``.  HOME
points at a temporary directory, so the machine's own ~/.ssh is never read."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import virt
from remote_testlib import HELPER, USER, Keys, Sshd
from virt import ErrorNumber, VirtError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def agent(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent is not installed (apt-get install openssh-client)")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(keys.client_key)], env=env, check=True, stdin=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(5)


def test_agent_authenticates(sshd: Sshd, keys: Keys, home: Path, agent: str) -> None:
    uri = f"test+ssh://{USER}@127.0.0.1:{sshd.port}/default?known_hosts={keys.known_hosts}&command={HELPER}"
    with virt.open(uri) as conn:
        assert conn.type() == "TEST"


def test_without_agent_or_key_authentication_fails(sshd: Sshd, keys: Keys, home: Path) -> None:
    uri = f"test+ssh://{USER}@127.0.0.1:{sshd.port}/default?known_hosts={keys.known_hosts}&command={HELPER}"
    with pytest.raises(VirtError) as info:
        virt.open(uri)
    assert info.value.code == ErrorNumber.AUTH_FAILED


def test_openssh_config_and_known_hosts_in_home(sshd: Sshd, keys: Keys, home: Path) -> None:
    (home / ".ssh" / "config").write_text(
        f"Host lab-node\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {USER}\n  IdentityFile {keys.client_key}\n")
    shutil.copy(keys.known_hosts, home / ".ssh" / "known_hosts")
    with virt.open(f"test+ssh://lab-node/default?command={HELPER}") as conn:
        assert conn.lookup_domain("test").name == "test"
