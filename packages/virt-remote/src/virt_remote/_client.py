"""The near side: a peer per far side (one SSH connection, or one daemon socket), the driver
object that proxies every hook, and the stream a console becomes.

The public API is synchronous.  A call encodes its message in the calling thread, hands the
frame to the link and waits for its answer: calls from several threads overlap on one
connection.  A call alone in flight reads its answer itself; others' answers are read by the
link's reader (the process's asyncio loop for SSH, a watch thread for unix sockets and
``ext``), which wakes their callers.  Events are re-emitted from a thread of their own, in
order, so that a callback may call the API again.
"""

from __future__ import annotations

import itertools
import keyword
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from virt import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._spectable import SPECS as _SPECS
from virt.plugin import OpenRequest

from virt_remote import _wire
from virt_remote._wake import EVENTFD, Wake
from virt_remote._wire import ProtocolError
from virt_remote._writer import Writer

__all__ = ["Peer", "RemoteConnection", "RemoteStream", "open_remote"]

log = logging.getLogger("virt.remote")

PROTOCOL_VERSION = 1
FEATURES = ("events", "streams", "keepalive", "readonly", "volume-streams")
DEFAULT_HELPER = "virt-remote-helper"
#: seconds the far side has to start and answer the handshake
HANDSHAKE_TIMEOUT = 60.0
#: the most stream data kept for streams whose ``sopen`` answer is still on its way
PARKED_MAX = 1 << 20


def lost_error(detail: str) -> VirtError:
    return VirtError(ErrorNumber.SYSTEM_ERROR, detail, domain=ErrorDomain.RPC)


def error_from_body(body: Any) -> VirtError:
    if type(body) is not dict:
        return VirtError(ErrorNumber.RPC, f"malformed error from the far side: {body!r}"[:300], domain=ErrorDomain.RPC)
    message = body.get("message")
    detail = body.get("detail")
    return VirtError(body.get("code", ErrorNumber.INTERNAL_ERROR), detail if isinstance(detail, str) else None,
                     domain=body.get("domain", ErrorDomain.REMOTE),
                     message=message if isinstance(message, str) else None)


class _Waiter(Wake):
    """Where a synchronous caller waits for its answer: on the calling thread's eventfd, so
    that the reader's wake-up does not make it wake into a GIL the reader holds
    (:mod:`virt_remote._wake`); on a lock where another thread may wait (``shared``)."""

    __slots__ = ("ok", "value")

    def __init__(self, shared: bool = False) -> None:
        super().__init__(shared)
        self.ok = False
        self.value: Any = None


class _AsyncWaiter:
    """A waiter whose answer resolves a future of the caller's event loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: Any, future: Any) -> None:
        self.loop = loop
        self.future = future

    def settle(self, ok: bool, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, ok, value)
        except RuntimeError:
            pass  # that loop is closed: nobody waits any more


def _settle(future: Any, ok: bool, value: Any) -> None:
    if not future.done():
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Link:
    """A byte pipe carrying frames to the far side; the reader calls ``peer.on_body``."""

    description = "?"
    peer: Peer
    #: set by a link whose calling threads may read the answers themselves: called with a
    #: call's waiter (and its frame, to send first), it reads and handles what arrives until
    #: that waiter is done, or returns early (leaving the rest to the link's own reader)
    read_until: Callable[[Wake, bytes | None], None] | None = None

    def send(self, frame: bytes, wait: bool = True) -> None:
        """Send ``frame``; without ``wait``, never wait for the far side to take it (it waits
        in a buffer, or for another thread, instead): a keepalive ping, which must not stop the
        keepalive from noticing that the far side stopped."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _overflowed(self, queued: int) -> None:
        """The far side stopped reading while we owe it more than the writers' bound
        (:data:`~virt_remote._writer.QUEUE_MAX`; pongs to its pings): it is dropped."""
        self.peer.fail(lost_error(f"connection to {self.description} was lost: the far side stopped reading "
                                  f"({queued} bytes wait to be sent to it)"))


