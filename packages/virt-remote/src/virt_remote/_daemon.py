"""``virtd``: the protocol served on a unix socket, so that several processes share one live
driver (its monitors, its events), and the helper's ``--relay`` target.

Sockets, as libvirt places its own: ``$XDG_RUNTIME_DIR/virt/virtd-sock`` for a user's
session daemon, ``/run/virt/virtd-sock`` for the system daemon (root).  A client opening a
``+unix`` URI starts the session daemon on demand when its socket is absent (as libvirt does),
detached, with an idle timeout, and waits for the socket.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import stat
import threading
import time

from virt_remote_helper import (
    SYSTEM_SOCKET,
    autostart,
    connect,
    connect_or_start,
    default_socket,
    session_socket,
    system_socket,
)

__all__ = ["SYSTEM_SOCKET", "Daemon", "autostart", "connect", "connect_or_start", "default_socket", "main",
           "session_socket", "system_socket"]

log = logging.getLogger("virt.remote")

def _listen(path: str, mode: int) -> socket.socket:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            try:
                connect(path, timeout=1.0).close()
            except OSError:
                os.unlink(path)  # stale: nobody listens
            else:
                raise SystemExit(f"virtd: a daemon already listens on {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(64)
    return sock


class Daemon:
    """Accepts clients on unix sockets and serves each with a :class:`~virt_remote._server.Service`."""

    def __init__(self, path: str, readonly_path: str | None = None, idle_timeout: float = 0.0,
                 keepalive_interval: float = 5.0, keepalive_count: int = 5) -> None:
        self.path = path
        self.readonly_path = readonly_path
        self.idle_timeout = idle_timeout
        self.keepalive = (keepalive_interval, keepalive_count)
        self.clients = 0
        self._lock = threading.Lock()
        self._last_active = time.monotonic()
        self._stop = threading.Event()
        self.socks: list[tuple[socket.socket, bool]] = []

    def start(self) -> None:
        self.socks.append((_listen(self.path, 0o600), False))
        if self.readonly_path:
            self.socks.append((_listen(self.readonly_path, 0o666), True))

    def serve_forever(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        for sock, readonly in self.socks:
            sel.register(sock, selectors.EVENT_READ, readonly)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    try:
                        client, _addr = key.fileobj.accept()  # type: ignore[union-attr]
                    except OSError:
                        continue
                    with self._lock:
                        self.clients += 1
                    threading.Thread(target=self._serve, args=(client, key.data), daemon=True,
                                     name="virtd-client").start()
                if self.idle_timeout:
                    with self._lock:
                        idle = self.clients == 0 and time.monotonic() - self._last_active > self.idle_timeout
                    if idle:
                        log.info("virtd: idle for %ss, exiting", self.idle_timeout)
                        break
        finally:
            self.close()

    def _serve(self, client: socket.socket, readonly: bool) -> None:
        from virt_remote._server import Service

        service = Service(client.recv, client.sendall, readonly=readonly, keepalive_interval=self.keepalive[0],
                          keepalive_count=self.keepalive[1], name="client", fileno=client.fileno(),
                          send_fileno=client.fileno())
        try:
            service.serve()
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
            with self._lock:
                self.clients -= 1
                self._last_active = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for sock, _ in self.socks:
            with contextlib.suppress(OSError):
                path = sock.getsockname()
                sock.close()
                if isinstance(path, str) and path:
                    os.unlink(path)
        self.socks = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virtd", description="Serve virt's remote protocol on a unix socket.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", help="socket path (default: the session or system socket)")
    where.add_argument("--system", action="store_true", help=f"listen on {SYSTEM_SOCKET}")
    where.add_argument("--session", action="store_true", help="listen on $XDG_RUNTIME_DIR/virt/virtd-sock")
    parser.add_argument("--readonly-socket", help="also listen here; every client of it is read-only (mode 0666)")
    parser.add_argument("--timeout", type=float, default=0.0, help="exit after this many idle seconds (0: never)")
    parser.add_argument("--keepalive-interval", type=float, default=5.0)
    parser.add_argument("--keepalive-count", type=int, default=5)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="virtd: %(message)s")
    path = args.socket or default_socket(True if args.system else False if args.session else None)
    daemon = Daemon(path, args.readonly_socket, args.timeout, args.keepalive_interval, args.keepalive_count)
    daemon.start()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    try:
        daemon.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
