"""The far side: serves the protocol on one byte stream (a helper's stdin/stdout, or one
client of the daemon's unix socket).

Threads, not asyncio: the local drivers are synchronous.  The calls of one peer run in a
*leader/follower* pool: one thread at a time reads the next frame (the leader); when it has a
call, it runs the call itself, and the leadership goes to an idle thread (starting one when
none is idle, up to :data:`MAX_THREADS`) as soon as the peer sends more: a :class:`_Watch`
tells while the call runs.  Overlapping calls therefore really overlap, a call costs no
hand-off to another thread, and a call alone in flight wakes no other thread at all.
Keepalive pings are answered by the leader without giving up the leadership, so a long call
never starves them.
"""

from __future__ import annotations

import collections
import gc
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from virt_remote import _wire
from virt_remote._wake import Wake
from virt_remote._wire import STREAM_PIECE, STREAM_WINDOW, VOLUME_PIECE, VOLUME_WINDOW, ProtocolError
from virt_remote._writer import Writer

__all__ = ["FEATURES", "MAX_THREADS", "PROTOCOL_VERSION", "Service"]

log = logging.getLogger("virt.remote")

PROTOCOL_VERSION = 1
#: What this side understands, announced in the handshake.
FEATURES = ("events", "streams", "keepalive", "readonly", "volume-streams")
MAX_THREADS = 32
#: calls of one peer read and waiting for a thread (all MAX_THREADS busy), in number and in
#: bytes; beyond, a thread runs the call it read and nobody reads the peer meanwhile, so a
#: peer that sends calls faster than they run waits in its own send (libvirt's
#: ``max_client_requests``, far more generous)
MAX_BACKLOG = 256
MAX_BACKLOG_BYTES = 64 * 1024 * 1024

_RPC = 7  # ErrorDomain.RPC
# what Service._read_as_leader returns besides a call to run
_ENDED: list[Any] = ["(ended)"]
_LOST: list[Any] = ["(lost the leadership)"]


class _Then:
    """A handler's result with something to do once its answer is queued: a stream's pump
    starts only then, so that none of its data reaches the peer before the stream's id."""

    __slots__ = ("result", "then")

    def __init__(self, result: Any, then: Callable[[], None]) -> None:
        self.result = result
        self.then = then


def error_body(exc: BaseException) -> dict[str, Any]:
    from virt import VirtError

    if isinstance(exc, VirtError):
        return {"code": int(exc.code), "domain": int(exc.domain), "message": exc.message, "detail": exc.detail}
    from virt import ErrorNumber

    return {"code": int(ErrorNumber.INTERNAL_ERROR), "domain": _RPC,
            "message": f"internal error: {type(exc).__name__}: {exc}", "detail": str(exc)}


def rpc_error(detail: str, code: str = "RPC") -> dict[str, Any]:
    from virt import ErrorNumber
    from virt._errors import error_message

    number = ErrorNumber[code]
    return {"code": int(number), "domain": _RPC, "message": error_message(number, detail), "detail": detail}


class FrameReader:
    """Whole frames from a blocking ``recv(n) -> bytes`` (b"" at end of file)."""

    def __init__(self, recv: Callable[[int], bytes], limit: int = _wire.MAX_FRAME) -> None:
        self._recv = recv
        self._buf = bytearray()
        self.limit = limit

    def _fill(self, want: int) -> bool:
        while len(self._buf) < want:
            chunk = self._recv(max(65536, want - len(self._buf)))
            if not chunk:
                return False
            self._buf += chunk
        return True

    def read(self) -> bytes | None:
        """The next frame's body; None at a clean end of file; ProtocolError when the header
        announces more than the limit (nothing of the body is read)."""
        if not self._fill(4):
            if self._buf:
                raise ProtocolError("end of file inside a frame header")
            return None
        length = _wire.read_frame_length(bytes(self._buf[:4]), self.limit)
        if not self._fill(4 + length):
            raise ProtocolError("end of file inside a frame")
        body = bytes(self._buf[4:4 + length])
        del self._buf[:4 + length]
        return body

    def buffered(self) -> bool:
        """Bytes of a next frame were read already (the descriptor will not tell of them)."""
        return bool(self._buf)


