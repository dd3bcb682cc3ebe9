"""virt's LXC driver: ``lxc:///`` (``lxc:///system``) and ``lxc:///embed?root=DIR``.

Containers built from the kernel's namespaces and cgroups, as libvirt's LXC driver builds
them (no ``lxc-*`` tools): one small controller process per container holds its console and
reaps its init; definitions and status live in files, so containers outlive the process that
started them and any later process reconnects to them.  See ``docs/lxc.md``.
"""

from __future__ import annotations

from typing import Any

from virt.plugin import DriverSpec, OpenRequest, hookimpl

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> Any:
    # imported on open, not at plugin discovery: listing drivers must stay cheap
    from virt_lxc._driver import LxcConnection

    return LxcConnection.open(request)


@hookimpl
def virt_register_drivers() -> list[DriverSpec]:
    return [
        DriverSpec(
            scheme="lxc",
            open=_open,
            accepts=frozenset(("storage", "network", "node")),
            description="Linux containers from namespaces and cgroups (lxc:///, lxc:///embed?root=DIR)",
        )
    ]
