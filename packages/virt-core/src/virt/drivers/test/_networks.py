"""Network hooks of the test driver."""

from __future__ import annotations


class NetworkOps:
    """Implements :mod:`virt.hookspecs.network` on the in-memory node."""
