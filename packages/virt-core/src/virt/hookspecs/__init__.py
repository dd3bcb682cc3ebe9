"""The driver contract: pluggy hook specifications, grouped by area.

:mod:`registration` runs on the process-wide plugin manager; every other module is added to
each connection's plugin manager (:data:`OPERATION_MODULES`).

The area modules are imported when first named (``from virt.hookspecs import domain``, or
:data:`OPERATION_MODULES`): a connection whose driver is its only plugin never needs them
(the core keeps what it must know of them in the generated :mod:`virt._spectable`).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virt.hookspecs import connection, domain, events, network, node, registration, snapshot, storage

    #: the spec modules of a connection's plugin manager
    OPERATION_MODULES: tuple[ModuleType, ...]

__all__ = [
    "OPERATION_MODULES",
    "connection",
    "domain",
    "events",
    "network",
    "node",
    "operation_specs",
    "registration",
    "snapshot",
    "storage",
]

_OPERATION_NAMES = ("connection", "node", "domain", "snapshot", "network", "storage", "events")


def __getattr__(name: str) -> object:
    if name == "OPERATION_MODULES":
        value: object = tuple(import_module(f"{__name__}.{area}") for area in _OPERATION_NAMES)
    elif name in __all__ and name != "operation_specs":
        value = import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def operation_specs() -> dict[str, object]:
    """Every hook spec a connection's plugin manager carries, by hook name."""
    modules: tuple[ModuleType, ...] = __getattr__("OPERATION_MODULES")  # type: ignore[assignment]
    return {
        name: fn
        for module in modules
        for name, fn in vars(module).items()
        if name.startswith("virt_") and callable(fn)
    }
