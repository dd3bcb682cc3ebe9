"""Storage pool and volume hooks.

A pool is named by its ``uuid``; a volume by its pool's ``uuid`` and its own ``name``, or by
its node-wide ``key``.
"""

from __future__ import annotations

from virt._markers import operation
from virt._records import PoolInfo, PoolRef, VolumeInfo, VolumeRef


@operation("virStoragePoolDefineXML", mutating=True)
def virt_pool_define_xml(xml: str, flags: int) -> PoolRef:
    """:param xml: the ``<pool>`` XML.
    :param flags: ``VIR_STORAGE_POOL_DEFINE_VALIDATE`` (1).
    :returns: the persistent pool.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolCreateXML", mutating=True)
def virt_pool_create_xml(xml: str, flags: int) -> PoolRef:
    """Start a transient pool.

    :param xml: the ``<pool>`` XML.
    :param flags: ``VIR_STORAGE_POOL_CREATE_WITH_BUILD`` (1) and friends.
    :returns: the running pool.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolBuild", mutating=True)
def virt_pool_build(uuid: str, flags: int) -> None:
    """Make the pool's underlying storage (a directory, a filesystem).

    :param uuid: the pool.
    :param flags: ``VIR_STORAGE_POOL_BUILD_NO_OVERWRITE`` (4), ``_OVERWRITE`` (8).

    .. versionadded:: 0.1
    """


@operation("virStoragePoolUndefine", mutating=True)
def virt_pool_undefine(uuid: str) -> None:
    """:param uuid: the (inactive) pool.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolLookupByName")
def virt_pool_lookup_by_name(name: str) -> PoolRef:
    """:param name: the pool name.
    :returns: the pool.
    :raises VirtError: ``NO_STORAGE_POOL`` ("no storage pool with matching name 'x'").

    .. versionadded:: 0.1
    """


@operation("virStoragePoolLookupByUUID")
def virt_pool_lookup_by_uuid(uuid: str) -> PoolRef:
    """:param uuid: the pool UUID.
    :returns: the pool.

    .. versionadded:: 0.1
    """


@operation("virConnectListAllStoragePools")
def virt_pool_list(flags: int) -> list[PoolRef]:
    """:param flags: ``VIR_CONNECT_LIST_STORAGE_POOLS_*`` filter bits (0 = all).
    :returns: the matching pools, sorted by name.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolCreate", mutating=True)
def virt_pool_create(uuid: str, flags: int) -> None:
    """Start a defined pool.

    :param uuid: the pool.
    :param flags: ``VIR_STORAGE_POOL_CREATE_WITH_BUILD`` (1) and friends.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolDestroy", mutating=True)
def virt_pool_destroy(uuid: str) -> None:
    """Stop the pool (its data stays).

    :param uuid: the pool.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolDelete", mutating=True)
def virt_pool_delete(uuid: str, flags: int) -> None:
    """Remove the pool's underlying storage (the opposite of build).

    :param uuid: the (inactive) pool.
    :param flags: ``VIR_STORAGE_POOL_DELETE_ZEROED`` (1).

    .. versionadded:: 0.1
    """


@operation("virStoragePoolRefresh", mutating=True)
def virt_pool_refresh(uuid: str, flags: int) -> None:
    """Rescan the pool's volumes and sizes.

    :param uuid: the running pool.
    :param flags: reserved, 0.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolGetInfo")
def virt_pool_get_info(uuid: str) -> PoolInfo:
    """:param uuid: the pool.
    :returns: state, capacity, allocation and available bytes.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolGetXMLDesc")
def virt_pool_get_xml(uuid: str, flags: int) -> str:
    """:param uuid: the pool.
    :param flags: ``VIR_STORAGE_XML_INACTIVE`` (1).
    :returns: the ``<pool>`` XML.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolIsActive")
def virt_pool_is_active(uuid: str) -> bool:
    """:param uuid: the pool.
    :returns: whether it is running.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolIsPersistent")
def virt_pool_is_persistent(uuid: str) -> bool:
    """:param uuid: the pool.
    :returns: whether it has a persistent config.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolGetAutostart")
def virt_pool_get_autostart(uuid: str) -> bool:
    """:param uuid: the pool.
    :returns: whether it starts with the node.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolSetAutostart", mutating=True)
def virt_pool_set_autostart(uuid: str, autostart: bool) -> None:
    """:param uuid: the pool.
    :param autostart: start it with the node.

    .. versionadded:: 0.1
    """


@operation("virStoragePoolListAllVolumes")
def virt_vol_list(pool: str, flags: int) -> list[VolumeRef]:
    """:param pool: the pool's UUID.
    :param flags: reserved, 0.
    :returns: the pool's volumes, sorted by name.

    .. versionadded:: 0.1
    """


@operation("virStorageVolLookupByName")
def virt_vol_lookup_by_name(pool: str, name: str) -> VolumeRef:
    """:param pool: the pool's UUID.
    :param name: the volume name.
    :returns: the volume.
    :raises VirtError: ``NO_STORAGE_VOL`` ("no storage vol with matching name 'x'").

    .. versionadded:: 0.1
    """


