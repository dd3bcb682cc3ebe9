"""The host tools storage work is done with: ``qemu-img`` (its JSON output), ``mkfs``,
``mount``, ``blkid`` and LVM.  Images are never parsed or written here, only described to and
by ``qemu-img``.  ``subprocess`` and ``json`` are imported on first use."""

from __future__ import annotations

import os
import shutil
from typing import Any

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = [
    "ImageInfo", "blkid_type", "image_info", "is_mounted", "qemu_img", "run",
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


def run(*argv: str, check: bool = True) -> tuple[int, str, str]:
    """Run a host tool, no shell.  A missing tool or (with ``check``) a failure is
    ``VirtError(INTERNAL_ERROR)`` worded as libvirt words a failed child process."""
    import subprocess

    exe = shutil.which(argv[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if exe is None:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Cannot find '{argv[0]}' in path", domain=_D)
    proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, env=_environment(),
                          stdin=subprocess.DEVNULL, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).replace("\n", " ")
        raise VirtError(ErrorNumber.INTERNAL_ERROR,
                        f"Child process ({' '.join(argv)}) unexpected exit status {proc.returncode}: {detail}",
                        domain=_D)
    return proc.returncode, proc.stdout, proc.stderr


def qemu_format(fmt: str) -> str:
    return _TO_QEMU.get(fmt, fmt)


def qemu_img(*args: str) -> str:
    return run("qemu-img", *args)[1]


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
    if len(_INFO_CACHE) > 512:
        _INFO_CACHE.clear()
    _INFO_CACHE[key] = info
    return info


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
