"""Domain state in files, for drivers without a daemon (``qemu:///``, ``lxc:///``, a third
party's): where a driver instance keeps its files, and the store that reads and writes them.

A daemonless driver keeps what libvirt's daemon keeps in memory in files, so that every
process that opens the same URI sees the same domains:

* ``config/NAME.xml``: a persistent domain's definition (what ``dumpxml --inactive`` shows),
  and ``config/autostart/NAME.xml``, a symbolic link to it while autostart is on;
* ``run/UUID.json``: the domain's status (state and reason, the id, the process that runs it,
  whatever else the driver records).  A persistent domain keeps its status while shut off
  (for ``domstate --reason``); a transient one has nothing left;
* ``run/UUID.xml``: the live definition of a running domain;
* ``run/UUID.lock``: the per-domain lock every change is made under.

Every file is replaced atomically (:func:`virt._state_files.atomic_write`), so two processes
see consistent state, and definitions are parsed again only when their file changed.

    layout = Layout("acme:///embed?root=/srv/x", Path("/srv/x/etc"), Path("/srv/x/etc/autostart"),
                    Path("/srv/x/run"), Path("/srv/x/log"))
    store = store_for(layout, parse=lambda xml, live: DomainDocument.from_string(xml, inactive=not live))

A driver adds its own files by subclassing :class:`Layout` (an attrs class: add fields and
methods), and what it records in a status is its own (``Status`` is a dict).

:class:`StoredDomains` is the driver-side half: the lookup and listing hooks over a store,
for a connection class that has a ``store`` and says how a domain whose process has gone is
settled.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainState
from virt._state_files import DomainLock, alive, atomic_write, dispatch_event, read_json, write_json
from virt.plugin import LocalConnection, listening

if TYPE_CHECKING:
    from virt.xml.domain import DomainDocument

__all__ = ["DomainStore", "Layout", "Status", "StoredDomains", "emit_domain_event", "host_device_counters",
           "interface_stats_group", "store_for"]


@attrs.frozen
class Layout:
    """The directories of one driver instance.  ``root`` identifies the instance (its canonical
    URI): one :class:`DomainStore` per root per process."""

    root: str
    config: Path
    autostart: Path
    run: Path
    log: Path

    def config_file(self, name: str) -> Path:
        return self.config / f"{name}.xml"

    def autostart_link(self, name: str) -> Path:
        return self.autostart / f"{name}.xml"

    def status_file(self, uuid: str) -> Path:
        return self.run / f"{uuid}.json"

    def live_xml(self, uuid: str) -> Path:
        return self.run / f"{uuid}.xml"

    def lock_file(self, uuid: str) -> Path:
        return self.run / f"{uuid}.lock"

    def log_file(self, name: str) -> Path:
        return self.log / f"{name}.log"

    def directories(self) -> tuple[Path, ...]:
        """What :meth:`make` creates; a subclass with more directories extends it."""
        return self.config, self.autostart, self.run, self.log

    def make(self) -> None:
        for path in self.directories():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)


class Status(dict[str, Any]):
    """A domain's status file, as a dict with typed accessors for what every driver records:
    ``uuid``, ``name``, ``state``, ``reason``, ``id`` and ``pid`` (of the process that runs
    the domain; 0 when none does)."""

    @property
    def state(self) -> int:
        return int(self.get("state", DomainState.SHUTOFF))

    @property
    def reason(self) -> int:
        return int(self.get("reason", 0))

    @property
    def pid(self) -> int:
        return int(self.get("pid", 0))

    @property
    def active(self) -> bool:
        return self.pid > 0 and self.state != DomainState.SHUTOFF


#: parse(xml, live) -> the driver's DomainDocument (live: a running domain's live definition)
Parser = Callable[[bytes, bool], "DomainDocument"]


class DomainStore:
    """The files of one layout; one instance per layout per process (see :func:`store_for`),
    whose caches its connections share."""

    def __init__(self, layout: Layout, parse: Parser) -> None:
        self.layout = layout
        self.parse = parse
        layout.make()
        self._guard = threading.Lock()
        # path -> (stat key, parsed document)
        self._configs: dict[str, tuple[tuple[int, int, int], DomainDocument]] = {}
        self._config_dir_key: tuple[int, int] | None = None
        self._config_names: list[str] = []

    # -- locks ------------------------------------------------------------------------------

    def lock(self, uuid: str) -> DomainLock:
        return DomainLock.of(self.layout.lock_file(uuid))

    def driver_lock(self) -> DomainLock:
        return DomainLock.of(self.layout.run / "driver.lock")

    # -- persistent definitions -------------------------------------------------------------

    def _config_files(self) -> list[str]:
        st = os.stat(self.layout.config)
        key = (st.st_mtime_ns, st.st_ino)
        if key != self._config_dir_key:
            names = sorted(e.name for e in os.scandir(self.layout.config)
                           if e.name.endswith(".xml") and not e.name.startswith(".") and e.is_file())
            self._config_names, self._config_dir_key = names, key
        return self._config_names

    def config(self, name: str) -> DomainDocument | None:
        """The persistent definition of ``name``, or None (a file that does not parse is
        skipped, not fatal)."""
        path = self.layout.config_file(name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._guard:
            cached = self._configs.get(str(path))
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            doc = self.parse(path.read_bytes(), False)
        except Exception:  # noqa: BLE001 - a broken file on disk is skipped, not fatal
            return None
        with self._guard:
            self._configs[str(path)] = (key, doc)
        return doc

    def configs(self) -> list[DomainDocument]:
        out = []
        for fname in self._config_files():
            doc = self.config(fname[:-4])
            if doc is not None:
                out.append(doc)
        return out

    def write_config(self, doc: DomainDocument) -> None:
        # secure: the definition keeps its secrets (VNC passwords); only API callers get them hidden
        atomic_write(self.layout.config_file(doc.name), doc.to_string(secure=True, inactive=True))

    def remove_config(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.config_file(name))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.autostart_link(name))

    # -- status -----------------------------------------------------------------------------

    def status(self, uuid: str) -> Status | None:
        data = read_json(self.layout.status_file(uuid))
        return Status(data) if isinstance(data, dict) else None

    def write_status(self, uuid: str, status: dict[str, Any]) -> Status:
        write_json(self.layout.status_file(uuid), status, durable=False)
        return Status(status)

    def remove_status(self, uuid: str) -> None:
        for path in (self.layout.status_file(uuid), self.layout.live_xml(uuid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def statuses(self) -> list[Status]:
        """Every status file's content (``UUID.json``; a driver's other JSON files in ``run``,
        named ``UUID.SOMETHING.json``, are not statuses)."""
        out = []
        for entry in os.scandir(self.layout.run):
            if entry.name.endswith(".json") and not entry.name.startswith(".") and entry.name.count(".") == 1:
                status = self.status(entry.name[:-5])
                if status is not None and "uuid" in status:
                    out.append(status)
        return out

    def live(self, uuid: str) -> DomainDocument | None:
        try:
            return self.parse(self.layout.live_xml(uuid).read_bytes(), True)
        except FileNotFoundError:
            return None

    def write_live(self, uuid: str, doc: DomainDocument) -> None:
        atomic_write(self.layout.live_xml(uuid), doc.to_string(secure=True), durable=False)

    def next_id(self) -> int:
        """libvirt's domain ids: 1, 2, 3... per driver instance, never reused while it lives.

        One byte appended to ``run/ids`` per id: an append is atomic between processes, and
        leaves our descriptor's offset just after our byte, whatever others append after it:
        that offset is our id.  No lock, no rewrite."""
        fd = os.open(self.layout.run / "ids", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b".")
            return os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)

    # -- autostart ----------------------------------------------------------------------------

    def autostart(self, name: str) -> bool:
        return os.path.lexists(self.layout.autostart_link(name))

    def set_autostart(self, name: str, on: bool) -> None:
        """A symbolic link ``autostart/NAME.xml`` to the definition, as libvirt keeps it."""
        link = self.layout.autostart_link(name)
        if on:
            if not os.path.lexists(link):
                os.symlink(os.path.relpath(self.layout.config_file(name), link.parent), link)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)


def emit_domain_event(connections: Iterable[Any], name: str, uuid: str, event: DomainEventType, detail: int,
                      dom_id: int = -1) -> None:
    """A lifecycle event to every connection (an object with the ``hook`` relay its driver was
    opened with) that listens, through the process's event thread (the record is made once,
    and only if one listens)."""
    record: R.DomainEvent | None = None
    for conn in list(connections):
        hook = conn.hook
        if hook is None or not listening(hook, "virt_event_domain"):
            continue
        if record is None:
            record = R.DomainEvent(name=name, uuid=uuid, event=event, detail=detail, id=dom_id)
        dispatch_event(hook.virt_event_domain, record)


_stores: dict[str, DomainStore] = {}
_stores_guard = threading.Lock()


def store_for(layout: Layout, parse: Parser) -> DomainStore:
    """The process's store of ``layout`` (its caches are shared by its connections)."""
    with _stores_guard:
        store = _stores.get(layout.root)
        if store is None:
            store = _stores[layout.root] = DomainStore(layout, parse)
        else:
            layout.make()  # someone may have removed the directories meanwhile
        return store


