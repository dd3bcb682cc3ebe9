"""Storage pool and volume hooks of the test driver: libvirt's test-driver storage, in memory.

Every pool reports 100 GiB of capacity; a volume's allocation is taken from the pool, its
target path is ``<pool target>/<name>`` and its key is that path.  Nothing touches the host's
disks.  Pools are indexed by UUID and name, volumes by name within their pool and node-wide by
key and by path, so no lookup scans the pools (defining a directory pool does, to refuse a
target another pool already has).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import PoolEventType, PoolState, VolumeType
from virt.drivers.test._host import create_vport, destroy_vport
from virt.drivers.test._state import Defined, NodeState, Plain, check_flags, unsupported_flags

# The documents' modules are imported where a document is made: a CLI start needs none of them.
if TYPE_CHECKING:
    from virt.xml._base import Element
    from virt.xml.storage import PoolDocument, VolumeDocument

__all__ = ["DEFAULT_POOL_CAPACITY", "PoolObj", "StorageOps", "VolumeObj", "load_from_node"]

# Errors the driver itself raises come from libvirt's test driver (VIR_FROM_TEST); the
# document parsers report their own domains.
_D = ErrorDomain.TEST

#: what libvirt's test driver gives every pool: 100 GiB, nothing allocated
DEFAULT_POOL_CAPACITY = 100 * 1024 * 1024 * 1024

# virConnectListAllStoragePoolsFlags
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_TYPE_BITS = {
    "dir": 64, "fs": 128, "netfs": 256, "logical": 512, "disk": 1024, "iscsi": 2048, "scsi": 4096,
    "mpath": 8192, "rbd": 16384, "sheepdog": 32768, "gluster": 65536, "zfs": 131072, "vstorage": 262144,
    "iscsi-direct": 524288,
}
_TYPE_FILTERS = sum(_TYPE_BITS.values())
_LIST_ALL = 63 | _TYPE_FILTERS

_POOL_DEFINE_VALIDATE = 1
_VOL_CREATE_VALIDATE = 4
_RESIZE_ALLOCATE, _RESIZE_DELTA, _RESIZE_SHRINK = 1, 2, 4
_WIPE_ALG_LAST = 10

# testStorageVolumeTypeForPool
_VOLUME_TYPE_OF_POOL = {
    "dir": VolumeType.FILE, "fs": VolumeType.FILE, "netfs": VolumeType.FILE, "vstorage": VolumeType.FILE,
    "sheepdog": VolumeType.NETWORK, "iscsi-direct": VolumeType.NETWORK, "gluster": VolumeType.NETWORK,
    "rbd": VolumeType.NETWORK,
    "logical": VolumeType.BLOCK, "disk": VolumeType.BLOCK, "mpath": VolumeType.BLOCK, "iscsi": VolumeType.BLOCK,
    "scsi": VolumeType.BLOCK, "zfs": VolumeType.BLOCK,
}


class VolumeObj(Plain):
    """One volume: its pool's UUID, its definition, and the identity libvirt gives it."""

    __slots__ = ("definition", "pool")

    def __init__(self, pool: str, definition: VolumeDocument) -> None:
        self.pool = pool
        self.definition = definition

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def key(self) -> str:
        return self.definition.key or ""

    @property
    def path(self) -> str:
        return self.definition.target_path or ""


class PoolObj(Defined):
    """One storage pool of a test node."""

    __slots__ = ("volumes",)
    definition: PoolDocument
    new_def: PoolDocument | None

    def __init__(self, uuid: str, name: str, definition: PoolDocument, new_def: PoolDocument | None = None,
                 active: bool = False, persistent: bool = True, autostart: bool = False,
                 volumes: dict[str, VolumeObj] | None = None) -> None:
        super().__init__(uuid, name, definition, new_def, active, persistent, autostart)
        self.volumes: dict[str, VolumeObj] = {} if volumes is None else volumes  # by name

    @property
    def type(self) -> str:
        return self.definition.type


def _invalid(message: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, message, domain=_D)


