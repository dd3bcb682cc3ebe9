"""Host storage pools and volumes for local drivers: the ``host-storage`` provider.

Pools of type ``dir``, ``fs`` and ``logical`` (the last one can be defined, built and
deleted, but refuses to start: see :mod:`virt_host._backends`).  A pool's persistent config is
``<config>/NAME.xml`` (autostart: a symlink in ``<config>/autostart/``), a running pool's live
definition is ``<run>/NAME.xml``: a pool is running exactly when that file exists, so every
connection and every process of the same root (:mod:`virt_host._paths`) sees the same pools in
the same states.  Every file is written atomically; changes are serialised by a lock file.
Volumes are the entries of a running pool's target directory (:mod:`virt_host._volumes`).

For drivers that resolve ``<disk type='volume'>`` sources: :func:`resolve_volume`.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import PoolEvent, PoolEventType, PoolInfo, PoolRef, PoolState, VolumeInfo, VolumeRef, VolumeType
from virt._uri import URI, parse_uri
from virt.plugin import OpenRequest
from virt.xml.storage import PoolDocument, VolumeDocument

from virt_host import _backends
from virt_host._files import atomic_write
from virt_host._paths import StorageLayout, layout_for
from virt_host._root import HostProvider, HostRoot, root_of
from virt_host._volumes import Volume, check_new_name, describe, describe_file, valid_name, volume_names, volume_xml
from virt_host._volumes import find as find_file

__all__ = ["ResolvedVolume", "StorageProvider", "StorageRoot", "resolve_volume", "root_for"]

_D = ErrorDomain.STORAGE
_log = logging.getLogger("virt.host.storage")

# virConnectListAllStoragePoolsFlags
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_TYPE_BITS = {
    "dir": 64, "fs": 128, "netfs": 256, "logical": 512, "disk": 1024, "iscsi": 2048, "scsi": 4096,
    "mpath": 8192, "rbd": 16384, "sheepdog": 32768, "gluster": 65536, "zfs": 131072, "vstorage": 262144,
    "iscsi-direct": 524288,
}
_LIST_ALL = 63 | sum(_TYPE_BITS.values())
_POOL_DEFINE_VALIDATE = 1
_POOL_XML_INACTIVE = 1
# virStoragePoolCreateFlags
_CREATE_WITH_BUILD, _CREATE_OVERWRITE, _CREATE_NO_OVERWRITE = 1, 2, 4
# virStorageVolCreateFlags
_VOL_PREALLOC_METADATA, _VOL_REFLINK, _VOL_VALIDATE = 1, 2, 4
_RESIZE_ALLOCATE, _RESIZE_DELTA, _RESIZE_SHRINK = 1, 2, 4
_WIPE_ALGORITHMS = ("zero", "nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7", "pfitzner33", "random",
                    "trim")
_MAX_CHUNK = 8 << 20
_DEFAULT_VOL_MODE = 0o600  # libvirt's VIR_STORAGE_DEFAULT_VOL_PERM_MODE


def _invalid(message: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, message, domain=_D)


def _system_error(what: str, exc: OSError | int) -> VirtError:
    text = os.strerror(exc) if isinstance(exc, int) else (exc.strerror or str(exc))
    return VirtError(ErrorNumber.SYSTEM_ERROR, f"{what}: {text}", domain=_D)


@attrs.define(eq=False)
class _Pool:
    """One pool as its files say: the persistent config, the live definition while running."""

    name: str
    uuid: str
    config: PoolDocument | None = None
    live: PoolDocument | None = None
    autostart: bool = False

    @property
    def active(self) -> bool:
        return self.live is not None

    @property
    def persistent(self) -> bool:
        return self.config is not None

    @property
    def definition(self) -> PoolDocument:
        doc = self.live if self.live is not None else self.config
        assert doc is not None
        return doc

    @property
    def ref(self) -> PoolRef:
        return PoolRef(self.name, self.uuid)

    @property
    def target(self) -> str:
        return self.definition.target_path or ""

    @property
    def has_volumes(self) -> bool:
        return self.definition.type in ("dir", "fs")


@attrs.frozen
class _Located:
    """Where a volume's file is, as a full lookup found it, and what tells cheaply that the
    lookup would still find it there: the identity of its pool's state file (the pool still runs,
    not restarted since) and of the file itself (the same inode on the same device: for an ``fs``
    pool, still on the mounted filesystem; and of the same type, as an inode number is reused)."""

    name: str
    path: str
    type: VolumeType
    state: str
    state_id: tuple[int, int, int]
    file_id: tuple[int, int, int]


def _state_id(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _file_id(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)


class StorageRoot(HostRoot):
    """The pools of one storage root, shared by every connection to it in this process (and,
    through its files, with every other process)."""

    KIND = "storage pool"
    layout: StorageLayout

    def __init__(self, layout: StorageLayout) -> None:
        super().__init__(layout)
        # path -> (identity, document, name, uuid) of each pool file read (paths as strings:
        # pools() runs on every call, and pathlib would be most of its cost)
        self._docs: dict[str, tuple[tuple[int, int, int], PoolDocument, str, str]] = {}
        self._config_dir, self._run_dir = os.fspath(layout.config), os.fspath(layout.run)
        self._autostart_dir = os.fspath(layout.autostart)
        self._located: dict[str, _Located] = {}

    # -- reading the files --------------------------------------------------------------------

    def _read(self, path: str) -> tuple[tuple[int, int, int], PoolDocument, str, str] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = _state_id(st)
        cached = self._docs.get(path)
        if cached is not None and cached[0] == key:
            return cached
        try:
            with open(path, "rb") as fh:
                doc = PoolDocument.from_string(fh.read())
        except (OSError, VirtError) as exc:
            _log.warning("ignoring storage pool file %s: %s", path, exc)
            return None
        read = self._docs[path] = (key, doc, doc.name, doc.uuid)
        return read

    def _scan(self, directory: str) -> list[tuple[str, PoolDocument, str]]:
        """The name, document and UUID of each pool file of ``directory``."""
        try:
            names = os.listdir(directory)
        except OSError:
            return []
        found: list[tuple[str, PoolDocument, str]] = []
        for entry in names:
            if not entry.endswith(".xml"):  # (temporary files end in .tmp)
                continue
            read = self._read(os.path.join(directory, entry))
            if read is not None and read[2] == entry[:-4]:
                found.append((read[2], read[1], read[3]))
        return found

    def pools(self) -> dict[str, _Pool]:
        """Every pool, by name (fresh from the files)."""
        out: dict[str, _Pool] = {}
        for name, doc, uuid in self._scan(self._config_dir):
            out[name] = _Pool(name, uuid, config=doc,
                              autostart=os.path.lexists(os.path.join(self._autostart_dir, f"{name}.xml")))
        for name, doc, uuid in self._scan(self._run_dir):
            if doc.type == "fs" and not _backends.still_mounted(doc):
                continue  # unmounted behind our back (or a reboot kept the state file): not running
            pool = out.get(name)
            if pool is None:
                out[name] = _Pool(name, uuid, live=doc)
            elif pool.uuid == uuid:
                pool.live = doc
        return out

    def by_uuid(self, uuid: str) -> _Pool:
        for pool in self.pools().values():
            if pool.uuid == uuid:
                return pool
        raise VirtError(ErrorNumber.NO_STORAGE_POOL, f"no storage pool with matching uuid '{uuid}'", domain=_D)

    def by_name(self, name: str) -> _Pool:
        pool = self.pools().get(name)
        if pool is None:
            raise VirtError(ErrorNumber.NO_STORAGE_POOL, f"no storage pool with matching name '{name}'", domain=_D)
        return pool

    def active(self, uuid: str) -> _Pool:
        pool = self.by_uuid(uuid)
        if not pool.active:
            raise _invalid(f"storage pool '{pool.name}' is not active")
        return pool

    def find(self, key: str, *, what: str = "key") -> tuple[_Pool, str, str, os.stat_result, VolumeType]:
        """The file of the volume whose key (its path) is ``key``, in a running pool: the pool,
        the volume's name, path, ``stat`` and type (its content is not looked at).  What it
        finds is remembered for :meth:`locate` and :meth:`open_volume`."""
        path = os.path.normpath(key) if key.startswith("/") else ""
        directory, name = os.path.split(path)
        if path and valid_name(name):
            for pool in self.pools().values():
                if pool.active and pool.has_volumes and os.path.normpath(pool.target) == directory:
                    found = find_file(pool.target, name)
                    if found is not None:
                        self.remember(key, pool, name, *found)
                        return pool, name, *found
        raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching {what} '{key}'", domain=_D)

    def volume(self, key: str, *, what: str = "key") -> tuple[_Pool, Volume]:
        """The volume whose key (its path) is ``key``, in a running pool."""
        pool, name, path, st, kind = self.find(key, what=what)
        return pool, describe_file(name, path, st, kind)

    def remember(self, key: str, pool: _Pool, name: str, path: str, st: os.stat_result, kind: VolumeType) -> None:
        """Remember that volume ``key`` is the file ``path`` of the running ``pool``, with the
        identity of the state file :meth:`pools` read ``pool`` from (a newer one is a miss)."""
        state = os.path.join(self._run_dir, f"{pool.name}.xml")
        read = self._docs.get(state)
        if read is None or read[1] is not pool.live:
            return
        if len(self._located) >= 256:
            self._located.clear()
        self._located[key] = _Located(name, path, kind, state, read[0], _file_id(st))

    def _recalled(self, key: str) -> _Located | None:
        """What :meth:`remember` knows of ``key``, if its pool still runs unchanged."""
        located = self._located.get(key)
        if located is None:
            return None
        try:
            if _state_id(os.stat(located.state)) == located.state_id:
                return located
        except OSError:
            pass
        self._located.pop(key, None)
        return None

    def locate(self, key: str) -> tuple[str, str, os.stat_result, VolumeType]:
        """The volume's name, path, ``stat`` and type of :meth:`find`, but answered by two
        ``stat`` calls (no listing, no XML) when a lookup of ``key`` is remembered and both its
        pool's state file and the file found are still the very same (same inode)."""
        located = self._recalled(key)
        if located is not None:
            try:
                st = os.stat(located.path)
            except OSError:
                st = None
            if st is not None and _file_id(st) == located.file_id:
                return located.name, located.path, st, located.type
            self._located.pop(key, None)
        _, name, path, st, kind = self.find(key)
        return name, path, st, kind

    def open_volume(self, key: str, flags: int, what: str) -> tuple[int, str, VolumeType]:
        """A new descriptor of the file of volume ``key`` (``os.open`` ``flags``), its path and
        the volume's type, for one chunk of a stream: as :meth:`locate`, the first chunk looks
        the volume up in full, later ones check that nothing changed (no listing, no XML, no
        ``qemu-img``).  A directory volume is ``OPERATION_UNSUPPORTED``; ``what`` words the
        error of a failed ``open`` ("cannot read volume")."""
        located = self._recalled(key)
        if located is not None and located.type != VolumeType.DIR:
            try:
                fd = os.open(located.path, flags | os.O_CLOEXEC)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    if _file_id(os.fstat(fd)) == located.file_id:
                        return fd, located.path, located.type
                except OSError:
                    pass
                os.close(fd)
            self._located.pop(key, None)
        _, name, path, _, kind = self.find(key)
        if kind == VolumeType.DIR:
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"volume '{name}' is a directory", domain=_D)
        try:
            fd = os.open(path, flags | os.O_CLOEXEC)
        except OSError as exc:
            raise _system_error(f"{what} '{path}'", exc) from None
        return fd, path, kind

    def forget(self, key: str) -> None:
        """Drop what :meth:`remember` knows of volume ``key``."""
        self._located.pop(key, None)

    # -- writing them -------------------------------------------------------------------------

    def save_config(self, doc: PoolDocument) -> None:
        path = self.layout.config_file(doc.name)
        try:
            atomic_write(path, _stored(doc))
        except OSError as exc:
            raise _system_error(f"cannot save config file '{path}'", exc) from None

    def save_live(self, doc: PoolDocument) -> None:
        atomic_write(self.layout.state_file(doc.name), _stored(doc))

    def remove_live(self, name: str) -> None:
        try:
            os.unlink(self.layout.state_file(name))
        except FileNotFoundError:
            pass

    # -- events -------------------------------------------------------------------------------

    def emit(self, pool: _Pool, event: PoolEventType) -> None:
        """Tell every open connection of this root in this process."""
        self._emit("virt_event_pool", lambda: PoolEvent(name=pool.name, uuid=pool.uuid, event=event, detail=0))

    # -- autostart ----------------------------------------------------------------------------

    def _autostart(self) -> None:
        for pool in self.pools().values():
            if pool.autostart and not pool.active and pool.config is not None:
                try:
                    _start(self, pool, pool.config, 0)
                except VirtError as exc:
                    _log.warning("could not autostart storage pool %s: %s", pool.name, exc)


