"""Virtual network XML (``<network>``), parsed and formatted as libvirt's ``network_conf.c`` does.

The document keeps the whole lxml tree (see :class:`~virt.xml._base.XMLDocument`).
``post_parse`` checks the definition the way ``virNetworkDefParseXML`` does and rewrites the tree
into libvirt's canonical form (element and attribute order, defaults, normalised addresses), so
``to_string`` is a plain walk of the tree and ``format(parse(x))`` is a fixed point.  Elements
libvirt does not know are kept, after the known ones.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from typing import Any, ClassVar

import attrs
from lxml import etree

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element, XMLDocument, escape, format_element, sub
from virt.xml._util import (
    arrange,
    attr,
    child_text,
    dedupe,
    drop,
    fail,
    hoist_namespaces,
    keep_open,
    new_uuid,
    only_first,
    open_tag,
    parse_mac,
    parse_pci_address,
    parse_uint,
    parse_ull,
    parse_uuid,
    pretty_lines,
    refuse_dot_name,
    set_attrs,
    set_text,
    strip_blanks,
    text_of,
    tristate,
)

__all__ = ["FORWARD_MODES", "DhcpHost", "DhcpLease", "DhcpRange", "NetworkDocument", "NetworkIP"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# --------------------------------------------------------------------------------------------
# addresses
# --------------------------------------------------------------------------------------------


def parse_ip(text: str | None) -> IPAddress | None:
    """``virSocketAddrParse`` for a numeric address (IPv4 or IPv6)."""
    if not text:
        return None
    return _parse_ip_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_ip_cached(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def format_ip(addr: IPAddress) -> str:
    """``virSocketAddrFormat`` (``getnameinfo(NI_NUMERICHOST)`` as glibc prints it)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            return format_ip(ipaddress.IPv6Address(int(addr))) + "%" + addr.scope_id
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return "::ffff:" + str(mapped)
        packed = addr.packed
        if packed[:12] == bytes(12) and packed[12:14] != b"\0\0":
            return "::" + str(ipaddress.IPv4Address(packed[12:]))
    return str(addr)


def netmask_bits(mask: IPAddress) -> int | None:
    """The prefix length of a contiguous netmask, or None."""
    value = int(mask)
    width = mask.max_prefixlen
    inverted = ~value & ((1 << width) - 1)
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


def mac_is_multicast(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 1)


def sanitize_metadata(meta: Element) -> None:
    """``virXMLNodeSanitizeNamespaces``: keep, per namespace, the first child element that has
    one; drop text and children without a namespace."""
    meta.text = None
    seen: set[str] = set()
    for child in list(meta):
        ns = etree.QName(child).namespace if isinstance(child.tag, str) else None
        if not ns or ns in seen:
            meta.remove(child)
            continue
        seen.add(ns)
        child.tail = None


def format_metadata(meta: Element, indent: int, out: list[str]) -> None:
    """``virXMLFormatMetadata``: libxml2's own pretty printer (double quotes), indented."""
    out.extend(pretty_lines(meta, " " * indent))


# --------------------------------------------------------------------------------------------
# network model
# --------------------------------------------------------------------------------------------

_D = ErrorDomain.NETWORK

