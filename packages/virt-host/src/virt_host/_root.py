"""What the network and storage roots share: one object per root per process, the open
connections' providers (for events), the autostart links, and autostart once per boot."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from virt._markers import hookimpl
from virt.plugin import DriverSpec, OpenRequest, listening

from virt_host._files import RootLock, atomic_write
from virt_host._paths import HostLayout

__all__ = ["HostProvider", "HostRoot", "root_of"]

_log = logging.getLogger("virt_host")


class HostRoot:
    """The objects of one root (networks, pools), shared by every connection to it in this
    process and, through its files, with every other process.  A subclass reads its objects
    and says how to start the autostart ones (:meth:`_autostart`)."""

    #: what autostart logs name the objects ("network", "storage pool")
    KIND = "object"

    def __init__(self, layout: HostLayout) -> None:
        self.layout = layout
        self.lock = RootLock(layout.lock_file)
        # the providers of open connections (weakly: a connection whose driver failed to open
        # is never closed, and must not be kept)
        self._providers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._providers_lock = threading.Lock()
        self._autostarted = False

    # -- autostart links ----------------------------------------------------------------------

    def set_autostart(self, name: str, autostart: bool) -> None:
        """``autostart/NAME.xml``, a symbolic link to the definition, as libvirt keeps it."""
        link = self.layout.autostart_link(name)
        if autostart:
            link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(os.path.join("..", f"{name}.xml"), tmp)
            os.replace(tmp, link)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)

    def remove_config(self, name: str) -> None:
        self.set_autostart(name, False)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.config_file(name))

    # -- events -------------------------------------------------------------------------------

    def attach(self, provider: Any) -> None:
        with self._providers_lock:
            self._providers.add(provider)

    def detach(self, provider: Any) -> None:
        with self._providers_lock:
            self._providers.discard(provider)

    def _emit(self, hook: str, record: Callable[[], Any]) -> None:
        """Call event hook ``hook`` of every open connection of this root in this process that
        listens, with the record ``record()`` makes (made once, and only if one listens)."""
        with self._providers_lock:
            relays = [p.relay for p in self._providers if p.relay is not None]
        made: Any = None
        for relay in relays:
            if listening(relay, hook):
                if made is None:
                    made = record()
                getattr(relay, hook)(event=made)

    # -- autostart ----------------------------------------------------------------------------

    def _boot(self) -> str:
        """What identifies this boot of the host: autostart runs once per value."""
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
                return fh.read().strip()
        except OSError:
            return "unknown"

    def _autostart(self) -> None:
        """Start every object whose autostart is on and that is not running."""
        raise NotImplementedError

    def autostart_once(self) -> None:
        """Start the autostart objects once per boot (the first read-write open of this root
        after a boot does it, as a daemon would at its start)."""
        if self._autostarted:
            return
        self._autostarted = True
        boot = self._boot()
        marker = self.layout.run / "autostarted"
        try:
            with self.lock.held():
                try:
                    if marker.read_text(encoding="ascii").strip() == boot:
                        return
                except OSError:
                    pass
                self._autostart()
                atomic_write(marker, boot + "\n")
        except OSError as exc:  # a read-only root (another user's): nothing to autostart
            _log.debug("%s autostart skipped for %s: %s", self.KIND, self.layout.key, exc)


R = TypeVar("R", bound=HostRoot)
_ROOTS: dict[tuple[type, str], Any] = {}
_ROOTS_LOCK = threading.Lock()


def root_of(kind: type[R], layout: HostLayout) -> R:
    """The process's one ``kind`` root of ``layout``."""
    with _ROOTS_LOCK:
        root = _ROOTS.get((kind, layout.key))
        if root is None:
            root = _ROOTS[(kind, layout.key)] = kind(layout)
        assert isinstance(root, kind)
        return root


P = TypeVar("P", bound="HostProvider")


class HostProvider:
    """The operation hooks one connection gets from a root: a subclass names its root
    (:meth:`root_for`, None for a URI without one: the provider then stays out)."""

    def __init__(self, root: Any, request: OpenRequest) -> None:
        self.root = root
        self.relay = request.hook

    @classmethod
    def root_for(cls, request: OpenRequest) -> HostRoot | None:
        raise NotImplementedError

    @classmethod
    def open(cls: type[P], request: OpenRequest, spec: DriverSpec | None = None) -> P | None:
        root = cls.root_for(request)
        if root is None:
            return None
        provider = cls(root, request)
        root.attach(provider)
        if not request.readonly:
            root.autostart_once()
        return provider

    @hookimpl
    def virt_connect_close(self) -> None:
        self.root.detach(self)
