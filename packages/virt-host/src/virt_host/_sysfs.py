"""Reading the host's kernel files (``/proc``, ``/sys``, ``/run/udev``), under a root prefix.

Everything the node provider knows about the host it reads through a :class:`SysRoot`, so that
the tests can point it at a made-up tree instead of ``/``.  Reads never raise for a missing or
unreadable file: the caller gets ``None`` (or an empty list) and leaves the value out, as
libvirt leaves out what it cannot read.
"""

from __future__ import annotations

import functools
import os

__all__ = ["SysRoot", "UdevRecord", "pci_names"]


class SysRoot:
    """The host's files under ``root`` (``/`` for the real host)."""

    __slots__ = ("root",)

    def __init__(self, root: str = "/") -> None:
        self.root = root.rstrip("/") or ""

    def path(self, rel: str) -> str:
        """The real path of ``rel`` (an absolute host path such as ``/sys/block``)."""
        return self.root + rel

    def host_path(self, real: str) -> str:
        """The host path of a real path under the root (the inverse of :meth:`path`)."""
        if self.root and real.startswith(self.root + "/"):
            return real[len(self.root):]
        return real

    def read(self, rel: str) -> str | None:
        """The file's text without surrounding whitespace, None when it cannot be read."""
        try:
            with open(self.root + rel, encoding="utf-8", errors="replace") as fh:
                return fh.read().strip()
        except (OSError, ValueError):
            return None

    def read_bytes(self, rel: str, limit: int = -1) -> bytes | None:
        try:
            with open(self.root + rel, "rb") as fh:
                return fh.read(limit)
        except OSError:
            return None

    def read_int(self, rel: str, base: int = 10) -> int | None:
        text = self.read(rel)
        if text is None:
            return None
        try:
            return int(text, base)
        except ValueError:
            return None

    def lines(self, rel: str) -> list[str]:
        try:
            with open(self.root + rel, encoding="utf-8", errors="replace") as fh:
                return fh.read().splitlines()
        except OSError:
            return []

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.root + rel))
        except OSError:
            return []

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.root + rel)

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self.root + rel)

    def realpath(self, rel: str) -> str:
        """The host path ``rel`` resolves to (symlinks followed inside the root)."""
        return self.host_path(os.path.realpath(self.root + rel))

    def link_name(self, rel: str) -> str | None:
        """The last component of the symlink target of ``rel`` (a driver's name...)."""
        try:
            return os.path.basename(os.readlink(self.root + rel))
        except OSError:
            return None

    def udev(self, key: str) -> UdevRecord:
        """What udev's database says about a device (``b252:0``, ``n4``, ``c189:1``...)."""
        return UdevRecord.parse(self.lines(f"/run/udev/data/{key}"))


class UdevRecord:
    """One entry of udev's database: its properties (``E:``) and device links (``S:``)."""

    __slots__ = ("links", "props")

    def __init__(self, props: dict[str, str], links: list[str]) -> None:
        self.props = props
        self.links = links

    @classmethod
    def parse(cls, lines: list[str]) -> UdevRecord:
        props: dict[str, str] = {}
        links: list[str] = []
        for line in lines:
            if line.startswith("E:"):
                key, _, value = line[2:].partition("=")
                props[key] = value
            elif line.startswith("S:"):
                links.append("/dev/" + line[2:])
        return cls(props, links)

    def get(self, key: str) -> str | None:
        value = self.props.get(key)
        return value if value else None


# -- pci.ids ----------------------------------------------------------------------------------

#: where libpciaccess (and so libvirt) finds the PCI ID database on Debian and elsewhere
PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")


@functools.cache
def _pci_ids(path: str, mtime: float) -> dict[int, tuple[str, dict[int, str]]]:
    """vendor id -> (vendor name, {device id: device name}); read once per file version."""
    out: dict[int, tuple[str, dict[int, str]]] = {}
    devices: dict[int, str] | None = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line or line[0] == "#" or line == "\n":
                    continue
                if line[0] == "\t":
                    if devices is None or line[1] == "\t":
                        continue  # subsystem lines
                    ident, _, name = line[1:].rstrip("\n").partition("  ")
                    try:
                        devices[int(ident, 16)] = name.strip()
                    except ValueError:
                        continue
                    continue
                if line.startswith("C "):
                    break  # the device classes follow the vendors
                ident, _, name = line.rstrip("\n").partition("  ")
                try:
                    devices = {}
                    out[int(ident, 16)] = (name.strip(), devices)
                except ValueError:
                    devices = None
    except OSError:
        return {}
    return out


def pci_names(host: SysRoot, vendor: int, device: int) -> tuple[str | None, str | None]:
    """(vendor name, device name) from the PCI ID database, as libpciaccess finds them."""
    for rel in PCI_IDS_PATHS:
        path = host.path(rel)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        table = _pci_ids(path, mtime)
        entry = table.get(vendor)
        if entry is None:
            return None, None
        return entry[0], entry[1].get(device)
    return None, None
