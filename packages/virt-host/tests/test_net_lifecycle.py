"""Host virtual networks through the public API, each test in its own network namespace:
lifecycle, what a running network is made of (bridge, nftables table, dnsmasq answering DNS),
forward modes, errors as libvirt words them, events, state shared by processes, the CLI."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import virt
from nettest_lib import (  # noqa: F401 (netns_guard: autouse)
    add_link,
    addresses,
    del_link,
    dns_eventually,
    dns_query,
    isolated,
    links,
    net_xml,
    netns_guard,
    nft_tables,
    processes,
)
from virt import ErrorDomain, ErrorNumber, NetworkEvent, NetworkEventType, VirtError
from virt.cli import main


def check(info: pytest.ExceptionInfo[VirtError], code: ErrorNumber, message: str) -> None:
    assert info.value.code == code, info.value
    assert info.value.message == message
    assert info.value.domain == ErrorDomain.NETWORK


def nothing_left(root: Path, name: str = "default", bridge: str = "virbr0") -> None:
    assert bridge not in links()
    assert "virt_" not in nft_tables()
    assert processes("dnsmasq") == []
    run = root / "run" / "network"
    left = {p.name for p in run.iterdir()} if run.exists() else set()
    assert not left & {f"{name}.xml", f"{name}.state.json", f"{name}.conf", f"{name}.pid"}, left


@isolated
def test_nat_network_lifecycle(conn: virt.Connection, root: Path) -> None:
    seen: list[NetworkEvent] = []
    conn.subscribe(lambda c, e: seen.append(e), NetworkEvent)
    net = conn.define_network(net_xml(hosts=(("52:54:00:00:00:07", "g7", "192.168.100.7"),),
                                      dns_hosts=(("192.168.100.9", "static9"),)))
    assert not net.is_active() and net.is_persistent() and not net.autostart
    assert (root / "etc" / "network" / "default.xml").is_file()
    xml = net.xml()
    assert "<bridge name='virbr0' stp='on' delay='0'/>" in xml and "<mac address='52:54:00:" in xml
    net.start()
    assert net.is_active()
    assert net.info() == virt.NetworkInfo(active=True, persistent=True, autostart=False, bridge="virbr0")
    assert "virbr0" in links()
    assert "table inet virt_virbr0" in nft_tables()
    assert len(processes("dnsmasq")) == 1
    assert "192.168.100.1/24" in addresses("virbr0")
    # dnsmasq answers DNS on the bridge address
    assert dns_query("192.168.100.1", "static9") == ["192.168.100.9"]
    hostsfile = (root / "run" / "network" / "default.hostsfile").read_text()
    assert hostsfile == "52:54:00:00:00:07,192.168.100.7,g7\n"
    assert net.dhcp_leases() == []
    net.destroy()
    assert not net.is_active()
    nothing_left(root)
    net.undefine()
    with pytest.raises(VirtError) as info:
        conn.lookup_network("default")
    check(info, ErrorNumber.NO_NETWORK, "Network not found: no network with matching name 'default'")
    assert [e.event for e in seen] == [NetworkEventType.DEFINED, NetworkEventType.STARTED,
                                       NetworkEventType.STOPPED, NetworkEventType.UNDEFINED]


@isolated
def test_forward_modes_rules(conn: virt.Connection, root: Path) -> None:
    route = conn.create_network(net_xml("r", forward="route", bridge="br-r", address="10.1.0.1"))
    opened = conn.create_network(net_xml("o", forward="open", bridge="br-o", address="10.2.0.1"))
    iso = conn.create_network(net_xml("i", forward=None, bridge="br-i", address="10.3.0.1"))
    assert all(n.is_active() and not n.is_persistent() for n in (route, opened, iso))
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    assert 'oifname "br-r" ip daddr 10.1.0.0/24 accept' in ruleset  # routed both ways, no NAT
    assert "masquerade" not in ruleset
    assert "br-o" not in ruleset  # open: no rules at all
    assert 'iifname "br-i" oifname "br-i" accept' in ruleset and 'iifname "br-i" reject' in ruleset
    assert "saddr 10.3.0.0/24" not in ruleset  # isolated: nothing in or out
    conf = (root / "run" / "network" / "i.conf").read_text()
    assert "dhcp-option=3\n" in conf  # no default route for an isolated network's guests
    with open("/proc/sys/net/ipv4/ip_forward") as fh:
        assert fh.read().strip() == "1"
    for net in (route, opened, iso):
        net.destroy()
    assert conn.list_networks() == []
    assert links() == {"lo"} and nft_tables() == "" and processes("dnsmasq") == []


@isolated
def test_bridge_names_are_allocated(conn: virt.Connection) -> None:
    a = conn.define_network(net_xml("a", address="10.10.0.1"))
    b = conn.define_network(net_xml("b", address="10.11.0.1"))
    assert (a.bridge_name(), b.bridge_name()) == ("virbr0", "virbr1")
    add_link("virbr2")
    c = conn.define_network(net_xml("c", address="10.12.0.1"))
    assert c.bridge_name() == "virbr3"  # a link of that name exists already
    with pytest.raises(VirtError) as info:
        conn.define_network(net_xml("d", bridge="virbr1", address="10.13.0.1"))
    check(info, ErrorNumber.INTERNAL_ERROR, "internal error: bridge name 'virbr1' already in use.")


@isolated
def test_errors_of_state_and_identity(conn: virt.Connection) -> None:
    net_uuid = str(uuid.uuid4())
    net = conn.define_network(net_xml(uuid=net_uuid))
    with pytest.raises(VirtError) as info:
        conn.define_network(net_xml("other", uuid=net_uuid))
    check(info, ErrorNumber.OPERATION_FAILED,
          f"operation failed: network 'default' is already defined with uuid {net_uuid}")
    with pytest.raises(VirtError) as info:
        conn.define_network(net_xml())
    assert info.value.code == ErrorNumber.OPERATION_FAILED
    assert info.value.message.startswith("operation failed: network 'default' already exists with uuid ")
    with pytest.raises(VirtError) as info:
        net.destroy()
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: network 'default' is not active")
    net.start()
    with pytest.raises(VirtError) as info:
        net.start()
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: network is already active")
    with pytest.raises(VirtError) as info:
        conn.create_network(net_xml(uuid=net_uuid))
    check(info, ErrorNumber.OPERATION_INVALID,
          "Requested operation is not valid: network is already active as 'default'")
    # undefining a running network leaves it running, transient, until it is destroyed
    net.undefine()
    assert net.is_active() and not net.is_persistent()
    with pytest.raises(VirtError) as info:
        net.set_autostart(True)
    check(info, ErrorNumber.OPERATION_INVALID,
          "Requested operation is not valid: cannot set autostart for transient network")
    with pytest.raises(VirtError) as info:
        net.undefine()
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: can't undefine transient network")
    net.destroy()
    assert conn.list_networks() == []
    with pytest.raises(VirtError) as info:
        conn.lookup_network_by_uuid(net_uuid)
    check(info, ErrorNumber.NO_NETWORK, f"Network not found: no network with matching uuid '{net_uuid}'")


@isolated
def test_start_fails_halfway_and_leaves_nothing(conn: virt.Connection, root: Path) -> None:
    net = conn.define_network(net_xml(bridge="virbr0"))
    # 1. the bridge name is taken by another device
    add_link("virbr0")
    with pytest.raises(VirtError) as info:
        net.start()
    check(info, ErrorNumber.SYSTEM_ERROR, "error creating bridge interface virbr0: File exists")
    assert not net.is_active()
    del_link("virbr0")
    nothing_left(root)
    # 2. the subnet is in use on another interface
    add_link("other0", address="192.168.100.50/24")
    with pytest.raises(VirtError) as info:
        net.start()
    check(info, ErrorNumber.INTERNAL_ERROR, "internal error: Network is already in use by interface other0")
    del_link("other0")
    nothing_left(root)
    # 3. dnsmasq cannot bind the DNS port (someone holds it): bridge and rules are undone
    blocker = __import__("socket").socket(2, 2)  # AF_INET, SOCK_DGRAM; no SO_REUSEADDR
    blocker.bind(("0.0.0.0", 53))
    with pytest.raises(VirtError) as info:
        net.start()
    blocker.close()
    assert info.value.code == ErrorNumber.INTERNAL_ERROR
    assert "dnsmasq" in info.value.message and "Address already in use" in info.value.message
    nothing_left(root)
    # and then it starts
    net.start()
    assert net.is_active()
    net.destroy()
    nothing_left(root)


@isolated
def test_dnsmasq_dying_and_stale_state(conn: virt.Connection, root: Path) -> None:
    net = conn.define_network(net_xml())
    net.start()
    [pid] = processes("dnsmasq")
    os.kill(pid, 9)
    assert net.is_active()  # the bridge is there: still running (libvirt's view too)
    net.destroy()
    nothing_left(root)
    # a start whose process died half-way left a bridge and a table behind: the next start
    # removes them first (the state file says what was made)
    net.start()
    (root / "run" / "network" / "default.xml").unlink()  # as if the starting process died before the end
    [pid] = processes("dnsmasq")
    assert not net.is_active()
    net.start()
    assert net.is_active() and processes("dnsmasq") != [pid] and len(processes("dnsmasq")) == 1
    net.destroy()
    nothing_left(root)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    tests = str(Path(__file__).resolve().parent)
    prelude = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {tests!r})
        import virt, hosttest_driver
        from virt.testing import isolated_plugins
        with isolated_plugins():
            hosttest_driver.register()
    """)
    body = textwrap.indent(textwrap.dedent(code), "    ")
    env = dict(os.environ, VIRT_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run([sys.executable, "-c", prelude + body], capture_output=True, text=True, env=env,
                          timeout=60)


@isolated
def test_state_survives_the_process(conn: virt.Connection, uri: str, root: Path) -> None:
    out = _python(f"""
        with virt.open({uri!r}) as c:
            n = c.define_network({net_xml(dns_hosts=(("192.168.100.8", "h8"),))!r})
            n.start()
            n.set_autostart(True)
            print(n.uuid)
    """)
    assert out.returncode == 0, out.stderr
    net = conn.lookup_network("default")
    assert net.uuid == out.stdout.strip()
    assert net.is_active() and net.autostart
    assert dns_query("192.168.100.1", "h8") == ["192.168.100.8"]  # the dnsmasq the dead process started
    assert len(processes("dnsmasq")) == 1
    out = _python(f"""
        with virt.open({uri!r}) as c:
            n = c.lookup_network("default")
            print(n.is_active(), n.bridge_name())
            n.destroy()
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "virbr0"]
    assert not net.is_active()
    nothing_left(root)


@isolated
def test_live_update_reaches_dnsmasq(conn: virt.Connection, root: Path) -> None:
    net = conn.define_network(net_xml())
    net.start()
    assert dns_query("192.168.100.1", "late") == []
    net.update(3, 10, "<host ip='192.168.100.33'><hostname>late</hostname></host>", flags=1 | 2)
    assert dns_eventually("192.168.100.1", "late", ["192.168.100.33"]) == ["192.168.100.33"]
    net.update(3, 4, "<host mac='52:54:00:00:00:44' name='dhcp44' ip='192.168.100.44'/>", flags=1)
    assert "dhcp44" in (root / "run" / "network" / "default.hostsfile").read_text()
    assert "late" in net.xml(inactive=True) and "dhcp44" not in net.xml(inactive=True)
    assert "dhcp44" in net.xml()
    net.update(3, 5, "<range start='192.168.100.20' end='192.168.100.30'/>", flags=1)  # restarts dnsmasq
    assert len(processes("dnsmasq")) == 1 and dns_query("192.168.100.1", "late") == ["192.168.100.33"]
    net.destroy()
    assert "dhcp44" not in net.xml()  # the live change went with the live definition
    with pytest.raises(VirtError) as info:
        net.update(3, 10, "<host ip='192.168.100.34'><hostname>x</hostname></host>", flags=1)
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: network is not running")


def _cli(uri: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-c", uri, *args])
    return code, out.getvalue(), err.getvalue()


@isolated
def test_cli_commands(plugins: None, uri: str, tmp_path: Path) -> None:
    xml = tmp_path / "net.xml"
    xml.write_text(net_xml(bridge="virbr7"))
    assert _cli(uri, "net-define", str(xml))[1] == f"Network default defined from {xml}\n\n"
    assert _cli(uri, "net-start", "default")[1] == "Network default started\n\n"
    assert _cli(uri, "net-autostart", "default")[1] == "Network default marked as autostarted\n\n"
    code, out, _ = _cli(uri, "net-info", "default")
    assert code == 0
    assert [line.split(None, 1)[1] if " " in line else line for line in out.split("\n")[2:6]] == \
        ["yes", "yes", "yes", "virbr7"]
    code, out, _ = _cli(uri, "net-list", "--all")
    assert code == 0 and "default" in out and "active" in out
    code, out, _ = _cli(uri, "net-dumpxml", "default")
    assert code == 0 and "<bridge name='virbr7'" in out
    code, out, _ = _cli(uri, "net-dhcp-leases", "default")
    assert code == 0 and "Expiry Time" in out
    code, out, _ = _cli(uri, "net-update", "default", "add", "dns-host",
                        "<host ip='192.168.100.5'><hostname>h5</hostname></host>", "--live")
    assert code == 0, out
    assert dns_eventually("192.168.100.1", "h5", ["192.168.100.5"]) == ["192.168.100.5"]
    code, _, err = _cli(uri, "net-start", "default")
    assert code == 1 and "error: Failed to start network default" in err and "network is already active" in err
    assert _cli(uri, "net-destroy", "default")[1] == "Network default destroyed\n\n"
    assert _cli(uri, "net-undefine", "default")[1] == "Network default has been undefined\n\n"


@isolated
def test_autostart_at_the_first_open_after_boot(conn: virt.Connection, uri: str, root: Path) -> None:
    net = conn.define_network(net_xml())
    net.set_autostart(True)
    assert net.autostart and (root / "etc" / "network" / "autostart" / "default.xml").is_symlink()
    assert not net.is_active()  # this root was opened already in this boot: nothing autostarts now
    (root / "run" / "network" / "autostarted").unlink()  # as after a reboot
    out = _python(f"""
        with virt.open({uri!r}) as c:
            print(c.lookup_network("default").is_active())
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True" and net.is_active()
    net.destroy()
    net.set_autostart(False)
    assert not (root / "etc" / "network" / "autostart" / "default.xml").exists()


V6_XML = """<network><name>v6</name><forward mode='nat'/><domain name='example.test' localOnly='yes'/>
<dns><txt name='t1' value='hello'/>
<srv service='ldap' protocol='tcp' domain='example.test' target='h.example.test' port='389'/></dns>
<ip address='192.168.110.1' netmask='255.255.255.0'><dhcp>
<range start='192.168.110.2' end='192.168.110.9'><lease expiry='2' unit='hours'/></range></dhcp></ip>
<ip family='ipv6' address='2001:db8:ca2:2::1' prefix='64'><dhcp>
<range start='2001:db8:ca2:2::100' end='2001:db8:ca2:2::1ff'/></dhcp></ip>
<route address='10.99.0.0' prefix='16' gateway='192.168.110.5'/></network>"""


@isolated
def test_dual_stack_dns_records_and_routes(conn: virt.Connection, root: Path) -> None:
    from pyroute2 import IPRoute

    net = conn.create_network(V6_XML)
    conf = (root / "run" / "network" / "v6.conf").read_text().splitlines()
    for line in ("local=/example.test/", "domain=example.test", "txt-record=t1,hello",
                 "srv-host=_ldap._tcp.example.test,h.example.test,389,0,0",
                 "dhcp-range=192.168.110.2,192.168.110.9,255.255.255.0,2h",
                 "dhcp-range=2001:db8:ca2:2::100,2001:db8:ca2:2::1ff,64", "enable-ra"):
        assert line in conf
    assert addresses("virbr0") == ["192.168.110.1/24", "2001:db8:ca2:2::1/64"]
    with IPRoute() as ipr:
        routes = [(r.get("dst"), r["dst_len"], r.get("gateway")) for r in ipr.route("dump", family=2)
                  if r.get("table") == 254]
    assert ("10.99.0.0", 16, "192.168.110.5") in routes
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    assert 'iifname "virbr0" ip6 saddr 2001:db8:ca2:2::/64 accept' in ruleset  # IPv6 is routed, not NATed
    net.destroy()
    assert conn.list_networks() == []
    nothing_left(root, "v6")