class _Watch:
    """Calls ``on_input`` when the peer's descriptor has something to read while armed: a
    thread of its own blocked in ``epoll_wait``, armed (one shot) by the leader before it runs
    a call and disarmed after, two ``epoll_ctl`` calls and no wake-up when nothing comes.
    Only where ``select.epoll`` and ``os.eventfd`` exist (Linux); elsewhere the leader hands
    the reading over before every call, as it always did."""

    def __init__(self, fd: int, on_input: Callable[[], None]) -> None:
        self.fd = fd
        self._on_input = on_input
        self._lock = threading.Lock()
        self._epoll = select.epoll()
        self._stop = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            self._epoll.register(self._stop, select.EPOLLIN)
            # One shot even when disarmed: a hang-up, which epoll reports whatever the mask,
            # fires once and not in a loop.
            self._epoll.register(fd, select.EPOLLONESHOT)
        except OSError:
            self._epoll.close()
            os.close(self._stop)
            raise
        threading.Thread(target=self._run, name="virt-remote-watch", daemon=True).start()

    @classmethod
    def make(cls, fd: int | None, on_input: Callable[[], None]) -> _Watch | None:
        if fd is None or not hasattr(select, "epoll") or not hasattr(os, "eventfd"):
            return None
        try:
            return cls(fd, on_input)
        except OSError:  # not a descriptor epoll can watch (a regular file), or out of them
            return None

    def arm(self) -> None:
        try:
            self._epoll.modify(self.fd, select.EPOLLIN | select.EPOLLONESHOT)
        except (OSError, ValueError):  # closed: the service is stopping
            pass

    def disarm(self) -> None:
        try:
            self._epoll.modify(self.fd, select.EPOLLONESHOT)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        with self._lock:
            if self._stop >= 0:
                os.eventfd_write(self._stop, 1)

    def _run(self) -> None:
        try:
            while True:
                ready = self._epoll.poll()
                if any(fd == self._stop for fd, _events in ready):
                    return
                if ready:
                    try:
                        self._on_input()
                    except Exception:  # a bug: say so, and keep watching
                        log.exception("virt-remote: handing the reading over failed")
        finally:
            with self._lock:
                stop, self._stop = self._stop, -1
                self._epoll.close()
                os.close(stop)


class _Session:
    __slots__ = ("conn", "id", "subscriptions")

    def __init__(self, sid: int, conn: Any) -> None:
        self.id = sid
        self.conn = conn
        self.subscriptions: dict[str, int] = {}


class _Stream:
    """One stream of a peer, served by a thread of its own running :meth:`_pump`."""

    def __init__(self, service: Service, sid: int) -> None:
        self.service = service
        self.id = sid
        self.cond = threading.Condition()
        self.closed = False

    def start(self) -> None:
        """Start: once the answer that names the stream is queued (:class:`_Then`)."""
        threading.Thread(target=self._pump, name=f"virt-remote-stream-{self.id}", daemon=True).start()

    def _pump(self) -> None:
        raise NotImplementedError

    def ack(self, count: int) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._close()

    def _close(self) -> bool:
        """Close once; True for the call that did."""
        with self.cond:
            if self.closed:
                return False
            self.closed = True
            self.cond.notify_all()
        self.service.streams.pop(self.id, None)
        return True


class _Sender(_Stream):
    """A stream this side sends on, as far as the peer's ``sack`` credit goes."""

    def __init__(self, service: Service, sid: int, credit: int) -> None:
        super().__init__(service, sid)
        self.credit = credit

    def _room(self, most: int) -> int:
        """Wait for credit; how many bytes may go now (at most ``most``); 0 once closed."""
        with self.cond:
            while self.credit <= 0 and not self.closed:
                self.cond.wait()
            return 0 if self.closed else min(self.credit, most)

    def _send(self, data: bytes) -> None:
        with self.cond:
            self.credit -= len(data)
        self.service.send(["sdata", self.id, _wire.to_wire(data)])

    def _end(self, error: dict[str, Any] | None) -> None:
        if not self.closed:
            self.service.send(["sclose", self.id, error])
            self.close()

    def ack(self, count: int) -> None:
        with self.cond:
            self.credit += count
            self.cond.notify_all()