FORWARD_MODES = ("nat", "route", "open", "bridge", "private", "vepa", "passthrough", "hostdev")
_L3_MODES = frozenset({None, "nat", "route", "open"})
_LEASE_UNITS = ("seconds", "minutes", "hours")
_PROTOCOL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/")
_SERVICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/*")
_DNS_RECORD_LENGTH_SRV = 512 - 30

_NETWORK_ORDER = (
    "name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu", "mac",
    "domain", "dns", "vlan", "bandwidth", "port", "ip", "route", "virtualport", "portgroup",
)
_SINGLETONS = frozenset({
    "name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu", "mac",
    "domain", "dns", "vlan", "bandwidth", "port", "virtualport",
})


@attrs.frozen
class DhcpLease:
    """A DHCP lease time: ``expiry`` 0 means infinite."""

    expiry: int
    unit: str | None = None


@attrs.frozen
class DhcpRange:
    start: str
    end: str
    lease: DhcpLease | None = None


@attrs.frozen
class DhcpHost:
    ip: str | None
    mac: str | None = None
    name: str | None = None
    id: str | None = None
    lease: DhcpLease | None = None


@attrs.frozen
class NetworkIP:
    """One ``<ip>`` of a network.  ``prefix`` is the effective prefix length (from ``prefix``,
    ``netmask`` or the address class, as ``virNetworkIPDefPrefix``); ``netmask`` the dotted mask
    of an IPv4 network (given or derived), None for IPv6."""

    address: str
    family: str
    prefix: int
    netmask: str | None = None
    dhcp_ranges: tuple[DhcpRange, ...] = ()
    dhcp_hosts: tuple[DhcpHost, ...] = ()
    tftp_root: str | None = None
    bootp_file: str | None = None
    bootp_server: str | None = None
    local_ptr: str | None = None


def ip_prefix(address: IPAddress, netmask: IPAddress | None, prefix: int | None) -> int:
    """``virSocketAddrGetIPPrefix``: -1 when there is none."""
    if prefix:
        return prefix
    if netmask is not None:
        bits = netmask_bits(netmask)
        return -1 if bits is None else bits
    if isinstance(address, ipaddress.IPv4Address):
        octet = int(address) >> 24
        if octet & 0x80 == 0:
            return 8
        if octet & 0xC0 == 0x80:
            return 16
        if octet & 0xE0 == 0xC0:
            return 24
        return -1
    if int(address) == 0:
        return 0
    return 64


class NetworkDocument(XMLDocument):
    """A ``<network>`` definition.

    Options of :meth:`from_string`: ``validate=True`` checks the input against ``network.rng``
    first.  :meth:`to_string` takes ``inactive=True`` (``VIR_NETWORK_XML_INACTIVE``): runtime
    state (``connections``, interfaces expanded from a ``<pf>``) is left out.
    """

    ROOT: ClassVar[str] = "network"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "network"

    __slots__ = ()

    # ---------------------------------------------------------------- parsing
    def post_parse(self, **options: Any) -> None:
        root = self.root
        dedupe(root, _SINGLETONS)
        meta = hoist_namespaces(root, root.find("metadata"))
        strip_blanks(root, (meta,) if meta is not None else ())

        name = child_text(root, "name")
        if name is None:
            raise VirtError(ErrorNumber.NO_NAME, None, domain=_D)
        if "/" in name:
            raise fail(_D, "invalid char in name: /", ErrorNumber.XML_DETAIL)
        refuse_dot_name(name, "network", _D)
        set_text(root, "name", name)

        raw_uuid = child_text(root, "uuid")
        if raw_uuid is None:
            set_text(root, "uuid", new_uuid())
        else:
            canonical = parse_uuid(raw_uuid)
            if canonical is None:
                raise fail(_D, "malformed uuid element", ErrorNumber.INTERNAL_ERROR)
            set_text(root, "uuid", canonical)

        title = child_text(root, "title")
        if title is not None and "\n" in title:
            raise fail(_D, "Network title can't contain newlines")
        set_text(root, "title", title)
        set_text(root, "description", child_text(root, "description"))

        ipv6 = root.get("ipv6")
        if ipv6 is not None and ipv6 not in ("yes", "no"):
            raise fail(_D, f"Invalid ipv6 setting '{ipv6}' in network '{name}'")
        set_attrs(root, [
            ("connections", None),
            ("ipv6", "yes" if ipv6 == "yes" else None),
            ("trustGuestRxFilters", tristate(root, "trustGuestRxFilters", _D)),
        ])

        self._parse_domain(root)
        self._parse_bandwidth(root.find("bandwidth"))
        self._parse_vlan(root.find("vlan"))
        port = root.find("port")
        if port is not None:
            isolated = tristate(port, "isolated", _D)
            if isolated is None:
                root.remove(port)
            else:
                set_attrs(port, [("isolated", isolated)])

        bridge_el = root.find("bridge")
        bridge = attr(bridge_el, "name")
        zone = attr(bridge_el, "zone")
        stp = attr(bridge_el, "stp")
        delay_text = attr(bridge_el, "delay")
        delay = 0
        if delay_text is not None:
            parsed = parse_ull(delay_text)
            if parsed is None:
                raise fail(_D, f"Invalid delay value in network '{name}'")
            delay = parsed
        mac_table = attr(bridge_el, "macTableManager")
        if mac_table is not None and mac_table not in ("kernel", "libvirt"):
            raise fail(_D, f"Invalid macTableManager setting '{mac_table}' in network '{name}'")

        mac_el = root.find("mac")
        raw_mac = attr(mac_el, "address")
        if raw_mac is not None:
            mac = parse_mac(raw_mac)
            if mac is None:
                raise fail(_D, f"Invalid bridge mac address '{raw_mac}' in network '{name}'")
            if mac_is_multicast(mac):
                raise fail(_D, f"Invalid multicast bridge mac address '{raw_mac}' in network '{name}'")
            assert mac_el is not None
            set_attrs(mac_el, [("address", mac)])
        elif mac_el is not None:
            root.remove(mac_el)

        mtu_el = root.find("mtu")
        mtu = 0
        if attr(mtu_el, "size") is not None:
            parsed = parse_uint(attr(mtu_el, "size"))
            if parsed is None:
                raise fail(_D, f"Invalid mtu size '{attr(mtu_el, 'size')}' in network '{name}'")
            mtu = parsed
        if mtu_el is not None:
            if mtu:
                set_attrs(mtu_el, [("size", str(mtu))])
            else:
                root.remove(mtu_el)

        dns = root.find("dns")
        if dns is not None:
            self._parse_dns(name, dns)

        vport = root.find("virtualport")
        if vport is not None:
            self._parse_virtualport(vport)
        for group in root.findall("portgroup"):
            self._parse_portgroup(group)

        ips = root.findall("ip")
        parsed_ips = [self._parse_ip(name, ip) for ip in ips]
        for route in root.findall("route"):
            self._parse_route(name, route, parsed_ips)

        forward = root.find("forward")
        mode: str | None = None
        nifs = npfs = 0
        if forward is not None:
            mode, nifs, npfs = self._parse_forward(name, forward)

        if mode in ("nat", "route", "open"):
            if not ips:
                raise fail(_D, f"{mode} forwarding requested, but no IP address provided for network '{name}'")
            if nifs > 1:
                raise fail(_D, f"multiple forwarding interfaces specified for network '{name}', only one is supported")
            if mode == "open" and nifs:
                raise fail(_D, f"forward dev not allowed for network '{name}' with forward mode='{mode}'")
        elif mode is not None:
            if mode != "bridge":
                if bridge:
                    raise fail(_D, f"bridge name not allowed in {mode} mode (network '{name}')")
                if zone:
                    raise fail(_D, f"bridge zone not allowed in {mode} mode (network '{name}')")
                if mac_table:
                    raise fail(_D, f"bridge macTableManager setting not allowed in {mode} mode (network '{name}')")
            if delay or stp or zone:
                raise fail(_D, "bridge delay/stp/zone options only allowed in route, nat, and isolated "
                               f"mode, not in {mode} (network '{name}')")
            if bridge and (nifs or npfs):
                raise fail(_D, f"A network with forward mode='{mode}' can specify a bridge name or a "
                               f"forward dev, but not both (network '{name}')")
        if mtu and mode not in _L3_MODES:
            raise fail(_D, "mtu size only allowed in open, route, nat, and isolated mode, "
                           f"not in {mode} (network '{name}')")

        has_bridge = mode in _L3_MODES
        if has_bridge or bridge or mac_table:
            if bridge_el is None:
                bridge_el = sub(root, "bridge")
            set_attrs(bridge_el, [
                ("name", bridge), ("zone", zone),
                ("stp", ("off" if stp == "off" else "on") if has_bridge else None),
                ("delay", str(delay) if has_bridge else None),
                ("macTableManager", mac_table),
            ])
            for kid in list(bridge_el):
                bridge_el.remove(kid)
            bridge_el.text = None
        elif bridge_el is not None:
            root.remove(bridge_el)

        if meta is not None:
            sanitize_metadata(meta)
        arrange(root, _NETWORK_ORDER)

    @staticmethod
    def _parse_domain(root: Element) -> None:
        dom = root.find("domain")
        if dom is None:
            return
        local = tristate(dom, "localOnly", _D)
        name = dom.get("name")
        if name is None:
            root.remove(dom)
            return
        set_attrs(dom, [("name", name), ("localOnly", local)])

    @staticmethod
    def _parse_bandwidth(bw: Element | None) -> None:
        if bw is None:
            return
        for tag in ("inbound", "outbound"):
            rate = only_first(bw, tag)
            if rate is not None:
                set_attrs(rate, [(k, rate.get(k)) for k in ("average", "peak", "floor", "burst")])
        arrange(bw, ("inbound", "outbound"))

    @staticmethod
    def _parse_vlan(vlan: Element | None) -> None:
        if vlan is None:
            return
        trunk = vlan.get("trunk")
        tags = vlan.findall("tag")
        if trunk is not None and trunk not in ("yes", "no"):
            raise fail(_D, f"vlan trunk='{trunk}' invalid, must be 'yes' or 'no'")
        if trunk == "no" and len(tags) > 1:
            raise fail(_D, "vlan trunk='no' is not allowed with multiple tags")
        for tag in tags:
            if parse_uint(tag.get("id"), limit=4095) is None:
                raise fail(_D, "missing or invalid vlan tag id attribute")
            set_attrs(tag, [("id", str(parse_uint(tag.get("id")))), ("nativeMode", tag.get("nativeMode"))])
        set_attrs(vlan, [("trunk", "yes" if trunk == "yes" or (trunk is None and len(tags) > 1) else None)])

    @staticmethod
    def _parse_virtualport(vport: Element) -> None:
        set_attrs(vport, [("type", vport.get("type"))])
        params = only_first(vport, "parameters")
        if params is not None:
            set_attrs(params, [(k, params.get(k)) for k in
                               ("managerid", "typeid", "typeidversion", "instanceid", "interfaceid", "profileid")])

    def _parse_portgroup(self, group: Element) -> None:
        name = attr(group, "name")
        if name is None:
            raise fail(_D, "Missing required name attribute in portgroup")
        default = group.get("default")
        set_attrs(group, [
            ("name", name),
            ("default", "yes" if default is not None and default.lower() == "yes" else None),
            ("trustGuestRxFilters", tristate(group, "trustGuestRxFilters", _D)),
        ])
        for tag in ("vlan", "virtualport", "bandwidth"):
            only_first(group, tag)
        self._parse_vlan(group.find("vlan"))
        vport = group.find("virtualport")
        if vport is not None:
            self._parse_virtualport(vport)
        self._parse_bandwidth(group.find("bandwidth"))
        arrange(group, ("vlan", "virtualport", "bandwidth"))
        if len(group) == 0:
            keep_open(group, 1)

    @staticmethod
    def _parse_route(name: str, route: Element, ips: list[tuple[IPAddress, int]]) -> None:
        address = parse_ip(route.get("address"))
        gateway = parse_ip(route.get("gateway"))
        if address is None or gateway is None:
            raise fail(_D, f"Missing or invalid address or gateway in route definition of network '{name}'")
        netmask = parse_ip(route.get("netmask")) if route.get("netmask") else None
        set_attrs(route, [
            ("family", route.get("family")),
            ("address", format_ip(address)),
            ("netmask", format_ip(netmask) if netmask is not None else route.get("netmask")),
            ("prefix", route.get("prefix")),
            ("gateway", format_ip(gateway)),
            ("metric", route.get("metric")),
        ])
        for ip_addr, prefix in ips:
            if ip_addr.version != gateway.version or prefix < 0:
                continue
            net = ipaddress.ip_network(f"{ip_addr}/{prefix}", strict=False)
            if gateway in net:
                return
        raise fail(_D, f"unreachable static route gateway '{format_ip(gateway)}' specified for network '{name}'",
                   ErrorNumber.CONFIG_UNSUPPORTED)

    # ---- dns
    @staticmethod
    def _parse_dns(name: str, dns: Element) -> None:
        enable = tristate(dns, "enable", _D)
        plain = tristate(dns, "forwardPlainNames", _D)
        set_attrs(dns, [("enable", enable), ("forwardPlainNames", plain)])
        fwds = dns.findall("forwarder")
        hosts = dns.findall("host")
        srvs = dns.findall("srv")
        txts = dns.findall("txt")
        for fwd in fwds:
            raw = fwd.get("addr")
            addr = parse_ip(raw) if raw is not None else None
            if raw is not None and addr is None:
                raise fail(_D, f"Invalid forwarder IP address '{raw}' in network '{name}'")
            domain = fwd.get("domain")
            if raw is None and domain is None:
                raise fail(_D, "Invalid forwarder element, must contain at least one of addr or domain")
            set_attrs(fwd, [("domain", domain), ("addr", format_ip(addr) if addr is not None else None)])
        for host in hosts:
            names = host.findall("hostname")
            if not names:
                raise fail(_D, f"Missing hostname in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
            for hn in names:
                hostname = text_of(hn)
                if hostname is None:
                    raise fail(_D, f"Missing hostname in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
                hn.attrib.clear()
                for kid in list(hn):
                    hn.remove(kid)
                hn.text = hostname
            raw = host.get("ip")
            if raw is None:
                raise fail(_D, f"Missing IP address in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
            addr = parse_ip(raw)
            if addr is None:
                raise fail(_D, f"Invalid IP address in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
            set_attrs(host, [("ip", format_ip(addr))])
            arrange(host, ("hostname",))
        for srv in srvs:
            service = srv.get("service")
            if service is None:
                raise fail(_D, f"missing required service attribute in DNS SRV record of network '{name}'",
                           ErrorNumber.XML_DETAIL)
            if len(service) > _DNS_RECORD_LENGTH_SRV:
                raise fail(_D, f"service attribute '{service}' in network '{name}' is too long, limit is "
                               f"{_DNS_RECORD_LENGTH_SRV} bytes", ErrorNumber.XML_DETAIL)
            if not set(service) <= _SERVICE_CHARS:
                raise fail(_D, f"invalid character in service attribute '{service}' in DNS SRV record of "
                               f"network '{name}'", ErrorNumber.XML_DETAIL)
            protocol = srv.get("protocol")
            if protocol is None:
                raise fail(_D, f"missing required protocol attribute in DNS SRV record '{service}' of "
                               f"network '{name}'", ErrorNumber.XML_DETAIL)
            if not set(protocol) <= _PROTOCOL_CHARS:
                raise fail(_D, f"invalid character in protocol attribute '{protocol}' in DNS SRV record of "
                               f"network '{name}'", ErrorNumber.XML_DETAIL)
            target = srv.get("target")
            values: dict[str, int] = {}
            for key, low, high in (("port", 1, 65535), ("priority", 0, 65535), ("weight", 0, 65535)):
                raw = attr(srv, key)
                if raw is None:
                    continue
                value = parse_uint(raw)
                if value is not None and target is None:
                    raise fail(_D, f"DNS SRV {key} attribute not permitted without target for service "
                                   f"'{service}' in network '{name}'", ErrorNumber.XML_DETAIL)
                if value is None or not low <= value <= high:
                    raise fail(_D, f"invalid DNS SRV {key} attribute for service '{service}' in network "
                                   f"'{name}'", ErrorNumber.XML_DETAIL)
                values[key] = value
            set_attrs(srv, [
                ("service", service), ("protocol", protocol), ("domain", srv.get("domain")),
                ("target", target),
                *((k, str(values[k]) if values.get(k) else None) for k in ("port", "priority", "weight")),
            ])
        for txt in txts:
            txt_name = txt.get("name")
            if txt_name is None:
                raise fail(_D, f"missing required name attribute in DNS TXT record of network {name}",
                           ErrorNumber.XML_DETAIL)
            if " " in txt_name or "," in txt_name:
                raise fail(_D, f"prohibited character in DNS TXT record name '{txt_name}' of network {name}",
                           ErrorNumber.XML_DETAIL)
            txt_value = txt.get("value")
            if txt_value is None:
                raise fail(_D, f"missing required value attribute in DNS TXT record named '{txt_name}' of "
                               f"network {name}", ErrorNumber.XML_DETAIL)
            set_attrs(txt, [("name", txt_name), ("value", txt_value)])
        if enable == "no" and (fwds or hosts or srvs or txts):
            raise fail(_D, f"Extra data in disabled network '{name}'")
        arrange(dns, ("forwarder", "txt", "srv", "host"))
        if not (enable or plain or len(dns)):
            dns.getparent().remove(dns)  # type: ignore[union-attr]

    # ---- ip
    def _parse_ip(self, name: str, ip: Element) -> tuple[IPAddress, int]:
        family = ip.get("family") or None
        raw_address = ip.get("address") or None
        if raw_address is None:
            raise fail(_D, f"Missing required address attribute in network '{name}'")
        address = parse_ip(raw_address)
        if address is None:
            raise fail(_D, f"Invalid address '{raw_address}' in network '{name}'")
        raw_mask = ip.get("netmask") or None
        netmask = parse_ip(raw_mask) if raw_mask is not None else None
        if raw_mask is not None and netmask is None:
            raise fail(_D, f"Invalid netmask '{raw_mask}' in network '{name}'")
        prefix = 0
        if ip.get("prefix") is not None:
            parsed = parse_uint(ip.get("prefix"))
            if parsed is None:
                raise fail(_D, f"Invalid value for attribute 'prefix' in element 'ip': '{ip.get('prefix')}'. "
                               "Expected non-negative integer value")
            prefix = parsed
        local_ptr = tristate(ip, "localPtr", _D)
        unsupported = ErrorNumber.CONFIG_UNSUPPORTED
        if family is None or family == "ipv4":
            if address.version != 4:
                raise fail(_D, f"{family or 'no'} family specified for non-IPv4 address '{raw_address}' "
                               f"in network '{name}'", unsupported)
            if netmask is not None:
                if netmask.version != 4:
                    raise fail(_D, f"Invalid netmask '{raw_mask}' for address '{raw_address}' in network "
                                   f"'{name}' (both must be IPv4)", unsupported)
                if prefix > 0:
                    raise fail(_D, f"Network '{name}' IP address cannot have both a prefix and a netmask",
                               unsupported)
            elif prefix > 32:
                raise fail(_D, f"Invalid IPv4 prefix '{prefix}' in network '{name}'", unsupported)
        elif family == "ipv6":
            if address.version != 6:
                raise fail(_D, f"Family 'ipv6' specified for non-IPv6 address '{raw_address}' in network "
                               f"'{name}'", unsupported)
            if netmask is not None:
                raise fail(_D, f"netmask not allowed for IPv6 address '{raw_address}' in network '{name}'",
                           unsupported)
            if prefix > 128:
                raise fail(_D, f"Invalid IPv6 prefix '{prefix}' in network '{name}'", unsupported)
        else:
            raise fail(_D, f"Unrecognized family '{family}' in network '{name}'")
        set_attrs(ip, [
            ("family", family), ("address", format_ip(address)),
            ("netmask", format_ip(netmask) if netmask is not None else None),
            ("prefix", str(prefix) if prefix > 0 else None),
            ("localPtr", local_ptr),
        ])
        eff_prefix = ip_prefix(address, netmask, prefix)

        tftp = only_first(ip, "tftp")
        if tftp is not None:
            if address.version != 4:
                raise fail(_D, f"Unsupported <tftp> element in an IPv6 element in network '{name}'", unsupported)
            root_dir = attr(tftp, "root")
            if root_dir is None:
                ip.remove(tftp)
            else:
                set_attrs(tftp, [("root", root_dir)])

        dhcp = only_first(ip, "dhcp")
        if dhcp is not None:
            self._parse_dhcp(name, dhcp, address, eff_prefix)
            if dhcp.find("range") is None and dhcp.find("host") is None:
                ip.remove(dhcp)
        arrange(ip, ("tftp", "dhcp"))
        keep_open(ip, 1)
        return address, eff_prefix

    @staticmethod
    def _parse_lease(owner: Element) -> None:
        lease = only_first(owner, "lease")
        if lease is None:
            return
        raw = lease.get("expiry")
        if raw is None:
            owner.remove(lease)
            return
        expiry = parse_ull(raw, 0)
        if expiry is None:
            raise fail(_D, f"Invalid value for attribute 'expiry' in element 'lease': '{raw}'. "
                           "Expected non-negative integer value")
        unit = lease.get("unit", "minutes")
        if unit not in _LEASE_UNITS:
            raise fail(_D, f"Invalid value for attribute 'unit' in element 'lease': '{unit}'")
        if expiry > 0 and ((unit == "seconds" and expiry < 120) or (unit == "minutes" and expiry < 2)):
            raise fail(_D, "The minimum lease time should be greater than 2 minutes",
                       ErrorNumber.CONFIG_UNSUPPORTED)
        set_attrs(lease, [("expiry", str(expiry)), ("unit", unit if expiry else None)])

    def _parse_dhcp(self, name: str, dhcp: Element, address: IPAddress, prefix: int) -> None:
        for rng in dhcp.findall("range"):
            start_s, end_s = rng.get("start"), rng.get("end")
            if start_s is None:
                raise fail(_D, f"Missing 'start' attribute in dhcp range for network '{name}'")
            start = parse_ip(start_s)
            if start is None:
                raise fail(_D, f"Cannot parse address '{start_s}'", ErrorNumber.INTERNAL_ERROR)
            if end_s is None:
                raise fail(_D, f"Missing 'end' attribute in dhcp range for network '{name}'")
            end = parse_ip(end_s)
            if end is None:
                raise fail(_D, f"Cannot parse address '{end_s}'", ErrorNumber.INTERNAL_ERROR)
            _check_range(start, end, address, prefix)
            set_attrs(rng, [("start", format_ip(start)), ("end", format_ip(end))])
            self._parse_lease(rng)
            arrange(rng, ("lease",))
        for host in dhcp.findall("host"):
            self._parse_dhcp_host(name, host, address)
        bootp = only_first(dhcp, "bootp")
        if bootp is not None:
            if address.version != 4:
                dhcp.remove(bootp)
            else:
                file_ = bootp.get("file")
                if file_ is None:
                    raise fail(_D, "Missing required attribute 'file' in element 'bootp'")
                server_s = bootp.get("server")
                server = parse_ip(server_s) if server_s is not None else None
                if server_s is not None and server is None:
                    raise fail(_D, f"Cannot parse address '{server_s}'", ErrorNumber.INTERNAL_ERROR)
                set_attrs(bootp, [("file", file_), ("server", format_ip(server) if server is not None else None)])
        arrange(dhcp, ("range", "host", "bootp"))

    def _parse_dhcp_host(self, name: str, host: Element, address: IPAddress) -> None:
        mac = host.get("mac")
        if mac is not None:
            if address.version == 6:
                raise fail(_D, f"Invalid to specify MAC address '{mac}' in network '{name}' IPv6 static host "
                               "definition")
            parsed = parse_mac(mac)
            if parsed is None:
                raise fail(_D, f"Cannot parse MAC address '{mac}' in network '{name}'")
            if mac_is_multicast(parsed):
                raise fail(_D, f"expected unicast mac address, found multicast '{mac}' in network '{name}'")
        host_id = host.get("id")
        if host_id is not None:
            bad = [c for c in host_id if c not in "0123456789abcdefABCDEF:"]
            if bad:
                raise fail(_D, f"Invalid character '{bad[0]}' in id '{host_id}' of network '{name}'")
        host_name = host.get("name")
        if host_name is not None and not (host_name[:1].isascii() and host_name[:1].isalnum()):
            raise fail(_D, f"Cannot use host name '{host_name}' in network '{name}'")
        ip_s = host.get("ip")
        ip = parse_ip(ip_s) if ip_s is not None else None
        if ip_s is not None and ip is None:
            raise fail(_D, f"Invalid IP address in static host definition for network '{name}'")
        if address.version == 6:
            if not (host_id or host_name):
                raise fail(_D, f"Static host definition in IPv6 network '{name}' must have id or name attribute")
        elif not (mac or host_name):
            raise fail(_D, f"Static host definition in IPv4 network '{name}' must have mac or name attribute")
        if ip is None:
            raise fail(_D, f"Missing IP address in static host definition for network '{name}'")
        set_attrs(host, [("mac", mac), ("id", host_id), ("name", host_name), ("ip", format_ip(ip))])
        self._parse_lease(host)
        arrange(host, ("lease",))

    # ---- forward
    def _parse_forward(self, name: str, fwd: Element) -> tuple[str, int, int]:
        mode = fwd.get("mode") or "nat"
        if mode not in FORWARD_MODES:
            raise fail(_D, f"unknown forwarding type '{mode}'", ErrorNumber.CONFIG_UNSUPPORTED)
        managed_s = fwd.get("managed")
        managed = managed_s is not None and managed_s.lower() == "yes"
        driver_el = fwd.find("driver")
        driver = attr(driver_el, "name")
        if driver is not None and driver not in ("kvm", "vfio"):
            raise fail(_D, f"Unknown forward <driver name='{driver}'/> in network {name}",
                       ErrorNumber.CONFIG_UNSUPPORTED)
        if_nodes = fwd.findall("interface")
        addr_nodes = fwd.findall("address")
        pf_nodes = fwd.findall("pf")
        nat_nodes = fwd.findall("nat")
        if len(nat_nodes) > 1:
            raise fail(_D, f"Only one <nat> element is allowed in <forward> of network {name}")
        nat = self._parse_nat(name, mode, nat_nodes[0]) if nat_nodes else None
        dev = fwd.get("dev") or None
        if dev is not None and (addr_nodes or pf_nodes):
            raise fail(_D, "the <forward> 'dev' attribute cannot be used when <address> or <pf> sub-elements "
                           f"are present in network {name}")
        ifs: list[str] = []
        pcis: list[tuple[int, int, int, int]] = []
        pf: str | None = None
        if if_nodes or dev is not None:
            if dev is not None:
                ifs.append(dev)
            for i, node in enumerate(if_nodes):
                devi = node.get("dev")
                if devi is None:
                    raise fail(_D, f"Missing required dev attribute in <forward> <interface> element of network {name}")
                if i == 0 and dev is not None:
                    if devi != dev:
                        raise fail(_D, f"<forward dev='{dev}'> must match first <interface dev='{devi}'/> in "
                                       f"network {name}")
                    continue
                if devi in ifs:
                    raise fail(_D, f"interface '{devi}' can only be listed once in network {name}")
                ifs.append(devi)
        elif addr_nodes:
            for node in addr_nodes:
                addr_type = node.get("type")
                if addr_type is None:
                    raise fail(_D, f"missing address type in network {name}")
                if addr_type not in ("none", "pci", "netdev"):
                    raise fail(_D, f"unknown address type '{addr_type}' in network {name}",
                               ErrorNumber.CONFIG_UNSUPPORTED)
                if addr_type != "pci":
                    raise fail(_D, f"unsupported address type '{addr_type}' in network {name}")
                pci = parse_pci_address(node, _D)
                if pci in pcis:
                    dom, bus, slot, func = pci
                    raise fail(_D, f"PCI device '{dom:04x}:{bus:02x}:{slot:02x}.{func:x}' can only be listed "
                                   f"once in network {name}")
                pcis.append(pci)
        elif len(pf_nodes) > 1:
            raise fail(_D, f"Only one <pf> element is allowed in <forward> of network {name}")
        elif pf_nodes:
            pf = pf_nodes[0].get("dev")
            if pf is None:
                raise fail(_D, f"Missing required dev attribute in <pf> element of network '{name}'")

        # rebuild the known content in libvirt's order; unknown children stay after it
        unknown = [c for c in fwd if c.tag not in ("driver", "nat", "interface", "address", "pf")]
        for child in list(fwd):
            fwd.remove(child)
        set_attrs(fwd, [
            ("dev", ifs[0] if ifs and pf is None else None),
            ("mode", mode),
            ("managed", ("yes" if managed else "no") if mode == "hostdev" else None),
        ])
        if driver is not None:
            sub(fwd, "driver", {"name": driver})
        if mode == "nat" and nat is not None:
            fwd.append(nat)
        if pf is not None:
            sub(fwd, "pf", {"dev": pf})
        for devi in ifs:
            sub(fwd, "interface", {"dev": devi})
        for dom, bus, slot, func in pcis:
            sub(fwd, "address", {"type": "pci", "domain": f"0x{dom:04x}", "bus": f"0x{bus:02x}",
                                 "slot": f"0x{slot:02x}", "function": f"0x{func}"})
        for child in unknown:
            fwd.append(child)
        fwd.text = None
        return mode, len(ifs) + len(pcis), 1 if pf is not None else 0

    @staticmethod
    def _parse_nat(name: str, mode: str, nat: Element) -> Element | None:
        if mode != "nat":
            raise fail(_D, f"The <nat> element can only be used when <forward> 'mode' is 'nat' in network {name}")
        ipv6 = tristate(nat, "ipv6", _D)
        addrs = nat.findall("address")
        if len(addrs) > 1:
            raise fail(_D, f"Only one <address> element is allowed in <nat> in <forward> in network {name}")
        start = end = None
        if addrs:
            start_s, end_s = addrs[0].get("start"), addrs[0].get("end")
            if start_s is None:
                raise fail(_D, "missing 'start' attribute in <address> element in <nat> in <forward> in "
                               f"network {name}")
            if end_s is None:
                raise fail(_D, f"missing 'end' attribute in <address> element in <nat> in <forward> in network {name}")
            start, end = parse_ip(start_s), parse_ip(end_s)
            if start is None or start.version != 4:
                raise fail(_D, f"Bad ipv4 start address '{start_s}' in <nat> in <forward> in network '{name}'")
            if end is None or end.version != 4:
                raise fail(_D, f"Bad ipv4 end address '{end_s}' in <nat> in <forward> in network '{name}'")
            _check_range(start, end, None, 0)
        ports = nat.findall("port")
        if len(ports) > 1:
            raise fail(_D, f"Only one <port> element is allowed in <nat> in <forward> in network {name}")
        pstart = pend = 0
        if ports:
            ps = parse_uint(attr(ports[0], "start"))
            if ps is None or ps > 65535:
                raise fail(_D, "Missing or invalid 'start' attribute in <port> in <nat> in <forward> in "
                               f"network {name}",
                           ErrorNumber.XML_DETAIL)
            pe = parse_uint(attr(ports[0], "end"))
            if pe is None or pe > 65535 or pe < ps:
                raise fail(_D, "Missing or invalid 'end' attribute in <port> in <nat> in <forward> in "
                               f"network {name}",
                           ErrorNumber.XML_DETAIL)
            pstart, pend = ps, pe
        if start is None and not pstart and not pend and ipv6 is None:
            return None
        out = etree.Element("nat")
        if ipv6 is not None:
            out.set("ipv6", ipv6)
        if start is not None and end is not None:
            sub(out, "address", {"start": format_ip(start), "end": format_ip(end)})
        if pstart or pend:
            port_attrs = {"start": str(pstart)}
            if pend:
                port_attrs["end"] = str(pend)
            sub(out, "port", port_attrs)
        return out

    # ---------------------------------------------------------------- formatting
    def to_string(self, **options: Any) -> str:
        root = self.root
        inactive = bool(options.get("inactive"))
        out = [open_tag(root, ns_first=True) + ">"]
        if inactive and "connections" in root.attrib:
            out[0] = out[0].replace(f" connections='{escape(root.get('connections', ''))}'", "", 1)
        for child in root:
            if not isinstance(child.tag, str):
                continue
            if child.tag == "metadata":
                format_metadata(child, 2, out)
            elif inactive and child.tag == "forward":
                format_element(_inactive_forward(child), 2, out)
            else:
                format_element(child, 2, out)
        out.append("</network>")
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- accessors
    @property
    def name(self) -> str:
        return self.root.findtext("name") or ""

    @property
    def uuid(self) -> str:
        return self.root.findtext("uuid") or ""

    @property
    def bridge(self) -> str | None:
        return attr(self.root.find("bridge"), "name")

    @bridge.setter
    def bridge(self, value: str | None) -> None:
        el = self.root.find("bridge")
        if el is None:
            if value is None:
                return
            el = sub(self.root, "bridge")
        others = [(str(k), str(v)) for k, v in el.attrib.items() if k != "name"]
        set_attrs(el, [("name", value), *others])
        if not el.attrib:
            self.root.remove(el)
        arrange(self.root, _NETWORK_ORDER)

    @property
    def forward_mode(self) -> str | None:
        """The forward mode, None for an isolated network."""
        return attr(self.root.find("forward"), "mode")

    @property
    def forward_dev(self) -> str | None:
        return attr(self.root.find("forward"), "dev")

    @property
    def mac(self) -> str | None:
        return attr(self.root.find("mac"), "address")

    @mac.setter
    def mac(self, value: str | None) -> None:
        if value is None:
            drop(self.root, "mac")
            return
        mac = parse_mac(value)
        if mac is None:
            raise fail(_D, f"invalid MAC address: {value}", ErrorNumber.INVALID_ARG)
        el = self.root.find("mac")
        if el is None:
            el = sub(self.root, "mac")
        set_attrs(el, [("address", mac)])
        arrange(self.root, _NETWORK_ORDER)

    @property
    def domain_name(self) -> str | None:
        return attr(self.root.find("domain"), "name")

    @property
    def mtu(self) -> int | None:
        size = attr(self.root.find("mtu"), "size")
        return int(size) if size else None

    @property
    def ipv6_enabled(self) -> bool:
        """The ``ipv6='yes'`` flag (guest-to-guest IPv6 without a gateway address)."""
        return self.root.get("ipv6") == "yes"

    def ips(self) -> tuple[NetworkIP, ...]:
        return tuple(_ip_record(el) for el in self.root.findall("ip"))

    def portgroups(self) -> tuple[str, ...]:
        return tuple(el.get("name", "") for el in self.root.findall("portgroup"))


def _check_range(start: IPAddress, end: IPAddress, network: IPAddress | None, prefix: int) -> None:
    """``virSocketAddrGetRange``'s checks."""
    s, e = format_ip(start), format_ip(end)
    if start.version != end.version:
        raise fail(_D, f"start and end of IP range '{s} - {e}' are not in the same address family",
                   ErrorNumber.INTERNAL_ERROR)
    if network is not None:
        n = format_ip(network)
        if start.version != network.version:
            raise fail(_D, f"IP address range '{s} - {e}' is not in the same address family as network '{n}'",
                       ErrorNumber.INTERNAL_ERROR)
        if prefix < 0 or prefix > network.max_prefixlen:
            raise fail(_D, f"bad prefix {prefix} for network {n} when checking range {s} - {e}",
                       ErrorNumber.INTERNAL_ERROR)
        net = ipaddress.ip_network(f"{network}/{prefix}", strict=False)
        if start not in net or end not in net:
            raise fail(_D, f"range {s} - {e} is not entirely within network {n}/{prefix}",
                       ErrorNumber.INTERNAL_ERROR)
        if start.version == 4:
            if start == net.network_address:
                raise fail(_D, f"start of range {s} - {e} in network {n}/{prefix} is the network address",
                           ErrorNumber.INTERNAL_ERROR)
            if end == net.broadcast_address:
                raise fail(_D, f"end of range {s} - {e} in network {n}/{prefix} is the broadcast address",
                           ErrorNumber.INTERNAL_ERROR)
    if int(start) > int(end):
        raise fail(_D, f"range {s} - {e} is reversed ", ErrorNumber.INTERNAL_ERROR)


def _inactive_forward(fwd: Element) -> Element:
    if fwd.find("pf") is None and not any(i.get("connections") for i in fwd.findall("interface")):
        return fwd
    dup = copy.deepcopy(fwd)
    has_pf = dup.find("pf") is not None
    for child in list(dup):
        if child.tag in ("interface", "address") and has_pf:
            dup.remove(child)
        elif child.tag == "interface" and "connections" in child.attrib:
            del child.attrib["connections"]
    return dup


def _lease_record(owner: Element) -> DhcpLease | None:
    lease = owner.find("lease")
    if lease is None:
        return None
    return DhcpLease(int(lease.get("expiry", "0")), lease.get("unit"))


def _ip_record(el: Element) -> NetworkIP:
    address = parse_ip(el.get("address"))
    assert address is not None
    mask = parse_ip(el.get("netmask")) if el.get("netmask") else None
    prefix = ip_prefix(address, mask, int(el.get("prefix", "0")))
    netmask: str | None = None
    if address.version == 4:
        if mask is not None:
            netmask = str(mask)
        elif 0 <= prefix <= 32:
            netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
    dhcp = el.find("dhcp")
    ranges: list[DhcpRange] = []
    hosts: list[DhcpHost] = []
    bootp_file = bootp_server = None
    if dhcp is not None:
        for rng in dhcp.findall("range"):
            ranges.append(DhcpRange(rng.get("start", ""), rng.get("end", ""), _lease_record(rng)))
        for host in dhcp.findall("host"):
            hosts.append(DhcpHost(host.get("ip"), host.get("mac"), host.get("name"), host.get("id"),
                                  _lease_record(host)))
        bootp = dhcp.find("bootp")
        if bootp is not None:
            bootp_file, bootp_server = bootp.get("file"), bootp.get("server")
    family = el.get("family") or ("ipv6" if address.version == 6 else "ipv4")
    return NetworkIP(
        address=format_ip(address), family=family, prefix=prefix, netmask=netmask,
        dhcp_ranges=tuple(ranges), dhcp_hosts=tuple(hosts), tftp_root=attr(el.find("tftp"), "root"),
        bootp_file=bootp_file, bootp_server=bootp_server, local_ptr=el.get("localPtr"),
    )
