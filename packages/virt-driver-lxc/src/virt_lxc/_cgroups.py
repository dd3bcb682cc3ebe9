"""The container's cgroups, on cgroup v1 hierarchies, the v2 unified one, or a mix of both.

Each job (memory limit, cpu shares and quota, cpu accounting, pids limit, freezer) is done by
the hierarchy that has its controller: a v1 hierarchy mounted with it, else the v2 hierarchy
when its root lists it in ``cgroup.controllers`` (the freezer is ``cgroup.freeze`` there, and
cpu accounting ``cpu.stat``, both always present).  The machines this project runs on mount
every v1 controller plus a v2 ``unified`` tree with only ``hugetlb``: there the v1 code does
the work; on a pure v2 host (``/sys/fs/cgroup`` is cgroup2) the v2 code does.

Where: on v1, below the cgroup of the process that starts the container
(``<own>/virt-lxc/NAME-UUID8``), so a container is accounted with whoever runs it; on v2, at
``/virt-lxc/NAME-UUID8`` below the root, because v2 lets controllers be delegated only to
cgroups without processes of their own.  The paths go into the domain's status, so any later
process finds them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import attrs

__all__ = ["Cgroups", "Limits", "create", "detect"]

_V1_JOBS = {"memory": "memory", "cpu": "cpu", "cpuacct": "cpuacct", "pids": "pids", "freezer": "freezer",
            "cpuset": "cpuset"}
DEFAULT_PIDS_MAX = 10000


@attrs.frozen
class Limits:
    memory_kib: int | None = None
    soft_kib: int | None = None
    swap_kib: int | None = None
    shares: int | None = None
    period_us: int | None = None
    quota_us: int | None = None
    pids_max: int | None = DEFAULT_PIDS_MAX
    cpuset: str | None = None


@attrs.frozen
class Hierarchies:
    v1: dict[str, tuple[str, str]]  # job -> (mount point, own cgroup path)
    v2: tuple[str, frozenset[str]] | None  # (mount point, controllers at its root)
    v2own: str = "/"  # this process's cgroup in the v2 hierarchy


def _mounts() -> list[tuple[str, str, list[str]]]:
    out = []
    with open("/proc/self/mountinfo") as src:
        for line in src:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            out.append((rfields[0], fields[4], rfields[2].split(",")))
    return out


def _own() -> dict[str, str]:
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as src:
        for line in src:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                own[name] = path
    return own


_detected: Hierarchies | None = None


def detect() -> Hierarchies:
    global _detected
    if _detected is None:
        own = _own()
        v1: dict[str, tuple[str, str]] = {}
        v2: tuple[str, frozenset[str]] | None = None
        for kind, point, options in _mounts():
            if kind == "cgroup2":
                try:
                    controllers = frozenset(Path(point, "cgroup.controllers").read_text().split())
                except OSError:
                    continue
                if v2 is None:
                    v2 = (point, controllers)
                continue
            for job, controller in _V1_JOBS.items():
                if controller in options and job not in v1:
                    v1[job] = (point, own.get(controller, "/"))
        _detected = Hierarchies(v1, v2, own.get("", "/"))
    return _detected


@attrs.define
class Cgroups:
    """The cgroup directories of one container, by job, plus the v2 one if used."""

    dirs: dict[str, str]  # job -> directory; v2 jobs name the same v2 directory
    v2dir: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"dirs": self.dirs, "v2dir": self.v2dir}

    @classmethod
    def from_json(cls, data: object) -> Cgroups:
        if not isinstance(data, dict):
            return cls({})
        return cls(dict(data.get("dirs") or {}), data.get("v2dir"))

    def all_dirs(self) -> list[str]:
        seen: list[str] = []
        for path in [*self.dirs.values(), *([self.v2dir] if self.v2dir else [])]:
            if path not in seen:
                seen.append(path)
        return seen

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.all_dirs()]

    def home(self) -> dict[str, str]:
        """For each directory, the ``cgroup.procs`` of the cgroup this process is in there."""
        found = detect()
        out: dict[str, str] = {}
        for job, path in self.dirs.items():
            if self.is_v2(job) and found.v2 is not None:
                out[path] = os.path.normpath(f"{found.v2[0]}/{found.v2own}/cgroup.procs")
            elif job in found.v1:
                point, own = found.v1[job]
                out[path] = os.path.normpath(f"{point}/{own}/cgroup.procs")
        return out

    def renamed(self, leaf: str) -> Cgroups:
        """The same cgroups under another name (``rename(2)`` in their parent directories).

        Only on v1: the kernel does not rename v2 cgroups (EPERM), so a v2 one keeps its name."""
        moves = {path: (path if path == self.v2dir else os.path.join(os.path.dirname(path), leaf))
                 for path in self.all_dirs()}
        done: list[tuple[str, str]] = []
        try:
            for old, new in moves.items():
                if old != new:
                    os.rename(old, new)
                    done.append((old, new))
        except OSError:
            for old, new in reversed(done):
                with contextlib.suppress(OSError):
                    os.rename(new, old)
            raise
        return Cgroups({job: moves[path] for job, path in self.dirs.items()},
                       moves[self.v2dir] if self.v2dir else None)

    def is_v2(self, job: str) -> bool:
        return self.v2dir is not None and self.dirs.get(job) == self.v2dir

    # -- freezer -----------------------------------------------------------------------------

    def freeze_file(self) -> tuple[str, str, str] | None:
        """(file, frozen value, thawed value)."""
        path = self.dirs.get("freezer")
        if path is None:
            return None
        if self.is_v2("freezer"):
            return os.path.join(path, "cgroup.freeze"), "1", "0"
        return os.path.join(path, "freezer.state"), "FROZEN", "THAWED"

    def freeze(self, on: bool, timeout: float = 10.0) -> bool:
        spec = self.freeze_file()
        if spec is None:
            return False
        path, frozen, thawed = spec
        _write(path, frozen if on else thawed)
        if not self.is_v2("freezer"):
            deadline = time.monotonic() + timeout
            want = frozen if on else thawed
            while Path(path).read_text().strip() != want and time.monotonic() < deadline:
                time.sleep(0.002)
                _write(path, want)
        else:
            events = os.path.join(os.path.dirname(path), "cgroup.events")
            deadline = time.monotonic() + timeout
            want = f"frozen {1 if on else 0}"
            while want not in Path(events).read_text() and time.monotonic() < deadline:
                time.sleep(0.002)
        return True

    # -- stats -------------------------------------------------------------------------------

    def cpu_ns(self) -> tuple[int, int, int]:
        """(total, user, system) cpu time in nanoseconds."""
        path = self.dirs.get("cpuacct")
        if path is None:
            return 0, 0, 0
        try:
            if self.is_v2("cpuacct"):
                stat = _keyed(os.path.join(path, "cpu.stat"))
                return stat.get("usage_usec", 0) * 1000, stat.get("user_usec", 0) * 1000, \
                    stat.get("system_usec", 0) * 1000
            total = int(Path(path, "cpuacct.usage").read_text())
            stat = _keyed(os.path.join(path, "cpuacct.stat"))
            tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            return total, stat.get("user", 0) * tick, stat.get("system", 0) * tick
        except OSError:
            return 0, 0, 0

    def memory(self) -> dict[str, int]:
        """Bytes: usage, limit, and the keyed memory.stat."""
        path = self.dirs.get("memory")
        if path is None:
            return {}
        out: dict[str, int] = {}
        try:
            if self.is_v2("memory"):
                out["usage"] = int(Path(path, "memory.current").read_text())
                limit = Path(path, "memory.max").read_text().strip()
                out["limit"] = -1 if limit == "max" else int(limit)
                stat = _keyed(os.path.join(path, "memory.stat"))
                out["rss"] = stat.get("anon", 0)
                out["cache"] = stat.get("file", 0)
            else:
                out["usage"] = int(Path(path, "memory.usage_in_bytes").read_text())
                out["limit"] = int(Path(path, "memory.limit_in_bytes").read_text())
                stat = _keyed(os.path.join(path, "memory.stat"))
                out["rss"] = stat.get("total_rss", stat.get("rss", 0))
                out["cache"] = stat.get("total_cache", stat.get("cache", 0))
                out["failcnt"] = int(Path(path, "memory.failcnt").read_text())
        except OSError:
            return out
        return out

    def pids(self) -> list[int]:
        out: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError):
                out.update(int(x) for x in Path(procs).read_text().split())
        return sorted(out)

    # -- tearing down ------------------------------------------------------------------------

    def kill_all(self) -> None:
        """SIGKILL every process left in the container's cgroups (thawing them so they die)."""
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.freeze(False, timeout=1.0)
            time.sleep(0.01)

    def remove(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for path in self.all_dirs():
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.005)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # the shared virt-lxc parent, once empty


