"""The SSH transport: asyncssh on the process's background loop, one exec channel running the
helper on the far side.  Imported only when an ``+ssh`` URI is opened.

Host keys are verified against ``~/.ssh/known_hosts`` (or the ``known_hosts=`` file) unless
``no_verify=1``; keys come from ``keyfile=``, the agent (``$SSH_AUTH_SOCK``) and the default
key files; ``~/.ssh/config`` is honoured (asyncssh reads it).
"""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import socket
import sys
import threading
from typing import Any


def _import_asyncssh() -> None:
    """Import asyncssh without two searches that find nothing.

    * liboqs (the post-quantum KEMs), ~40 ms: asyncssh asks ``ctypes.util.find_library`` for
      two names, and on Linux each miss runs ldconfig, gcc and ld.  While it imports, the
      search reads the ldconfig cache only (where a liboqs that the dynamic loader can find
      is); with ``LD_LIBRARY_PATH`` set, the full search as before.
    * X.509 certificates, ~17 ms: asyncssh's support needs pyOpenSSL, and its module imported
      ``cryptography.x509`` before finding pyOpenSSL missing.  Without pyOpenSSL, that module
      is marked absent while asyncssh imports, which asyncssh takes as it took the failure
      (no X.509 certificates either way)."""
    if "asyncssh" in sys.modules:
        return
    import importlib.util

    x509 = "asyncssh.crypto.x509"
    no_x509 = x509 not in sys.modules and importlib.util.find_spec("OpenSSL") is None
    import ctypes.util

    quick = getattr(ctypes.util, "_findSoname_ldconfig", None)
    if not sys.platform.startswith("linux") or os.environ.get("LD_LIBRARY_PATH"):
        quick = None
    original = ctypes.util.find_library
    if no_x509:
        sys.modules[x509] = None  # type: ignore[assignment]
    if quick is not None:
        ctypes.util.find_library = quick
    try:
        import asyncssh  # noqa: F401
    finally:
        ctypes.util.find_library = original
        if no_x509 and x509 in sys.modules and sys.modules[x509] is None:
            del sys.modules[x509]  # a later import fails as it would have (no pyOpenSSL)


_import_asyncssh()

import asyncssh  # noqa: E402
from virt import ErrorDomain, ErrorNumber, VirtError  # noqa: E402

from virt_remote import _aio, _wire, _writer  # noqa: E402
from virt_remote._client import Link, Peer, helper_command, lost_error  # noqa: E402
from virt_remote._wake import Wake  # noqa: E402
from virt_remote._wire import ProtocolError  # noqa: E402

__all__ = ["connect_ssh"]

CONNECT_TIMEOUT = 30.0
#: frames up to this size may be written by the calling thread (:meth:`SSHLink.write_directly`)
DIRECT_MAX = 16384
#: what a calling thread reads from the socket at a time (:meth:`SSHLink.read_directly`), as asyncio
READ_MAX = 256 * 1024


_MSG_IGNORE = 2
_EMPTY_STRING = (b"\0\0\0\0",)


def _cbc(conn: Any) -> bool:
    return "cbc" in (conn.get_extra_info("send_cipher") or "cbc")


def _without_ignores(conn: Any) -> None:
    """Send no empty IGNORE packet before each data packet: asyncssh sends one (with its own
    encryption and write) whatever the cipher, as RFC 4251 9.3.1 advises against the CBC
    chosen-plaintext attack.  Only CBC needs it, and asyncssh offers no CBC cipher unless
    asked; OpenSSH sends none.  It was a third of what a call cost our side to send."""
    send_packet = conn.send_packet

    def send(pkttype: int, *args: Any, **kwargs: Any) -> None:
        if pkttype == _MSG_IGNORE and args == _EMPTY_STRING and not _cbc(conn):
            return
        send_packet(pkttype, *args, **kwargs)

    conn.send_packet = send


