"""Node, capabilities, node device and interface hooks of the test driver.

What libvirt's test driver reports about its pretend host: the node info of the node file, the
NUMA cells of ``test:///default`` (a node file has none), fixed CPU statistics and sysinfo,
the x86 CPU model list, and the ``<interface>`` and ``<device>`` objects of the node file.
Secrets, network filters, node memory statistics and domain capabilities are not implemented
by libvirt's test driver either: those hooks stay unimplemented, so calls fail with
``NO_SUPPORT`` naming the libvirt API, as libvirt's do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt.drivers.test._state import NodeState, Plain, check_flags

# The XML modules (lxml) are imported where a document is made: a CLI start needs none of them.
if TYPE_CHECKING:
    from virt.xml._base import Element
    from virt.xml.interface import InterfaceDocument
    from virt.xml.nodedev import NodeDeviceDocument

__all__ = [
    "CPU_MODELS",
    "MAX_VCPUS",
    "NODEDEV_CAP_BITS",
    "SYSINFO",
    "CellCPU",
    "HostOps",
    "NumaCell",
    "capabilities_xml",
    "load_from_node",
]

_D = ErrorDomain.TEST

#: ``testConnectGetSysinfo``'s fixed answer
SYSINFO = (
    "<sysinfo type='smbios'>\n"
    "  <bios>\n"
    "    <entry name='vendor'>LENOVO</entry>\n"
    "    <entry name='version'>G4ETA1WW (2.61 )</entry>\n"
    "    <entry name='date'>05/07/2014</entry>\n"
    "    <entry name='release'>2.61</entry>\n"
    "  </bios>\n"
    "</sysinfo>\n"
)

#: ``testConnectGetMaxVcpus``: the most vCPUs a test domain may have
MAX_VCPUS = 32
_EMULATOR = "/usr/bin/test-hv"
_HOST_PAGE_SIZES = (4, 8, 2048, 1024 * 1024)  # KiB

# libvirt's CPU map (cpu_map/index.xml of libvirt 9.0): the models of each CPU driver.
_X86_MODELS = (
    "486", "pentium", "pentium2", "pentium3", "pentiumpro", "coreduo", "n270", "core2duo", "qemu32", "kvm32",
    "cpu64-rhel5", "cpu64-rhel6", "qemu64", "kvm64", "Conroe", "Penryn", "Nehalem", "Nehalem-IBRS", "Westmere",
    "Westmere-IBRS", "SandyBridge", "SandyBridge-IBRS", "IvyBridge", "IvyBridge-IBRS", "Haswell-noTSX",
    "Haswell-noTSX-IBRS", "Haswell", "Haswell-IBRS", "Broadwell-noTSX", "Broadwell-noTSX-IBRS", "Broadwell",
    "Broadwell-IBRS", "Skylake-Client", "Skylake-Client-IBRS", "Skylake-Client-noTSX-IBRS", "Skylake-Server",
    "Skylake-Server-IBRS", "Skylake-Server-noTSX-IBRS", "Cascadelake-Server", "Cascadelake-Server-noTSX",
    "Icelake-Client", "Icelake-Client-noTSX", "Icelake-Server", "Icelake-Server-noTSX", "Cooperlake",
    "Snowridge", "athlon", "phenom", "Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5",
    "EPYC", "EPYC-IBPB", "EPYC-Rome", "EPYC-Milan", "Dhyana",
)
_PPC64_MODELS = ("POWER6", "POWER7", "POWER8", "POWER9", "POWER10", "POWERPC_e5500", "POWERPC_e6500")
#: CPU models by architecture; an empty tuple means the CPU driver accepts any model
CPU_MODELS: dict[str, tuple[str, ...]] = {
    "i686": _X86_MODELS, "x86_64": _X86_MODELS, "ppc64": _PPC64_MODELS, "ppc64le": _PPC64_MODELS,
    "s390": (), "s390x": (), "armv6l": (), "armv7l": (), "armv7b": (), "aarch64": (),
}
# Every architecture libvirt knows (virArch), for "cannot find architecture" vs "not supported".
_ARCHES = frozenset({
    "alpha", "armv6l", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32", "loongarch64", "m68k",
    "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc", "parisc64",
    "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "riscv32", "riscv64", "s390", "s390x", "sh4", "sh4eb",
    "sparc", "sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb",
})

# testNodeGetCPUStats: the same cumulative times (ns) whatever the CPU.
_CPU_STATS = {"user": 9797400000, "kernel": 34678723400000, "idle": 87264900000, "iowait": 763600000}

#: VIR_CONNECT_LIST_NODE_DEVICES_CAP_* by capability name
NODEDEV_CAP_BITS = {
    "system": 1 << 0, "pci": 1 << 1, "usb_device": 1 << 2, "usb": 1 << 3, "net": 1 << 4, "scsi_host": 1 << 5,
    "scsi_target": 1 << 6, "scsi": 1 << 7, "storage": 1 << 8, "fc_host": 1 << 9, "vports": 1 << 10,
    "scsi_generic": 1 << 11, "drm": 1 << 12, "mdev_types": 1 << 13, "mdev": 1 << 14, "ccw": 1 << 15,
    "css": 1 << 16, "vdpa": 1 << 17, "ap_card": 1 << 18, "ap_queue": 1 << 19, "ap_matrix": 1 << 20,
    "vpd": 1 << 21,
}
_NODEDEV_CAP_FILTERS = sum(NODEDEV_CAP_BITS.values())
# Capabilities a device also has when one of its capabilities holds a nested one.
_NESTED_CAPS = {
    "scsi_host": {"fc_host": "fc_host", "vport_ops": "vports"},
    "pci": {"mdev_types": "mdev_types", "vpd": "vpd"},
    "css": {"mdev_types": "mdev_types"},
    "ap_matrix": {"mdev_types": "mdev_types"},
}

_IFACE_INACTIVE, _IFACE_ACTIVE = 1, 2


class CellCPU(Plain):
    """One CPU of a NUMA cell as the capabilities' topology lists it (never changed)."""

    __slots__ = ("core_id", "die_id", "id", "siblings", "socket_id")

    def __init__(self, id: int, socket_id: int, core_id: int, siblings: str, die_id: int = 0) -> None:
        self.id = id
        self.socket_id = socket_id
        self.core_id = core_id
        self.siblings = siblings
        self.die_id = die_id


