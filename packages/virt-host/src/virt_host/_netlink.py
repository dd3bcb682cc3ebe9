"""Link work through netlink (``pyroute2``): bridges, taps, addresses, routes.

``pyroute2`` is imported by the functions that need it (it costs ~0.3 s), never at module
import.  Errors come back as :class:`~virt.VirtError` ``SYSTEM_ERROR`` with libvirt's wording
("Unable to ...: File exists").
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = [
    "add_address",
    "add_route",
    "attach_tap",
    "create_bridge",
    "delete_link",
    "exists",
    "ipr",
    "link_mtu",
    "open_tap",
    "route_collision",
    "set_up",
]

_D = ErrorDomain.NETWORK

# linux/if_tun.h
_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI, _IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
_IFNAMSIZ = 16


def _system(what: str, code: int) -> VirtError:
    return VirtError(ErrorNumber.SYSTEM_ERROR, f"{what}: {os.strerror(code)}", domain=_D)


def _code(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    return getattr(exc, "errno", None) or errno.EIO


def exists(name: str) -> bool:
    """Whether a link ``name`` exists in this process's network namespace (an ioctl, cheap)."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def ipr() -> Iterator[Any]:
    """An rtnetlink socket (``pyroute2.IPRoute``), closed afterwards."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped,unused-ignore]

    sock = IPRoute()
    try:
        yield sock
    finally:
        sock.close()


def _index(sock: Any, name: str, what: str) -> int:
    found = sock.link_lookup(ifname=name)
    if not found:
        raise _system(f"{what} '{name}'", errno.ENODEV)
    return int(found[0])


def create_bridge(sock: Any, name: str, *, mac: str | None, stp: bool, delay: int, mtu: int | None) -> None:
    """Create bridge ``name`` (down); libvirt's ``virNetDevBridgeCreate`` + its settings."""
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    # The kernel counts the forward delay in centiseconds, and refuses one under 2 s once STP
    # is on: it handles the delay before the STP state of one request, on a new bridge (STP off).
    options: dict[str, Any] = {"br_forward_delay": delay * 100, "br_stp_state": 1 if stp else 0}
    if mac:
        options["address"] = mac
    if mtu:
        options["mtu"] = mtu
    try:
        sock.link("add", ifname=name, kind="bridge", **options)
    except NetlinkError as exc:
        raise _system(f"error creating bridge interface {name}", _code(exc)) from None


def delete_link(sock: Any, name: str) -> bool:
    """Delete link ``name``; False when it did not exist."""
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    found = sock.link_lookup(ifname=name)
    if not found:
        return False
    try:
        sock.link("del", index=found[0])
    except NetlinkError as exc:
        if _code(exc) == errno.ENODEV:
            return False
        raise _system(f"error destroying network device {name}", _code(exc)) from None
    return True


def add_address(sock: Any, name: str, address: str, prefix: int) -> None:
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    index = _index(sock, name, "Cannot get interface index of")
    ip = ipaddress.ip_address(address)
    extra: dict[str, Any] = {}
    if ip.version == 4 and prefix < 31:
        extra["broadcast"] = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).broadcast_address)
    try:
        sock.addr("add", index=index, address=address, prefixlen=prefix, **extra)
    except NetlinkError as exc:
        raise _system(f"Failed to add IP address {address}/{prefix} to {name}", _code(exc)) from None


def add_route(sock: Any, name: str, network: str, prefix: int, gateway: str, metric: int | None) -> None:
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    index = _index(sock, name, "Cannot get interface index of")
    extra: dict[str, Any] = {"priority": metric} if metric else {}
    try:
        sock.route("add", dst=network, dst_len=prefix, gateway=gateway, oif=index, **extra)
    except NetlinkError as exc:
        raise _system(f"Failed to add route to {network}/{prefix} via {gateway}", _code(exc)) from None


def set_up(sock: Any, name: str, up: bool = True) -> None:
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    index = _index(sock, name, "Cannot get interface flags on")
    try:
        sock.link("set", index=index, state="up" if up else "down")
    except NetlinkError as exc:
        raise _system(f"Cannot set interface flags on '{name}'", _code(exc)) from None


def link_mtu(sock: Any, name: str) -> int:
    found = sock.link_lookup(ifname=name)
    if not found:
        raise _system(f"Cannot get interface MTU on '{name}'", errno.ENODEV)
    return int(sock.link("get", index=found[0])[0].get("mtu") or 1500)


def route_collision(sock: Any, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """``networkCheckRouteCollision``: the device already routing one of ``networks`` (a route
    of the main table to the same network and prefix), or None."""
    wanted = {(str(n.network_address), n.prefixlen, n.version) for n in networks}
    if not wanted:
        return None
    for family in {4: socket.AF_INET, 6: socket.AF_INET6}.items():
        version, af = family
        if not any(w[2] == version for w in wanted):
            continue
        for route in sock.route("dump", family=af):
            if route.get("table") not in (254, None) or route.get("type") not in (1, None):  # main, unicast
                continue
            dst = route.get("dst")
            if dst is None:
                continue
            key = (str(ipaddress.ip_address(dst)), int(route.get("dst_len") or 0), version)
            if key in wanted:
                oif = route.get("oif")
                names = sock.link("get", index=oif) if oif else []
                return str(names[0].get("ifname")) if names else "unknown"
    return None


def open_tap(name: str | None) -> tuple[str, int]:
    """Open ``/dev/net/tun`` as a tap (``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR``), named ``name``
    or ``vnet%d`` (the kernel picks the number).  Returns (the tap's name, the fd)."""
    template = (name or "vnet%d").encode()
    if len(template) >= _IFNAMSIZ:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Network interface name '{name}' is too long", domain=_D)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise _system("Unable to open /dev/net/tun, is tun module loaded?", exc.errno or errno.EIO) from None
    try:
        import fcntl

        request = struct.pack("16sH", template, _IFF_TAP | _IFF_NO_PI | _IFF_VNET_HDR)
        answer = fcntl.ioctl(fd, _TUNSETIFF, request)
    except OSError as exc:
        os.close(fd)
        raise _system(f"Unable to create tap device {name or 'vnet%d'}", exc.errno or errno.EIO) from None
    return answer[:_IFNAMSIZ].rstrip(b"\0").decode(), fd


def attach_tap(sock: Any, tap: str, bridge: str, mac: str, mtu: int) -> None:
    """Give ``tap`` its host-side MAC and the bridge's MTU, enslave it to ``bridge``, bring it up."""
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    index = _index(sock, tap, "Cannot get interface index of")
    master = _index(sock, bridge, "Cannot get interface index of")
    try:
        sock.link("set", index=index, address=mac, mtu=mtu)
    except NetlinkError as exc:
        raise _system(f"Cannot set interface MAC/MTU on '{tap}'", _code(exc)) from None
    try:
        sock.link("set", index=index, master=master)
    except NetlinkError as exc:
        raise _system(f"Unable to add bridge {bridge} port {tap}", _code(exc)) from None
    try:
        sock.link("set", index=index, state="up")
    except NetlinkError as exc:
        raise _system(f"Cannot set interface flags on '{tap}'", _code(exc)) from None