@operation("virStorageVolLookupByKey")
def virt_vol_lookup_by_key(key: str) -> VolumeRef:
    """:param key: the volume key.
    :returns: the volume.

    .. versionadded:: 0.1
    """


@operation("virStorageVolLookupByPath")
def virt_vol_lookup_by_path(path: str) -> VolumeRef:
    """:param path: the volume's path on the node.
    :returns: the volume.
    :raises VirtError: ``NO_STORAGE_VOL`` ("no storage vol with matching path 'x'").

    .. versionadded:: 0.1
    """


@operation("virStorageVolCreateXML", mutating=True)
def virt_vol_create_xml(pool: str, xml: str, flags: int) -> VolumeRef:
    """:param pool: the pool's UUID.
    :param xml: the ``<volume>`` XML.
    :param flags: ``VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA`` (1), ``_REFLINK`` (2),
        ``_VALIDATE`` (4).
    :returns: the new volume.

    .. versionadded:: 0.1
    """


@operation("virStorageVolCreateXMLFrom", mutating=True)
def virt_vol_create_xml_from(pool: str, xml: str, clone_key: str, flags: int) -> VolumeRef:
    """Create a volume whose content is a copy of another's.

    :param pool: the pool's UUID.
    :param xml: the new ``<volume>`` XML.
    :param clone_key: the key of the volume to copy.
    :param flags: as for :func:`virt_vol_create_xml`.
    :returns: the new volume.

    .. versionadded:: 0.1
    """


@operation("virStorageVolDelete", mutating=True)
def virt_vol_delete(key: str, flags: int) -> None:
    """:param key: the volume key.
    :param flags: ``VIR_STORAGE_VOL_DELETE_ZEROED`` (1), ``_WITH_SNAPSHOTS`` (2).

    .. versionadded:: 0.1
    """


@operation("virStorageVolWipe", mutating=True)
def virt_vol_wipe(key: str, algorithm: int, flags: int) -> None:
    """:param key: the volume key.
    :param algorithm: ``VIR_STORAGE_VOL_WIPE_ALG_*`` (0 = zero).
    :param flags: reserved, 0.

    .. versionadded:: 0.1
    """


@operation("virStorageVolResize", mutating=True)
def virt_vol_resize(key: str, capacity: int, flags: int) -> None:
    """:param key: the volume key.
    :param capacity: bytes (or a delta with ``VIR_STORAGE_VOL_RESIZE_DELTA`` = 2).
    :param flags: ``_ALLOCATE`` (1), ``_DELTA`` (2), ``_SHRINK`` (4).

    .. versionadded:: 0.1
    """


@operation("virStorageVolGetInfo")
def virt_vol_get_info(key: str) -> VolumeInfo:
    """:param key: the volume key.
    :returns: type, capacity and allocation in bytes.

    .. versionadded:: 0.1
    """


@operation("virStorageVolGetXMLDesc")
def virt_vol_get_xml(key: str, flags: int) -> str:
    """:param key: the volume key.
    :param flags: reserved, 0.
    :returns: the ``<volume>`` XML.

    .. versionadded:: 0.1
    """


@operation("virStorageVolDownload")
def virt_vol_download(key: str, offset: int, length: int, flags: int) -> bytes:
    """Read one chunk of a volume's content (``virsh vol-download`` calls it in a loop).

    A download is a series of plain calls, so a remote proxy carries it like any other hook;
    the caller advances ``offset`` by the size of each chunk it gets.  (virt's remote proxy
    calls it on the far side for a ``vol-download`` stream, with a window of pieces in flight.)

    :param key: the volume key.
    :param offset: byte offset in the volume's content (its file, for file volumes).
    :param length: the most bytes to return (> 0); a provider may return fewer, and caps a
        chunk at 8 MiB.
    :param flags: ``VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM`` (1) is not supported (``INVALID_ARG``).
    :returns: up to ``length`` bytes from ``offset``; empty at (or past) the end.
    :raises VirtError: ``NO_STORAGE_VOL``; ``OPERATION_INVALID`` when its pool is not running.

    .. versionadded:: 0.2
    """


@operation("virStorageVolUpload", mutating=True)
def virt_vol_upload(key: str, offset: int, data: bytes, flags: int) -> None:
    """Write one chunk of a volume's content (``virsh vol-upload`` calls it in a loop).

    As libvirt's upload, nothing is truncated: bytes past the last chunk written keep their
    old content, and writing past the end of a file volume makes it longer.

    :param key: the volume key.
    :param offset: byte offset in the volume's content where ``data`` goes.
    :param data: the bytes (a chunk; callers send at most 8 MiB at a time).
    :param flags: ``VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM`` (1) is not supported (``INVALID_ARG``).
    :raises VirtError: ``NO_STORAGE_VOL``; ``OPERATION_INVALID`` when its pool is not running.

    .. versionadded:: 0.2
    """
