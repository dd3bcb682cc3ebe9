"""CLI cold start: ``virt -c test:///default list --all`` against virsh's, as fresh processes.

Runs alternate (virt, virsh, virt, ...) so that machine noise hits both sides alike; the
median wall time of each is reported with their ratio, next to the interpreter's own floor
(``python -c pass``), which no Python CLI can beat.  ``importtime()`` runs the virt CLI under
``python -X importtime`` and ranks the modules that cost the most.

Bytecode: by default every timed process may write and read ``.pyc`` files, in a private
``PYTHONPYCACHEPREFIX`` (``--bytecode cache``), as an installed CLI does.  ``--bytecode env``
times the processes in the caller's environment as it is: with ``PYTHONDONTWRITEBYTECODE=1``
(set on the shared dev machine) every module whose source changed since its ``.pyc`` was last
written is compiled again on every start.

    .venv/bin/python bench/cli_startup.py [--runs 20] [--bytecode cache|env] [--json]
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ARGS = ["-c", "test:///default", "list", "--all"]


def virt_command(python: str | None = None) -> list[str]:
    """How to start the virt CLI: its console script when installed next to ``python``."""
    python = python or sys.executable
    script = Path(python).parent / "virt"
    if script.is_file():
        return [str(script)]
    found = shutil.which("virt")
    if found:
        return [found]
    return [python, "-c", "import sys; from virt.cli import main; sys.exit(main())"]


def _python_of(cmd: list[str]) -> tuple[str, list[str]]:
    """(interpreter, argv after it) to run ``cmd`` under ``python -X ...``."""
    if cmd[0].endswith(("python", "python3")) or re.search(r"python3?(\.\d+)?$", cmd[0]):
        return cmd[0], cmd[1:]
    first = Path(cmd[0]).read_text(errors="replace").splitlines()[0] if Path(cmd[0]).is_file() else ""
    interp = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    return interp, cmd


BYTECODE_MODES = ("cache", "env")


def bench_env(bytecode: str = "cache") -> dict[str, str]:
    """The environment of every timed process.

    ``cache`` (the default): bytecode caching on, as for an installed package, but in a
    private cache directory (``PYTHONPYCACHEPREFIX``) rather than in the source tree.  A shell
    with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile every changed virt module on
    each start and measure the compiler, not virt.  ``env``: the caller's environment as is."""
    env = dict(os.environ)
    if bytecode == "env":
        return env
    if bytecode != "cache":
        raise ValueError(f"bytecode mode {bytecode!r}: expected one of {BYTECODE_MODES}")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"virt-bench-pycache-{os.getuid()}")
    return env


def describe_bytecode(env: dict[str, str]) -> str:
    """One line saying how the timed processes get their bytecode."""
    if env.get("PYTHONPYCACHEPREFIX") and not env.get("PYTHONDONTWRITEBYTECODE"):
        return f"bytecode cached (.pyc written and read under {env['PYTHONPYCACHEPREFIX']})"
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return ("PYTHONDONTWRITEBYTECODE set: .pyc files are read but never written, so every module "
                "changed since its last .pyc is compiled on every start")
    return "bytecode cached (.pyc written and read next to the sources)"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess, float]:
    """(wall seconds, the finished process, its CPU seconds: user + system)."""
    c0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, proc, _children_cpu() - c0


def measure(runs: int = 20, python: str | None = None, virsh: str | None = None,
            bytecode: str = "cache") -> dict:
    """Median wall times (ms) of the virt and virsh commands and of the bare interpreter."""
    vcmd = virt_command(python) + ARGS
    virsh = virsh or shutil.which("virsh")
    interp, _ = _python_of(virt_command(python))
    floor_cmd = [interp, "-c", "pass"]
    cmds = {"virt": vcmd, "python -c pass": floor_cmd}
    if virsh:
        cmds["virsh"] = [virsh, *ARGS]
    env = bench_env(bytecode)
    out: dict = {"runs": runs, "commands": {k: " ".join(v) for k, v in cmds.items()},
                 "bytecode": bytecode, "bytecode_cache": env.get("PYTHONPYCACHEPREFIX"),
                 "bytecode_note": describe_bytecode(env)}
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, str] = {}
    for name, cmd in cmds.items():  # fill the bytecode and page caches; check the command works
        _once(cmd, env)
        _, proc, _ = _once(cmd, env)
        if proc.returncode != 0:
            errors[name] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"
        elif name != "python -c pass":
            out.setdefault("sample_output", {})[name] = proc.stdout[:400]
    for _ in range(runs):
        for name, cmd in cmds.items():
            dt, _, dc = _once(cmd, env)
            times[name].append(dt * 1000.0)
            cpu[name].append(dc * 1000.0)
    for name, samples in times.items():
        out[name] = {"median_ms": statistics.median(samples), "min_ms": min(samples),
                     "samples_ms": samples, "cpu_median_ms": statistics.median(cpu[name])}
    if "virsh" in times and "virt" not in errors:
        out["ratio"] = out["virt"]["median_ms"] / out["virsh"]["median_ms"]
        out["floor_ratio"] = out["python -c pass"]["median_ms"] / out["virsh"]["median_ms"]
        # CPU time (user + system) is less disturbed than wall time when other processes
        # compete for the cores: on a busy machine, compare this one too.
        out["cpu_ratio"] = out["virt"]["cpu_median_ms"] / out["virsh"]["cpu_median_ms"]
    elif "virsh" not in times:
        out["virsh_missing"] = True
    if errors:
        out["errors"] = errors
    return out


