"""The driver's state on disk, kept by :mod:`virt.driverkit`'s store: ``config/NAME.xml``
(persistent definitions), ``run/UUID.json`` (status: state and reason, the controller's pid
and start time, the cgroups, the id, whether the domain is persistent, the console pty) and
``run/UUID.xml`` (the live definition).  The controller's own record, ``run/UUID.ctl.json``,
is not a status.  Definitions parse with the host's architecture as the default and, as in
libvirt's LXC driver, a console target of type ``lxc``.
"""

from __future__ import annotations

import os

from virt.driverkit import DomainStore, Status
from virt.driverkit import store_for as _store_for
from virt.xml.domain import DomainDocument

from virt_lxc._paths import Layout

__all__ = ["Status", "Store", "parse_definition", "store_for"]

_ARCH = os.uname().machine if os.uname().machine != "amd64" else "x86_64"

Store = DomainStore


def parse_definition(xml: str | bytes, live: bool = False) -> DomainDocument:
    return DomainDocument.from_string(xml, inactive=not live, default_arch=_ARCH, console_target="lxc")


def store_for(layout: Layout) -> DomainStore:
    """The process's store of ``layout`` (its caches are shared by its connections)."""
    return _store_for(layout, parse_definition)
