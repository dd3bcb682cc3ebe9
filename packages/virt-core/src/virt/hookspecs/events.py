"""Event hooks: a driver reports a change by calling these on its connection's manager.

They are not firstresult: every subscriber plugin (the core's dispatcher, the remote server's
forwarder) receives each event.  A driver calls them as ``hook.virt_event_domain(event=...)``
with the :class:`virt.plugin.OpenRequest` ``hook`` relay it was opened with.
"""

from __future__ import annotations

from virt._markers import hookspec
from virt._records import DomainEvent, NetworkEvent, PoolEvent


@hookspec
def virt_event_domain(event: DomainEvent) -> None:
    """A domain's lifecycle changed (defined, started, suspended, stopped, ...).

    :param event: which domain, the libvirt event type and its detail code.

    .. versionadded:: 0.1
    """


@hookspec
def virt_event_network(event: NetworkEvent) -> None:
    """A network was defined, undefined, started or stopped.

    :param event: which network and what happened.

    .. versionadded:: 0.1
    """


@hookspec
def virt_event_pool(event: PoolEvent) -> None:
    """A storage pool was defined, undefined, started, stopped, built or deleted.

    :param event: which pool and what happened.

    .. versionadded:: 0.1
    """
