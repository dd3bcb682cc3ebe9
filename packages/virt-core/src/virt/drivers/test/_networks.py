"""Network hooks of the test driver: libvirt's test-driver network objects, in memory.

A network has a definition (what ``XMLDesc`` shows), and while it runs with a pending
persistent one, the config to apply when it stops (``new_def``).  Lookups go through two
dicts on the node (by UUID and name -> UUID), so no call scans the networks.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import NetworkEventType
from virt.drivers.test._state import Defined, NodeState, check_flags

# The XML modules (lxml) are imported where a document is made: a CLI start needs none of them.
if TYPE_CHECKING:
    from virt.xml._base import Element
    from virt.xml.network import NetworkDocument

__all__ = ["NetworkObj", "NetworkOps", "apply_update", "load_from_node"]

# Errors the driver itself raises come from libvirt's test driver (VIR_FROM_TEST); the
# document parsers report their own domains.
_D = ErrorDomain.TEST

# virConnectListAllNetworksFlags
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_LIST_ALL = 63
_DEFINE_VALIDATE = 1

# virNetworkUpdate bits
_UPDATE_LIVE, _UPDATE_CONFIG = 1, 2


class NetworkObj(Defined):
    """One network of a test node."""

    __slots__ = ()
    definition: NetworkDocument
    new_def: NetworkDocument | None


def _ref(net: NetworkObj) -> R.NetworkRef:
    return R.NetworkRef(net.name, net.uuid)



def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """Add the ``<network>`` children of a node file, running, as libvirt's test driver does."""
    from virt.drivers.test._loader import child_xml
    from virt.xml.network import NetworkDocument

    for elem in root.findall("network"):
        doc = NetworkDocument.from_string(child_xml(elem, base_dir))
        net = _assign(node, doc, live=False)
        net.active = True


def _assign(node: NodeState, doc: NetworkDocument, *, live: bool, check_live: bool = False) -> NetworkObj:
    """``virNetworkObjAssignDef``: add ``doc`` as a new network or as the new config of the
    network with its UUID; a name/UUID clash is refused."""
    existing: NetworkObj | None = node.networks.get(doc.uuid)
    if existing is not None:
        if existing.name != doc.name:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"network '{existing.name}' is already defined with uuid {doc.uuid}", domain=_D)
        if check_live and existing.active:
            raise VirtError(ErrorNumber.OPERATION_INVALID,
                            f"network is already active as '{existing.name}'", domain=_D)
        if live:
            if existing.persistent and existing.new_def is None:
                existing.new_def = existing.definition
            existing.definition = doc
        else:
            if existing.active:
                existing.new_def = doc
            else:
                existing.definition = doc
                existing.new_def = None
            existing.persistent = True
        return existing
    other = node.network_names.get(doc.name)
    if other is not None:
        raise VirtError(ErrorNumber.OPERATION_FAILED,
                        f"network '{doc.name}' already exists with uuid {other}", domain=_D)
    net = NetworkObj(uuid=doc.uuid, name=doc.name, definition=doc, persistent=not live)
    node.networks[net.uuid] = net
    node.network_names[net.name] = net.uuid
    return net


def _remove(node: NodeState, net: NetworkObj) -> None:
    node.networks.pop(net.uuid, None)
    if node.network_names.get(net.name) == net.uuid:
        del node.network_names[net.name]


def _matches(net: NetworkObj, flags: int) -> bool:
    if flags & (_ACTIVE | _INACTIVE) and not (
        (flags & _ACTIVE and net.active) or (flags & _INACTIVE and not net.active)
    ):
        return False
    if flags & (_PERSISTENT | _TRANSIENT) and not (
        (flags & _PERSISTENT and net.persistent) or (flags & _TRANSIENT and not net.persistent)
    ):
        return False
    return not (flags & (_AUTOSTART | _NO_AUTOSTART) and not (
        (flags & _AUTOSTART and net.autostart) or (flags & _NO_AUTOSTART and not net.autostart)
    ))


