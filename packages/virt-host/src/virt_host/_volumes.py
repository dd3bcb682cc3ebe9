"""The volumes of a directory-backed pool (``dir``, ``fs``): one file (or directory) each,
in the pool's target directory, found by reading that directory, described by ``stat`` and
``qemu-img info``.  Nothing about a volume is stored besides the volume itself, so every
process sees the same volumes.  A volume's key is its path, as in libvirt."""

from __future__ import annotations

import os
import stat as _stat

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import VolumeInfo, VolumeType
from virt.xml._base import escape

from virt_host._tools import ImageInfo, image_info

__all__ = ["TMP_PREFIX", "Volume", "check_new_name", "describe", "describe_file", "find", "valid_name", "volume_names",
           "volume_xml"]

_D = ErrorDomain.STORAGE
#: files being created carry this prefix until they are complete; listings skip them
TMP_PREFIX = ".virt-new-"


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a volume of a directory pool (no path tricks)."""
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..") \
        and not name.startswith(TMP_PREFIX)


def check_new_name(name: str) -> None:
    """libvirt's ``virStorageBackendFileSystemVolCreate`` check, and the dot names it misses."""
    if "/" in name:
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"volume name '{name}' cannot contain '/'", domain=_D)
    if not valid_name(name):
        raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"volume name '{name}' is not allowed", domain=_D)


def volume_names(target: str) -> list[str]:
    """The volumes of a pool whose target directory is ``target``, sorted."""
    try:
        entries = os.listdir(target)
    except OSError as exc:
        raise VirtError(ErrorNumber.SYSTEM_ERROR, f"cannot open directory '{target}': {exc.strerror}",
                        domain=_D) from None
    names = []
    for name in entries:
        if not valid_name(name):
            continue
        try:
            st = os.stat(os.path.join(target, name))
        except OSError:
            continue  # a dangling symlink, or gone meanwhile
        if _stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode) or _stat.S_ISBLK(st.st_mode):
            names.append(name)
    names.sort()
    return names


@attrs.frozen
class Volume:
    """One volume as found on disk."""

    name: str
    path: str
    type: VolumeType
    format: str
    capacity: int
    allocation: int
    physical: int
    st: os.stat_result
    image: ImageInfo | None = None

    @property
    def info(self) -> VolumeInfo:
        return VolumeInfo(type=self.type, capacity=self.capacity, allocation=self.allocation)


def find(target: str, name: str) -> tuple[str, os.stat_result, VolumeType] | None:
    """The file of volume ``name`` of the pool at ``target`` (its path, ``stat`` and type),
    without a look at its content; None when there is none."""
    if not valid_name(name):
        return None
    path = os.path.join(target, name)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if _stat.S_ISDIR(st.st_mode):
        return path, st, VolumeType.DIR
    if _stat.S_ISREG(st.st_mode):
        return path, st, VolumeType.FILE
    if _stat.S_ISBLK(st.st_mode):
        return path, st, VolumeType.BLOCK
    return None


def describe(target: str, name: str) -> Volume | None:
    """The volume ``name`` of the pool at ``target``, or None when there is none."""
    found = find(target, name)
    return None if found is None else describe_file(name, *found)


def describe_file(name: str, path: str, st: os.stat_result, kind: VolumeType) -> Volume:
    """The volume ``name`` whose file :func:`find` found at ``path``."""
    if kind == VolumeType.DIR:
        return Volume(name, path, VolumeType.DIR, "dir", st.st_size, st.st_blocks * 512, st.st_size, st)
    size = st.st_size
    if kind == VolumeType.BLOCK:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
    image = image_info(path, st)
    capacity = image.capacity if image.format != "raw" else size
    allocation = st.st_blocks * 512 if kind == VolumeType.FILE else size
    return Volume(name, path, kind, image.format, capacity, allocation, size, st, image)


def _timestamp(sec_ns: int) -> str:
    sec, nsec = divmod(sec_ns, 1_000_000_000)
    return f"{sec}.{nsec:09d}" if nsec else str(sec)


def _perms_and_times(st: os.stat_result, indent: str) -> list[str]:
    return [
        f"{indent}<permissions>",
        f"{indent}  <mode>{_stat.S_IMODE(st.st_mode) & 0o777:04o}</mode>",
        f"{indent}  <owner>{st.st_uid}</owner>",
        f"{indent}  <group>{st.st_gid}</group>",
        f"{indent}</permissions>",
        f"{indent}<timestamps>",
        f"{indent}  <atime>{_timestamp(st.st_atime_ns)}</atime>",
        f"{indent}  <mtime>{_timestamp(st.st_mtime_ns)}</mtime>",
        f"{indent}  <ctime>{_timestamp(st.st_ctime_ns)}</ctime>",
        f"{indent}</timestamps>",
    ]


def volume_xml(vol: Volume) -> str:
    """The ``<volume>`` libvirt's directory backends print for ``vol``: key and path, sizes
    (with ``<physical>``), format, permissions and timestamps, the qcow2 details, and the
    backing store."""
    path = escape(vol.path)
    lines = [
        f"<volume type='{vol.type.name.lower()}'>",
        f"  <name>{escape(vol.name)}</name>",
        f"  <key>{path}</key>",
        f"  <capacity unit='bytes'>{vol.capacity}</capacity>",
        f"  <allocation unit='bytes'>{vol.allocation}</allocation>",
        f"  <physical unit='bytes'>{vol.physical}</physical>",
        "  <target>",
        f"    <path>{path}</path>",
        f"    <format type='{escape(vol.format)}'/>",
        *_perms_and_times(vol.st, "    "),
    ]
    image = vol.image
    if image is not None and image.format == "qcow2":
        if image.compat:
            lines.append(f"    <compat>{image.compat}</compat>")
        if image.cluster_size:
            lines.append(f"    <clusterSize unit='B'>{image.cluster_size}</clusterSize>")
        if image.compat == "1.1":
            if image.features:
                lines += ["    <features>", *(f"      <{f}/>" for f in image.features), "    </features>"]
            else:
                lines.append("    <features/>")
    lines.append("  </target>")
    if image is not None and image.backing_path:
        lines += ["  <backingStore>", f"    <path>{escape(image.backing_path)}</path>"]
        backing_format = image.backing_format
        try:
            bst: os.stat_result | None = os.stat(image.backing_path)
        except OSError:
            bst = None
        if backing_format is None and bst is not None and _stat.S_ISREG(bst.st_mode):
            try:
                backing_format = image_info(image.backing_path, bst).format
            except VirtError:
                backing_format = None
        lines.append(f"    <format type='{escape(backing_format or 'raw')}'/>")
        if bst is not None:
            lines += _perms_and_times(bst, "    ")
        lines.append("  </backingStore>")
    lines.append("</volume>")
    return "\n".join(lines) + "\n"