class Peer:
    """One far side: request ids, waiters, events, streams and keepalive."""

    def __init__(self, key: tuple[Any, ...], description: str, keepalive_interval: float = 5.0,
                 keepalive_count: int = 5) -> None:
        self.key = key
        self.description = description
        self.link: Link | None = None
        self.pending: dict[int, _Waiter | _AsyncWaiter] = {}
        self._ids = itertools.count(1)
        self.sessions: dict[int, RemoteConnection] = {}
        self.streams: dict[int, RemoteStream] = {}
        #: stream messages that came before their stream was registered (its ``sopen``
        #: answer and its first data can arrive in one read, handled before the caller runs),
        #: kept while a ``sopen`` is in flight, up to :data:`PARKED_MAX` bytes
        self._parked: list[list[Any]] = []
        self._parked_bytes = 0
        self._opening = 0
        self._streams_lock = threading.Lock()
        self.lost: VirtError | None = None
        #: set when the keepalive gave up on the far side (it stopped answering)
        self.stalled = False
        self.last_rx = time.monotonic()
        self.refs = 0
        #: requests sent so far (each one round trip)
        self.requests = 0
        self.features: frozenset[str] = frozenset()
        self.keepalive = (keepalive_interval, keepalive_count)
        self._events: queue.SimpleQueue[tuple[int, str, Any] | None] | None = None
        self._events_lock = threading.Lock()
        self._stop = threading.Event()
        self.far_stderr = bytearray()
        #: the ``hello`` sent but not yet waited for: the first ``open`` leaves right behind it
        #: (the far side answers ``hello`` before it reads the next frame), so that a new
        #: connection costs one round trip through the far side, not two
        self.greeting: _Waiter | None = None
        self._greeting_lock = threading.Lock()

    def greeted(self) -> None:
        """Wait for the answer to ``hello`` if it is still on its way (and check it)."""
        if self.greeting is None:
            return
        with self._greeting_lock:
            hello, self.greeting = self.greeting, None
            if hello is not None:
                _finish_greeting(self, hello)

    # -- requests --------------------------------------------------------------------------

    def request(self, kind: str, *args: Any, timeout: float | None = None) -> Any:
        """Send ``[kind, id, *args]`` (already plain data) and wait for its answer; with
        ``timeout``, a far side that does not answer in time is dropped."""
        link = self.link
        if timeout is None and link is not None and link.read_until is not None:
            waiter, frame = self._register(kind, args, False)
            link.read_until(waiter, frame)  # sends it, then reads (if it may) until answered
            return self.wait(waiter, kind)
        return self.wait(self.send_request(kind, *args), kind, timeout)

    def send_request(self, kind: str, *args: Any, shared: bool = False) -> _Waiter:
        """Send ``[kind, id, *args]``; :meth:`wait` on what this returns gives the answer
        (so that several requests may leave before the first answer comes back), in this
        thread, or in any with ``shared``."""
        waiter, frame = self._register(kind, args, shared)
        link = self.link
        assert link is not None
        link.send(frame)
        return waiter

    def _register(self, kind: str, args: tuple[Any, ...], shared: bool) -> tuple[_Waiter, bytes]:
        """A new request's waiter, pending, and its frame."""
        lost = self.lost
        if lost is not None:
            raise _again(lost)
        rid = next(self._ids)
        self.requests = rid
        waiter = _Waiter(shared)
        self.pending[rid] = waiter
        try:
            frame = _wire.encode_frame([kind, rid, *args])
        except ProtocolError as exc:
            self.pending.pop(rid, None)
            raise VirtError(ErrorNumber.RPC, str(exc), domain=ErrorDomain.RPC) from None
        if self.lost is not None and self.pending.pop(rid, None) is not None:
            raise _again(self.lost)
        return waiter, frame

    def wait(self, waiter: _Waiter, kind: str, timeout: float | None = None) -> Any:
        if timeout is None and not waiter.done:
            link = self.link
            read = link.read_until if link is not None else None
            if read is not None:
                read(waiter, None)
        if not waiter.wait(timeout):
            self.fail(lost_error(f"{self.description} did not answer {kind!r} within {timeout:g}s"))
            waiter.wait()
        if waiter.ok:
            return waiter.value
        raise waiter.value

    def request_async(self, kind: str, *args: Any) -> Any:
        """Send ``[kind, id, *args]``; an asyncio future (of the running loop) gets the answer."""
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        lost = self.lost
        if lost is not None:
            future.set_exception(_again(lost))
            return future
        rid = next(self._ids)
        self.requests = rid
        try:
            frame = _wire.encode_frame([kind, rid, *args])
        except ProtocolError as exc:
            future.set_exception(VirtError(ErrorNumber.RPC, str(exc), domain=ErrorDomain.RPC))
            return future
        self.pending[rid] = _AsyncWaiter(loop, future)
        if self.lost is not None and self.pending.pop(rid, None) is not None:
            future.set_exception(_again(self.lost))
            return future
        assert self.link is not None
        try:
            self.link.send(frame)
        except VirtError as exc:
            if self.pending.pop(rid, None) is not None:
                future.set_exception(exc)
        return future

    def call(self, session: int, hook: str, kwargs: dict[str, Any]) -> Any:
        try:
            wire_args = {k: _wire.to_wire(v) for k, v in kwargs.items()}
        except ProtocolError as exc:
            raise VirtError(ErrorNumber.INVALID_ARG, f"{hook}: {exc}") from None
        return self.request("call", session, hook, wire_args)

    def notify(self, message: list[Any], wait: bool = True) -> None:
        """Send a message that has no answer (stream data, pings, pongs); ``wait`` as
        :meth:`Link.send`."""
        if self.lost is None and self.link is not None:
            self.link.send(_wire.encode_frame(message), wait)

    # -- what the reader hands over ---------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self.last_rx = time.monotonic()
        try:
            message = _wire.check_message(_wire.from_wire(body))
        except ProtocolError as exc:
            self.fail(VirtError(ErrorNumber.RPC, f"the far side sent a bad frame: {exc}", domain=ErrorDomain.RPC))
            return
        kind = message[0]
        if kind == "ok" or kind == "err":
            if len(message) != 3 or type(message[1]) is not int:
                self.fail(VirtError(ErrorNumber.RPC, f"malformed answer {kind!r}", domain=ErrorDomain.RPC))
                return
            waiter = self.pending.pop(message[1], None)
            if waiter is None:
                if message[1] == 0 and kind == "err":
                    log.warning("virt-remote: the far side refused a frame: %s", error_from_body(message[2]))
                return
            if isinstance(waiter, _AsyncWaiter):
                if kind == "ok":
                    waiter.settle(True, message[2])
                else:
                    waiter.settle(False, error_from_body(message[2]))
                return
            if kind == "ok":
                waiter.ok, waiter.value = True, message[2]
            else:
                waiter.value = error_from_body(message[2])
            waiter.wake()
        elif kind == "ev":
            self._queue_event(message)
        elif kind == "ping":
            self.notify(["pong", message[1] if len(message) > 1 else 0], wait=False)
        elif kind == "pong":
            pass
        elif kind in ("sdata", "sack", "sclose"):
            if len(message) < 3 or type(message[1]) is not int:
                return
            stream = self.streams.get(message[1])
            if stream is None:
                with self._streams_lock:
                    stream = self.streams.get(message[1])
                    if stream is None:
                        self._park(message)
                        return
            stream._on_message(message)
        elif kind == "bye":
            self.fail(error_from_body(message[1] if len(message) > 1 else None))
        else:
            self.fail(VirtError(ErrorNumber.RPC, f"the far side sent an unexpected {kind[:40]!r} message: is it "
                                "virt-remote-helper?", domain=ErrorDomain.RPC))

    def _park(self, message: list[Any]) -> None:
        """Under ``_streams_lock``: keep a message for a stream not registered yet."""
        size = len(message[2]) if type(message[2]) is bytes else 0
        if self._opening and self._parked_bytes + size <= PARKED_MAX:
            self._parked.append(message)
            self._parked_bytes += size

    def open_stream(self, session: int, kind: str, args: dict[str, Any],
                    make: Callable[[int], RemoteStream]) -> RemoteStream:
        """``sopen`` a stream and register what ``make(id)`` returns, with whatever arrived for
        it before the registration."""
        with self._streams_lock:
            self._opening += 1
        try:
            sid = self.request("sopen", session, kind, args)
            if type(sid) is not int:
                raise VirtError(ErrorNumber.RPC, f"bad stream id {sid!r}", domain=ErrorDomain.RPC)
            stream = make(sid)
            with self._streams_lock:
                self.streams[sid] = stream
                early = [m for m in self._parked if m[1] == sid]
                self._parked = [m for m in self._parked if m[1] != sid]
                self._parked_bytes -= sum(len(m[2]) for m in early if type(m[2]) is bytes)
                for message in early:
                    stream._on_message(message)
        finally:
            with self._streams_lock:
                self._opening -= 1
                if not self._opening:
                    self._parked, self._parked_bytes = [], 0
        return stream

    def fail(self, error: VirtError) -> None:
        """The far side is gone: every waiting call gets ``error``, and so does every later one."""
        if self.lost is not None:
            return
        self.lost = error
        self._stop.set()
        while self.pending:
            try:
                _rid, waiter = self.pending.popitem()
            except KeyError:
                break
            if isinstance(waiter, _AsyncWaiter):
                waiter.settle(False, _again(error))
                continue
            waiter.value = _again(error)
            waiter.wake()
        for stream in list(self.streams.values()):
            stream._on_message(["sclose", stream.id, None])
        _forget(self)
        if self._events is not None:
            self._events.put(None)
        link = self.link
        if link is not None:
            try:
                link.close()
            except Exception:
                log.debug("virt-remote: closing the link failed", exc_info=True)

    # -- events ----------------------------------------------------------------------------

    def _queue_event(self, message: list[Any]) -> None:
        if len(message) != 4 or type(message[1]) is not int or type(message[2]) is not str:
            return
        if type(message[3]) is not dict:
            return
        if self._events is None:
            with self._events_lock:
                if self._events is None:
                    self._events = queue.SimpleQueue()
                    threading.Thread(target=self._deliver_events, name="virt-remote-events", daemon=True).start()
        self._events.put((message[1], message[2], message[3]))

    def _deliver_events(self) -> None:
        assert self._events is not None
        while True:
            item = self._events.get()
            if item is None:
                return
            sid, hook, kwargs = item
            conn = self.sessions.get(sid)
            if conn is None:
                continue
            try:
                getattr(conn.hook, hook)(**kwargs)
            except Exception:
                log.exception("virt-remote: delivering %s failed", hook)

    # -- keepalive ---------------------------------------------------------------------------

    def start_keepalive(self) -> None:
        interval, _count = self.keepalive
        if interval > 0:
            threading.Thread(target=self._keepalive, name="virt-remote-keepalive", daemon=True).start()

    def _keepalive(self) -> None:
        interval, count = self.keepalive
        step = max(min(interval, 1.0) / 4, 0.02)
        pinged = 0.0
        while not self._stop.wait(step):
            now = time.monotonic()
            idle = now - self.last_rx
            if idle > interval * count:
                self.stalled = True
                self.fail(lost_error(f"connection to {self.description} closed: no answer to "
                                     f"{count} keepalive messages in {interval * count:g}s"))
                return
            if idle >= interval and now - pinged >= interval:
                pinged = now
                try:
                    self.notify(["ping", 0], wait=False)
                except VirtError:
                    return


