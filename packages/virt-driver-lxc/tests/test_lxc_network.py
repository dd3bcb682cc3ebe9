"""Containers on virtual networks: a veth pair, one end in the bridge, the other the container's
``eth0``.  In network, mount and PID namespaces of the test's own (virt-host's ``isolated``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

pytest.importorskip("virt_host", reason="requires the virt-host distribution (host networks)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "virt-host" / "tests"))

import virt
from lxc_testlib import domain_xml, make_rootfs, wait_until, written
from nettest_lib import isolated, links, net_xml, netns_guard  # noqa: F401 (netns_guard: autouse)

MAC = "52:54:00:ab:cd:ef"
VIRT = [str(Path(sys.executable).parent / "virt")] if (Path(sys.executable).parent / "virt").exists() else ["virt"]


def virt_cli(uri: str, *words: str) -> str:
    proc = subprocess.run([*VIRT, "-c", uri, *words], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def host_veths(xml: str) -> list[str | None]:
    """The ``<target dev>`` of each ``<interface>`` (None where it has none)."""
    out = []
    for nic in etree.fromstring(xml.encode()).iterfind("devices/interface"):
        target = nic.find("target")
        out.append(target.get("dev") if target is not None else None)
    return out


def guest_names(xml: str) -> list[str | None]:
    return [g.get("dev") for g in etree.fromstring(xml.encode()).iterfind("devices/interface/guest")]
PING_INIT = """trap 'exit 0' TERM
ip addr add 192.168.100.50/24 dev eth0
ip link show eth0 > /share/link
result=no
for i in 1 2 3 4 5 6 7 8 9 10; do  # the bridge port may take a moment to forward
  if ping -c 1 -W 1 192.168.100.1 > /share/ping 2>&1; then result=ok; break; fi
done
ip addr > /share/addr 2>&1
echo $result > /share/result
while :; do sleep 1; done
"""


@isolated
def test_container_on_a_nat_network(uri: str, root: Path, busybox: Path, share: Path) -> None:
    rootfs = make_rootfs(root / "netfs", busybox, PING_INIT)
    for applet in ("ip", "ping"):
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    nic = f"<interface type='network'><mac address='{MAC}'/><source network='default'/></interface>"
    with virt.open(uri) as conn:
        net = conn.define_network(net_xml())
        net.start()
        before = {name for name in links() if name.startswith("veth")}
        dom = conn.define_domain(domain_xml("netc", rootfs, share=share, devices=nic))
        dom.start()
        assert wait_until(lambda: written(share / "result"), 20), "the container never pinged"
        assert MAC in (share / "link").read_text()
        assert (share / "result").read_text().strip() == "ok", (share / "ping").read_text() + \
            (share / "addr").read_text()
        veths = {name for name in links() if name.startswith("veth")} - before
        assert len(veths) == 1
        # as libvirt: the live XML names the host end (<target dev='vethN'/>) and the name inside
        (veth,) = veths
        live = dom.xml()
        assert host_veths(live) == [veth]
        assert guest_names(live) == ["eth0"]
        # ... the persistent definition never does
        assert host_veths(dom.xml(inactive=True)) == [None]
        assert guest_names(dom.xml(inactive=True)) == []
        # domiflist: virsh's columns, the veth's name in the first
        rows = [line.split() for line in virt_cli(uri, "domiflist", "netc").splitlines()]
        assert rows[0] == ["Interface", "Type", "Source", "Model", "MAC"]
        assert [veth, "network", "default", "-", MAC] in rows
        assert [r for r in rows if r and r[0] == "-"] == []
        # domifstat by name and by MAC: the host end's counters, from the container's side
        by_name = dict(line.split()[1:] for line in virt_cli(uri, "domifstat", "netc", veth).splitlines()
                       if line.strip())
        assert int(by_name["rx_packets"]) > 0 and int(by_name["tx_packets"]) > 0, by_name
        assert int(by_name["tx_bytes"]) > 0 and int(by_name["rx_bytes"]) > 0, by_name
        sent_by_host = int(Path(f"/sys/class/net/{veth}/statistics/tx_packets").read_text())
        stats = dom.interface_stats(MAC.upper())
        assert 0 < stats.rx_packets <= sent_by_host
        with pytest.raises(virt.VirtError, match="'veth999' is not a known interface"):
            dom.interface_stats("veth999")
        # domstats' net group: the same interface, the same counters (the host end's, swapped)
        group = dom.stats(16)  # VIR_DOMAIN_STATS_INTERFACE
        assert group["net.count"] == 1 and group["net.0.name"] == veth
        assert 0 < group["net.0.rx.pkts"] <= int(Path(f"/sys/class/net/{veth}/statistics/tx_packets").read_text())
        assert group["net.0.tx.bytes"] > 0
        dom.destroy()
        assert dom.stats(16) == {"net.count": 0}
        assert wait_until(lambda: not ({name for name in links() if name.startswith("veth")} - before), 5)
        # stopped: nothing of the start remains in the definition
        assert host_veths(dom.xml()) == [None]
        assert guest_names(dom.xml()) == []
        dom.undefine()
        net.destroy()


REBOOT_INIT = """trap 'exit 0' TERM
boot=1
while [ -e /share/result.$boot ]; do boot=$((boot + 1)); done
ip addr add 192.168.100.50/24 dev eth0
ip link show eth0 > /share/link.$boot
result=no
for i in 1 2 3 4 5 6 7 8 9 10; do
  if ping -c 1 -W 1 192.168.100.1 > /share/ping.$boot 2>&1; then result=ok; break; fi
