"""Node, capabilities, node device, interface and secret hooks of the test driver."""

from __future__ import annotations

from virt._markers import hookimpl
from virt._records import NodeInfo


class HostOps:
    """Implements :mod:`virt.hookspecs.node` and the node parts of ``connection``."""

    node: object

    @hookimpl
    def virt_node_get_info(self) -> NodeInfo:
        return self.node.node_info  # type: ignore[attr-defined,no-any-return]
