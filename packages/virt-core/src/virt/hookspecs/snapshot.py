"""Domain snapshot hooks.  A snapshot is named by its domain's UUID and its own name."""

from __future__ import annotations

from virt._markers import operation


@operation("virDomainSnapshotCreateXML", mutating=True)
def virt_snapshot_create_xml(uuid: str, xml: str, flags: int) -> str:
    """:param uuid: the domain.
    :param xml: the ``<domainsnapshot>`` XML (may be nearly empty: the driver fills names).
    :param flags: libvirt's ``VIR_DOMAIN_SNAPSHOT_CREATE_*`` bits.
    :returns: the new snapshot's name.

    .. versionadded:: 0.1
    """


@operation("virDomainListAllSnapshots")
def virt_snapshot_list(uuid: str, flags: int) -> list[str]:
    """:param uuid: the domain.
    :param flags: libvirt's ``VIR_DOMAIN_SNAPSHOT_LIST_*`` bits.
    :returns: snapshot names, oldest first.

    .. versionadded:: 0.1
    """


@operation("virDomainSnapshotGetXMLDesc")
def virt_snapshot_get_xml(uuid: str, name: str, flags: int) -> str:
    """:param uuid: the domain.
    :param name: the snapshot.
    :param flags: ``VIR_DOMAIN_SNAPSHOT_XML_SECURE`` (1).
    :returns: the ``<domainsnapshot>`` XML.

    .. versionadded:: 0.1
    """


@operation("virDomainSnapshotCurrent")
def virt_snapshot_current(uuid: str, flags: int) -> str:
    """:param uuid: the domain.
    :param flags: reserved, 0.
    :returns: the current snapshot's name.
    :raises VirtError: ``NO_DOMAIN_SNAPSHOT`` when there is none.

    .. versionadded:: 0.1
    """


@operation("virDomainSnapshotGetParent")
def virt_snapshot_get_parent(uuid: str, name: str, flags: int) -> str | None:
    """:param uuid: the domain.
    :param name: the snapshot.
    :param flags: reserved, 0.
    :returns: its parent's name, or None for a root.

    .. versionadded:: 0.1
    """


@operation("virDomainRevertToSnapshot", mutating=True)
def virt_snapshot_revert(uuid: str, name: str, flags: int) -> None:
    """:param uuid: the domain.
    :param name: the snapshot.
    :param flags: ``VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING`` (1), ``_PAUSED`` (2), ``_FORCE`` (4).

    .. versionadded:: 0.1
    """


@operation("virDomainSnapshotDelete", mutating=True)
def virt_snapshot_delete(uuid: str, name: str, flags: int) -> None:
    """:param uuid: the domain.
    :param name: the snapshot.
    :param flags: ``VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN`` (1), ``_METADATA_ONLY`` (2),
        ``_CHILDREN_ONLY`` (4).

    .. versionadded:: 0.1
    """
