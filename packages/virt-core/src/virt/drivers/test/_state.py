"""The in-memory node behind ``test:///`` URIs and the registry that shares it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import DomainState
from virt.plugin import listening

__all__ = ["Defined", "DomainObj", "NodeState", "PendingDomainObj", "Plain", "acquire", "check_flags", "release",
           "unsupported_flags"]


def unsupported_flags(flags: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> VirtError:
    """libvirt's ``virCheckFlags`` failure: INVALID_ARG with no code prefix in the message."""
    message = f"unsupported flags (0x{flags:x}) in function {function}"
    return VirtError(ErrorNumber.INVALID_ARG, message, domain=domain, message=message)


def check_flags(flags: int, allowed: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> None:
    """libvirt's ``virCheckFlags``: refuse any bit ``function`` does not know."""
    if flags & ~allowed:
        raise unsupported_flags(flags & ~allowed, function, domain)


class Plain:
    """Base of the driver's own state objects (never hook arguments): slotted, mutable,
    compared by identity, shown by their slots.  Not attrs classes: building one costs a
    fraction of a millisecond at import, and every CLI start imports them all."""

    __slots__ = ()
    _hidden: tuple[str, ...] = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for klass in reversed(type(self).__mro__)
                          for name in klass.__dict__.get("__slots__", ()) if name not in self._hidden)
        return f"{type(self).__name__}({shown})"


class Defined(Plain):
    """A network or pool of a test node: its definition (and the persistent one saved while it
    runs), whether it runs, whether it is persistent, autostart."""

    __slots__ = ("active", "autostart", "definition", "name", "new_def", "persistent", "uuid")

    def __init__(self, uuid: str, name: str, definition: Any, new_def: Any = None, active: bool = False,
                 persistent: bool = True, autostart: bool = False) -> None:
        self.uuid = uuid
        self.name = name
        self.definition = definition
        self.new_def = new_def  # persistent config saved while running
        self.active = active
        self.persistent = persistent
        self.autostart = autostart


class DomainObj(Plain):
    """One domain: its persistent definition, its live one while running, and its state.

    Starting a persistent domain does not copy its definition at once: the live definition
    *is* the persistent one (``_shared``) until code asks for either to change it.  Reading
    ``live_def``, ``persistent_def`` or ``definition``, or setting the persistent one, first
    makes the live copy (with the running ``id``), so what callers get can be edited as
    before; :attr:`facts_def` reads the facts without copying.  A start and destroy that no
    one looks at in between copy and free no tree (libvirt copies the definition at every
    start).
    """

    __slots__ = ("_live", "_persistent", "_shared", "autostart", "current_snapshot", "id", "managed_save", "name",
                 "reason", "ref", "snapshots", "state", "time", "uuid")
    _hidden = ("ref",)

    def __init__(self, uuid: str, name: str, persistent_def: Any = None, live_def: Any = None,
                 state: DomainState = DomainState.SHUTOFF, reason: int = 0, id: int = -1,
                 autostart: bool = False, managed_save: bool = False,
                 snapshots: dict[str, Any] | None = None, current_snapshot: str | None = None,
                 time: tuple[int, int] = (627319920, 0), ref: Any = None) -> None:
        self.uuid = uuid
        self.name = name
        self._shared = False
        self._persistent: Any = persistent_def  # DomainDocument, None for a transient domain
        self._live: Any = live_def  # DomainDocument while active
        self.state = state
        self.reason = reason
        self.id = id
        self.autostart = autostart
        self.managed_save = managed_save
        # Snapshots by name in creation order (see _snapshots), and the current one's name.
        self.snapshots: dict[str, Any] = {} if snapshots is None else snapshots
        self.current_snapshot = current_snapshot
        # The guest clock that virDomainGetTime reports (libvirt's test driver starts it here).
        self.time = time
        # The last DomainRef handed out (see _domains.domain_ref): kept while name and id hold.
        self.ref: Any = ref

    @property
    def live_def(self) -> Any:
        """The live definition (a DomainDocument) while active, else None."""
        if self._shared:
            self._unshare()
        return self._live

    @live_def.setter
    def live_def(self, value: Any) -> None:
        self._shared = False
        self._live = value

    @property
    def persistent_def(self) -> Any:
        """The persistent definition, None for a transient domain."""
        if self._shared:
            self._unshare()
        return self._persistent

    @persistent_def.setter
    def persistent_def(self, value: Any) -> None:
        if self._shared:
            self._unshare()
        self._persistent = value

    def run_on_config(self) -> None:
        """Make the persistent definition the live one, copied only when either is asked for
        (see the class).  The caller gives the domain its id next."""
        self._live = self._persistent
        self._shared = True

    def set_live_id(self, dom_id: int) -> None:
        """Put the running id in the live definition (a shared one gets it when copied)."""
        if not self._shared:
            self._live.set_id(dom_id)

    def _unshare(self) -> None:
        live = self._live.copy()
        live.set_id(self.id)
        self._live, self._shared = live, False

    @property
    def active(self) -> bool:
        return self.id >= 0

    @property
    def persistent(self) -> bool:
        return self._persistent is not None

    @property
    def definition(self) -> Any:
        """The definition that describes the domain now: live when running."""
        return self.live_def if self._live is not None else self.persistent_def

    @property
    def facts_def(self) -> Any:
        """The document to read ``definition``'s facts from (name, uuid, memory, vCPUs:
        everything but the id), without copying a shared live definition.  Not to edit."""
        return self._live if self._live is not None else self._persistent


