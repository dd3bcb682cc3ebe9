"""Taps for guests (:func:`virt_host.network.plug_tap`), and a real guest on a network: the
tiny guest gets its DHCP lease from the network's dnsmasq, ``net-dhcp-leases`` shows it, and
it reaches the bridge address.  Each test in its own network namespace.

The guest runs under bare QEMU with the tap's fd (``-netdev tap,fd=N``), as the QEMU driver
will pass it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import virt
from nettest_lib import isolated, link_info, links, net_xml, netns_guard  # noqa: F401 (netns_guard: autouse)
from virt import ErrorDomain, ErrorNumber, VirtError
from virt.cli import main
from virt_host.network import plug_tap, unplug_tap

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import tinyguest

GUEST_MAC = "52:54:00:12:34:56"


def _gone(name: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while name in links():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@isolated
def test_plug_and_unplug_taps(conn: virt.Connection, uri: str) -> None:
    net = conn.define_network(net_xml(extra="<mtu size='1400'/>"))
    with pytest.raises(VirtError) as info:
        plug_tap(uri, network="default", mac=GUEST_MAC, domain_name="g", index=0)
    assert (info.value.code, info.value.domain) == (ErrorNumber.OPERATION_INVALID, ErrorDomain.NETWORK)
    assert info.value.message == "Requested operation is not valid: network 'default' is not active"
    with pytest.raises(VirtError) as info:
        plug_tap(uri, network="nope", mac=GUEST_MAC, domain_name="g", index=0)
    assert info.value.code == ErrorNumber.NO_NETWORK
    net.start()
    tap = plug_tap(uri, network="default", mac=GUEST_MAC, domain_name="g", index=0)
    assert re.fullmatch(r"vnet\d+", tap.name) and tap.fd >= 0 and tap.bridge == "virbr0"
    assert link_info(tap.name) | {"kind": None} == {"state": "up", "mtu": 1400, "address": "fe:54:00:12:34:56",
                                                    "master": "virbr0", "kind": None}
    assert "<network connections='1'>" in net.xml()  # libvirt counts the guests' ports
    assert "connections" not in net.xml(inactive=True)
    second = plug_tap(uri, bridge="virbr0", mac="52:54:00:12:34:57", domain_name="g", index=1, target="mytap0")
    assert second.name == "mytap0" and link_info("mytap0")["master"] == "virbr0" and second.network is None
    # closing the last descriptor removes a tap; unplug_tap removes one still held, and is idempotent
    tap.close()
    assert _gone(tap.name)
    assert "connections" not in net.xml()
    unplug_tap(tap.name)
    unplug_tap("mytap0")
    assert "mytap0" not in links()
    second.close()
    with pytest.raises(VirtError) as info:
        plug_tap(uri, bridge="nobridge", mac=GUEST_MAC, domain_name="g", index=0)
    assert info.value.code == ErrorNumber.SYSTEM_ERROR
    assert info.value.message == "Cannot get interface MTU on 'nobridge': No such device"
    net.destroy()


@pytest.fixture
def guest() -> tinyguest.Guest:
    return tinyguest.tiny_guest_or_skip()  # built (or found) outside the namespace: it may download


@isolated
def test_guest_gets_a_lease_and_reaches_the_bridge(conn: virt.Connection, uri: str, guest: tinyguest.Guest,
                                                   tmp_path: Path) -> None:
    net = conn.define_network(net_xml(hosts=((GUEST_MAC, "tiny", "192.168.100.77"),)))
    net.start()
    tap = plug_tap(uri, network="default", mac=GUEST_MAC, domain_name="tiny", index=0)
    console = tmp_path / "console.sock"
    argv = tinyguest.qemu_argv(guest, serial0=f"unix:{console},server=on,wait=off",
                               append="tinyguest.dhcp=1 tinyguest.ticks=0",
                               extra=("-netdev", f"tap,fd={tap.fd},id=n0",
                                      "-device", f"virtio-net-pci,netdev=n0,mac={GUEST_MAC}"))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, pass_fds=(tap.fd,))
    tap.close()
    try:
        with tinyguest.SerialSocket(console) as con:
            con.read_until(guest.ready_marker, timeout=90)
            bound = con.read_until("tinyguest-dhcp: bound", timeout=60)
            assert "leasefail" not in bound
            address = con.read_until("\n", timeout=5).strip()
            assert address == "192.168.100.77"  # the static host of its MAC
            leases = net.dhcp_leases()
            assert [(lease.mac, lease.ipaddr, lease.prefix, lease.iface, lease.type) for lease in leases] == \
                [(GUEST_MAC, "192.168.100.77", 24, "virbr0", 0)]
            assert leases[0].expirytime > time.time()
            assert net.dhcp_leases(mac="52:54:00:00:00:01") == []
            assert "<network connections='1'>" in net.xml()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["-c", uri, "net-dhcp-leases", "default"]) == 0
            assert GUEST_MAC in out.getvalue() and "192.168.100.77/24" in out.getvalue()
            con.read_until(tinyguest.SHELL_PROMPT, timeout=10)
            reply = con.command("ping -c 1 -W 5 192.168.100.1", timeout=30)
            assert "1 packets received" in reply, reply
    finally:
        tinyguest.kill(proc)
    assert _gone(tap.name)  # QEMU held the last descriptor
    unplug_tap(tap.name)
    net.destroy()
    assert os.path.exists(Path(uri.split("root=", 1)[1]) / "run" / "network" / "default.leases")