def _again(error: VirtError) -> VirtError:
    """A fresh exception with the same code, domain and message (each raise its own)."""
    return VirtError(error.code, error.detail, domain=error.domain, message=error.message)


# -- links -----------------------------------------------------------------------------------


class SocketLink(Link):
    """A unix socket (the daemon) or a child's pipes (``ext``, ``client=openssh``).

    Where ``select.epoll`` and ``os.eventfd`` exist (Linux), a thread of its own watches the
    descriptor, and a calling thread that finds nobody reading reads the answer to its call
    itself (:meth:`_read_until`), as on an SSH link: the watcher's hand-off was about a third
    of a round trip.  Elsewhere, a reader thread blocked in ``recv`` reads everything.

    Sends combine (:class:`~virt_remote._writer.Writer`): a thread that finds no write under
    way writes its frame and whatever other threads queued meanwhile; the others go back to
    waiting for their answers.  The reading thread never waits on a write (its pong could wait
    for a far side that waits for us to read)."""

    def __init__(self, peer: Peer, recv: Callable[[int], bytes], send: Callable[[bytes], Any],
                 close: Callable[[], None], description: str, fd: int | None = None,
                 send_fd: int | None = None) -> None:
        self.peer = peer
        self._recv = recv
        self._close = close
        self.out = Writer(send, send_fd, self._write_failed, overflow=self._overflowed)
        self.description = description
        self.drainer: threading.Thread | None = None
        self.reader: threading.Thread | None = None
        self._fd, self._send_fd = fd, send_fd
        # Whoever reads (the watcher or a calling thread) holds this, and only ever waits in
        # its poll meanwhile: never on a send, which could wait for a far side that waits for
        # us to read.
        self._rlock = threading.Lock()
        self._reading_thread = 0
        self._buf = bytearray()
        self._watch: Any = None
        self._readable: select.poll | None = None

    def start(self) -> None:
        from virt_remote._server import _Watch

        if self._fd is not None and self._send_fd is not None and EVENTFD:
            self._watch = _Watch.make(self._fd, self._on_input)
        if self._watch is not None:
            self._readable = select.poll()
            self._readable.register(self._fd, select.POLLIN)  # type: ignore[arg-type]
            self.read_until = self._read_until
            self._watch.arm()
            return
        self.reader = threading.Thread(target=self._read, name="virt-remote-reader", daemon=True)
        self.reader.start()

    # -- reading on a watch (epoll) --------------------------------------------------------

    def _on_input(self) -> None:
        """The watcher thread: the descriptor became readable while armed (one shot).  While
        calls are in flight it reads on, blocked in ``recv`` as a reader thread would be, and
        watches again once none is: each system call that lets the GIL go is, with many
        threads waiting for it, a hand-over to another CPU and back."""
        with self._rlock:
            if self.peer.lost is not None:
                return
            self._reading_thread = threading.get_ident()
            try:
                # a calling thread may have read it all between the wake-up and the lock
                if self._ready():
                    while True:
                        if not self._take(self._recv_chunk()):
                            return  # the link ended: nothing more to watch
                        if not self.peer.pending:
                            break
                self._watch.arm()
            finally:
                self._reading_thread = 0

    def _recv_chunk(self) -> bytes | str:
        """What the descriptor has (it polled readable, and we hold the reading), or why not."""
        try:
            return self._recv(READ_MAX) or "end of file"
        except OSError as exc:
            return exc.strerror or str(exc)

    def _take(self, data: bytes | str) -> bool:
        """Under the reading: hand on the whole frames of ``data``; False when the link ended
        (``data`` says why) or sent a bad frame."""
        if isinstance(data, str):
            self._ended(data)
            return False
        self._buf += data
        try:
            for body in _wire.frames_in(self._buf):
                self.peer.on_body(body)
                if self.peer.lost is not None:
                    return False
        except ProtocolError as exc:
            self.peer.fail(VirtError(ErrorNumber.RPC, f"{self.description}: {exc}", domain=ErrorDomain.RPC))
            return False
        return True

    def _ended(self, why: str) -> None:
        if self.drainer is not None:
            self.drainer.join(2)  # what the child said as it ended explains the end
        extra = self.peer.far_stderr.decode("utf-8", "replace").strip()
        self.peer.fail(lost_error(f"connection to {self.description} was lost: {why}"
                                  + (f": {extra[-500:]}" if extra else "")))

    def _read_until(self, waiter: Wake, frame: bytes | None) -> None:
        """Send ``frame`` (if any), then, if nobody else reads, read and hand on what arrives in
        the calling thread until ``waiter`` is done.  The watcher is disarmed before the frame
        leaves (a caller preempted between its send and its read would leave the answer to
        it).  Only a frame that leaves without waiting is sent while reading: one that would
        wait (the far side not reading) goes as ever, with the watcher reading meanwhile."""
        efd = waiter.fd
        reading = False
        # Only a call alone in flight: calls that overlap leave the reading to the watcher,
        # which then reads on without sleeping (a reading handed from thread to thread, each
        # hand-over a wake-up on another CPU, halved what 32 threads did).
        if efd is not None and len(self.peer.pending) <= 1 and self._rlock.acquire(blocking=False):
            try:
                if waiter.done or self.peer.lost is not None:
                    pass
                elif frame is None:
                    self._reading_thread = threading.get_ident()
                    self._watch.disarm()
                    reading = True
                elif self._send_at_once(frame):
                    reading, frame = True, None
            finally:
                if not reading:
                    self._reading_thread = 0
                    self._rlock.release()
        try:
            if frame is not None:
                self.send(frame)
            if reading:
                self._read_while(waiter, efd.fd)  # type: ignore[union-attr]
        finally:
            if reading:
                self._reading_thread = 0
                if self.peer.lost is None:
                    self._watch.arm()
                self._rlock.release()

    def _send_at_once(self, frame: bytes) -> bool:
        """Under the reading: disarm the watcher and send ``frame`` if that cannot wait (a frame
        of at most :data:`~virt_remote._writer.AT_ONCE` bytes, no write under way nor queued,
        the descriptor writable now).  False, with nothing sent and the watcher armed, if it
        could."""
        if not self.out.claim(len(frame)):
            return False
        self._reading_thread = threading.get_ident()
        self._watch.disarm()
        self.out.run(frame, wait=False)
        return True

    def _ready(self) -> bool:
        """Whether reading would not wait, now: an end or an error counts, as what follows then
        fails at once (and a hang-up left unread would wake the watcher again and again)."""
        return any(events & (select.POLLIN | select.POLLHUP | select.POLLERR)
                   for _fd, events in self._readable.poll(0))  # type: ignore[union-attr]

    def _read_while(self, waiter: Wake, efd: int) -> None:
        fd = self._fd
        poller = select.poll()
        poller.register(fd, select.POLLIN)  # type: ignore[arg-type]
        poller.register(efd, select.POLLIN)
        while not waiter.done:
            ready = False
            for polled, _events in poller.poll():
                if polled == efd:
                    os.eventfd_read(efd)  # another thread's wake-up (or one left from an earlier wait)
                else:
                    ready = True
            if waiter.done or not ready:
                continue
            data = self._recv_chunk()
            if isinstance(data, str):
                return  # the end: the watcher, armed again, finds it and says why
            if not self._take(data):
                return

    # -- reading on a thread of its own (no epoll) -----------------------------------------

    def _read(self) -> None:
        from virt_remote._server import FrameReader

        reader = FrameReader(self._recv)
        why = "end of file"
        self._reading_thread = threading.get_ident()  # for ever: its writes never wait
        try:
            while True:
                body = reader.read()
                if body is None:
                    break
                self.peer.on_body(body)
                if self.peer.lost is not None:
                    return
        except ProtocolError as exc:
            self.peer.fail(VirtError(ErrorNumber.RPC, f"{self.description}: {exc}", domain=ErrorDomain.RPC))
            return
        except OSError as exc:
            why = exc.strerror or str(exc)
        self._ended(why)

    def send(self, frame: bytes, wait: bool = True) -> None:
        """Queue ``frame``; written at once if no write is under way (with what else queued
        meanwhile).  From the reading thread (a pong), or without ``wait``, it never waits."""
        self.out.send(frame, wait and threading.get_ident() != self._reading_thread)

    def _write_failed(self, exc: OSError) -> None:
        """A write failed: the link ends, and the sending thread's error says it was lost, as a
        failed read's does (which of the two meets a dead far side first is chance)."""
        self._ended(f"cannot send data: {exc.strerror or exc}")
        raise _again(self.peer.lost) from None  # type: ignore[arg-type]

    def close(self) -> None:
        self.out.close()
        watch = self._watch
        if watch is not None:
            watch.close()
            # Let a read under way end before the descriptor closes (its number could be
            # reused): a calling thread that reads was woken first (its call failed); the
            # watcher, blocked in recv for a far side that went silent, ends with the close.
            if self._reading_thread != threading.get_ident() and self._rlock.acquire(timeout=0.2):
                self._rlock.release()
        self._close()


