"""The virt side of the op benchmark: the same workload on virt's ``test:///default``.
Runs under virt's venv; prints one JSON object on stdout.

    .venv/bin/python bench/testdriver_ops.py --n 1000 --rounds 3

Importable too: ``run(n, rounds)`` returns the same dict (the smoke test and the profiler
use it in-process).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload


class VirtAdapter:
    def __init__(self) -> None:
        import virt

        self._virt = virt
        self.version = f"virt {getattr(virt, '__version__', '?')}"

    def open(self):
        return self._virt.open(_workload.URI)

    def close(self, conn) -> None:
        conn.close()

    def define(self, conn, xml):
        return conn.define_domain(xml)

    def list_all(self, conn):
        return conn.list_domains()

    def lookup(self, conn, name):
        return conn.lookup_domain(name)

    def xml(self, dom):
        return dom.xml()

    def start(self, dom):
        return dom.start()

    def info(self, dom):
        return dom.info()

    def destroy(self, dom):
        return dom.destroy()

    def undefine(self, dom):
        return dom.undefine()


def run(n: int = 1000, rounds: int = 3, warmup: int = 20, gc_off: bool = False) -> dict:
    """The benchmark in this process; same shape as the JSON ``main`` prints."""
    return _workload.bench(VirtAdapter(), n, rounds, side="virt", warmup=warmup, gc_off=gc_off)


if __name__ == "__main__":
    sys.exit(_workload.main(VirtAdapter, side="virt"))