def _set_defaults(doc: PoolDocument) -> None:
    """``testStoragePoolObjSetDefaults``: 100 GiB free, nothing allocated."""
    doc.capacity = DEFAULT_POOL_CAPACITY
    doc.allocation = 0
    doc.available = DEFAULT_POOL_CAPACITY



def _check_volume_name(name: str) -> None:
    # The volume's path is made from its name: refuse anything that leaves the pool directory.
    if "/" in name:
        raise VirtError(ErrorNumber.INVALID_ARG, f"volume name '{name}' cannot contain '/'", domain=_D)
    if name in (".", ".."):
        raise VirtError(ErrorNumber.INVALID_ARG, f"volume name '{name}' is not allowed", domain=_D)


def _pool_ref(pool: PoolObj) -> R.PoolRef:
    return R.PoolRef(pool.name, pool.uuid)


def _vol_ref(pool: PoolObj, vol: VolumeObj) -> R.VolumeRef:
    return R.VolumeRef(pool=pool.name, name=vol.name, key=vol.key, path=vol.path)


def _source_conflict(node: NodeState, doc: PoolDocument) -> None:
    """``virStoragePoolObjSourceFindDuplicate`` for directory pools: one target per pool
    (its definition, or the config waiting for it to stop)."""
    if doc.type != "dir" or doc.target_path is None:
        return
    for other in node.pools.values():
        if other.name == doc.name:
            continue
        for odoc in (other.definition, other.new_def):
            if odoc is not None and odoc.type == "dir" and odoc.target_path == doc.target_path:
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"Storage source conflict with pool: '{other.name}'",
                                domain=_D)


def _add_pool(node: NodeState, doc: PoolDocument, *, live: bool, check_active: bool) -> tuple[PoolObj, bool]:
    """``virStoragePoolObjListAdd``: a new pool, or the existing one of that UUID and name
    with ``doc`` as its new config.  Returns the pool and whether it is new."""
    existing: PoolObj | None = node.pools.get(doc.uuid)
    if existing is not None:
        if existing.name != doc.name:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"pool '{existing.name}' is already defined with uuid {doc.uuid}", domain=_D)
        if check_active and existing.active:
            raise _invalid(f"pool is already active as '{existing.name}'")
    else:
        other = node.pool_names.get(doc.name)
        if other is not None:
            raise VirtError(ErrorNumber.OPERATION_FAILED, f"pool '{doc.name}' already exists with uuid {other}",
                            domain=_D)
    _source_conflict(node, doc)
    if existing is not None:
        if live:
            if existing.persistent and existing.new_def is None:
                existing.new_def = existing.definition
            existing.definition = doc
        elif existing.active:
            existing.new_def = doc
        else:
            existing.definition = doc
            existing.new_def = None
        return existing, False
    pool = PoolObj(uuid=doc.uuid, name=doc.name, definition=doc, persistent=not live)
    node.pools[pool.uuid] = pool
    node.pool_names[pool.name] = pool.uuid
    return pool, True


def _remove_pool(node: NodeState, pool: PoolObj) -> None:
    for vol in pool.volumes.values():
        _unindex_volume(node, vol)
    node.pools.pop(pool.uuid, None)
    if node.pool_names.get(pool.name) == pool.uuid:
        del node.pool_names[pool.name]


def _add_volume(node: NodeState, pool: PoolObj, doc: VolumeDocument) -> VolumeObj:
    """Give ``doc`` its path and key (unless it has them) and add it to ``pool``."""
    _check_volume_name(doc.name)
    if doc.name in pool.volumes:
        raise VirtError(ErrorNumber.OPERATION_FAILED, "storage vol already exists", domain=_D)
    if not doc.target_path:
        doc.target_path = f"{pool.definition.target_path or ''}/{doc.name}"
    if not doc.key:
        doc.key = doc.target_path
    vol = VolumeObj(pool=pool.uuid, definition=doc)
    if vol.key in node.volume_keys or vol.path in node.volume_paths:
        raise VirtError(ErrorNumber.OPERATION_FAILED, "storage vol already exists", domain=_D)
    pool.volumes[vol.name] = vol
    node.volume_keys[vol.key] = vol
    node.volume_paths[vol.path] = vol
    _account(pool, doc.allocation)
    return vol


