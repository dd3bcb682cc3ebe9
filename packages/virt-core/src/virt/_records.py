"""Plain-data records and enums that cross the driver contract.

Everything here is a frozen attrs class of str/int/float/bool/bytes/enums/tuples, or an enum:
that is what lets the remote plugin carry any hook as name + keyword arguments.

The attrs classes are made on first use (PEP 562): attrs compiles each class's methods, about
0.4 ms a class, and a CLI command needs a few of them.  ``from virt._records import X``,
``getattr(virt._records, "X")`` and ``virt._records.X`` all give the attrs class;
:func:`all_records` makes every one of them (to iterate over them all).
"""

from __future__ import annotations

import enum
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attrs import frozen as _record

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
    "all_records",
    "state_reason_name",
]

#: name -> the class as written below (a plain class), until its attrs class is made.
_PENDING: dict[str, type] = {}

if not TYPE_CHECKING:

    def _record(cls: type) -> type:
        _PENDING[cls.__name__] = cls
        return cls


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


@_record
class DomainRef:
    """What identifies a domain: libvirt's (name, uuid, id); ``id`` is -1 when inactive."""

    name: str
    uuid: str
    id: int = -1


@_record
class DomainInfo:
    """libvirt's ``virDomainInfo``: memory in KiB, cpu_time in nanoseconds."""

    state: DomainState
    max_memory: int
    memory: int
    nr_virt_cpu: int
    cpu_time: int


@_record
class VcpuInfo:
    number: int
    state: int
    cpu_time: int
    cpu: int
    affinity: tuple[bool, ...] = ()


@_record
class BlockInfo:
    capacity: int
    allocation: int
    physical: int


@_record
class BlockStats:
    rd_req: int
    rd_bytes: int
    wr_req: int
    wr_bytes: int
    errs: int


@_record
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


@_record
class Event:
    """Base of every event record: which connection-level object it is about."""

    name: str
    uuid: str


@_record
class DomainEvent(Event):
    """A domain lifecycle event: ``event`` and libvirt's per-event ``detail`` code."""

    event: DomainEventType = DomainEventType.DEFINED
    detail: int = 0
    id: int = -1


@_record
class NetworkRef:
    name: str
    uuid: str


@_record
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


@_record
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


@_record
class PoolRef:
    name: str
    uuid: str


@_record
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


@_record
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


@_record
class VolumeRef:
    """A volume: its pool's name, its own name, its key (unique on the node) and path."""

    pool: str
    name: str
    key: str
    path: str


@_record
class VolumeInfo:
    type: VolumeType
    capacity: int
    allocation: int


@_record
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


@_record
class NodeDeviceRef:
    name: str
    parent: str | None = None


@_record
class InterfaceRef:
    name: str
    mac: str
    active: bool = True


@_record
class SecretRef:
    uuid: str
    usage_type: int
    usage_id: str


@_record
class IPAddress:
    """One address of a guest interface: ``type`` 0 = IPv4, 1 = IPv6."""

    type: int
    addr: str
    prefix: int


@_record
class DomainInterface:
    """A guest interface and its addresses (``domifaddr``)."""

    name: str
    hwaddr: str
    addrs: tuple[IPAddress, ...] = ()


@_record
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


@_record
class SecurityModel:
    """The node's security driver (``virNodeGetSecurityModel``); ``model`` is "" when none."""

    model: str
    doi: str


@_record
class SecurityLabel:
    """A domain's security label (``virDomainGetSecurityLabel``); "" for an inactive one."""

    label: str
    enforcing: bool


# The plain classes leave the module's namespace: reading one of these names makes it.
for _name in _PENDING:
    del globals()[_name]
del _name


_lock = threading.RLock()


def _make(name: str) -> type:
    """The attrs class of record ``name``, made on the first call (one class per name, whatever
    the threads)."""
    with _lock:
        made: type | None = globals().get(name)
        if made is not None:
            return made
        import attrs

        plain = _PENDING[name]
        bases = tuple(_make(base.__name__) if _PENDING.get(base.__name__) is base else base
                      for base in plain.__bases__)
        namespace = {k: v for k, v in vars(plain).items() if k not in ("__dict__", "__weakref__")}
        made = attrs.frozen(type(name, bases, namespace))
        globals()[name] = made
        # The records its annotations name (``tuple[IPAddress, ...]``) are made too, so that
        # ``typing.get_type_hints`` finds them in the module's namespace.
        words = set(re.findall(r"\w+", " ".join(map(str, vars(plain).get("__annotations__", {}).values()))))
        for other in words & _PENDING.keys():
            _make(other)
        return made


def all_records() -> tuple[type, ...]:
    """Every record class (attrs classes; the enums are not records), in ``__all__`` order."""
    return tuple(_make(name) for name in __all__ if name in _PENDING)


def __getattr__(name: str) -> Any:
    if name in _PENDING:
        return _make(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
