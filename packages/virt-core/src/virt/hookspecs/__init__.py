"""The driver contract: pluggy hook specifications, grouped by area.

:mod:`registration` runs on the process-wide plugin manager; every other module is added to
each connection's plugin manager (:data:`OPERATION_MODULES`).
"""

from __future__ import annotations

from types import ModuleType

from virt.hookspecs import connection, domain, events, network, node, registration, snapshot, storage

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

OPERATION_MODULES: tuple[ModuleType, ...] = (connection, node, domain, snapshot, network, storage, events)


def operation_specs() -> dict[str, object]:
    """Every hook spec a connection's plugin manager carries, by hook name."""
    return {
        name: fn
        for module in OPERATION_MODULES
        for name, fn in vars(module).items()
        if name.startswith("virt_") and callable(fn)
    }
