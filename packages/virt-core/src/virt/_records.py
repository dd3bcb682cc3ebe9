"""Plain-data records and enums that cross the driver contract.

Everything here is a frozen attrs class of str/int/float/bool/bytes/enums/tuples, or an enum:
that is what lets the remote plugin carry any hook as name + keyword arguments.
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "STATE_NAMES",
    "BlockInfo",
    "BlockStats",
    "DomainEvent",
    "DomainEventType",
    "DomainInfo",
    "DomainInterface",
    "DomainRef",
    "DomainState",
    "DomainStateReason",
    "Event",
    "IPAddress",
    "InterfaceRef",
    "InterfaceStats",
    "NetworkDHCPLease",
    "NetworkEvent",
    "NetworkEventType",
    "NetworkInfo",
    "NetworkRef",
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
    "VcpuInfo",
    "VolumeInfo",
    "VolumeRef",
    "VolumeType",
    "state_reason_name",
]


class DomainState(enum.IntEnum):
    """libvirt's ``virDomainState``."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7


# What virsh prints for each state.
STATE_NAMES = {
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "idle",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "in shutdown",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}


class DomainStateReason:
    """The reason codes per state, as libvirt numbers them (``VIR_DOMAIN_<STATE>_<REASON>``)."""

    RUNNING = ("unknown", "booted", "migrated", "restored", "from snapshot", "unpaused",
               "migration canceled", "save canceled", "event wakeup", "crashed",
               "post-copy", "post-copy failed")
    BLOCKED = ("unknown",)
    PAUSED = ("unknown", "user", "migrating", "saving", "dumping", "I/O error", "watchdog",
              "from snapshot", "shutting down", "creating snapshot", "crashed", "starting up",
              "post-copy", "post-copy failed", "api error")
    SHUTDOWN = ("unknown", "user")
    SHUTOFF = ("unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
               "from snapshot", "daemon")
    CRASHED = ("unknown", "panicked")
    PMSUSPENDED = ("unknown",)
    NOSTATE = ("unknown",)


def state_reason_name(state: int, reason: int) -> str:
    """virsh's word for ``reason`` in ``state`` (``domstate --reason``)."""
    names = getattr(DomainStateReason, DomainState(state).name, ("unknown",))
    return names[reason] if 0 <= reason < len(names) else "unknown"


@attrs.frozen
class DomainRef:
    """What identifies a domain: libvirt's (name, uuid, id); ``id`` is -1 when inactive."""

    name: str
    uuid: str
    id: int = -1


@attrs.frozen
class DomainInfo:
    """libvirt's ``virDomainInfo``: memory in KiB, cpu_time in nanoseconds."""

    state: DomainState
    max_memory: int
    memory: int
    nr_virt_cpu: int
    cpu_time: int


@attrs.frozen
class VcpuInfo:
    number: int
    state: int
    cpu_time: int
    cpu: int
    affinity: tuple[bool, ...] = ()


@attrs.frozen
class BlockInfo:
    capacity: int
    allocation: int
    physical: int


@attrs.frozen
class BlockStats:
    rd_req: int
    rd_bytes: int
    wr_req: int
    wr_bytes: int
    errs: int


@attrs.frozen
class InterfaceStats:
    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int


class DomainEventType(enum.IntEnum):
    """libvirt's ``virDomainEventType``."""

    DEFINED = 0
    UNDEFINED = 1
    STARTED = 2
    SUSPENDED = 3
    RESUMED = 4
    STOPPED = 5
    SHUTDOWN = 6
    PMSUSPENDED = 7
    CRASHED = 8


@attrs.frozen
class Event:
    """Base of every event record: which connection-level object it is about."""

    name: str
    uuid: str


@attrs.frozen
class DomainEvent(Event):
    """A domain lifecycle event: ``event`` and libvirt's per-event ``detail`` code."""

    event: DomainEventType = DomainEventType.DEFINED
    detail: int = 0
    id: int = -1


@attrs.frozen
class NetworkRef:
    name: str
    uuid: str


@attrs.frozen
class NetworkInfo:
    active: bool
    persistent: bool
    autostart: bool
    bridge: str | None


class NetworkEventType(enum.IntEnum):
    DEFINED = 0
    UNDEFINED = 1
    STARTED = 2
    STOPPED = 3


@attrs.frozen
class NetworkEvent(Event):
    event: NetworkEventType = NetworkEventType.DEFINED
    detail: int = 0


class PoolState(enum.IntEnum):
    """libvirt's ``virStoragePoolState``."""

    INACTIVE = 0
    BUILDING = 1
    RUNNING = 2
    DEGRADED = 3
    INACCESSIBLE = 4


@attrs.frozen
class PoolRef:
    name: str
    uuid: str


@attrs.frozen
class PoolInfo:
    """Bytes, like libvirt's ``virStoragePoolInfo``."""

    state: PoolState
    capacity: int
    allocation: int
    available: int


class PoolEventType(enum.IntEnum):
    DEFINED = 0
    UNDEFINED = 1
    STARTED = 2
    STOPPED = 3
    CREATED = 4
    DELETED = 5


@attrs.frozen
class PoolEvent(Event):
    event: PoolEventType = PoolEventType.DEFINED
    detail: int = 0


class VolumeType(enum.IntEnum):
    """libvirt's ``virStorageVolType``."""

    FILE = 0
    BLOCK = 1
    DIR = 2
    NETWORK = 3
    NETDIR = 4
    PLOOP = 5


@attrs.frozen
class VolumeRef:
    """A volume: its pool's name, its own name, its key (unique on the node) and path."""

    pool: str
    name: str
    key: str
    path: str


@attrs.frozen
class VolumeInfo:
    type: VolumeType
    capacity: int
    allocation: int


@attrs.frozen
class NodeInfo:
    """libvirt's ``virNodeInfo``: memory in KiB, mhz in MHz."""

    model: str
    memory: int
    cpus: int
    mhz: int
    nodes: int
    sockets: int
    cores: int
    threads: int


@attrs.frozen
class NodeDeviceRef:
    name: str
    parent: str | None = None


@attrs.frozen
class InterfaceRef:
    name: str
    mac: str
    active: bool = True


@attrs.frozen
class SecretRef:
    uuid: str
    usage_type: int
    usage_id: str


@attrs.frozen
class IPAddress:
    """One address of a guest interface: ``type`` 0 = IPv4, 1 = IPv6."""

    type: int
    addr: str
    prefix: int


@attrs.frozen
class DomainInterface:
    """A guest interface and its addresses (``domifaddr``)."""

    name: str
    hwaddr: str
    addrs: tuple[IPAddress, ...] = ()


@attrs.frozen
class NetworkDHCPLease:
    """A lease handed out by a network's DHCP server (``net-dhcp-leases``)."""

    iface: str
    expirytime: int
    type: int
    mac: str
    iaid: str | None
    ipaddr: str
    prefix: int
    hostname: str | None
    clientid: str | None


@attrs.frozen
class SecurityModel:
    """The node's security driver (``virNodeGetSecurityModel``); ``model`` is "" when none."""

    model: str
    doi: str


@attrs.frozen
class SecurityLabel:
    """A domain's security label (``virDomainGetSecurityLabel``); "" for an inactive one."""

    label: str
    enforcing: bool
