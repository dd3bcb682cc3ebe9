"""The host tools storage work is done with: ``qemu-img`` (its JSON output), ``mkfs``,
``mount``, ``blkid`` and LVM.  Images are written only by ``qemu-img`` and described by it
(``qemu-img info``), save one shortcut: the fixed header of a qcow2 image ``qemu-img`` has just
made is read back (:func:`made_image_info`), so describing a new volume costs no second
``qemu-img`` run.  ``subprocess`` and ``json`` are imported on first use."""

from __future__ import annotations

import os
import shutil
from typing import Any

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = [
    "ImageInfo", "blkid_type", "image_info", "is_mounted", "made_image_info", "qemu_img", "remember_image", "run",
]

_D = ErrorDomain.STORAGE
# qemu's format names -> libvirt's (``virStorageFileFormat``); the rest are the same word
_FROM_QEMU = {"vpc": "vpc", "parallels": "ploop", "luks": "raw"}
# libvirt's -> qemu's
_TO_QEMU = {"ploop": "parallels", "vhd": "vpc", "iso": "raw", "fat": "raw"}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    return env


_WHICH: dict[tuple[str, str], str] = {}


def _which(name: str) -> str | None:
    """``shutil.which`` of ``name`` (with the sbin directories), remembered per ``PATH`` while
    the file found stays executable."""
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    exe = _WHICH.get((name, search))
    if exe is not None and os.access(exe, os.X_OK):
        return exe
    exe = shutil.which(name, path=search)
    if exe is not None:
        _WHICH[(name, search)] = exe
    return exe


def run(*argv: str, check: bool = True, output: bool = True) -> tuple[int, str, str]:
    """Run a host tool, no shell.  A missing tool or (with ``check``) a failure is
    ``VirtError(INTERNAL_ERROR)`` worded as libvirt words a failed child process.  Without
    ``output`` the tool's standard output is not wanted (it goes to ``/dev/null``: one pipe less
    to wait on) and the stdout returned is empty."""
    import subprocess

    exe = _which(argv[0])
    if exe is None:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Cannot find '{argv[0]}' in path", domain=_D)
    proc = subprocess.run([exe, *argv[1:]], stdout=subprocess.PIPE if output else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=_environment(), stdin=subprocess.DEVNULL,
                          check=False)
    stdout = proc.stdout if output else ""
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or stdout.strip()).replace("\n", " ")
        raise VirtError(ErrorNumber.INTERNAL_ERROR,
                        f"Child process ({' '.join(argv)}) unexpected exit status {proc.returncode}: {detail}",
                        domain=_D)
    return proc.returncode, stdout, proc.stderr


def qemu_format(fmt: str) -> str:
    return _TO_QEMU.get(fmt, fmt)


def qemu_img(*args: str, output: bool = True) -> str:
    return run("qemu-img", *args, output=output)[1]


@attrs.frozen
class ImageInfo:
    """What ``qemu-img info --output=json`` says of one file, in libvirt's words."""

    format: str
    capacity: int
    backing_path: str | None = None
    backing_format: str | None = None
    compat: str | None = None
    cluster_size: int | None = None
    features: tuple[str, ...] = ()
    encrypted: bool = False


_INFO_CACHE: dict[tuple[str, int, int, int, int], ImageInfo] = {}


def image_info(path: str, st: os.stat_result) -> ImageInfo:
    """``qemu-img info`` of ``path`` (``-U``: a running guest may hold it), remembered while the
    file's inode, size and change time stay the same."""
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _INFO_CACHE.get(key)
    if cached is not None:
        return cached
    import json

    try:
        data: dict[str, Any] = json.loads(qemu_img("info", "-U", "--output=json", path))
    except ValueError as exc:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"cannot parse qemu-img info of '{path}': {exc}",
                        domain=_D) from None
    fmt = str(data.get("format", "raw"))
    specific = (data.get("format-specific") or {}).get("data") or {}
    backing = data.get("full-backing-filename") or data.get("backing-filename")
    if backing and not os.path.isabs(backing):
        backing = os.path.normpath(os.path.join(os.path.dirname(path), backing))
    backing_fmt = data.get("backing-filename-format")
    features: list[str] = []
    if specific.get("lazy-refcounts"):
        features.append("lazy_refcounts")
    if specific.get("extended-l2"):
        features.append("extended_l2")
    compat = specific.get("compat")
    info = ImageInfo(
        format=_FROM_QEMU.get(fmt, fmt),
        capacity=int(data.get("virtual-size", st.st_size)),
        backing_path=str(backing) if backing else None,
        backing_format=_FROM_QEMU.get(backing_fmt, backing_fmt) if backing_fmt else None,
        compat={"0.10": "0.10", "1.1": "1.1"}.get(str(compat)) if compat else None,
        cluster_size=int(data["cluster-size"]) if fmt == "qcow2" and data.get("cluster-size") else None,
        features=tuple(features),
        encrypted=bool(data.get("encrypted")),
    )
    remember_image(path, st, info)
    return info


