"""The host's network interfaces, read-only, as libvirt's udev interface backend shows them
(``interface_backend_udev.c``).

* Listed: every entry of ``/sys/class/net`` except bridge ports (they show inside their bridge)
  and TUN/TAP devices (the guests' own); any of them can still be looked up by name.
* Active when the kernel's operational state is ``up`` (so ``lo``, whose state the kernel calls
  ``unknown``, is inactive, as in libvirt).
* Described from sysfs: ``ethernet``, ``bridge`` (its ports but guests' ``vnetN``; the forward
  delay as the kernel gives it, in hundredths of a second, as libvirt prints it), ``bond`` (its
  slaves, MII monitoring) or ``vlan`` (tag and device from ``/proc/net/vlan``).
* Unlike libvirt's udev backend, which leaves them out, the addresses the interface has are shown
  (``<protocol>``, as netcf shows them), read through netlink (pyroute2).
"""

from __future__ import annotations

import socket

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import InterfaceRef
from virt.xml._base import escape

from virt_host._node_devices import link_info
from virt_host._sysfs import SysRoot

__all__ = ["interface_refs", "interface_xml", "lookup_interface", "no_interface"]

_NET = "/sys/class/net"
_ACTIVE, _INACTIVE = 2, 1
_BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")


def no_interface(name: str) -> VirtError:
    return VirtError(ErrorNumber.NO_INTERFACE, f"couldn't find interface named '{name}'", domain=ErrorDomain.INTERFACE)


def _names(host: SysRoot) -> list[str]:
    """What libvirt lists: not bridge ports, not TUN/TAP devices."""
    return [name for name in host.listdir(_NET) if host.isdir(f"{_NET}/{name}")
            and not host.exists(f"{_NET}/{name}/brport/state") and not host.exists(f"{_NET}/{name}/tun_flags")]


def _ref(host: SysRoot, name: str) -> InterfaceRef:
    return InterfaceRef(name=name, mac=host.read(f"{_NET}/{name}/address") or "",
                        active=host.read(f"{_NET}/{name}/operstate") == "up")


def interface_refs(host: SysRoot, flags: int) -> list[InterfaceRef]:
    """``virConnectListAllInterfaces``: all, or only the active (2) or inactive (1) ones."""
    refs = [_ref(host, name) for name in _names(host)]
    wanted = flags & (_ACTIVE | _INACTIVE)
    if wanted and wanted != _ACTIVE | _INACTIVE:
        refs = [r for r in refs if r.active == bool(wanted & _ACTIVE)]
    return refs


def lookup_interface(host: SysRoot, name: str) -> InterfaceRef:
    if not name or "/" in name or name in (".", "..") or not host.isdir(f"{_NET}/{name}"):
        raise no_interface(name)
    return _ref(host, name)


def _devtype(host: SysRoot, name: str) -> str | None:
    for line in host.lines(f"{_NET}/{name}/uevent"):
        key, _, value = line.partition("=")
        if key == "DEVTYPE":
            return value
    return None


def _vlan(host: SysRoot, name: str) -> tuple[str, str] | None:
    """(tag, device) of a VLAN interface, from ``/proc/net/vlan/NAME`` (or its ``config``)."""
    vid = device = None
    for line in host.lines(f"/proc/net/vlan/{name}"):
        words = line.split()
        if "VID:" in words and words.index("VID:") + 1 < len(words):
            vid = words[words.index("VID:") + 1]
        elif words[:1] == ["Device:"] and len(words) > 1:
            device = words[1]
    if vid and vid.isdigit() and device:
        return vid, device
    for line in host.lines("/proc/net/vlan/config"):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[0] == name and parts[1].isdigit():
            return parts[1], parts[2]
    return None


def _addresses(host: SysRoot, name: str) -> list[tuple[str, str, int]]:
    """(family, address, prefix) of the interface, IPv4 first (the real host's, by netlink)."""
    if host.root:
        return []
    index = host.read_int(f"{_NET}/{name}/ifindex")
    if index is None:
        return []
    try:
        from pyroute2 import IPRoute  # type: ignore[import-untyped,unused-ignore]

        with IPRoute() as ipr:
            messages = ipr.get_addr(index=index)
    except Exception:  # noqa: BLE001 - netlink unavailable: no addresses shown
        return []
    out: list[tuple[str, str, int]] = []
    for msg in messages:
        family = msg.get("family")
        address = msg.get_attr("IFA_LOCAL") if family == socket.AF_INET else None
        address = address or msg.get_attr("IFA_ADDRESS")
        if not address:
            continue
        out.append(("ipv4" if family == socket.AF_INET else "ipv6", str(address), int(msg.get("prefixlen", 0))))
    out.sort(key=lambda item: item[0] != "ipv4")
    return out