class NetworkOps:
    """Implements :mod:`virt.hookspecs.network` on the in-memory node."""

    node: NodeState

    def _net(self, uuid: str) -> NetworkObj:
        net: NetworkObj | None = self.node.networks.get(uuid)
        if net is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching uuid '{uuid}'", domain=_D)
        return net

    def _emit_net(self, net: NetworkObj, event: NetworkEventType) -> None:
        if self.node.listening(R.NetworkEvent):
            self.node.emit(R.NetworkEvent(name=net.name, uuid=net.uuid, event=event, detail=0))

    @hookimpl
    def virt_network_define_xml(self, xml: str, flags: int) -> R.NetworkRef:
        from virt.xml.network import NetworkDocument

        check_flags(flags, _DEFINE_VALIDATE, "testNetworkDefineXMLFlags", _D)
        doc = NetworkDocument.from_string(xml, validate=bool(flags & _DEFINE_VALIDATE))
        with self.node.lock:
            net = _assign(self.node, doc, live=False)
            self._emit_net(net, NetworkEventType.DEFINED)
            return _ref(net)

    @hookimpl
    def virt_network_create_xml(self, xml: str, flags: int) -> R.NetworkRef:
        from virt.xml.network import NetworkDocument

        check_flags(flags, 0, "testNetworkCreateXMLFlags", _D)
        doc = NetworkDocument.from_string(xml)
        with self.node.lock:
            net = _assign(self.node, doc, live=True, check_live=True)
            net.active = True
            self._emit_net(net, NetworkEventType.STARTED)
            return _ref(net)

    @hookimpl
    def virt_network_undefine(self, uuid: str) -> None:
        with self.node.lock:
            net = self._net(uuid)
            if net.active:
                raise VirtError(ErrorNumber.OPERATION_INVALID, f"Network '{net.name}' is still running", domain=_D)
            self._emit_net(net, NetworkEventType.UNDEFINED)
            _remove(self.node, net)

    @hookimpl
    def virt_network_lookup_by_name(self, name: str) -> R.NetworkRef:
        with self.node.lock:
            uuid = self.node.network_names.get(name)
            if uuid is None:
                raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{name}'", domain=_D)
            return _ref(self.node.networks[uuid])

    @hookimpl
    def virt_network_lookup_by_uuid(self, uuid: str) -> R.NetworkRef:
        with self.node.lock:
            return _ref(self._net(uuid))

    @hookimpl
    def virt_network_list(self, flags: int) -> list[R.NetworkRef]:
        check_flags(flags, _LIST_ALL, "testConnectListAllNetworks", _D)
        with self.node.lock:
            nets = [n for n in self.node.networks.values() if _matches(n, flags)]
        nets.sort(key=lambda n: n.name)
        return [_ref(n) for n in nets]

    @hookimpl
    def virt_network_create(self, uuid: str) -> None:
        with self.node.lock:
            net = self._net(uuid)
            if net.active:
                raise VirtError(ErrorNumber.OPERATION_INVALID, f"Network '{net.name}' is already running",
                                domain=_D)
            net.active = True
            self._emit_net(net, NetworkEventType.STARTED)

    @hookimpl
    def virt_network_destroy(self, uuid: str) -> None:
        # libvirt's test driver stops the network whatever its state (no "not running" check).
        with self.node.lock:
            net = self._net(uuid)
            net.active = False
            self._emit_net(net, NetworkEventType.STOPPED)
            if not net.persistent:
                _remove(self.node, net)
            elif net.new_def is not None:
                net.definition, net.new_def = net.new_def, None

    @hookimpl
    def virt_network_get_xml(self, uuid: str, flags: int) -> str:
        check_flags(flags, 0, "testNetworkGetXMLDesc", _D)
        with self.node.lock:
            return self._net(uuid).definition.to_string()

    @hookimpl
    def virt_network_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).active

    @hookimpl
    def virt_network_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).persistent

    @hookimpl
    def virt_network_get_autostart(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).autostart

    @hookimpl
    def virt_network_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.node.lock:
            self._net(uuid).autostart = bool(autostart)

    @hookimpl
    def virt_network_get_bridge_name(self, uuid: str) -> str:
        with self.node.lock:
            net = self._net(uuid)
            bridge = net.definition.bridge
            if not bridge:
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{net.name}' does not have a bridge name.",
                                domain=_D)
            return bridge

    @hookimpl
    def virt_network_update(self, uuid: str, command: int, section: int, parent_index: int, xml: str,
                            flags: int) -> None:
        check_flags(flags, _UPDATE_LIVE | _UPDATE_CONFIG, "testNetworkUpdate", _D)
        with self.node.lock:
            net = self._net(uuid)
            if not flags & (_UPDATE_LIVE | _UPDATE_CONFIG):
                flags |= _UPDATE_LIVE if net.active else _UPDATE_CONFIG
            if flags & _UPDATE_LIVE and not net.active:
                raise VirtError(ErrorNumber.OPERATION_INVALID, "network is not running", domain=_D)
            if flags & _UPDATE_CONFIG and not net.persistent:
                raise VirtError(ErrorNumber.OPERATION_INVALID,
                                "cannot change persistent config of a transient network", domain=_D)
            # Both copies are changed before either replaces its original: a failure changes nothing.
            live = apply_update(net.definition, command, section, parent_index, xml) \
                if flags & _UPDATE_LIVE else None
            config = None
            if flags & _UPDATE_CONFIG:
                persistent = net.new_def if net.new_def is not None else net.definition
                config = apply_update(persistent, command, section, parent_index, xml)
            if config is not None:
                if net.active:
                    net.new_def = config
                else:
                    net.definition = config
            if live is not None:
                net.definition = live


