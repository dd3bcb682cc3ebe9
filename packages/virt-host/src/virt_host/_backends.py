"""What each pool type does to the host when it is built, started, stopped and deleted.

``dir``: a directory.  ``fs``: a filesystem on a block device (``mkfs`` at build when asked,
mounted on the target directory while the pool runs).  ``logical``: an LVM volume group on the
source devices (``pvcreate`` + ``vgcreate`` at build, ``vgremove`` + ``pvremove`` at delete);
without device-mapper no logical volume can exist, so such a pool refuses to start.
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.storage import PoolDocument

from virt_host._tools import blkid_type, have_device_mapper, is_mounted, run

__all__ = ["SUPPORTED", "build", "check_flags", "delete", "start", "stop"]

_D = ErrorDomain.STORAGE
SUPPORTED = ("dir", "fs", "logical")
# virStoragePoolBuildFlags
BUILD_NO_OVERWRITE, BUILD_OVERWRITE = 4, 8
#: libvirt's virStoragePoolType numbers, for "missing backend" errors
POOL_TYPE_NUMBERS = {
    "dir": 0, "fs": 1, "netfs": 2, "logical": 3, "disk": 4, "iscsi": 5, "iscsi-direct": 6, "scsi": 7,
    "mpath": 8, "rbd": 9, "sheepdog": 10, "gluster": 11, "zfs": 12, "vstorage": 13,
}
_DEFAULT_DIR_MODE = 0o711  # libvirt's VIR_STORAGE_DEFAULT_POOL_PERM_MODE


def check_flags(flags: int, allowed: int, function: str) -> None:
    """libvirt's ``virCheckFlags``."""
    if flags & ~allowed:
        message = f"unsupported flags (0x{flags & ~allowed:x}) in function {function}"
        raise VirtError(ErrorNumber.INVALID_ARG, message, domain=_D, message=message)


def _system_error(what: str, exc: OSError | int) -> VirtError:
    text = os.strerror(exc) if isinstance(exc, int) else (exc.strerror or str(exc))
    return VirtError(ErrorNumber.SYSTEM_ERROR, f"{what}: {text}", domain=_D)


def missing_backend(kind: str) -> VirtError:
    return VirtError(ErrorNumber.INTERNAL_ERROR,
                     f"missing backend for pool type {POOL_TYPE_NUMBERS.get(kind, -1)} ({kind})", domain=_D)


def _mode_of(doc: PoolDocument) -> int:
    text = doc.root.findtext("target/permissions/mode")
    return int(text, 8) if text else _DEFAULT_DIR_MODE


def _ids_of(doc: PoolDocument) -> tuple[int, int]:
    owner = doc.root.findtext("target/permissions/owner")
    group = doc.root.findtext("target/permissions/group")
    return (int(owner) if owner else -1, int(group) if group else -1)


def _make_target(doc: PoolDocument) -> None:
    """``virStorageBackendBuildLocal``: the target directory, its parents, mode and owner."""
    path = doc.target_path or ""
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise _system_error(f"cannot create path '{parent}'", exc) from None
    mode = _mode_of(doc)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise _system_error(f"path '{path}' is not a directory", errno.ENOTDIR) from None
    except OSError as exc:
        raise _system_error(f"cannot create directory '{path}'", exc) from None
    try:
        os.chmod(path, mode)
        uid, gid = _ids_of(doc)
        if (uid, gid) != (-1, -1) and os.geteuid() == 0:
            os.chown(path, uid, gid)
    except OSError as exc:
        raise _system_error(f"cannot set permissions of '{path}'", exc) from None


def _check_target(doc: PoolDocument) -> None:
    """What libvirt's refresh meets first: the target must be a directory it can open."""
    path = doc.target_path or ""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _system_error(f"cannot open directory '{path}'", exc) from None
    if not _stat.S_ISDIR(st.st_mode):
        raise _system_error(f"cannot open directory '{path}'", errno.ENOTDIR)


def _device(doc: PoolDocument) -> str:
    devices = doc.source_device_paths
    if not devices:
        raise VirtError(ErrorNumber.INVALID_ARG, "missing source device", domain=_D)
    return devices[0]


def _exclusive(flags: int) -> None:
    if flags & BUILD_OVERWRITE and flags & BUILD_NO_OVERWRITE:
        raise VirtError(ErrorNumber.INVALID_ARG,
                        "Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' "
                        "are mutually exclusive", domain=_D)


def _refuse_formatted(device: str) -> None:
    """``virStorageBackendDeviceIsEmpty``: refuse a device that holds a signature."""
    found = blkid_type(device)
    if found is not None:
        raise VirtError(ErrorNumber.STORAGE_POOL_BUILT, f"Device '{device}' already formatted using '{found}'",
                        domain=_D)