def _pending_slot(name: str) -> Any:
    """A :class:`PendingDomainObj` attribute: reading or setting it first loads the domain's
    definitions if that is still pending."""
    slot = DomainObj.__dict__[name]

    def get(dom: PendingDomainObj) -> Any:
        if dom.pending_load is not None:
            dom.settle()
        return slot.__get__(dom, DomainObj)

    def set_(dom: PendingDomainObj, value: Any) -> None:
        if dom.pending_load is not None:
            dom.settle()
        slot.__set__(dom, value)

    return property(get, set_)


class PendingDomainObj(DomainObj):
    """A domain of ``test:///default`` whose definitions (and snapshots) are parsed on first
    use: listing the default node's domains, their ids and states needs no XML, and not
    importing lxml is a fifth of a CLI start.  Everything else about it (name, uuid, id,
    state, flags) is set when the node is made, as for any domain."""

    __slots__ = ("pending_load",)

    def __init__(self, load: Callable[[DomainObj], None], **kwargs: Any) -> None:
        self.pending_load: Callable[[DomainObj], None] | None = None
        super().__init__(**kwargs)
        self.pending_load = load

    def settle(self) -> None:
        """Load what is still pending (the definitions, the snapshots) now."""
        load, self.pending_load = self.pending_load, None
        if load is not None:
            load(self)

    _persistent = _pending_slot("_persistent")
    _live = _pending_slot("_live")
    snapshots = _pending_slot("snapshots")
    current_snapshot = _pending_slot("current_snapshot")


def _area(area: str, slot: str) -> Any:
    """A :class:`NodeState` attribute of ``area`` ("host", "network", "storage"): reading or
    setting it first loads the area's objects if that is still pending (see ``pending``)."""

    def get(node: NodeState) -> Any:
        if area in node.pending:
            node.load_pending(area)
        return getattr(node, slot)

    def set_(node: NodeState, value: Any) -> None:
        if area in node.pending:
            node.load_pending(area)
        setattr(node, slot, value)

    return property(get, set_)


class NodeState(Plain):
    """Everything a ``test:///`` node holds.  Every access goes through ``lock``.

    The objects of an area other than domains may be loaded on first use: ``pending`` maps
    the area ("host", "network", "storage") to the function that loads it, and the first read
    of one of its attributes runs it (``test:///default``: ``list --all`` needs no network).
    """

    __slots__ = ("_cells", "_interfaces", "_network_names", "_networks", "_node_info", "_nodedevs", "_pool_names",
                 "_pools", "_volume_keys", "_volume_paths", "domain_ids", "domain_names", "domains", "key", "listeners",
                 "lock", "next_domain_id", "pending")

    def __init__(self, key: str, node_info: R.NodeInfo | Callable[[], R.NodeInfo]) -> None:
        self.key = key
        self._node_info = node_info
        self.lock = threading.RLock()
        self.pending: dict[str, Callable[[], None]] = {}
        self.domains: dict[str, DomainObj] = {}  # by uuid
        self.domain_names: dict[str, str] = {}  # name -> uuid
        self.domain_ids: dict[int, str] = {}  # running id -> uuid
        self.next_domain_id = 1
        self._networks: dict[str, Any] = {}
        self._pools: dict[str, Any] = {}
        self._interfaces: dict[str, Any] = {}
        self._nodedevs: dict[str, Any] = {}
        self._network_names: dict[str, str] = {}
        self._pool_names: dict[str, str] = {}
        self._volume_keys: dict[str, Any] = {}
        self._volume_paths: dict[str, Any] = {}
        self._cells: list[Any] = []
        self.listeners: list[Any] = []  # hook relays of open connections

    networks = _area("network", "_networks")  # by uuid; see _networks
    network_names = _area("network", "_network_names")  # name -> uuid; see _networks
    pools = _area("storage", "_pools")  # by uuid; see _storage
    pool_names = _area("storage", "_pool_names")  # name -> uuid; see _storage
    volume_keys = _area("storage", "_volume_keys")  # key -> VolumeObj; see _storage
    volume_paths = _area("storage", "_volume_paths")  # target path -> VolumeObj
    interfaces = _area("host", "_interfaces")  # by name; see _host
    nodedevs = _area("host", "_nodedevs")  # by name; see _host
    cells = _area("host", "_cells")  # NUMA cells (NumaCell); see _host


    @property
    def node_info(self) -> R.NodeInfo:
        """The node's NodeInfo; a function given for it runs on first read (making the
        record class is not free, and ``list --all`` does not need it)."""
        info = self._node_info
        if callable(info):
            info = self._node_info = info()
        return info
    def load_pending(self, area: str) -> None:
        """Load the objects of ``area`` now if that is still pending."""
        with self.lock:
            load = self.pending.pop(area, None)
            if load is not None:
                load()

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

    def listening(self, kind: type[R.Event]) -> bool:
        """Whether a connection subscribed to events of ``kind``: callers build an event
        record only then."""
        hook_name = _EVENT_HOOKS[kind.__name__]
        return any(listening(relay, hook_name) for relay in self.listeners)

    def emit(self, event: R.DomainEvent | R.NetworkEvent | R.PoolEvent) -> None:
        """Send ``event`` to every connection that subscribed to its kind."""
        hook_name = _EVENT_HOOKS[type(event).__name__]
        for relay in list(self.listeners):
            if listening(relay, hook_name):
                getattr(relay, hook_name)(event=event)


# by record name: naming the classes here would make them (virt._records makes each on first use)
_EVENT_HOOKS: dict[str, str] = {
    "DomainEvent": "virt_event_domain", "NetworkEvent": "virt_event_network", "PoolEvent": "virt_event_pool",
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
