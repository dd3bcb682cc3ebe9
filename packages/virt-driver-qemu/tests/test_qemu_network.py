"""Guests on virtual networks: ``<interface type='network'|'bridge'>`` become taps on the bridge.

Each test runs in network, mount and PID namespaces of its own (``nettest_lib.isolated`` from
virt-host's tests): the bridge, dnsmasq, nftables rules and QEMU die with the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("virt_host", reason="requires the virt-host distribution (host networks)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "virt-host" / "tests"))

import virt
from nettest_lib import isolated, links, net_xml, netns_guard  # noqa: F401 (netns_guard: autouse)
from qemu_testlib import Console, GuestXML, tinyguest, wait_until
from virt import VirtError
from virt._errors import ErrorNumber

MAC = "52:54:00:12:34:56"
NIC = f"<interface type='network'><mac address='{MAC}'/><source network='default'/><model type='virtio'/></interface>"


@isolated
def test_guest_on_a_nat_network(uri: str, guest_xml: GuestXML) -> None:
    with virt.open(uri) as conn:
        net = conn.define_network(net_xml(hosts=((MAC, "tiny", "192.168.100.77"),)))
        net.start()
        dom = conn.define_domain(guest_xml(devices=NIC, append="tinyguest.dhcp=1"))
        dom.start()
        live = dom.xml()
        assert "<target dev='vnet" in live
        tap = live.split("<target dev='", 1)[1].split("'", 1)[0]
        assert tap in links()
        con = Console(dom.console_path())
        try:
            con.read_until(tinyguest.READY_MARKER, 90)
            con.read_until("tinyguest-dhcp: bound", 60)
            assert con.read_until("\n", 5).strip() == "192.168.100.77"
            leases = net.dhcp_leases()
            assert [(lease.mac, lease.ipaddr) for lease in leases] == [(MAC, "192.168.100.77")]
            con.send("ping -c 1 -W 5 192.168.100.1; echo PING-$((1+1))-END")  # the echo of the line has no '2'
            assert "1 packets received" in con.read_until("PING-2-END", 30)
        finally:
            con.close()
        counters = dom.interface_stats(tap)
        assert counters.rx_packets > 0 and counters.tx_packets > 0
        assert dom.interface_stats(MAC) == counters or dom.interface_stats(MAC).rx_packets >= counters.rx_packets
        stats = dom.stats()
        assert stats["net.0.name"] == tap and stats["net.0.rx.bytes"] > 0
        dom.destroy()
        assert wait_until(lambda: tap not in links(), 5), "the tap outlived the guest"
        net.destroy()


@isolated
def test_inactive_network_refuses_the_start(uri: str, guest_xml: GuestXML) -> None:
    with virt.open(uri) as conn:
        conn.define_network(net_xml())
        dom = conn.define_domain(guest_xml(devices=NIC))
        with pytest.raises(VirtError) as err:
            dom.start()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        assert "network 'default' is not active" in str(err.value)
        assert not dom.is_active()
        assert not [name for name in links() if name.startswith("vnet")]
