"""The host's node devices, read from sysfs as libvirt's udev backend (``node_device_udev.c``)
sees them.

Devices, their names (``<subsystem>_<sysname>[_<extra>]`` with every character that is not a
letter or digit made ``_``) and capabilities:

* ``computer`` (``system``): the machine, from the DMI files; its UUID is the SMBIOS one,
  else ``/etc/machine-id`` (libvirt's ``host_uuid_source='machine-id'``).
* ``pci_DDDD_BB_SS_F`` (``pci``): class, address, vendor and product ids, their names from the
  PCI ID database (``pci.ids``, read once per process), SR-IOV functions, mediated device
  types, IOMMU group, NUMA node, PCI Express link (from the config space, or sysfs' link files
  when the extended config space is unreadable), bridge header type.
* ``usb_<sysname>`` (``usb_device``) and ``usb_<sysname>`` of an interface (``usb``).
* ``net_<ifname>_<mac>`` (``net``): address, link state and speed, offload features.
* ``scsi_hostN``, ``scsi_targetH_B_T``, ``scsi_H_B_T_L`` (``scsi_host``, ``scsi_target``,
  ``scsi``).
* ``block_<name>[_<serial>]`` (``storage``): disks, CD-ROMs, SD cards and floppies; loop, RAM,
  zram, device-mapper and md devices are not node devices (udev gives them no drive type).
  Sizes are the kernel's 512-byte sector count in bytes, and ``num_blocks`` that size in
  logical blocks; libvirt multiplies the sector count by the logical block size, which
  overstates drives with 4 KiB (or 2 KiB CD-ROM) blocks: the one place this differs on purpose.
* ``drm_<name>`` (``drm``).

A device's parent is the nearest device up its sysfs path, else ``computer``.  udev's database
(``/run/udev/data``) gives what sysfs does not (serial numbers, drive types, device links);
without it the kernel's own files are used, so a host without udevd still reports its disks.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
from collections.abc import Callable

from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.nodedev import NodeDeviceDocument

from virt_host._node_dmi import dmi_identity
from virt_host._sysfs import SysRoot, UdevRecord, pci_names

__all__ = ["Device", "NetLink", "device_name", "enumerate_devices", "ethtool_features", "link_info"]

_Element = etree._Element


def device_name(*parts: str) -> str:
    """``nodeDeviceGenerateName``: the parts joined by ``_``, every non-alphanumeric made ``_``."""
    return "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in "_".join(parts))


class Device:
    """One node device: its name, sysfs path, parent, capability names, and how to describe it."""

    __slots__ = ("build", "caps", "name", "parent", "path")

    def __init__(self, name: str, path: str | None, caps: frozenset[str],
                 build: Callable[[_Element], None]) -> None:
        self.name = name
        self.path = path
        self.parent: str | None = None
        self.caps = caps
        self.build = build

    def xml(self, host: SysRoot) -> str:
        root = etree.Element("device")
        etree.SubElement(root, "name").text = self.name
        if self.path:
            etree.SubElement(root, "path").text = self.path
        self.build(root)
        if self.parent:
            parent = etree.Element("parent")
            parent.text = self.parent
            # <parent> goes after <name>, <path> and <devnode>s, before <driver>
            anchor = root.find("driver")
            if anchor is None:
                anchor = root.find("capability")
            if anchor is not None:
                anchor.addprevious(parent)
            else:
                root.append(parent)
        if self.path:
            driver = host.link_name(f"{self.path}/driver")
            if driver:
                cap = root.find("capability")
                el = etree.Element("driver")
                etree.SubElement(el, "name").text = driver
                if cap is not None:
                    cap.addprevious(el)
                else:
                    root.append(el)
        doc = NodeDeviceDocument(root)
        doc.post_parse()
        return doc.to_string()


def _add(parent: _Element, tag: str, text: str | None = None, **attrib: str | None) -> _Element:
    el = etree.SubElement(parent, tag)
    for key, value in attrib.items():
        if value is not None:
            el.set(key, value)
    if text is not None:
        el.text = text
    return el


def _cap(root: _Element, kind: str) -> _Element:
    return _add(root, "capability", type=kind)


def _uevent(host: SysRoot, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in host.lines(f"{path}/uevent"):
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def _devnodes(root: _Element, dev: str | None, links: list[str]) -> None:
    if dev:
        _add(root, "devnode", dev, type="dev")
        for link in links:
            _add(root, "devnode", link, type="link")


# -- the machine ------------------------------------------------------------------------------


def _machine_uuid(host: SysRoot, ident: dict[str, str]) -> str:
    uuid = ident.get("product_uuid")
    if uuid and len(uuid.replace("-", "")) == 32:
        return uuid.lower()
    machine_id = (host.read("/etc/machine-id") or "").lower()
    if len(machine_id) == 32 and all(c in "0123456789abcdef" for c in machine_id):
        m = machine_id
        return f"{m[:8]}-{m[8:12]}-{m[12:16]}-{m[16:20]}-{m[20:]}"
    return "00000000-0000-0000-0000-000000000000"


def _computer(host: SysRoot) -> Device:
    def build(root: _Element) -> None:
        ident = dmi_identity(host)
        cap = _cap(root, "system")
        if "product_name" in ident:
            _add(cap, "product", ident["product_name"])
        hw = _add(cap, "hardware")
        for tag, key in (("vendor", "sys_vendor"), ("version", "product_version"), ("serial", "product_serial")):
            if key in ident:
                _add(hw, tag, ident[key])
        _add(hw, "uuid", _machine_uuid(host, ident))
        fw = _add(cap, "firmware")
        for tag, key in (("vendor", "bios_vendor"), ("version", "bios_version"), ("release_date", "bios_date")):
            if key in ident:
                _add(fw, tag, ident[key])

    return Device("computer", None, frozenset({"system"}), build)


# -- PCI --------------------------------------------------------------------------------------

_PCIE_SPEEDS = {1: "2.5", 2: "5", 3: "8", 4: "16", 5: "32", 6: "64"}
_PCI_BUS = "/sys/bus/pci/devices"


def _pci_address(text: str) -> tuple[int, int, int, int] | None:
    try:
        dom, bus, rest = text.split(":")
        slot, func = rest.split(".")
        return int(dom, 16), int(bus, 16), int(slot, 16), int(func, 16)
    except ValueError:
        return None


def _add_pci_address(parent: _Element, addr: tuple[int, int, int, int]) -> None:
    dom, bus, slot, func = addr
    _add(parent, "address", domain=f"0x{dom:04x}", bus=f"0x{bus:02x}", slot=f"0x{slot:02x}", function=f"0x{func}")


def _sysfs_link_speed(text: str | None) -> str | None:
    """``8.0 GT/s PCIe`` -> ``8``."""
    if not text:
        return None
    number = text.split()[0]
    try:
        value = float(number)
    except ValueError:
        return None
    speed = f"{value:g}"
    return speed if speed in _PCIE_SPEEDS.values() else None


def _pci_express(host: SysRoot, path: str, config: bytes) -> _Element | None:
    """``<pci-express>`` from the PCI Express capability, or from sysfs' link files."""
    if len(config) >= 0x40 and struct.unpack_from("<H", config, 0x06)[0] & 0x10:
        ptr = config[0x34] & 0xFC
        seen = 0
        while ptr >= 0x40 and ptr + 0x14 <= len(config) and seen < 48:
            seen += 1
            if config[ptr] == 0x10:
                el = etree.Element("pci-express")
                flags = struct.unpack_from("<H", config, ptr + 2)[0]
                kind = (flags >> 4) & 0xF
                if kind in (0x9, 0xA):  # root-complex integrated endpoint or event collector: no link
                    return el
                cap, sta = struct.unpack_from("<I", config, ptr + 0x0C)[0], struct.unpack_from("<H", config,
                                                                                               ptr + 0x12)[0]
                _add(el, "link", validity="cap", port=str((cap >> 24) & 0xFF), speed=_PCIE_SPEEDS.get(cap & 0xF),
                     width=str((cap >> 4) & 0x3F))
                _add(el, "link", validity="sta", speed=_PCIE_SPEEDS.get(sta & 0xF), width=str((sta >> 4) & 0x3F))
                return el
            ptr = config[ptr + 1] & 0xFC
        if len(config) > 0x40:
            return None  # the whole standard space was read: not PCI Express
    max_speed = _sysfs_link_speed(host.read(f"{path}/max_link_speed"))
    max_width = host.read_int(f"{path}/max_link_width")
    if max_speed is None and max_width is None:
        return None
    el = etree.Element("pci-express")
    if max_width is not None:
        _add(el, "link", validity="cap", speed=max_speed, width=str(max_width))
    width = host.read_int(f"{path}/current_link_width")
    if width is not None:
        _add(el, "link", validity="sta", speed=_sysfs_link_speed(host.read(f"{path}/current_link_speed")),
             width=str(width))
    return el