def _keyed(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path) as src:
        for line in src:
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


class CgroupError(Exception):
    pass


def _set(directory: str, name: str, value: str) -> None:
    try:
        _write(os.path.join(directory, name), value)
    except OSError as exc:
        raise CgroupError(f"cannot set {name}={value} in {directory}: {exc.strerror}") from None


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000], as systemd and libvirt do."""
    return max(1, min(10000, 1 + ((shares - 2) * 9999) // 262142))


def create(leaf: str, limits: Limits) -> Cgroups:
    """Create the container's cgroups (named ``leaf``) and apply ``limits``; CgroupError on failure
    (after removing what was made)."""
    found = detect()
    dirs: dict[str, str] = {}
    v2dir: str | None = None
    wanted = ["memory", "cpu", "cpuacct", "pids", "freezer"] + (["cpuset"] if limits.cpuset else [])
    v2_jobs = []
    for job in wanted:
        if job in found.v1:
            point, own = found.v1[job]
            dirs[job] = os.path.normpath(f"{point}/{own}/virt-lxc/{leaf}")
        elif found.v2 is not None and (job in ("freezer", "cpuacct") or job in found.v2[1]):
            v2_jobs.append(job)
        elif job in ("memory", "cpuset") and (
                (job == "memory" and limits.memory_kib is not None) or (job == "cpuset" and limits.cpuset)):
            raise CgroupError(f"the {job} cgroup controller is not available on this host")
    made: list[str] = []
    cg = Cgroups(dirs)
    try:
        if v2_jobs and found.v2 is not None:
            point = found.v2[0]
            parent = os.path.join(point, "virt-lxc")
            enable = [j for j in ("memory", "cpu", "pids", "cpuset") if j in v2_jobs and j in found.v2[1]]
            if enable:
                _set(point, "cgroup.subtree_control", " ".join("+" + j for j in enable))
            if not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            if enable:
                _set(parent, "cgroup.subtree_control", " ".join("+" + j for j in enable))
            v2dir = os.path.join(parent, leaf)
            cg.v2dir = v2dir
            for job in v2_jobs:
                dirs[job] = v2dir
        for path in cg.all_dirs():
            os.makedirs(path, exist_ok=False)
            made.append(path)
        if "cpuset" in dirs and not cg.is_v2("cpuset"):
            # v1 cpuset: a new group has no cpus or mems until it is given some
            parent = os.path.dirname(dirs["cpuset"])
            for name in ("cpuset.mems", "cpuset.cpus"):
                for level in (os.path.dirname(parent), parent, dirs["cpuset"]):
                    with contextlib.suppress(OSError):
                        if not Path(level, name).read_text().strip():
                            _set(level, name, Path(os.path.dirname(level), name).read_text().strip())
        apply(cg, limits)
    except BaseException as exc:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(path)
        if isinstance(exc, OSError):
            raise CgroupError(f"cannot create the container's cgroups: {exc}") from None
        raise
    return cg


def apply(cg: Cgroups, limits: Limits) -> None:
    """Set ``limits`` on ``cg``; CgroupError when the kernel refuses one."""
    mem = cg.dirs.get("memory")
    if mem is not None:
        hard = limits.memory_kib
        if hard is not None:
            if cg.is_v2("memory"):
                _set(mem, "memory.max", str(hard * 1024))
                if limits.soft_kib is not None:
                    _set(mem, "memory.low", str(limits.soft_kib * 1024))
                if limits.swap_kib is not None:
                    with contextlib.suppress(CgroupError):
                        _set(mem, "memory.swap.max", str(max(0, limits.swap_kib - hard) * 1024))
            else:
                if limits.swap_kib is not None and os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                    _set(mem, "memory.limit_in_bytes", str(hard * 1024))
                    _set(mem, "memory.memsw.limit_in_bytes", str(limits.swap_kib * 1024))
                else:
                    _set(mem, "memory.limit_in_bytes", str(hard * 1024))
                if limits.soft_kib is not None:
                    _set(mem, "memory.soft_limit_in_bytes", str(limits.soft_kib * 1024))
    cpu = cg.dirs.get("cpu")
    if cpu is not None:
        if cg.is_v2("cpu"):
            if limits.shares is not None:
                _set(cpu, "cpu.weight", str(shares_to_weight(limits.shares)))
            if limits.quota_us is not None or limits.period_us is not None:
                quota = limits.quota_us if limits.quota_us is not None and limits.quota_us > 0 else None
                _set(cpu, "cpu.max", f"{quota if quota is not None else 'max'} {limits.period_us or 100000}")
        else:
            if limits.shares is not None:
                _set(cpu, "cpu.shares", str(limits.shares))
            if limits.period_us is not None:
                _set(cpu, "cpu.cfs_period_us", str(limits.period_us))
            if limits.quota_us is not None:
                _set(cpu, "cpu.cfs_quota_us", str(limits.quota_us if limits.quota_us > 0 else -1))
    pids = cg.dirs.get("pids")
    if pids is not None and limits.pids_max is not None:
        _set(pids, "pids.max", str(limits.pids_max))
    cpuset = cg.dirs.get("cpuset")
    if cpuset is not None and limits.cpuset:
        _set(cpuset, "cpuset.cpus", limits.cpuset)
