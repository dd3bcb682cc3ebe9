"""Containers on virtual networks: a veth pair, one end in the bridge, the other the container's
``eth0``.  In network, mount and PID namespaces of the test's own (virt-host's ``isolated``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("virt_host", reason="requires the virt-host distribution (host networks)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "virt-host" / "tests"))

import virt
from lxc_testlib import domain_xml, make_rootfs, wait_until
from nettest_lib import isolated, links, net_xml, netns_guard  # noqa: F401 (netns_guard: autouse)

MAC = "52:54:00:ab:cd:ef"
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
        dom = conn.create_domain(domain_xml("netc", rootfs, share=share, devices=nic))
        assert wait_until(lambda: (share / "result").exists(), 20), "the container never pinged"
        assert MAC in (share / "link").read_text()
        assert (share / "result").read_text().strip() == "ok", (share / "ping").read_text() + \
            (share / "addr").read_text()
        veths = {name for name in links() if name.startswith("veth")} - before
        assert len(veths) == 1
        dom.destroy()
        assert wait_until(lambda: not ({name for name in links() if name.startswith("veth")} - before), 5)
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
            if boot == 1:
                assert len(veths()) == 1
                dom.reboot()
        assert dom.state()[0] == virt.DomainState.RUNNING
        # one pair: the earlier ones went with their namespaces
        assert wait_until(lambda: len(veths()) == 1, 5), veths()
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
        assert not [name for name in links() if name.startswith("veth")]