#: what a reading thread asks the descriptor for at a time
READ_MAX = 65536


# -- the driver object ----------------------------------------------------------------------


class RemoteConnection:
    """The remote driver's connection object: every hook the far side implements, forwarded.

    Its class is made per set of hooks (:func:`connection_class`), one method per hook whose
    parameters are the hookspec's, so the core binds it like any driver's.
    """

    def __init__(self, request: OpenRequest, peer: Peer, session: int, far_uri: str) -> None:
        self.hook = request.hook
        self.uri = request.uri
        self.far_uri = far_uri
        self.readonly = request.readonly
        self._peer = peer
        self._session = session
        self._subscribed: set[str] = set()
        self._sub_lock = threading.Lock()
        self._closed = False

    def _remote(self, hook: str, kwargs: dict[str, Any]) -> Any:
        return self._peer.call(self._session, hook, kwargs)

    @property
    def peer(self) -> Peer:
        return self._peer

    @hookimpl
    def virt_connect_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        peer = self._peer
        try:
            if peer.lost is None:
                peer.request("close", self._session)
        except VirtError:
            pass
        finally:
            peer.sessions.pop(self._session, None)
            _release(peer)

    @hookimpl
    def virt_connect_is_secure(self) -> bool:
        return self.uri.transport in ("ssh", "unix", "ext")

    @hookimpl
    def virt_connect_is_encrypted(self) -> bool:
        return self.uri.transport == "ssh"

    def on_subscribe(self, kind: type) -> None:
        """The core tells the driver that someone subscribed to events of ``kind``: ask the
        far side to forward the event hooks whose records are of that kind."""
        from virt_remote._server import _event_hooks

        wanted = [h for h, record in _event_hooks().items() if issubclass(record, kind) or issubclass(kind, record)]
        with self._sub_lock:
            for hook in wanted:
                if hook not in self._subscribed:
                    self._peer.request("sub", self._session, hook)
                    self._subscribed.add(hook)

    def open_volume_stream(self, key: str, mode: str, offset: int, length: int, flags: int) -> RemoteStream | None:
        """A volume's content as a stream of the protocol (``StorageVol.download``/``upload``):
        ``mode`` "download" (``length`` 0: to the end) or "upload".  None when the far side
        predates volume streams (the caller then moves the content in chunked calls)."""
        if "volume-streams" not in self._peer.features:
            return None
        args: dict[str, Any] = {"key": key, "offset": offset, "flags": flags}
        if mode == "download":
            args["length"] = length
        window, piece = _wire.VOLUME_WINDOW, _wire.VOLUME_PIECE
        stream = self._peer.open_stream(self._session, f"vol-{mode}", args,
                                        lambda sid: RemoteStream(self._peer, sid, window, piece))
        if mode == "download":
            self._peer.notify(["sack", stream.id, window])  # the far side sends nothing before
        return stream

    def open_console_stream(self, uuid: str, dev_name: str | None, flags: int) -> RemoteStream:
        """The console of a domain on the far side as a stream (``Domain.open_console``)."""
        return self._peer.open_stream(self._session, "console", {"uuid": uuid, "dev_name": dev_name, "flags": flags},
                                      lambda sid: RemoteStream(self._peer, sid))