def _quick_acks(conn: Any) -> None:
    """Acknowledge what arrives at once (``TCP_QUICKACK`` after each read; Linux).  sshd does
    not set ``TCP_NODELAY`` on a session without a terminal, so when it writes two packets in
    a row (a channel's window adjust, then its exec answer) the second waits for our ACK of the
    first, which Linux delays by up to 40 ms: every other open took 40 ms more."""
    sock = conn.get_extra_info("socket")
    level, option = socket.IPPROTO_TCP, getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return
    try:
        sock.setsockopt(level, option, 1)
    except OSError:  # not TCP: a proxy command's socket pair
        return
    received, setsockopt = conn.data_received, sock.setsockopt

    def quick(data: bytes, datatype: Any = None) -> None:
        try:
            setsockopt(level, option, 1)
        except OSError:  # closed meanwhile
            pass
        received(data, datatype)

    conn.data_received = quick


class _Session(asyncssh.SSHClientSession[bytes]):
    def __init__(self, peer: Peer, link: SSHLink) -> None:
        self.peer = peer
        self.link = link
        self.buf = bytearray()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        peer = self.peer
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            if len(peer.far_stderr) < 65536:
                peer.far_stderr += data
            return
        self.buf += data
        try:
            for body in _wire.frames_in(self.buf):
                peer.on_body(body)
        except ProtocolError as exc:
            peer.fail(VirtError(ErrorNumber.RPC, f"the far side sent a bad frame: {exc}", domain=ErrorDomain.RPC))

    def connection_lost(self, exc: Exception | None) -> None:
        status = self.link.chan.get_exit_status() if self.link.chan is not None else None
        extra = self.peer.far_stderr.decode("utf-8", "replace").strip()
        why = f"{exc}" if exc else "the helper exited" + (f" with status {status}" if status not in (None, -1) else "")
        self.peer.fail(lost_error(f"connection to {self.peer.description} was lost: {why}"
                                  + (f": {extra[-500:]}" if extra else "")))
        self.link.conn.close()

    def pause_writing(self) -> None:
        self.link.writable.clear()

    def resume_writing(self) -> None:
        self.link.writable.set()