def _unindex_volume(node: NodeState, vol: VolumeObj) -> None:
    if node.volume_keys.get(vol.key) is vol:
        del node.volume_keys[vol.key]
    if node.volume_paths.get(vol.path) is vol:
        del node.volume_paths[vol.path]


def _account(pool: PoolObj, delta: int) -> None:
    doc = pool.definition
    doc.allocation = max(doc.allocation + delta, 0)
    doc.available = max(doc.capacity - doc.allocation, 0)


def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """Add the ``<pool>`` children of a node file (running, with their ``<volume>`` children),
    as libvirt's test driver does."""
    from virt.drivers.test._loader import child_xml
    from virt.xml.storage import PoolDocument, VolumeDocument

    for elem in root.findall("pool"):
        volumes = [] if elem.get("file") is not None else elem.findall("volume")
        for vol_elem in volumes:
            elem.remove(vol_elem)
        try:
            doc = PoolDocument.from_string(child_xml(elem, base_dir))
        finally:
            for vol_elem in volumes:
                elem.append(vol_elem)
        _set_defaults(doc)
        pool, _ = _add_pool(node, doc, live=False, check_active=False)
        pool.active = True
        for vol_elem in volumes:
            _add_volume(node, pool, VolumeDocument.from_string(child_xml(vol_elem, base_dir), pool=doc))


def _fc_adapter(doc: PoolDocument) -> tuple[str, str] | None:
    """The WWNN and WWPN of a pool's ``fc_host`` adapter (a vHBA it creates), or None."""
    adapter = doc.root.find("source/adapter")
    if adapter is None or adapter.get("type") != "fc_host":
        return None
    return adapter.get("wwnn") or "", adapter.get("wwpn") or ""


def _matches(pool: PoolObj, flags: int) -> bool:
    if flags & (_ACTIVE | _INACTIVE) and not (
        (flags & _ACTIVE and pool.active) or (flags & _INACTIVE and not pool.active)
    ):
        return False
    if flags & (_PERSISTENT | _TRANSIENT) and not (
        (flags & _PERSISTENT and pool.persistent) or (flags & _TRANSIENT and not pool.persistent)
    ):
        return False
    if flags & (_AUTOSTART | _NO_AUTOSTART) and not (
        (flags & _AUTOSTART and pool.autostart) or (flags & _NO_AUTOSTART and not pool.autostart)
    ):
        return False
    return not (flags & _TYPE_FILTERS and not flags & _TYPE_BITS.get(pool.type, 0))


