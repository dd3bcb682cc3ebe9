"""The in-memory node behind ``test:///`` URIs and the registry that shares it."""

from __future__ import annotations

import threading
from typing import Any

import attrs

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import DomainEvent, DomainState, Event, NetworkEvent, NodeInfo, PoolEvent
from virt.plugin import listening

__all__ = ["DomainObj", "NodeState", "acquire", "check_flags", "release", "unsupported_flags"]


def unsupported_flags(flags: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> VirtError:
    """libvirt's ``virCheckFlags`` failure: INVALID_ARG with no code prefix in the message."""
    message = f"unsupported flags (0x{flags:x}) in function {function}"
    return VirtError(ErrorNumber.INVALID_ARG, message, domain=domain, message=message)


def check_flags(flags: int, allowed: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> None:
    """libvirt's ``virCheckFlags``: refuse any bit ``function`` does not know."""
    if flags & ~allowed:
        raise unsupported_flags(flags & ~allowed, function, domain)


@attrs.define(eq=False)
class DomainObj:
    """One domain: its persistent definition, its live one while running, and its state."""

    uuid: str
    name: str
    persistent_def: Any = None  # DomainDocument, None for a transient domain
    live_def: Any = None  # DomainDocument while active
    state: DomainState = DomainState.SHUTOFF
    reason: int = 0
    id: int = -1
    autostart: bool = False
    managed_save: bool = False
    # Snapshots by name in creation order (see _snapshots), and the current one's name.
    snapshots: dict[str, Any] = attrs.field(factory=dict)
    current_snapshot: str | None = None
    # The guest clock that virDomainGetTime reports (libvirt's test driver starts it here).
    time: tuple[int, int] = (627319920, 0)
    # The last DomainRef handed out (see _domains.domain_ref): kept while name and id hold.
    ref: Any = attrs.field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.id >= 0

    @property
    def persistent(self) -> bool:
        return self.persistent_def is not None

    @property
    def definition(self) -> Any:
        """The definition that describes the domain now: live when running."""
        return self.live_def if self.live_def is not None else self.persistent_def


@attrs.define(eq=False)
class NodeState:
    """Everything a ``test:///`` node holds.  Every access goes through ``lock``."""

    key: str
    node_info: NodeInfo
    lock: threading.RLock = attrs.field(factory=threading.RLock)
    domains: dict[str, DomainObj] = attrs.field(factory=dict)  # by uuid
    domain_names: dict[str, str] = attrs.field(factory=dict)  # name -> uuid
    domain_ids: dict[int, str] = attrs.field(factory=dict)  # running id -> uuid
    next_domain_id: int = 1
    networks: dict[str, Any] = attrs.field(factory=dict)  # by uuid; see _networks
    pools: dict[str, Any] = attrs.field(factory=dict)  # by uuid; see _storage
    interfaces: dict[str, Any] = attrs.field(factory=dict)  # by name; see _host
    nodedevs: dict[str, Any] = attrs.field(factory=dict)  # by name; see _host
    network_names: dict[str, str] = attrs.field(factory=dict)  # name -> uuid; see _networks
    pool_names: dict[str, str] = attrs.field(factory=dict)  # name -> uuid; see _storage
    volume_keys: dict[str, Any] = attrs.field(factory=dict)  # key -> VolumeObj; see _storage
    volume_paths: dict[str, Any] = attrs.field(factory=dict)  # target path -> VolumeObj
    cells: list[Any] = attrs.field(factory=list)  # NUMA cells (NumaCell); see _host
    listeners: list[Any] = attrs.field(factory=list)  # hook relays of open connections

    # -- domains --------------------------------------------------------------------------

    def domain(self, uuid: str) -> DomainObj:
        """The domain of ``uuid``, or NO_DOMAIN as libvirt's test driver reports it."""
        dom = self.domains.get(uuid)
        if dom is None:
            raise VirtError(ErrorNumber.NO_DOMAIN, f"no domain with matching uuid '{uuid}'",
                            domain=ErrorDomain.TEST)
        return dom

    def add_domain(self, dom: DomainObj) -> None:
        self.domains[dom.uuid] = dom
        self.domain_names[dom.name] = dom.uuid

    def remove_domain(self, dom: DomainObj) -> None:
        self.domains.pop(dom.uuid, None)
        if self.domain_names.get(dom.name) == dom.uuid:
            del self.domain_names[dom.name]

    def assign_id(self, dom: DomainObj) -> int:
        """Give ``dom`` the next running id (ids are never reused while the node lives)."""
        dom.id = self.next_domain_id
        self.next_domain_id += 1
        self.domain_ids[dom.id] = dom.uuid
        return dom.id

    def release_id(self, dom: DomainObj) -> None:
        """Take ``dom``'s running id back: it is inactive again."""
        self.domain_ids.pop(dom.id, None)
        dom.id = -1

    # -- events ---------------------------------------------------------------------------

    def listening(self, kind: type[Event]) -> bool:
        """Whether a connection subscribed to events of ``kind``: callers build an event
        record only then."""
        hook_name = _EVENT_HOOKS[kind]
        return any(listening(relay, hook_name) for relay in self.listeners)

    def emit(self, event: DomainEvent | NetworkEvent | PoolEvent) -> None:
        """Send ``event`` to every connection that subscribed to its kind."""
        hook_name = _EVENT_HOOKS[type(event)]
        for relay in list(self.listeners):
            if listening(relay, hook_name):
                getattr(relay, hook_name)(event=event)


_EVENT_HOOKS: dict[type[Event], str] = {
    DomainEvent: "virt_event_domain", NetworkEvent: "virt_event_network", PoolEvent: "virt_event_pool",
}

_registry_lock = threading.Lock()
_shared: dict[str, tuple[NodeState, int]] = {}


def acquire(key: str, build: Any) -> NodeState:
    """The shared node for ``key`` (``"default"``), built by ``build()`` on first use."""
    with _registry_lock:
        node, count = _shared.get(key, (None, 0))
        if node is None:
            node = build()
        _shared[key] = (node, count + 1)
        return node


def release(key: str) -> None:
    """Drop one user of the shared node; the last one resets it (libvirt's test driver does)."""
    with _registry_lock:
        node, count = _shared.get(key, (None, 0))
        if node is None:
            return
        if count <= 1:
            del _shared[key]
        else:
            _shared[key] = (node, count - 1)
