"""Network and host interface commands: ``net-*`` and ``iface-*``, as virsh prints them."""

from __future__ import annotations

import re
import time
from typing import Any

from virt._errors import VirtError
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.node import (
    XPATH_OPTS,
    dump_xml,
    exclusive,
    lookup_uuid_or_name,
    read_xml_file,
    sorted_by_name,
)

__all__ = ["lookup_network"]

NETWORK = "Networking"
INTERFACE = "Interface"

# VIR_CONNECT_LIST_NETWORKS_*
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_UPDATE_COMMANDS = {"modify": 1, "delete": 2, "add-last": 3, "add-first": 4, "add": 3}
_UPDATE_SECTIONS = ("none", "bridge", "domain", "ip", "ip-dhcp-host", "ip-dhcp-range", "forward",
                    "forward-interface", "forward-pf", "portgroup", "dns-host", "dns-txt", "dns-srv")

_NET_OPT = Opt("network", required=True, positional=True, help="network name or uuid")
_FILE_OPT = Opt("file", required=True, positional=True, help="file containing an XML network description")


def lookup_network(ctx: Context, name: str, by_uuid: bool = True, by_name: bool = True) -> Any:
    """virsh's ``virshCommandOptNetworkBy``: a 36-character argument is tried as a UUID first."""
    conn = ctx.conn
    return lookup_uuid_or_name("network", name, conn.lookup_network_by_uuid if by_uuid else None,
                               conn.lookup_network if by_name else None)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@command("net-list", Opt("inactive", "bool", "list inactive networks"),
         Opt("all", "bool", "list inactive & active networks"),
         Opt("persistent", "bool", "list persistent networks"), Opt("transient", "bool", "list transient networks"),
         Opt("autostart", "bool", "list networks with autostart enabled"),
         Opt("no-autostart", "bool", "list networks with autostart disabled"),
         Opt("uuid", "bool", "list uuid's only"), Opt("name", "bool", "list network names only"),
         Opt("table", "bool", "list table (default)"), json=True, group=NETWORK, help="list networks")
