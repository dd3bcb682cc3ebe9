"""What a plugin author imports: the markers and the registration records.

A driver distribution declares an entry point in the ``virt.drivers`` group whose name is the
URI scheme it serves, pointing at a module that implements
:func:`~virt.hookspecs.registration.virt_register_drivers`::

    [project.entry-points."virt.drivers"]
    mydrv = "mydrv"

    # mydrv/__init__.py
    from virt.plugin import DriverSpec, hookimpl

    @hookimpl
    def virt_register_drivers():
        return [DriverSpec(scheme="mydrv", open=MyConnection)]

``open`` receives an :class:`OpenRequest` and returns the connection object: any object whose
``virt_*`` methods (decorated with :data:`hookimpl`) implement operation hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from virt._markers import hookimpl
from virt._uri import URI

if TYPE_CHECKING:
    from virt._markers import hookspec

__all__ = [
    "DRIVER_GROUP",
    "PLUGIN_GROUP",
    "ConnectionPlugin",
    "LocalConnection",
    "DriverSpec",
    "OpenRequest",
    "hookimpl",
    "hookspec",
    "listening",
]

#: Entry-point group of hypervisor drivers; an entry's name is the URI scheme it serves.
DRIVER_GROUP = "virt.drivers"
#: Entry-point group of connection plugins (secondary providers, cross-cutting wrappers).
PLUGIN_GROUP = "virt.plugins"


class _Frozen:
    """Slotted, immutable, compared and hashed by value, shown by field: what ``attrs.frozen``
    makes, written out for these three.  Every process that opens a connection builds them
    (the CLI included), and attrs compiles each class's methods at import, ~0.5 ms a class.
    The records that hooks take and return stay attrs classes (``virt._records``)."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()  # in the constructor's order

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.__class__, *self._fields()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__name__}({shown})"


class OpenRequest(_Frozen):
    """What a driver's ``open`` is given.

    :ivar uri: the parsed URI being opened.
    :ivar readonly: the caller asked for a read-only connection.
    :ivar hook: the connection's own hook relay: call event hooks on it
        (``request.hook.virt_event_domain(event=...)``).
    """

    __slots__ = ("hook", "readonly", "uri")
    _FIELDS = ("uri", "readonly", "hook")
    uri: URI
    readonly: bool
    hook: Any

    def __init__(self, uri: URI, readonly: bool = False, hook: Any = None) -> None:
        init = object.__setattr__
        init(self, "uri", uri)
        init(self, "readonly", readonly)
        init(self, "hook", hook)


class DriverSpec(_Frozen):
    """A hypervisor driver.

    :ivar scheme: the URI scheme served (``test``, ``qemu``); also the entry-point name.
    :ivar open: builds the connection object for an :class:`OpenRequest`; raise
        ``VirtError`` when the URI is not for this driver (bad path, missing binary).
    :ivar accepts: areas of provider plugins this driver wants attached to its connections
        (``"storage"``, ``"network"``, ``"node"``...): local hypervisors accept the host's.
    :ivar remote: this driver carries other drivers' URIs (``driver+transport://host/``).
    :ivar description: one line for ``virt drivers``.
    """

    __slots__ = ("accepts", "description", "open", "remote", "scheme")
    _FIELDS = ("scheme", "open", "accepts", "remote", "description")
    scheme: str
    open: Callable[[OpenRequest], object]
    accepts: frozenset[str]
    remote: bool
    description: str

    def __init__(self, scheme: str, open: Callable[[OpenRequest], object], accepts: Iterable[str] = frozenset(),
                 remote: bool = False, description: str = "") -> None:
        init = object.__setattr__
        init(self, "scheme", scheme)
        init(self, "open", open)
        init(self, "accepts", frozenset(accepts))
        init(self, "remote", remote)
        init(self, "description", description)


class ConnectionPlugin(_Frozen):
    """A plugin added to connections next to the driver.

    :ivar name: unique name (shown by tracing and in errors).
    :ivar kind: ``"provider"`` implements operation hooks for drivers that accept ``area``;
        ``"wrapper"`` is cross-cutting and applies to every connection its factory accepts.
    :ivar factory: called with the :class:`OpenRequest` (and the :class:`DriverSpec`); returns
        the plugin object, or None to stay out of this connection.
    :ivar area: what a provider provides (``"storage"``, ``"network"``...).
    """

    __slots__ = ("area", "factory", "kind", "name")
    _FIELDS = ("name", "kind", "factory", "area")
    name: str
    kind: Literal["provider", "wrapper"]
    factory: Callable[[OpenRequest, DriverSpec], object | None]
    area: str

    def __init__(self, name: str, kind: Literal["provider", "wrapper"],
                 factory: Callable[[OpenRequest, DriverSpec], object | None], area: str = "") -> None:
        init = object.__setattr__
        init(self, "name", name)
        init(self, "kind", kind)
        init(self, "factory", factory)
        init(self, "area", area)


class LocalConnection:
    """The connection hooks of a driver that runs in the caller's process (mix it into the
    connection class, which has ``uri``): the host's name, the URI, secure (nothing crosses
    a network) and so not encrypted."""

    uri: str

    @hookimpl
    def virt_connect_get_hostname(self) -> str:
        import socket  # not at the top: 2-3 ms of every CLI start, for this one call

        return socket.gethostname()

    @hookimpl
    def virt_connect_get_uri(self) -> str:
        return self.uri

    @hookimpl
    def virt_connect_is_secure(self) -> bool:
        return True

    @hookimpl
    def virt_connect_is_encrypted(self) -> bool:
        return False


def __getattr__(name: str) -> Any:
    if name == "hookspec":  # pluggy's marker, imported when first named (see virt._markers)
        from virt import _markers

        return _markers.hookspec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def listening(hook: Any, event_hook: str) -> bool:
    """Whether anything on a connection receives ``event_hook`` (``"virt_event_domain"``...).

    :param hook: the connection's relay, :attr:`OpenRequest.hook`.

    Subscribers join a connection only when someone subscribes, so a driver can ask this
    before building an event record nobody would receive.
    """
    own = getattr(type(hook), "listening", None)  # a lazily built connection's relay knows cheaply
    if own is not None:
        return bool(own(hook, event_hook))
    return bool(getattr(hook, event_hook).get_hookimpls())