def _stored(doc: PoolDocument) -> str:
    """A pool's definition as kept in its files: the sizes are runtime data, left at 0."""
    copy = doc.copy()
    copy.capacity = copy.allocation = copy.available = 0
    return copy.to_string()


def root_for(layout: StorageLayout) -> StorageRoot:
    """The process's one :class:`StorageRoot` of ``layout``."""
    return root_of(StorageRoot, layout)


def _sizes(doc: PoolDocument, pool: _Pool) -> tuple[int, int, int]:
    """capacity, allocation, available of a running pool, as libvirt's ``statvfs`` refresh."""
    if not pool.active or not pool.has_volumes:
        return 0, 0, 0
    try:
        sv = os.statvfs(doc.target_path or "")
    except OSError:
        return 0, 0, 0
    return (sv.f_frsize * sv.f_blocks, sv.f_frsize * (sv.f_blocks - sv.f_bfree), sv.f_frsize * sv.f_bavail)


def _start(root: StorageRoot, pool: _Pool | None, doc: PoolDocument, flags: int) -> None:
    """Build (when asked), start the backend and record the pool as running."""
    build_flags = (_backends.BUILD_OVERWRITE if flags & _CREATE_OVERWRITE else 0) | (
        _backends.BUILD_NO_OVERWRITE if flags & _CREATE_NO_OVERWRITE else 0)
    if flags & (_CREATE_WITH_BUILD | _CREATE_OVERWRITE | _CREATE_NO_OVERWRITE):
        _backends.build(doc, build_flags)
    _backends.start(doc)
    try:
        root.save_live(doc)
    except OSError as exc:
        _backends.stop(doc)
        raise _system_error(f"cannot save the state of pool '{doc.name}'", exc) from None