def cmd_net_list(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _ACTIVE
    if opts["inactive"]:
        flags = _INACTIVE
    if opts["all"]:
        flags = _ACTIVE | _INACTIVE
    for name, bit in (("persistent", _PERSISTENT), ("transient", _TRANSIENT), ("autostart", _AUTOSTART),
                      ("no-autostart", _NO_AUTOSTART)):
        if opts[name]:
            flags |= bit
    if opts["table"] + opts["name"] + opts["uuid"] > 1:
        raise CommandError("Only one argument from --table, --name and --uuid may be specified.")
    try:
        nets = sorted_by_name(ctx.conn.list_networks(flags=flags), lambda n: n.name)
    except VirtError as exc:
        raise CommandError("Failed to list networks", exc) from None
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    for net in nets:
        try:
            autostart: bool | None = net.autostart
        except VirtError:
            autostart = None
        active, persistent = net.is_active(), net.is_persistent()
        rows.append([net.name, "active" if active else "inactive",
                     "no autostart" if autostart is None else _yes(autostart), _yes(persistent)])
        records.append({"name": net.name, "uuid": net.uuid, "active": active, "autostart": autostart,
                        "persistent": persistent})
    if ctx.want_json:
        ctx.emit_json(records)
    elif opts["uuid"]:
        for net in nets:
            ctx.print(net.uuid)
    elif opts["name"]:
        for net in nets:
            ctx.print(net.name)
    else:
        ctx.table(["Name", "State", "Autostart", "Persistent"], rows, records)


@command("net-info", _NET_OPT, json=True, group=NETWORK, help="network information")
def cmd_net_info(ctx: Context, opts: dict[str, Any]) -> None:
    net = lookup_network(ctx, opts["network"])
    pairs: list[tuple[str, Any]] = [("Name", net.name), ("UUID", net.uuid)]
    record: dict[str, Any] = {"name": net.name, "uuid": net.uuid}
    try:
        active = net.is_active()
        pairs.append(("Active", _yes(active)))
        record["active"] = active
    except VirtError:
        pass
    try:
        persistent = net.is_persistent()
        pairs.append(("Persistent", _yes(persistent)))
        record["persistent"] = persistent
    except VirtError:
        pairs.append(("Persistent", "unknown"))
    try:
        autostart = net.autostart
        pairs.append(("Autostart", _yes(autostart)))
        record["autostart"] = autostart
    except VirtError:
        pairs.append(("Autostart", "no autostart"))
    try:
        bridge = net.bridge_name()
        pairs.append(("Bridge", bridge))
        record["bridge"] = bridge
    except VirtError:
        record["bridge"] = None
    ctx.fields(pairs, record=record)


@command("net-dumpxml", _NET_OPT, Opt("inactive", "bool", "network information of an inactive domain"),
         *XPATH_OPTS, group=NETWORK, help="network information in XML")
def cmd_net_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    net = lookup_network(ctx, opts["network"])
    dump_xml(ctx, net.xml(inactive=opts["inactive"]), opts["xpath"], opts["wrap"])


@command("net-uuid", Opt("network", required=True, positional=True, help="network name"), group=NETWORK,
         help="convert a network name to network UUID")
def cmd_net_uuid(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_network(ctx, opts["network"], by_uuid=False).uuid)


@command("net-name", Opt("network", required=True, positional=True, help="network uuid"), group=NETWORK,
         help="convert a network UUID to network name")
def cmd_net_name(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_network(ctx, opts["network"], by_name=False).name)


def _act(ctx: Context, opts: dict[str, Any], verb: str, done: str) -> None:
    """``net-<verb> NETWORK``: look it up, call its ``verb`` method, report as virsh does."""
    name = opts["network"]
    net = lookup_network(ctx, name)
    try:
        getattr(net, verb)()
    except VirtError as exc:
        raise CommandError(f"Failed to {verb} network {name}", exc) from None
    ctx.extra(f"Network {name} {done}\n")


@command("net-destroy", _NET_OPT, group=NETWORK, help="destroy (stop) a network")
def cmd_net_destroy(ctx: Context, opts: dict[str, Any]) -> None:
    _act(ctx, opts, "destroy", "destroyed")


@command("net-start", _NET_OPT, group=NETWORK, help="start a (previously defined) inactive network")
def cmd_net_start(ctx: Context, opts: dict[str, Any]) -> None:
    _act(ctx, opts, "start", "started")


@command("net-define", _FILE_OPT, Opt("validate", "bool", "validate the XML against the schema"), group=NETWORK,
         help="define an inactive persistent virtual network or modify an existing persistent one from an XML file")
def cmd_net_define(ctx: Context, opts: dict[str, Any]) -> None:
    path = opts["file"]
    xml = read_xml_file(path)
    try:
        net = ctx.conn.define_network(xml, 1 if opts["validate"] else 0)
    except VirtError as exc:
        raise CommandError(f"Failed to define network from {path}", exc) from None
    ctx.extra(f"Network {net.name} defined from {path}\n")


@command("net-create", _FILE_OPT, Opt("validate", "bool", "validate the XML against the schema"), group=NETWORK,
         help="create a network from an XML file")
def cmd_net_create(ctx: Context, opts: dict[str, Any]) -> None:
    path = opts["file"]
    xml = read_xml_file(path)
    try:
        net = ctx.conn.create_network(xml, 1 if opts["validate"] else 0)
    except VirtError as exc:
        raise CommandError(f"Failed to create network from {path}", exc) from None
    ctx.extra(f"Network {net.name} created from {path}\n")


@command("net-undefine", _NET_OPT, group=NETWORK, help="undefine a persistent network")
def cmd_net_undefine(ctx: Context, opts: dict[str, Any]) -> None:
    _act(ctx, opts, "undefine", "has been undefined")


@command("net-autostart", _NET_OPT, Opt("disable", "bool", "disable autostarting"), group=NETWORK,
         help="autostart a network")
def cmd_net_autostart(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["network"]
    net = lookup_network(ctx, name)
    enable = not opts["disable"]
    try:
        net.set_autostart(enable)
    except VirtError as exc:
        verb = "mark" if enable else "unmark"
        raise CommandError(f"failed to {verb} network {name} as autostarted", exc) from None
    ctx.extra(f"Network {name} {'marked' if enable else 'unmarked'} as autostarted\n")


@command("net-update", _NET_OPT,
         Opt("command", required=True, positional=True,
             help="type of update (add-first, add-last (add), delete, or modify)"),
         Opt("section", required=True, positional=True, help="which section of network configuration to update"),
         Opt("xml", required=True, positional=True,
             help="name of file containing xml (or, if it starts with '<', the complete xml element itself) to "
                  "add/modify, or to be matched for search"),
         Opt("parent-index", "int", "which parent object to search through"),
         Opt("config", "bool", "affect next network startup"), Opt("live", "bool", "affect running network"),
         Opt("current", "bool", "affect current state of network"), group=NETWORK,
         help="update parts of an existing network's configuration")
def cmd_net_update(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "current", "live")
    exclusive(opts, "current", "config")
    net = lookup_network(ctx, opts["network"])
    command_id = _UPDATE_COMMANDS.get(opts["command"])
    if command_id is None:
        raise CommandError(f"unrecognized command name '{opts['command']}'")
    section = _UPDATE_SECTIONS.index(opts["section"]) if opts["section"] in _UPDATE_SECTIONS else 0
    if section <= 0:
        raise CommandError(f"unrecognized section name '{opts['section']}'")
    xml = opts["xml"]
    if not xml.startswith("<"):
        xml = read_xml_file(xml)
    flags = (2 if opts["config"] else 0) | (1 if opts["live"] else 0)
    parent = -1 if opts["parent-index"] is None else opts["parent-index"]
    try:
        net.update(command_id, section, xml, parent_index=parent, flags=flags)
    except VirtError as exc:
        raise CommandError(f"Failed to update network {net.name}", exc) from None
    if opts["config"]:
        what = "persistent config and live state" if opts["live"] else "persistent config"
    elif opts["live"] or net.is_active():
        what = "live state"
    else:
        what = "persistent config"
    ctx.extra(f"Updated network {net.name} {what}")


@command("net-dhcp-leases", _NET_OPT, Opt("mac", help="MAC address"), json=True, group=NETWORK,
         help="print lease info for a given network")
def cmd_net_dhcp_leases(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["network"]
    net = lookup_network(ctx, name)
    try:
        leases = net.dhcp_leases(opts["mac"])
    except VirtError as exc:
        raise CommandError(f"Failed to get leases info for {name}", exc) from None
    leases = sorted(leases, key=lambda lease: lease.mac.lower())
    rows = []
    for lease in leases:
        expiry = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease.expirytime))
        rows.append([expiry, lease.mac, "ipv6" if lease.type == 1 else "ipv4", f"{lease.ipaddr}/{lease.prefix}",
                     lease.hostname or "-", lease.clientid or "-"])
    records = [{"expirytime": lease.expirytime, "mac": lease.mac, "type": "ipv6" if lease.type == 1 else "ipv4",
                "ipaddr": lease.ipaddr, "prefix": lease.prefix, "hostname": lease.hostname, "clientid": lease.clientid,
                "iaid": lease.iaid, "iface": lease.iface} for lease in leases]
    ctx.table(["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname", "Client ID or DUID"], rows,
              records)


# -- host interfaces --------------------------------------------------------------------------

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def lookup_interface(ctx: Context, name: str, by_name: bool = True, by_mac: bool = True) -> Any:
    """virsh's ``virshCommandOptInterfaceBy``: by name, or by MAC address when it looks like one."""
    conn = ctx.conn
    error: VirtError | None = None
    if by_name and not (by_mac and _MAC.match(name)):
        try:
            return conn.lookup_interface(name)
        except VirtError as exc:
            error = exc
    if by_mac and _MAC.match(name):
        matches = [i for i in conn.list_interfaces() if i.mac.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        from virt._errors import ErrorNumber

        error = (VirtError(ErrorNumber.MULTIPLE_INTERFACES) if matches
                 else VirtError(ErrorNumber.NO_INTERFACE, f"no interface with matching mac '{name}'"))
    raise CommandError(f"failed to get interface '{name}'", error)


@command("iface-list", Opt("inactive", "bool", "list inactive interfaces"),
         Opt("all", "bool", "list inactive & active interfaces"), json=True, group=INTERFACE,
         help="list physical host interfaces")
def cmd_iface_list(ctx: Context, opts: dict[str, Any]) -> None:
    active: bool | None = True
    if opts["inactive"]:
        active = False
    if opts["all"]:
        active = None
    try:
        ifaces = sorted_by_name(ctx.conn.list_interfaces(active), lambda i: i.name)
    except VirtError as exc:
        raise CommandError("Failed to list interfaces", exc) from None
    rows = [[i.name, "active" if i.active else "inactive", i.mac] for i in ifaces]
    records = [{"name": i.name, "active": i.active, "mac": i.mac} for i in ifaces]
    ctx.table(["Name", "State", "MAC Address"], rows, records)


@command("iface-dumpxml", Opt("interface", required=True, positional=True, help="interface name or MAC address"),
         Opt("inactive", "bool", "show inactive defined XML"), *XPATH_OPTS, group=INTERFACE,
         help="interface information in XML")
def cmd_iface_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    iface = lookup_interface(ctx, opts["interface"])
    dump_xml(ctx, iface.xml(inactive=opts["inactive"]), opts["xpath"], opts["wrap"])


@command("iface-mac", Opt("interface", required=True, positional=True, help="interface name"), group=INTERFACE,
         help="convert an interface name to interface MAC address")
def cmd_iface_mac(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_interface(ctx, opts["interface"], by_mac=False).mac)


@command("iface-name", Opt("interface", required=True, positional=True, help="interface mac"), group=INTERFACE,
         help="convert an interface MAC address to interface name")
def cmd_iface_name(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_interface(ctx, opts["interface"], by_name=False).name)
