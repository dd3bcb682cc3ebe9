"""``virt-remote-helper``: what an SSH exec channel runs on the far side.

It serves the protocol on its stdin/stdout, opening local URIs in this process; or, with
``--relay``, it only copies bytes to a ``virtd`` on this node (started on demand), so that the
SSH client shares that daemon's live drivers and the helper starts in milliseconds.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    readonly = False
    relay: str | None = None
    interval, count = 0.0, 5
    it = iter(args)
    for arg in it:
        if arg == "--readonly":
            readonly = True
        elif arg == "--relay":
            relay = next(it, "auto")
        elif arg == "--keepalive-interval":
            interval = float(next(it, "0"))
        elif arg == "--keepalive-count":
            count = int(next(it, "5"))
        elif arg in ("-h", "--help"):
            print("usage: virt-remote-helper [--readonly] [--relay SOCKET|auto] "
                  "[--keepalive-interval S] [--keepalive-count N]", file=sys.stderr)
            return 0
        else:
            print(f"virt-remote-helper: unknown argument {arg!r}", file=sys.stderr)
            return 2
    # The protocol owns the original stdout; anything a driver prints goes to stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    if relay is not None:
        from virt_remote._daemon import connect_or_start, default_socket
        from virt_remote._relay import relay as copy

        path = default_socket() if relay == "auto" else relay
        try:
            sock = connect_or_start(path, autostart_ok=relay == "auto" or not path.startswith("/run/"))
        except OSError as exc:
            print(f"virt-remote-helper: cannot reach virtd at {path}: {exc}", file=sys.stderr)
            return 1
        copy(sock, 0, out_fd)
        return 0
    from virt_remote._server import serve_fds

    serve_fds(0, out_fd, readonly=readonly, keepalive_interval=interval, keepalive_count=count, name="client")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