def _pci_device(host: SysRoot, sysname: str, path: str) -> Device | None:
    addr = _pci_address(sysname)
    if addr is None:
        return None
    caps = {"pci"}
    mdev_dir = f"{path}/mdev_supported_types"
    mdev_types = host.listdir(mdev_dir)
    if mdev_types:
        caps.add("mdev_types")

    def build(root: _Element) -> None:
        cap = _cap(root, "pci")
        klass = host.read_int(f"{path}/class", 16)
        if klass is not None:
            _add(cap, "class", f"0x{klass:06x}")
        dom, bus, slot, func = addr
        for tag, value in (("domain", dom), ("bus", bus), ("slot", slot), ("function", func)):
            _add(cap, tag, str(value))
        vendor = host.read_int(f"{path}/vendor", 16) or 0
        product = host.read_int(f"{path}/device", 16) or 0
        vendor_name, product_name = pci_names(host, vendor, product)
        _add(cap, "product", product_name, id=f"0x{product:04x}")
        _add(cap, "vendor", vendor_name, id=f"0x{vendor:04x}")
        physfn = host.link_name(f"{path}/physfn")
        if physfn and (paddr := _pci_address(physfn)):
            _add_pci_address(_cap(cap, "phys_function"), paddr)
        total_vfs = host.read_int(f"{path}/sriov_totalvfs")
        vfs = sorted((int(e[6:]), e) for e in host.listdir(path) if e.startswith("virtfn") and e[6:].isdigit())
        if total_vfs or vfs:
            el = _add(cap, "capability", type="virt_functions", maxCount=str(total_vfs) if total_vfs else None)
            for _, entry in vfs:
                vf = host.link_name(f"{path}/{entry}")
                if vf and (vaddr := _pci_address(vf)):
                    _add_pci_address(el, vaddr)
        config = host.read_bytes(f"{path}/config", 4096) or b""
        if len(config) > 0x0E:
            header = config[0x0E] & 0x7F
            if header in (1, 2):
                _cap(cap, "pci-bridge" if header == 1 else "cardbus-bridge")
        if mdev_types:
            el = _add(cap, "capability", type="mdev_types")
            for type_id in mdev_types:
                tdir = f"{mdev_dir}/{type_id}"
                t = _add(el, "type", id=type_id)
                name = host.read(f"{tdir}/name")
                if name:
                    _add(t, "name", name)
                _add(t, "deviceAPI", host.read(f"{tdir}/device_api") or "")
                _add(t, "availableInstances", str(host.read_int(f"{tdir}/available_instances") or 0))
        group = host.link_name(f"{path}/iommu_group")
        if group and group.isdigit():
            el = _add(cap, "iommuGroup", number=group)
            for member in host.listdir(f"/sys/kernel/iommu_groups/{group}/devices"):
                maddr = _pci_address(member)
                if maddr:
                    _add_pci_address(el, maddr)
        numa = host.read_int(f"{path}/numa_node")
        if numa is not None and numa >= 0:
            _add(cap, "numa", node=str(numa))
        pcie = _pci_express(host, path, config)
        if pcie is not None:
            cap.append(pcie)

    return Device(device_name("pci", sysname), path, frozenset(caps), build)


