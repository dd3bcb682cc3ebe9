"""virt against libvirt: per-op cost on ``test:///default`` and CLI cold start.

    python bench/run.py [--n 1000] [--rounds 3] [--cli-runs 20] [--json out.json] [--check]

Both sides run the same workload (``_workload.py``) in fresh subprocesses, alternating
virt / libvirt round by round so machine noise hits both alike: virt under this interpreter
(``--virt-python``), libvirt-python under Debian's ``/usr/bin/python3``
(``--libvirt-python``).  Each op keeps the best round (``--stat median`` for the median).
Reported: microseconds per op (per call for "list"), the ratio virt/libvirt, the geometric
mean of the ratios, and the CLI's median start time against virsh's.

Targets: geometric mean of ratios <= 1.0, no op worse than 3x, CLI cold start <= 3x virsh.
``--check`` exits 1 when a target is missed (the default is to report only: a benchmark on
a shared machine is not a test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _workload  # noqa: E402
import cli_startup  # noqa: E402

GEOMEAN_TARGET = 1.0
OP_LIMIT = 3.0
CLI_LIMIT = 3.0
DEFAULT_LIBVIRT_PYTHON = "/usr/bin/python3"


# -- running the sides ----------------------------------------------------------------------


def _run_side(python: str, script: str, n: int, warmup: int, gc_off: bool) -> dict:
    cmd = [python, str(HERE / script), "--n", str(n), "--rounds", "1", "--warmup", str(warmup)]
    if gc_off:
        cmd.append("--gc-off")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        return {"available": False, "error": f"{script} exited {proc.returncode}: {tail}"}


def libvirt_available(python: str) -> str | None:
    """None when ``python`` can import libvirt, else why not."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
        return f"{python} not found"
    proc = subprocess.run([python, "-c", "import libvirt"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"{python} cannot import libvirt ({proc.stderr.strip().splitlines()[-1:] or '?'})"
    return None


def _merge(runs: list[dict], stat: str) -> dict:
    """Round results of one side (one subprocess each) -> one summary with best/median."""
    ok = [r for r in runs if r.get("available")]
    if not ok:
        return {"available": False, "error": runs[0].get("error", "?") if runs else "not run"}
    merged = {k: ok[0][k] for k in ("side", "n", "list_calls", "python", "version", "warmup") if k in ok[0]}
    merged.update(available=True, rounds=len(ok), stat=stat, ops={})
    import statistics

    for op in _workload.OPS + _workload.EXTRA_OPS:
        if op not in ok[0]["ops"]:
            continue
        samples = [s for r in ok for s in r["ops"][op].get("samples", [])]
        entry: dict = {"unit": ok[0]["ops"][op]["unit"]}
        if samples:
            entry.update(best=min(samples), median=statistics.median(samples), samples=samples)
            entry["value"] = entry[stat]
        err = next((r["ops"][op] for r in ok if "error" in r["ops"][op]), None)
        if err:
            entry["error"] = err["error"]
            if err.get("trace"):
                entry["trace"] = err["trace"]
        merged["ops"][op] = entry
    return merged


def run_ops(args: argparse.Namespace) -> dict:
    why_not = libvirt_available(args.libvirt_python)
    virt_runs, lv_runs = [], []
    for i in range(args.rounds):
        _progress(f"ops round {i + 1}/{args.rounds}: virt")
        virt_runs.append(_run_side(args.virt_python, "testdriver_ops.py", args.n, args.warmup, args.gc_off))
        if why_not is None:
            _progress(f"ops round {i + 1}/{args.rounds}: libvirt")
            lv_runs.append(_run_side(args.libvirt_python, "libvirt_ops.py", args.n, args.warmup, args.gc_off))
    virt = _merge(virt_runs, args.stat)
    libvirt = _merge(lv_runs, args.stat) if why_not is None else {"available": False, "error": why_not}
    rows, ratios, extra_rows = [], [], []
    for op in _workload.OPS + _workload.EXTRA_OPS:
        v = virt.get("ops", {}).get(op, {})
        lv = libvirt.get("ops", {}).get(op, {})
        row = {"op": op, "unit": v.get("unit") or lv.get("unit"), "virt": v.get("value"),
               "libvirt": lv.get("value"), "ratio": None, "flag": ""}
        if v.get("error"):
            row["virt_error"] = v["error"]
        if lv.get("error"):
            row["libvirt_error"] = lv["error"]
        extra = op in _workload.EXTRA_OPS
        if row["virt"] is not None and row["libvirt"]:
            row["ratio"] = row["virt"] / row["libvirt"]
            if not extra:
                ratios.append(row["ratio"])
            if row["ratio"] > OP_LIMIT:
                row["flag"] = f">{OP_LIMIT:g}x"
        elif row.get("virt_error"):
            row["flag"] = "virt error"
        elif row.get("libvirt_error"):
            row["flag"] = "libvirt error"
        if extra:
            row["flag"] = (row["flag"] + " " if row["flag"] else "") + "(extra, not in targets)"
        (extra_rows if extra else rows).append(row)
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    return {"virt": virt, "libvirt": libvirt, "rows": rows, "extra_rows": extra_rows, "geomean": geomean,
            "ops_compared": len(ratios), "libvirt_missing": why_not}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _machine_line(result: dict) -> str:
    """CPUs and load: a ratio taken while the machine was busy deserves a second run."""
    before, after = result.get("load_before"), result.get("load_after")
    load = f"{before[0] if before else '?'} -> {after[0] if after else '?'}"
    text = f"machine: {result.get('cpus')} CPUs, 1-min load {load}"
    cpus = result.get("cpus") or 1
    if (after and after[0] > cpus * 0.75) or (before and before[0] > cpus * 0.75):
        text += "  (busy: expect noise, re-run when quieter)"
    return text


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{text}")
        sys.stderr.flush()


# -- verdicts and output --------------------------------------------------------------------


def verdicts(result: dict) -> list[dict]:
    out = []
    ops = result.get("ops")
    if ops is not None:
        n_ops = len(_workload.OPS)
        gm = ops["geomean"]
        complete = ops["ops_compared"] == n_ops
        out.append({"target": f"geometric mean of ratios <= {GEOMEAN_TARGET:g}",
                    "value": None if gm is None else f"{gm:.2f}x" + ("" if complete else
                                                                     f" ({ops['ops_compared']}/{n_ops} ops)"),
                    "ok": None if gm is None else (gm <= GEOMEAN_TARGET and complete)})
        worse = [r["op"] for r in ops["rows"] if r["ratio"] is not None and r["ratio"] > OP_LIMIT]
        missing = [r["op"] for r in ops["rows"] if r["ratio"] is None]
        text = ", ".join(worse) if worse else "none"
        if missing:
            text += f"; not compared: {', '.join(missing)}"
        out.append({"target": f"no op > {OP_LIMIT:g}x", "value": text,
                    "ok": None if gm is None else not worse and not missing})
    cli = result.get("cli")
    if cli is not None:
        ratio = cli["startup"].get("ratio")
        value = f"{ratio:.2f}x" if ratio is not None else ("virt CLI failed" if "virt" in cli["startup"].get(
            "errors", {}) else "virsh not installed")
        out.append({"target": f"CLI cold start <= {CLI_LIMIT:g}x virsh", "value": value,
                    "ok": None if ratio is None else ratio <= CLI_LIMIT})
    return out


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}{unit}"
    if x >= 10:
        return f"{x:.1f}{unit}"
    return f"{x:.2f}{unit}"


def _title(result: dict) -> str:
    stat = result["ops"]["virt"].get("stat", "best")
    return f"test:///default, N={result['n']} domains, {stat} of {result['rounds']} rounds"


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def render(result: dict, plain: bool) -> None:
    try:
        if plain:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _render_plain(result)
        return
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    ops = result.get("ops")
    if ops is not None:
        v, lv = ops["virt"], ops["libvirt"]
        title = _title(result)
        t = Table(title=title, title_justify="left")
        t.add_column("op")
        t.add_column("unit")
        t.add_column("virt", justify="right")
        t.add_column("libvirt", justify="right")
        t.add_column("virt/libvirt", justify="right")
        t.add_column("flag")
        for r in ops["rows"]:
            ratio = r["ratio"]
            style = "" if ratio is None else "red" if ratio > OP_LIMIT else "green" if ratio <= 1 else ""
            t.add_row(r["op"], r["unit"] or "", _fmt(r["virt"]), _fmt(r["libvirt"]),
                      f"[{style}]{_fmt(ratio, 'x')}[/]" if style else _fmt(ratio, "x"), r["flag"])
        gm = ops["geomean"]
        t.add_section()
        t.add_row("geomean", "", "", "", _fmt(gm, "x"), f"target <= {GEOMEAN_TARGET:g}")
        if ops.get("extra_rows"):
            t.add_section()
            for r in ops["extra_rows"]:
                t.add_row(r["op"], r["unit"] or "", _fmt(r["virt"]), _fmt(r["libvirt"]), _fmt(r["ratio"], "x"),
                          r["flag"])
        console.print(t)
        console.print(f"virt: {v.get('version', '?')} on Python {v.get('python', '?')}   "
                      f"libvirt: {lv.get('version') or lv.get('error')}")
        _print_errors(ops, console.print)
    cli = result.get("cli")
    if cli is not None:
        s = cli["startup"]
        t = Table(title=f"CLI cold start: `list --all`, median of {s['runs']} fresh processes", title_justify="left")
        t.add_column("command")
        t.add_column("median ms", justify="right")
        t.add_column("min ms", justify="right")
        t.add_column("/ virsh", justify="right")
        base = s.get("virsh", {}).get("median_ms")
        for name in ("virt", "virsh", "python -c pass"):
            if name in s:
                m = s[name]["median_ms"]
                t.add_row(name, _fmt(m), _fmt(s[name]["min_ms"]), _fmt(m / base, "x") if base else "-")
        console.print(t)
        for name, err in s.get("errors", {}).items():
            console.print(f"[red]{name} failed[/]: {err}", markup=True)
        _print_importtime(cli["importtime"], console.print)
    console.print(_machine_line(result))
    t = Table(title="targets", title_justify="left")
    t.add_column("target")
    t.add_column("measured")
    t.add_column("")
    for v in result["verdicts"]:
        st = _status(v["ok"])
        color = {"PASS": "green", "MISS": "red"}.get(st, "yellow")
        t.add_row(v["target"], v["value"] or "-", f"[{color}]{st}[/]")
    console.print(t)


def _print_errors(ops: dict, emit) -> None:
    if ops.get("libvirt_missing"):
        emit(f"libvirt-python is not available ({ops['libvirt_missing']}): virt's numbers alone.")
    seen = set()
    rows = ops["rows"] + ops.get("extra_rows", [])
    for r in rows:
        for side in ("virt", "libvirt"):
            err = r.get(f"{side}_error")
            if err and (side, err) not in seen:
                seen.add((side, err))
                ops_with = [x["op"] for x in rows if x.get(f"{side}_error") == err]
                emit(f"{side} error in {', '.join(ops_with)}: {err}")


def _print_importtime(imp: dict, emit) -> None:
    emit(f"virt CLI imports: {imp['total_import_ms']:.1f} ms (median of -X importtime runs); "
         "top cumulative:")
    for row in imp["top_cumulative"][:12]:
        emit(f"  {row['cumulative_ms']:7.2f} ms  {'  ' * row['depth']}{row['module']}")
    emit("  by package (self time): " + ", ".join(
        f"{r['package']} {r['self_ms']:.1f}" for r in imp["by_package"][:8]) + " ms")


def _render_plain(result: dict) -> None:
    ops = result.get("ops")
    if ops is not None:
        print(_title(result))
        print(f"{'op':10} {'unit':8} {'virt':>10} {'libvirt':>10} {'virt/libvirt':>13}  flag")
        for r in ops["rows"]:
            print(f"{r['op']:10} {r['unit'] or '':8} {_fmt(r['virt']):>10} {_fmt(r['libvirt']):>10} "
                  f"{_fmt(r['ratio'], 'x'):>13}  {r['flag']}")
        print(f"{'geomean':10} {'':8} {'':>10} {'':>10} {_fmt(ops['geomean'], 'x'):>13}  target <= {GEOMEAN_TARGET:g}")
        for r in ops.get("extra_rows", []):
            print(f"{r['op']:10} {r['unit'] or '':8} {_fmt(r['virt']):>10} {_fmt(r['libvirt']):>10} "
                  f"{_fmt(r['ratio'], 'x'):>13}  {r['flag']}")
        lv = ops["libvirt"]
        print(f"virt: {ops['virt'].get('version', '?')}   libvirt: {lv.get('version') or lv.get('error')}")
        _print_errors(ops, print)
        print()
    cli = result.get("cli")
    if cli is not None:
        s = cli["startup"]
        print(f"CLI cold start (`list --all`, median of {s['runs']} fresh processes)")
        base = s.get("virsh", {}).get("median_ms")
        for name in ("virt", "virsh", "python -c pass"):
            if name in s:
                m = s[name]["median_ms"]
                print(f"  {name:16} {_fmt(m):>8} ms  {_fmt(m / base, 'x') if base else '':>8}")
        for name, err in s.get("errors", {}).items():
            print(f"  {name} failed: {err}")
        _print_importtime(cli["importtime"], print)
        print()
    print(_machine_line(result))
    print("targets:")
    for v in result["verdicts"]:
        print(f"  [{_status(v['ok']):4}] {v['target']}: {v['value'] or '-'}")


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="domains per round (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    p.add_argument("--warmup", type=int, default=20, help="domains in each process's untimed warm-up round")
    p.add_argument("--stat", choices=("best", "median"), default="best", help="per-op statistic over rounds")
    p.add_argument("--gc-off", action="store_true", help="disable the cyclic GC while timing (both sides)")
    p.add_argument("--cli-runs", type=int, default=20, help="fresh processes per CLI (default 20; 0 skips)")
    p.add_argument("--importtime-runs", type=int, default=5)
    p.add_argument("--skip-ops", action="store_true", help="only the CLI start benchmark")
    p.add_argument("--virt-python", default=sys.executable, help="interpreter with virt installed")
    p.add_argument("--libvirt-python", default=DEFAULT_LIBVIRT_PYTHON,
                   help="interpreter with libvirt-python (default /usr/bin/python3)")
    p.add_argument("--virsh", default=None, help="virsh binary (default: from PATH)")
    p.add_argument("--json", metavar="PATH", help="also write every number to PATH")
    p.add_argument("--plain", action="store_true", help="plain text even when rich is installed")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)

    result: dict = {"n": args.n, "rounds": args.rounds, "cpus": os.cpu_count(), "load_before": _load()}
    if not args.skip_ops:
        result["ops"] = run_ops(args)
    if args.cli_runs > 0:
        _progress("CLI cold start")
        startup = cli_startup.measure(args.cli_runs, python=args.virt_python, virsh=args.virsh)
        _progress("CLI importtime")
        result["cli"] = {"startup": startup,
                         "importtime": cli_startup.importtime(args.virt_python, repeats=max(1, args.importtime_runs))}
    _progress("")
    result["load_after"] = _load()
    result["verdicts"] = verdicts(result)
    render(result, args.plain)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.check and any(v["ok"] is False or v["ok"] is None for v in result["verdicts"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