def _check_duplicate(pools: dict[str, _Pool], doc: PoolDocument, *, check_active: bool) -> _Pool | None:
    """``virStoragePoolObjIsDuplicate`` and ``virStoragePoolObjSourceFindDuplicate``: the pool
    of that name and UUID, if any; another pool's name or UUID or source is an error."""
    existing = pools.get(doc.name)
    for pool in pools.values():
        if pool.uuid == doc.uuid and pool.name != doc.name:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"pool '{pool.name}' is already defined with uuid {doc.uuid}", domain=_D)
    if existing is not None and existing.uuid != doc.uuid:
        raise VirtError(ErrorNumber.OPERATION_FAILED,
                        f"pool '{doc.name}' already exists with uuid {existing.uuid}", domain=_D)
    if existing is not None and check_active and existing.active:
        raise _invalid(f"storage pool '{existing.name}' is already active")
    for pool in pools.values():
        if pool.name == doc.name:
            continue
        for other in (pool.config, pool.live):
            if other is None or other.type != doc.type:
                continue
            if doc.type == "dir":
                clash = other.target_path == doc.target_path
            else:
                clash = bool(set(other.source_device_paths) & set(doc.source_device_paths)) or (
                    doc.type == "logical" and other.source_name == doc.source_name)
            if clash:
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"Storage source conflict with pool: '{pool.name}'",
                                domain=_D)
    return existing


