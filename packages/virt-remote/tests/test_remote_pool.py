"""The far side's thread pool: a call alone in flight runs on the thread that read it, with no
other thread woken; a frame that arrives while a call runs is read and served at once by
another thread (through the input watch), whether it comes later or in the same write."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from virt_remote import _wire
from virt_remote._server import FrameReader, Service


class _Peer:
    """A Service on a socket pair in this process (watching the descriptor it reads, as the
    helper and virtd do), with a raw client on the other end."""

    def __init__(self, watch: bool = True) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.service = Service(self.theirs.recv, self.theirs.sendall, name="pool",
                               fileno=self.theirs.fileno() if watch else None)
        self.thread = threading.Thread(target=self.service.serve, daemon=True)
        self.thread.start()
        self.ours.settimeout(10)
        self.reader = FrameReader(self.ours.recv)
        self.ids = 0

    def send(self, *messages: list[Any]) -> None:
        """All the messages in one write."""
        self.ours.sendall(b"".join(_wire.encode_frame(m) for m in messages))

    def recv(self) -> list[Any]:
        body = self.reader.read()
        assert body is not None, "the server hung up"
        return list(_wire.from_wire(body))

    def request(self, kind: str, *args: Any) -> list[Any]:
        self.ids += 1
        self.send([kind, self.ids, *args])
        answer = self.recv()
        assert answer[:2] == ["ok", self.ids], answer
        return answer

    def open(self) -> int:
        self.request("hello", {"version": 1, "features": []})
        return int(self.request("open", {"uri": "test:///default", "readonly": False})[2]["session"])

    def close(self) -> None:
        self.ours.close()
        self.thread.join(10)
        self.theirs.close()


@pytest.fixture(params=[True, False], ids=["watched", "unwatched"])
def peer(request: pytest.FixtureRequest) -> Iterator[_Peer]:
    p = _Peer(watch=request.param)
    try:
        yield p
    finally:
        p.close()


class _Gate:
    """Holds ``virt_domain_get_info`` calls of a session until opened (a call that takes as
    long as a test needs, as a QEMU start does)."""

    def __init__(self, service: Service, sid: int) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        conn = service.sessions[sid].conn
        real = conn._call

        def call(hook: str, **kwargs: Any) -> Any:
            if hook == "virt_domain_get_info":
                self.entered.set()
                assert self.open.wait(10), "the gate was never opened"
            return real(hook, **kwargs)

        conn._call = call


def _info(peer: _Peer, sid: int, rid: int) -> list[Any]:
    return ["call", rid, sid, "virt_domain_get_info", {"uuid": _uuid(peer, sid)}]


def _uuid(peer: _Peer, sid: int) -> str:
    answer = peer.request("call", sid, "virt_domain_lookup_by_name", {"name": "test"})
    return str(answer[2].uuid)


def test_sequential_calls_stay_on_one_thread(peer: _Peer) -> None:
    sid = peer.open()
    for _ in range(200):
        peer.request("call", sid, "virt_domain_lookup_by_name", {"name": "test"})
    if peer.service._fileno is not None:
        assert peer.service._total == 1, "a call alone in flight handed the reading to another thread"
    else:
        assert peer.service._total >= 2  # the reader hands over before every call


def test_a_call_sent_while_another_runs_is_served_at_once(peer: _Peer) -> None:
    sid = peer.open()
    uuid = _uuid(peer, sid)
    gate = _Gate(peer.service, sid)
    peer.send(["call", 100, sid, "virt_domain_get_info", {"uuid": uuid}])
    assert gate.entered.wait(10)
    peer.send(["call", 101, sid, "virt_domain_lookup_by_name", {"name": "test"}])
    peer.send(["ping", 7])
    first, second = peer.recv(), peer.recv()  # two threads answer: in either order
    assert sorted([first[:2], second[:2]]) == [["ok", 101], ["pong", 7]], "a lookup waited behind a running call"
    gate.open.set()
    answer = peer.recv()
    assert answer[:2] == ["ok", 100] and int(answer[2].state) == 1
    # and calls alone in flight go on as before
    peer.request("call", sid, "virt_domain_lookup_by_name", {"name": "test"})


def test_a_call_in_the_same_write_as_a_running_one_is_served(peer: _Peer) -> None:
    sid = peer.open()
    uuid = _uuid(peer, sid)
    gate = _Gate(peer.service, sid)
    peer.send(["call", 200, sid, "virt_domain_get_info", {"uuid": uuid}],
              ["call", 201, sid, "virt_domain_lookup_by_name", {"name": "test"}])
    assert peer.recv()[:2] == ["ok", 201], "the second frame of one write waited behind the first's call"
    gate.open.set()
    assert peer.recv()[:2] == ["ok", 200]


def test_many_overlapping_calls_all_answered(peer: _Peer) -> None:
    sid = peer.open()
    uuid = _uuid(peer, sid)
    wanted = set(range(1000, 1400))
    for start in range(1000, 1400, 50):  # bursts of 50 in one write each, then sequential reads
        peer.send(*(["call", rid, sid, "virt_domain_get_info", {"uuid": uuid}] for rid in range(start, start + 50)))
    seen = set()
    while len(seen) < len(wanted):
        answer = peer.recv()
        assert answer[0] == "ok", answer
        seen.add(answer[1])
    assert seen == wanted


def test_the_peer_hanging_up_during_a_call_ends_the_service() -> None:
    p = _Peer()
    sid = p.open()
    uuid = _uuid(p, sid)
    gate = _Gate(p.service, sid)
    p.send(["call", 300, sid, "virt_domain_get_info", {"uuid": uuid}])
    assert gate.entered.wait(10)
    p.ours.shutdown(socket.SHUT_WR)
    p.thread.join(10)  # the sessions are closed at the end: the call then fails, or
    gate.open.set()    # answers if it was past its lookup
    assert p.recv()[1] == 300
    p.thread.join(10)
    assert not p.thread.is_alive(), "the service did not end after its peer hung up"
    p.ours.close()
    p.theirs.close()
