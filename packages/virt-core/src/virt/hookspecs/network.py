"""Virtual network hooks.  A network is named in every hook by its ``uuid``."""

from __future__ import annotations

from virt._markers import operation
from virt._records import NetworkDHCPLease, NetworkRef


@operation("virNetworkDefineXMLFlags", mutating=True)
def virt_network_define_xml(xml: str, flags: int) -> NetworkRef:
    """:param xml: the ``<network>`` XML.
    :param flags: ``VIR_NETWORK_DEFINE_VALIDATE`` (1).
    :returns: the persistent network.

    .. versionadded:: 0.1
    """


@operation("virNetworkCreateXMLFlags", mutating=True)
def virt_network_create_xml(xml: str, flags: int) -> NetworkRef:
    """Start a transient network.

    :param xml: the ``<network>`` XML.
    :param flags: ``VIR_NETWORK_CREATE_VALIDATE`` (1).
    :returns: the running network.

    .. versionadded:: 0.1
    """


@operation("virNetworkUndefine", mutating=True)
def virt_network_undefine(uuid: str) -> None:
    """:param uuid: the network.

    .. versionadded:: 0.1
    """


@operation("virNetworkLookupByName")
def virt_network_lookup_by_name(name: str) -> NetworkRef:
    """:param name: the network name.
    :returns: the network.
    :raises VirtError: ``NO_NETWORK`` ("no network with matching name 'x'").

    .. versionadded:: 0.1
    """


@operation("virNetworkLookupByUUID")
def virt_network_lookup_by_uuid(uuid: str) -> NetworkRef:
    """:param uuid: the network UUID.
    :returns: the network.

    .. versionadded:: 0.1
    """


@operation("virConnectListAllNetworks")
def virt_network_list(flags: int) -> list[NetworkRef]:
    """:param flags: ``VIR_CONNECT_LIST_NETWORKS_*`` filter bits (0 = all).
    :returns: the matching networks, sorted by name.

    .. versionadded:: 0.1
    """


@operation("virNetworkCreate", mutating=True)
def virt_network_create(uuid: str) -> None:
    """Start a defined network.

    :param uuid: the network.

    .. versionadded:: 0.1
    """


@operation("virNetworkDestroy", mutating=True)
def virt_network_destroy(uuid: str) -> None:
    """Stop the network, removing what starting it made (a transient one disappears).

    :param uuid: the network.

    .. versionadded:: 0.1
    """


@operation("virNetworkGetXMLDesc")
def virt_network_get_xml(uuid: str, flags: int) -> str:
    """:param uuid: the network.
    :param flags: ``VIR_NETWORK_XML_INACTIVE`` (1).
    :returns: the ``<network>`` XML.

    .. versionadded:: 0.1
    """


@operation("virNetworkIsActive")
def virt_network_is_active(uuid: str) -> bool:
    """:param uuid: the network.
    :returns: whether it is running.

    .. versionadded:: 0.1
    """


@operation("virNetworkIsPersistent")
def virt_network_is_persistent(uuid: str) -> bool:
    """:param uuid: the network.
    :returns: whether it has a persistent config.

    .. versionadded:: 0.1
    """


@operation("virNetworkGetAutostart")
def virt_network_get_autostart(uuid: str) -> bool:
    """:param uuid: the network.
    :returns: whether it starts with the node.

    .. versionadded:: 0.1
    """


@operation("virNetworkSetAutostart", mutating=True)
def virt_network_set_autostart(uuid: str, autostart: bool) -> None:
    """:param uuid: the network.
    :param autostart: start it with the node.

    .. versionadded:: 0.1
    """


@operation("virNetworkGetBridgeName")
def virt_network_get_bridge_name(uuid: str) -> str:
    """:param uuid: the network.
    :returns: its bridge device's name.

    .. versionadded:: 0.1
    """


@operation("virNetworkGetDHCPLeases")
def virt_network_get_dhcp_leases(uuid: str, mac: str | None, flags: int) -> list[NetworkDHCPLease]:
    """:param uuid: the network.
    :param mac: only leases of this MAC address, or None.
    :param flags: reserved, 0.
    :returns: the DHCP leases handed out on the network.

    .. versionadded:: 0.1
    """


@operation("virNetworkUpdate", mutating=True)
def virt_network_update(uuid: str, command: int, section: int, parent_index: int, xml: str,
                        flags: int) -> None:
    """Change one part of a network's config (live, persistent or both).

    :param uuid: the network.
    :param command: ``VIR_NETWORK_UPDATE_COMMAND_*`` (modify 1, delete 2, add-last 3, add-first 4).
    :param section: ``VIR_NETWORK_SECTION_*`` (bridge 1, domain 2, ip 3, ip-dhcp-host 4, ...).
    :param parent_index: which ``<ip>`` the section belongs to, -1 for the first.
    :param xml: the element to add, change or remove.
    :param flags: ``VIR_NETWORK_UPDATE_AFFECT_LIVE`` (1), ``_CONFIG`` (2).

    .. versionadded:: 0.1
    """
