"""virt's host plugin: Linux host resources for local drivers, as ``virt.plugins`` providers.

Storage pools and volumes (``dir``, ``fs``, ``logical``) serve every driver whose
:class:`~virt.plugin.DriverSpec` ``accepts`` ``"storage"``; virtual networks
(:mod:`virt_host.network`) those that accept ``"network"``.  This module is imported whenever
a connection is opened, so it stays tiny: the provider itself is imported by its factory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from virt.plugin import ConnectionPlugin, DriverSpec, OpenRequest, hookimpl

if TYPE_CHECKING:
    from virt_host.network import NetworkProvider
    from virt_host.node import NodeProvider
    from virt_host.storage import StorageProvider

__all__ = ["network_factory", "node_factory", "storage_factory", "virt_register_connection_plugins"]


def storage_factory(request: OpenRequest, spec: DriverSpec) -> StorageProvider | None:
    """The host storage provider of one connection (None: the URI has no local storage)."""
    from virt_host.storage import StorageProvider

    return StorageProvider.open(request, spec)


def network_factory(request: OpenRequest, spec: DriverSpec) -> NetworkProvider | None:
    """The host network provider of one connection (None: the URI has no local networks)."""
    from virt_host.network import NetworkProvider

    return NetworkProvider.open(request, spec)


def node_factory(request: OpenRequest, spec: DriverSpec) -> NodeProvider | None:
    """The host's node information (CPUs, memory, devices, interfaces) for one connection."""
    from virt_host.node import NodeProvider

    return NodeProvider.open(request, spec)


@hookimpl
def virt_register_connection_plugins() -> Iterable[ConnectionPlugin]:
    return [ConnectionPlugin(name="host-storage", kind="provider", area="storage", factory=storage_factory),
            ConnectionPlugin(name="host-network", kind="provider", area="network", factory=network_factory),
            ConnectionPlugin(name="host-node", kind="provider", area="node", factory=node_factory)]