_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """[(module, self_us, cumulative_us, depth)] from ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2))
    return rows


def importtime(python: str | None = None, repeats: int = 5, top: int = 15, bytecode: str = "cache") -> dict:
    """The virt CLI's costliest imports: median over ``repeats`` runs of ``-X importtime``."""
    interp, argv = _python_of(virt_command(python))
    cumul: dict[str, list[int]] = defaultdict(list)
    selfs: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, int] = {}
    totals = []
    env = bench_env(bytecode)
    _once([interp, *argv, *ARGS], env)  # bytecode cache
    for _ in range(repeats):
        proc = subprocess.run([interp, "-X", "importtime", *argv, *ARGS], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=env)
        rows = parse_importtime(proc.stderr)
        totals.append(sum(s for _, s, _, _ in rows))
        for mod, s, c, d in rows:
            cumul[mod].append(c)
            selfs[mod].append(s)
            depth[mod] = d
    med_c = {m: statistics.median(v) for m, v in cumul.items()}
    med_s = {m: statistics.median(v) for m, v in selfs.items()}
    by_pkg: dict[str, float] = defaultdict(float)
    for m, s in med_s.items():
        by_pkg[_package_of(m)] += s
    total = statistics.median(totals) if totals else 0
    return {
        "total_import_ms": total / 1000.0,
        "top_cumulative": [{"module": m, "cumulative_ms": c / 1000.0, "self_ms": med_s[m] / 1000.0,
                            "depth": depth[m]}
                           for m, c in sorted(med_c.items(), key=lambda kv: -kv[1])[:top]],
        "top_self": [{"module": m, "self_ms": s / 1000.0}
                     for m, s in sorted(med_s.items(), key=lambda kv: -kv[1])[:top]],
        "by_package": [{"package": p, "self_ms": s / 1000.0}
                       for p, s in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:top]],
    }


def _package_of(module: str) -> str:
    """Group ``virt.xml.domain`` as ``virt.xml``, ``rich.console`` as ``rich``, ``encodings.x``
    as ``encodings``: virt's own subpackages are worth telling apart, others are not."""
    parts = module.split(".")
    if parts[0] == "virt" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--bytecode", choices=BYTECODE_MODES, default="cache",
                   help="cache: .pyc on, in a private cache (default); env: the environment as it is")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = {"startup": measure(args.runs, bytecode=args.bytecode),
              "importtime": importtime(bytecode=args.bytecode)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = result["startup"]
    print(s["bytecode_note"])
    for name in ("virt", "virsh", "python -c pass"):
        if name in s:
            print(f"{name:16} median {s[name]['median_ms']:7.1f} ms   min {s[name]['min_ms']:7.1f} ms"
                  f"   cpu median {s[name]['cpu_median_ms']:7.1f} ms")
    if "ratio" in s:
        print(f"ratio virt/virsh {s['ratio']:.2f}x (interpreter floor alone {s['floor_ratio']:.2f}x); "
              f"in CPU time {s['cpu_ratio']:.2f}x")
    for name, err in s.get("errors", {}).items():
        print(f"ERROR {name}: {err}")
    print(f"\nimports: {result['importtime']['total_import_ms']:.1f} ms; top cumulative:")
    for row in result["importtime"]["top_cumulative"]:
        print(f"  {row['cumulative_ms']:7.2f} ms  {'  ' * row['depth']}{row['module']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
