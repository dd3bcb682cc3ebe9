"""virt: manage virtual machines and containers on a node, locally or remotely.

    import virt

    with virt.open("test:///default") as conn:
        for dom in conn.list_domains():
            print(dom.name, dom.state())

The API follows libvirt's (names, XML formats, error codes); drivers are plugins.
libvirt's flag and enum constants are in the submodule :mod:`virt.flags` (``from virt import flags``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virt._connection import (
        Connection,
        Domain,
        Interface,
        Network,
        NodeDevice,
        Snapshot,
        StoragePool,
        StorageVolume,
        open,
    )
    from virt._errors import ErrorDomain, ErrorNumber, VirtError
    from virt._markers import hookimpl
    from virt._records import (
        BlockInfo,
        BlockStats,
        DomainEvent,
        DomainEventType,
        DomainInfo,
        DomainInterface,
        DomainRef,
        DomainState,
        Event,
        InterfaceRef,
        InterfaceStats,
        IPAddress,
        NetworkDHCPLease,
        NetworkEvent,
        NetworkEventType,
        NetworkInfo,
        NetworkRef,
        NodeDeviceRef,
        NodeInfo,
        PoolEvent,
        PoolEventType,
        PoolInfo,
        PoolRef,
        PoolState,
        SecretRef,
        SecurityLabel,
        SecurityModel,
        VcpuInfo,
        VolumeInfo,
        VolumeRef,
        VolumeType,
    )
    from virt._uri import URI, parse_uri

__version__ = "0.1.0"
#: The libvirt release whose API, formats and behaviour this version follows (9.0.0).
LIBVIRT_COMPAT_VERSION = 9000000

__all__ = [
    "LIBVIRT_COMPAT_VERSION",
    "URI",
    "BlockInfo",
    "BlockStats",
    "Connection",
    "Domain",
    "DomainEvent",
    "DomainEventType",
    "DomainInfo",
    "DomainInterface",
    "DomainRef",
    "DomainState",
    "ErrorDomain",
    "ErrorNumber",
    "Event",
    "IPAddress",
    "Interface",
    "InterfaceRef",
    "InterfaceStats",
    "Network",
    "NetworkDHCPLease",
    "NetworkEvent",
    "NetworkEventType",
    "NetworkInfo",
    "NetworkRef",
    "NodeDevice",
    "NodeDeviceRef",
    "NodeInfo",
    "PoolEvent",
    "PoolEventType",
    "PoolInfo",
    "PoolRef",
    "PoolState",
    "SecretRef",
    "SecurityLabel",
    "SecurityModel",
    "Snapshot",
    "StoragePool",
    "StorageVolume",
    "VcpuInfo",
    "VirtError",
    "VolumeInfo",
    "VolumeRef",
    "VolumeType",
    "__version__",
    "hookimpl",
    "open",
    "parse_uri",
]

# The public names are imported on first use (PEP 562), not by ``import virt``: ``virt.cli``
# is a subpackage, so importing the CLI runs this file first, and the CLI must be able to
# parse its arguments and find its command before it pays for the plugin framework and the
# records (``virt -c test:///default list --all`` needs them, ``virt help`` does not).
_SOURCES = {
    "virt._connection": ("Connection", "Domain", "Interface", "Network", "NodeDevice", "Snapshot",
                         "StoragePool", "StorageVolume", "open"),
    "virt._errors": ("ErrorDomain", "ErrorNumber", "VirtError"),
    "virt._markers": ("hookimpl",),
    "virt._records": ("BlockInfo", "BlockStats", "DomainEvent", "DomainEventType", "DomainInfo",
                      "DomainInterface", "DomainRef", "DomainState", "Event", "InterfaceRef",
                      "InterfaceStats", "IPAddress", "NetworkDHCPLease", "NetworkEvent",
                      "NetworkEventType", "NetworkInfo", "NetworkRef", "NodeDeviceRef", "NodeInfo",
                      "PoolEvent", "PoolEventType", "PoolInfo", "PoolRef", "PoolState", "SecretRef",
                      "SecurityLabel", "SecurityModel", "VcpuInfo", "VolumeInfo", "VolumeRef",
                      "VolumeType"),
    "virt._uri": ("URI", "parse_uri"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'virt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
