"""Host node device XML (``<device>``), as libvirt's ``node_device_conf.c`` parses and formats it.

``post_parse`` checks each ``<capability>`` the way ``virNodeDeviceDefParseXML`` does and rebuilds
it in the form ``virNodeDeviceDefFormat`` prints (numbers re-printed in libvirt's bases, values
libvirt computes at runtime reset, nested capabilities in their fixed order).  Unknown elements
directly under ``<device>`` are kept after the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element, XMLDocument, format_element, sub
from virt.xml._util import (
    arrange,
    attr,
    child_text,
    fail,
    keep_open,
    only_first,
    parse_int,
    parse_pci_address,
    parse_uint,
    parse_ull,
    parse_uuid,
    set_text,
    strip_blanks,
    text_of,
)

__all__ = ["CAPABILITY_TYPES", "NodeDeviceDocument"]

_D = ErrorDomain.NODEDEV
_INTERNAL = ErrorNumber.INTERNAL_ERROR
_UNSUPPORTED = ErrorNumber.CONFIG_UNSUPPORTED

CAPABILITY_TYPES = (
    "system", "pci", "usb_device", "usb", "net", "scsi_host", "scsi_target", "scsi", "storage",
    "fc_host", "vports", "scsi_generic", "drm", "mdev_types", "mdev", "ccw", "css", "vdpa",
    "ap_card", "ap_queue", "ap_matrix", "vpd",
)
# capability types the parser accepts at the top level
_PARSABLE = frozenset({
    "system", "pci", "usb_device", "usb", "net", "scsi_host", "scsi_target", "scsi", "storage",
    "drm", "mdev", "ccw", "css", "ap_card", "ap_queue", "ap_matrix",
})
_NET_FEATURES = (
    "rx", "tx", "sg", "tso", "gso", "gro", "lro", "rxvlan", "txvlan", "ntuple", "rxhash", "rdma",
    "txudptnl", "switchdev",
)
_LINK_STATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
_PCIE_SPEEDS = ("2.5", "5", "8", "16", "32", "64")
_PCI_HEADERS = ("pci-bridge", "cardbus-bridge")
_DRM_TYPES = ("primary", "control", "render")
_ROOT_ORDER = ("name", "path", "devnode", "parent", "driver", "capability")


def _s32(value: int) -> str:
    """``%d`` of an unsigned 32-bit value."""
    value &= 0xFFFFFFFF
    return str(value - (1 << 32) if value >= 1 << 31 else value)


def _xpath_uint(text: str | None, base: int = 10) -> int | None:
    """``virStrToLong_ui``: like strtoul, and "-N" wraps around (``-1`` is UINT_MAX)."""
    if text is None:
        return None
    s = text.lstrip(" \t\n\r\v\f")
    if s.startswith("-"):
        value = parse_ull(s[1:], base)
        if value is None or value > 0xFFFFFFFF:
            return None
        return (-value) & 0xFFFFFFFF
    return parse_uint(s, base)


class _Cap:
    """Reads one capability element and builds its canonical replacement."""

    def __init__(self, name: str, src: Element, out: Element) -> None:
        self.name = name
        self.src = src
        self.out = out

    def text(self, tag: str, src: Element | None = None) -> str | None:
        return child_text(self.src if src is None else src, tag)

    def required(self, tag: str, what: str, src: Element | None = None) -> str:
        value = self.text(tag, src)
        if value is None:
            raise fail(_D, f"no {what} supplied for '{self.name}'", _INTERNAL)
        return value

    def uint(self, tag: str, what: str, src: Element | None = None, base: int = 10) -> int:
        raw = self.text(tag, src)
        if raw is None:
            raise fail(_D, f"no {what} supplied for '{self.name}'", _INTERNAL)
        value = _xpath_uint(raw, base)
        if value is None:
            raise fail(_D, f"invalid {what} supplied for '{self.name}'", _INTERNAL)
        return value

    def ull(self, tag: str, what: str, src: Element | None = None, required: bool = True) -> int | None:
        raw = self.text(tag, src)
        if raw is None:
            if required:
                raise fail(_D, f"no {what} supplied for '{self.name}'", _INTERNAL)
            return None
        value = parse_ull(raw)
        if value is None:
            raise fail(_D, f"invalid {what} supplied for '{self.name}'", _INTERNAL)
        return value

    def opt_int(self, raw: str | None, what: str) -> int | None:
        if raw is None:
            return None
        value = parse_int(raw)
        if value is None:
            raise fail(_D, f"invalid {what} supplied for '{self.name}'", _INTERNAL)
        return value


def _add(parent: Element, tag: str, text: str | None = None, attrib: Iterable[tuple[str, str | None]] = ()) -> Element:
    el = sub(parent, tag)
    for key, value in attrib:
        if value is not None:
            el.set(key, value)
    if text is not None:
        el.text = text
    return el


def _add_pci_address(parent: Element, addr: tuple[int, int, int, int]) -> None:
    dom, bus, slot, func = addr
    _add(parent, "address", attrib=[("domain", f"0x{dom:04x}"), ("bus", f"0x{bus:02x}"),
                                    ("slot", f"0x{slot:02x}"), ("function", f"0x{func}")])


def _mdev_types(c: _Cap, src: Element, out: Element, depth: int) -> None:
    """``virNodeDevCapMdevTypesParseXML`` + formatter: a ``<capability type='mdev_types'>``."""
    types = src.findall("type")
    if not types:
        return
    cap = _add(out, "capability", attrib=[("type", "mdev_types")])
    for node in types:
        type_id = attr(node, "id")
        if type_id is None:
            raise fail(_D, "missing 'id' attribute for mediated device's <type> element")
        api = child_text(node, "deviceAPI")
        if api is None:
            raise fail(_D, f"missing device API for mediated device type '{type_id}'")
        avail = _xpath_uint(child_text(node, "availableInstances"))
        if avail is None:
            raise fail(_D, f"missing number of available instances for mediated device type '{type_id}'")
        el = _add(cap, "type", attrib=[("id", type_id)])
        name = child_text(node, "name")
        if name is not None:
            _add(el, "name", name)
        _add(el, "deviceAPI", api)
        _add(el, "availableInstances", str(avail))


def _ccw_address(c: _Cap, src: Element, out: Element) -> None:
    values = []
    for tag, base in (("cssid", 0), ("ssid", 0), ("devno", 16)):
        raw = child_text(src, tag)
        if raw is None:
            raise fail(_D, f"missing {tag} value for '{c.name}'", _UNSUPPORTED)
        value = parse_uint(raw, base)
        if value is None:
            raise fail(_D, f"invalid {tag} value '{raw}' for '{c.name}'", _UNSUPPORTED)
        values.append(value)
    cssid, ssid, devno = values
    if cssid > 0xFE or ssid > 3 or devno > 0xFFFF:
        raise fail(_D, f"invalid ccw address '0x{cssid:x}.0x{ssid:x}.0x{devno:04x}' for '{c.name}'", _UNSUPPORTED)
    _add(out, "cssid", f"0x{cssid:x}")
    _add(out, "ssid", f"0x{ssid:x}")
    _add(out, "devno", f"0x{devno:04x}")


def _ap_adapter(c: _Cap, out: Element) -> None:
    raw = c.text("ap-adapter")
    if raw is None:
        raise fail(_D, f"missing ap-adapter value for '{c.name}'", _UNSUPPORTED)
    value = parse_uint(raw, 0)
    if value is None:
        raise fail(_D, f"invalid ap-adapter value '{raw}' for '{c.name}'", _UNSUPPORTED)
    if value > 255:
        raise fail(_D, f"ap-adapter value '{raw}' is out of range for '{c.name}'", _UNSUPPORTED)
    _add(out, "ap-adapter", f"0x{value:02x}")


def _cap_system(c: _Cap, out: Element) -> None:
    product = c.text("product")
    if product is not None:
        _add(out, "product", product)
    hw_src = c.src.find("hardware")
    fw_src = c.src.find("firmware")
    raw_uuid = child_text(hw_src, "uuid") if hw_src is not None else None
    if raw_uuid is None:
        raise fail(_D, f"no system UUID supplied for '{c.name}'", _INTERNAL)
    canonical = parse_uuid(raw_uuid)
    if canonical is None:
        raise fail(_D, f"malformed uuid element for '{c.name}'", _INTERNAL)
    hw = _add(out, "hardware")
    assert hw_src is not None
    for tag in ("vendor", "version", "serial"):
        value = child_text(hw_src, tag)
        if value is not None:
            _add(hw, tag, value)
    _add(hw, "uuid", canonical)
    fw = _add(out, "firmware")
    if fw_src is not None:
        for tag in ("vendor", "version", "release_date"):
            value = child_text(fw_src, tag)
            if value is not None:
                _add(fw, tag, value)
    keep_open(fw, 2)


def _pcie_link(c: _Cap, node: Element, validity: str, out: Element) -> None:
    width_s = node.get("width")
    if width_s is None:
        raise fail(_D, "Missing required attribute 'width' in element 'link'")
    width = parse_uint(width_s, 0)
    if width is None:
        raise fail(_D, f"Invalid value for attribute 'width' in element 'link': '{width_s}'. "
                       "Expected non-negative integer value")
    speed = node.get("speed")
    if speed is not None and speed not in _PCIE_SPEEDS:
        raise fail(_D, f"Invalid value for attribute 'speed' in element 'link': '{speed}'.")
    port_s = node.get("port")
    port = -1
    if port_s is not None:
        parsed = parse_int(port_s)
        if parsed is None:
            raise fail(_D, f"Invalid value for attribute 'port' in element 'link': '{port_s}'. "
                           "Expected integer value")
        port = parsed
    _add(out, "link", attrib=[("validity", validity), ("port", str(port) if port >= 0 else None),
                              ("speed", speed), ("width", _s32(width))])


def _vpd(c: _Cap, src: Element, out: Element) -> None:
    name = child_text(src, "name")
    if name is None:
        raise fail(_D, "Could not read a device name from the <name> element")
    ro: dict[str, str] | None = None
    rw: dict[str, str] | None = None
    ro_vendor: dict[str, str] = {}
    rw_vendor: dict[str, str] = {}
    rw_system: dict[str, str] = {}
    for fields in src.findall("fields"):
        access = fields.get("access")
        if access is None:
            continue
        if access == "readonly":
            ro = {k: v for k in ("change_level", "manufacture_id", "part_number", "serial_number")
                  if (v := child_text(fields, k) or "") != ""}
            ro_vendor = _vpd_custom(fields, "vendor_field")
        elif access == "readwrite":
            rw = {k: v for k in ("asset_tag",) if (v := child_text(fields, k) or "") != ""}
            rw_vendor = _vpd_custom(fields, "vendor_field")
            rw_system = _vpd_custom(fields, "system_field")
        else:
            raise fail(_D, f"Unsupported VPD field access type specified {access}")
    cap = _add(out, "capability", attrib=[("type", "vpd")])
    _add(cap, "name", name)
    if ro is not None:
        el = _add(cap, "fields", attrib=[("access", "readonly")])
        for key, value in ro.items():
            _add(el, key, value)
        for idx, value in ro_vendor.items():
            _add(el, "vendor_field", value, [("index", idx)])
        keep_open(el, 4)
    if rw is not None:
        el = _add(cap, "fields", attrib=[("access", "readwrite")])
        for key, value in rw.items():
            _add(el, key, value)
        for idx, value in rw_vendor.items():
            _add(el, "vendor_field", value, [("index", idx)])
        for idx, value in rw_system.items():
            _add(el, "system_field", value, [("index", idx)])
        keep_open(el, 4)


def _vpd_custom(fields: Element, tag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in fields.findall(tag):
        idx = node.get("index")
        value = node.text
        if not idx or len(idx) > 1 or value is None:
            continue
        out[idx] = value
    return out


def _cap_pci(c: _Cap, out: Element) -> None:
    src = c.src
    klass_s = c.text("class")
    if klass_s is not None:
        klass = parse_int(klass_s, 16)
        if klass is None or klass > 0xFFFFFF or klass < 0:
            raise fail(_D, f"invalid PCI class supplied for '{c.name}'", _INTERNAL)
        _add(out, "class", f"0x{klass:06x}")
    domain = c.uint("domain", "PCI domain ID")
    bus = c.uint("bus", "PCI bus ID")
    slot = c.uint("slot", "PCI slot ID")
    function = c.uint("function", "PCI function ID")
    vendor = _hex_id(c, "vendor", "PCI vendor ID")
    product = _hex_id(c, "product", "PCI product ID")
    _add(out, "domain", _s32(domain))
    _add(out, "bus", str(bus))
    _add(out, "slot", str(slot))
    _add(out, "function", str(function))
    _add(out, "product", c.text("product"), [("id", f"0x{product:04x}")])
    _add(out, "vendor", c.text("vendor"), [("id", f"0x{vendor:04x}")])

    phys: tuple[int, int, int, int] | None = None
    virt: list[tuple[int, int, int, int]] | None = None
    max_vfs = 0
    header: str | None = None
    mdev_src: list[Element] = []
    vpd_src: Element | None = None
    for cap in src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, "Missing capability type")
        if kind == "phys_function":
            phys_el = cap.find("address")
            if phys_el is None:
                raise fail(_D, "Missing address in 'phys_function' capability")
            phys = parse_pci_address(phys_el, _D)
        elif kind == "virt_functions":
            max_s = cap.get("maxCount")
            if max_s is not None:
                parsed = parse_uint(max_s)
                if parsed is None:
                    raise fail(_D, "Malformed 'maxCount' parameter")
                max_vfs = parsed
            virt = [parse_pci_address(a, _D) for a in cap.findall("address")]
        elif kind == "mdev_types":
            mdev_src.append(cap)
        elif kind == "vpd":
            vpd_src = cap
        elif kind in _PCI_HEADERS and header is None:
            header = kind
    if phys is not None:
        _add_pci_address(_add(out, "capability", attrib=[("type", "phys_function")]), phys)
    if virt is not None:
        el = _add(out, "capability", attrib=[("type", "virt_functions"),
                                             ("maxCount", str(max_vfs) if max_vfs else None)])
        for addr in virt:
            _add_pci_address(el, addr)
    if header is not None:
        _add(out, "capability", attrib=[("type", header)])
    if mdev_src:
        merged = mdev_src[0]
        for extra in mdev_src[1:]:
            for t in extra.findall("type"):
                merged.append(t)
        _mdev_types(c, merged, out, 2)
    if vpd_src is not None:
        _vpd(c, vpd_src, out)
    group = src.find("iommuGroup")
    if group is not None:
        number_s = group.get("number")
        if number_s is None:
            raise fail(_D, "Missing required attribute 'number' in element 'iommuGroup'")
        number = parse_uint(number_s)
        if number is None:
            raise fail(_D, f"Invalid value for attribute 'number' in element 'iommuGroup': '{number_s}'. "
                           "Expected non-negative integer value")
        addrs = [parse_pci_address(a, _D) for a in group.findall("address")]
        if addrs:
            el = _add(out, "iommuGroup", attrib=[("number", _s32(number))])
            for addr in addrs:
                _add_pci_address(el, addr)
    numa = c.opt_int(attr(src.find("numa"), "node"), "NUMA node ID")
    if numa is not None and numa >= 0:
        _add(out, "numa", attrib=[("node", str(numa))])
    pcie = src.find("pci-express")
    if pcie is not None:
        el = _add(out, "pci-express")
        for validity in ("cap", "sta"):
            link = next((lk for lk in pcie.findall("link") if lk.get("validity") == validity), None)
            if link is not None:
                _pcie_link(c, link, validity, el)


def _hex_id(c: _Cap, tag: str, what: str) -> int:
    node = c.src.find(tag)
    raw = attr(node, "id")
    if raw is None:
        raise fail(_D, f"no {what} supplied for '{c.name}'", _INTERNAL)
    value = _xpath_uint(raw, 16)
    if value is None:
        raise fail(_D, f"invalid {what} supplied for '{c.name}'", _INTERNAL)
    return value


def _cap_usb_device(c: _Cap, out: Element) -> None:
    bus = c.uint("bus", "USB bus number")
    device = c.uint("device", "USB device number")
    vendor = _hex_id(c, "vendor", "USB vendor ID")
    product = _hex_id(c, "product", "USB product ID")
    _add(out, "bus", _s32(bus))
    _add(out, "device", _s32(device))
    _add(out, "product", c.text("product"), [("id", f"0x{product:04x}")])
    _add(out, "vendor", c.text("vendor"), [("id", f"0x{vendor:04x}")])


def _cap_usb(c: _Cap, out: Element) -> None:
    values = [c.uint("number", "USB interface number"), c.uint("class", "USB interface class"),
              c.uint("subclass", "USB interface subclass"), c.uint("protocol", "USB interface protocol")]
    for tag, value in zip(("number", "class", "subclass", "protocol"), values, strict=True):
        _add(out, tag, _s32(value))
    description = c.text("description")
    if description is not None:
        _add(out, "description", description)


def _cap_net(c: _Cap, out: Element) -> None:
    ifname = c.text("interface")
    if ifname is None:
        raise fail(_D, f"no network interface supplied for '{c.name}'", _INTERNAL)
    address = c.text("address")
    features: set[str] = set()
    for feat in c.src.findall("feature"):
        fname = feat.get("name")
        if fname is None:
            raise fail(_D, "missing network device feature name")
        if fname not in _NET_FEATURES:
            raise fail(_D, f"unknown network device feature '{fname}'")
        features.add(fname)
    subtype = attr(c.src.find("capability"), "type")
    if subtype is not None and subtype not in ("80203", "80211"):
        raise fail(_D, f"invalid network type supplied for '{c.name}'", _UNSUPPORTED)
    link = c.src.find("link")
    speed = 0
    state: str | None = None
    if link is not None:
        speed_s = link.get("speed")
        if speed_s is not None:
            parsed = parse_uint(speed_s)
            if parsed is None:
                raise fail(_D, f"Unable to parse link speed: {speed_s}")
            speed = parsed
        state = link.get("state")
        if state is not None and state not in _LINK_STATES:
            raise fail(_D, f"unknown link state: {state}")
    _add(out, "interface", ifname)
    if address is not None:
        _add(out, "address", address)
    if speed or (state is not None and state != "unknown"):
        _add(out, "link", attrib=[("speed", str(speed) if speed else None),
                                  ("state", state if state != "unknown" else None)])
    for fname in _NET_FEATURES:
        if fname in features:
            _add(out, "feature", attrib=[("name", fname)])
    if subtype is not None:
        _add(out, "capability", attrib=[("type", subtype)])


def _random_wwn() -> str:
    import random  # not at the top: only a vHBA without a WWN needs it

    return "5001a4a" + "".join(random.choice("0123456789abcdef") for _ in range(9))


def _cap_scsi_host(c: _Cap, out: Element) -> None:
    host = c.uint("host", "SCSI host ID")
    unique = c.opt_int(c.text("unique_id"), "unique_id")
    fc: tuple[str, str, str | None] | None = None
    vport = False
    for cap in c.src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, f"missing SCSI host capability type for '{c.name}'", _INTERNAL)
        if kind == "vport_ops":
            vport = True
        elif kind == "fc_host":
            fc = (child_text(cap, "wwnn") or _random_wwn(), child_text(cap, "wwpn") or _random_wwn(),
                  child_text(cap, "fabric_wwn"))
        else:
            raise fail(_D, f"unknown SCSI host capability type '{kind}' for '{c.name}'", _INTERNAL)
    _add(out, "host", _s32(host))
    if unique is not None and unique != -1:
        _add(out, "unique_id", str(unique))
    if fc is not None:
        el = _add(out, "capability", attrib=[("type", "fc_host")])
        _add(el, "wwnn", fc[0])
        _add(el, "wwpn", fc[1])
        if fc[2] is not None:
            _add(el, "fabric_wwn", fc[2])
    if vport:
        el = _add(out, "capability", attrib=[("type", "vport_ops")])
        _add(el, "max_vports", "0")
        _add(el, "vports", "0")


def _cap_scsi_target(c: _Cap, out: Element) -> None:
    target = c.text("target")
    if target is None:
        raise fail(_D, f"no target name supplied for '{c.name}'", _INTERNAL)
    rport: tuple[str, str] | None = None
    for cap in c.src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, f"missing type for SCSI target capability for '{c.name}'", _INTERNAL)
        if kind != "fc_remote_port":
            raise fail(_D, f"unknown SCSI target capability type '{kind}' for '{c.name}'", _INTERNAL)
        port = child_text(cap, "rport")
        if port is None:
            raise fail(_D, f"missing rport name for '{c.name}'", _INTERNAL)
        wwpn = child_text(cap, "wwpn")
        if wwpn is None:
            raise fail(_D, f"missing wwpn identifier for '{c.name}'", _INTERNAL)
        rport = (port, wwpn)
    _add(out, "target", target)
    if rport is not None:
        el = _add(out, "capability", attrib=[("type", "fc_remote_port")])
        _add(el, "rport", rport[0])
        _add(el, "wwpn", rport[1])


def _cap_scsi(c: _Cap, out: Element) -> None:
    values = [c.uint("host", "SCSI host ID"), c.uint("bus", "SCSI bus ID"),
              c.uint("target", "SCSI target ID"), c.uint("lun", "SCSI LUN ID")]
    for tag, value in zip(("host", "bus", "target", "lun"), values, strict=True):
        _add(out, tag, _s32(value))
    kind = c.text("type")
    if kind is not None:
        _add(out, "type", kind)


def _cap_storage(c: _Cap, out: Element) -> None:
    block = c.text("block")
    if block is None:
        raise fail(_D, f"no block device path supplied for '{c.name}'", _INTERNAL)
    removable: Element | None = None
    hotplug = False
    for cap in c.src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, f"missing storage capability type for '{c.name}'", _INTERNAL)
        if kind == "hotpluggable":
            hotplug = True
        elif kind == "removable":
            removable = cap
        else:
            raise fail(_D, f"unknown storage capability type '{kind}' for '{c.name}'", _INTERNAL)
    _add(out, "block", block)
    for tag in ("bus", "drive_type", "model", "vendor", "serial"):
        value = c.text(tag)
        if value is not None:
            _add(out, tag, value)
    if removable is not None:
        avail = any(text_of(m) == "1" for m in removable.findall("media_available"))
        size = c.ull("media_size", "removable media size", removable)
        label = child_text(removable, "media_label")
        lbs = c.ull("logical_block_size", "logical block size", removable, required=False)
        nblocks = c.ull("num_blocks", "number of blocks", removable, required=False)
        el = _add(out, "capability", attrib=[("type", "removable")])
        _add(el, "media_available", "1" if avail else "0")
        _add(el, "media_size", str(size))
        if label is not None:
            _add(el, "media_label", label)
    else:
        size = c.ull("size", "size")
        lbs = c.ull("logical_block_size", "logical block size", required=False)
        nblocks = c.ull("num_blocks", "number of blocks", required=False)
        el = out
        _add(out, "size", str(size))
    if lbs:
        _add(el, "logical_block_size", str(lbs))
    if nblocks:
        _add(el, "num_blocks", str(nblocks))
    if hotplug:
        _add(out, "capability", attrib=[("type", "hotpluggable")])


def _cap_drm(c: _Cap, out: Element) -> None:
    kind = c.text("type")
    if kind not in _DRM_TYPES:
        raise fail(_D, f"unknown drm type '{kind}' for '{c.name}'", _UNSUPPORTED)
    _add(out, "type", kind)


def _cap_mdev(c: _Cap, out: Element) -> None:
    type_id = attr(c.src.find("type"), "id")
    if type_id is None:
        raise fail(_D, f"missing type id attribute for '{c.name}'", _UNSUPPORTED)
    raw_uuid = c.text("uuid")
    canonical = None
    if raw_uuid is not None:
        canonical = parse_uuid(raw_uuid)
        if canonical is None:
            raise fail(_D, f"Invalid uuid '{raw_uuid}' for new mdev device", _INTERNAL)
    group = c.src.find("iommuGroup")
    number = 0
    if attr(group, "number") is not None:
        parsed = _xpath_uint(attr(group, "number"))
        if parsed is None:
            raise fail(_D, f"invalid iommuGroup number attribute for '{c.name}'", _INTERNAL)
        number = parsed
    _add(out, "type", attrib=[("id", type_id)])
    if canonical is not None:
        _add(out, "uuid", canonical)
    _add(out, "iommuGroup", attrib=[("number", str(number))])
    for node in c.src.findall("attr"):
        name, value = attr(node, "name"), attr(node, "value")
        if name is not None and value is not None:
            _add(out, "attr", attrib=[("name", name), ("value", value)])


def _cap_ccw(c: _Cap, out: Element) -> None:
    _ccw_address(c, c.src, out)


def _cap_css(c: _Cap, out: Element) -> None:
    _ccw_address(c, c.src, out)
    mdev_src: Element | None = None
    for cap in c.src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, "Missing capability type")
        if kind == "mdev_types":
            mdev_src = cap
    channel = c.src.find("channel_dev_addr")
    if channel is not None:
        _ccw_address(c, channel, _add(out, "channel_dev_addr"))
    if mdev_src is not None:
        _mdev_types(c, mdev_src, out, 2)


def _cap_ap_card(c: _Cap, out: Element) -> None:
    _ap_adapter(c, out)


def _cap_ap_queue(c: _Cap, out: Element) -> None:
    _ap_adapter(c, out)
    raw = c.text("ap-domain")
    if raw is None:
        raise fail(_D, f"missing ap-domain value for '{c.name}'", _UNSUPPORTED)
    value = parse_uint(raw, 0)
    if value is None:
        raise fail(_D, f"invalid ap-domain value '{raw}' for '{c.name}'", _UNSUPPORTED)
    if value > 255:
        raise fail(_D, f"ap-domain value '{raw}' is out of range for '{c.name}'", _UNSUPPORTED)
    _add(out, "ap-domain", f"0x{value:04x}")


def _cap_ap_matrix(c: _Cap, out: Element) -> None:
    for cap in c.src.findall("capability"):
        kind = cap.get("type")
        if kind is None:
            raise fail(_D, "Missing capability type")
        if kind == "mdev_types":
            _mdev_types(c, cap, out, 2)


_PARSERS = {
    "system": _cap_system, "pci": _cap_pci, "usb_device": _cap_usb_device, "usb": _cap_usb,
    "net": _cap_net, "scsi_host": _cap_scsi_host, "scsi_target": _cap_scsi_target, "scsi": _cap_scsi,
    "storage": _cap_storage, "drm": _cap_drm, "mdev": _cap_mdev, "ccw": _cap_ccw, "css": _cap_css,
    "ap_card": _cap_ap_card, "ap_queue": _cap_ap_queue, "ap_matrix": _cap_ap_matrix,
}


class NodeDeviceDocument(XMLDocument):
    """A ``<device>`` (host node device).  Options of :meth:`from_string`: ``validate=True``
    (``nodedev.rng``); ``create=True`` parses a definition for a new device (the name is not
    required, as ``virNodeDeviceCreateXML``/``DefineXML``: libvirt calls it 'new device')."""

    ROOT: ClassVar[str] = "device"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "nodedev"

    __slots__ = ()

    def post_parse(self, **options: Any) -> None:
        root = self.root
        strip_blanks(root)
        for tag in ("name", "path", "parent", "driver"):
            only_first(root, tag)
        name = child_text(root, "name")
        if name is None:
            if not options.get("create"):
                raise VirtError(ErrorNumber.NO_NAME, None, domain=_D)
            name = "new device"
        set_text(root, "name", name)
        set_text(root, "path", child_text(root, "path"))

        dev_node: Element | None = None
        for node in root.findall("devnode"):
            kind = node.get("type")
            if kind is None:
                raise fail(_D, "Missing required attribute 'type' in element 'devnode'")
            if kind not in ("dev", "link"):
                raise fail(_D, f"Invalid value for attribute 'type' in element 'devnode': '{kind}'.")
            value = node.text or ""
            node.attrib.clear()
            node.set("type", kind)
            for kid in list(node):
                node.remove(kid)
            node.text = value
            if kind == "dev":
                if dev_node is not None:
                    root.remove(dev_node)
                dev_node = node
        devnodes = root.findall("devnode")
        if dev_node is not None and devnodes[0] is not dev_node:
            root.remove(dev_node)
            devnodes[0].addprevious(dev_node)

        parent = root.find("parent")
        if parent is not None:
            wwnn, wwpn = attr(parent, "wwnn"), attr(parent, "wwpn")
            if wwnn and not wwpn:
                raise fail(_D, f"when providing parent wwnn='{wwnn}', the wwpn must also be provided")
            if wwpn and not wwnn:
                raise fail(_D, f"when providing parent wwpn='{wwpn}', the wwnn must also be provided")
            set_text(root, "parent", child_text(root, "parent"))

        driver = root.find("driver")
        if driver is not None:
            drv_name = child_text(driver, "name")
            if drv_name is None:
                root.remove(driver)
            else:
                driver.attrib.clear()
                for kid in list(driver):
                    driver.remove(kid)
                sub(driver, "name", text=drv_name)

        caps = root.findall("capability")
        if not caps:
            raise fail(_D, f"no device capabilities for '{name}'", _INTERNAL)
        for cap in caps:
            kind = cap.get("type")
            if kind is None:
                raise fail(_D, "Missing required attribute 'type' in element 'capability'")
            if kind not in CAPABILITY_TYPES:
                raise fail(_D, f"Invalid value for attribute 'type' in element 'capability': '{kind}'.")
            if kind not in _PARSABLE:
                raise fail(_D, f"unknown capability type '{CAPABILITY_TYPES.index(kind)}' for '{name}'", _INTERNAL)
            out = cap.makeelement("capability", {"type": kind})
            _PARSERS[kind](_Cap(name, cap, out), out)
            if len(out) == 0:
                keep_open(out, 1)
            cap.addprevious(out)
            root.remove(cap)
        arrange(root, _ROOT_ORDER)

    def to_string(self, **options: Any) -> str:
        out = ["<device>"]
        for child in self.root:
            if not isinstance(child.tag, str):
                continue
            if child.tag == "capability" and child.get("type") == "usb_device":
                lines = format_element(child, 2)
                out.extend(_usb_id_quirk(line) for line in lines)
            else:
                format_element(child, 2, out)
        out.append("</device>")
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- accessors
    @property
    def name(self) -> str:
        return self.root.findtext("name") or ""

    @property
    def parent(self) -> str | None:
        return self.root.findtext("parent") or None

    @property
    def sysfs_path(self) -> str | None:
        return self.root.findtext("path") or None

    @property
    def driver(self) -> str | None:
        return self.root.findtext("driver/name") or None

    def capability_types(self) -> tuple[str, ...]:
        """Every capability the device has, nested ones included, in libvirt's order
        (``virNodeDeviceCapsListExport``: e.g. ``scsi_host`` then ``fc_host``, ``vports``)."""
        out: list[str] = []
        for cap in self.root.findall("capability"):
            kind = cap.get("type") or ""
            out.append(kind)
            nested = {c.get("type") for c in cap.findall("capability")}
            if kind == "scsi_host":
                out.extend(t for t, n in (("fc_host", "fc_host"), ("vports", "vport_ops")) if n in nested)
            elif kind in ("pci", "css", "ap_matrix"):
                out.extend(t for t in ("mdev_types", "vpd") if t in nested)
        return tuple(out)

    def capability(self, kind: str) -> Element | None:
        """The top-level ``<capability type=kind>`` element (read-only use)."""
        for cap in self.root.findall("capability"):
            if cap.get("type") == kind:
                return cap
        return None


def _usb_id_quirk(line: str) -> str:
    # libvirt prints an unnamed USB product/vendor as "<product id='0x0001' />" (with a space)
    stripped = line.lstrip()
    if stripped.startswith(("<product id=", "<vendor id=")) and line.endswith("'/>"):
        return line[:-2] + " />"
    return line