# -- USB --------------------------------------------------------------------------------------


def _usb_device(host: SysRoot, sysname: str, path: str) -> Device | None:
    event = _uevent(host, path)
    kind = event.get("DEVTYPE")
    if kind == "usb_interface":
        def build_interface(root: _Element) -> None:
            cap = _cap(root, "usb")
            for tag, attr in (("number", "bInterfaceNumber"), ("class", "bInterfaceClass"),
                              ("subclass", "bInterfaceSubClass"), ("protocol", "bInterfaceProtocol")):
                _add(cap, tag, str(host.read_int(f"{path}/{attr}", 16) or 0))

        return Device(device_name("usb", sysname), path, frozenset({"usb"}), build_interface)
    if kind != "usb_device":
        return None

    def build(root: _Element) -> None:
        devname = event.get("DEVNAME")
        major, minor = event.get("MAJOR"), event.get("MINOR")
        record = host.udev(f"c{major}:{minor}") if major and minor else UdevRecord({}, [])
        _devnodes(root, "/dev/" + devname if devname else None, record.links)
        cap = _cap(root, "usb_device")
        _add(cap, "bus", str(host.read_int(f"{path}/busnum") or 0))
        _add(cap, "device", str(host.read_int(f"{path}/devnum") or 0))
        product = host.read_int(f"{path}/idProduct", 16) or 0
        vendor = host.read_int(f"{path}/idVendor", 16) or 0
        _add(cap, "product", record.get("ID_MODEL_FROM_DATABASE") or host.read(f"{path}/product"),
             id=f"0x{product:04x}")
        _add(cap, "vendor", record.get("ID_VENDOR_FROM_DATABASE") or host.read(f"{path}/manufacturer"),
             id=f"0x{vendor:04x}")

    return Device(device_name("usb", sysname), path, frozenset({"usb_device"}), build)