class SSHLink(Link):
    def __init__(self, peer: Peer, conn: asyncssh.SSHClientConnection, description: str) -> None:
        self.peer = peer
        self.conn = conn
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.loop = _aio.get_loop()
        self.writable = threading.Event()
        self.writable.set()
        self.description = description
        # Frames sent from any thread wait here; one loop callback writes all that queued up
        # meanwhile, so concurrent calls share wake-ups and SSH packets.
        self._queue: list[bytes] = []
        self._queue_lock = threading.Lock()
        self._scheduled = False
        # Whoever touches the SSH connection's state holds this: the loop thread while it
        # handles what arrives (``conn.data_received``, ``connection_lost``) and flushes the
        # queue, a calling thread while it writes its frame itself (:meth:`send`).
        self._io = threading.RLock()
        self._transport: Any = None
        # Set by write_directly: asyncssh's own data_received, for a caller that holds _io.
        self._received: Any = None
        # Set by read_directly: how a calling thread reads; the thread reading now, or 0 (see
        # _read_until).
        self._reader: Any = None
        self._reading_thread = 0

    def write_directly(self) -> None:
        """Let a calling thread write its frame itself (under ``_io``) instead of waking the
        loop thread, when no other call is in flight: half of a sequential call's thread
        hand-offs.  Only on asyncio's own selector loop, whose transport sends at once from any
        thread when its buffer is empty (the only case taken here); else every frame goes
        through the loop."""
        conn, loop = self.conn, self.loop
        transport = getattr(conn, "_transport", None)
        if transport is None or not type(loop).__module__.startswith("asyncio"):
            return
        if not callable(getattr(transport, "get_write_buffer_size", None)):
            return
        received, lost, send_packet = conn.data_received, conn.connection_lost, conn.send_packet
        io = self._io

        def locked_received(data: bytes) -> None:
            with io:
                received(data)

        def locked_lost(exc: Exception | None) -> None:
            with io:
                lost(exc)

        def locked_send_packet(*args: Any, **kwargs: Any) -> None:
            # Every outgoing packet, including those asyncssh sends from its own tasks (a
            # rekey's key exchange, global requests) outside data_received: two threads in
            # its send path at once would share a sequence number and a cipher nonce.
            with io:
                send_packet(*args, **kwargs)

        self._received = received
        conn.data_received = locked_received  # type: ignore[method-assign,assignment]
        conn.connection_lost = locked_lost  # type: ignore[method-assign,assignment]
        conn.send_packet = locked_send_packet  # type: ignore[method-assign]
        self._transport = transport

    def read_directly(self) -> None:
        """Let a calling thread read the answer to its call itself (:meth:`_read_until`)
        instead of the loop thread reading it and waking the caller: the other half of a
        sequential call's hand-offs, and most of what a round trip lost to them.  In the loop
        thread, after :meth:`write_directly` (whose lock both readers take); only on asyncio's
        own epoll loop, whose interest in the socket the caller mutes while it reads."""
        loop, transport = self.loop, self._transport
        selector = getattr(loop, "_selector", None)
        epoll = getattr(selector, "_selector", None)
        read_ready = getattr(transport, "_read_ready_cb", None)
        finish = getattr(self.conn, "_finish_recv_packet", None)
        sock = getattr(transport, "_sock", None)
        ready, timers = getattr(loop, "_ready", None), getattr(loop, "_scheduled", None)
        if (transport is None or not isinstance(selector, selectors.EpollSelector)
                or not isinstance(epoll, select.epoll) or not callable(read_ready) or not callable(finish)
                or not isinstance(sock, socket.socket) or ready is None or timers is None):
            return
        io = self._io

        def locked_read_ready() -> None:
            # The loop's own read (recv and data_received) under the lock a caller reads
            # under: two threads receiving at once could hand the bytes on out of order.
            with io:
                read_ready()

        def locked_finish(*args: Any, **kwargs: Any) -> None:
            # A packet that asyncssh handles in a task of the loop (a re-key's KEXINIT) holds
            # back what arrives after it; the task's end handles that, in the loop thread,
            # while a caller may be handing asyncssh more.
            with io:
                finish(*args, **kwargs)

        transport._read_ready_cb = locked_read_ready
        self.conn._finish_recv_packet = locked_finish  # type: ignore[method-assign]
        self._reader = (sock, sock.fileno(), selector.get_map(), epoll, self._received, ready, timers)
        self.read_until = self._read_until

    def _interest(self, reading: bool) -> bool:
        """Under ``_io``: tell epoll what asyncio registered for the socket, without reading
        unless ``reading``.  Read back until asyncio's registration did not change meanwhile (the
        loop thread may add or drop its writer at any time).  False when the socket is no
        longer registered."""
        _sock, fd, keys, epoll = self._reader[:4]
        events = -1
        while True:
            key = keys.get(fd)
            if key is None:
                return False
            if key.events == events:
                return True
            events = key.events
            mask = (select.EPOLLIN if reading and events & selectors.EVENT_READ else 0) | (
                select.EPOLLOUT if events & selectors.EVENT_WRITE else 0)
            try:
                epoll.modify(fd, mask)
            except OSError:
                return False

    def _read_until(self, waiter: Wake, frame: bytes | None) -> None:
        """Send ``frame`` (if any), then read and handle what arrives, in the calling thread,
        until ``waiter`` is done.

        One calling thread at a time reads (the others wait as before, and whatever this one
        reads for them wakes them); from before its frame leaves, the loop does not watch the
        socket for reading (a caller preempted between its send and its read would otherwise
        leave the answer to the loop).  Anything but data (the end of the stream, an error, a
        transport that pauses its reading) ends this early: the loop, watching again,
        handles it as ever.  Callbacks that asyncssh schedules on the loop from here wake it."""
        transport, io = self._transport, self._io
        wfd = waiter.fd
        reading = False
        if frame is not None:
            # Before the loop stops reading: what lets a full window open again is read by
            # the loop, and a caller waiting here while it held the reading would wait forever.
            # After it, the frame is queued whatever the window (asyncssh holds it meanwhile).
            self._wait_writable()
        if wfd is not None and not self._reading_thread:
            with io:
                if (not waiter.done and not self._reading_thread and self.peer.lost is None
                        and transport.is_reading() and self._interest(reading=False)):
                    self._reading_thread = threading.get_ident()
                    reading = True
        try:
            if frame is not None:
                self._send_now(frame)
            if reading:
                self._read(waiter, wfd.fd)  # type: ignore[union-attr]
        finally:
            if reading:
                with io:
                    self._reading_thread = 0
                    self._interest(reading=True)

    def _read(self, waiter: Wake, efd: int) -> None:
        transport, io, loop = self._transport, self._io, self.loop
        sock, fd, _keys, _epoll, received, ready, timers = self._reader
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(efd, select.POLLIN)
        recv = sock.recv
        while not waiter.done:
            for polled, _events in poller.poll():
                if polled == efd:
                    os.eventfd_read(efd)  # another thread's wake-up (or one left from an earlier wait)
            if waiter.done:
                return
            with io:
                if not transport.is_reading():
                    return
                try:
                    data = recv(READ_MAX)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                if not data:
                    return
                scheduled = len(timers)
                # asyncssh starts the tasks of some packets (asyncio.ensure_future) on the
                # running loop: here the one the loop thread runs
                running = asyncio._get_running_loop()
                asyncio._set_running_loop(loop)
                try:
                    received(data)
                finally:
                    asyncio._set_running_loop(running)
                if ready or len(timers) != scheduled:
                    loop.call_soon_threadsafe(_nothing)

    def _write(self, chan: asyncssh.SSHClientChannel[bytes], data: bytes) -> None:
        try:
            chan.write(data)
        except (asyncssh.Error, OSError) as exc:
            self.peer.fail(lost_error(f"connection to {self.description} was lost: cannot send data: {exc}"))

    def _flush(self) -> None:
        with self._io:  # first: no frame written directly may overtake the ones queued
            with self._queue_lock:
                frames, self._queue, self._scheduled = self._queue, [], False
            chan = self.chan
            if chan is not None and self.peer.lost is None and frames:
                self._write(chan, frames[0] if len(frames) == 1 else b"".join(frames))

    def _try_direct(self, frame: bytes) -> bool:
        transport, chan = self._transport, self.chan
        # Only a call alone in flight (its own waiter is the one pending): calls that overlap
        # go through the loop, whose one write per iteration carries all that queued up (a
        # write per frame from each thread doubled the time of 1000 threaded calls).
        if (transport is None or chan is None or len(frame) > DIRECT_MAX or len(self.peer.pending) > 1
                or not self._io.acquire(blocking=False)):
            return False
        try:
            # Frames queued (``_scheduled`` falls only in _flush, under ``_io``) or bytes the
            # transport holds back: this one goes behind them, through the loop.
            if self._scheduled or transport.get_write_buffer_size() or transport.is_closing():
                return False
            self._write(chan, frame)
            return True
        finally:
            self._io.release()

    def send(self, frame: bytes, wait: bool = True) -> None:
        if wait:
            self._wait_writable()
        self._send_now(frame)
        if not wait:
            # What does not wait for the window waits in asyncssh's buffer instead: a far side
            # that floods us with pings and reads nothing is dropped at the writers' bound.
            chan = self.chan
            queued = chan.get_write_buffer_size() if chan is not None else 0
            if queued > _writer.QUEUE_MAX:
                self._overflowed(queued)

    def _wait_writable(self) -> None:
        """Flow control: while the channel's window is full, the sender waits here for the far
        side's window adjustments, except the thread that would read them (the loop, or a
        caller holding the reading: a pong sent while it handles a ping), which goes on: what
        it sends waits in asyncssh's buffer instead.  So does a keepalive ping (``send``
        without ``wait``): a window that a stalled far side never opens again must not keep
        the keepalive from noticing."""
        if not self.writable.is_set():
            me = threading.get_ident()
            if me == self._reading_thread or me == getattr(self.loop, "_thread_id", None):
                return
            while not self.writable.wait(0.5):
                if self.peer.lost is not None:
                    break

    def _send_now(self, frame: bytes) -> None:
        lost = self.peer.lost
        if lost is not None:
            raise VirtError(lost.code, lost.detail, domain=lost.domain, message=lost.message)
        if self._try_direct(frame):
            return
        with self._queue_lock:
            self._queue.append(frame)
            if self._scheduled:
                return
            self._scheduled = True
        if threading.get_ident() == getattr(self.loop, "_thread_id", None):
            self._flush()
        else:
            self.loop.call_soon_threadsafe(self._flush)

    def close(self) -> None:
        def shut() -> None:
            # under _io as every other send: a caller writing its frame itself (see send) must
            # not be in asyncssh's packet path while the close packets are made
            with self._io:
                if self.chan is not None:
                    self.chan.close()
                self.conn.close()

        try:
            self.loop.call_soon_threadsafe(shut)
        except RuntimeError:
            pass