done
echo $result > /share/tmp; mv /share/tmp /share/result.$boot
if [ $boot = 2 ]; then reboot -f; fi  # reboot(2): the kernel kills the init with SIGHUP
while :; do sleep 1; done
"""


@isolated
def test_reboot_plugs_the_interface_again(uri: str, root: Path, busybox: Path, share: Path) -> None:
    """A reboot makes a fresh network namespace: the controller has a veth pair made and
    plugged again (virt_lxc._replug), with the same MAC; a reboot asked for (boot 1) and one
    from inside (boot 2)."""
    rootfs = make_rootfs(root / "netfs", busybox, REBOOT_INIT)
    for applet in ("ip", "ping", "reboot", "mv"):
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    nic = f"<interface type='network'><mac address='{MAC}'/><source network='default'/></interface>"

    def veths() -> set[str]:
        return {name for name in links() if name.startswith("veth")} - before

    with virt.open(uri) as conn:
        net = conn.define_network(net_xml())
        net.start()
        before: set[str] = set()
        before = veths()
        dom = conn.create_domain(domain_xml("netrb", rootfs, share=share, devices=nic))
        for boot in (1, 2, 3):
            result = share / f"result.{boot}"
            assert wait_until(result.exists, 30), f"boot {boot} never pinged"
            assert MAC in (share / f"link.{boot}").read_text()
            assert result.read_text().strip() == "ok", (share / f"ping.{boot}").read_text()
            # the live XML names the host end that exists now (a replug may pick another name)
            assert wait_until(lambda: len(veths()) == 1 and host_veths(dom.xml()) == sorted(veths()), 5), \
                (boot, veths(), dom.xml())
            if boot == 1:
                dom.reboot()
        assert dom.state()[0] == virt.DomainState.RUNNING
        # one pair: the earlier ones went with their namespaces
        assert wait_until(lambda: len(veths()) == 1, 5), veths()
        (veth,) = veths()
        assert host_veths(dom.xml()) == [veth]
        assert dom.interface_stats(veth).rx_packets > 0
        # a transient domain has only its live definition: libvirt's --inactive formats it and
        # keeps the veth target (no LXC netPrefix), so do we
        assert host_veths(dom.xml(inactive=True)) == [veth]
        dom.destroy()
        assert wait_until(lambda: not veths(), 5)
        net.destroy()


@isolated
def test_interface_on_a_missing_or_stopped_network(uri: str, root: Path, busybox: Path, share: Path) -> None:
    rootfs = make_rootfs(root / "netfs", busybox, "while :; do sleep 1; done")
    nic = "<interface type='network'><source network='default'/></interface>"
    with virt.open(uri) as conn:
        with pytest.raises(virt.VirtError) as err:
            conn.create_domain(domain_xml("nonet", rootfs, devices=nic))
        assert "default" in str(err.value)
        conn.define_network(net_xml())
        with pytest.raises(virt.VirtError) as err:
            conn.create_domain(domain_xml("nonet", rootfs, devices=nic))
        assert "network 'default' is not active" in str(err.value)
        assert conn.list_domains(active=True) == []
        # the plug failed while the init was held: no live XML is left claiming veth names
        from virt_lxc._paths import layout_for

        run = layout_for(virt.parse_uri(uri)).run
        assert run.is_dir() and not [p.name for p in run.glob("*.xml")]
        assert not [name for name in links() if name.startswith("veth")]