# -- network ----------------------------------------------------------------------------------

_LINK_STATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
_SIOCETHTOOL = 0x8946
# (feature, ethtool command, bit of its value: 0 = the value itself)
_ETHTOOL_VALUES = (("rx", 0x14), ("tx", 0x16), ("sg", 0x18), ("tso", 0x1E), ("gso", 0x23), ("gro", 0x2B))
_ETHTOOL_GFLAGS = 0x25
_ETHTOOL_FLAGS = (("lro", 1 << 15), ("rxvlan", 1 << 8), ("txvlan", 1 << 7), ("ntuple", 1 << 27),
                  ("rxhash", 1 << 28))


class NetLink:
    """``virNetDevGetLinkInfo``: the operational state and, when up, the speed in Mbit/s."""

    __slots__ = ("speed", "state")

    def __init__(self, state: str, speed: int) -> None:
        self.state = state
        self.speed = speed


def link_info(host: SysRoot, ifname: str) -> NetLink:
    base = f"/sys/class/net/{ifname}"
    state = host.read(f"{base}/operstate") or "unknown"
    if state not in _LINK_STATES:
        state = "unknown"
    speed = 0
    if state == "up":
        # several drivers report nonsense (-1, 65535) for a link that is not up; -1 also
        # means unknown (virtio): libvirt shows no speed then
        value = host.read_int(f"{base}/speed")
        if value is not None and value > 0 and value != 0xFFFFFFFF:
            speed = value
    return NetLink(state, speed)


def _ethtool(sock: socket.socket, ifname: str, cmd: int) -> int | None:
    data = ctypes.create_string_buffer(struct.pack("=II", cmd, 0), 8)
    name = ifname.encode()[:15]
    request = struct.pack("16sP", name, ctypes.addressof(data)).ljust(40, b"\0")
    try:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, request)
    except OSError:
        return None
    return int(struct.unpack("=II", data.raw)[1])


