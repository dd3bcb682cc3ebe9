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
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from virt._records import DomainState
from virt._state_files import DomainLock, atomic_write, read_json, write_json

if TYPE_CHECKING:
    from virt.xml.domain import DomainDocument

__all__ = ["DomainStore", "Layout", "Status", "store_for"]


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
