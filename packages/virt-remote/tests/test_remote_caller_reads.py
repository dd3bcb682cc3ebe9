"""A calling thread reads the answer to its call itself (``SSHLink.read_directly``) while the
loop thread stops watching the socket; whatever it reads for others (their answers, events)
reaches them; once it is done the loop reads again, so what arrives between calls is not
left unread."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import virt
from remote_testlib import Sshd, defined_elsewhere, lookups_from_threads, lost_while_calling, many_domains
from virt import DomainEvent, DomainEventType
from virt_remote import _client
from virt_remote._client import Peer

XML = "<domain type='test'><name>{}</name><memory>131072</memory><os><type>hvm</type></os></domain>"


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """(thread name, message kind) for every message the client handles."""
    seen: list[tuple[str, Any]] = []
    on_body = Peer.on_body

    def spied(self: Peer, body: bytes) -> None:
        seen.append((threading.current_thread().name, body[:8]))
        on_body(self, body)

    monkeypatch.setattr(Peer, "on_body", spied)
    yield seen


def _link(conn: virt.Connection) -> Any:
    peer = conn.driver.peer  # type: ignore[attr-defined]
    return peer.link


def _epoll_mask(link: Any) -> int:
    """The events the loop's epoll watches on the SSH socket, as the kernel has them."""
    epfd = link.loop._selector.fileno()
    sockfd = link._transport.get_extra_info("socket").fileno()
    with open(f"/proc/self/fdinfo/{epfd}") as info:
        for line in info:
            match = re.match(r"tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)", line)
            if match and int(match.group(1)) == sockfd:
                return int(match.group(2), 16)
    raise AssertionError("the SSH socket is not in the loop's epoll")


def test_sequential_calls_are_read_by_the_caller(sshd: Sshd, readers: list[tuple[str, Any]]) -> None:
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        # Past what sshd sends once after logging in (its host keys, a global request that
        # asyncssh handles in a task of the loop: the loop handles what comes meanwhile)
        for _ in range(10):
            conn.lookup_domain("test")
        time.sleep(0.2)
        readers.clear()
        for _ in range(50):
            assert conn.lookup_domain("test").name == "test"
        assert [name for name, _ in readers] == [threading.current_thread().name] * 50
        # the loop watches the socket for reading again (EPOLLIN) between calls
        assert _epoll_mask(_link(conn)) & 0x1