def build(doc: PoolDocument, flags: int) -> None:
    kind = doc.type
    if kind == "dir":
        check_flags(flags, BUILD_OVERWRITE | BUILD_NO_OVERWRITE, "virStorageBackendFileSystemBuild")
        _exclusive(flags)
        _make_target(doc)
    elif kind == "fs":
        check_flags(flags, BUILD_OVERWRITE | BUILD_NO_OVERWRITE, "virStorageBackendFileSystemBuild")
        _exclusive(flags)
        _make_target(doc)
        if flags:  # as libvirt: a plain build only makes the mount point
            _mkfs(doc, flags)
    elif kind == "logical":
        check_flags(flags, BUILD_OVERWRITE | BUILD_NO_OVERWRITE, "virStorageBackendLogicalBuildPool")
        _exclusive(flags)
        devices = doc.source_device_paths
        if not devices:
            raise VirtError(ErrorNumber.INVALID_ARG, "missing source device", domain=_D)
        for device in devices:
            if not flags & BUILD_OVERWRITE:
                _refuse_formatted(device)
        done: list[str] = []
        try:
            for device in devices:
                run("pvcreate", "-ff", "-y", device)
                done.append(device)
            run("vgcreate", doc.source_name or doc.name, *devices)
        except VirtError:
            for device in done:  # nothing half-built
                run("pvremove", "-ff", "-y", device, check=False)
            raise
    else:
        raise missing_backend(kind)


def _mkfs(doc: PoolDocument, flags: int) -> None:
    device = _device(doc)
    fmt = doc.source_format or "auto"
    if not os.path.exists(device):
        raise _system_error(f"cannot find source device '{device}'", errno.ENOENT)
    if fmt == "auto":
        raise VirtError(ErrorNumber.INVALID_ARG,
                        f"cannot build a filesystem of type 'auto' on '{device}': give the pool a "
                        "<source><format type='...'/></source>", domain=_D)
    if flags & BUILD_NO_OVERWRITE:
        _refuse_formatted(device)
    force = {"xfs": "-f", "ext2": "-F", "ext3": "-F", "ext4": "-F", "vfat": "-I"}.get(fmt)
    run("mkfs", "-t", fmt, *([force] if force else []), device)


def start(doc: PoolDocument) -> None:
    kind = doc.type
    if kind == "dir":
        _check_target(doc)
    elif kind == "fs":
        device = _device(doc)
        target = doc.target_path or ""
        if not os.path.exists(device):
            raise _system_error(f"cannot find source device '{device}'", errno.ENOENT)
        _check_target(doc)
        mounted = is_mounted(target)
        if mounted is None:
            fmt = doc.source_format or "auto"
            run("mount", *(["-t", fmt] if fmt != "auto" else []), device, target)
        elif os.path.realpath(mounted) != os.path.realpath(device):
            raise VirtError(ErrorNumber.OPERATION_INVALID,
                            f"Target '{target}' is already mounted from '{mounted}'", domain=_D)
    elif kind == "logical":
        vg = doc.source_name or doc.name
        if not have_device_mapper():
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                            f"cannot start logical pool '{doc.name}': this kernel has no device-mapper, "
                            f"so no logical volume of volume group '{vg}' can be created or activated",
                            domain=_D)
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                        f"cannot start logical pool '{doc.name}': logical volumes are not implemented by "
                        "virt-host yet", domain=_D)
    else:
        raise missing_backend(kind)


def still_mounted(doc: PoolDocument) -> bool:
    """Whether a running ``fs`` pool's device is still mounted on its target."""
    return is_mounted(doc.target_path or "") is not None


def stop(doc: PoolDocument) -> None:
    if doc.type == "fs":
        target = doc.target_path or ""
        if is_mounted(target) is not None:
            run("umount", target)


def delete(doc: PoolDocument, flags: int) -> None:
    kind = doc.type
    if kind in ("dir", "fs"):
        check_flags(flags, 0, "virStorageBackendFileSystemDelete")
        path = doc.target_path or ""
        if kind == "fs" and is_mounted(path) is not None:
            raise VirtError(ErrorNumber.OPERATION_INVALID, f"Target '{path}' is still mounted", domain=_D)
        try:
            os.rmdir(path)
        except OSError as exc:
            raise _system_error(f"failed to remove pool '{path}'", exc) from None
    elif kind == "logical":
        check_flags(flags, 0, "virStorageBackendLogicalDeletePool")
        run("vgremove", "-f", doc.source_name or doc.name)
        for device in doc.source_device_paths:
            run("pvremove", "-ff", "-y", device, check=False)
    else:
        raise missing_backend(kind)
