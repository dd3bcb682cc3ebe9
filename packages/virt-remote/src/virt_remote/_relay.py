"""Byte relay between stdin/stdout and a unix socket (the helper's ``--relay`` mode).

Imports only the standard library's smallest modules, so that the helper starts fast when the
far side runs a daemon, as libvirt's ``virt-ssh-helper`` does.
"""

from __future__ import annotations

import os
import selectors
import socket

__all__ = ["relay"]


def relay(sock: socket.socket, in_fd: int = 0, out_fd: int = 1) -> None:
    """Copy ``in_fd`` to ``sock`` and ``sock`` to ``out_fd`` until either side ends."""
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
