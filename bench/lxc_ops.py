"""The LXC driver against a bare ``unshare`` of the same busybox (the floor), in one run.

    python bench/lxc_ops.py [--rounds 10] [--json out.json]

Each figure is the median over ``--rounds`` (milliseconds), through virt's public API on a
private ``lxc:///embed`` root, with a busybox rootfs (Debian's ``busybox-static``):

* ``start_ms``: ``conn.create_domain(xml)`` until it returns with the domain RUNNING: the
  container's namespaces, mounts, ``/dev``, cgroups (memory, cpu, pids, freezer) made, its
  init exec'd, the status written.  A controller is started ahead of time (a *spare*), as the
  driver does after each start.  Against the floor: ``unshare --fork --pid --mount --uts --ipc
  --net --root=ROOTFS /bin/sh -c 'echo up; ...'`` until ``up`` is read from its output.
* ``start_to_init_output_ms``: the same start until the init's first output reaches the host
  (a line it writes to a FIFO in a bind-mounted directory): comparable with the floor's figure.
* ``start_cold_ms``: a start with no spare: the controller's interpreter starts too.
* ``stop_ms``: ``dom.shutdown()`` (SIGTERM to the init, which traps it and exits) until the
  STOPPED event arrives (SHUT OFF, reason shutdown), 0.3 s after the start (the driver starts
  the next spare controller right after a start: on two CPUs its interpreter's start-up would
  otherwise be measured too).  Against the floor: SIGTERM to the
  unshared init until ``unshare`` has exited.
* ``destroy_ms``: ``dom.destroy()`` until it returns with the domain SHUT OFF.
* ``controller_rss_kib`` / ``controller_pss_kib``: the memory of one container's controller
  (the only process the driver keeps per container), and ``manager_kib_per_container``: the
  growth of the managing process's RSS with ten containers running, divided by ten.

Needs root.  The issue's target: ``start_ms`` at most 3x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "packages" / "virt-driver-lxc" / "tests"))

import lxc_testlib  # noqa: E402
import virt  # noqa: E402

INIT = """trap 'exit 0' TERM
[ -p /share/fifo ] && echo up > /share/fifo
while :; do sleep 10 & wait $!; done
"""
TARGETS = {"start_ms": ("x floor", 3.0)}


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as src:
        for line in src:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as src:
            for line in src:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


_FLOOR_ARGV = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net"]


def floor_once(rootfs: Path) -> tuple[float, float]:
    """Bare ``unshare`` of the same busybox: (start until its first output, stop until gone)."""
    argv = [*_FLOOR_ARGV, f"--root={rootfs}", "/bin/sh", "-c",
            "trap 'exit 0' TERM; echo up; while :; do sleep 10 & wait $!; done"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"up"
    start = (time.perf_counter() - t0) * 1000
    child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    t0 = time.perf_counter()
    os.kill(child, signal.SIGTERM)
    proc.wait()
    stop = (time.perf_counter() - t0) * 1000
    proc.stdout.close()
    return start, stop


def run(rounds: int = 10) -> dict[str, Any]:
    busybox = lxc_testlib.static_busybox()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="virt-bench-lxc-") as tmp:
        root = Path(tmp)
        rootfs = lxc_testlib.make_rootfs(root / "rootfs", busybox, INIT)
        share = root / "share"
        share.mkdir()
        uri = f"lxc:///embed?root={root}"
        floor_starts: list[float] = []
        floor_stops: list[float] = []
        try:
            with virt.open(uri) as conn:
                events: queue.Queue[Any] = queue.Queue()
                conn.subscribe(lambda _c, ev: events.put(ev), "lifecycle")

                def xml(name: str) -> str:
                    return lxc_testlib.domain_xml(name, rootfs, share=share, uuid=str(uuidlib.uuid4()))

                def stopped() -> None:
                    while events.get(timeout=30).event != virt.DomainEventType.STOPPED:
                        pass

                # warm up: the first start pays for imports and the first spare
                conn.create_domain(xml("warm")).destroy()
                starts, to_output, stops, destroys, colds = [], [], [], [], []
                fifo = share / "fifo"
                for i in range(rounds):
                    # the floor and virt take turns, so that a busy machine weighs on both alike
                    fs, fstop = floor_once(rootfs)
                    floor_starts.append(fs)
                    floor_stops.append(fstop)
                    time.sleep(0.3)  # the next spare is ready (the driver starts it after a start)
                    os.mkfifo(fifo)
                    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                    t0 = time.perf_counter()
                    dom = conn.create_domain(xml(f"bench{i}"))
                    starts.append((time.perf_counter() - t0) * 1000)
                    os.set_blocking(reader, True)
                    import select

                    select.select([reader], [], [], 10)
                    to_output.append((time.perf_counter() - t0) * 1000)
                    os.close(reader)
                    fifo.unlink()
                    while not events.empty():
                        events.get()
                    time.sleep(0.3)  # not while the next spare starts (an interpreter on a 2-CPU host)
                    t0 = time.perf_counter()
                    dom.shutdown()
                    stopped()
                    stops.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.3)
                    dom = conn.create_domain(xml(f"bench-d{i}"))
                    time.sleep(0.3)
                    t0 = time.perf_counter()
                    dom.destroy()
                    destroys.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.3)
                    from virt_lxc._driver import _controllers

                    _controllers.close()  # no spare: the next start pays for the interpreter
                    t0 = time.perf_counter()
                    dom = conn.create_domain(xml(f"bench-c{i}"))
                    colds.append((time.perf_counter() - t0) * 1000)
                    dom.destroy()
                out["floor"] = {"start_ms": _median(floor_starts), "stop_ms": _median(floor_stops),
                                "start_min_ms": round(min(floor_starts), 2)}
                out["start_min_ms"] = round(min(starts), 2)
                out["start_ratio_per_round"] = _median([a / b for a, b in zip(starts, floor_starts, strict=True)])
                out.update(start_ms=_median(starts), start_to_init_output_ms=_median(to_output),
                           start_cold_ms=_median(colds), stop_ms=_median(stops), destroy_ms=_median(destroys))

                time.sleep(0.3)
                before = _rss_kib(os.getpid())
                doms = []
                for i in range(10):
                    doms.append(conn.create_domain(xml(f"many{i}")))
                    time.sleep(0.05)
                after = _rss_kib(os.getpid())
                controllers = [int(json.loads((root / "run" / "lxc" / f"{d.uuid}.json").read_text())["pid"])
                               for d in doms]
                out["controller_rss_kib"] = int(statistics.median(_rss_kib(p) for p in controllers))
                out["controller_pss_kib"] = int(statistics.median(_pss_kib(p) for p in controllers))
                out["manager_kib_per_container"] = round((after - before) / 10, 1)
                for d in doms:
                    d.destroy()
        finally:
            lxc_testlib.kill_leftovers(root)
            lxc_testlib.remove_empty_parents()  # lets the spare go too
    out["start_vs_floor"] = round(out["start_ms"] / out["floor"]["start_ms"], 2)
    out["start_to_init_output_vs_floor"] = round(out["start_to_init_output_ms"] / out["floor"]["start_ms"], 2)
    out["stop_vs_floor"] = round(out["stop_ms"] / out["floor"]["stop_ms"], 2)
    return out


def render(result: dict[str, Any]) -> str:
    fl = result["floor"]
    rows = [
        ("start -> running", result["start_ms"], fl["start_ms"], "<= 3x floor"),
        ("start -> init's output", result["start_to_init_output_ms"], fl["start_ms"], ""),
        ("start, no spare", result["start_cold_ms"], fl["start_ms"], ""),
        ("shutdown -> SHUTOFF", result["stop_ms"], fl["stop_ms"], ""),
        ("destroy", result["destroy_ms"], None, ""),
    ]
    lines = [f"{'lxc':<26}{'virt ms':>10}{'floor ms':>10}{'virt/floor':>12}  target"]
    for name, mine, base, target in rows:
        ratio = f"{mine / base:.2f}x" if base else "-"
        lines.append(f"{name:<26}{mine:>10.2f}{(base if base is not None else float('nan')):>10.2f}{ratio:>12}  "
                     f"{target}")
    lines.append(f"start, best of the rounds: virt {result['start_min_ms']} ms, floor {fl['start_min_ms']} ms; "
                 f"median of the per-round ratios {result['start_ratio_per_round']}x")
    lines.append(f"controller per container: RSS {result['controller_rss_kib']} KiB, "
                 f"PSS {result['controller_pss_kib']} KiB; managing process "
                 f"{result['manager_kib_per_container']} KiB per container")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    result = run(args.rounds)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