@hookimpl
def _console_path_refused(self: RemoteConnection, uuid: str, dev_name: str | None, flags: int) -> str:
    """A console's pty is on the far side: its path means nothing here (and could name
    another pty of this host), so the remote console is a stream (``Domain.open_console``)."""
    raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                    f"the console of a domain on {self.uri.host or 'another node'} is not a local device: "
                    "use Domain.open_console(), which relays it as a stream", domain=ErrorDomain.REMOTE)


_console_path_refused.__name__ = "virt_domain_open_console"
_console_path_refused.__qualname__ = "RemoteConnection.virt_domain_open_console"
_methods: dict[str, Any] = {"virt_domain_open_console": _console_path_refused}
_classes: dict[frozenset[str], type[RemoteConnection]] = {}
_NOT_FORWARDED = frozenset({"virt_connect_close", "virt_connect_get_uri", "virt_connect_is_secure",
                            "virt_connect_is_encrypted"})


def _method(name: str) -> Any:
    found = _methods.get(name)
    if found is None:
        params = _SPECS[name][2]  # name is one of _operation_hooks(), which come from this table
        for word in (name, *params):
            if not word.isidentifier() or keyword.iskeyword(word) or word == "self":
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"hook {name} has an unusable parameter {word!r}")
        args = "".join(f", {p}" for p in params)
        kwargs = ", ".join(f"{p!r}: {p}" for p in params)
        source = f"def {name}(self{args}):\n    return self._remote({name!r}, {{{kwargs}}})\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<virt_remote hook {name}>", "exec"), namespace)
        fn = namespace[name]
        fn.__qualname__ = f"RemoteConnection.{name}"
        fn.__doc__ = f"Forward {name} to the far side."
        found = _methods[name] = hookimpl(fn)
    return found