class NumaCell(Plain):
    """A NUMA cell: ``memory`` in KiB; ``free`` is what libvirt's test driver adds up for
    ``virNodeGetFreeMemory`` (its per-cell free-memory call reports ``memory`` instead).
    Never changed."""

    __slots__ = ("cpus", "free", "id", "memory")

    def __init__(self, id: int, memory: int, free: int, cpus: tuple[CellCPU, ...] = ()) -> None:
        self.id = id
        self.memory = memory
        self.free = free
        self.cpus = cpus


class InterfaceObj(Plain):
    __slots__ = ("active", "definition", "mac", "name")

    def __init__(self, name: str, mac: str, definition: InterfaceDocument, active: bool = True) -> None:
        self.name = name
        self.mac = mac
        self.definition = definition
        self.active = active


class NodeDeviceObj(Plain):
    __slots__ = ("caps", "definition", "name", "parent")

    def __init__(self, name: str, parent: str | None, definition: NodeDeviceDocument,
                 caps: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.parent = parent
        self.definition = definition
        self.caps = caps


def _int_attr(elem: Element, name: str, default: int | None = None) -> int:
    text = elem.get(name)
    if text is None:
        if default is None:
            raise VirtError(ErrorNumber.XML_ERROR, f"missing {name} in <{elem.tag}> of the node's NUMA cells",
                            domain=_D)
        return default
    try:
        return int(text)
    except ValueError:
        raise VirtError(ErrorNumber.XML_ERROR, f"invalid {name} '{text}' in <{elem.tag}> of the node's NUMA cells",
                        domain=_D) from None


def _parse_cells(numa: Element) -> list[NumaCell]:
    cells: list[NumaCell] = []
    for cell in numa.findall("cell"):
        cpus = tuple(
            CellCPU(id=_int_attr(cpu, "id"), socket_id=_int_attr(cpu, "socket_id", 0),
                    core_id=_int_attr(cpu, "core_id", 0), die_id=_int_attr(cpu, "die_id", 0),
                    siblings=cpu.get("siblings") or cpu.get("id") or "")
            for cpu in cell.findall("cpu")
        )
        cells.append(NumaCell(id=_int_attr(cell, "id", len(cells)), memory=_int_attr(cell, "memory"),
                              free=_int_attr(cell, "free", 0), cpus=cpus))
    return cells


def _device_caps(root: Element) -> frozenset[str]:
    caps: set[str] = set()
    for cap in root.findall("capability"):
        kind = cap.get("type") or ""
        caps.add(kind)
        nested = _NESTED_CAPS.get(kind)
        if nested:
            for sub in cap.findall("capability"):
                extra = nested.get(sub.get("type") or "")
                if extra:
                    caps.add(extra)
    return frozenset(caps)


def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """The NUMA cells (our ``<numa>`` extension), ``<interface>`` and ``<device>`` children."""
    from virt.drivers.test._loader import child_xml
    from virt.xml.interface import InterfaceDocument
    from virt.xml.nodedev import NodeDeviceDocument

    numa = root.find("numa")
    if numa is not None:
        node.cells = _parse_cells(numa)
    ifaces = root.findall("interface")
    if ifaces:
        for elem in ifaces:
            idoc = InterfaceDocument.from_string(child_xml(elem, base_dir))
            node.interfaces[idoc.name] = InterfaceObj(name=idoc.name, mac=idoc.mac or "", definition=idoc)
    devices = root.findall("device")
    if devices:
        for elem in devices:
            ddoc = NodeDeviceDocument.from_string(child_xml(elem, base_dir))
            node.nodedevs[ddoc.name] = NodeDeviceObj(name=ddoc.name, parent=ddoc.parent, definition=ddoc,
                                                     caps=_device_caps(ddoc.root))


_VPORT_TEMPLATE, _VPORT_NAME = "scsi_host11", "scsi_host12"


def create_vport(node: NodeState, wwnn: str, wwpn: str) -> None:
    """libvirt's test driver mock of a vHBA: ``scsi_host11`` copied as ``scsi_host12`` with the
    pool adapter's WWNs (what a ``fc_host`` storage pool creates)."""
    from virt.xml.nodedev import NodeDeviceDocument

    template: NodeDeviceObj | None = node.nodedevs.get(_VPORT_TEMPLATE)
    if template is None:
        raise VirtError(ErrorNumber.NO_NODE_DEVICE, f"no node device with matching name '{_VPORT_TEMPLATE}'",
                        domain=_D)
    root = template.definition.copy().root
    name = root.find("name")
    if name is not None:
        name.text = _VPORT_NAME
    for cap in root.findall("capability"):
        if cap.get("type") != "scsi_host":
            continue
        fc_host = next((c for c in cap.findall("capability") if c.get("type") == "fc_host"), None)
        if fc_host is not None:
            for tag, value in (("wwnn", wwnn), ("wwpn", wwpn)):
                el = fc_host.find(tag)
                if el is not None:
                    el.text = value
        else:
            for tag in ("host", "unique_id"):
                el = cap.find(tag)
                if el is not None and (el.text or "").strip().isdigit():
                    el.text = str(int((el.text or "").strip()) + 1)
    from virt.xml._base import format_element

    doc = NodeDeviceDocument.from_string("\n".join(format_element(root)))
    node.nodedevs[doc.name] = NodeDeviceObj(name=doc.name, parent=doc.parent, definition=doc,
                                            caps=_device_caps(doc.root))


def destroy_vport(node: NodeState) -> None:
    """Remove the vHBA :func:`create_vport` made (the test driver knows it by name)."""
    if node.nodedevs.pop(_VPORT_NAME, None) is None:
        raise VirtError(ErrorNumber.NO_NODE_DEVICE, f"no node device with matching name '{_VPORT_NAME}'",
                        domain=_D)


def capabilities_xml(cells: list[NumaCell]) -> str:
    """``virCapabilitiesFormatXML`` of the capabilities ``testBuildCapabilities`` makes."""
    from virt.xml._base import escape

    out = ["<capabilities>", "", "  <host>", "    <cpu>", "      <arch>i686</arch>", "      <features>",
           "        <pae/>", "        <nonpae/>", "      </features>"]
    out += [f"      <pages unit='KiB' size='{size}'/>" for size in _HOST_PAGE_SIZES]
    out += ["    </cpu>", "    <power_management/>", "    <iommu support='no'/>", "    <topology>",
            f"      <cells num='{len(cells)}'>"]
    for index, cell in enumerate(cells):
        # The test driver gives cell 1 8 KiB base pages, every other cell 4 KiB ones.
        base = _HOST_PAGE_SIZES[1] if index == 1 else _HOST_PAGE_SIZES[0]
        out += [f"        <cell id='{cell.id}'>", f"          <memory unit='KiB'>{cell.memory}</memory>",
                f"          <pages unit='KiB' size='{base}'>{cell.memory // base}</pages>"]
        out += [f"          <pages unit='KiB' size='{size}'>0</pages>" for size in _HOST_PAGE_SIZES[2:]]
        out.append(f"          <cpus num='{len(cell.cpus)}'>")
        out += [f"            <cpu id='{cpu.id}' socket_id='{cpu.socket_id}' die_id='{cpu.die_id}' "
                f"core_id='{cpu.core_id}' siblings='{escape(cpu.siblings)}'/>" for cpu in cell.cpus]
        out += ["          </cpus>", "        </cell>"]
    out += ["      </cells>", "    </topology>", "    <secmodel>", f"      <model>{SECURITY_MODEL}</model>",
            f"      <doi>{SECURITY_DOI}</doi>", "    </secmodel>", "  </host>", ""]
    for os_type in ("hvm", "xen"):
        out += ["  <guest>", f"    <os_type>{os_type}</os_type>", "    <arch name='i686'>",
                "      <wordsize>32</wordsize>", f"      <emulator>{_EMULATOR}</emulator>",
                "      <domain type='test'/>", "    </arch>", "    <features>", "      <pae/>",
                "      <nonpae/>", "    </features>", "  </guest>", ""]
    out.append("</capabilities>")
    return "\n".join(out) + "\n"


def _iface_ref(iface: InterfaceObj) -> R.InterfaceRef:
    return R.InterfaceRef(name=iface.name, mac=iface.mac, active=iface.active)


# libvirt's test driver: one security model, and one label on every running domain.
SECURITY_MODEL, SECURITY_DOI = "testSecurity", ""
RUNNING_LABEL = ("libvirt-test", True)


class HostOps:
    """Implements :mod:`virt.hookspecs.node` and the node parts of ``connection``."""

    node: NodeState

    # -- the node ---------------------------------------------------------------------------

    @hookimpl
    def virt_node_get_security_model(self) -> R.SecurityModel:
        return R.SecurityModel(model=SECURITY_MODEL, doi=SECURITY_DOI)

    @hookimpl
    def virt_node_get_info(self) -> R.NodeInfo:
        return self.node.node_info

    @hookimpl
    def virt_node_get_cells_free_memory(self, start_cell: int, max_cells: int) -> list[int]:
        if start_cell < 0:
            raise VirtError(ErrorNumber.INVALID_ARG,
                            "startCell in virNodeGetCellsFreeMemory must be zero or greater", domain=_D)
        if max_cells <= 0:
            raise VirtError(ErrorNumber.INVALID_ARG,
                            "maxCells in virNodeGetCellsFreeMemory must be greater than zero", domain=_D)
        with self.node.lock:
            cells = self.node.cells
            if start_cell >= len(cells):
                raise VirtError(ErrorNumber.INVALID_ARG, "Range exceeds available cells", domain=_D)
            # libvirt's test driver reports each cell's memory size here, not its free memory.
            return [cell.memory for cell in cells[start_cell:start_cell + max_cells]]

    @hookimpl
    def virt_node_get_free_memory(self) -> int:
        with self.node.lock:
            return sum(cell.free for cell in self.node.cells)

    @hookimpl
    def virt_node_get_cpu_stats(self, cpu_num: int, flags: int) -> dict[str, int]:
        if cpu_num < -1:
            raise VirtError(ErrorNumber.INVALID_ARG, "cpuNum in virNodeGetCPUStats must be -1 or greater",
                            domain=_D)
        check_flags(flags, 0, "testNodeGetCPUStats")
        return dict(_CPU_STATS)

    @hookimpl
    def virt_connect_get_capabilities(self) -> str:
        with self.node.lock:
            return capabilities_xml(self.node.cells)

    @hookimpl
    def virt_connect_get_sysinfo(self, flags: int) -> str:
        check_flags(flags, 0, "testConnectGetSysinfo")
        return SYSINFO

    @hookimpl
    def virt_connect_get_max_vcpus(self, type: str | None) -> int:
        return MAX_VCPUS

    @hookimpl
    def virt_connect_get_cpu_model_names(self, arch: str, flags: int) -> list[str]:
        check_flags(flags, 0, "testConnectGetCPUModelNames")
        if arch not in _ARCHES:
            raise VirtError(ErrorNumber.INVALID_ARG, f"cannot find architecture {arch}", domain=_D)
        models = CPU_MODELS.get(arch)
        if models is None:
            raise VirtError(ErrorNumber.NO_SUPPORT, f"'{arch}' architecture is not supported by CPU driver",
                            domain=ErrorDomain.CPU)
        return list(models)

    # -- node devices -----------------------------------------------------------------------

    @hookimpl
    def virt_nodedev_list(self, cap: str | None, flags: int) -> list[R.NodeDeviceRef]:
        check_flags(flags, _NODEDEV_CAP_FILTERS, "testConnectListAllNodeDevices")
        wanted = {name for name, bit in NODEDEV_CAP_BITS.items() if flags & bit}
        if cap is not None:
            wanted = wanted & {cap} if wanted else {cap}
            if not wanted:
                return []
        with self.node.lock:
            return [R.NodeDeviceRef(dev.name, dev.parent) for dev in self.node.nodedevs.values()
                    if not wanted or dev.caps & wanted]

    @hookimpl
    def virt_nodedev_get_xml(self, name: str, flags: int) -> str:
        check_flags(flags, 0, "testNodeDeviceGetXMLDesc")
        with self.node.lock:
            dev: NodeDeviceObj | None = self.node.nodedevs.get(name)
            if dev is None:
                raise VirtError(ErrorNumber.NO_NODE_DEVICE, f"no node device with matching name '{name}'",
                                domain=_D)
            return dev.definition.to_string()

    # -- host interfaces --------------------------------------------------------------------

    def _iface(self, name: str) -> InterfaceObj:
        iface: InterfaceObj | None = self.node.interfaces.get(name)
        if iface is None:
            raise VirtError(ErrorNumber.NO_INTERFACE, f"no interface with matching name '{name}'", domain=_D)
        return iface

    @hookimpl
    def virt_interface_list(self, flags: int) -> list[R.InterfaceRef]:
        check_flags(flags, _IFACE_INACTIVE | _IFACE_ACTIVE, "testConnectListAllInterfaces")
        with self.node.lock:
            ifaces = [
                i for i in self.node.interfaces.values()
                if not flags & (_IFACE_ACTIVE | _IFACE_INACTIVE)
                or (flags & _IFACE_ACTIVE and i.active) or (flags & _IFACE_INACTIVE and not i.active)
            ]
        ifaces.sort(key=lambda i: i.name)
        return [_iface_ref(i) for i in ifaces]

    @hookimpl
    def virt_interface_lookup_by_name(self, name: str) -> R.InterfaceRef:
        with self.node.lock:
            return _iface_ref(self._iface(name))

    @hookimpl
    def virt_interface_get_xml(self, name: str, flags: int) -> str:
        check_flags(flags, 0, "testInterfaceGetXMLDesc")
        with self.node.lock:
            return self._iface(name).definition.to_string()
