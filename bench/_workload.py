"""The benchmark workload, shared by both sides: domain XML, the op list and the timing loop.

Stdlib only and importable by any Python >= 3.9, because ``libvirt_ops.py`` runs it under
Debian's ``/usr/bin/python3`` (which has libvirt-python but not virt) and
``testdriver_ops.py`` under virt's venv.  Each side supplies an *adapter* (an object with the
methods below), so the two sides run exactly the same sequence on exactly the same XML.

Sequence of one round, on a fresh connection to ``test:///default``::

    define  x N     (define every domain, keep the handles)
    list    x L     (one "list all domains" call with N+ domains; reported per call)
    lookup  x N     (lookup by name)
    xml     x N     (the inactive domain's XML)
    start   x N
    info    x N     (info of a running domain)
    destroy x N
    undefine x N
    open    x K     (open + close a second connection while the first is open; extra)

Every op but ``list`` and ``open`` is reported in microseconds per op (per domain); ``list`` in
microseconds per call.  An op that raises is recorded as an error (with the first message)
and the round goes on, so a half-finished driver still yields numbers for what works.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import traceback
import uuid as _uuid

OPS = ("define", "list", "lookup", "xml", "start", "info", "destroy", "undefine")
#: measured and shown, but outside the targets (not in the geometric mean): opening a second
#: connection to the node while the first is open (libvirt shares the node; so does virt).
EXTRA_OPS = ("open",)
PER_CALL_OPS = frozenset({"list", "open"})
URI = "test:///default"
NAME_PREFIX = "bench-"
_NS = _uuid.UUID("6f0c1a52-6b1e-4d2e-9c0e-7a5a0f0b0e11")

_TEMPLATE = """<domain type='test'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>{mem}</memory>
  <currentMemory unit='KiB'>{mem}</currentMemory>
  <vcpu placement='static'>{vcpu}</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/virt/images/{name}.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='{mac}'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"""


def domain_name(i: int) -> str:
    return f"{NAME_PREFIX}{i:05d}"


def domain_xml(i: int) -> str:
    """Small valid domain XML number ``i``: distinct name, UUID and MAC; deterministic."""
    name = domain_name(i)
    return _TEMPLATE.format(
        name=name,
        uuid=str(_uuid.uuid5(_NS, name)),
        mem=65536 + 1024 * (i % 16),
        vcpu=1 + i % 4,
        mac=f"52:54:00:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}",
    )


def open_calls(n: int) -> int:
    return max(3, min(50, n))


def list_calls(n: int) -> int:
    """How many "list all" calls a round makes: enough to time, not so many they dominate."""
    return max(5, min(100, 50000 // max(n, 1)))


class Adapter:  # documentation only: what each side implements
    def open(self): ...          # -> connection
    def close(self, conn): ...
    def define(self, conn, xml): ...   # -> handle
    def list_all(self, conn): ...      # -> list of handles
    def lookup(self, conn, name): ...  # -> handle
    def xml(self, dom): ...            # -> str
    def start(self, dom): ...
    def info(self, dom): ...
    def destroy(self, dom): ...
    def undefine(self, dom): ...


#: Bytes of one block that glibc's malloc serves from its "large" bins (over 1 KiB, under the
#: mmap threshold): asking for one consolidates the small freed chunks first.
_SETTLE_BYTES = 4096


def _settle():
    """Make the allocator pay now for what the step freed.  glibc keeps small freed chunks
    (libxml2's nodes, libvirt's structs, Python's big objects) on "fast" lists and merges them
    only when a larger block is next asked for; after a step that frees a thousand XML trees
    that merge takes milliseconds, and without this it lands in whichever later step first
    asks for such a block (the ``open`` row, say) instead of the step that freed them.  Both
    sides are settled the same way, inside the timed region."""
    bytes(_SETTLE_BYTES)


def _timed(fn, items):
    """Call ``fn(item)`` for each item; (elapsed ns, results), the allocator settled at the
    end (see :func:`_settle`).  Raises on the first error."""
    out = []
    append = out.append
    t0 = time.perf_counter_ns()
    for item in items:
        append(fn(item))
    _settle()
    return time.perf_counter_ns() - t0, out


def run_round(adapter, n: int, *, gc_off: bool = False) -> dict:
    """One round; {op: {"ns": total, "calls": count}} or {op: {"error": text}}."""
    xmls = [domain_xml(i) for i in range(n)]
    names = [domain_name(i) for i in range(n)]
    res: dict = {}
    try:
        conn = adapter.open()
    except Exception as exc:  # noqa: BLE001 - every op fails the same way
        err = {"error": f"open {URI} failed: {type(exc).__name__}: {exc}"[:500],
               "trace": traceback.format_exc(limit=-3)[-1500:]}
        return {op: dict(err) for op in OPS + EXTRA_OPS}
    doms: list = []

    def step(op, fn, items):
        if gc_off:
            gc.collect()
            gc.disable()
        try:
            ns, out = _timed(fn, items)
        except Exception as exc:  # noqa: BLE001 - recorded, the round goes on
            res[op] = {"error": f"{type(exc).__name__}: {exc}".strip()[:500],
                       "trace": traceback.format_exc(limit=-3)[-1500:]}
            return None
        finally:
            if gc_off:
                gc.enable()
        res[op] = {"ns": ns, "calls": len(items)}
        return out

    try:
        doms = step("define", lambda x: adapter.define(conn, x), xmls) or []
        calls = list_calls(n)
        listed = step("list", lambda _: adapter.list_all(conn), range(calls))
        if listed is not None and len(listed[-1]) < n:
            res["list"] = {"error": f"list returned {len(listed[-1])} domains, expected >= {n}"}
        found = step("lookup", lambda name: adapter.lookup(conn, name), names)
        if not doms and found:
            doms = found  # define failed but lookups work: keep going with those handles
        texts = step("xml", adapter.xml, doms)
        if texts is not None and texts and names[0] not in texts[0]:
            res["xml"] = {"error": "XML of the first domain does not contain its name"}
        step("start", adapter.start, doms)
        step("info", adapter.info, doms)
        step("destroy", adapter.destroy, doms)
        step("undefine", adapter.undefine, doms)
        step("open", lambda _: adapter.close(adapter.open()), range(open_calls(n)))
        if not doms:
            for op in ("xml", "start", "info", "destroy", "undefine"):
                res.setdefault(op, {"error": "skipped: no domain handles (define and lookup failed)"})
    finally:
        try:
            adapter.close(conn)
        except Exception:  # noqa: BLE001
            pass
    return res


def summarize(rounds: list[dict]) -> dict:
    """Per op: best and median microseconds per op (per call for ``list``) over rounds."""
    ops: dict = {}
    for op in OPS + EXTRA_OPS:
        samples = [r[op]["ns"] / r[op]["calls"] / 1000.0 for r in rounds if op in r and "ns" in r[op]]
        errors = [r[op]["error"] for r in rounds if op in r and "error" in r[op]]
        entry: dict = {"unit": "us/call" if op in PER_CALL_OPS else "us/op"}
        if samples:
            entry.update(best=min(samples), median=statistics.median(samples), samples=samples)
        if errors:
            entry["error"] = errors[0]
            trace = next((r[op].get("trace") for r in rounds if op in r and r[op].get("trace")), None)
            if trace:
                entry["trace"] = trace
        ops[op] = entry
    return ops


def main(adapter_factory, argv=None, side: str = "?") -> int:
    """CLI shared by both sides: ``--n N --rounds R [--gc-off]``, prints one JSON object."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gc-off", action="store_true", help="disable the cyclic GC while timing")
    p.add_argument("--warmup", type=int, default=20,
                   help="domains in an untimed first round (lazy imports, caches); 0: none")
    args = p.parse_args(argv)
    try:
        adapter = adapter_factory()
    except Exception as exc:  # noqa: BLE001
        print(json.dumps({"side": side, "available": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 0
    print(json.dumps(bench(adapter, args.n, args.rounds, side=side, warmup=args.warmup,
                           gc_off=args.gc_off)))
    return 0


def bench(adapter, n: int, rounds: int, *, side: str, warmup: int = 20, gc_off: bool = False) -> dict:
    """An untimed warm-up round of ``warmup`` domains, then ``rounds`` timed rounds of ``n``."""
    if warmup > 0:
        run_round(adapter, warmup, gc_off=gc_off)
    results = [run_round(adapter, n, gc_off=gc_off) for _ in range(rounds)]
    return {
        "side": side, "available": True, "n": n, "rounds": rounds, "warmup": warmup,
        "list_calls": list_calls(n), "python": sys.version.split()[0],
        "version": getattr(adapter, "version", None), "ops": summarize(results),
    }
