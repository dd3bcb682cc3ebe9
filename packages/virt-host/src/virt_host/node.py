"""The host's node information for local drivers: the ``host-node`` provider.

It answers, for every driver whose :class:`~virt.plugin.DriverSpec` ``accepts`` ``"node"``,
what libvirt's local drivers answer from the host itself:

* ``virNodeGetInfo``, ``virNodeGetCPUStats``, ``virNodeGetMemoryStats``,
  ``virNodeGetCellsFreeMemory``, ``virNodeGetFreeMemory`` (:mod:`virt_host._node_info`);
* ``virConnectGetSysinfo`` (:mod:`virt_host._node_dmi`);
* node devices, ``virConnectListAllNodeDevices`` and ``virNodeDeviceGetXMLDesc``
  (:mod:`virt_host._node_devices`);
* host interfaces, read-only: ``virConnectListAllInterfaces``, ``virInterfaceLookupByName``,
  ``virInterfaceGetXMLDesc`` (:mod:`virt_host._node_iface`).  Defining, starting or changing
  host interfaces is not supported: those hooks stay unimplemented (``NO_SUPPORT``).

Everything is read when asked (these calls are cheap and monitoring tools poll them); only the
PCI ID database is kept, once per process.  The provider holds no state of its own, so every
connection may share one.
"""

from __future__ import annotations

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import InterfaceRef, NodeDeviceRef, NodeInfo
from virt.plugin import DriverSpec, OpenRequest

from virt_host import _node_info
from virt_host._sysfs import SysRoot

__all__ = ["NODEDEV_CAP_BITS", "NodeProvider"]

#: VIR_CONNECT_LIST_NODE_DEVICES_CAP_* by capability name
NODEDEV_CAP_BITS = {
    "system": 1 << 0, "pci": 1 << 1, "usb_device": 1 << 2, "usb": 1 << 3, "net": 1 << 4, "scsi_host": 1 << 5,
    "scsi_target": 1 << 6, "scsi": 1 << 7, "storage": 1 << 8, "fc_host": 1 << 9, "vports": 1 << 10,
    "scsi_generic": 1 << 11, "drm": 1 << 12, "mdev_types": 1 << 13, "mdev": 1 << 14, "ccw": 1 << 15,
    "css": 1 << 16, "vdpa": 1 << 17, "ap_card": 1 << 18, "ap_queue": 1 << 19, "ap_matrix": 1 << 20,
    "vpd": 1 << 21,
}
_NODEDEV_INACTIVE, _NODEDEV_ACTIVE = 1 << 30, 1 << 31
_NODEDEV_FLAGS = sum(NODEDEV_CAP_BITS.values()) | _NODEDEV_INACTIVE | _NODEDEV_ACTIVE
_IFACE_FLAGS = 1 | 2
_IFACE_XML_INACTIVE = 1


def _check_flags(flags: int, allowed: int, function: str, domain: ErrorDomain = ErrorDomain.NONE) -> None:
    """libvirt's ``virCheckFlags``."""
    if flags & ~allowed:
        message = f"unsupported flags (0x{flags & ~allowed:x}) in function {function}"
        raise VirtError(ErrorNumber.INVALID_ARG, message, domain=domain, message=message)


class NodeProvider:
    """Implements the node hooks from the host's ``/proc`` and ``/sys`` (under ``root``)."""

    def __init__(self, root: str = "/") -> None:
        self.host = SysRoot(root)

    @classmethod
    def open(cls, request: OpenRequest, spec: DriverSpec) -> NodeProvider:
        return cls()

    # -- CPUs and memory ------------------------------------------------------------------------

    @hookimpl
    def virt_node_get_info(self) -> NodeInfo:
        return _node_info.node_info(self.host)

    @hookimpl
    def virt_node_get_cpu_stats(self, cpu_num: int, flags: int) -> dict[str, int]:
        _check_flags(flags, 0, "virHostCPUGetStats")
        return _node_info.cpu_stats(self.host, cpu_num)

    @hookimpl
    def virt_node_get_memory_stats(self, cell_num: int, flags: int) -> dict[str, int]:
        _check_flags(flags, 0, "virHostMemGetStats")
        return _node_info.memory_stats(self.host, cell_num)

    @hookimpl
    def virt_node_get_cells_free_memory(self, start_cell: int, max_cells: int) -> list[int]:
        return _node_info.cells_free_memory(self.host, start_cell, max_cells)

    @hookimpl
    def virt_node_get_free_memory(self) -> int:
        return _node_info.free_memory(self.host)

    @hookimpl
    def virt_connect_get_sysinfo(self, flags: int) -> str:
        _check_flags(flags, 0, "virConnectGetSysinfo")
        from virt_host._node_dmi import sysinfo_xml

        return sysinfo_xml(self.host)

    # -- node devices -----------------------------------------------------------------------

    @hookimpl
    def virt_nodedev_list(self, cap: str | None, flags: int) -> list[NodeDeviceRef]:
        _check_flags(flags, _NODEDEV_FLAGS, "nodeConnectListAllNodeDevices", ErrorDomain.NODEDEV)
        from virt_host._node_devices import enumerate_devices

        wanted = {name for name, bit in NODEDEV_CAP_BITS.items() if flags & bit}
        if cap is not None:
            wanted = wanted & {cap} if wanted else {cap}
            if not wanted:
                return []
        # every host device is active; only defined-but-not-started mediated devices are not
        if flags & _NODEDEV_INACTIVE and not flags & _NODEDEV_ACTIVE:
            return []
        return [NodeDeviceRef(dev.name, dev.parent) for dev in enumerate_devices(self.host, self._real)
                if not wanted or dev.caps & wanted]

    @hookimpl
    def virt_nodedev_get_xml(self, name: str, flags: int) -> str:
        _check_flags(flags, 0, "nodeDeviceGetXMLDesc", ErrorDomain.NODEDEV)
        from virt_host._node_devices import enumerate_devices, no_device

        for dev in enumerate_devices(self.host, self._real):
            if dev.name == name:
                return dev.xml(self.host)
        raise no_device(name)

    @property
    def _real(self) -> bool:
        return not self.host.root

    # -- host interfaces --------------------------------------------------------------------

    @hookimpl
    def virt_interface_list(self, flags: int) -> list[InterfaceRef]:
        _check_flags(flags, _IFACE_FLAGS, "udevConnectListAllInterfaces", ErrorDomain.INTERFACE)
        from virt_host._node_iface import interface_refs

        return interface_refs(self.host, flags)

    @hookimpl
    def virt_interface_lookup_by_name(self, name: str) -> InterfaceRef:
        from virt_host._node_iface import lookup_interface

        return lookup_interface(self.host, name)

    @hookimpl
    def virt_interface_get_xml(self, name: str, flags: int) -> str:
        _check_flags(flags, _IFACE_XML_INACTIVE, "udevInterfaceGetXMLDesc", ErrorDomain.INTERFACE)
        from virt_host._node_iface import interface_xml

        return interface_xml(self.host, name)
