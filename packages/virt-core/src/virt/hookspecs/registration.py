"""Registration hooks: what an installed plugin offers.

These run on the one process-wide plugin manager.  A distribution names a module in the
``virt.drivers`` entry-point group (entry name = the URI scheme it serves) or in the
``virt.plugins`` group (secondary providers and cross-cutting plugins); that module
implements one or more of these hooks and returns typed records from :mod:`virt.plugin`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from virt._markers import hookspec

if TYPE_CHECKING:
    from virt.plugin import ConnectionPlugin, DriverSpec


@hookspec
def virt_register_drivers() -> Iterable[DriverSpec]:
    """Return the hypervisor drivers this plugin provides.

    :returns: :class:`virt.plugin.DriverSpec` records, one per URI scheme.  Two plugins that
        claim the same scheme are reported (with both sources) and the first loaded wins.

    Not firstresult: every plugin's records are collected.

    .. versionadded:: 0.1
    """


@hookspec
def virt_register_connection_plugins() -> Iterable[ConnectionPlugin]:
    """Return plugins to add to the per-connection plugin managers.

    Two kinds: *providers* implement operation hooks a driver does not (host storage and
    networks for local hypervisor drivers: accepted only when the driver lists the provider's
    ``area`` in :attr:`DriverSpec.accepts`); *wrappers* are cross-cutting (audit, access
    policy, metrics, tracing) and see every hook call of the connections they apply to.

    :returns: :class:`virt.plugin.ConnectionPlugin` records.

    Not firstresult: every plugin's records are collected.

    .. versionadded:: 0.1
    """