class _ConsoleRelay(_Sender):
    """A console's pty on this side, relayed to the peer as one stream with a send window.

    The pump waits in ``poll`` on the pty and an eventfd that :meth:`close` writes, so a
    closed relay reads nothing more (a pump blocked in ``read`` would eat the next output,
    the first a new console on the same pty should show).  The descriptors are closed by
    whoever stops using them last (the pump, a write under way, or ``close``), never under
    another thread's system call."""

    def __init__(self, service: Service, sid: int, path: str) -> None:
        import termios
        import tty

        super().__init__(service, sid, STREAM_WINDOW)
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            pass
        try:
            self._wake = os.eventfd(0, os.EFD_CLOEXEC)
        except OSError:
            os.close(self.fd)
            raise
        self._users = 0
        self._released = False

    def _use(self) -> bool:
        with self.cond:
            if self.closed:
                return False
            self._users += 1
            return True

    def _done(self) -> None:
        with self.cond:
            self._users -= 1
            release = self.closed and not self._users and not self._released
            self._released = self._released or release
        if release:
            self._release()

    def _release(self) -> None:
        for fd in (self.fd, self._wake):
            try:
                os.close(fd)
            except OSError:
                pass

    def start(self) -> None:
        if self._use():  # the pump's, until it ends
            super().start()

    def _pump(self) -> None:
        error: dict[str, Any] | None = None
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._wake, select.POLLIN)
        try:
            while want := self._room(STREAM_PIECE):
                ready = {fd for fd, _events in poller.poll()}
                if self.closed or self._wake in ready:
                    return
                try:
                    data = os.read(self.fd, want)
                except OSError as exc:
                    if self.closed:
                        return
                    data = b""
                    if exc.errno != 5:  # EIO: the other end of the pty went away
                        error = rpc_error(f"console read failed: {exc}", "SYSTEM_ERROR")
                if not data:
                    break
                self._send(data)
        finally:
            self._end(error)
            self._done()

    def write(self, data: bytes) -> None:
        if not self._use():
            return  # closed: what the peer sent after is dropped
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        finally:
            self._done()
        self.service.send(["sack", self.id, len(data)])

    def close(self) -> None:
        if not self._close():
            return
        with self.cond:
            release = not self._users and not self._released
            self._released = self._released or release
            if not release:
                os.eventfd_write(self._wake, 1)  # the pump leaves its poll and releases
        if release:
            self._release()


class _VolumeDownload(_Sender):
    """A volume's content read on this side (``virt_vol_download``, a piece at a time) and
    sent to the peer as one stream, as far as the peer's ``sack`` credit goes; the stream ends
    with ``sclose`` (and the error, if a read failed).  The credit starts at nothing: the peer
    grants its window once it knows the stream's id, so no data can arrive before it does."""

    def __init__(self, service: Service, sid: int, conn: Any, args: dict[str, Any]) -> None:
        super().__init__(service, sid, 0)
        self.conn = conn
        self.key, self.offset, self.length, self.flags = args["key"], args["offset"], args["length"], args["flags"]

    def _pump(self) -> None:
        error: dict[str, Any] | None = None
        done = 0
        try:
            while not self.length or done < self.length:
                want = self._room(VOLUME_PIECE)
                if not want:
                    return
                if self.length:
                    want = min(want, self.length - done)
                data = self.conn._call("virt_vol_download", key=self.key, offset=self.offset + done, length=want,
                                       flags=self.flags)
                if not data:
                    break
                done += len(data)
                self._send(bytes(data))
        except Exception as exc:  # noqa: BLE001 - a VirtError (or a bug) ends the stream with it
            error = error_body(exc)
        finally:
            self._end(error)

    def write(self, data: bytes) -> None:
        pass  # a download carries nothing towards the volume


