"""On a unix socket (``+unix``) or a child's pipes (``ext``, ``client=openssh``), a calling
thread alone in flight reads the answer to its call itself (``SocketLink._read_until``) while
the watcher thread is disarmed; calls that overlap, and whatever comes between calls (events,
pings), are read by the watcher."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import virt
from remote_testlib import (
    DOMAIN_XML,
    FAR_SIDE_GREETED,
    HELPER,
    Sshd,
    defined_elsewhere,
    far_pid,
    lookups_from_threads,
    lost_while_calling,
    many_domains,
)
from virt_remote import _client, _server
from virt_remote._client import Peer
from virt_remote._writer import AT_ONCE

WATCHER = "virt-remote-watch"


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of the thread that handled each message the client got."""
    seen: list[str] = []
    on_body = Peer.on_body

    def spied(self: Peer, body: bytes) -> None:
        seen.append(threading.current_thread().name)
        on_body(self, body)

    monkeypatch.setattr(Peer, "on_body", spied)
    yield seen


@pytest.fixture(params=["unix", "ext", "openssh"])
def uri(request: pytest.FixtureRequest, virtd_socket: str, sshd: Sshd) -> str:
    if request.param == "unix":
        return f"test+unix:///default?socket={virtd_socket}&keepalive_interval=0"
    if request.param == "ext":
        return f"test+ext:///default?command={HELPER}&keepalive_interval=0"
    return sshd.uri(client="openssh", keepalive_interval=0)


def _link(conn: virt.Connection) -> Any:
    return conn.driver.peer.link  # type: ignore[attr-defined]


def _warm(conn: virt.Connection) -> None:
    for _ in range(10):
        conn.lookup_domain("test")
    time.sleep(0.1)


def test_sequential_calls_are_read_by_the_caller(uri: str, readers: list[str]) -> None:
    with virt.open(uri) as conn:
        assert isinstance(_link(conn), _client.SocketLink)
        _warm(conn)
        readers.clear()
        for _ in range(50):
            assert conn.lookup_domain("test").name == "test"
        assert readers == [threading.current_thread().name] * 50


def test_threads_overlapping_leave_the_reading_to_the_watcher(uri: str, readers: list[str]) -> None:
    with virt.open(uri) as conn:
        lookups_from_threads(conn, "sock-t", started=readers.clear)
        assert WATCHER in readers


def test_the_watcher_reads_between_calls(virtd_socket: str, readers: list[str]) -> None:
    """With no call in flight, an event another client of the daemon caused, and the daemon's
    keepalive pings, are read by the watcher (the link stays up past interval x count)."""
    base = f"test+unix:///default?socket={virtd_socket}"
    with virt.open(f"{base}&keepalive_interval=0.2&keepalive_count=2") as conn:
        conn.lookup_domain("test")  # read by this thread
        readers.clear()
        assert defined_elsewhere(conn, base, "sock-between")
        assert WATCHER in readers
        time.sleep(1.0)
        assert conn.lookup_domain("test").name == "test"


def test_an_answer_of_many_reads_arrives_whole(uri: str, readers: list[str]) -> None:
    """An answer larger than a pipe holds (64 KiB) comes in several reads, all by the caller."""
    with virt.open(uri) as conn, many_domains(conn, "sock-many-") as names:
        _warm(conn)
        readers.clear()
        listed = conn.list_domains_info()
        assert set(names) <= {dom.name for dom, _info in listed}
        assert readers == [threading.current_thread().name]


