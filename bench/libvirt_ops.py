"""The libvirt-python side of the op benchmark.  Runs under Debian's ``/usr/bin/python3``
(stdlib + libvirt only); prints one JSON object on stdout.

    /usr/bin/python3 bench/libvirt_ops.py --n 1000 --rounds 3
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload


class LibvirtAdapter:
    def __init__(self) -> None:
        import libvirt

        self._libvirt = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
        major, minor, micro = _split(libvirt.getVersion())
        self.version = f"libvirt {major}.{minor}.{micro} (python binding {_pkg_version()})"

    def open(self):
        return self._libvirt.open(_workload.URI)

    def close(self, conn) -> None:
        conn.close()

    def define(self, conn, xml):
        return conn.defineXML(xml)

    def list_all(self, conn):
        return conn.listAllDomains(0)

    def lookup(self, conn, name):
        return conn.lookupByName(name)

    def xml(self, dom):
        return dom.XMLDesc(0)

    def start(self, dom):
        return dom.create()

    def info(self, dom):
        return dom.info()

    def destroy(self, dom):
        return dom.destroy()

    def undefine(self, dom):
        return dom.undefine()


def _split(v: int) -> tuple[int, int, int]:
    return v // 1000000, v // 1000 % 1000, v % 1000


def _pkg_version() -> str:
    try:
        from importlib.metadata import version

        return version("libvirt-python")
    except Exception:  # noqa: BLE001 - Debian's package may carry no dist-info
        return "?"


if __name__ == "__main__":
    sys.exit(_workload.main(LibvirtAdapter, side="libvirt"))