class _VolumeUpload(_Stream):
    """Bytes from the peer written into a volume (``virt_vol_upload``) by a thread of its own,
    each ``sdata`` acknowledged once written: the peer keeps at most :data:`VOLUME_WINDOW`
    unacknowledged, which bounds what waits here.  A failed write ends the stream with
    ``sclose`` and the error; what arrives after it is dropped."""

    def __init__(self, service: Service, sid: int, conn: Any, args: dict[str, Any]) -> None:
        super().__init__(service, sid)
        self.conn = conn
        self.key, self.offset, self.flags = args["key"], args["offset"], args["flags"]
        self.pending: collections.deque[bytes | None] = collections.deque()
        self.queued = 0  # bytes received and not yet written: never more than the window

    def _pump(self) -> None:
        done = 0
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                data = self.pending.popleft()
                if data is not None:
                    self.queued -= len(data)
            if data is None:
                return
            try:
                self.conn._call("virt_vol_upload", key=self.key, offset=self.offset + done, data=data,
                                flags=self.flags)
            except Exception as exc:  # noqa: BLE001 - a VirtError (or a bug) ends the stream with it
                self.service.send(["sclose", self.id, error_body(exc)])
                self.close()
                return
            done += len(data)
            self.service.send(["sack", self.id, len(data)])

    def ack(self, count: int) -> None:
        pass  # nothing goes to the peer but acknowledgements

    def write(self, data: bytes) -> None:
        with self.cond:
            if self.closed:
                return
            if self.queued + len(data) > VOLUME_WINDOW:
                overrun = True
            else:
                overrun = False
                self.queued += len(data)
                self.pending.append(data)
                self.cond.notify_all()
        if overrun:  # a peer that ignores the window must not fill this side's memory
            self.service.send(["sclose", self.id, rpc_error(
                f"the peer sent more than the stream's window of {VOLUME_WINDOW} bytes unacknowledged")])
            self.close()

    def close(self) -> None:
        if self._close():
            with self.cond:
                self.pending.append(None)  # after what was received before the close: it is written
                self.cond.notify_all()


def _write_failed(_exc: OSError) -> None:
    """A write to the peer failed: nothing more is written; the reader meets the end."""