def _pool_matches(pool: _Pool, flags: int) -> bool:
    for on, off, value in ((_ACTIVE, _INACTIVE, pool.active), (_PERSISTENT, _TRANSIENT, pool.persistent),
                           (_AUTOSTART, _NO_AUTOSTART, pool.autostart)):
        if flags & (on | off) and not ((flags & on and value) or (flags & off and not value)):
            return False
    types = flags & ~63
    return not (types and not types & _TYPE_BITS.get(pool.definition.type, 0))


def _parse_pool(xml: str, validate: bool = False) -> PoolDocument:
    doc = PoolDocument.from_string(xml, validate=validate)
    if doc.type not in _backends.SUPPORTED:
        raise _backends.missing_backend(doc.type)
    return doc


def _vol_ref(pool: _Pool, vol: Volume) -> VolumeRef:
    return VolumeRef(pool=pool.name, name=vol.name, key=vol.path, path=vol.path)


def _new_ref(root: StorageRoot, pool: _Pool, name: str) -> VolumeRef:
    """The reference of the volume ``name`` just made in ``pool`` (there is no need to describe
    it: ``_create`` has told ``qemu-img info``'s cache what it is, when it knows)."""
    found = find_file(pool.target, name)
    if found is None:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"volume '{name}' vanished after creation", domain=_D)
    path = found[0]
    root.remember(path, pool, name, *found)
    return VolumeRef(pool=pool.name, name=name, key=path, path=path)


