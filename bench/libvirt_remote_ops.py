"""libvirt's own remote client, for the side-by-side figures of ``bench/remote_ops.py``.

Runs under Debian's ``/usr/bin/python3`` with ``python3-libvirt``, against a private
``libvirtd`` that ``remote_ops.py`` started (its own config, sockets in a scratch directory),
over the same OpenSSH sshd that virt-remote's figures use: ``test+ssh://...?socket=...``, so
libvirt's client runs ``ssh`` and, on the far side, ``nc -U`` to that daemon's socket, as it
does for any ``socket=``.  Stdlib + libvirt only; prints one JSON line.

    python3 bench/libvirt_remote_ops.py URI N ROUNDS THREADS        # warm figures
    python3 bench/libvirt_remote_ops.py --cold URI                  # import libvirt + first open
"""

from __future__ import annotations

import json
import sys
import time


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


def warm(uri: str, n: int, rounds: int, threads: int) -> dict[str, list[float]]:
    from concurrent.futures import ThreadPoolExecutor

    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    out: dict[str, list[float]] = {"open_ms": [], "lookup_us": [], "info_us": [], "sequential_ms": [],
                                   "concurrent_ms": [], "list_info_ms": [], "list_loop_ms": []}
    libvirt.open(uri).close()  # the daemon's first open of the test driver: not the client's to pay
    for _ in range(rounds):
        start = time.perf_counter()
        conn = libvirt.open(uri)
        out["open_ms"].append((time.perf_counter() - start) * 1000)
        conn.close()
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName("test")
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _i: conn.lookupByName("test"), range(threads * 4)))  # warm the threads
            for _ in range(rounds):
                start = time.perf_counter()
                for _i in range(n):
                    conn.lookupByName("test")
                elapsed = time.perf_counter() - start
                out["lookup_us"].append(elapsed / n * 1e6)
                out["sequential_ms"].append(elapsed * 1000)
                start = time.perf_counter()
                for _i in range(n):
                    dom.info()
                out["info_us"].append((time.perf_counter() - start) / n * 1e6)
                start = time.perf_counter()
                list(pool.map(lambda _i: conn.lookupByName("test"), range(n)))
                out["concurrent_ms"].append((time.perf_counter() - start) * 1000)
        xml = ("<domain type='test'><name>bench-{0}</name><memory>131072</memory>"
               "<os><type>hvm</type></os></domain>")
        made = [conn.defineXML(xml.format(i)) for i in range(n)]
        try:
            for _ in range(rounds):
                # libvirt's one-round-trip listing with state: getAllDomainStats(STATE)
                start = time.perf_counter()
                stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
                out["list_info_ms"].append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                looped = [(d, d.info()) for d in conn.listAllDomains()]
                out["list_loop_ms"].append((time.perf_counter() - start) * 1000)
                assert len(stats) == len(looped) >= n
        finally:
            for d in made:
                d.undefine()
    finally:
        conn.close()
    return out


def main(argv: list[str]) -> int:
    if argv[1] == "--cold":
        print(json.dumps(cold(argv[2])))
    else:
        print(json.dumps(warm(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