class Service:
    """The protocol's server side on one peer.

    :param recv: blocking read of at most n bytes (b"" at end of file).
    :param send_bytes: blocking write of all the bytes (called by one thread at a time).
    :param readonly: every session is opened read-only, whatever the peer asks.
    :param fileno: the descriptor ``recv`` reads, if any: then the leader keeps the reading
        through a call until the peer sends more (see :class:`_Watch`).
    :param send_fileno: the descriptor ``send_bytes`` writes, if any: a ping or a pong is then
        written at once when it fits, else by a writer thread (see :mod:`virt_remote._writer`).
    """

    def __init__(self, recv: Callable[[int], bytes], send_bytes: Callable[[bytes], None], *,
                 readonly: bool = False, keepalive_interval: float = 0.0, keepalive_count: int = 5,
                 max_frame: int = _wire.MAX_FRAME, name: str = "peer", fileno: int | None = None,
                 send_fileno: int | None = None) -> None:
        self.reader = FrameReader(recv, max_frame)
        self._fileno = fileno
        self._watch: _Watch | None = None
        #: the leader runs a call and keeps the reading meanwhile (see _run_leading)
        self._away = False
        # Whoever finds no write under way writes what every other thread queued meanwhile
        # too, so concurrent answers leave in one write (and one SSH packet).  A failed write
        # stops the writing; the reader finds the end.
        self._out = Writer(send_bytes, send_fileno, _write_failed, overflow=self._overflowed)
        self.readonly = readonly
        self.name = name
        self.sessions: dict[int, _Session] = {}
        self.streams: dict[int, _Stream] = {}
        self._ids = itertools.count(1)
        self._greeted = False
        self._stopped = False
        self._reading = False
        self._followers: list[Wake] = []
        self._state = threading.Lock()
        self._idle = 0
        self._total = 1
        self._backlog: collections.deque[tuple[list[Any], int]] = collections.deque()
        self._backlog_bytes = 0
        self._size = 0  # of the frame of the call _read_task returned last
        self._done = threading.Event()
        self._last_rx = time.monotonic()
        self._keepalive = (keepalive_interval, keepalive_count)
        #: the helper starts with the cyclic collector off (its imports make no garbage worth
        #: collecting, and the collections cost ~10% of its start); the first open turns it on
        self.gc_paused = False

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: list[Any], wait: bool = True) -> None:
        """Send ``message``; without ``wait``, never wait for the peer to take it (a ping, a
        pong: see :mod:`virt_remote._writer`)."""
        try:
            frame = _wire.encode_frame(message)
        except ProtocolError as exc:
            if len(message) >= 2 and message[0] == "ok":
                frame = _wire.encode_frame(["err", message[1], rpc_error(str(exc), "INTERNAL_ERROR")])
            else:
                log.warning("virt-remote: dropped a message that cannot be sent: %s", exc)
                return
        self._out.send(frame, wait)

    # -- the loop --------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until the peer goes away, then close every session."""
        if self._keepalive[0] > 0:
            threading.Thread(target=self._pinger, name="virt-remote-keepalive", daemon=True).start()
        # The workers are daemon threads: a peer dropped by the keepalive leaves one blocked in
        # a read, which must not keep the helper alive.
        self._watch = _Watch.make(self._fileno, self._peer_sent)
        self._start_worker()
        self._done.wait()
        self._drain()
        self._out.release()
        if self._watch is not None:
            self._watch.close()
        self._shutdown()

    def _drain(self, timeout: float = 2.0) -> None:
        """Let a write under way finish with what is queued (a last ``bye``), so that whoever
        closes the stream after ``serve`` returns does not cut it off."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._out.idle:
            time.sleep(0.002)

    def _pinger(self) -> None:
        interval, count = self._keepalive
        while not self._done.wait(min(interval, 1.0) / 2):
            idle = time.monotonic() - self._last_rx
            if idle > interval * count:
                log.warning("virt-remote: %s did not answer %d keepalives in %.1fs: closing", self.name,
                            count, interval * count)
                self.stop()
                return
            if idle >= interval:
                self.send(["ping", 0], wait=False)

    def stop(self) -> None:
        self._stopped = True
        self._out.stop()
        self._done.set()

    def _overflowed(self, queued: int) -> None:
        log.warning("virt-remote: %s stopped reading (%d bytes wait to be sent to it): closing", self.name, queued)
        self.stop()

    def _start_worker(self) -> None:
        threading.Thread(target=self._worker, name="virt-remote-worker", daemon=True).start()

    def _worker(self) -> None:
        while True:
            task: list[Any] | None = None
            with self._state:
                if self._backlog:
                    task, size = self._backlog.popleft()
                    self._backlog_bytes -= size
                else:
                    self._idle += 1
            if task is None:
                self._lead()
                task = self._read_as_leader()
                if task is _ENDED:
                    return
                if task is _LOST:
                    continue
            try:
                self._run(task)
            except Exception:
                log.exception("virt-remote: a request failed")

    def _read_as_leader(self) -> list[Any]:
        """Read, as the leader, until there is a call for this thread to run after handing the
        reading over; :data:`_ENDED` when the stream ended; :data:`_LOST` when the leadership
        went to another thread while this one ran a call (see :meth:`_run_leading`)."""
        spawn = lost = False
        task: list[Any] | None = None
        try:
            while not self._stopped:
                task = self._read_task()
                if task is None:
                    break
                # Alone in flight (no other call running, none read but not yet run): keep
                # the reading through the call.  Under a load of overlapping calls, hand it
                # over at once as before, not through the watch's thread (one wake-up more).
                if (self._watch is not None and self._total - self._idle == 1 and not self._backlog
                        and not self.reader.buffered()):
                    if not self._run_leading(task):
                        lost = True  # the watch handed the reading over
                        return _LOST
                    task = None
                    continue
                with self._state:
                    if self._idle > 0 or self._total < MAX_THREADS:
                        if self._idle == 0:
                            self._total += 1
                            spawn = True
                        break
                    size = self._size
                    if len(self._backlog) >= MAX_BACKLOG or self._backlog_bytes + size > MAX_BACKLOG_BYTES:
                        break  # this thread runs it; nobody reads until a thread is free
                    self._backlog.append((task, size))
                    self._backlog_bytes += size
                    task = None
        except BaseException:
            task = None
            raise
        finally:
            if not lost:
                if task is None:
                    self._stopped = True
                    self._done.set()
                self._hand_over()
        if spawn:
            self._start_worker()
        return _ENDED if task is None else task

    def _run_leading(self, task: list[Any]) -> bool:
        """Run a call and stay the leader: the watch hands the reading over (:meth:`_peer_sent`)
        only if the peer sends more meanwhile.  True when this thread is still the leader.
        The watch is disarmed before the answer leaves: the peer's next call, sent on it,
        must find the leader reading, not wake another thread."""
        assert self._watch is not None
        with self._state:
            self._away = True
        self._watch.arm()
        answer: list[Any] | None = None
        try:
            answer = self._answer(task)
        except Exception:
            log.exception("virt-remote: a request failed")
        with self._state:
            kept, self._away = self._away, False
        if kept:
            self._watch.disarm()
        if answer is not None:
            self._send_answer(answer)
        return kept

    def _peer_sent(self) -> None:
        """The watch's thread: the peer sent while the leader runs a call; another thread reads."""
        spawn = False
        with self._state:
            if not self._away or self._stopped:
                return
            if self._idle == 0 and self._total >= MAX_THREADS:
                return  # nobody can take it: the leader reads on when its call is over
            self._away = False
            if self._idle == 0:
                self._total += 1
                spawn = True
        self._hand_over()
        if spawn:
            self._start_worker()

    def _lead(self) -> None:
        """Become the reader: at once if nobody reads, else when the reader hands over (to
        the follower that went idle last).  Followers wait on their own eventfd, so that the
        hand-over does not wake one into a GIL the reader holds (:mod:`virt_remote._wake`)."""
        with self._state:
            if not self._reading:
                self._reading = True
                self._idle -= 1
                return
            follower = Wake()
            self._followers.append(follower)
        follower.wait()

    def _hand_over(self) -> None:
        with self._state:
            if not self._followers:
                self._reading = False
                return
            follower = self._followers.pop()
            self._idle -= 1
        follower.wake()

    def _read_task(self) -> list[Any] | None:
        """Read until there is a call to run; answer what is cheap on the way.  None at the end."""
        while True:
            try:
                body = self.reader.read()
            except ProtocolError as exc:
                # The stream cannot be trusted any more: say why and hang up.
                self.send(["bye", rpc_error(str(exc))])
                return None
            except OSError:
                return None
            if body is None:
                return None
            self._last_rx = time.monotonic()
            try:
                message = _wire.check_message(_wire.from_wire(body))
            except ProtocolError as exc:
                self.send(["err", 0, rpc_error(str(exc))])
                continue
            kind = message[0]
            if kind == "ping":
                self.send(["pong", message[1] if len(message) > 1 else 0], wait=False)
                continue
            if kind == "pong":
                continue
            if kind == "hello":
                # Answered before the next frame is read: a client may send its first
                # ``open`` right behind ``hello`` without waiting (one round trip, not two).
                self._run(message)
                continue
            if kind in ("sdata", "sack", "sclose"):
                self._stream_message(message)
                continue
            self._size = len(body)
            return message

    # -- requests --------------------------------------------------------------------------

    def _run(self, message: list[Any]) -> None:
        self._send_answer(self._answer(message))

    def _send_answer(self, answer: list[Any]) -> None:
        then = None
        if answer[0] == "ok" and type(answer[2]) is _Then:
            answer, then = ["ok", answer[1], answer[2].result], answer[2].then
        self.send(answer)
        if then is not None:
            then()

    def _answer(self, message: list[Any]) -> list[Any]:
        """Run a request; its answer (not sent yet; a :class:`_Then` result is unwrapped by
        :meth:`_send_answer`)."""
        kind = message[0]
        rid = message[1] if len(message) > 1 and type(message[1]) is int else 0
        handler = _HANDLERS.get(kind)
        if handler is None or not rid:
            return ["err", rid, rpc_error(f"unknown or malformed request {kind!r}")]
        if kind != "hello" and not self._greeted:
            return ["err", rid, rpc_error("the handshake (hello) must come first")]
        try:
            result = handler(self, message)
        except ProtocolError as exc:
            return ["err", rid, rpc_error(str(exc))]
        except Exception as exc:  # noqa: BLE001 - VirtError, or a bug reported as an error
            return ["err", rid, error_body(exc)]
        return ["ok", rid, result]

    def _hello(self, message: list[Any]) -> Any:
        body = _arg(message, 2, dict, "hello")
        version = body.get("version")
        if type(version) is not int or version < 1:
            raise ProtocolError(f"unsupported protocol version {version!r}; this side speaks {PROTOCOL_VERSION}")
        self._greeted = True
        return {"version": PROTOCOL_VERSION, "features": list(FEATURES), "readonly": self.readonly,
                "pid": os.getpid()}

    def _open(self, message: list[Any]) -> Any:
        import virt
        from virt._plugins import find_driver

        body = _arg(message, 2, dict, "open")
        uri = body.get("uri")
        readonly = body.get("readonly", False)
        if type(uri) is not str or type(readonly) is not bool:
            raise ProtocolError("open needs a string 'uri' and a boolean 'readonly'")
        try:
            parsed = virt.parse_uri(uri)
            if parsed.is_remote or find_driver(parsed).remote:
                raise virt.VirtError(virt.ErrorNumber.NO_CONNECT, f"{uri}: the far side opens local URIs only")
            conn = virt.open(uri, readonly=readonly or self.readonly)
        finally:
            if self.gc_paused:  # the helper's start is over: its imports and its first driver
                self.gc_paused = False
                gc.enable()
        sid = next(self._ids)
        self.sessions[sid] = _Session(sid, conn)
        hooks = sorted(h for h in _operation_hooks() if conn.supports(h))
        return {"session": sid, "hooks": hooks, "readonly": conn.readonly}

    def _session(self, message: list[Any]) -> _Session:
        sid = _arg(message, 2, int, "session")
        session = self.sessions.get(sid)
        if session is None:
            from virt import ErrorNumber, VirtError

            raise VirtError(ErrorNumber.INVALID_CONN, "connection is closed")
        return session

    def _call(self, message: list[Any]) -> Any:
        if len(message) != 5:
            raise ProtocolError("call is [\"call\", id, session, hook, arguments]")
        session = self._session(message)
        hook, kwargs = message[3], message[4]
        if type(hook) is not str or hook not in _operation_hooks():
            raise ProtocolError(f"unknown hook {hook!r}")
        problem = _wire.check_arguments(hook, kwargs)
        if problem is not None:
            raise ProtocolError(problem)
        return _wire.to_wire(session.conn._call(hook, **kwargs))

    def _close(self, message: list[Any]) -> Any:
        sid = _arg(message, 2, int, "session")
        session = self.sessions.pop(sid, None)
        if session is not None:
            session.conn.close()
        return None

    def _subscribe(self, message: list[Any]) -> Any:
        session = self._session(message)
        hook = _arg(message, 3, str, "event hook")
        kind = _event_hooks().get(hook)
        if kind is None:
            raise ProtocolError(f"unknown event hook {hook!r}")
        if hook not in session.subscriptions:
            sid = session.id

            def forward(conn: Any, event: Any) -> None:
                # Never waits: the emitting thread serves every other subscriber of the
                # driver too (every client of a shared daemon), which a client that stopped
                # reading must not hold up; if it stays stopped, the writer's bound drops it.
                self.send(["ev", sid, hook, {"event": _wire.to_wire(event)}], wait=False)

            session.subscriptions[hook] = session.conn.subscribe(forward, kind)
        return None

    def _stream_open(self, message: list[Any]) -> Any:
        session = self._session(message)
        what = _arg(message, 3, str, "stream kind")
        args = _arg(message, 4, dict, "stream arguments")
        if what in ("vol-download", "vol-upload"):
            return self._volume_stream_open(session, what, args)
        if what != "console":
            raise ProtocolError(f"unknown stream kind {what!r}")
        kwargs = {"uuid": args.get("uuid"), "dev_name": args.get("dev_name"), "flags": args.get("flags", 0)}
        problem = _wire.check_arguments("virt_domain_open_console", kwargs)
        if problem is not None:
            raise ProtocolError(problem)
        path = session.conn._call("virt_domain_open_console", **kwargs)
        sid = next(self._ids)
        try:
            relay = _ConsoleRelay(self, sid, path)
        except OSError as exc:
            from virt import ErrorNumber, VirtError

            raise VirtError(ErrorNumber.OPERATION_FAILED, f"cannot open console {path}: {exc}") from None
        self.streams[sid] = relay
        return _Then(sid, relay.start)

    def _volume_stream_open(self, session: _Session, what: str, args: dict[str, Any]) -> Any:
        """``vol-download``: ``{key, offset, length (0: to the end), flags}``;
        ``vol-upload``: ``{key, offset, flags}`` (the client sends what it has, then ``sclose``)."""
        from virt import ErrorDomain, ErrorNumber, VirtError
        from virt._plugins import MUTATING_HOOKS

        hook = "virt_vol_download" if what == "vol-download" else "virt_vol_upload"
        known = {"key", "offset", "length", "flags"} if what == "vol-download" else {"key", "offset", "flags"}
        if not set(args) <= known:
            raise ProtocolError(f"{what}: unknown argument(s) {', '.join(sorted(set(args) - known))}")
        fields = {"key": args.get("key"), "offset": args.get("offset", 0), "flags": args.get("flags", 0)}
        if what == "vol-download":
            fields["length"] = args.get("length", 0)
        problem = _wire.check_arguments(hook, {**fields, **({"data": b""} if what == "vol-upload" else {})})
        if problem is not None:
            raise ProtocolError(problem)
        if fields["offset"] < 0 or fields.get("length", 0) < 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "offset and length must not be negative",
                            domain=ErrorDomain.STORAGE)
        conn = session.conn
        if not conn.supports(hook) or (conn.readonly and hook in MUTATING_HOOKS):
            raise conn._refusal(hook)
        sid = next(self._ids)
        relay = (_VolumeDownload if what == "vol-download" else _VolumeUpload)(self, sid, conn, fields)
        self.streams[sid] = relay
        return _Then(sid, relay.start)

    def _stream_message(self, message: list[Any]) -> None:
        relay = self.streams.get(message[1]) if len(message) >= 3 and type(message[1]) is int else None
        if relay is None:
            return
        if message[0] == "sdata" and type(message[2]) is bytes:
            try:
                relay.write(message[2])
            except OSError as exc:
                self.send(["sclose", relay.id, rpc_error(f"console write failed: {exc}", "SYSTEM_ERROR")])
                relay.close()
        elif message[0] == "sack" and type(message[2]) is int and message[2] > 0:
            relay.ack(message[2])
        elif message[0] == "sclose":
            relay.close()

    # -- the end ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        for relay in list(self.streams.values()):
            relay.close()
        for session in list(self.sessions.values()):
            try:
                session.conn.close()
            except Exception:
                log.exception("virt-remote: closing a session failed")
        self.sessions.clear()