def prepare() -> None:
    """Build, once per process, one forwarding method per hook (their parameters from the
    core's generated table, not from the spec modules: ~10 ms of CPU in a fresh process,
    against ~90 when it read every annotation), which a new connection spends while the far
    side starts, not after."""
    from virt_remote._server import _operation_hooks

    for name in _operation_hooks() - _NOT_FORWARDED:
        try:
            _method(name)
        except VirtError:
            pass  # a hook it cannot forward: connection_class says so if the far side offers it


def connection_class(hooks: Iterable[str]) -> type[RemoteConnection]:
    """The connection class forwarding exactly ``hooks`` (the far side's, that we know too)."""
    from virt_remote._server import _operation_hooks

    known = _operation_hooks()
    wanted = frozenset(h for h in hooks if h in known and h not in _NOT_FORWARDED)
    cls = _classes.get(wanted)
    if cls is None:
        cls = type("RemoteConnection", (RemoteConnection,), {h: _method(h) for h in sorted(wanted)})
        _classes[wanted] = cls
    return cls


# -- streams ---------------------------------------------------------------------------------


class RemoteStream:
    """A duplex byte stream to the far side (a console, a volume's content): ``read``,
    ``write``, ``finish``, ``close``.

    Flow control, both ways: the far side sends at most a window of bytes that this side has
    not acknowledged, and this side acknowledges what ``read`` hands to the caller, so a
    reader that stops reading stops the far side instead of filling memory; ``write`` sends
    at most ``send_window`` bytes the far side has not acknowledged (it acknowledges what it
    wrote), and waits for the rest.
    """

    def __init__(self, peer: Peer, sid: int, send_window: int = _wire.STREAM_WINDOW, piece: int = _wire.STREAM_PIECE,
                 recv_window: int | None = None) -> None:
        self._peer = peer
        self.id = sid
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._error: VirtError | None = None
        self._window = send_window
        self._piece = min(piece, send_window)
        self._credit = send_window
        #: the most the far side may have sent and this side not yet read (its window)
        self._recv_window = send_window if recv_window is None else recv_window
        self.closed = False

    def _on_message(self, message: list[Any]) -> None:
        overrun = False
        with self._cond:
            if message[0] == "sdata" and type(message[2]) is bytes:
                if self._eof:
                    return
                if len(self._buf) + len(message[2]) > self._recv_window:
                    # a far side that ignores our acknowledgements must not fill memory here
                    overrun = True
                    self._buf.clear()
                    self._eof = True
                    self._error = VirtError(ErrorNumber.RPC, f"the far side sent more than the stream's window of "
                                            f"{self._recv_window} bytes unacknowledged", domain=ErrorDomain.RPC)
                else:
                    self._buf += message[2]
            elif message[0] == "sack" and type(message[2]) is int and message[2] > 0:
                self._credit += message[2]
            elif message[0] == "sclose":
                self._eof = True
                if message[2] is not None:
                    self._error = error_from_body(message[2])
            self._cond.notify_all()
        if overrun:
            try:
                self._peer.notify(["sclose", self.id, None])
            except VirtError:
                pass

    def _gone(self) -> bool:
        return self._eof or self._peer.lost is not None

    def read(self, size: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the stream or when ``timeout`` passes."""
        with self._cond:
            if not self._buf and not self._eof:
                self._cond.wait_for(lambda: bool(self._buf) or self._gone(), timeout)
            data = bytes(self._buf[:size])
            del self._buf[:size]
            if not data and self._error is not None:
                raise _again(self._error)
            if not data and self._peer.lost is not None:
                raise _again(self._peer.lost)
        if data and not self.closed:
            try:
                self._peer.notify(["sack", self.id, len(data)])
            except VirtError:
                pass
        return data

    def _closed_error(self) -> VirtError:
        if self._error is not None:
            return _again(self._error)
        if self._peer.lost is not None:
            return _again(self._peer.lost)
        return VirtError(ErrorNumber.INVALID_STREAM, "the stream is closed", domain=ErrorDomain.STREAMS)

    def write(self, data: bytes) -> int:
        """Send all of ``data``, waiting while the far side has a window's worth unacknowledged."""
        if self.closed:
            raise self._closed_error()
        view = memoryview(data)
        for start in range(0, len(view), self._piece):
            piece = bytes(view[start:start + self._piece])
            with self._cond:
                while self._credit < len(piece) and not self._gone():
                    self._cond.wait(0.5)
                if self._eof or self._peer.lost is not None:
                    raise self._closed_error()
                self._credit -= len(piece)
            self._peer.notify(["sdata", self.id, _wire.to_wire(piece)])
        return len(data)

    def finish(self) -> None:
        """Wait until the far side acknowledged everything written (an upload is complete
        when this returns); raises its error if it failed."""
        with self._cond:
            while self._credit < self._window and not self._gone():
                self._cond.wait(0.5)
            if self._error is not None or (self._credit < self._window and self._gone()):
                raise self._closed_error()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._peer.notify(["sclose", self.id, None])
        except VirtError:
            pass
        self._peer.streams.pop(self.id, None)

    def __enter__(self) -> RemoteStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the pool of peers ------------------------------------------------------------------------

_pool: dict[tuple[Any, ...], Peer] = {}
_pool_lock = threading.Lock()
_connecting: dict[tuple[Any, ...], threading.Lock] = {}


def _forget(peer: Peer) -> None:
    with _pool_lock:
        if _pool.get(peer.key) is peer:
            del _pool[peer.key]


def _release(peer: Peer) -> None:
    with _pool_lock:
        peer.refs -= 1
        last = peer.refs <= 0
        if last and _pool.get(peer.key) is peer:
            del _pool[peer.key]
        if last and peer.key not in _pool:
            _connecting.pop(peer.key, None)  # at worst two threads connect at once, each its own peer
    if last:
        peer.fail(VirtError(ErrorNumber.INVALID_CONN, "connection is closed"))


def _acquire(key: tuple[Any, ...], connect: Callable[[], Peer]) -> Peer:
    with _pool_lock:
        lock = _connecting.setdefault(key, threading.Lock())
    with lock:
        with _pool_lock:
            peer = _pool.get(key)
            if peer is not None and peer.lost is None:
                peer.refs += 1
                return peer
        peer = connect()
        with _pool_lock:
            peer.refs += 1
            _pool[key] = peer
        return peer


def _finish_greeting(peer: Peer, hello: _Waiter) -> None:
    try:
        answer = peer.wait(hello, "hello", timeout=HANDSHAKE_TIMEOUT)
    except BaseException:
        peer.fail(peer.lost or VirtError(ErrorNumber.INVALID_CONN, "connection is closed"))
        raise
    if type(answer) is not dict or answer.get("version") != PROTOCOL_VERSION:
        peer.fail(VirtError(ErrorNumber.RPC, f"the far side speaks an unknown protocol: {answer!r}"[:300],
                            domain=ErrorDomain.RPC))
        raise _again(peer.lost)  # type: ignore[arg-type]
    peer.features = frozenset(f for f in answer.get("features", ()) if isinstance(f, str))
    peer.start_keepalive()


def _keepalive_params(uri: Any) -> tuple[float, int]:
    try:
        interval = float(uri.param("keepalive_interval", "5"))
        count = int(uri.param("keepalive_count", "5"))
    except ValueError:
        raise VirtError(ErrorNumber.INVALID_ARG, "keepalive_interval and keepalive_count must be numbers",
                        domain=ErrorDomain.REMOTE) from None
    return interval, max(count, 1)


def _connect_unix(uri: Any, key: tuple[Any, ...], path: str, autostart_ok: bool) -> Peer:
    import socket

    from virt_remote_helper import connect_or_start

    interval, count = _keepalive_params(uri)
    peer = Peer(key, f"virtd at {path}", interval, count)
    try:
        sock = connect_or_start(path, autostart_ok)
    except OSError as exc:
        raise VirtError(ErrorNumber.SYSTEM_ERROR, f"Failed to connect socket to '{path}': {exc.strerror or exc}",
                        domain=ErrorDomain.RPC) from None

    def close() -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    link = SocketLink(peer, sock.recv, sock.sendall, close, peer.description, sock.fileno(), sock.fileno())
    peer.link = link
    link.start()
    return peer


def _connect_ext(uri: Any, key: tuple[Any, ...], command: str | list[str], description: str | None = None) -> Peer:
    import shlex
    import subprocess

    interval, count = _keepalive_params(uri)
    argv = shlex.split(command) if isinstance(command, str) else command
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
    except OSError as exc:
        raise VirtError(ErrorNumber.SYSTEM_ERROR, f"cannot run {argv[0]!r}: {exc.strerror or exc}",
                        domain=ErrorDomain.RPC) from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    peer = Peer(key, description or f"helper {command!r} (pid {proc.pid})", interval, count)
    out_fd, in_fd, err = proc.stdout.fileno(), proc.stdin.fileno(), proc.stderr

    def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(in_fd, view):]

    def close() -> None:
        if peer.stalled:
            # It stopped answering: no clean end to wait for, and a thread blocked writing to
            # it is released by its end (before the descriptor closes under it).
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drainer.join(1)

    def drain_stderr() -> None:
        with err:
            for line in err:
                if len(peer.far_stderr) < 65536:
                    peer.far_stderr += line

    drainer = threading.Thread(target=drain_stderr, daemon=True, name="virt-remote-stderr")
    drainer.start()
    link = SocketLink(peer, lambda n: os.read(out_fd, n), send, close, peer.description, out_fd, in_fd)
    link.drainer = drainer
    peer.link = link
    link.start()
    return peer