# virConnectListAllDomainsFlags
_LIST = {"active": 1, "inactive": 2, "persistent": 4, "transient": 8, "running": 16, "paused": 32,
         "shutoff": 64, "other": 128, "managedsave": 256, "no_managedsave": 512, "autostart": 1024,
         "no_autostart": 2048, "has_snapshot": 4096, "no_snapshot": 8192, "has_checkpoint": 16384,
         "no_checkpoint": 32768}


class StoredDomains(LocalConnection):
    """The lookup and listing hooks of a driver whose domains live in a :class:`DomainStore`:
    ``virt_domain_lookup_by_name``/``_by_uuid``/``_by_id`` and ``virt_domain_list`` (with
    libvirt's filter flags), as libvirt answers them.

    It also has what such a connection does when it opens (:meth:`_reconnect`: follow the
    domains whose process lives, settle the others, start the autostart ones once) and the
    connection hooks that say where it is (:class:`virt.plugin.LocalConnection`).

    A connection class mixes it in, has ``store``, ``uri``, ``readonly`` and a
    ``virt_domain_create`` hook, and may override:

    * :meth:`_settle`, what to make of a status whose process is gone (the driver records how
      it ended and returns the new status, or None when nothing is left of the domain);
    * :meth:`_follow`, what to do about a live one an earlier process started (watch it);
    * :meth:`_has_managed_save` and :meth:`_snapshot_count`, for the list filters;
    * :attr:`error_domain`, the domain of its NO_DOMAIN errors.
    """

    store: DomainStore
    uri: str
    readonly: bool
    error_domain: ClassVar[ErrorDomain] = ErrorDomain.NONE

    def _settle(self, uuid: str, status: Status) -> Status | None:
        return status

    def _follow(self, status: Status) -> None:
        """Watch a live domain an earlier process started (by default: nothing to do)."""

    def virt_domain_create(self, uuid: str, flags: int) -> None:
        raise NotImplementedError

    # -- opening --------------------------------------------------------------------------------

    def _reconnect(self) -> None:
        """Find the domains earlier processes started: follow the live ones, settle the dead;
        then, on a read-write connection, start the autostart ones (once per run directory:
        once per boot for a run directory on a tmpfs)."""
        for status in self.store.statuses():
            if not status.active:
                continue
            if alive(status.pid, status.get("started")):
                self._follow(status)
            else:
                self._settle(str(status["uuid"]), status)
        if not self.readonly:
            self._autostart()

    def _autostart(self) -> None:
        marker = self.store.layout.run / "autostarted"
        with self.store.driver_lock():
            if marker.exists():
                return
            marker.touch()
        for doc in self.store.configs():
            if self.store.autostart(doc.name):
                with contextlib.suppress(VirtError):
                    self.virt_domain_create(doc.uuid, 0)

    def _has_managed_save(self, name: str) -> bool:
        return False

    def _snapshot_count(self, name: str) -> int:
        return 0

    def _no_domain(self, detail: str) -> VirtError:
        return VirtError(ErrorNumber.NO_DOMAIN, detail, domain=self.error_domain)

    # -- finding domains ----------------------------------------------------------------------

    def _entries(self) -> dict[str, tuple[DomainDocument | None, Status | None]]:
        """uuid -> (persistent definition, status) for every domain of the store."""
        out: dict[str, tuple[DomainDocument | None, Status | None]] = {}
        for config in self.store.configs():
            out[config.uuid] = (config, None)
        for status in self.store.statuses():
            uuid = str(status["uuid"])
            doc = out.get(uuid, (None, None))[0]
            if doc is None and not status.active:
                continue  # a leftover of a removed definition
            out[uuid] = (doc, status)
        return out

    def _status(self, uuid: str) -> Status | None:
        """The status of ``uuid``, settled first if its process has gone."""
        status = self.store.status(uuid)
        if status is not None and status.active and not alive(status.pid, status.get("started")):
            status = self._settle(uuid, status)
        return status

    def _find(self, uuid: str) -> tuple[DomainDocument | None, Status | None, str]:
        """(definition, status, name) of ``uuid``, or NO_DOMAIN."""
        status = self._status(uuid)
        name = str(status["name"]) if status is not None else None
        doc = self.store.config(name) if name else None
        if doc is None or doc.uuid != uuid:
            doc = next((d for d in self.store.configs() if d.uuid == uuid), None)
        if doc is None and (status is None or not status.active):
            raise self._no_domain(f"no domain with matching uuid '{uuid}'")
        if doc is not None:
            name = doc.name
        assert name is not None
        return doc, status, name

    def _ref(self, uuid: str, name: str, status: Status | None) -> R.DomainRef:
        dom_id = int(status.get("id", -1)) if status is not None and status.active else -1
        return R.DomainRef(name, uuid, dom_id)

    @hookimpl
    def virt_domain_lookup_by_name(self, name: str) -> R.DomainRef:
        doc = self.store.config(name) if "/" not in name and not name.startswith(".") else None
        if doc is not None and doc.name == name:
            return self._ref(doc.uuid, name, self._status(doc.uuid))
        for entry in self.store.statuses():
            if entry.get("name") == name and entry.active:
                uuid = str(entry["uuid"])
                status = self._status(uuid)
                if status is not None and status.active:
                    return self._ref(uuid, name, status)
        raise self._no_domain(f"no domain with matching name '{name}'")

    @hookimpl
    def virt_domain_lookup_by_uuid(self, uuid: str) -> R.DomainRef:
        _, status, name = self._find(uuid)
        return self._ref(uuid, name, status)

    @hookimpl
    def virt_domain_lookup_by_id(self, id: int) -> R.DomainRef:
        for entry in self.store.statuses():
            if entry.active and int(entry.get("id", -1)) == id:
                uuid = str(entry["uuid"])
                status = self._status(uuid)
                if status is not None and status.active:
                    return self._ref(uuid, str(status["name"]), status)
        raise self._no_domain(f"no domain with matching id {id}")

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[R.DomainRef]:
        out = []
        for uuid, (doc, status) in self._entries().items():
            if status is not None and status.active and not alive(status.pid, status.get("started")):
                status = self._settle(uuid, status)
                if status is None and doc is None:
                    continue
            name = doc.name if doc is not None else str(status["name"]) if status is not None else ""
            if flags and not self._matches(flags, doc, status, name):
                continue
            out.append(self._ref(uuid, name, status))
        return out

    def _matches(self, flags: int, doc: DomainDocument | None, status: Status | None, name: str) -> bool:
        """virConnectListAllDomains' filter flags."""
        active = status is not None and status.active
        state = status.state if active and status is not None else DomainState.SHUTOFF
        f = _LIST

        def pair(yes: int, no: int, value: bool) -> bool:
            if flags & (yes | no) in (0, yes | no):
                return True
            return bool(flags & yes) == value

        if not pair(f["active"], f["inactive"], active) or not pair(f["persistent"], f["transient"], doc is not None):
            return False
        states = flags & (f["running"] | f["paused"] | f["shutoff"] | f["other"])
        if states:
            kind = ("running" if state == DomainState.RUNNING else "paused" if state == DomainState.PAUSED
                    else "shutoff" if state == DomainState.SHUTOFF else "other")
            if not flags & f[kind]:
                return False
        if flags & (f["managedsave"] | f["no_managedsave"]) and not pair(
                f["managedsave"], f["no_managedsave"], self._has_managed_save(name)):
            return False
        if not pair(f["autostart"], f["no_autostart"], self.store.autostart(name)):
            return False
        if flags & (f["has_snapshot"] | f["no_snapshot"]) and not pair(
                f["has_snapshot"], f["no_snapshot"], self._snapshot_count(name) > 0):
            return False
        return pair(f["has_checkpoint"], f["no_checkpoint"], False)


