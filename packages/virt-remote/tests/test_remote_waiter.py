"""The synchronous caller's wait: on the calling thread's eventfd (a lock where another thread
may wait), woken exactly by its own answer, whatever wake-ups were left over."""

from __future__ import annotations

import os
import threading
import time

import pytest
from virt import ErrorNumber, VirtError
from virt_remote import _wake
from virt_remote._client import Link, Peer, _Waiter


class _Silent(Link):
    """A link that swallows every frame: nothing ever answers."""

    description = "nowhere"

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def _peer() -> Peer:
    peer = Peer(("test-waiter", object()), "nowhere", keepalive_interval=0)
    peer.link = _Silent()
    return peer


def test_a_leftover_wake_up_does_not_end_the_next_wait() -> None:
    stale = _Waiter()
    stale.wake()  # woken, never waited for: its wake-up stays in this thread's eventfd
    waiter = _Waiter()
    threading.Timer(0.2, lambda: (setattr(waiter, "ok", True), waiter.wake())).start()
    start = time.monotonic()
    assert waiter.wait()
    assert waiter.ok and time.monotonic() - start >= 0.15


def test_a_wait_with_a_timeout_times_out_then_the_peer_is_dropped() -> None:
    peer = _peer()
    start = time.monotonic()
    with pytest.raises(VirtError) as caught:
        peer.request("call", 1, "virt_connect_get_type", {}, timeout=0.2)
    assert caught.value.code == ErrorNumber.SYSTEM_ERROR and "did not answer 'call' within 0.2s" in caught.value.message
    assert 0.15 <= time.monotonic() - start < 5
    assert peer.lost is not None and not peer.pending


def test_answers_reach_their_own_threads() -> None:
    import json

    from virt_remote import _wire

    peer = _peer()
    results: dict[int, object] = {}

    def call(i: int) -> None:
        results[i] = peer.request("call", 1, "virt_connect_get_type", {"i": i})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(peer.pending) < 16 and time.monotonic() < deadline:
        time.sleep(0.01)
    link = peer.link
    assert isinstance(link, _Silent)
    asked = {message[1]: message[4]["i"] for message in (json.loads(f[4:]) for f in link.frames)}
    for rid in sorted(asked, reverse=True):  # answered out of order
        peer.on_body(_wire.encode_frame(["ok", rid, f"answer {asked[rid]}"])[4:])
    for t in threads:
        t.join(10)
    assert results == {i: f"answer {i}" for i in range(16)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_waits_on_its_own_eventfd() -> None:
    if not _wake.EVENTFD:
        pytest.skip("waiters use locks here")
    parent_fd = _wake.thread_fd()
    pid = os.fork()
    if pid == 0:  # the child: a fresh eventfd, not the parent's
        code = 0 if _wake.thread_fd() is not parent_fd and _wake.thread_fd().pid == os.getpid() else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_without_a_descriptor_left_the_wait_is_a_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fd() -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(_wake, "thread_fd", no_fd)
    waiter = _Waiter()
    assert waiter.lock is not None and waiter.fd is None
    threading.Timer(0.05, waiter.wake).start()
    assert waiter.wait(5)


def test_beyond_the_eventfd_cap_threads_wait_on_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    if not _wake.EVENTFD:
        pytest.skip("waiters use locks here")
    monkeypatch.setattr(_wake, "MAX_FDS", 0)
    seen: list[object] = []

    def in_a_new_thread() -> None:  # a thread that has no eventfd yet
        waiter = _Waiter()
        seen.append(waiter.fd)
        threading.Timer(0.05, waiter.wake).start()
        seen.append(waiter.wait(5))

    worker = threading.Thread(target=in_a_new_thread)
    worker.start()
    worker.join(10)
    assert seen == [None, True]


def test_a_wait_with_a_timeout_on_an_eventfd_is_woken_before_it() -> None:
    waiter = _Waiter()
    threading.Timer(0.05, waiter.wake).start()
    start = time.monotonic()
    assert waiter.wait(5) and time.monotonic() - start < 4
    assert not _Waiter().wait(0.05)
