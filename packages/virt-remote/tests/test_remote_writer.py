"""The writer both sides share (``virt_remote._writer``), on real pipes: frames from many
threads arrive whole and in each thread's order; a thread that must not wait never does; a
failed write is reported once and ends the writing; what waits behind a write is bounded."""

from __future__ import annotations

import errno
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from virt_remote._writer import AT_ONCE, Writer


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


def _write_all(fd: int) -> object:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return write


def _read_exactly(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        assert chunk, "the pipe ended early"
        out += chunk
    return bytes(out)


def _never_fails(exc: OSError) -> None:
    raise AssertionError(f"a write failed: {exc}")


def test_frames_from_many_threads_arrive_whole_and_in_each_threads_order(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = Writer(_write_all(w), w, _never_fails)  # type: ignore[arg-type]
    threads, each = 16, 300
    frame = struct.Struct(">HH")
    data: list[bytes] = []
    reader = threading.Thread(target=lambda: data.append(_read_exactly(r, threads * each * frame.size)))
    reader.start()

    def send(thread: int) -> None:
        for seq in range(each):
            writer.send(frame.pack(thread, seq), wait=seq % 7 != 0)

    senders = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for s in senders:
        s.start()
    for s in senders:
        s.join(30)
    reader.join(30)
    got = [frame.unpack_from(data[0], i * frame.size) for i in range(threads * each)]
    for thread in range(threads):
        assert [seq for t, seq in got if t == thread] == list(range(each))
    writer.close()


def test_a_thread_that_must_not_wait_hands_over_what_cannot_leave_at_once(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = Writer(_write_all(w), w, _never_fails)  # type: ignore[arg-type]
    writer.send(b"x" * 65536)  # the pipe is full now, nobody reads
    done = threading.Event()

    def ping() -> None:
        writer.send(b"ping", wait=False)
        writer.send(b"p" * (AT_ONCE + 1), wait=False)
        done.set()

    threading.Thread(target=ping, daemon=True).start()
    assert done.wait(10), "a send without wait waited for the pipe"
    assert writer.thread is not None and writer.thread.name == "virt-remote-writer"
    assert _read_exactly(r, 65536 + 4 + AT_ONCE + 1) == b"x" * 65536 + b"ping" + b"p" * (AT_ONCE + 1)
    writer.close()


def test_claim_only_when_nothing_is_written_and_there_is_room(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = Writer(_write_all(w), w, _never_fails)  # type: ignore[arg-type]
    assert not writer.claim(AT_ONCE + 1)
    assert writer.claim(5)
    writer.run(b"first", wait=False)
    assert writer.idle
    writer.send(b"y" * 65531)  # full
    assert not writer.claim(5)
    assert _read_exactly(r, 5 + 65531)[:5] == b"first"
    assert writer.claim(5)
    writer.run(b"again", wait=False)
    assert _read_exactly(r, 5) == b"again"


def test_a_failed_write_is_reported_once_and_ends_the_writing(pipe: tuple[int, int]) -> None:
    r, w = pipe
    failures: list[OSError] = []
    writer = Writer(_write_all(w), w, failures.append)  # type: ignore[arg-type]
    os.close(r)
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        writer.send(b"lost")
        writer.send(b"dropped")
    finally:
        signal.signal(signal.SIGPIPE, previous)
    assert len(failures) == 1 and isinstance(failures[0], BrokenPipeError)
    assert writer.broken and writer.idle


def test_release_ends_the_writer_thread_and_writing_goes_on(pipe: tuple[int, int]) -> None:
    """The server's end: the writer thread goes, answers of calls still running still leave."""
    r, w = pipe
    writer = Writer(_write_all(w), w, _never_fails)  # type: ignore[arg-type]
    writer.send(b"x" * 65536)
    writer.send(b"ping", wait=False)  # handed over: the pipe is full
    thread = writer.thread
    assert thread is not None
    assert _read_exactly(r, 65536 + 4)[-4:] == b"ping"
    writer.release()
    thread.join(10)
    assert not thread.is_alive() and writer.thread is None
    writer.send(b"late answer")
    assert _read_exactly(r, 11) == b"late answer"


def test_close_writes_nothing_more(pipe: tuple[int, int]) -> None:
    """The client's end: its descriptor is about to close (its number could be reused)."""
    _r, w = pipe
    failures: list[OSError] = []
    writer = Writer(_write_all(w), w, failures.append)  # type: ignore[arg-type]
    writer.close()
    writer.send(b"too late")
    assert len(failures) == 1 and failures[0].errno == errno.EPIPE


def _full(w: int) -> int:
    """Fill the pipe (nobody reads it); the bytes written."""
    os.set_blocking(w, False)
    written = 0
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    written += os.write(w, b"\0" * size)
                except BlockingIOError:
                    break
    finally:
        os.set_blocking(w, True)
    return written


def test_frames_that_must_not_wait_past_the_bound_drop_the_peer(pipe: tuple[int, int]) -> None:
    """A peer that stopped reading while we go on sending what must not wait (events, pongs):
    past the bound, ``overflow`` is called once, what waits is dropped, nothing more is
    written, and no sending thread ever waits."""
    r, w = pipe
    overflows: list[int] = []
    ended: list[OSError] = []
    writer = Writer(_write_all(w), w, ended.append, overflow=overflows.append, limit=10000)  # type: ignore[arg-type]
    _full(w)
    done = threading.Event()

    def flood() -> None:
        for _ in range(200):
            writer.send(b"e" * 100, wait=False)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10), "a send without wait waited"
    assert overflows == [10100] and writer.broken
    writer.send(b"dropped", wait=False)
    writer.send(b"dropped too")
    assert overflows == [10100]
    thread = writer.thread
    assert thread is not None
    os.close(r)  # the write under way (the writer thread's) fails
    writer.release()
    thread.join(10)
    assert not thread.is_alive() and len(ended) <= 1  # a write was under way, or not yet


def test_a_thread_that_may_wait_waits_while_the_queue_is_full(pipe: tuple[int, int]) -> None:
    """Past the bound, a sender that may wait (a caller, an answer) waits until the writer has
    taken the queue: the peer is slow, not gone.  Everything arrives, in order."""
    r, w = pipe
    overflows: list[int] = []
    writer = Writer(_write_all(w), w, _never_fails, overflow=overflows.append, limit=1000)  # type: ignore[arg-type]
    filled = _full(w)
    first = threading.Thread(target=writer.send, args=(b"a" * 10,), daemon=True)
    first.start()  # the writer, blocked: the pipe is full
    while writer.idle:
        time.sleep(0.001)
    sent: list[int] = []

    def sender(n: int) -> None:
        writer.send(bytes([ord("b") + n]) * 600)
        sent.append(n)

    second = threading.Thread(target=sender, args=(0,), daemon=True)
    second.start()
    second.join(10)
    assert sent == [0], "a frame under the bound waited"
    third = threading.Thread(target=sender, args=(1,), daemon=True)
    third.start()  # 600 bytes wait already: 1200 would pass the bound, but it may wait
    third.join(10)
    assert sent == [0, 1]
    fourth = threading.Thread(target=sender, args=(2,), daemon=True)
    fourth.start()  # 1200 >= 1000 wait: this one waits for the writer to take them
    fourth.join(0.3)
    assert fourth.is_alive() and sent == [0, 1]
    got = _read_exactly(r, filled + 10 + 600 + 600 + 600)
    fourth.join(10)
    first.join(10)
    assert sent == [0, 1, 2] and not overflows and not writer.broken
    assert got[filled:] == b"a" * 10 + b"b" * 600 + b"c" * 600 + b"d" * 600


def test_stop_releases_a_thread_waiting_for_room(pipe: tuple[int, int]) -> None:
    r, w = pipe
    ended: list[OSError] = []  # the blocked write ends when the reading end closes
    writer = Writer(_write_all(w), w, ended.append, limit=100)  # type: ignore[arg-type]
    _full(w)
    blocked = threading.Thread(target=writer.send, args=(b"a",), daemon=True)
    blocked.start()
    while writer.idle:
        time.sleep(0.001)
    writer.send(b"b" * 100)  # queued: at the bound now
    waiting = threading.Thread(target=writer.send, args=(b"c",), daemon=True)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive()
    writer.stop()
    waiting.join(10)
    assert not waiting.is_alive() and writer.broken
    os.close(r)
    blocked.join(10)
    assert not blocked.is_alive()