def _arg(message: list[Any], index: int, kind: type, what: str) -> Any:
    if len(message) <= index or type(message[index]) is not kind:
        raise ProtocolError(f"{message[0]}: {what} must be a {kind.__name__}")
    return message[index]


_HANDLERS: dict[str, Callable[[Service, list[Any]], Any]] = {
    "hello": Service._hello,
    "open": Service._open,
    "call": Service._call,
    "close": Service._close,
    "sub": Service._subscribe,
    "sopen": Service._stream_open,
}

_OPS: frozenset[str] | None = None
_EVENTS: dict[str, type] | None = None


def _operation_hooks() -> frozenset[str]:
    """Operation hooks a peer may call (firstresult, marked with a libvirt function).  From the
    core's generated table, where an unmarked hook's function is its own name: importing the
    spec modules took 12-19 ms of every helper's start."""
    global _OPS
    if _OPS is None:
        from virt._spectable import SPECS

        _OPS = frozenset(name for name, spec in SPECS.items() if spec[0] != name)
    return _OPS


def _event_hooks() -> dict[str, type]:
    """Event hook name -> the record class of its ``event`` parameter (from the hookspecs)."""
    global _EVENTS
    if _EVENTS is None:
        import typing

        from virt.hookspecs import operation_specs

        found: dict[str, type] = {}
        for name, fn in operation_specs().items():
            if hasattr(fn, "virt_libvirt_api"):
                continue
            hint = typing.get_type_hints(fn).get("event")
            if isinstance(hint, type):
                found[name] = hint
        _EVENTS = found
    return _EVENTS


def serve_fds(read_fd: int, write_fd: int, *, readonly: bool = False, keepalive_interval: float = 0.0,
              keepalive_count: int = 5, name: str = "peer", gc_paused: bool = False) -> None:
    """Serve one peer on two file descriptors (a helper's stdin and stdout); ``gc_paused``:
    the caller turned the cyclic collector off for its start, the first ``open`` turns it on."""

    def send_all(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]

    service = Service(lambda n: os.read(read_fd, n), send_all, readonly=readonly,
                      keepalive_interval=keepalive_interval, keepalive_count=keepalive_count, name=name,
                      fileno=read_fd if os.environ.get("VIRT_REMOTE_WATCH", "1") != "0" else None,
                      send_fileno=write_fd)
    service.gc_paused = gc_paused and not gc.isenabled()
    service.serve()
