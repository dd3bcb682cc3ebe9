"""xl disk specifications (Xen's ``xl-disk-configuration(5)``), as libxlutil reads them.

A specification is a comma-separated list of ``key=value`` pairs, flags and positional
parameters (``target,format,vdev,access``, in that order, for items without ``=``); an empty
item leaves its positional parameter at its default.  ``target=`` takes the whole rest of the
string, commas included.  The deprecated forms are understood too: a ``phy:``/``file:``/
``tap:aio:``/``qcow2:``... prefix on the target, and a ``:cdrom`` suffix on the vdev.
"""

from __future__ import annotations

from dataclasses import dataclass

from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber

__all__ = ["XlDisk", "parse_xl_disk"]

FORMATS = ("raw", "qcow", "qcow2", "vhd", "qed", "empty")
BACKENDS = ("phy", "tap", "qdisk", "standalone")
_POSITIONAL = ("target", "format", "vdev", "access")
#: flags and keys libxl knows but that carry nothing libvirt keeps
#: the deprecated prefixes libxlutil accepts at the start of an item
_PREFIXES = frozenset({"raw", "qcow", "qcow2", "vhd", "tapdisk", "tap", "tap2", "aio", "ioemu", "file", "phy"})
_IGNORED_FLAGS = frozenset({"direct-io-safe", "discard", "no-discard", "colo", "trusted", "untrusted"})
_IGNORED_KEYS = frozenset({"backend", "script", "colo-host", "colo-port", "colo-export", "active-disk",
                           "hidden-disk", "specification"})


@dataclass
class XlDisk:
    """What libxl's ``libxl_device_disk`` keeps of a specification."""

    target: str | None = None
    format: str | None = None  # None: unknown (libvirt then says raw)
    vdev: str | None = None
    readwrite: bool = True
    cdrom: bool = False
    backend: str | None = None  # None: unknown


def _bad(spec: str, why: str) -> VirtError:
    return VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"invalid disk specification '{spec}': {why}",
                     domain=ErrorDomain.XENXL)


def _set_access(disk: XlDisk, spec: str, value: str) -> None:
    if value in ("r", "ro"):
        disk.readwrite = False
    elif value in ("w", "rw", ""):
        disk.readwrite = True
    else:
        raise _bad(spec, f"unknown access '{value}'")


def _set_format(disk: XlDisk, spec: str, value: str) -> None:
    if value == "":
        return
    if value == "aio":
        value = "raw"
    if value not in FORMATS:
        raise _bad(spec, f"unknown format '{value}'")
    disk.format = value


def _set_target(disk: XlDisk, value: str) -> None:
    disk.target = value or None


def _strip_prefixes(disk: XlDisk, text: str) -> str:
    """The deprecated ``backend:``/``format:`` prefixes at the start of an item (``phy:``,
    ``file:``, ``tap:aio:``, ``qcow2:``...), applied and removed."""
    while True:
        head, sep, rest = text.partition(":")
        if not sep or head not in _PREFIXES:
            return text
        if head == "phy":
            disk.backend = "phy"
        elif head in ("raw", "qcow", "qcow2", "vhd"):
            disk.format = head
        text = rest


def parse_xl_disk(spec: str) -> XlDisk:
    """Parse one xl disk specification; a bad one is ``VirtError(CONFIG_UNSUPPORTED)``."""
    disk = XlDisk()
    seen: set[str] = set()
    positional = 0
    legacy = False  # a deprecated prefix: the positional parameters are xm's target,vdev,access
    rest = spec
    while True:
        rest = rest.lstrip(" \t\n")
        if rest.startswith("target="):
            if "target" in seen:
                raise _bad(spec, "target given twice")
            _set_target(disk, rest[len("target="):])
            break
        stripped = _strip_prefixes(disk, rest)
        legacy = legacy or stripped != rest
        rest = stripped
        item, sep, rest = rest.partition(",")
        key, eq, value = item.partition("=")
        if eq:
            key = key.strip()
            if key in seen:
                raise _bad(spec, f"{key} given twice")
            seen.add(key)
            if key == "format":
                _set_format(disk, spec, value)
            elif key == "vdev":
                disk.vdev = value or None
            elif key == "access":
                _set_access(disk, spec, value)
            elif key == "devtype":
                if value not in ("cdrom", "disk", ""):
                    raise _bad(spec, f"unknown devtype '{value}'")
                disk.cdrom = value == "cdrom"
            elif key == "backendtype":
                if value not in BACKENDS and value != "":
                    raise _bad(spec, f"unknown backendtype '{value}'")
                disk.backend = value or None
            elif key not in _IGNORED_KEYS:
                raise _bad(spec, f"unknown parameter '{key}'")
        elif item.strip() == "cdrom":
            disk.cdrom = True
        elif item.strip() in _IGNORED_FLAGS:
            pass
        else:
            while positional < len(_POSITIONAL) and (_POSITIONAL[positional] in seen or (
                    legacy and _POSITIONAL[positional] == "format")):
                positional += 1
            if positional >= len(_POSITIONAL):
                if item.strip() or sep:
                    raise _bad(spec, "too many positional parameters")
            else:
                name = _POSITIONAL[positional]
                positional += 1
                if item != "":
                    seen.add(name)
                    if name == "target":
                        _set_target(disk, item)
                    elif name == "format":
                        _set_format(disk, spec, item)
                    elif name == "vdev":
                        disk.vdev = item
                    else:
                        _set_access(disk, spec, item)
        if not sep:
            break
    if disk.vdev is not None and disk.vdev.endswith(":cdrom"):
        disk.vdev = disk.vdev[: -len(":cdrom")]
        disk.cdrom = True
    if not disk.vdev:
        raise _bad(spec, "no vdev specified")
    if disk.cdrom and disk.target is None:
        disk.format = "empty"
    elif disk.target is None and not disk.cdrom:
        raise _bad(spec, "no target specified")
    return disk