def _link(host: SysRoot, name: str, indent: str) -> list[str]:
    link = link_info(host, name)
    attrs = ""
    if link.speed:
        attrs += f" speed='{link.speed}'"
    if link.state != "unknown":
        attrs += f" state='{link.state}'"
    return [f"{indent}<link{attrs}/>"] if attrs else []


def _mac(host: SysRoot, name: str, indent: str) -> list[str]:
    mac = host.read(f"{_NET}/{name}/address")
    return [f"{indent}<mac address='{escape(mac)}'/>"] if mac else []


def _kind(host: SysRoot, name: str) -> str:
    devtype = _devtype(host, name)
    if devtype == "bridge" or host.isdir(f"{_NET}/{name}/bridge"):
        return "bridge"
    if devtype == "bond" or host.exists(f"{_NET}/{name}/bonding/mode"):
        return "bond" if _slaves(host, name) else "ethernet"  # the schema wants a bond's slaves
    if (devtype == "vlan" or "." in name) and _vlan(host, name) is not None:
        return "vlan"
    return "ethernet"


def _slaves(host: SysRoot, name: str) -> list[str]:
    """A bond's slaves: its ``slave_IFNAME`` entries."""
    return [entry[6:] for entry in host.listdir(f"{_NET}/{name}") if entry.startswith("slave_") and entry[6:]]


def _bridge_ports(host: SysRoot, name: str) -> list[str]:
    """A bridge's ports but the guests' (``vnetN``)."""
    return [port for port in host.listdir(f"{_NET}/{name}/brif")
            if not (port.startswith("vnet") and port[4:5].isdigit())]


def _format(host: SysRoot, name: str, level: int, top: bool) -> list[str]:
    kind = _kind(host, name)
    pad, inner = "  " * level, "  " * (level + 1)
    out = [f"{pad}<interface type='{kind}' name='{escape(name)}'>"]
    if top:
        mtu = host.read_int(f"{_NET}/{name}/mtu")
        if mtu:
            out.append(f"{inner}<mtu size='{mtu}'/>")
        found = _addresses(host, name)
        for family in ("ipv4", "ipv6"):
            addrs = [(a, p) for f, a, p in found if f == family]
            if addrs:
                out.append(f"{inner}<protocol family='{family}'>")
                out += [f"{inner}  <ip address='{a}' prefix='{p}'/>" for a, p in addrs]
                out.append(f"{inner}</protocol>")
    if kind != "bridge":
        out += _link(host, name, inner)
    if kind == "ethernet":
        out += _mac(host, name, inner)
    elif kind == "bridge":
        stp = host.read_int(f"{_NET}/{name}/bridge/stp_state")
        delay = host.read(f"{_NET}/{name}/bridge/forward_delay")
        attrs = ""
        if stp is not None and stp >= 0:
            attrs += f" stp='{'on' if stp else 'off'}'"
        if delay and delay.isdigit():
            attrs += f" delay='{delay}'"  # the kernel's figure (centiseconds), as libvirt shows it
        out.append(f"{inner}<bridge{attrs}>")
        for port in _bridge_ports(host, name):
            if host.isdir(f"{_NET}/{port}"):
                out += _format(host, port, level + 2, False)
        out.append(f"{inner}</bridge>")
    elif kind == "bond":
        mode = (host.read(f"{_NET}/{name}/bonding/mode") or "").split(" ")[0]
        attrs = f" mode='{mode}'" if mode in _BOND_MODES else ""
        out.append(f"{inner}<bond{attrs}>")
        miimon = host.read_int(f"{_NET}/{name}/bonding/miimon")
        if miimon:
            extra = ""
            for attr, file in (("downdelay", "downdelay"), ("updelay", "updelay")):
                value = host.read_int(f"{_NET}/{name}/bonding/{file}")
                if value:
                    extra += f" {attr}='{value}'"
            carrier = host.read_int(f"{_NET}/{name}/bonding/use_carrier")
            if carrier is not None:
                extra += f" carrier='{'netif' if carrier else 'ioctl'}'"
            out.append(f"{inner}  <miimon freq='{miimon}'{extra}/>")
        for slave in _slaves(host, name):
            out += [f"{inner}  <interface type='ethernet' name='{escape(slave)}'>"]
            out += _link(host, slave, inner + "    ") + _mac(host, slave, inner + "    ")
            out.append(f"{inner}  </interface>")
        out.append(f"{inner}</bond>")
    elif kind == "vlan":
        vlan = _vlan(host, name)
        assert vlan is not None
        out += [f"{inner}<vlan tag='{vlan[0]}'>", f"{inner}  <interface name='{escape(vlan[1])}'/>",
                f"{inner}</vlan>"]
    out.append(f"{pad}</interface>")
    return out


def interface_xml(host: SysRoot, name: str) -> str:
    """``virInterfaceGetXMLDesc`` of a host interface."""
    lookup_interface(host, name)
    return "\n".join(_format(host, name, 0, True)) + "\n"
