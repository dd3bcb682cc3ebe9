"""Where virt's time goes, op by op: cProfile of each op's loop, and a profiler-free layer
breakdown (public API -> Connection._call -> pluggy hook -> driver method).

    .venv/bin/python bench/profile_ops.py [--n 1000] [--op define --op xml] [--top 20]
                                          [--sort tottime|cumulative] [--dump DIR] [--layers]

cProfile inflates tiny functions (each call costs the profiler ~0.1-0.3 us), so read its
output for *shape* (which functions, how many calls per op) and the ``--layers`` table for
*cost* (each layer timed bare with perf_counter over the same N domains).
pyinstrument is used instead of cProfile when installed and ``--pyinstrument`` is given.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload


def _sequence(conn, n: int):
    """(op, fn, items) in the benchmark's order; handles flow from define to the rest."""
    xmls = [_workload.domain_xml(i) for i in range(n)]
    names = [_workload.domain_name(i) for i in range(n)]
    doms: list = []

    def define(x):
        d = conn.define_domain(x)
        doms.append(d)
        return d

    yield "define", define, xmls
    yield "list", lambda _: conn.list_domains(), range(_workload.list_calls(n))
    yield "lookup", conn.lookup_domain, names
    yield "xml", lambda d: d.xml(), doms
    yield "start", lambda d: d.start(), doms
    yield "info", lambda d: d.info(), doms
    yield "destroy", lambda d: d.destroy(), doms
    yield "undefine", lambda d: d.undefine(), doms


def profile(n: int, ops: list[str], top: int, sort: str, dump: str | None, use_pyinstrument: bool) -> None:
    import virt

    _warm(virt)
    conn = virt.open(_workload.URI)
    try:
        for op, fn, items in _sequence(conn, n):
            items = list(items)
            if op not in ops:
                for item in items:
                    fn(item)
                continue
            if use_pyinstrument:
                from pyinstrument import Profiler

                prof = Profiler(interval=0.0001)
                prof.start()
                for item in items:
                    fn(item)
                prof.stop()
                print(f"\n==== {op} x {len(items)} ====")
                print(prof.output_text(unicode=True, color=False, show_all=False))
                continue
            pr = cProfile.Profile()
            t0 = time.perf_counter()
            pr.enable()
            for item in items:
                fn(item)
            pr.disable()
            dt = time.perf_counter() - t0
            print(f"\n==== {op} x {len(items)}: {dt / len(items) * 1e6:.1f} us/{'call' if op == 'list' else 'op'}"
                  " under cProfile ====")
            buf = io.StringIO()
            st = pstats.Stats(pr, stream=buf)
            st.strip_dirs().sort_stats(sort).print_stats(top)
            print(_trim(buf.getvalue()))
            if dump:
                os.makedirs(dump, exist_ok=True)
                st.dump_stats(os.path.join(dump, f"{op}.prof"))
    finally:
        conn.close()


def _trim(text: str) -> str:
    """pstats' header without the blank lines and the file/ordering chatter."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("Ordered by", "List reduced"))]
    return "\n".join(lines)


def _warm(virt) -> None:
    """One small untimed round: lazy imports and first-use caches out of the way."""
    conn = virt.open(_workload.URI)
    try:
        for _op, fn, items in _sequence(conn, 5):
            for item in list(items):
                fn(item)
    finally:
        conn.close()


# -- layers ---------------------------------------------------------------------------------


def _bench(fn, items, repeat: int = 5) -> float:
    """Best-of-``repeat`` microseconds per item of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter_ns() - t0) / len(items) / 1000.0)
    return best


def layers(n: int) -> None:
    """The read-only ops (lookup, info, xml, list) timed at each layer, on N defined domains
    (info and xml on running ones, as in the benchmark)."""
    import virt

    _warm(virt)
    conn = virt.open(_workload.URI)
    try:
        doms = [conn.define_domain(_workload.domain_xml(i)) for i in range(n)]
        names = [d.name for d in doms]
        uuids = [d.uuid for d in doms]
        hook = conn.hook
        driver = conn.driver
        rows: list[tuple[str, str, float]] = []

        def add(op: str, layer: str, fn, items) -> None:
            rows.append((op, layer, _bench(fn, items)))

        add("lookup", "conn.lookup_domain(name)", conn.lookup_domain, names)
        add("lookup", "conn._call(hook, name=)", lambda nm: conn._call("virt_domain_lookup_by_name", name=nm), names)
        add("lookup", "pm.hook.<hook>(name=)", lambda nm: hook.virt_domain_lookup_by_name(name=nm), names)
        add("lookup", "driver.<method>(name)", driver.virt_domain_lookup_by_name, names)
        add("xml", "dom.xml()  [inactive]", lambda d: d.xml(), doms)
        add("xml", "driver.virt_domain_get_xml", lambda u: driver.virt_domain_get_xml(u, 0), uuids)
        for d in doms:
            d.start()
        add("xml", "dom.xml()  [running]", lambda d: d.xml(), doms)
        add("info", "dom.info()", lambda d: d.info(), doms)
        add("info", "conn._call(hook, uuid=)", lambda u: conn._call("virt_domain_get_info", uuid=u), uuids)
        add("info", "pm.hook.<hook>(uuid=)", lambda u: hook.virt_domain_get_info(uuid=u), uuids)
        add("info", "driver.<method>(uuid)", driver.virt_domain_get_info, uuids)
        add("info", "node.domain(uuid) + lock", lambda u: _locked(driver, u), uuids)
        calls = range(_workload.list_calls(n))
        add("list", "conn.list_domains()", lambda _: conn.list_domains(), calls)
        add("list", "pm.hook.virt_domain_list(flags=0)", lambda _: hook.virt_domain_list(flags=0), calls)
        add("list", "driver.virt_domain_list(0)", lambda _: driver.virt_domain_list(0), calls)
        add("noop", "empty Python call", _noop, names)
        add("noop", "pluggy hook, 1 impl, kwargs", lambda nm: hook.virt_domain_lookup_by_name(name=nm), names[:1] * n)
        for d in doms:
            d.destroy()
            d.undefine()
    finally:
        conn.close()
    print(f"{'op':8} {'layer':40} {'us':>9}")
    for op, layer, us in rows:
        print(f"{op:8} {layer:40} {us:9.2f}")


def _noop(_x) -> None:
    return None


def _locked(driver, uuid):
    with driver.node.lock:
        return driver.node.domain(uuid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--op", action="append", choices=_workload.OPS, help="profile only these (repeatable)")
    p.add_argument("--top", type=int, default=18)
    p.add_argument("--sort", default="tottime", choices=("tottime", "cumulative", "ncalls"))
    p.add_argument("--dump", metavar="DIR", help="also write DIR/<op>.prof (snakeviz, pstats)")
    p.add_argument("--layers", action="store_true", help="only the profiler-free layer breakdown")
    p.add_argument("--pyinstrument", action="store_true", help="use pyinstrument (when installed)")
    args = p.parse_args(argv)
    if args.layers:
        layers(args.n)
        return 0
    profile(args.n, args.op or list(_workload.OPS), args.top, args.sort, args.dump, args.pyinstrument)
    return 0


if __name__ == "__main__":
    sys.exit(main())
