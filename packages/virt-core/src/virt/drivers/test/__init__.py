"""The ``test`` driver: an in-memory node like libvirt's test driver.

``test:///default`` is one node per process, shared by every connection to it and reset to
its pristine state when the last one closes; ``test:///ABS/PATH.xml`` loads a libvirt test
node file (``<node>`` with domains, networks, pools...) into a private node per connection.
"""

from __future__ import annotations

from collections.abc import Iterable

from virt._markers import hookimpl
from virt.plugin import DriverSpec, OpenRequest

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> object:
    from virt.drivers.test._driver import TestConnection

    return TestConnection.open(request)


@hookimpl
def virt_register_drivers() -> Iterable[DriverSpec]:
    return [DriverSpec(scheme="test", open=_open, description="in-memory test node, like libvirt's test driver")]
