"""virt's Xen driver: ``xen:///system`` through the xl toolstack.

So far: domain XML <-> Xen's native configurations, byte for byte as libvirt 9.0's libxl
driver converts them (:mod:`virt_xen.xlconfig`: ``xen-xl`` and the legacy ``xen-xm``),
offline; and the ``xen`` driver, whose open fails cleanly where Xen is not running.
"""

from __future__ import annotations

from typing import Any

from virt.plugin import DriverSpec, OpenRequest, hookimpl

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> Any:
    # imported on open, not at plugin discovery: listing drivers must stay cheap
    from virt_xen._driver import XenConnection

    return XenConnection.open(request)


@hookimpl
def virt_register_drivers() -> list[DriverSpec]:
    return [
        DriverSpec(
            scheme="xen",
            open=_open,
            accepts=frozenset(("storage", "network", "node")),
            description="Xen through the xl toolstack (xen:///system); xl/xm config conversions",
        )
    ]
