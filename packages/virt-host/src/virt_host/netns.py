"""Run a function in fresh network, mount and PID namespaces: how the network tests and the
network benchmark keep off the machine's own network.

    from virt_host.netns import run_isolated
    result = run_isolated(scenario, arg, key=value)

``scenario`` runs in a child process that is PID 1 of a new PID namespace, in a new network
namespace with only ``lo`` (up), with ``/proc`` and ``/sys`` mounted afresh for those
namespaces (in a private mount namespace, so nothing of it shows outside).  Bridges, taps,
nftables tables, dnsmasq and QEMU made there live and die with it: when the function returns
(or raises, or the child is killed), the kernel kills every process left in its PID
namespace, and the network namespace goes with its last process.

The result (or the exception, with the child's traceback as a note) comes back pickled.
Needs root (``CAP_SYS_ADMIN``); Linux only.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import socket
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HOST_NETNS", "IsolationError", "current_netns", "in_isolated_netns", "run_isolated"]

T = TypeVar("T")

_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_REC, _MS_PRIVATE, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x4000, 0x40000, 2, 4, 8
_MS_BIND, _MS_MOVE = 0x1000, 0x2000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class IsolationError(RuntimeError):
    """The namespaces could not be made, or the child died without an answer."""


def current_netns() -> str:
    """This process's network namespace (``net:[INODE]``)."""
    return os.readlink("/proc/self/ns/net")


#: The network namespace this process started in (the machine's own, for a test run).
HOST_NETNS = current_netns()


def in_isolated_netns() -> bool:
    """Whether this process runs in another network namespace than the one it started in
    (true inside :func:`run_isolated`)."""
    return current_netns() != HOST_NETNS


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise IsolationError(f"{what}: {os.strerror(code)}")


def _mount(libc: ctypes.CDLL, source: str, target: str, fstype: str | None, flags: int) -> None:
    _check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None),
           f"mount {target}")


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        import fcntl

        ifreq = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _enter_namespaces() -> None:
    """In the PID-1 child: private mounts, /proc and /sys of the new namespaces, lo up."""
    libc = _libc()
    _mount(libc, "none", "/", None, _MS_REC | _MS_PRIVATE)
    _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    # A fresh sysfs (so /sys/class/net shows this namespace's links) would hide the cgroup
    # mounts under it, which container drivers need: carry them over.
    keep = None
    if os.path.ismount("/sys/fs/cgroup"):
        import tempfile

        keep = tempfile.mkdtemp(prefix="virt-netns-cgroup-")
        _mount(libc, "/sys/fs/cgroup", keep, None, _MS_BIND | _MS_REC)
    _mount(libc, "sysfs", "/sys", "sysfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    if keep is not None:
        _mount(libc, keep, "/sys/fs/cgroup", None, _MS_MOVE)
        os.rmdir(keep)
    _lo_up()


def _send(fd: int, payload: tuple[str, Any, str]) -> None:
    try:
        data = pickle.dumps(payload)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception: send its text
        data = pickle.dumps(("error", IsolationError(f"{payload[1]!r} (unpicklable: {exc})"), payload[2]))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_isolated(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in new network + mount + PID namespaces (see the module)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the middle child: unshare, then fork PID 1 of the new PID namespace
        status = 1
        try:
            os.close(read_fd)
            libc = _libc()
            _check(libc.unshare(_CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWPID), "unshare")
            inner = os.fork()
            if inner == 0:
                _run_child(write_fd, func, args, kwargs)
            os.close(write_fd)
            _, raw = os.waitpid(inner, 0)
            status = os.waitstatus_to_exitcode(raw)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave without cleanup handlers
            _send(write_fd, ("error", IsolationError(str(exc)), traceback.format_exc()))
        finally:
            os._exit(status if 0 <= status < 256 else 1)
    os.close(write_fd)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(read_fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, raw = os.waitpid(pid, 0)
    if not chunks:
        raise IsolationError(f"the isolated child died without an answer (exit {os.waitstatus_to_exitcode(raw)})")
    kind, value, text = pickle.loads(b"".join(chunks))
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if isinstance(value, BaseException):
        value.add_note("--- in the isolated child ---\n" + text)
        raise value
    raise IsolationError(text)


def _run_child(write_fd: int, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """PID 1 of the new namespaces: run ``func`` and send its outcome; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _enter_namespaces()
        if not in_isolated_netns():
            raise IsolationError("still in the machine's network namespace")
        result = func(*args, **kwargs)
        _send(write_fd, ("ok", result, ""))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        code = 1
        _send(write_fd, ("error", exc, traceback.format_exc()))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # PID 1 exits: the kernel kills what is left in the namespace
