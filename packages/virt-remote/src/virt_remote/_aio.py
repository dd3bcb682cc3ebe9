"""The process's background asyncio loop for asyncssh (:mod:`virt._aio`, shared with the
QEMU driver's QMP: one loop per process, as the design says)."""

from __future__ import annotations

from virt._aio import get_loop, run

__all__ = ["get_loop", "run"]