# -- interface counters ------------------------------------------------------------------------


def host_device_counters(dev: str) -> R.InterfaceStats | None:
    """The counters of a guest interface's host-side device (a QEMU tap, an LXC veth end) as
    the guest sees them, or None when the device is gone.  What the host end sends, the guest
    receives: libvirt reads a bridged interface's host device swapped
    (``virNetDevTapInterfaceStats`` with ``!virDomainNetTypeSharesHostView``)."""
    base = f"/sys/class/net/{dev}/statistics/"

    def read(name: str) -> int:
        with open(base + name) as src:
            return int(src.read())

    try:
        return R.InterfaceStats(rx_bytes=read("tx_bytes"), rx_packets=read("tx_packets"), rx_errs=read("tx_errors"),
                                rx_drop=read("tx_dropped"), tx_bytes=read("rx_bytes"), tx_packets=read("rx_packets"),
                                tx_errs=read("rx_errors"), tx_drop=read("rx_dropped"))
    except (OSError, ValueError):
        return None


def interface_stats_group(live: DomainDocument, active: bool) -> dict[str, Any]:
    """``virDomainListGetStats``' ``net.*`` group for a domain whose live definition names each
    interface's host device in ``<target dev>``: ``net.count`` (0 while inactive), then per
    interface its name and, when the device can be read, its counters (see
    :func:`host_device_counters`)."""
    nics = live.interfaces()
    out: dict[str, Any] = {"net.count": len(nics) if active else 0}
    if not active:
        return out
    for index, nic in enumerate(nics):
        out[f"net.{index}.name"] = nic.target_dev or f"net{index}"
        counters = host_device_counters(nic.target_dev) if nic.target_dev else None
        if counters is not None:
            for key, value in (("rx.bytes", counters.rx_bytes), ("rx.pkts", counters.rx_packets),
                               ("rx.errs", counters.rx_errs), ("rx.drop", counters.rx_drop),
                               ("tx.bytes", counters.tx_bytes), ("tx.pkts", counters.tx_packets),
                               ("tx.errs", counters.tx_errs), ("tx.drop", counters.tx_drop)):
                out[f"net.{index}.{key}"] = value
    return out
