"""The driver's state on disk, kept by :mod:`virt.driverkit`'s store: ``config/NAME.xml``
(persistent definitions), ``run/UUID.json`` (status: state and reason, the QEMU pid and its
start time, the id, whether the domain is persistent, the chardevs' host paths) and
``run/UUID.xml`` (the live definition).  QEMU's definitions parse with x86_64 as the default
architecture.
"""

from __future__ import annotations

from virt.driverkit import DomainStore, Status
from virt.driverkit import store_for as _store_for
from virt.xml.domain import DomainDocument

from virt_qemu._paths import Layout

__all__ = ["Status", "Store", "parse_definition", "store_for"]

Store = DomainStore


def parse_definition(xml: str | bytes, live: bool = False) -> DomainDocument:
    return DomainDocument.from_string(xml, inactive=not live, default_arch="x86_64")


def store_for(layout: Layout) -> DomainStore:
    """The process's store of ``layout`` (its caches are shared by its connections)."""
    return _store_for(layout, parse_definition)
