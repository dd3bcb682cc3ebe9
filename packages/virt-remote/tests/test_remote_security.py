"""What the remote plugin refuses: untrusted host keys, keys the server does not know, and on
the server side oversized, malformed and ill-typed frames, unknown hooks, and mutating calls on
read-only connections; each refused with a clear error while the server goes on serving."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import virt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remote_testlib import Keys, RawClient, Sshd, Virtd
from virt import ErrorNumber, VirtError
from virt_remote._wire import MAX_FRAME


def _open_error(uri: str) -> VirtError:
    with pytest.raises(VirtError) as info:
        virt.open(uri)
    return info.value


# -- SSH: host keys and client keys -----------------------------------------------------------


def test_wrong_host_key_is_refused(sshd: Sshd, keys: Keys) -> None:
    error = _open_error(sshd.uri(known_hosts=keys.wrong_known_hosts))
    assert error.code == ErrorNumber.SSH
    assert "host key verification failed" in error.message


def test_unknown_host_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    error = _open_error(sshd.uri(known_hosts=empty))
    assert error.code == ErrorNumber.SSH and "host key" in error.message


def test_no_verify_skips_the_host_key_check(sshd: Sshd, keys: Keys) -> None:
    with virt.open(sshd.uri(known_hosts=keys.wrong_known_hosts, no_verify=1)) as conn:
        assert conn.type() == "TEST"


def test_unknown_client_key_is_refused(sshd: Sshd, keys: Keys) -> None:
    error = _open_error(sshd.uri(keyfile=keys.other_key))
    assert error.code == ErrorNumber.AUTH_FAILED
    assert "SSH authentication to 127.0.0.1" in error.message and "Permission denied" in error.message


def test_unreadable_key_file_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-key"
    bad.write_text("this is not a key\n")
    error = _open_error(sshd.uri(keyfile=bad))
    assert error.code == ErrorNumber.AUTH_FAILED and "key" in error.message


def test_missing_helper_says_what_the_far_side_said(sshd: Sshd) -> None:
    error = _open_error(sshd.uri(command="/nonexistent/virt-remote-helper"))
    assert error.code == ErrorNumber.SYSTEM_ERROR
    assert "No such file or directory" in error.message


def test_refused_port_is_a_clear_error(keys: Keys) -> None:
    from remote_testlib import free_port

    sshd = Sshd(keys, free_port())  # never started
    keys.trust(sshd.port)
    error = _open_error(sshd.uri())
    assert error.code == ErrorNumber.SYSTEM_ERROR and "Connection refused" in error.message


# -- the server: frames, hooks, arguments, read-only --------------------------------------------


@pytest.fixture
def raw(virtd_socket: str) -> Iterator[RawClient]:
    client = RawClient(virtd_socket)
    try:
        yield client
    finally:
        client.close()


def _error(answer: list | None) -> dict:  # type: ignore[type-arg]
    assert answer is not None and answer[0] == "err", answer
    return answer[2]  # type: ignore[no-any-return]


def test_oversized_frame_is_refused_and_others_are_served(virtd_socket: str, raw: RawClient) -> None:
    with virt.open(f"test+unix:///default?socket={virtd_socket}") as bystander:
        raw.hello()
        raw.send_bytes(struct.pack(">I", MAX_FRAME + 1))  # and no body: refused on the header
        answer = raw.recv()
        assert answer is not None and answer[0] == "bye"
        assert "exceeds the limit" in answer[1]["message"]
        assert raw.recv() is None, "the server hangs up on a stream it cannot trust"
        assert bystander.lookup_domain("test").name == "test"


def test_malformed_frames_are_refused_and_the_connection_goes_on(raw: RawClient) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[]", b'{"a": 1}', b'[1, 2]', b'[{"$r": "os.system"}]',
                 b"[" * 100000):
        raw.send_bytes(struct.pack(">I", len(body)) + body)
        error = _error(raw.recv())
        assert error["code"] == ErrorNumber.RPC
    raw.hello()
    session = raw.open()
    answer = raw.request("call", session, "virt_domain_lookup_by_name", {"name": "test"})
    assert answer is not None and answer[0] == "ok" and answer[2].name == "test"


def test_calls_before_the_handshake_are_refused(raw: RawClient) -> None:
    error = _error(raw.request("open", {"uri": "test:///default", "readonly": False}))
    assert "handshake" in error["message"]


def test_open_may_follow_hello_without_waiting_for_its_answer(virtd_socket: str) -> None:
    """What a client does on a new connection: hello and open in one write (one round trip)."""
    from virt_remote import _wire

    for _ in range(10):
        client = RawClient(virtd_socket)
        try:
            client.send_bytes(_wire.encode_frame(["hello", 1, {"version": 1, "features": []}])
                              + _wire.encode_frame(["open", 2, {"uri": "test:///default", "readonly": False}]))
            answers = {m[1]: m for m in (client.recv(), client.recv()) if m is not None}
            assert answers[1][0] == "ok" and answers[1][2]["version"] == 1
            assert answers[2][0] == "ok" and type(answers[2][2]["session"]) is int, answers[2]
        finally:
            client.close()


_OLD_FAR_SIDE = """
import json, os, struct, sys

