"""``virt-remote-helper``: what an SSH exec channel runs on the far side.

    virt-remote-helper [--readonly] [--relay SOCKET|auto] [--keepalive-interval S] [--keepalive-count N]

Without ``--relay`` it serves virt's remote protocol on its stdin/stdout, opening local URIs
in this process (``virt_remote._server``).  With ``--relay`` it only copies bytes between
stdin/stdout and a ``virtd`` on this node (``auto``: the session daemon's socket, or the system
one for root), starting the daemon on demand when its socket is absent; the SSH client then
shares that daemon's live drivers, as libvirt's ``virt-ssh-helper`` does.

A top-level module of the virt-remote distribution, apart from the ``virt_remote`` package, so
that the relay imports nothing but a few standard-library modules: it starts in milliseconds.
The daemon's socket paths and its start on demand live here for the same reason.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SYSTEM_SOCKET", "connect", "connect_or_start", "default_socket", "main", "relay", "session_socket",
           "system_socket"]

SYSTEM_SOCKET = "/run/virt/virtd-sock"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at start
if TYPE_CHECKING:
    import socket


def system_socket() -> str:
    """The system daemon's socket (root's)."""
    return SYSTEM_SOCKET


def session_socket() -> str:
    """A user's session daemon's socket: ``$XDG_RUNTIME_DIR/virt/virtd-sock``."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(base, "virt", "virtd-sock")


def default_socket(system: bool | None = None) -> str:
    """The system socket for root (or when ``system``), else the session socket."""
    if system is None:
        system = os.geteuid() == 0
    return system_socket() if system else session_socket()


def connect(path: str, timeout: float | None = None) -> socket.socket:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except OSError:
        sock.close()
        raise
    return sock


def autostart(path: str, wait: float = 15.0, idle_timeout: int = 120) -> socket.socket:
    """Start a daemon on ``path``, detached, and return a connection to it once it listens."""
    import subprocess
    import time

    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    command = [sys.executable, "-m", "virt_remote._daemon", "--socket", path, "--timeout", str(idle_timeout)]
    # Detached: a shell in a new session starts it in the background and exits at once, so the
    # daemon is nobody's child here (no zombie, no terminal, no signal from our session).
    subprocess.run(["/bin/sh", "-c", 'exec "$@" </dev/null >/dev/null 2>&1 &', "sh", *command],
                   start_new_session=True, close_fds=True, check=False)
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            return connect(path, timeout=1.0)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise OSError(exc.errno, f"the daemon started on demand did not listen on {path}: "
                                         f"{exc.strerror}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def connect_or_start(path: str, autostart_ok: bool) -> socket.socket:
    """A connection to the daemon on ``path``, starting it first when allowed and absent."""
    import errno

    try:
        return connect(path)
    except OSError as exc:
        if not autostart_ok or exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            raise
    return autostart(path)


def relay(sock: socket.socket, in_fd: int = 0, out_fd: int = 1) -> None:
    """Copy ``in_fd`` to ``sock`` and ``sock`` to ``out_fd`` until either side ends."""
    import selectors
    import socket

    sel = selectors.DefaultSelector()
    sel.register(in_fd, selectors.EVENT_READ, "in")
    sel.register(sock, selectors.EVENT_READ, "sock")
    while True:
        for key, _ in sel.select():
            if key.data == "in":
                data = os.read(in_fd, 262144)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    return
                sock.sendall(data)
            else:
                data = sock.recv(262144)
                if not data:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(out_fd, view):]


USAGE = ("usage: virt-remote-helper [--readonly] [--relay SOCKET|auto] "
         "[--keepalive-interval S] [--keepalive-count N]")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    readonly = False
    relay_to: str | None = None
    interval, count = 0.0, 5
    it = iter(args)
    try:
        for arg in it:
            if arg == "--readonly":
                readonly = True
            elif arg == "--relay":
                relay_to = next(it, "auto")
            elif arg == "--keepalive-interval":
                interval = float(next(it, "0"))
            elif arg == "--keepalive-count":
                count = int(next(it, "5"))
            elif arg in ("-h", "--help"):
                print(USAGE, file=sys.stderr)
                return 0
            else:
                print(f"virt-remote-helper: unknown argument {arg!r}\n{USAGE}", file=sys.stderr)
                return 2
    except ValueError as exc:
        print(f"virt-remote-helper: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    # The protocol owns the original stdout; anything a driver prints goes to stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    if relay_to is not None:
        path = default_socket() if relay_to == "auto" else relay_to
        try:
            # The system socket is the system's to start; a user's or an explicit one, ours.
            sock = connect_or_start(path, autostart_ok=path != SYSTEM_SOCKET)
        except OSError as exc:
            print(f"virt-remote-helper: cannot reach virtd at {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        relay(sock, 0, out_fd)
        return 0
    import gc

    gc.disable()  # for the start only: the first open turns it on again
    from virt_remote._server import serve_fds

    serve_fds(0, out_fd, readonly=readonly, keepalive_interval=interval, keepalive_count=count, name="client",
              gc_paused=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
