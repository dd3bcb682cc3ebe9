"""virt's QEMU driver: ``qemu:///session``, ``qemu:///system`` and ``qemu:///embed?root=DIR``.

Domains are real ``qemu-system-*`` processes, controlled through QMP with the ``qemu.qmp``
library; their definitions and status live in files, so guests outlive the process that
started them and any later process reconnects to them.  See ``docs/drivers/qemu.md``.
"""

from __future__ import annotations

from typing import Any

from virt.plugin import DriverSpec, OpenRequest, hookimpl

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> Any:
    # imported on open, not at plugin discovery: listing drivers must stay cheap
    from virt_qemu._driver import QemuConnection

    return QemuConnection.open(request)


@hookimpl
def virt_register_drivers() -> list[DriverSpec]:
    return [
        DriverSpec(
            scheme="qemu",
            open=_open,
            accepts=frozenset(("storage", "network", "node")),
            description="QEMU/KVM guests as real QEMU processes (qemu:///session, /system, /embed?root=DIR)",
        )
    ]