class StorageOps:
    """Implements :mod:`virt.hookspecs.storage` on the in-memory node."""

    node: NodeState

    # -- lookups ----------------------------------------------------------------------------

    def _pool(self, uuid: str) -> PoolObj:
        pool: PoolObj | None = self.node.pools.get(uuid)
        if pool is None:
            raise VirtError(ErrorNumber.NO_STORAGE_POOL, f"no storage pool with matching uuid '{uuid}'", domain=_D)
        return pool

    def _active_pool(self, uuid: str) -> PoolObj:
        pool = self._pool(uuid)
        if not pool.active:
            raise _invalid(f"storage pool '{pool.name}' is not active")
        return pool

    def _inactive_pool(self, uuid: str) -> PoolObj:
        pool = self._pool(uuid)
        if pool.active:
            raise _invalid(f"storage pool '{pool.name}' is active")
        return pool

    def _vol(self, key: str) -> tuple[PoolObj, VolumeObj]:
        """The volume of ``key`` and its pool, which must be running."""
        vol: VolumeObj | None = self.node.volume_keys.get(key)
        if vol is None:
            raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching key '{key}'", domain=_D)
        return self._active_pool(vol.pool), vol

    def _emit_pool(self, pool: PoolObj, event: PoolEventType) -> None:
        if self.node.listening(R.PoolEvent):
            self.node.emit(R.PoolEvent(name=pool.name, uuid=pool.uuid, event=event, detail=0))

    # -- pools ------------------------------------------------------------------------------

    @hookimpl
    def virt_pool_define_xml(self, xml: str, flags: int) -> R.PoolRef:
        from virt.xml.storage import PoolDocument

        check_flags(flags, _POOL_DEFINE_VALIDATE, "testStoragePoolDefineXML", _D)
        doc = PoolDocument.from_string(xml, validate=bool(flags & _POOL_DEFINE_VALIDATE))
        _set_defaults(doc)
        with self.node.lock:
            pool, _ = _add_pool(self.node, doc, live=False, check_active=False)
            pool.persistent = True
            self._emit_pool(pool, PoolEventType.DEFINED)
            return _pool_ref(pool)

    @hookimpl
    def virt_pool_create_xml(self, xml: str, flags: int) -> R.PoolRef:
        from virt.xml.storage import PoolDocument

        check_flags(flags, 0, "testStoragePoolCreateXML", _D)
        doc = PoolDocument.from_string(xml)
        _set_defaults(doc)
        with self.node.lock:
            existing: PoolObj | None = self.node.pools.get(doc.uuid)
            saved = (existing.definition, existing.new_def) if existing is not None else None
            pool, is_new = _add_pool(self.node, doc, live=True, check_active=True)
            adapter = _fc_adapter(doc)
            if adapter is not None:
                try:
                    create_vport(self.node, *adapter)
                except VirtError:
                    if is_new:
                        _remove_pool(self.node, pool)
                    elif saved is not None:
                        pool.definition, pool.new_def = saved
                    raise
            pool.active = True
            self._emit_pool(pool, PoolEventType.STARTED)
            return _pool_ref(pool)

    @hookimpl
    def virt_pool_build(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testStoragePoolBuild", _D)
        with self.node.lock:
            pool = self._inactive_pool(uuid)
            self._emit_pool(pool, PoolEventType.CREATED)

    @hookimpl
    def virt_pool_undefine(self, uuid: str) -> None:
        with self.node.lock:
            pool = self._inactive_pool(uuid)
            self._emit_pool(pool, PoolEventType.UNDEFINED)
            _remove_pool(self.node, pool)

    @hookimpl
    def virt_pool_lookup_by_name(self, name: str) -> R.PoolRef:
        with self.node.lock:
            uuid = self.node.pool_names.get(name)
            if uuid is None:
                raise VirtError(ErrorNumber.NO_STORAGE_POOL, f"no storage pool with matching name '{name}'",
                                domain=_D)
            return _pool_ref(self.node.pools[uuid])

    @hookimpl
    def virt_pool_lookup_by_uuid(self, uuid: str) -> R.PoolRef:
        with self.node.lock:
            return _pool_ref(self._pool(uuid))

    @hookimpl
    def virt_pool_list(self, flags: int) -> list[R.PoolRef]:
        check_flags(flags, _LIST_ALL, "testConnectListAllStoragePools", _D)
        with self.node.lock:
            pools = [p for p in self.node.pools.values() if _matches(p, flags)]
        pools.sort(key=lambda p: p.name)
        return [_pool_ref(p) for p in pools]

    @hookimpl
    def virt_pool_create(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testStoragePoolCreate", _D)
        with self.node.lock:
            pool = self._inactive_pool(uuid)
            pool.active = True
            self._emit_pool(pool, PoolEventType.STARTED)

    @hookimpl
    def virt_pool_destroy(self, uuid: str) -> None:
        with self.node.lock:
            pool = self._active_pool(uuid)
            if _fc_adapter(pool.definition) is not None:
                destroy_vport(self.node)
            pool.active = False
            self._emit_pool(pool, PoolEventType.STOPPED)
            if not pool.persistent:
                _remove_pool(self.node, pool)
            elif pool.new_def is not None:
                # The config defined while it ran takes effect now; sizes carry over.
                new = pool.new_def
                new.capacity, new.allocation = pool.definition.capacity, pool.definition.allocation
                new.available = pool.definition.available
                pool.definition, pool.new_def = new, None

    @hookimpl
    def virt_pool_delete(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testStoragePoolDelete", _D)
        with self.node.lock:
            pool = self._inactive_pool(uuid)
            self._emit_pool(pool, PoolEventType.DELETED)

    @hookimpl
    def virt_pool_refresh(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testStoragePoolRefresh", _D)
        with self.node.lock:
            self._active_pool(uuid)

    @hookimpl
    def virt_pool_get_info(self, uuid: str) -> R.PoolInfo:
        with self.node.lock:
            pool = self._pool(uuid)
            doc = pool.definition
            state = PoolState.RUNNING if pool.active else PoolState.INACTIVE
            return R.PoolInfo(state=state, capacity=doc.capacity, allocation=doc.allocation, available=doc.available)

    @hookimpl
    def virt_pool_get_xml(self, uuid: str, flags: int) -> str:
        check_flags(flags, 0, "testStoragePoolGetXMLDesc", _D)
        with self.node.lock:
            return self._pool(uuid).definition.to_string()

    @hookimpl
    def virt_pool_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self._pool(uuid).active

    @hookimpl
    def virt_pool_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self._pool(uuid).persistent

    @hookimpl
    def virt_pool_get_autostart(self, uuid: str) -> bool:
        with self.node.lock:
            pool = self._pool(uuid)
            return pool.persistent and pool.autostart

    @hookimpl
    def virt_pool_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.node.lock:
            pool = self._pool(uuid)
            if not pool.persistent:
                raise VirtError(ErrorNumber.INVALID_ARG, "pool has no config file", domain=_D)
            pool.autostart = bool(autostart)

    # -- volumes ----------------------------------------------------------------------------

    @hookimpl
    def virt_vol_list(self, pool: str, flags: int) -> list[R.VolumeRef]:
        check_flags(flags, 0, "testStoragePoolListAllVolumes", _D)
        with self.node.lock:
            obj = self._pool(pool)
            if not obj.active:
                raise _invalid("storage pool is not active")
            return [_vol_ref(obj, obj.volumes[name]) for name in sorted(obj.volumes)]

    @hookimpl
    def virt_vol_lookup_by_name(self, pool: str, name: str) -> R.VolumeRef:
        with self.node.lock:
            obj = self._active_pool(pool)
            vol = obj.volumes.get(name)
            if vol is None:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching name '{name}'", domain=_D)
            return _vol_ref(obj, vol)

    @hookimpl
    def virt_vol_lookup_by_key(self, key: str) -> R.VolumeRef:
        with self.node.lock:
            vol: VolumeObj | None = self.node.volume_keys.get(key)
            pool = self.node.pools.get(vol.pool) if vol is not None else None
            if vol is None or pool is None or not pool.active:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching key '{key}'", domain=_D)
            return _vol_ref(pool, vol)

    @hookimpl
    def virt_vol_lookup_by_path(self, path: str) -> R.VolumeRef:
        with self.node.lock:
            vol: VolumeObj | None = self.node.volume_paths.get(path)
            pool = self.node.pools.get(vol.pool) if vol is not None else None
            if vol is None or pool is None or not pool.active:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching path '{path}'",
                                domain=_D)
            return _vol_ref(pool, vol)

    def _new_volume(self, pool: PoolObj, xml: str) -> VolumeDocument:
        from virt.xml.storage import VolumeDocument

        doc = VolumeDocument.from_string(xml, pool=pool.definition)
        _check_volume_name(doc.name)
        if doc.name in pool.volumes:
            raise VirtError(ErrorNumber.OPERATION_FAILED, "storage vol already exists", domain=_D)
        return doc

    def _place(self, pool: PoolObj, doc: VolumeDocument) -> R.VolumeRef:
        """Check the pool has room for ``doc`` and add it (path and key from the pool)."""
        pdoc = pool.definition
        if pdoc.allocation + doc.allocation > pdoc.capacity:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Not enough free space in pool for volume '{doc.name}'",
                            domain=_D)
        doc.target_path = f"{pdoc.target_path or ''}/{doc.name}"
        doc.key = doc.target_path
        return _vol_ref(pool, _add_volume(self.node, pool, doc))

    @hookimpl
    def virt_vol_create_xml(self, pool: str, xml: str, flags: int) -> R.VolumeRef:
        check_flags(flags, _VOL_CREATE_VALIDATE, "testStorageVolCreateXML", _D)
        with self.node.lock:
            obj = self._active_pool(pool)
            if flags & _VOL_CREATE_VALIDATE:
                # libvirt 9.0 hands the flag to its volume parser, which refuses it.
                raise unsupported_flags(_VOL_CREATE_VALIDATE, "virStorageVolDefParseXML", ErrorDomain.STORAGE)
            return self._place(obj, self._new_volume(obj, xml))

    @hookimpl
    def virt_vol_create_xml_from(self, pool: str, xml: str, clone_key: str, flags: int) -> R.VolumeRef:
        check_flags(flags, 0, "testStorageVolCreateXMLFrom", _D)
        with self.node.lock:
            obj = self._active_pool(pool)
            doc = self._new_volume(obj, xml)
            source: VolumeObj | None = self.node.volume_keys.get(clone_key)
            if source is None:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching key '{clone_key}'",
                                domain=_D)
            # As libvirt's test driver: the volume to copy is looked up by name in the target pool.
            if source.name not in obj.volumes:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching name '{source.name}'",
                                domain=_D)
            return self._place(obj, doc)

    @hookimpl
    def virt_vol_delete(self, key: str, flags: int) -> None:
        check_flags(flags, 0, "testStorageVolDelete", _D)
        with self.node.lock:
            pool, vol = self._vol(key)
            _account(pool, -vol.definition.allocation)
            del pool.volumes[vol.name]
            _unindex_volume(self.node, vol)

    @hookimpl
    def virt_vol_wipe(self, key: str, algorithm: int, flags: int) -> None:
        check_flags(flags, 0, "testStorageVolWipePattern", _D)
        if not 0 <= algorithm < _WIPE_ALG_LAST:
            raise VirtError(ErrorNumber.INVALID_ARG, f"wiping algorithm {algorithm} not supported", domain=_D)
        with self.node.lock:
            self._vol(key)  # nothing to overwrite: the test node keeps no data

    @hookimpl
    def virt_vol_resize(self, key: str, capacity: int, flags: int) -> None:
        check_flags(flags, _RESIZE_ALLOCATE | _RESIZE_DELTA | _RESIZE_SHRINK, "testStorageVolResize", _D)
        if capacity < 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "capacity must not be negative", domain=_D)
        with self.node.lock:
            pool, vol = self._vol(key)
            doc = vol.definition
            if flags & _RESIZE_DELTA:
                if flags & _RESIZE_SHRINK:
                    new_capacity = doc.capacity - min(capacity, doc.capacity)
                else:
                    new_capacity = doc.capacity + capacity
            else:
                new_capacity = capacity
            if new_capacity < doc.allocation:
                raise VirtError(ErrorNumber.INVALID_ARG, "can't shrink capacity below existing allocation",
                                domain=_D)
            if new_capacity < doc.capacity and not flags & _RESIZE_SHRINK:
                raise VirtError(ErrorNumber.INVALID_ARG,
                                "Can't shrink capacity below current capacity unless shrink flag explicitly "
                                "specified", domain=_D)
            delta = new_capacity - doc.allocation if flags & _RESIZE_ALLOCATE else 0
            if delta > pool.definition.available:
                raise VirtError(ErrorNumber.OPERATION_FAILED, "Not enough space left in storage pool", domain=_D)
            doc.capacity = new_capacity
            if flags & _RESIZE_ALLOCATE:
                doc.allocation = new_capacity
                _account(pool, delta)

    @hookimpl
    def virt_vol_get_info(self, key: str) -> R.VolumeInfo:
        with self.node.lock:
            pool, vol = self._vol(key)
            kind = _VOLUME_TYPE_OF_POOL.get(pool.type)
            if kind is None:
                raise VirtError(ErrorNumber.INTERNAL_ERROR,
                                f"Unexpected enum value {pool.type} for virStoragePoolType", domain=_D)
            return R.VolumeInfo(type=kind, capacity=vol.definition.capacity, allocation=vol.definition.allocation)

    @hookimpl
    def virt_vol_get_xml(self, key: str, flags: int) -> str:
        check_flags(flags, 0, "testStorageVolGetXMLDesc", _D)
        with self.node.lock:
            return self._vol(key)[1].definition.to_string()

