"""Host interfaces, read-only: this host's through the public API (against ``/sys/class/net``
and ``interface.rng``), bridges, bonds and VLANs on a made-up host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import virt
from lxml import etree
from node_fakehost import build_fake_host
from virt import ErrorNumber, VirtError
from virt.xml._schema import validate
from virt_host.node import NodeProvider


def _validate(xml: str) -> etree._Element:
    root = etree.fromstring(xml.encode())
    validate(root, "interface")
    return root


def listed_interfaces() -> list[str]:
    """What libvirt lists: not bridge ports, not TUN/TAP devices."""
    base = Path("/sys/class/net")
    return sorted(n for n in os.listdir(base) if not (base / n / "brport" / "state").exists()
                  and not (base / n / "tun_flags").exists())


def test_this_hosts_interfaces(conn: virt.Connection) -> None:
    names = listed_interfaces()
    ifaces = conn.list_interfaces()
    assert sorted(i.name for i in ifaces) == names
    for iface in ifaces:
        base = Path("/sys/class/net") / iface.name
        assert iface.mac == (base / "address").read_text().strip()
        assert iface.active == ((base / "operstate").read_text().strip() == "up")
        root = _validate(iface.xml())
        assert root.get("name") == iface.name
        assert iface.xml(inactive=True) == iface.xml()
    active = {i.name for i in conn.list_interfaces(active=True)}
    inactive = {i.name for i in conn.list_interfaces(active=False)}
    assert active | inactive == set(names) and not active & inactive
    looked_up = conn.lookup_interface(names[0])
    assert looked_up.name == names[0]


def test_loopback_addresses(conn: virt.Connection) -> None:
    if "lo" not in os.listdir("/sys/class/net"):
        pytest.skip("[optional] no loopback interface")
    root = _validate(conn.lookup_interface("lo").xml())
    addresses = root.findall("protocol[@family='ipv4']/ip")
    assert [(a.get("address"), a.get("prefix")) for a in addresses][:1] == [("127.0.0.1", "8")]


def test_unknown_interface(conn: virt.Connection) -> None:
    for name in ("nosuchif0", "../lo", ""):
        with pytest.raises(VirtError) as err:
            conn.lookup_interface(name)
        assert err.value.code == ErrorNumber.NO_INTERFACE
        assert f"couldn't find interface named '{name}'" in str(err.value)


def test_fake_bridge_and_ethernet(tmp_path: Path) -> None:
    build_fake_host(tmp_path)
    provider = NodeProvider(str(tmp_path))
    refs = provider.virt_interface_list(0)
    # eth0 is a port of br0: not listed, shown inside the bridge, still found by name
    assert [(r.name, r.mac, r.active) for r in refs] == [("br0", "52:54:00:12:34:56", False)]
    assert provider.virt_interface_list(2) == []
    assert [r.name for r in provider.virt_interface_list(1)] == ["br0"]
    assert provider.virt_interface_lookup_by_name("eth0").active
    bridge = provider.virt_interface_get_xml("br0", 0)
    assert bridge == """\
<interface type='bridge' name='br0'>
  <mtu size='1500'/>
  <bridge stp='on' delay='1500'>
    <interface type='ethernet' name='eth0'>
      <link speed='1000' state='up'/>
      <mac address='00:1b:21:aa:bb:cc'/>
    </interface>
  </bridge>
</interface>
"""
    _validate(bridge)
    eth0 = provider.virt_interface_get_xml("eth0", 0)
    assert eth0 == """\
<interface type='ethernet' name='eth0'>
  <mtu size='1500'/>
  <link speed='1000' state='up'/>
  <mac address='00:1b:21:aa:bb:cc'/>
</interface>
"""
    _validate(eth0)
    with pytest.raises(VirtError) as err:
        provider.virt_interface_get_xml("eth0", 2)
    assert err.value.code == ErrorNumber.INVALID_ARG


def test_fake_bond_and_vlan(tmp_path: Path) -> None:
    host = build_fake_host(tmp_path)
    bond = "/sys/devices/virtual/net/bond0"
    for rel, value in (("address", "00:1b:21:aa:bb:cc"), ("operstate", "up"), ("speed", "1000"), ("mtu", "1500"),
                       ("uevent", "DEVTYPE=bond\nINTERFACE=bond0"), ("bonding/mode", "active-backup 1"),
                       ("bonding/miimon", "100"), ("bonding/updelay", "10"), ("bonding/use_carrier", "0"),
                       ("bonding/slaves", "eth0")):
        host.write(f"{bond}/{rel}", value + "\n")
    host.link(f"{bond}/slave_eth0", "/sys/class/net/eth0")
    host.link("/sys/class/net/bond0", bond)
    vlan = "/sys/devices/virtual/net/eth0.42"
    for rel, value in (("address", "00:1b:21:aa:bb:cc"), ("operstate", "lowerlayerdown"), ("mtu", "1500"),
                       ("uevent", "DEVTYPE=vlan\nINTERFACE=eth0.42")):
        host.write(f"{vlan}/{rel}", value + "\n")
    host.link("/sys/class/net/eth0.42", vlan)
    host.write("/proc/net/vlan/eth0.42", "eth0.42  VID: 42\t REORDER_HDR: 1  dev->priv_flags: 1001\n"
                                         "         total frames received            0\n"
                                         "Device: eth0\nINGRESS priority mappings: 0:0\n")
    provider = NodeProvider(str(tmp_path))
    bond_xml = provider.virt_interface_get_xml("bond0", 0)
    assert bond_xml == """\
<interface type='bond' name='bond0'>
  <mtu size='1500'/>
  <link speed='1000' state='up'/>
  <bond mode='active-backup'>
    <miimon freq='100' updelay='10' carrier='ioctl'/>
    <interface type='ethernet' name='eth0'>
      <link speed='1000' state='up'/>
      <mac address='00:1b:21:aa:bb:cc'/>
    </interface>
  </bond>
</interface>
"""
    _validate(bond_xml)
    vlan_xml = provider.virt_interface_get_xml("eth0.42", 0)
    assert vlan_xml == """\
<interface type='vlan' name='eth0.42'>
  <mtu size='1500'/>
  <link state='lowerlayerdown'/>
  <vlan tag='42'>
    <interface name='eth0'/>
  </vlan>
</interface>
"""
    _validate(vlan_xml)
