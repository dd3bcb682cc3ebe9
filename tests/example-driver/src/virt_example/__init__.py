"""virt's example third-party driver: in-memory domains behind ``example:///`` URIs.

This module is what the ``virt.drivers`` entry point named ``example`` points at: it only
says which URI scheme it serves and how to open a connection.  The connection object, with
the operation hooks, is in :mod:`virt_example._connection`, imported when a URI is opened.
"""

from __future__ import annotations

from collections.abc import Iterable

from virt.plugin import DriverSpec, OpenRequest, hookimpl

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> object:
    from virt_example._connection import ExampleConnection

    return ExampleConnection.open(request)


@hookimpl
def virt_register_drivers() -> Iterable[DriverSpec]:
    return [DriverSpec(scheme="example", open=_open, description="example third-party driver (in memory)")]
