"""Node hooks: the physical machine's CPUs, memory, NUMA cells, devices and interfaces."""

from __future__ import annotations

from virt._markers import operation
from virt._records import InterfaceRef, NodeDeviceRef, NodeInfo, SecretRef, SecurityModel


@operation("virNodeGetInfo")
def virt_node_get_info() -> NodeInfo:
    """:returns: the node's CPU model, memory (KiB), CPU count and topology.

    .. versionadded:: 0.1
    """


@operation("virNodeGetSecurityModel")
def virt_node_get_security_model() -> SecurityModel:
    """:returns: the security driver confining guests (SELinux, AppArmor...) and its DOI;
        ``model`` is "" when there is none.

    .. versionadded:: 0.1
    """


@operation("virNodeGetCellsFreeMemory")
def virt_node_get_cells_free_memory(start_cell: int, max_cells: int) -> list[int]:
    """:param start_cell: the first NUMA cell.
    :param max_cells: how many cells at most.
    :returns: free memory of each cell, in bytes.

    .. versionadded:: 0.1
    """


@operation("virNodeGetFreeMemory")
def virt_node_get_free_memory() -> int:
    """:returns: the node's free memory in bytes.

    .. versionadded:: 0.1
    """


@operation("virNodeGetCPUStats")
def virt_node_get_cpu_stats(cpu_num: int, flags: int) -> dict[str, int]:
    """:param cpu_num: a CPU number, or -1 for the total.
    :param flags: reserved, 0.
    :returns: cumulative times in nanoseconds keyed ``user``, ``system``, ``idle``, ``iowait``...

    .. versionadded:: 0.1
    """


@operation("virNodeGetMemoryStats")
def virt_node_get_memory_stats(cell_num: int, flags: int) -> dict[str, int]:
    """:param cell_num: a NUMA cell, or -1 for the whole node.
    :param flags: reserved, 0.
    :returns: KiB keyed ``total``, ``free``, ``buffers``, ``cached``.

    .. versionadded:: 0.1
    """


@operation("virConnectListAllNodeDevices")
def virt_nodedev_list(cap: str | None, flags: int) -> list[NodeDeviceRef]:
    """:param cap: only devices with this capability (``pci``, ``net``), or None for all.
    :param flags: libvirt's ``VIR_CONNECT_LIST_NODE_DEVICES_*`` bits.
    :returns: the node devices, parents before children.

    .. versionadded:: 0.1
    """


@operation("virNodeDeviceGetXMLDesc")
def virt_nodedev_get_xml(name: str, flags: int) -> str:
    """:param name: the device name.
    :param flags: reserved, 0.
    :returns: the ``<device>`` XML.
    :raises VirtError: ``NO_NODE_DEVICE`` when there is no such device.

    .. versionadded:: 0.1
    """


@operation("virConnectListAllInterfaces")
def virt_interface_list(flags: int) -> list[InterfaceRef]:
    """:param flags: ``VIR_CONNECT_LIST_INTERFACES_ACTIVE`` (2), ``_INACTIVE`` (1) or 0 for both.
    :returns: the host's network interfaces.

    .. versionadded:: 0.1
    """


@operation("virInterfaceLookupByName")
def virt_interface_lookup_by_name(name: str) -> InterfaceRef:
    """:param name: an interface name.
    :returns: the interface.
    :raises VirtError: ``NO_INTERFACE`` when there is none of that name.

    .. versionadded:: 0.1
    """


@operation("virInterfaceGetXMLDesc")
def virt_interface_get_xml(name: str, flags: int) -> str:
    """:param name: the interface name.
    :param flags: ``VIR_INTERFACE_XML_INACTIVE`` (1) or 0.
    :returns: the ``<interface>`` XML.

    .. versionadded:: 0.1
    """


@operation("virConnectListAllSecrets")
def virt_secret_list(flags: int) -> list[SecretRef]:
    """:param flags: libvirt's ``VIR_CONNECT_LIST_SECRETS_*`` bits.
    :returns: the secrets the connection knows.

    .. versionadded:: 0.1
    """