def ethtool_features(ifname: str) -> list[str]:
    """``virNetDevGetFeatures``: the offloads the interface has switched on (the real host's,
    through the ethtool ioctl; empty when it cannot be asked)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return []
    out: list[str] = []
    with sock:
        for feature, cmd in _ETHTOOL_VALUES:
            if _ethtool(sock, ifname, cmd):
                out.append(feature)
        flags = _ethtool(sock, ifname, _ETHTOOL_GFLAGS)
        if flags:
            out += [feature for feature, bit in _ETHTOOL_FLAGS if flags & bit]
    return out


def _net_device(host: SysRoot, ifname: str, path: str, real_host: bool) -> Device:
    base = f"/sys/class/net/{ifname}"
    mac = host.read(f"{base}/address") or ""
    devtype = _uevent(host, path).get("DEVTYPE")

    def build(root: _Element) -> None:
        cap = _cap(root, "net")
        _add(cap, "interface", ifname)
        if mac:
            _add(cap, "address", mac)
        link = link_info(host, ifname)
        if link.speed or link.state != "unknown":
            _add(cap, "link", speed=str(link.speed) if link.speed else None,
                 state=link.state if link.state != "unknown" else None)
        if real_host:
            for feature in ethtool_features(ifname):
                _add(cap, "feature", name=feature)
        _cap(cap, "80211" if devtype == "wlan" else "80203")

    return Device(device_name("net", ifname, mac) if mac else device_name("net", ifname), path,
                  frozenset({"net"}), build)


# -- SCSI -------------------------------------------------------------------------------------

_SCSI_TYPES = {0: "disk", 1: "tape", 3: "processor", 4: "worm", 5: "cdrom", 6: "scanner", 7: "mod",
               8: "changer", 0xC: "raid", 0xD: "enclosure"}


def _scsi_device(host: SysRoot, sysname: str, path: str) -> Device | None:
    devtype = _uevent(host, path).get("DEVTYPE")
    if devtype == "scsi_host" and sysname.startswith("host") and sysname[4:].isdigit():
        number = int(sysname[4:])

        def build_host(root: _Element) -> None:
            cap = _cap(root, "scsi_host")
            _add(cap, "host", str(number))
            unique = host.read_int(f"{path}/scsi_host/{sysname}/unique_id")
            if unique is not None:
                _add(cap, "unique_id", str(unique))
            fc = f"{path}/fc_host/{sysname}"
            if host.isdir(fc):
                el = _cap(cap, "fc_host")
                for tag, attr in (("wwnn", "node_name"), ("wwpn", "port_name"), ("fabric_wwn", "fabric_name")):
                    value = host.read(f"{fc}/{attr}")
                    if value:
                        _add(el, tag, value.removeprefix("0x"))
            if host.exists(f"{path}/scsi_host/{sysname}/vport_create"):
                _cap(cap, "vport_ops")

        caps = {"scsi_host"}
        if host.isdir(f"{path}/fc_host/{sysname}"):
            caps.add("fc_host")
        if host.exists(f"{path}/scsi_host/{sysname}/vport_create"):
            caps.add("vports")
        return Device(device_name("scsi", sysname), path, frozenset(caps), build_host)
    if devtype == "scsi_target":
        def build_target(root: _Element) -> None:
            _add(_cap(root, "scsi_target"), "target", sysname)

        return Device(device_name("scsi", sysname), path, frozenset({"scsi_target"}), build_target)
    if devtype == "scsi_device":
        try:
            numbers = [int(part) for part in sysname.split(":")]
        except ValueError:
            return None
        if len(numbers) != 4:
            return None

        def build_device(root: _Element) -> None:
            cap = _cap(root, "scsi")
            for tag, value in zip(("host", "bus", "target", "lun"), numbers, strict=True):
                _add(cap, tag, str(value))
            kind = host.read_int(f"{path}/type")
            if kind is not None and kind in _SCSI_TYPES:
                _add(cap, "type", _SCSI_TYPES[kind])

        return Device(device_name("scsi", sysname), path, frozenset({"scsi"}), build_device)
    return None


# -- block devices ----------------------------------------------------------------------------


def _drive_type(host: SysRoot, name: str, record: UdevRecord) -> str | None:
    kind = record.get("ID_TYPE")
    if kind and kind != "generic":
        return kind
    for prop, value in (("ID_DRIVE_FLOPPY", "floppy"), ("ID_CDROM", "cd"), ("ID_DRIVE_FLASH_SD", "sd")):
        if record.get(prop) == "1":
            return value
    if name.startswith(("vd", "xvd", "pmem")):
        return "disk"
    if record.props:
        return None  # udev knows the device and gave it no type: libvirt skips it
    # no udev database: what udev's rules would have said
    if name.startswith("nvme"):
        return "disk"
    if name.startswith("mmcblk"):
        return "sd"
    scsi_type = host.read_int(f"/sys/block/{name}/device/type")
    if scsi_type in (0, 7, 0xE):
        return "disk"
    if scsi_type in (4, 5):
        return "cd"
    if name.startswith("fd"):
        return "floppy"
    return None


def _block_device(host: SysRoot, name: str, path: str) -> Device | None:
    base = f"/sys/block/{name}"
    dev = host.read(f"{base}/dev")
    record = host.udev(f"b{dev}") if dev else UdevRecord({}, [])
    kind = _drive_type(host, name, record)
    if kind not in ("disk", "cd", "sd", "floppy"):
        return None
    serial = record.get("ID_SERIAL") or host.read(f"{base}/serial") or host.read(f"{base}/device/serial") or None
    removable = host.read_int(f"{base}/removable") == 1

    def build(root: _Element) -> None:
        links = record.links or _disk_links(host, name)
        _devnodes(root, f"/dev/{name}", links)
        cap = _cap(root, "storage")
        _add(cap, "block", f"/dev/{name}")
        bus = record.get("ID_BUS")
        if bus:
            _add(cap, "bus", bus)
        _add(cap, "drive_type", "cdrom" if kind == "cd" else kind)
        model = host.read(f"{base}/device/model")
        if model:
            _add(cap, "model", model)
        vendor = host.read(f"{base}/device/vendor")
        if vendor:
            _add(cap, "vendor", vendor)
        if serial:
            _add(cap, "serial", serial)
        sectors = host.read_int(f"{base}/size") or 0
        block_size = host.read_int(f"{base}/queue/logical_block_size") or 512
        size = sectors * 512
        if kind in ("disk", "sd"):
            _add(cap, "size", str(size))
            _add(cap, "logical_block_size", str(block_size))
            _add(cap, "num_blocks", str(size // block_size))
            return
        # CD-ROMs and floppies: what is in the drive, as udev says (else: has it a size)
        if record.props:
            media = record.get("ID_CDROM_MEDIA") == "1" if kind == "cd" else record.get("ID_FS_LABEL") is not None
        else:
            media = size > 0
        el = _cap(cap, "removable") if removable else cap
        if removable:
            _add(el, "media_available", "1" if media else "0")
            _add(el, "media_size", str(size if media else 0))
            label = record.get("ID_FS_LABEL")
            if media and label:
                _add(el, "media_label", label)
        else:
            _add(el, "size", "0")  # libvirt knows no size of a fixed drive with media
        if media:
            _add(el, "logical_block_size", str(block_size))
            _add(el, "num_blocks", str(size // block_size))

    return Device(device_name("block", name, serial) if serial else device_name("block", name), path,
                  frozenset({"storage"}), build)


def _disk_links(host: SysRoot, name: str) -> list[str]:
    """``/dev/disk/by-*`` links to ``/dev/NAME`` (what udev's database would list)."""
    out: list[str] = []
    for kind in host.listdir("/dev/disk"):
        directory = f"/dev/disk/{kind}"
        for entry in host.listdir(directory):
            target = host.link_name(f"{directory}/{entry}")
            if target == name:
                out.append(f"{directory}/{entry}")
    return out


# -- DRM --------------------------------------------------------------------------------------


def _drm_device(host: SysRoot, name: str, path: str) -> Device | None:
    if name.startswith("card") and name[4:].isdigit():
        kind = "primary"
    elif name.startswith("controlD"):
        kind = "control"
    elif name.startswith("renderD"):
        kind = "render"
    else:
        return None

    def build(root: _Element) -> None:
        _devnodes(root, f"/dev/dri/{name}", [])
        _add(_cap(root, "drm"), "type", kind)

    return Device(device_name("drm", name), path, frozenset({"drm"}), build)


# -- all of them ------------------------------------------------------------------------------


def enumerate_devices(host: SysRoot, real_host: bool = True) -> list[Device]:
    """Every node device of the host, parents before children, each with its parent's name."""
    found: list[Device] = [_computer(host)]
    for sysname in host.listdir(_PCI_BUS):
        dev = _pci_device(host, sysname, host.realpath(f"{_PCI_BUS}/{sysname}"))
        if dev:
            found.append(dev)
    for sysname in host.listdir("/sys/bus/usb/devices"):
        dev = _usb_device(host, sysname, host.realpath(f"/sys/bus/usb/devices/{sysname}"))
        if dev:
            found.append(dev)
    for ifname in host.listdir("/sys/class/net"):
        path = host.realpath(f"/sys/class/net/{ifname}")
        if host.isdir(path):
            found.append(_net_device(host, ifname, path, real_host))
    for sysname in host.listdir("/sys/bus/scsi/devices"):
        dev = _scsi_device(host, sysname, host.realpath(f"/sys/bus/scsi/devices/{sysname}"))
        if dev:
            found.append(dev)
    for name in host.listdir("/sys/block"):
        dev = _block_device(host, name, host.realpath(f"/sys/block/{name}"))
        if dev:
            found.append(dev)
    for name in host.listdir("/sys/class/drm"):
        dev = _drm_device(host, name, host.realpath(f"/sys/class/drm/{name}"))
        if dev:
            found.append(dev)
    by_path = {dev.path: dev.name for dev in found if dev.path}
    for dev in found:
        if dev.path is None:
            continue
        parent = "computer"
        up = os.path.dirname(dev.path)
        while up not in ("/", "/sys", "/sys/devices", ""):
            known = by_path.get(up)
            if known is not None:
                parent = known
                break
            up = os.path.dirname(up)
        dev.parent = parent
    # parents before children: by depth in sysfs (computer first)
    found.sort(key=lambda d: (-1 if d.path is None else d.path.count("/")))
    return found


def no_device(name: str) -> VirtError:
    return VirtError(ErrorNumber.NO_NODE_DEVICE, f"no node device with matching name '{name}'",
                     domain=ErrorDomain.NODEDEV)