def helper_command(uri: Any) -> str:
    import shlex

    command = uri.param("command") or DEFAULT_HELPER
    parts = [command]
    mode = uri.param("mode", "direct")
    if mode in ("daemon", "relay"):
        parts += ["--relay", uri.param("socket") or "auto"]
    elif mode in ("direct", "auto", "native", "legacy"):
        # The helper watches us as we watch it: a client gone silent is dropped in as long.
        interval, count = _keepalive_params(uri)
        if interval > 0:
            parts += ["--keepalive-interval", f"{interval:g}", "--keepalive-count", str(count)]
    else:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unknown remote mode '{mode}': expected direct or daemon",
                        domain=ErrorDomain.REMOTE)
    return " ".join(shlex.quote(p) for p in parts)


def open_remote(request: OpenRequest) -> RemoteConnection:
    """The remote driver's ``open``: reach the far side, say hello once, open a session."""
    uri = request.uri
    transport = uri.transport or ("tls" if uri.host else "unix")
    local = uri.without_transport()
    if any(k in _TRANSPORT_PARAMS for k, _ in local.params):  # ours, beyond libvirt's remote parameters
        import attrs

        local = attrs.evolve(local, params=tuple((k, v) for k, v in local.params if k not in _TRANSPORT_PARAMS))
    far_uri = uri.param("name") or str(local)
    params = tuple(sorted((k, v) for k, v in uri.params if k in _TRANSPORT_PARAMS))
    if transport == "ssh":
        if not uri.host:
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri}: an ssh URI needs a host", domain=ErrorDomain.REMOTE)
        from virt_remote._ssh import connect_ssh

        key: tuple[Any, ...] = ("ssh", uri.user, uri.host, uri.port, params)
        client = uri.param("client", "asyncssh")
        if client == "openssh":
            peer = _acquire(key, lambda: _openssh_handshake(uri, _connect_ext(uri, key, openssh_argv(uri),
                                                                               _ssh_where(uri) + " over OpenSSH")))
        elif client == "asyncssh":
            peer = _acquire(key, lambda: _handshake(connect_ssh(uri, key), wait=False))
        else:
            raise VirtError(ErrorNumber.INVALID_ARG, f"unknown SSH client '{client}': expected asyncssh or openssh",
                            domain=ErrorDomain.REMOTE)
    elif transport == "unix":
        if uri.host:
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri}: a unix URI names no host", domain=ErrorDomain.REMOTE)
        from virt_remote_helper import default_socket

        explicit = uri.param("socket")
        # As libvirt: /session is the user's daemon (root's too), /system the system's, and
        # anything else the system's for root, the user's for everyone else.
        system = uri.path == "/system" or (uri.path != "/session" and os.geteuid() == 0)
        path = explicit or default_socket(system)
        autostart_ok = os.environ.get("VIRT_AUTOSTART", "1") != "0" and (explicit is not None or not system)
        key = ("unix", path, params)
        peer = _acquire(key, lambda: _handshake(_connect_unix(uri, key, path, autostart_ok), wait=False))
    elif transport == "ext":
        command = uri.param("command")
        if not command:
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri}: the ext transport needs a command= parameter",
                            domain=ErrorDomain.REMOTE)
        key = ("ext", command, params, object())  # one child per connection
        peer = _acquire(key, lambda: _handshake(_connect_ext(uri, key, command), wait=False))
    else:
        raise VirtError(ErrorNumber.NO_CONNECT, f"{uri}: transport '{transport}' is not supported by virt-remote "
                        "(use +ssh, +unix or +ext)", domain=ErrorDomain.REMOTE)
    try:
        body = {"uri": far_uri, "readonly": bool(request.readonly)}
        opening = peer.send_request("open", body)
        if peer.greeting is not None:
            prepare()  # while the far side starts
        peer.greeted()
        try:
            answer = peer.wait(opening, "open")
        except VirtError as exc:
            if "(hello) must come first" not in exc.message:
                raise
            answer = peer.request("open", body)  # a far side of before hello was answered at once
        if type(answer) is not dict or type(answer.get("session")) is not int:
            raise VirtError(ErrorNumber.RPC, f"bad answer to open: {answer!r}"[:300], domain=ErrorDomain.RPC)
        cls = connection_class(answer.get("hooks") or ())
        conn = cls(request, peer, answer["session"], far_uri)
        peer.sessions[answer["session"]] = conn
        return conn
    except BaseException:
        _release(peer)
        raise