def remember_image(path: str, st: os.stat_result, info: ImageInfo) -> None:
    """Let :func:`image_info` answer ``info`` for ``path`` while it stays as ``st`` says."""
    if len(_INFO_CACHE) > 512:
        _INFO_CACHE.clear()
    _INFO_CACHE[(path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = info


_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_HEADER = 104  # the fixed header of version 3 (version 2's is its first 72 bytes)


def made_image_info(path: str, *, backing: str | None = None, backing_format: str | None = None) -> ImageInfo | None:
    """What ``qemu-img info`` says of the qcow2 image ``qemu-img`` has just made at ``path``,
    from its fixed header: version (compat), cluster size, virtual size, the lazy refcounts and
    extended L2 feature bits, encryption; ``backing``/``backing_format`` are what ``qemu-img``
    was given (``-b``, absolute, and ``-F``), checked against the header's backing file name.
    None when the file is not such an image (the caller then leaves it to ``qemu-img info``)."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(_QCOW2_HEADER)
            if len(head) < 72 or head[:4] != _QCOW2_MAGIC:
                return None
            version, backing_offset, backing_size, cluster_bits, size, crypt = struct.unpack_from(">IQIIQI", head, 4)
            if version not in (2, 3) or (version == 3 and len(head) < _QCOW2_HEADER) or not 9 <= cluster_bits <= 21:
                return None
            named: bytes = b""
            if backing_size:
                fh.seek(backing_offset)
                named = fh.read(backing_size)
    except OSError:
        return None
    if backing is None:
        if backing_size:
            return None
    elif backing != os.path.normpath(backing) or not os.path.isabs(backing) or named != os.fsencode(backing) \
            or not backing_format:
        return None
    features: list[str] = []
    if version == 3:
        incompatible, compatible = struct.unpack_from(">QQ", head, 72)
        if compatible & 1:
            features.append("lazy_refcounts")
        if incompatible & (1 << 4):
            features.append("extended_l2")
    return ImageInfo(
        format="qcow2",
        capacity=size,
        backing_path=backing,
        backing_format=_FROM_QEMU.get(backing_format, backing_format) if backing_format else None,
        compat="1.1" if version == 3 else "0.10",
        cluster_size=1 << cluster_bits,
        features=tuple(features),
        encrypted=crypt != 0,
    )


def blkid_type(device: str) -> str | None:
    """The filesystem or other signature ``blkid`` finds on ``device`` (None: it looks empty)."""
    code, out, _ = run("blkid", "-p", "-o", "value", "-s", "TYPE", device, check=False)
    if code == 0 and out.strip():
        return out.strip()
    code, out, _ = run("blkid", "-p", "-o", "value", "-s", "PTTYPE", device, check=False)
    return out.strip() or None if code == 0 else None


def _unescape_mount(text: str) -> str:
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def is_mounted(target: str) -> str | None:
    """The source mounted on ``target`` (from ``/proc/self/mountinfo``), or None."""
    target = os.path.realpath(target)
    found: str | None = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                sep = fields.index("-")
                if _unescape_mount(fields[4]) == target:
                    found = _unescape_mount(fields[sep + 2])  # the last mount on a path wins
    except OSError:
        return None
    return found


def have_device_mapper() -> bool:
    """Whether the kernel has device-mapper, without which LVM makes no logical volume."""
    if os.path.exists("/dev/mapper/control"):
        return True
    try:
        with open("/proc/misc", encoding="ascii") as fh:
            return any(line.split()[1:] == ["device-mapper"] for line in fh)
    except OSError:
        return False
