"""The process's background asyncio loop (:mod:`virt._aio`, shared with other plugins)."""

from __future__ import annotations

from virt._aio import get_loop, run

__all__ = ["get_loop", "run"]