def read(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            sys.exit(0)
        buf += chunk
    return buf

def send(msg):
    body = json.dumps(msg).encode()
    os.write(1, struct.pack(">I", len(body)) + body)

refused = False
while True:
    (n,) = struct.unpack(">I", read(4))
    kind, rid = json.loads(read(n))[:2]
    if kind == "hello":
        send(["ok", rid, {"version": 1, "features": [], "readonly": False, "pid": os.getpid()}])
    elif kind == "open" and not refused:  # read before hello was answered, as an old server could
        refused = True
        send(["err", rid, {"code": 7, "domain": 7, "detail": None,
                           "message": "internal error: the handshake (hello) must come first"}])
    elif kind == "open":
        send(["ok", rid, {"session": 1, "hooks": ["virt_connect_get_type"], "readonly": False}])
    else:
        send(["ok", rid, "OLD"])
"""


def test_a_far_side_that_refuses_the_pipelined_open_gets_it_again(tmp_path: Path) -> None:
    """A far side of before the pipelined hello may refuse the open sent right behind it: the
    client sends it again once hello is answered."""
    import sys

    script = tmp_path / "old-far-side"
    script.write_text(f"#!{sys.executable}\n{_OLD_FAR_SIDE}")
    script.chmod(0o755)
    conn = virt.open(f"test+ext:///default?command={script}")
    try:
        assert conn.driver.peer.requests == 3  # type: ignore[attr-defined]  # hello, open, open
        assert conn.supports("virt_connect_get_type")
    finally:
        conn.close()


def test_unknown_hooks_and_event_hooks_are_refused(raw: RawClient) -> None:
    raw.hello()
    session = raw.open()
    for hook in ("virt_no_such_hook", "__class__", "virt_event_domain", 5):
        error = _error(raw.request("call", session, hook, {}))
        assert error["code"] == ErrorNumber.RPC and "unknown hook" in error["message"]
    error = _error(raw.request("frobnicate", 1))
    assert "unknown or malformed request" in error["message"]
    assert raw.request("call", session, "virt_connect_get_type", {})[2] == "TEST"  # type: ignore[index]


def test_wrong_argument_types_are_refused(raw: RawClient) -> None:
    raw.hello()
    session = raw.open()
    cases = [
        ({"name": 5}, "argument 'name' must be str"),
        ({"name": "test", "extra": 1}, "unexpected argument"),
        ({}, "missing argument 'name'"),
        ([1], "must be an object"),
    ]
    for kwargs, why in cases:
        error = _error(raw.request("call", session, "virt_domain_lookup_by_name", kwargs))
        assert error["code"] == ErrorNumber.RPC and why in error["message"], error
    error = _error(raw.request("call", session, "virt_domain_create", {"uuid": "x", "flags": True}))
    assert "argument 'flags' must be int" in error["message"]
    error = _error(raw.request("call", 999, "virt_connect_get_type", {}))
    assert error["code"] == ErrorNumber.INVALID_CONN


def test_bad_stream_opens_are_refused(raw: RawClient) -> None:
    raw.hello()
    session = raw.open()
    cases = [
        ("vol-download", {"key": 5}, ErrorNumber.RPC, "argument 'key' must be str"),
        ("vol-download", {"key": "k", "offset": 0, "length": True, "flags": 0}, ErrorNumber.RPC,
         "argument 'length' must be int"),
        ("vol-upload", {"key": "k", "length": 5}, ErrorNumber.RPC, "unknown argument(s) length"),
        ("vol-upload", {"key": "k", "offset": -1}, ErrorNumber.INVALID_ARG, "must not be negative"),
        ("vol-frobnicate", {}, ErrorNumber.RPC, "unknown stream kind"),
        # well formed, but the test driver keeps no volume content
        ("vol-download", {"key": "k", "offset": 0, "length": 0, "flags": 0}, ErrorNumber.NO_SUPPORT, ""),
    ]
    for kind, args, code, why in cases:
        error = _error(raw.request("sopen", session, kind, args))
        assert error["code"] == code and why in error["message"], (kind, args, error)
    assert raw.request("call", session, "virt_connect_get_type", {})[2] == "TEST"  # type: ignore[index]


def test_far_side_refuses_remote_uris(raw: RawClient) -> None:
    raw.hello()
    error = _error(raw.request("open", {"uri": "test+ssh://elsewhere/default", "readonly": False}))
    assert error["code"] == ErrorNumber.NO_CONNECT


def test_read_only_session_refuses_mutating_calls_whatever_the_client_sends(raw: RawClient) -> None:
    raw.hello()
    session = raw.open(readonly=True)
    uuid = raw.request("call", session, "virt_domain_lookup_by_name", {"name": "test"})[2].uuid  # type: ignore[index]
    error = _error(raw.request("call", session, "virt_domain_suspend", {"uuid": uuid}))
    assert error["code"] == ErrorNumber.OPERATION_DENIED
    assert error["message"] == "operation forbidden: read only access prevents virDomainSuspend"


def test_read_only_socket_forces_read_only(tmp_path: Path) -> None:
    daemon = Virtd(tmp_path / "rw-sock", "--readonly-socket", str(tmp_path / "ro-sock")).start()
    try:
        raw = RawClient(str(tmp_path / "ro-sock"))
        raw.hello()
        session = raw.open(readonly=False)  # asks for read-write; gets read-only
        uuid = raw.request("call", session, "virt_domain_lookup_by_name", {"name": "test"})[2].uuid  # type: ignore[index]
        error = _error(raw.request("call", session, "virt_domain_destroy", {"uuid": uuid, "flags": 0}))
        assert error["code"] == ErrorNumber.OPERATION_DENIED
        raw.close()
        with virt.open(f"test+unix:///default?socket={tmp_path / 'ro-sock'}") as conn:
            with pytest.raises(VirtError) as info:
                conn.lookup_domain("test").destroy()
            assert info.value.code == ErrorNumber.OPERATION_DENIED
    finally:
        daemon.stop()


def test_client_refuses_values_that_are_not_plain_data(virtd_socket: str) -> None:
    with virt.open(f"test+unix:///default?socket={virtd_socket}") as conn:
        with pytest.raises(VirtError) as info:
            conn.lookup_domain(object())  # type: ignore[arg-type]
        assert info.value.code == ErrorNumber.INVALID_ARG
        assert conn.lookup_domain("test").name == "test"


# -- the server under hypothesis -----------------------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=8)
    | st.sampled_from(["hello", "open", "call", "close", "sub", "sopen", "sdata", "sack", "sclose", "ping",
                       "virt_domain_lookup_by_name", "virt_event_domain", "test:///default", "$b", "$r"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["version", "uri", "readonly", "name", "uuid", "flags", "$t", "$b", "x"]), inner, max_size=4),
    max_leaves=12,
)


class _InProcess:
    """A Service on a socket pair, in this process, with a raw client on the other end."""

    def __init__(self) -> None:
        import socket
        import threading

        from virt_remote._server import FrameReader, Service

        self.ours, self.theirs = socket.socketpair()
        self.service = Service(self.theirs.recv, self.theirs.sendall, name="fuzz", fileno=self.theirs.fileno())
        self.thread = threading.Thread(target=self.service.serve, daemon=True)
        self.thread.start()
        self.ours.settimeout(10)
        self.reader = FrameReader(self.ours.recv)

    def send_raw(self, body: bytes) -> None:
        self.ours.sendall(struct.pack(">I", len(body)) + body)

    def alive(self) -> bool:
        """A ping is still answered (skipping answers to what was sent before)."""
        from virt_remote import _wire

        self.send_raw(b'["ping", 424242]')
        while True:
            body = self.reader.read()
            if body is None:
                return False
            message = _wire.from_wire(body)
            if message == ["pong", 424242]:
                return True


@pytest.fixture(scope="module")
def in_process() -> Iterator[_InProcess]:
    server = _InProcess()
    try:
        yield server
    finally:
        server.ours.close()
        server.thread.join(10)
        server.theirs.close()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(_values, min_size=1, max_size=4))
def test_fuzz_server_keeps_serving(in_process: _InProcess, messages: list[object]) -> None:
    import json

    for message in messages:
        in_process.send_raw(json.dumps(message).encode())
    assert in_process.alive(), f"the server stopped serving after {messages!r}"


# -- the same refusals with OpenSSH's client (client=openssh) --------------------------------


def test_openssh_client_wrong_host_key_is_refused(sshd: Sshd, keys: Keys) -> None:
    error = _open_error(sshd.uri(client="openssh", known_hosts=keys.wrong_known_hosts))
    assert error.code == ErrorNumber.SSH and "Host key verification failed" in error.message


def test_openssh_client_unknown_key_is_refused(sshd: Sshd, keys: Keys) -> None:
    error = _open_error(sshd.uri(client="openssh", keyfile=keys.other_key))
    assert error.code == ErrorNumber.AUTH_FAILED and "Permission denied" in error.message


def test_unknown_ssh_client_is_refused(sshd: Sshd) -> None:
    error = _open_error(sshd.uri(client="putty"))
    assert error.code == ErrorNumber.INVALID_ARG and "openssh" in error.message


def test_a_command_that_is_not_the_helper_is_refused(sshd: Sshd) -> None:
    """``cat`` echoes the handshake back: a message a server never sends, refused at once."""
    import time

    start = time.monotonic()
    error = _open_error(sshd.uri(command="/bin/cat", keepalive_interval=0))
    assert error.code == ErrorNumber.RPC and "unexpected 'hello' message" in error.message
    assert time.monotonic() - start < 10


def test_a_silent_far_side_times_out_the_handshake(sshd: Sshd, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from virt_remote import _client

    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexec cat >/dev/null\n")  # reads all, says nothing, ends with the channel
    silent.chmod(0o755)
    monkeypatch.setattr(_client, "HANDSHAKE_TIMEOUT", 1.0)
    error = _open_error(sshd.uri(command=silent, keepalive_interval=0))
    assert error.code == ErrorNumber.SYSTEM_ERROR and "did not answer 'hello'" in error.message


class _Gated:
    """A session's connection whose volume writes wait at a gate (a disk slower than the
    peer), recording what reached it."""

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.written: list[int] = []

    def _call(self, hook: str, **kwargs: Any) -> None:
        assert hook == "virt_vol_upload"
        self.gate.wait(10)
        self.written.append(len(kwargs["data"]))


class _Sent:
    """What a stream relay sends to its peer."""

    def __init__(self) -> None:
        self.messages: list[list[Any]] = []
        self.streams: dict[int, Any] = {}

    def send(self, message: list[Any]) -> None:
        self.messages.append(message)


def test_a_peer_that_ignores_an_uploads_window_is_cut_off() -> None:
    """A client that sends past the window of an upload stream without waiting for the far
    side's acknowledgements gets the stream closed with an RPC error: nothing piles up."""
    from virt_remote._server import _VolumeUpload
    from virt_remote._wire import VOLUME_PIECE, VOLUME_WINDOW

    conn, service = _Gated(), _Sent()
    relay = _VolumeUpload(service, 7, conn, {"key": "k", "offset": 0, "flags": 0})  # type: ignore[arg-type]
    service.streams[7] = relay
    relay.start()
    for _ in range(VOLUME_WINDOW // VOLUME_PIECE + 1):  # the window, then one piece more
        relay.write(b"\0" * VOLUME_PIECE)
    closing = [m for m in service.messages if m[0] == "sclose"]
    assert len(closing) == 1 and closing[0][1] == 7
    assert closing[0][2]["code"] == ErrorNumber.RPC and "window" in closing[0][2]["message"]
    assert 7 not in service.streams and relay.queued <= VOLUME_WINDOW
    relay.write(b"more")  # dropped
    conn.gate.set()
    deadline = time.monotonic() + 10
    while sum(conn.written) < VOLUME_WINDOW and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert sum(conn.written) == VOLUME_WINDOW  # what came within the window is still written


def test_a_far_side_that_ignores_a_downloads_window_is_cut_off() -> None:
    from virt_remote._client import RemoteStream

    class Peer:
        lost = None

        def __init__(self) -> None:
            self.sent: list[list[Any]] = []

        def notify(self, message: list[Any]) -> None:
            self.sent.append(message)

    peer = Peer()
    stream = RemoteStream(peer, 3, send_window=1024, piece=256)  # type: ignore[arg-type]
    stream._on_message(["sdata", 3, b"x" * 1000])
    stream._on_message(["sdata", 3, b"x" * 100])  # 1100 unread bytes: past the 1024 granted
    with pytest.raises(VirtError) as info:
        stream.read()
    assert info.value.code == ErrorNumber.RPC and "window" in info.value.message
    assert peer.sent == [["sclose", 3, None]]


def test_stream_data_for_unknown_ids_is_kept_only_while_a_stream_opens_and_bounded() -> None:
    """Data may come with the answer that names its stream, before the caller registers it:
    the client keeps it, but only while a ``sopen`` is in flight and up to PARKED_MAX bytes,
    so a far side sending for made-up ids fills nothing."""
    from virt_remote import _wire
    from virt_remote._client import PARKED_MAX, Peer

    peer = Peer(("test",), "nowhere")

    def sdata(sid: int, size: int) -> bytes:
        return _wire.encode_frame(["sdata", sid, _wire.to_wire(b"x" * size)])[4:]

    peer.on_body(sdata(5, 1000))
    assert peer._parked == []  # no stream opening: dropped
    peer._opening = 1
    for _ in range(3):
        peer.on_body(sdata(6, PARKED_MAX // 2))
    assert peer._parked_bytes == PARKED_MAX  # the third was over the bound
    assert len(peer._parked) == 2


def test_a_client_that_sends_calls_and_reads_no_answer_is_not_read_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls read and waiting for a thread are bounded (libvirt's ``max_client_requests``, more
    generous); beyond, the server stops reading the peer, whose own sends then wait.  Before,
    the leader read on into a backlog without bound: any local user, on the daemon's read-only
    socket, could fill its memory.  Made small here: 2 threads (kept busy: their answers wait,
    as the client reads none), 8 calls waiting."""
    import socket
    import threading

    from virt_remote import _server, _wire, _writer
    from virt_remote._server import FrameReader, Service

    monkeypatch.setattr(_server, "MAX_THREADS", 2)
    monkeypatch.setattr(_server, "MAX_BACKLOG", 8)
    monkeypatch.setattr(_writer, "QUEUE_MAX", 4096)
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # what waits in our own send: little
    service = Service(theirs.recv, theirs.sendall, name="flood", fileno=theirs.fileno(), send_fileno=theirs.fileno())
    server = threading.Thread(target=service.serve, daemon=True)
    server.start()
    try:
        ours.settimeout(10)
        reader = FrameReader(ours.recv)

        def answer() -> list:  # type: ignore[type-arg]
            while True:
                body = reader.read()
                assert body is not None, "the server hung up"
                message = _wire.from_wire(body)
                if message[0] != "ping":
                    return message  # type: ignore[no-any-return]

        ours.sendall(_wire.encode_frame(["hello", 1, {"version": 1, "features": []}]))
        assert answer()[0] == "ok"
        ours.sendall(_wire.encode_frame(["open", 2, {"uri": "test:///default", "readonly": True}]))
        session = answer()[2]["session"]
        ours.settimeout(0.5)
        sent, rest = 0, b""
        while sent < 20000 and not rest:
            frame = _wire.encode_frame(["call", 3 + sent, session, "virt_connect_get_capabilities", {}])
            try:
                rest = frame[ours.send(frame):]
            except TimeoutError:
                break  # the server stopped reading us
            sent += 1
        assert sent < 5000, f"the server read {sent} calls of a client that reads no answer"
        ours.settimeout(10)
        threading.Thread(target=ours.sendall, args=(rest,), daemon=True).start()  # once read again
        # it reads again: every call is answered, in full
        ids = sorted(answer()[1] for _ in range(sent))
        assert ids == list(range(3, 3 + sent))
    finally:
        ours.close()
        theirs.close()
        server.join(10)
