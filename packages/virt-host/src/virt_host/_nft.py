"""nftables for a network: one table of our own per running network (``inet virt_<bridge>``),
made in one transaction at start and deleted at stop, so nothing of it outlives the network
and nothing of anybody else's ruleset is touched.

The rules follow libvirt's for each forward mode:

* ``nat``: traffic from the network's subnets out (through ``<forward dev>`` if given), and
  back in only for established connections; masquerade of what leaves the subnet (ports
  1024-65535 for TCP/UDP), except multicast and broadcast; ``<nat><address>`` / ``<port>``
  choose SNAT addresses and ports.  IPv6 subnets are routed unless ``<nat ipv6='yes'>``;
* ``route``: traffic from and to the subnets, both ways;
* isolated (no ``<forward>``): guests talk to each other and to the host only;
* ``open``: no rules at all (no table).

Everything else to or from the bridge is rejected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shutil
import subprocess

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.network import NetworkDocument

__all__ = ["apply", "remove", "ruleset", "table_name"]

_D = ErrorDomain.NETWORK
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def table_name(bridge: str) -> str:
    """``virt_<bridge>`` with what nft identifiers cannot hold replaced (plus a hash then)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", bridge)
    if clean != bridge:
        clean += "_" + hashlib.sha1(bridge.encode()).hexdigest()[:8]
    return f"virt_{clean}"


def _quoted(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"interface name '{name}' cannot be used in firewall rules",
                        domain=_D)
    return f'"{name}"'


def ruleset(doc: NetworkDocument, bridge: str, table: str) -> str | None:
    """The table of a network, as ``nft -f`` input; None when it needs none (``open``)."""
    mode = doc.forward_mode
    if mode == "open":
        return None
    br = _quoted(bridge)
    dev = doc.forward_dev
    out_dev = f"oifname {_quoted(dev)} " if dev else ""
    in_dev = f"iifname {_quoted(dev)} " if dev else ""
    nat_el = doc.root.find("forward/nat")
    nat_v6 = nat_el is not None and nat_el.get("ipv6") == "yes"
    forward: list[str] = []
    postrouting: list[str] = []
    for ip in doc.ips():
        network = ipaddress.ip_network(f"{ip.address}/{ip.prefix}", strict=False)
        fam = "ip" if network.version == 4 else "ip6"
        subnet = str(network)
        if mode == "nat" and (network.version == 4 or nat_v6):
            forward.append(f"iifname {br} {out_dev}{fam} saddr {subnet} accept")
            forward.append(f"{in_dev}oifname {br} {fam} daddr {subnet} ct state related,established accept")
            postrouting += _masquerade(fam, subnet, network.version, out_dev, nat_el)
        elif mode in ("nat", "route"):
            forward.append(f"iifname {br} {out_dev}{fam} saddr {subnet} accept")
            forward.append(f"{in_dev}oifname {br} {fam} daddr {subnet} accept")
    forward += [f"iifname {br} oifname {br} accept", f"iifname {br} reject", f"oifname {br} reject"]
    lines = [f"table inet {table} {{", "  chain forward {",
             "    type filter hook forward priority filter; policy accept;"]
    lines += [f"    {rule}" for rule in forward]
    lines.append("  }")
    if postrouting:
        lines += ["  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;"]
        lines += [f"    {rule}" for rule in postrouting]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _masquerade(fam: str, subnet: str, version: int, out_dev: str, nat_el: object) -> list[str]:
    from virt.xml._base import Element

    rules: list[str] = []
    if version == 4:
        rules += [f"{fam} saddr {subnet} {fam} daddr 224.0.0.0/24 return",
                  f"{fam} saddr {subnet} {fam} daddr 255.255.255.255 return"]
    else:
        rules.append(f"{fam} saddr {subnet} {fam} daddr ff02::/16 return")
    target = "masquerade"
    port_range = "1024-65535"
    if isinstance(nat_el, Element):
        address = nat_el.find("address")
        port = nat_el.find("port")
        if address is not None and version == 4:
            start, end = address.get("start"), address.get("end")
            target = f"snat {fam} to {start}" + (f"-{end}" if end and end != start else "")
        if port is not None:
            port_range = f"{port.get('start')}-{port.get('end') or port.get('start')}"
    match = f"{fam} saddr {subnet} {fam} daddr != {subnet} {out_dev}"
    if target == "masquerade":
        rules.append(f"meta l4proto {{ tcp, udp }} {match}masquerade to :{port_range}")
        rules.append(f"{match}masquerade")
    else:
        rules.append(f"meta l4proto {{ tcp, udp }} {match}{target}:{port_range}")
        rules.append(f"{match}{target}")
    return rules


def _nft() -> str:
    found = shutil.which("nft") or ("/usr/sbin/nft" if shutil.which("/usr/sbin/nft") else None)
    if found is None:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, "Cannot find 'nft' binary in PATH (Debian package nftables)",
                        domain=_D)
    return found


def apply(text: str, replace: str | None = None) -> None:
    """Load ``text`` (one table) in one transaction; ``replace``: first delete the table of
    that name, if any (in the same transaction: declaring it empty makes the delete safe)."""
    argv = [_nft(), "-f", "-"]
    if replace is not None:
        text = f"table inet {replace}\ndelete table inet {replace}\n" + text
    proc = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, "Failed to apply firewall rules "
                        f"{' '.join(argv)}: {proc.stderr.strip()}", domain=_D)


def remove(table: str) -> None:
    """Delete our table (nothing when it is not there)."""
    argv = [_nft(), "delete", "table", "inet", table]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "No such file or directory" not in proc.stderr:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Failed to remove firewall table {table}: "
                        f"{proc.stderr.strip()}", domain=_D)
