"""virt: manage virtual machines and containers on a node, locally or remotely.

    import virt

    with virt.open("test:///default") as conn:
        for dom in conn.list_domains():
            print(dom.name, dom.state())

The API follows libvirt's (names, XML formats, error codes); drivers are plugins.
"""

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