def _nothing() -> None:
    """Scheduled to wake the loop (for what a calling thread scheduled on it)."""


def _options(uri: Any) -> dict[str, Any]:
    # AES-GCM first: one call into the cryptography library per packet (chacha20-poly1305
    # takes several), which is what a round trip's cost is made of.  The rest as asyncssh orders it.
    algs = [a.decode() for a in asyncssh.encryption.get_default_encryption_algs()]
    preferred = [a for a in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com") if a in algs]
    opts: dict[str, Any] = {"encryption_algs": preferred + [a for a in algs if a not in preferred]}
    if uri.port is not None:
        opts["port"] = uri.port
    if uri.user:
        opts["username"] = uri.user
    keyfile = uri.param("keyfile")
    if keyfile:
        opts["client_keys"] = [keyfile]
    no_verify = uri.param("no_verify", "0") not in ("0", "")
    known = uri.param("known_hosts")
    if no_verify:
        opts["known_hosts"] = None
    elif known:
        opts["known_hosts"] = known
    return opts


def _ssh_error(uri: Any, exc: BaseException) -> VirtError:
    where = f"{uri.host}:{uri.port or 22}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return VirtError(ErrorNumber.SSH, f"host key verification failed for {where}: {exc}", domain=ErrorDomain.SSH)
    if isinstance(exc, asyncssh.PermissionDenied):
        return VirtError(ErrorNumber.AUTH_FAILED, f"SSH authentication to {where} failed: {exc}",
                         domain=ErrorDomain.SSH)
    if isinstance(exc, asyncssh.KeyImportError):
        return VirtError(ErrorNumber.AUTH_FAILED, f"cannot use the SSH key for {where}: {exc}", domain=ErrorDomain.SSH)
    if isinstance(exc, asyncssh.Error):
        return VirtError(ErrorNumber.SSH, f"{where}: {exc}", domain=ErrorDomain.SSH)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return VirtError(ErrorNumber.SYSTEM_ERROR, f"unable to connect to server at '{where}': timed out",
                         domain=ErrorDomain.RPC)
    if isinstance(exc, OSError):
        import os

        why = os.strerror(exc.errno) if exc.errno else str(exc)
        return VirtError(ErrorNumber.SYSTEM_ERROR, f"unable to connect to server at '{where}': {why}",
                         domain=ErrorDomain.RPC)
    return VirtError(ErrorNumber.SSH, f"{where}: {type(exc).__name__}: {exc}", domain=ErrorDomain.SSH)


async def _connect(peer: Peer, uri: Any, command: str) -> SSHLink:
    opts = _options(uri)
    conn = await asyncio.wait_for(asyncssh.connect(uri.host, **opts), CONNECT_TIMEOUT)
    _quick_acks(conn)
    link = SSHLink(peer, conn, peer.description)
    try:
        chan, _session = await conn.create_session(lambda: _Session(peer, link), command, encoding=None)
    except BaseException:
        conn.close()
        raise
    link.chan = chan
    # Calling threads that write and read themselves run asyncssh outside the loop's thread,
    # which asyncio's debug mode (``-X dev``, ``PYTHONASYNCIODEBUG``) refuses, as it should
    # refuse any foreign thread: there every frame goes through the loop.
    if os.environ.get("VIRT_REMOTE_DIRECT", "1") != "0" and not link.loop.get_debug():
        link.write_directly()
        link.read_directly()
    _without_ignores(conn)  # outermost: a packet skipped takes no lock
    return link


def connect_ssh(uri: Any, key: tuple[Any, ...]) -> Peer:
    """Open the SSH connection and the helper's channel; the peer is not greeted yet."""
    from virt_remote._client import _keepalive_params

    interval, count = _keepalive_params(uri)
    where = f"{uri.user + '@' if uri.user else ''}{uri.host}{':' + str(uri.port) if uri.port else ''}"
    peer = Peer(key, f"{where} over SSH", interval, count)
    command = helper_command(uri)
    try:
        peer.link = _aio.run(asyncio.wait_for(_connect(peer, uri, command), CONNECT_TIMEOUT))
    except VirtError:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a VirtError
        raise _ssh_error(uri, exc) from None
    return peer
