"""Storage pool and volume hooks of the test driver."""

from __future__ import annotations


class StorageOps:
    """Implements :mod:`virt.hookspecs.storage` on the in-memory node."""
