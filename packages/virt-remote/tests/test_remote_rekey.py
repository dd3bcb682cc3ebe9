"""Callers write their frames to the SSH channel themselves (``SSHLink.write_directly``) while
asyncssh re-keys the connection from its own tasks: every outgoing packet goes through one
lock, so the two never share a sequence number or a nonce.  A tiny ``rekey_bytes`` makes
asyncssh re-key every few calls, from sequential callers and from threads at once.  Also the
link's other adjustments of asyncssh: no IGNORE packets, quick ACKs, and its import."""

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


def test_no_ignore_packet_before_each_data_packet(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncssh puts an empty IGNORE packet before every data packet (a CBC countermeasure);
    with the ciphers negotiated here (AES-GCM, else ChaCha20 or CTR) the client sends none."""
    import asyncssh.connection

    sent: list[int] = []
    real = asyncssh.connection.SSHConnection.send_packet

    def counted(self: Any, pkttype: int, *args: Any, **kwargs: Any) -> None:
        sent.append(pkttype)
        real(self, pkttype, *args, **kwargs)

    monkeypatch.setattr(asyncssh.connection.SSHConnection, "send_packet", counted)
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        conn.lookup_domain("test")
        sent.clear()
        for _ in range(50):
            conn.lookup_domain("test")
        data = sent.count(94)  # SSH_MSG_CHANNEL_DATA
        ignores = sent.count(2)  # SSH_MSG_IGNORE
    assert data >= 50 and ignores == 0, f"{ignores} IGNORE packets for {data} data packets"


def test_ignore_packets_are_kept_for_cbc() -> None:
    class Conn:
        def __init__(self, cipher: str | None) -> None:
            self.cipher = cipher

        def get_extra_info(self, name: str) -> str | None:
            return self.cipher if name == "send_cipher" else None

    assert ssh._cbc(Conn("aes128-cbc")) and ssh._cbc(Conn(None))
    assert not ssh._cbc(Conn("aes128-gcm@openssh.com")) and not ssh._cbc(Conn("chacha20-poly1305@openssh.com"))


def test_quick_acks_on_tcp_only() -> None:
    """What arrives on the SSH connection's TCP socket is acknowledged at once (sshd's second
    packet of a pair would otherwise wait for Linux's delayed ACK, 40 ms); a proxy command's
    socket pair is left alone."""
    import socket

    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock
            self.got: list[bytes] = []

        def get_extra_info(self, name: str) -> Any:
            return self.sock if name == "socket" else None

        def data_received(self, data: bytes, datatype: Any = None) -> None:
            self.got.append(data)

    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        far, _ = server.accept()
        with client, far:
            conn = Conn(client)
            ssh._quick_acks(conn)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            conn.data_received(b"x")
            assert conn.got == [b"x"]
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = Conn(ours)
        plain = conn.data_received
        ssh._quick_acks(conn)
        assert conn.data_received == plain


def test_asyncssh_imported_without_fruitless_searches_offers_the_same() -> None:
    """virt_remote imports asyncssh without searching for liboqs beyond the ldconfig cache and
    without importing cryptography.x509 when pyOpenSSL is absent; asyncssh offers the same
    algorithms and the same certificate support as after a plain import."""
    import importlib.util
    import json
    import subprocess
    import sys

    probe = ("import json, sys, ctypes.util\n"
             "before = ctypes.util.find_library\n"
             "{imp}\n"
             "import asyncssh, asyncssh.public_key as pk, asyncssh.kex as kex, asyncssh.encryption as enc\n"
             "print(json.dumps({{'kex': [a.decode() for a in kex.get_kex_algs()],\n"
             "  'enc': [a.decode() for a in enc.get_encryption_algs()],\n"
             "  'x509': pk._x509_available, 'x509_module': 'cryptography.x509' in sys.modules,\n"
             "  'restored': ctypes.util.find_library is before,\n"
             "  'stub_left': sys.modules.get('asyncssh.crypto.x509', 0) is None}}))\n")
    plain, ours = (json.loads(subprocess.run([sys.executable, "-c", probe.format(imp=imp)], check=True,
                                             capture_output=True, text=True).stdout)
                   for imp in ("import asyncssh", "import virt_remote._ssh"))
    assert ours["kex"] == plain["kex"] and ours["enc"] == plain["enc"] and ours["x509"] == plain["x509"]
    assert ours["restored"] and not ours["stub_left"]
    if importlib.util.find_spec("OpenSSL") is None:
        assert not ours["x509_module"] and plain["x509_module"]