def _ssh_where(uri: Any) -> str:
    return f"{uri.user + '@' if uri.user else ''}{uri.host}{':' + str(uri.port) if uri.port else ''}"


def openssh_argv(uri: Any) -> list[str]:
    """OpenSSH's ``ssh`` running the helper (``client=openssh``): as libvirt's ``+ssh`` does,
    the system's client with its own configuration, agent, keys and known_hosts."""
    argv = [os.environ.get("VIRT_SSH", "ssh"), "-T", "-e", "none", "-o", "BatchMode=yes"]
    if os.environ.get("VIRT_SSH_CONFIG"):
        argv += ["-F", os.environ["VIRT_SSH_CONFIG"]]
    if uri.port is not None:
        argv += ["-p", str(uri.port)]
    if uri.user:
        argv += ["-l", uri.user]
    if uri.param("keyfile"):
        argv += ["-i", uri.param("keyfile")]
    if uri.param("no_verify", "0") not in ("0", ""):
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    elif uri.param("known_hosts"):
        argv += ["-o", f"UserKnownHostsFile={uri.param('known_hosts')}", "-o", "StrictHostKeyChecking=yes"]
    else:
        argv += ["-o", "StrictHostKeyChecking=yes"]
    return [*argv, "--", uri.host, helper_command(uri)]


def _openssh_handshake(uri: Any, peer: Peer) -> Peer:
    """The handshake, with ssh's own complaints turned into the errors asyncssh's would be."""
    try:
        return _handshake(peer)
    except VirtError as exc:
        lines = [line.strip() for line in peer.far_stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        said = " ".join(lines[-2:])
        where = f"{uri.host}:{uri.port or 22}"
        if "Host key verification failed" in said or "REMOTE HOST IDENTIFICATION HAS CHANGED" in said:
            raise VirtError(ErrorNumber.SSH, f"host key verification failed for {where}: {said}",
                            domain=ErrorDomain.SSH) from None
        if "Permission denied" in said:
            raise VirtError(ErrorNumber.AUTH_FAILED, f"SSH authentication to {where} failed: {said}",
                            domain=ErrorDomain.SSH) from None
        if "Connection refused" in said:
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"unable to connect to server at '{where}': Connection refused",
                            domain=ErrorDomain.RPC) from None
        raise exc from None


def _handshake(peer: Peer, wait: bool = True) -> Peer:
    """Say hello; without ``wait``, the answer is waited for by the first ``open``
    (:meth:`Peer.greeted`), which leaves right behind it."""
    try:
        hello = peer.send_request("hello", {"version": PROTOCOL_VERSION, "features": list(FEATURES)}, shared=True)
    except BaseException:
        peer.fail(peer.lost or VirtError(ErrorNumber.INVALID_CONN, "connection is closed"))
        raise
    if wait:
        _finish_greeting(peer, hello)
    else:
        peer.greeting = hello
    return peer


_TRANSPORT_PARAMS = frozenset({"command", "socket", "keyfile", "known_hosts", "known_hosts_verify", "no_verify",
                               "keepalive_interval", "keepalive_count", "mode", "sshauth", "no_tty", "proxy",
                               "client"})
