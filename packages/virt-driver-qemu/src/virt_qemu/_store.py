"""The driver's state on disk: one definition per persistent domain, one status per domain.

* ``config/NAME.xml`` is the persistent definition (what ``dumpxml --inactive`` shows).
* ``run/UUID.json`` is the status: state and reason, the QEMU pid and its start time, the id,
  whether the domain is persistent, the chardevs' host paths.  A persistent domain keeps its
  status while shut off (for ``domstate --reason``); a transient one has nothing left.
* ``run/UUID.xml`` is the live definition of a running domain.

Every file is replaced atomically, and every change happens under the domain's lock, so two
processes see consistent state.  Reads are cached by (mtime, size, inode) so that listing and
lookups do not re-parse unchanged files.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from virt._records import DomainState
from virt._state_files import DomainLock, atomic_write, read_json, write_json
from virt.xml.domain import DomainDocument

from virt_qemu._paths import Layout

__all__ = ["Status", "Store", "parse_definition"]


def parse_definition(xml: str | bytes) -> DomainDocument:
    return DomainDocument.from_string(xml, inactive=True, default_arch="x86_64")


class Status(dict[str, Any]):
    """A domain's status file, as a dict with typed accessors."""

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


class Store:
    """Files of one layout; one instance per layout per process (see :func:`store_for`)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
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
            doc = parse_definition(path.read_bytes())
        except (OSError, ValueError):
            return None
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
        out = []
        for entry in os.scandir(self.layout.run):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                status = self.status(entry.name[:-5])
                if status is not None and "uuid" in status:
                    out.append(status)
        return out

    def live(self, uuid: str) -> DomainDocument | None:
        try:
            return DomainDocument.from_string(self.layout.live_xml(uuid).read_bytes(), inactive=False,
                                              default_arch="x86_64")
        except FileNotFoundError:
            return None

    def write_live(self, uuid: str, doc: DomainDocument) -> None:
        atomic_write(self.layout.live_xml(uuid), doc.to_string(secure=True), durable=False)

    def next_id(self) -> int:
        """libvirt's domain ids: 1, 2, 3... per driver instance, never reused while it lives."""
        path = self.layout.run / "next-id"
        with self.driver_lock():
            try:
                value = int(path.read_text().strip() or "1")
            except (FileNotFoundError, ValueError):
                value = 1
            atomic_write(path, f"{value + 1}\n", durable=False)
        return value

    # -- autostart ----------------------------------------------------------------------------

    def autostart(self, name: str) -> bool:
        return os.path.lexists(self.layout.autostart_link(name))

    def set_autostart(self, name: str, on: bool) -> None:
        link = self.layout.autostart_link(name)
        if on:
            if not os.path.lexists(link):
                os.symlink(os.path.relpath(self.layout.config_file(name), link.parent), link)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)


_stores: dict[str, Store] = {}
_stores_guard = threading.Lock()


def store_for(layout: Layout) -> Store:
    """The process's store of ``layout`` (its caches are shared by its connections)."""
    with _stores_guard:
        store = _stores.get(layout.root)
        if store is None:
            store = _stores[layout.root] = Store(layout)
        else:
            layout.make()  # someone may have removed the directories meanwhile
        return store
