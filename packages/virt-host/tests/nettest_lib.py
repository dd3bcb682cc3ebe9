"""What the network tests share: every one runs in its own network namespace.

A network test module does::

    from nettest_lib import isolated, netns_guard  # noqa: F401 (netns_guard: an autouse fixture)

    @isolated
    def test_something(conn: virt.Connection) -> None: ...

:func:`isolated` runs the test's body (its fixtures are made in the pytest process, before)
in a child in new network + mount + PID namespaces (:func:`virt_host.netns.run_isolated`):
bridges, taps, nftables tables, dnsmasq and QEMU made there die with the test, whatever
happens.  ``netns_guard`` fails any test of the module that is not :func:`isolated`, so none
can touch the machine's network by being forgotten.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from virt_host.netns import HOST_NETNS, in_isolated_netns, run_isolated

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__virt_netns__"


def isolated(test: F) -> F:
    """Run the test body in its own namespaces (skipped when it cannot be: not root, or
    without dnsmasq/nft; CI's VIRT_REQUIRE_ALL=1 turns such a skip into a failure)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.geteuid() != 0:
            pytest.skip("network tests need root (network namespaces, bridges)")
        for tool, package in (("dnsmasq", "dnsmasq-base"), ("nft", "nftables")):
            if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
                pytest.skip(f"requires {tool} (Debian package {package})")
        return run_isolated(_checked, test, args, kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def _checked(test: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    netns = os.readlink("/proc/self/ns/net")
    assert netns != HOST_NETNS and in_isolated_netns(), "a network test runs in the machine's own namespace"
    return test(*args, **kwargs)


@pytest.fixture(autouse=True)
def netns_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of a network module must be :func:`isolated`."""
    function = getattr(request, "function", None)
    if function is not None and not getattr(function, _MARK, False):
        pytest.fail(f"{request.node.name} is not @isolated: network tests must run in their own "
                    "network namespace (nettest_lib.isolated)")
    yield
    assert os.readlink("/proc/self/ns/net") == HOST_NETNS  # the pytest process itself never moved


# -- XML --------------------------------------------------------------------------------------


def net_xml(name: str = "default", *, forward: str | None = "nat", bridge: str | None = None,
            address: str = "192.168.100.1", prefix: int = 24, dhcp: bool = True, uuid: str | None = None,
            hosts: tuple[tuple[str, str, str], ...] = (), dns_hosts: tuple[tuple[str, str], ...] = (),
            extra: str = "") -> str:
    """A network: ``hosts`` are DHCP (mac, name, ip), ``dns_hosts`` DNS (ip, hostname)."""
    parts = [f"<network><name>{name}</name>"]
    if uuid:
        parts.append(f"<uuid>{uuid}</uuid>")
    if forward:
        parts.append(f"<forward mode='{forward}'/>")
    if bridge:
        parts.append(f"<bridge name='{bridge}'/>")
    if dns_hosts:
        parts.append("<dns>" + "".join(f"<host ip='{ip}'><hostname>{h}</hostname></host>" for ip, h in dns_hosts)
                     + "</dns>")
    parts.append(extra)
    net = address.rsplit(".", 1)[0]
    dhcp_xml = ""
    if dhcp:
        dhcp_xml = (f"<dhcp><range start='{net}.100' end='{net}.200'/>"
                    + "".join(f"<host mac='{m}' name='{n}' ip='{i}'/>" for m, n, i in hosts) + "</dhcp>")
    parts.append(f"<ip address='{address}' prefix='{prefix}'>{dhcp_xml}</ip></network>")
    return "".join(parts)


# -- looking at the namespace -----------------------------------------------------------------


def links() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def processes(word: str) -> list[int]:
    """Live (not zombie) processes of this PID namespace whose command line has ``word``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X"):
            continue
        if word in cmdline:
            found.append(int(entry))
    return found


# -- DNS ----------------------------------------------------------------------------------------


def dns_query(server: str, name: str, timeout: float = 2.0) -> list[str]:
    """The IPv4 addresses ``server`` answers for ``name`` (one UDP query, type A)."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        while True:
            data = sock.recv(4096)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == ident:
                break
    answers = struct.unpack(">H", data[6:8])[0]
    pos = 12 + len(question)
    out = []
    for _ in range(answers):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += length
    return out


# -- making and reading links (pyroute2: the tests need no iproute2 either) ----------------------


def add_link(name: str, kind: str = "bridge", address: str | None = None) -> None:
    """A device of the test namespace, up (``address``: an ``A.B.C.D/N`` to give it)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind=kind)
        index = ipr.link_lookup(ifname=name)[0]
        if address:
            ip, prefix = address.split("/")
            ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))
        ipr.link("set", index=index, state="up")


def del_link(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname=name)[0])


def addresses(name: str) -> list[str]:
    """``A.B.C.D/N`` of device ``name``."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        return [f"{a.get('address')}/{a['prefixlen']}" for a in ipr.addr("dump", index=index)]


def link_info(name: str) -> dict[str, Any]:
    """state (up/down), mtu, address and master (a name) of device ``name``."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        link = ipr.link("get", index=ipr.link_lookup(ifname=name)[0])[0]
        master = link.get("master")
        return {"state": link.get("state"), "mtu": link.get("mtu"), "address": link.get("address"),
                "master": ipr.link("get", index=master)[0].get("ifname") if master else None,
                "kind": link.get(("linkinfo", "kind")) if hasattr(link, "get") else None}


def dns_eventually(server: str, name: str, expected: list[str], timeout: float = 5.0) -> list[str]:
    """Query until the answer is ``expected`` (dnsmasq re-reads its hosts files on SIGHUP
    asynchronously, as libvirt's reload is); the last answer."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        answer = dns_query(server, name)
        if answer == expected or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)