def test_without_direct_io_the_loop_reads(sshd: Sshd, readers: list[tuple[str, Any]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRT_REMOTE_DIRECT", "0")
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        readers.clear()
        for _ in range(10):
            conn.lookup_domain("test")
        assert {name for name, _ in readers} == {"virt-loop"}


def test_asyncio_debug_mode_sends_every_frame_through_the_loop(sshd: Sshd) -> None:
    """asyncio's debug mode (``-X dev``, ``PYTHONASYNCIODEBUG``) refuses asyncssh run from a
    calling thread (``call_soon`` from a foreign thread): with the process's loop in debug
    mode the direct paths are off, and calls, threaded calls and a far side lost mid-call
    behave as ever.  Before, the lost far side gave ``INTERNAL_ERROR`` *Non-thread-safe
    operation invoked on an event loop other than the current one*."""
    import signal

    from virt_remote import _aio

    loop = _aio.get_loop()
    loop.set_debug(True)
    try:
        with virt.open(sshd.uri(keepalive_interval=0)) as conn:
            link = _link(conn)
            assert link.read_until is None and link._transport is None, "a direct path is on"
            for _ in range(20):
                conn.lookup_domain("test")
            lookups_from_threads(conn, "t")
            helpers = sshd.helpers()
            lost_while_calling(conn, lambda: [os.kill(pid, signal.SIGKILL) for pid in helpers])
    finally:
        loop.set_debug(False)


def test_threads_read_for_each_other(sshd: Sshd, readers: list[tuple[str, Any]]) -> None:
    """Many threads, one reading at a time: every answer reaches its own caller."""
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        lookups_from_threads(conn, "t", started=readers.clear)
        # some answers were read by a calling thread, not only by the loop
        assert any(name != "virt-loop" for name, _ in readers)


def test_events_read_by_a_caller_reach_the_subscriber(sshd: Sshd) -> None:
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        seen: list[DomainEventType] = []
        all_in = threading.Event()

        def callback(_c: virt.Connection, event: DomainEvent) -> None:
            if event.name == "evented":
                seen.append(event.event)
                if len(seen) == 40:
                    all_in.set()

        conn.subscribe(callback, DomainEvent)
        for _ in range(20):  # each call's answer comes behind its event: the caller reads both
            conn.define_domain(XML.format("evented")).undefine()
        assert all_in.wait(10), seen
        assert seen == [DomainEventType.DEFINED, DomainEventType.UNDEFINED] * 20


def test_the_loop_reads_between_calls(sshd: Sshd, virtd_socket: str) -> None:
    """With no call in flight, what the far side sends is read by the loop: an event caused by
    another client of the far daemon, and the answers to the keepalive."""
    with virt.open(sshd.uri(mode="daemon", socket=virtd_socket, keepalive_interval=0.2,
                            keepalive_count=2)) as far:
        far.lookup_domain("test")  # read by this thread
        assert defined_elsewhere(far, f"test+unix:///default?socket={virtd_socket}", "between")
        time.sleep(1.0)  # > interval x count: only pongs read by the loop keep the link up
        assert far.lookup_domain("test").name == "test"


def test_a_far_side_gone_during_a_read_call_is_a_clear_error(sshd: Sshd) -> None:
    import signal

    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        conn.lookup_domain("test")
        helpers = sshd.helpers()
        assert helpers
        lost_while_calling(conn, lambda: [os.kill(pid, signal.SIGKILL) for pid in helpers])
    with virt.open(sshd.uri(keepalive_interval=0)) as again:
        assert again.lookup_domain("test").name == "test"


def test_peer_wait_reads_only_through_a_link_that_offers_it() -> None:
    assert _client.Link.read_until is None


def test_an_answer_of_many_packets_is_read_whole(sshd: Sshd, readers: list[tuple[str, Any]]) -> None:
    """An answer larger than an SSH packet (32 KiB) arrives in several reads; the caller
    hands them to asyncssh in order and gets the answer whole."""
    with virt.open(sshd.uri(keepalive_interval=0)) as conn, many_domains(conn, "many-packets-") as names:
        for _ in range(10):
            conn.lookup_domain("test")
        time.sleep(0.2)
        readers.clear()
        listed = conn.list_domains_info()
        assert set(names) <= {dom.name for dom, _info in listed}
        assert [name for name, _ in readers] == [threading.current_thread().name]


def test_a_caller_waiting_for_the_window_leaves_the_reading_to_the_loop(sshd: Sshd) -> None:
    """A call whose frame must wait for the channel's window to open (a full window) waits
    with the loop still reading: the far side's window adjustments, which end the wait, come
    in through the reading it would otherwise have taken."""
    with virt.open(sshd.uri(keepalive_interval=0)) as conn:
        conn.lookup_domain("test")
        link = _link(conn)
        link.writable.clear()  # as asyncssh's pause_writing does when the window is full
        try:
            names: list[str] = []
            caller = threading.Thread(target=lambda: names.append(conn.lookup_domain("test").name))
            caller.start()
            time.sleep(0.3)
            assert caller.is_alive() and _epoll_mask(link) & 0x1, "the loop stopped reading"
        finally:
            link.writable.set()
        caller.join(10)
        assert names == ["test"]


def test_the_reading_thread_answers_pings_while_the_window_is_full(sshd: Sshd) -> None:
    """The far side's keepalive pings are answered by whichever thread reads them; with the
    window full that thread must not wait for the window (only its own reading could open
    it): the pong waits in asyncssh's buffer, and the loop keeps running."""
    import asyncio

    with virt.open(sshd.uri(keepalive_interval=0.2, keepalive_count=50)) as conn:
        conn.lookup_domain("test")
        link = _link(conn)
        link.writable.clear()
        try:
            time.sleep(1.0)  # the helper pings every 0.2 s of silence
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), link.loop).result(2)
        finally:
            link.writable.set()
        assert conn.lookup_domain("test").name == "test"