# -- virNetworkUpdate -----------------------------------------------------------------------------

_CMD_MODIFY, _CMD_DELETE, _CMD_ADD_LAST, _CMD_ADD_FIRST = 1, 2, 3, 4
_NO_SUPPORT_SECTIONS = {1: "bridge", 2: "domain", 3: "ip", 6: "forward", 8: "forward pf"}
_SERVICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/*")
_PROTOCOL_CHARS = _SERVICE_CHARS


def _xml_error(message: str, code: ErrorNumber = ErrorNumber.XML_ERROR) -> VirtError:
    return VirtError(code, message, domain=ErrorDomain.NETWORK)


def _op_invalid(message: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, message, domain=ErrorDomain.NETWORK)


def _no_support(message: str) -> VirtError:
    return VirtError(ErrorNumber.NO_SUPPORT, message, domain=ErrorDomain.NETWORK)


def _expect(frag: Element, tag: str, name: str) -> None:
    if frag.tag != tag:
        raise _xml_error(f"unexpected element <{frag.tag}>, expecting <{tag}>, while updating network '{name}'")


def _unknown_command(command: int) -> VirtError:
    return _no_support(f"unrecognized network update command code {command}")


def _insert(parent: Element, siblings: list[Element], new: Element, first: bool) -> None:
    """Put ``new`` before the first or after the last of ``siblings`` (or at the end of ``parent``)."""
    if not siblings:
        parent.append(new)
    elif first:
        siblings[0].addprevious(new)
    else:
        siblings[-1].addnext(new)


def _clean(frag: Element) -> Element:
    new = copy.deepcopy(frag)
    new.tail = None
    return new


def _ip_by_index(root: Element, name: str, parent_index: int) -> Element:
    """``virNetworkIPDefByIndex``: the ``<ip>`` at ``parent_index``, or for -1 the one with a
    ``<dhcp>`` (else the first IPv4, else the first IPv6)."""
    from virt.xml.network import parse_ip

    ips = root.findall("ip")
    if parent_index >= 0:
        if parent_index < len(ips):
            return ips[parent_index]
        raise _op_invalid(f"couldn't update dhcp host entry - no <ip> element found at index {parent_index} in "
                          f"network '{name}'")
    for ip in ips:
        if ip.find("dhcp/range") is not None or ip.find("dhcp/host") is not None:
            return ip
    for version in (4, 6):
        for ip in ips:
            address = parse_ip(ip.get("address"))
            if address is not None and address.version == version:
                return ip
    raise _op_invalid(f"couldn't update dhcp host entry - no <ip> element found in network '{name}'")


def _ip_version(ip: Element) -> int:
    from virt.xml.network import parse_ip

    address = parse_ip(ip.get("address"))
    return address.version if address is not None else 0


def _dhcp(ip: Element) -> Element:
    from lxml import etree

    dhcp = ip.find("dhcp")
    if dhcp is None:
        dhcp = etree.SubElement(ip, "dhcp")
    return dhcp


def _update_dhcp_host(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    from virt.xml._util import parse_mac
    from virt.xml.network import format_ip, parse_ip

    _expect(frag, "host", name)
    ip_el = _ip_by_index(root, name, parent_index)
    partial = command == _CMD_DELETE
    version = _ip_version(ip_el)
    raw_mac, host_name, raw_ip, host_id = frag.get("mac"), frag.get("name"), frag.get("ip"), frag.get("id")
    mac = None
    if raw_mac is not None:
        if version == 6:
            raise _xml_error(f"Invalid to specify MAC address '{raw_mac}' in network '{name}' IPv6 static host "
                             "definition")
        mac = parse_mac(raw_mac)
        if mac is None:
            raise _xml_error(f"Cannot parse MAC address '{raw_mac}' in network '{name}'")
        if int(mac[:2], 16) & 1:
            raise _xml_error(f"expected unicast mac address, found multicast '{raw_mac}' in network '{name}'")
    if host_name is not None and not (host_name[:1].isascii() and host_name[:1].isalpha()):
        raise _xml_error(f"Cannot use host name '{host_name}' in network '{name}'")
    address = parse_ip(raw_ip) if raw_ip is not None else None
    if raw_ip is not None and address is None:
        raise _xml_error(f"Invalid IP address in static host definition for network '{name}'")
    if partial:
        if not (raw_mac or host_name or raw_ip):
            raise _xml_error("At least one of name, mac, or ip attribute must be specified for static host "
                             f"definition in network '{name}' ")
    else:
        if version == 6:
            if not (host_id or host_name):
                raise _xml_error(f"Static host definition in IPv6 network '{name}' must have id or name attribute")
        elif not (raw_mac or host_name):
            raise _xml_error(f"Static host definition in IPv4 network '{name}' must have mac or name attribute")
        if raw_ip is None:
            raise _xml_error(f"Missing IP address in static host definition for network '{name}'")
        if address is None or address.version != version:
            raise _op_invalid("the address family of a host entry IP must match the address family of the dhcp "
                              "element's parent")
    dhcp = _dhcp(ip_el)
    hosts = dhcp.findall("host")

    def same(host: Element) -> bool:
        other_mac = parse_mac(host.get("mac"))
        return bool((mac and other_mac and mac == other_mac)
                    or (host_name and host_name == host.get("name"))
                    or (address is not None and address == parse_ip(host.get("ip"))))

    # As libvirt prints them (glibc shows a missing name as "(null)").
    shown_mac = raw_mac or "unknown"
    shown_name = "(null)" if host_name is None else host_name
    shown_ip = format_ip(address) if address is not None else "unknown"
    if command == _CMD_MODIFY:
        found = next((h for h in hosts if same(h)), None)
        if found is None:
            raise _op_invalid(f"couldn't locate an existing dhcp host entry with \"mac='{shown_mac}'\" "
                              f"\"name='{shown_name}'\" \"ip='{shown_ip}'\" in network '{name}'")
        found.addprevious(_clean(frag))
        dhcp.remove(found)
    elif command in (_CMD_ADD_FIRST, _CMD_ADD_LAST):
        if any(same(h) for h in hosts):
            raise _op_invalid(f"there is an existing dhcp host entry in network '{name}' that matches "
                              f"\"<host mac='{shown_mac}' name='{shown_name}' ip='{shown_ip}'/>\"")
        _insert(dhcp, hosts, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        for host in hosts:
            other_mac = parse_mac(host.get("mac"))
            if ((not mac or not other_mac or mac == other_mac)
                    and (not host_name or host_name == host.get("name"))
                    and (address is None or address == parse_ip(host.get("ip")))):
                dhcp.remove(host)
                break
        else:
            raise _op_invalid(f"couldn't locate a matching dhcp host entry in network '{name}'")
    else:
        raise _unknown_command(command)


def _update_dhcp_range(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    from virt.xml.network import format_ip, parse_ip

    _expect(frag, "range", name)
    ip_el = _ip_by_index(root, name, parent_index)
    if command == _CMD_MODIFY:
        raise _no_support("dhcp ranges cannot be modified, only added or deleted")
    raw_start, raw_end = frag.get("start"), frag.get("end")
    if raw_start is None:
        raise _xml_error(f"Missing 'start' attribute in dhcp range for network '{name}'")
    start = parse_ip(raw_start)
    if start is None:
        raise _xml_error(f"Cannot parse address '{raw_start}'", ErrorNumber.INTERNAL_ERROR)
    if raw_end is None:
        raise _xml_error(f"Missing 'end' attribute in dhcp range for network '{name}'")
    end = parse_ip(raw_end)
    if end is None:
        raise _xml_error(f"Cannot parse address '{raw_end}'", ErrorNumber.INTERNAL_ERROR)
    if start.version != _ip_version(ip_el):
        raise _op_invalid("the address family of a dhcp range must match the address family of the dhcp "
                          "element's parent")
    dhcp = _dhcp(ip_el)
    ranges = dhcp.findall("range")
    found = next((r for r in ranges
                  if parse_ip(r.get("start")) == start and parse_ip(r.get("end")) == end), None)
    if command in (_CMD_ADD_FIRST, _CMD_ADD_LAST):
        if found is not None:
            raise _op_invalid(f"there is an existing dhcp range entry in network '{name}' that matches "
                              f"\"<range start='{format_ip(start)}' end='{format_ip(end)}'/>\"")
        _insert(dhcp, ranges, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        if found is None:
            raise _op_invalid(f"couldn't locate a matching dhcp range entry in network '{name}'")
        dhcp.remove(found)
    else:
        raise _unknown_command(command)


def _update_forward_interface(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    from lxml import etree

    _expect(frag, "interface", name)
    if command == _CMD_MODIFY:
        raise _no_support("forward interface entries cannot be modified, only added or deleted")
    dev = frag.get("dev")
    if dev is None:
        raise _xml_error("missing dev attribute in <interface> element")
    forward = root.find("forward")
    ifaces = forward.findall("interface") if forward is not None else []
    found = next((i for i in ifaces if i.get("dev") == dev), None)
    if command in (_CMD_ADD_FIRST, _CMD_ADD_LAST):
        if found is not None:
            raise _op_invalid(f"there is an existing interface entry in network '{name}' that matches "
                              f"\"<interface dev='{dev}'>\"")
        if forward is None:
            return  # libvirt keeps it where a network without <forward> never shows it
        new = etree.Element("interface")
        new.set("dev", dev)
        _insert(forward, ifaces, new, command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        if found is None or forward is None:
            raise _op_invalid(f"couldn't find an interface entry in network '{name}' matching <interface dev='{dev}'>")
        used = int(found.get("connections") or 0)
        if used > 0:
            raise _op_invalid(f"unable to delete interface '{dev}' in network '{name}'. It is currently being used "
                              f"by {used} domains.")
        forward.remove(found)
    else:
        raise _unknown_command(command)
    remaining = forward.findall("interface")
    if remaining:
        forward.set("dev", remaining[0].get("dev") or "")
    elif "dev" in forward.attrib:
        del forward.attrib["dev"]


def _update_portgroup(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    _expect(frag, "portgroup", name)
    group = frag.get("name")
    if group is None:
        raise _xml_error("Missing required name attribute in portgroup")
    is_default = frag.get("default") == "yes"
    groups = root.findall("portgroup")
    found = next((g for g in groups if g.get("name") == group), None)
    default = next((g for g in groups if g.get("default") == "yes"), None)
    if found is None and command in (_CMD_MODIFY, _CMD_DELETE):
        raise _op_invalid(f"couldn't find a portgroup entry in network '{name}' matching <portgroup name='{group}'>")
    if found is not None and command in (_CMD_ADD_FIRST, _CMD_ADD_LAST):
        raise _op_invalid(f"there is an existing portgroup entry in network '{name}' that matches "
                          f"\"<portgroup name='{group}'>\"")
    if command != _CMD_DELETE and is_default and default is not None and default is not found:
        raise _op_invalid(f"a different portgroup entry in network '{name}' is already set as the default. Only "
                          "one default is allowed.")
    if command == _CMD_MODIFY:
        assert found is not None
        found.addprevious(_clean(frag))
        root.remove(found)
    elif command in (_CMD_ADD_FIRST, _CMD_ADD_LAST):
        _insert(root, groups, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        assert found is not None
        root.remove(found)
    else:
        raise _unknown_command(command)


def _text(elem: Element) -> str:
    return "".join(str(t) for t in elem.itertext())


def _dns(root: Element) -> Element:
    from lxml import etree

    dns = root.find("dns")
    if dns is None:
        dns = etree.SubElement(root, "dns")
    return dns


def _update_dns_host(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    from virt.xml.network import parse_ip

    if command == _CMD_MODIFY:
        raise _no_support("DNS HOST records cannot be modified, only added or deleted")
    _expect(frag, "host", name)
    adding = command in (_CMD_ADD_FIRST, _CMD_ADD_LAST)
    raw_ip = frag.get("ip")
    address = parse_ip(raw_ip) if raw_ip is not None else None
    if raw_ip is None and adding:
        raise _xml_error(f"Missing IP address in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
    if raw_ip is not None and address is None:
        raise _xml_error(f"Invalid IP address in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
    names = [text for text in (_text(h) for h in frag.findall("hostname")) if text]
    if not names and adding:
        raise _xml_error(f"Missing hostname in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
    if address is None and not names:
        raise _xml_error(f"Missing ip and hostname in network '{name}' DNS HOST record", ErrorNumber.XML_DETAIL)
    dns = root.find("dns")
    hosts = dns.findall("host") if dns is not None else []
    # Adding looks for the same address only: one name may well have several addresses.
    matches = [h for h in hosts
               if (address is not None and address == parse_ip(h.get("ip")))
               or (not adding and set(names) & {_text(n) for n in h.findall("hostname")})]
    if adding:
        if matches:
            raise _op_invalid("there is already at least one DNS HOST record with a matching field in network "
                              f"{name}")
        _insert(_dns(root), hosts, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        if not matches:
            raise _op_invalid(f"couldn't locate a matching DNS HOST record in network {name}")
        if len(matches) > 1:
            raise _op_invalid(f"multiple matching DNS HOST records were found in network {name}")
        assert dns is not None
        dns.remove(matches[0])
    else:
        raise _unknown_command(command)


def _update_dns_txt(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    if command == _CMD_MODIFY:
        raise _no_support("DNS TXT records cannot be modified, only added or deleted")
    _expect(frag, "txt", name)
    adding = command in (_CMD_ADD_FIRST, _CMD_ADD_LAST)
    txt_name = frag.get("name")
    if txt_name is None:
        raise _xml_error(f"missing required name attribute in DNS TXT record of network {name}",
                         ErrorNumber.XML_DETAIL)
    if " " in txt_name or "," in txt_name:
        raise _xml_error(f"prohibited character in DNS TXT record name '{txt_name}' of network {name}",
                         ErrorNumber.XML_DETAIL)
    if frag.get("value") is None and adding:
        raise _xml_error(f"missing required value attribute in DNS TXT record named '{txt_name}' of network {name}",
                         ErrorNumber.XML_DETAIL)
    dns = root.find("dns")
    txts = dns.findall("txt") if dns is not None else []
    found = next((t for t in txts if t.get("name") == txt_name), None)
    if adding:
        if found is not None:
            raise _op_invalid(f"there is already a DNS TXT record with name '{txt_name}' in network {name}")
        _insert(_dns(root), txts, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        if found is None or dns is None:
            raise _op_invalid(f"couldn't locate a matching DNS TXT record in network {name}")
        dns.remove(found)
    else:
        raise _unknown_command(command)


def _update_dns_srv(root: Element, name: str, command: int, parent_index: int, frag: Element) -> None:
    if command == _CMD_MODIFY:
        raise _no_support("DNS SRV records cannot be modified, only added or deleted")
    _expect(frag, "srv", name)
    adding = command in (_CMD_ADD_FIRST, _CMD_ADD_LAST)
    service, protocol = frag.get("service"), frag.get("protocol")
    if service is None and adding:
        raise _xml_error(f"missing required service attribute in DNS SRV record of network '{name}'",
                         ErrorNumber.XML_DETAIL)
    if service is not None and not set(service) <= _SERVICE_CHARS:
        raise _xml_error(f"invalid character in service attribute '{service}' in DNS SRV record of network "
                         f"'{name}'", ErrorNumber.XML_DETAIL)
    if protocol is None and adding:
        raise _xml_error(f"missing required protocol attribute in DNS SRV record '{service}' of network '{name}'",
                         ErrorNumber.XML_DETAIL)
    if protocol is not None and not set(protocol) <= _PROTOCOL_CHARS:
        raise _xml_error(f"invalid character in protocol attribute '{protocol}' in DNS SRV record of network "
                         f"'{name}'", ErrorNumber.XML_DETAIL)
    dns = root.find("dns")
    srvs = dns.findall("srv") if dns is not None else []
    fields = ("domain", "service", "protocol", "target")
    matches = [s for s in srvs if all(frag.get(f) is None or frag.get(f) == s.get(f) for f in fields)]
    if adding:
        if matches:
            raise _op_invalid("there is already at least one DNS SRV record matching all specified fields in "
                              f"network {name}")
        _insert(_dns(root), srvs, _clean(frag), command == _CMD_ADD_FIRST)
    elif command == _CMD_DELETE:
        if not matches:
            raise _op_invalid(f"couldn't locate a matching DNS SRV record in network {name}")
        if len(matches) > 1:
            raise _op_invalid(f"multiple DNS SRV records matching all specified fields were found in network {name}")
        assert dns is not None
        dns.remove(matches[0])
    else:
        raise _unknown_command(command)


_SECTIONS = {
    4: _update_dhcp_host, 5: _update_dhcp_range, 7: _update_forward_interface, 9: _update_portgroup,
    10: _update_dns_host, 11: _update_dns_txt, 12: _update_dns_srv,
}


def apply_update(doc: NetworkDocument, command: int, section: int, parent_index: int, xml: str) -> NetworkDocument:
    """``virNetworkDefUpdateSection`` on a copy of ``doc``: the changed document, checked by a
    full parse as libvirt's format/parse cycle does; ``doc`` itself is never changed."""
    from lxml import etree

    from virt.xml._base import parse_xml
    from virt.xml.network import NetworkDocument

    name = doc.name
    frag = parse_xml(xml, domain=ErrorDomain.NETWORK)
    label = _NO_SUPPORT_SECTIONS.get(section)
    if label is not None:
        raise _no_support(f"can't update '{label}' section of network '{name}'")
    handler = _SECTIONS.get(section)
    if handler is None:
        raise _no_support("can't update unrecognized section of network")
    root = copy.deepcopy(doc.root)
    handler(root, name, command, parent_index, frag)
    return NetworkDocument.from_string(etree.tostring(root))