class StorageProvider(HostProvider):
    """The storage operation hooks of one connection (``virt.hookspecs.storage``)."""

    root: StorageRoot

    @classmethod
    def root_for(cls, request: OpenRequest) -> StorageRoot | None:
        layout = layout_for(request.uri)
        return None if layout is None else root_for(layout)

    # -- pools ------------------------------------------------------------------------------

    @hookimpl
    def virt_pool_define_xml(self, xml: str, flags: int) -> PoolRef:
        _backends.check_flags(flags, _POOL_DEFINE_VALIDATE, "storagePoolDefineXML")
        doc = _parse_pool(xml, validate=bool(flags & _POOL_DEFINE_VALIDATE))
        with self.root.lock.held():
            _check_duplicate(self.root.pools(), doc, check_active=False)
            self.root.save_config(doc)
            pool = self.root.by_name(doc.name)
        self.root.emit(pool, PoolEventType.DEFINED)
        return pool.ref

    @hookimpl
    def virt_pool_create_xml(self, xml: str, flags: int) -> PoolRef:
        _backends.check_flags(flags, _CREATE_WITH_BUILD | _CREATE_OVERWRITE | _CREATE_NO_OVERWRITE,
                              "storagePoolCreateXML")
        doc = _parse_pool(xml)
        with self.root.lock.held():
            _check_duplicate(self.root.pools(), doc, check_active=True)
            _start(self.root, None, doc, flags)
            pool = self.root.by_name(doc.name)
        self.root.emit(pool, PoolEventType.STARTED)
        return pool.ref

    @hookimpl
    def virt_pool_build(self, uuid: str, flags: int) -> None:
        with self.root.lock.held():
            pool = self.root.by_uuid(uuid)
            if pool.active:
                raise _invalid(f"storage pool '{pool.name}' is already active")
            _backends.build(pool.definition, flags)
        self.root.emit(pool, PoolEventType.CREATED)

    @hookimpl
    def virt_pool_undefine(self, uuid: str) -> None:
        with self.root.lock.held():
            pool = self.root.by_uuid(uuid)
            if pool.active:
                raise _invalid(f"storage pool '{pool.name}' is still active")
            self.root.remove_config(pool.name)
        self.root.emit(pool, PoolEventType.UNDEFINED)

    @hookimpl
    def virt_pool_lookup_by_name(self, name: str) -> PoolRef:
        return self.root.by_name(name).ref

    @hookimpl
    def virt_pool_lookup_by_uuid(self, uuid: str) -> PoolRef:
        return self.root.by_uuid(uuid).ref

    @hookimpl
    def virt_pool_list(self, flags: int) -> list[PoolRef]:
        _backends.check_flags(flags, _LIST_ALL, "storageConnectListAllStoragePools")
        pools = self.root.pools()
        return [pools[name].ref for name in sorted(pools) if _pool_matches(pools[name], flags)]

    @hookimpl
    def virt_pool_create(self, uuid: str, flags: int) -> None:
        _backends.check_flags(flags, _CREATE_WITH_BUILD | _CREATE_OVERWRITE | _CREATE_NO_OVERWRITE,
                              "storagePoolCreate")
        with self.root.lock.held():
            pool = self.root.by_uuid(uuid)
            if pool.active:
                raise _invalid(f"storage pool '{pool.name}' is already active")
            _start(self.root, pool, pool.definition, flags)
        self.root.emit(pool, PoolEventType.STARTED)

    @hookimpl
    def virt_pool_destroy(self, uuid: str) -> None:
        with self.root.lock.held():
            pool = self.root.active(uuid)
            _backends.stop(pool.definition)
            self.root.remove_live(pool.name)
        self.root.emit(pool, PoolEventType.STOPPED)

    @hookimpl
    def virt_pool_delete(self, uuid: str, flags: int) -> None:
        with self.root.lock.held():
            pool = self.root.by_uuid(uuid)
            if pool.active:
                raise _invalid(f"storage pool '{pool.name}' is still active")
            _backends.delete(pool.definition, flags)
        self.root.emit(pool, PoolEventType.DELETED)

    @hookimpl
    def virt_pool_refresh(self, uuid: str, flags: int) -> None:
        _backends.check_flags(flags, 0, "storagePoolRefresh")
        pool = self.root.active(uuid)
        if pool.has_volumes:
            volume_names(pool.target)  # volumes are read afresh on every call: only check the directory

    @hookimpl
    def virt_pool_get_info(self, uuid: str) -> PoolInfo:
        pool = self.root.by_uuid(uuid)
        capacity, allocation, available = _sizes(pool.definition, pool)
        state = PoolState.RUNNING if pool.active else PoolState.INACTIVE
        return PoolInfo(state=state, capacity=capacity, allocation=allocation, available=available)

    @hookimpl
    def virt_pool_get_xml(self, uuid: str, flags: int) -> str:
        _backends.check_flags(flags, _POOL_XML_INACTIVE, "storagePoolGetXMLDesc")
        pool = self.root.by_uuid(uuid)
        source = pool.config if flags & _POOL_XML_INACTIVE and pool.config is not None else pool.definition
        doc = source.copy()
        if pool.active:
            doc.capacity, doc.allocation, doc.available = _sizes(doc, pool)
            if pool.has_volumes and source is pool.live:
                _target_perms(doc)
        return doc.to_string()

    @hookimpl
    def virt_pool_is_active(self, uuid: str) -> bool:
        return self.root.by_uuid(uuid).active

    @hookimpl
    def virt_pool_is_persistent(self, uuid: str) -> bool:
        return self.root.by_uuid(uuid).persistent

    @hookimpl
    def virt_pool_get_autostart(self, uuid: str) -> bool:
        pool = self.root.by_uuid(uuid)
        return pool.persistent and pool.autostart

    @hookimpl
    def virt_pool_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.root.lock.held():
            pool = self.root.by_uuid(uuid)
            if not pool.persistent:
                raise VirtError(ErrorNumber.INVALID_ARG, "cannot set autostart for transient pool", domain=_D)
            self.root.set_autostart(pool.name, bool(autostart))

    # -- volumes ----------------------------------------------------------------------------

    def _volume_pool(self, uuid: str) -> _Pool:
        pool = self.root.active(uuid)
        if not pool.has_volumes:
            raise VirtError(ErrorNumber.NO_SUPPORT, "storage pool does not support volumes", domain=_D)
        return pool

    @hookimpl
    def virt_vol_list(self, pool: str, flags: int) -> list[VolumeRef]:
        _backends.check_flags(flags, 0, "storagePoolListAllVolumes")
        obj = self._volume_pool(pool)
        target = obj.target
        return [VolumeRef(pool=obj.name, name=name, key=os.path.join(target, name),
                          path=os.path.join(target, name)) for name in volume_names(target)]

    @hookimpl
    def virt_vol_lookup_by_name(self, pool: str, name: str) -> VolumeRef:
        obj = self._volume_pool(pool)
        found = find_file(obj.target, name)
        if found is None:
            raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching name '{name}'", domain=_D)
        vol = describe_file(name, *found)
        self.root.remember(vol.path, obj, name, *found)
        return _vol_ref(obj, vol)

    @hookimpl
    def virt_vol_lookup_by_key(self, key: str) -> VolumeRef:
        return _vol_ref(*self.root.volume(key))

    @hookimpl
    def virt_vol_lookup_by_path(self, path: str) -> VolumeRef:
        return _vol_ref(*self.root.volume(path, what="path"))

    def _new_volume(self, pool: _Pool, xml: str, flags: int, **options: Any) -> VolumeDocument:
        doc = VolumeDocument.from_string(xml, pool=pool.definition, validate=bool(flags & _VOL_VALIDATE),
                                         **options)
        check_new_name(doc.name)
        path = os.path.join(pool.target, doc.name)
        if os.path.lexists(path):
            raise VirtError(ErrorNumber.STORAGE_VOL_EXIST, f"'{doc.name}'", domain=_D)
        if doc.encryption_format is not None:
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                            f"encrypted volumes are not supported by storage pool '{pool.name}'", domain=_D)
        doc.target_path = path
        doc.key = path
        return doc

    @hookimpl
    def virt_vol_create_xml(self, pool: str, xml: str, flags: int) -> VolumeRef:
        _backends.check_flags(flags, _VOL_PREALLOC_METADATA | _VOL_VALIDATE, "storageVolCreateXML")
        with self.root.lock.held():
            obj = self._volume_pool(pool)
            doc = self._new_volume(obj, xml, flags, opt_capacity=True)
            from virt.xml._base import parse_xml

            from virt_host._create import create_volume

            given = doc.backing_path is not None and parse_xml(xml).find("backingStore/format") is not None
            create_volume(obj.target, doc, prealloc_metadata=bool(flags & _VOL_PREALLOC_METADATA),
                          backing_format_given=given)
            return _new_ref(self.root, obj, doc.name)

    @hookimpl
    def virt_vol_create_xml_from(self, pool: str, xml: str, clone_key: str, flags: int) -> VolumeRef:
        _backends.check_flags(flags, _VOL_PREALLOC_METADATA | _VOL_VALIDATE, "storageVolCreateXMLFrom")
        with self.root.lock.held():
            obj = self._volume_pool(pool)
            try:
                _, source = self.root.volume(clone_key)
            except VirtError:
                raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching key '{clone_key}'",
                                domain=_D) from None
            doc = self._new_volume(obj, xml, flags, no_capacity=True)
            from virt_host._create import clone_volume

            clone_volume(obj.target, doc, source, prealloc_metadata=bool(flags & _VOL_PREALLOC_METADATA))
            return _new_ref(self.root, obj, doc.name)

    @hookimpl
    def virt_vol_delete(self, key: str, flags: int) -> None:
        _backends.check_flags(flags, 0, "virStorageBackendFileSystemVolDelete")
        with self.root.lock.held():
            _, path, _, kind = self.root.locate(key)  # (what the file holds does not matter)
            self.root.forget(key)
            try:
                if kind == VolumeType.DIR:
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                raise _system_error(f"cannot unlink file '{path}'", exc) from None

    @hookimpl
    def virt_vol_wipe(self, key: str, algorithm: int, flags: int) -> None:
        _backends.check_flags(flags, 0, "storageVolWipePattern")
        if not 0 <= algorithm < len(_WIPE_ALGORITHMS):
            raise VirtError(ErrorNumber.INVALID_ARG, f"wiping algorithm {algorithm} not supported", domain=_D)
        with self.root.lock.held():
            _, vol = self.root.volume(key)
            from virt_host._create import wipe_volume

            wipe_volume(vol, _WIPE_ALGORITHMS[algorithm])

    @hookimpl
    def virt_vol_resize(self, key: str, capacity: int, flags: int) -> None:
        _backends.check_flags(flags, _RESIZE_ALLOCATE | _RESIZE_DELTA | _RESIZE_SHRINK, "storageVolResize")
        if capacity < 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "capacity must not be negative", domain=_D)
        with self.root.lock.held():
            pool, vol = self.root.volume(key)
            if flags & _RESIZE_DELTA:
                if flags & _RESIZE_SHRINK:
                    new_capacity = vol.capacity - min(capacity, vol.capacity)
                else:
                    new_capacity = vol.capacity + capacity
            else:
                new_capacity = capacity
            if new_capacity < vol.allocation and vol.format == "raw":
                raise VirtError(ErrorNumber.INVALID_ARG, "can't shrink capacity below existing allocation",
                                domain=_D)
            if new_capacity < vol.capacity and not flags & _RESIZE_SHRINK:
                raise VirtError(ErrorNumber.INVALID_ARG,
                                "Can't shrink capacity below current capacity unless shrink flag explicitly "
                                "specified", domain=_D)
            if flags & _RESIZE_ALLOCATE:
                available = _sizes(pool.definition, pool)[2]
                if new_capacity - vol.allocation > available:
                    raise VirtError(ErrorNumber.OPERATION_FAILED, "Not enough space left in storage pool",
                                    domain=_D)
            from virt_host._create import resize_volume

            resize_volume(vol, new_capacity, allocate=bool(flags & _RESIZE_ALLOCATE),
                          shrink=bool(flags & _RESIZE_SHRINK))

    @hookimpl
    def virt_vol_get_info(self, key: str) -> VolumeInfo:
        return self.root.volume(key)[1].info

    @hookimpl
    def virt_vol_get_xml(self, key: str, flags: int) -> str:
        _backends.check_flags(flags, 0, "storageVolGetXMLDesc")
        return volume_xml(self.root.volume(key)[1])

    @hookimpl
    def virt_vol_download(self, key: str, offset: int, length: int, flags: int) -> bytes:
        _backends.check_flags(flags, 0, "storageVolDownload")
        if offset < 0 or length <= 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "offset must not be negative and length must be positive",
                            domain=_D)
        fd, path, kind = self.root.open_volume(key, os.O_RDONLY, "cannot read volume")
        want = min(length, _MAX_CHUNK)
        try:
            data = os.pread(fd, want, offset)
            if len(data) == want and kind == VolumeType.FILE:
                # start reading the next chunk while this one travels
                os.posix_fadvise(fd, offset + want, want, os.POSIX_FADV_WILLNEED)
            return data
        except OSError as exc:
            raise _system_error(f"cannot read volume '{path}'", exc) from None
        finally:
            os.close(fd)

    @hookimpl
    def virt_vol_upload(self, key: str, offset: int, data: bytes, flags: int) -> None:
        _backends.check_flags(flags, 0, "storageVolUpload")
        if offset < 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "offset must not be negative", domain=_D)
        fd, path, _ = self.root.open_volume(key, os.O_WRONLY, "cannot write volume")
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
        except OSError as exc:
            raise _system_error(f"cannot write volume '{path}'", exc) from None
        finally:
            os.close(fd)


