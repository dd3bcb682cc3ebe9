"""Callers write their frames to the SSH channel themselves (``SSHLink.write_directly``) while
asyncssh re-keys the connection from its own tasks: every outgoing packet goes through one
lock, so the two never share a sequence number or a nonce.  A tiny ``rekey_bytes`` makes
asyncssh re-key every few calls, from sequential callers and from threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import virt
import virt_remote._ssh as ssh
from remote_testlib import Sshd


@pytest.fixture
def rekey_often(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A re-key every 16 KiB; the list counts the key exchanges the client starts."""
    import asyncssh.connection

    options = ssh._options
    started: list[int] = []
    kexinit = asyncssh.connection.SSHConnection._send_kexinit

    def small_rekey(uri: Any) -> dict[str, Any]:
        return {**options(uri), "rekey_bytes": 16 * 1024}

    def counted(self: Any) -> None:
        started.append(1)
        kexinit(self)

    monkeypatch.setattr(ssh, "_options", small_rekey)
    monkeypatch.setattr(asyncssh.connection.SSHConnection, "_send_kexinit", counted)
    return started


def test_calls_survive_rekeys_while_callers_write_directly(sshd: Sshd, rekey_often: list[int]) -> None:
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        for _ in range(600):  # ~100 KiB each way: a key exchange every few dozen calls
            assert conn.lookup_domain("test").name == "test"
        with ThreadPoolExecutor(16) as pool:
            names = list(pool.map(lambda _: conn.lookup_domain("test").name, range(1500)))
        assert names == ["test"] * 1500
        assert conn.lookup_domain("test").info().state == virt.DomainState.RUNNING
    assert len(rekey_often) > 5, "asyncssh did not re-key: the test tests nothing"
