"""Making, copying, wiping and resizing the volumes of directory pools.

Raw files are plain files (sparse up to their ``<allocation>``); every other format is made
by ``qemu-img create``, copied by ``qemu-img convert`` and resized by ``qemu-img resize``.  A
new volume is made under a temporary name in its pool and linked to its own name only when it
is complete, so no other process ever sees half a volume, and a failure leaves nothing.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import VolumeType
from virt.xml.storage import VolumeDocument

from virt_host._tools import ImageInfo, image_info, made_image_info, qemu_format, qemu_img, remember_image, run
from virt_host._volumes import TMP_PREFIX, Volume

__all__ = ["clone_volume", "create_volume", "resize_volume", "wipe_volume"]

_D = ErrorDomain.STORAGE
_DEFAULT_VOL_MODE = 0o600  # libvirt's VIR_STORAGE_DEFAULT_VOL_PERM_MODE
_ZEROS = bytes(1 << 20)
_SCRUB_PATTERNS = {"nnsa": "nnsa", "dod": "dod", "bsi": "bsi", "gutmann": "gutmann", "schneier": "schneier",
                   "pfitzner7": "pfitzner7", "pfitzner33": "pfitzner33", "random": "random"}


def _system_error(what: str, exc: OSError | int) -> VirtError:
    text = os.strerror(exc) if isinstance(exc, int) else (exc.strerror or str(exc))
    return VirtError(ErrorNumber.SYSTEM_ERROR, f"{what}: {text}", domain=_D)


def _perms(doc: VolumeDocument) -> tuple[int, int, int]:
    root = doc.root
    mode = root.findtext("target/permissions/mode")
    owner = root.findtext("target/permissions/owner")
    group = root.findtext("target/permissions/group")
    return (int(mode, 8) if mode else _DEFAULT_VOL_MODE, int(owner) if owner else -1, int(group) if group else -1)


def _available(directory: str) -> int:
    sv = os.statvfs(directory)
    return sv.f_frsize * sv.f_bavail


def _finish(tmp: str, final: str, doc: VolumeDocument) -> None:
    """Give the complete file its mode and owner, then its name (never over another file)."""
    mode, uid, gid = _perms(doc)
    os.chmod(tmp, mode)
    if (uid, gid) != (-1, -1) and os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise VirtError(ErrorNumber.STORAGE_VOL_EXIST, f"'{doc.name}'", domain=_D) from None
    os.unlink(tmp)


def _make(target: str, doc: VolumeDocument, fill: Callable[[str], None]) -> None:
    """Run ``fill(tmp)`` on a fresh temporary path of ``target``, then publish it as the volume;
    any failure removes what was made."""
    final = doc.target_path or os.path.join(target, doc.name)
    tmp = os.path.join(target, f"{TMP_PREFIX}{os.getpid()}-{doc.name}")
    try:
        fill(tmp)
        _finish(tmp, final, doc)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise _system_error(f"cannot create volume '{final}'", exc) from None
        raise


def _remember(path: str, info: Callable[[], ImageInfo | None]) -> None:
    """Remember what ``info()`` says of the volume just made at ``path`` (so that describing it
    runs no ``qemu-img info``), when nothing touched the file while it was read."""
    try:
        before = os.stat(path)
        found = info()
        after = os.stat(path)
    except OSError:
        return
    if found is not None and (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
            after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns):
        remember_image(path, after, found)


def _qcow2_options(doc: VolumeDocument, prealloc_metadata: bool) -> list[str]:
    opts: list[str] = []
    fmt = doc.format_type or "raw"
    if fmt == "qcow2":
        compat = doc.root.findtext("target/compat")
        if compat:
            opts.append(f"compat={compat}")
        cluster = doc.root.findtext("target/clusterSize")
        if cluster:
            opts.append(f"cluster_size={cluster}")
        if doc.root.find("target/features/lazy_refcounts") is not None:
            opts.append("lazy_refcounts=on")
        if doc.root.find("target/features/extended_l2") is not None:
            opts.append("extended_l2=on")
    if prealloc_metadata:
        if fmt not in ("qcow2", "qed"):
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                            f"metadata preallocation is not supported for format '{fmt}'", domain=_D)
        opts.append("preallocation=metadata")
    return ["-o", ",".join(opts)] if opts else []


def _backing(doc: VolumeDocument, format_given: bool) -> tuple[str, str] | None:
    """The checked backing file and its format (probed when the XML did not say)."""
    path = doc.backing_path
    if path is None:
        return None
    if (doc.format_type or "raw") == "raw":
        raise VirtError(ErrorNumber.NO_SUPPORT, "backing storage not supported for raw volumes", domain=_D)
    if not os.access(path, os.R_OK):
        raise _system_error(f"inaccessible backing store volume {path}", errno.ENOENT
                            if not os.path.exists(path) else errno.EACCES)
    fmt = doc.backing_format if format_given and doc.backing_format else image_info(path, os.stat(path)).format
    return path, fmt


def create_volume(target: str, doc: VolumeDocument, *, prealloc_metadata: bool = False,
                  backing_format_given: bool = True) -> None:
    """Make the volume ``doc`` describes (its name and path already checked and set)."""
    final = doc.target_path or os.path.join(target, doc.name)
    fmt = doc.format_type or "raw"
    if doc.type == "dir" or fmt == "dir":
        mode = _perms(doc)[0]
        try:
            os.mkdir(final, mode)
        except OSError as exc:
            raise _system_error(f"cannot create path '{final}'", exc) from None
        return
    backing = _backing(doc, backing_format_given)
    capacity, allocation = doc.capacity, min(doc.allocation, doc.capacity)
    if fmt == "raw":
        if prealloc_metadata:
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                            "metadata preallocation is not supported for raw volumes", domain=_D)
        if allocation > _available(target):
            raise _system_error(f"cannot allocate {allocation} bytes in file '{final}'", errno.ENOSPC)

        def fill_raw(tmp: str) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.ftruncate(fd, capacity)
                if allocation:
                    try:
                        os.posix_fallocate(fd, 0, allocation)
                    except OSError as exc:
                        raise _system_error(f"cannot allocate {allocation} bytes in file '{final}'", exc) from None
                os.fsync(fd)
            finally:
                os.close(fd)

        _make(target, doc, fill_raw)
        # a fresh raw file holds nothing but zeros, which qemu-img also calls raw
        _remember(final, lambda: ImageInfo(format="raw", capacity=capacity))
        return
    if capacity == 0 and backing is None:
        raise VirtError(ErrorNumber.INVALID_ARG, "missing capacity element", domain=_D)
    options = _qcow2_options(doc, prealloc_metadata)

    def fill_image(tmp: str) -> None:
        args = ["create", "-q", "-f", qemu_format(fmt), *options]
        if backing is not None:
            args += ["-b", backing[0], "-F", qemu_format(backing[1])]
        args.append(tmp)
        if capacity:
            args.append(str(capacity))
        qemu_img(*args, output=False)

    _make(target, doc, fill_image)
    if fmt == "qcow2":
        _remember(final, lambda: made_image_info(final, backing=backing[0] if backing else None,
                                                 backing_format=qemu_format(backing[1]) if backing else None))


def clone_volume(target: str, doc: VolumeDocument, source: Volume, *, prealloc_metadata: bool = False) -> None:
    """Make ``doc`` as a copy of ``source`` (``qemu-img convert``), at least as large."""
    if source.type == VolumeType.DIR:
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"cannot copy directory volume '{source.name}'",
                        domain=_D)
    fmt = doc.format_type or "raw"
    if doc.type == "dir" or fmt == "dir":
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "cannot make a directory volume as a copy", domain=_D)
    capacity = max(doc.capacity, source.capacity)
    backing = _backing(doc, True) if doc.backing_path else None
    options = _qcow2_options(doc, prealloc_metadata)

    def fill(tmp: str) -> None:
        args = ["convert", "-f", qemu_format(source.format), "-O", qemu_format(fmt), *options]
        if backing is not None:
            args += ["-B", backing[0], "-F", qemu_format(backing[1])]
        qemu_img(*args, source.path, tmp, output=False)
        if capacity > source.capacity:
            qemu_img("resize", "-q", "-f", qemu_format(fmt), tmp, str(capacity), output=False)

    _make(target, doc, fill)
    if fmt == "qcow2":
        final = doc.target_path or os.path.join(target, doc.name)
        _remember(final, lambda: made_image_info(final, backing=backing[0] if backing else None,
                                                 backing_format=qemu_format(backing[1]) if backing else None))


def wipe_volume(vol: Volume, algorithm: str) -> None:
    """``virStorageVolWipePattern``.  ``zero``: a raw file reads as zeros (a sparse one is
    truncated and extended again, a full one overwritten); an image of another format is made
    afresh by ``qemu-img create`` with its format, size and backing file, so it reads as zeros
    (or as its backing file) and stays usable.  The other algorithms run ``scrub`` as libvirt."""
    if vol.type == VolumeType.DIR:
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"cannot wipe directory volume '{vol.name}'", domain=_D)
    if algorithm == "trim":
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "'trim' algorithm not supported", domain=_D)
    if algorithm != "zero":
        run("scrub", "-f", "-p", _SCRUB_PATTERNS[algorithm], vol.path)
        return
    if vol.format != "raw" and vol.image is not None:
        image = vol.image
        args = ["create", "-q", "-f", qemu_format(vol.format)]
        if image.format == "qcow2" and image.compat:
            opts = [f"compat={image.compat}"]
            if image.cluster_size:
                opts.append(f"cluster_size={image.cluster_size}")
            args += ["-o", ",".join(opts)]
        if image.backing_path:
            args += ["-b", image.backing_path, "-F", qemu_format(image.backing_format or "raw")]
        directory = os.path.dirname(vol.path)
        tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{vol.name}")
        try:
            qemu_img(*args, tmp, str(vol.capacity), output=False)
            os.chmod(tmp, vol.st.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(tmp, vol.st.st_uid, vol.st.st_gid)
            os.replace(tmp, vol.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return
    try:
        fd = os.open(vol.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            if vol.type == VolumeType.FILE and vol.st.st_blocks * 512 < size:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
            else:
                offset = 0
                while offset < size:
                    offset += os.pwrite(fd, _ZEROS[: min(len(_ZEROS), size - offset)], offset)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _system_error(f"cannot wipe volume '{vol.path}'", exc) from None


def resize_volume(vol: Volume, capacity: int, *, allocate: bool, shrink: bool) -> None:
    """``virStorageBackendFileSystemVolResize``: raw files by truncation (allocated when asked),
    other formats by ``qemu-img resize``."""
    if vol.type != VolumeType.FILE:
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"cannot resize volume '{vol.name}' of this type",
                        domain=_D)
    if vol.format == "raw":
        try:
            fd = os.open(vol.path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                current = os.lseek(fd, 0, os.SEEK_END)
                if allocate and capacity > current:
                    os.posix_fallocate(fd, current, capacity - current)
                os.ftruncate(fd, capacity)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _system_error(f"Failed to truncate file '{vol.path}'", exc) from None
        return
    if allocate:
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "preallocate is only supported for raw type volume",
                        domain=_D)
    qemu_img("resize", "-q", *(["--shrink"] if shrink else []), "-f", qemu_format(vol.format), vol.path,
             str(capacity), output=False)