def _target_perms(doc: PoolDocument) -> None:
    """Show the target directory's real mode and owner, as libvirt's refresh does."""
    from virt.xml._base import sub
    from virt.xml._util import arrange

    path = doc.target_path or ""
    try:
        st = os.stat(path)
    except OSError:
        return
    target = doc.root.find("target")
    if target is None:
        return
    old = target.find("permissions")
    label = old.findtext("label") if old is not None else None
    if old is not None:
        target.remove(old)
    perms = sub(target, "permissions")
    sub(perms, "mode", text=f"{st.st_mode & 0o777:04o}")
    sub(perms, "owner", text=str(st.st_uid))
    sub(perms, "group", text=str(st.st_gid))
    if label:
        sub(perms, "label", text=label)
    arrange(target, ("path", "permissions"))


@attrs.frozen
class ResolvedVolume:
    """Where a ``<source pool='P' volume='V'/>`` disk is on the host."""

    pool: str
    name: str
    path: str
    type: VolumeType
    format: str
    pool_type: str


def resolve_volume(uri: URI | str, pool: str, volume: str) -> ResolvedVolume:
    """Resolve volume ``volume`` of pool ``pool`` of the storage root of ``uri`` (the URI a
    local driver was opened with: ``qemu:///embed?root=DIR``, ``qemu:///session``...).

    :raises VirtError: ``NO_STORAGE_POOL``, ``NO_STORAGE_VOL``; ``OPERATION_INVALID`` when
        the pool is not running ("storage pool 'P' containing volume 'V' is not active").
    """
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    layout = layout_for(parsed)
    if layout is None:
        raise VirtError(ErrorNumber.INVALID_ARG, f"no host storage for URI '{parsed}'", domain=_D)
    root = root_for(layout)
    obj = root.by_name(pool)
    if not obj.active:
        raise _invalid(f"storage pool '{pool}' containing volume '{volume}' is not active")
    vol = describe(obj.target, volume) if obj.has_volumes else None
    if vol is None:
        raise VirtError(ErrorNumber.NO_STORAGE_VOL, f"no storage vol with matching name '{volume}'", domain=_D)
    return ResolvedVolume(pool=obj.name, name=vol.name, path=vol.path, type=vol.type, format=vol.format,
                          pool_type=obj.definition.type)