def test_a_frame_too_big_to_send_at_once_is_sent_with_the_watcher_armed(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame over AT_ONCE could wait for the far side to read, and the far side for us:
    it is sent as ever, with the watcher armed; only then may the caller read."""
    description = "<description>" + "d" * (AT_ONCE + 100) + "</description>"
    sent_reading: list[tuple[int, bool]] = []
    send_at_once = _client.SocketLink._send_at_once

    def spied(self: _client.SocketLink, frame: bytes) -> bool:
        result = send_at_once(self, frame)
        sent_reading.append((len(frame), result))
        return result

    monkeypatch.setattr(_client.SocketLink, "_send_at_once", spied)
    with virt.open(uri) as conn:
        _warm(conn)
        sent_reading.clear()
        dom = conn.define_domain(DOMAIN_XML.format("sock-big", description))
        try:
            assert dom.name == "sock-big"
            assert [sent for size, sent in sent_reading if size > AT_ONCE] == [False]
            assert all(sent for size, sent in sent_reading if size <= AT_ONCE)
        finally:
            dom.undefine()


def test_a_helper_killed_during_a_read_call_is_a_clear_error() -> None:
    with virt.open(f"test+ext:///default?command={HELPER}&keepalive_interval=0") as conn:
        conn.lookup_domain("test")
        pid = int(conn.driver.peer.description.rsplit("pid ", 1)[1].rstrip(")"))  # type: ignore[attr-defined]
        lost_while_calling(conn, lambda: os.kill(pid, signal.SIGKILL))
    with virt.open(f"test+ext:///default?command={HELPER}") as again:
        assert again.lookup_domain("test").name == "test"


def test_without_epoll_a_reader_thread_reads(monkeypatch: pytest.MonkeyPatch, virtd_socket: str,
                                             readers: list[str]) -> None:
    monkeypatch.setattr(_server._Watch, "make", classmethod(lambda cls, fd, on_input: None))
    with virt.open(f"test+unix:///default?socket={virtd_socket}&keepalive_interval=0") as conn:
        assert _link(conn).read_until is None
        readers.clear()
        for _ in range(10):
            assert conn.lookup_domain("test").name == "test"
        assert set(readers) == {"virt-remote-reader"}


def test_a_failed_send_says_the_connection_was_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a dead helper is met by a read (end of file) or by a send (a broken pipe) is
    chance; either way the error says the connection was lost.  The send is made to fail here,
    as it cannot be made to fail first for real every time."""
    with virt.open(f"test+ext:///default?command={HELPER}&keepalive_interval=0") as conn:
        conn.lookup_domain("test")

        def broken(_frame: bytes) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(_link(conn).out, "_write", broken)
        with pytest.raises(virt.VirtError) as caught:
            conn.lookup_domain("test")
        assert caught.value.code == virt.ErrorNumber.SYSTEM_ERROR
        assert "was lost: cannot send data: Broken pipe" in str(caught.value)


@pytest.mark.parametrize("frames", [b"\xff\xff\xff\xff", b"\x00\x00\x00\x05not a message"])
def test_a_far_side_sending_a_bad_frame_is_a_clear_error(tmp_path: Any, frames: bytes) -> None:
    """A far side that answers the handshake with an oversized header or a frame that is not a
    message: refused with an RPC error, whoever reads it."""
    script = tmp_path / "hostile.py"
    script.write_text(f"import sys, time\nsys.stdout.buffer.write({frames!r})\nsys.stdout.flush()\ntime.sleep(5)\n")
    with pytest.raises(virt.VirtError) as caught:
        virt.open(f"test+ext:///default?command={sys.executable} {script}&keepalive_interval=0")
    assert caught.value.code == virt.ErrorNumber.RPC
    assert "exceeds the limit" in str(caught.value) or "bad frame" in str(caught.value)


# A far side that floods us with pings and reads nothing until it has written them all: its
# reader waits for its writer, as a server's may.  Each ping owes a pong, which the client's
# reading thread sends; it must never wait to (the far side waits for us to read), else both
# sides wait for ever.
FLOODING_FAR_SIDE = FAR_SIDE_GREETED + r'''
pings, wait_for_a_call = int(sys.argv[1]), sys.argv[2] == "1"
if wait_for_a_call:
    inp.peek(1)  # the head of a big call: its writer is under way, and waits for us
out.write(_wire.encode_frame(["ping", 0]) * pings)  # blocks until the client has read most
out.flush()
pongs, call = 0, None
while pongs < pings or call is None:
    message = read()
    if message[0] == "pong":
        pongs += 1
    elif message[0] == "count":
        call = message[1]
write(["ok", call, pongs])
'''


def _flooding(tmp_path: Any, pings: int, wait_for_a_call: bool) -> virt.Connection:
    script = tmp_path / "flood.py"
    script.write_text(FLOODING_FAR_SIDE)
    command = f"{sys.executable} {script} {pings} {int(wait_for_a_call)}"
    return virt.open(f"test+ext:///default?command={command}&keepalive_interval=0")


def _count_in_thread(conn: virt.Connection, *args: Any) -> list[Any]:
    """Ask the far side how many pongs it got, from a thread (a client that hangs must fail
    the test, not hang it)."""
    got: list[Any] = []
    caller = threading.Thread(target=lambda: got.append(conn.driver.peer.request("count", *args)),  # type: ignore[attr-defined]
                              daemon=True)
    caller.start()
    caller.join(30)
    if caller.is_alive():
        os.kill(far_pid(conn), signal.SIGKILL)  # unblocks the client, for the test to end
        pytest.fail("the client hangs: its reading thread waits to write")
    return got



def test_pongs_owed_while_another_thread_writes_do_not_stop_the_reading(tmp_path: Any) -> None:
    """A thread writes a call bigger than the pipe while the far side, not reading, floods us
    with pings: the reading thread queues the pongs behind the write and reads on, so the far
    side's flood ends, it reads the call, then every pong."""
    pings = 20000  # 280 KB of pings, four times what a pipe holds
    with _flooding(tmp_path, pings, wait_for_a_call=True) as conn:
        assert _count_in_thread(conn, "x" * (2 << 20)) == [pings]


def test_pongs_that_cannot_leave_at_once_go_to_the_writer_thread(tmp_path: Any, readers: list[str]) -> None:
    """No call in flight: the watcher answers each ping itself while the pipe takes them, then,
    the pipe full, hands its pongs to the writer thread and reads on."""
    pings = 20000
    with _flooding(tmp_path, pings, wait_for_a_call=False) as conn:
        link = _link(conn)
        deadline = time.monotonic() + 30
        while len(readers) < pings + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(readers) != pings + 2:
            os.kill(far_pid(conn), signal.SIGKILL)
            pytest.fail(f"the client stopped reading the pings after {len(readers) - 2}")
        assert set(readers[2:]) == {WATCHER}
        assert link.out.thread is not None and link.out.thread.name == "virt-remote-writer"
        assert _count_in_thread(conn) == [pings]
