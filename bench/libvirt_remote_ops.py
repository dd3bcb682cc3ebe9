"""libvirt's own remote client, for the side-by-side figures of ``bench/remote_ops.py``.

Runs under Debian's ``/usr/bin/python3`` with ``python3-libvirt``, against a private
``libvirtd`` that ``remote_ops.py`` started (its own config, sockets in a scratch directory),
over the same OpenSSH sshd that virt-remote's figures use: ``test+ssh://...?socket=...``, so
libvirt's client runs ``ssh`` and, on the far side, ``nc -U`` to that daemon's socket, as it
does for any ``socket=``.  Stdlib + libvirt only; prints one JSON line.

    python3 bench/libvirt_remote_ops.py URI N THREADS   # steps named on stdin, a JSON line each
    python3 bench/libvirt_remote_ops.py --cold URI      # import libvirt + first open, one JSON line
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def cold(uri: str) -> dict[str, float]:
    """A fresh process's first connection: the import of the binding and the open, in ms."""
    start = time.perf_counter()
    import libvirt  # type: ignore[import-not-found]

    imported = time.perf_counter()
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open(uri)
    opened = time.perf_counter()
    conn.lookupByName("test")
    conn.close()
    return {"import_ms": (imported - start) * 1000, "open_ms": (opened - imported) * 1000,
            "first_open_ms": (opened - start) * 1000}


def threaded(call: Callable[[], object], n: int, threads: int) -> float:
    """``n`` calls from ``threads`` threads, each doing its share in a loop, all released at
    once by a barrier; ms from the release to the last one's end (the threads' start is not
    counted, nor any executor's bookkeeping per call).  ``remote_ops.py`` uses it too."""
    import threading

    barrier = threading.Barrier(threads + 1)
    shares = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]

    def work(share: int) -> None:
        barrier.wait()
        for _ in range(share):
            call()

    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - start) * 1000


class Bench:
    """One long-lived client process, measured step by step (``serve``): the caller alternates
    these steps with its own, so that both sides see the same moments of a noisy machine."""

    def __init__(self, uri: str, n: int, threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import libvirt

        libvirt.registerErrorHandler(lambda *_: None, None)
        self.libvirt = libvirt
        self.uri, self.n, self.threads = uri, n, threads
        libvirt.open(uri).close()  # the daemon's first open of the test driver: not the client's to pay
        self.conn = libvirt.open(uri)
        self.dom = self.conn.lookupByName("test")
        self.pool = ThreadPoolExecutor(threads)
        list(self.pool.map(lambda _i: self.conn.lookupByName("test"), range(threads * 4)))  # warm the threads
        self.made: list[object] = []
        self.unix: Any = None

    def open_ms(self) -> float:
        start = time.perf_counter()
        conn = self.libvirt.open(self.uri)
        elapsed = (time.perf_counter() - start) * 1000
        conn.close()
        return elapsed

    def unix_lookup_us(self) -> float:
        """N lookups as a local client of the same daemon (``test+unix://``, its own socket),
        in microseconds each."""
        import urllib.parse

        if self.unix is None:
            sock = urllib.parse.parse_qs(urllib.parse.urlsplit(self.uri).query)["socket"][0]
            self.unix = self.libvirt.open(f"test+unix:///default?socket={sock}")
            self.unix.lookupByName("test")
        start = time.perf_counter()
        for _ in range(self.n):
            self.unix.lookupByName("test")
        return (time.perf_counter() - start) / self.n * 1e6

    def sequential_ms(self) -> float:
        start = time.perf_counter()
        for _i in range(self.n):
            self.conn.lookupByName("test")
        return (time.perf_counter() - start) * 1000

    def info_us(self) -> float:
        start = time.perf_counter()
        for _i in range(self.n):
            self.dom.info()
        return (time.perf_counter() - start) / self.n * 1e6

    def concurrent_ms(self) -> float:
        start = time.perf_counter()
        list(self.pool.map(lambda _i: self.conn.lookupByName("test"), range(self.n)))
        return (time.perf_counter() - start) * 1000

    def threads_ms(self) -> float:
        """The same N lookups from ``threads`` threads, each a share, released together."""
        return threaded(lambda: self.conn.lookupByName("test"), self.n, self.threads)

    def define(self) -> float:
        xml = ("<domain type='test'><name>bench-{0}</name><memory>131072</memory>"
               "<os><type>hvm</type></os></domain>")
        self.made = [self.conn.defineXML(xml.format(i)) for i in range(self.n)]
        return float(len(self.made))

    def list_info_ms(self) -> float:
        """libvirt's one-round-trip listing with state: ``getAllDomainStats(STATE)``."""
        start = time.perf_counter()
        stats = self.conn.getAllDomainStats(self.libvirt.VIR_DOMAIN_STATS_STATE)
        elapsed = (time.perf_counter() - start) * 1000
        assert len(stats) >= self.n
        return elapsed

    def list_loop_ms(self) -> float:
        start = time.perf_counter()
        looped = [(d, d.info()) for d in self.conn.listAllDomains()]
        elapsed = (time.perf_counter() - start) * 1000
        assert len(looped) >= self.n
        return elapsed

    def undefine(self) -> float:
        for d in self.made:
            d.undefine()  # type: ignore[attr-defined]
        self.made = []
        return 0.0


def serve(uri: str, n: int, threads: int) -> None:
    """Read step names, one a line, on stdin; answer each with ``{"step": value}`` on stdout."""
    bench = Bench(uri, n, threads)
    print(json.dumps({"ready": 1.0}), flush=True)
    for line in sys.stdin:
        step = line.strip()
        if not step:
            continue
        if step.startswith("_") or not hasattr(bench, step):
            print(json.dumps({"error": f"no step {step!r}"}), flush=True)
            continue
        print(json.dumps({step: getattr(bench, step)()}), flush=True)
    bench.undefine()
    bench.conn.close()


def main(argv: list[str]) -> int:
    if argv[1] == "--cold":
        print(json.dumps(cold(argv[2])))
    else:
        serve(argv[1], int(argv[2]), int(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
