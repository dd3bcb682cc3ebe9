"""CPU, memory and NUMA figures of the host, by libvirt's rules (``virhostcpu.c``,
``virhostmem.c``, ``virnuma.c``).

* ``nodeinfo``: the architecture as ``uname -m`` says, the memory as the sum of the NUMA cells'
  ``MemTotal`` (``/proc/meminfo`` without NUMA), the ``cpu MHz`` of the first processor in
  ``/proc/cpuinfo``, and a topology counted per NUMA node from sysfs: sockets (distinct package
  ids), cores per socket (distinct core ids), threads per core (thread siblings), the largest of
  each over the nodes.  When nodes × sockets × cores × threads is not the number of CPUs
  (online and offline), libvirt reports 1 node, 1 socket, that many cores and 1 thread, and so
  does this.
* CPU times from ``/proc/stat`` in nanoseconds: ``kernel`` (system + irq + softirq), ``user``
  (user + nice), ``idle``, ``iowait``.
* Memory statistics (KiB) from ``/proc/meminfo`` or a cell's ``meminfo``: ``total``, ``free``,
  ``buffers``, ``cached``, those the file has, in its order.
* Free memory per NUMA cell and in all, in bytes.
"""

from __future__ import annotations

import os

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import NodeInfo

from virt_host._sysfs import SysRoot

__all__ = [
    "cells_free_memory",
    "cpu_stats",
    "free_memory",
    "max_node",
    "memory_stats",
    "node_info",
]

_D = ErrorDomain.NONE
_CPU = "/sys/devices/system/cpu"
_NODE = "/sys/devices/system/node"
_MEMINFO_FIELDS = {"MemTotal:": "total", "MemFree:": "free", "Buffers:": "buffers", "Cached:": "cached"}


def parse_ranges(text: str | None) -> set[int]:
    """A kernel CPU/node list (``0-3,8,10-11``) as a set."""
    out: set[int] = set()
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            continue
        out.update(range(low, high + 1))
    return out


def _count_mask(text: str | None) -> int:
    """Bits set in a sysfs CPU mask (``00000000,00000003``)."""
    if not text:
        return 0
    try:
        return bin(int(text.replace(",", ""), 16)).count("1")
    except ValueError:
        return 0


def node_ids(host: SysRoot) -> list[int]:
    """The NUMA nodes sysfs lists (``nodeN`` directories), ascending."""
    ids = []
    for entry in host.listdir(_NODE):
        if entry.startswith("node") and entry[4:].isdigit():
            ids.append(int(entry[4:]))
    return sorted(ids)


def max_node(host: SysRoot) -> int:
    """``virNumaGetMaxNode``: the highest NUMA node number (0 on a host without NUMA)."""
    ids = node_ids(host)
    return ids[-1] if ids else 0


def _arch() -> str:
    machine = os.uname().machine
    # virArchFromHost: the kernel's i386..i686 are all i686, armv8 is aarch64
    if len(machine) == 4 and machine[0] == "i" and machine[2:] == "86":
        return "i686"
    return {"amd64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64"}.get(machine, machine)


def _mhz(host: SysRoot, arch: str) -> int:
    """The first frequency line of ``/proc/cpuinfo``, as libvirt reads it per architecture."""
    if arch.startswith("ppc"):
        prefix = "clock"
    elif arch.startswith("s390"):
        prefix = "cpu MHz dynamic"
    else:
        prefix = "cpu MHz"
    for line in host.lines("/proc/cpuinfo"):
        key, sep, value = line.partition(":")
        if sep and key.strip() == prefix:
            digits = ""
            for ch in value.strip():
                if not ch.isdigit():
                    break
                digits += ch
            if digits:
                return int(digits)
    return 0


def _parse_node(host: SysRoot, directory: str, present: set[int] | None,
                arch: str) -> tuple[int, int, int, int, int]:
    """``virHostCPUParseNode``: (online CPUs, sockets, cores, threads, offline CPUs) of one node
    directory (a ``nodeN`` or the whole ``cpu`` directory)."""
    cpus: list[int] = []
    for entry in host.listdir(directory):
        if entry.startswith("cpu") and entry[3:].isdigit():
            cpu = int(entry[3:])
            if present is None or cpu in present:
                cpus.append(cpu)
    cpus.sort()
    online_cpus: list[int] = []
    offline = 0
    for cpu in cpus:
        # cpu0 often has no "online" file: it is online
        state = host.read(f"{_CPU}/cpu{cpu}/online")
        if state is not None and state.strip() == "0":
            offline += 1
        else:
            online_cpus.append(cpu)
    cores: dict[int, set[int]] = {}
    threads = 0
    for cpu in online_cpus:
        topo = f"{directory}/cpu{cpu}/topology"
        sock = host.read_int(f"{topo}/physical_package_id")
        if sock is None or sock < 0 or arch.startswith("s390"):
            sock = 0
        # on s390 each logical CPU is a core
        core = cpu if arch.startswith("s390") else (host.read_int(f"{topo}/core_id") or 0)
        cores.setdefault(sock, set()).add(core)
        siblings = _count_mask(host.read(f"{topo}/thread_siblings")) or 1
        threads = max(threads, siblings)
    most_cores = max((len(c) for c in cores.values()), default=0)
    return len(online_cpus), len(cores), most_cores, threads, offline


def node_info(host: SysRoot) -> NodeInfo:
    """``virNodeGetInfo`` of the host."""
    arch = _arch()
    present_text = host.read(f"{_CPU}/present")
    present = parse_ranges(present_text) if present_text is not None else None
    nodes = cpus = sockets = cores = threads = offline = 0
    for node in node_ids(host):
        n_cpus, n_sockets, n_cores, n_threads, n_offline = _parse_node(host, f"{_NODE}/node{node}", present, arch)
        offline += n_offline
        if n_cpus <= 0:
            continue
        nodes += 1
        cpus += n_cpus
        sockets, cores, threads = max(sockets, n_sockets), max(cores, n_cores), max(threads, n_threads)
    if not (cpus and nodes):
        cpus, sockets, cores, threads, offline = _parse_node(host, _CPU, present, arch)
        nodes = 1
    if cpus == 0:
        # a tree without sysfs topology (a container's): what the kernel says it runs on
        cpus = cores = os.cpu_count() or 1
        sockets = threads = 1
    if nodes * sockets * cores * threads != cpus + offline:
        nodes, sockets, cores, threads = 1, 1, cpus + offline, 1
    memory, _ = _memory(host)
    return NodeInfo(model=arch[:31], memory=memory // 1024, cpus=cpus, mhz=_mhz(host, arch), nodes=nodes,
                    sockets=sockets, cores=cores, threads=threads)


def _meminfo(host: SysRoot, rel: str) -> list[tuple[str, int]]:
    """(field, KiB) of the four fields libvirt reads, in the file's order."""
    out: list[tuple[str, int]] = []
    for line in host.lines(rel):
        words = line.split()
        if words[:1] == ["Node"]:
            words = words[2:]
        if len(words) < 2:
            continue
        field = _MEMINFO_FIELDS.get(words[0])
        if field is None:
            continue
        try:
            out.append((field, int(words[1])))
        except ValueError:
            continue
    return out


def _memory(host: SysRoot) -> tuple[int, int]:
    """(total, free) bytes: the sum over the NUMA cells, or ``/proc/meminfo`` without them."""
    total = free = 0
    ids = node_ids(host)
    for node in ids:
        values = dict(_meminfo(host, f"{_NODE}/node{node}/meminfo"))
        total += values.get("total", 0) * 1024
        free += values.get("free", 0) * 1024
    if not ids or not total:
        values = dict(_meminfo(host, "/proc/meminfo"))
        total, free = values.get("total", 0) * 1024, values.get("free", 0) * 1024
    return total, free


def memory_stats(host: SysRoot, cell: int) -> dict[str, int]:
    """``virNodeGetMemoryStats``: KiB of the node (``cell`` -1) or of one NUMA cell."""
    if cell == -1:
        rel = "/proc/meminfo"
    else:
        highest = max_node(host)
        if cell < 0 or cell > highest:
            raise VirtError(ErrorNumber.INVALID_ARG,
                            f"cellNum in virHostMemGetStats must be less than or equal to {highest}", domain=_D)
        rel = f"{_NODE}/node{cell}/meminfo"
        if not host.exists(rel) and cell == 0 and not node_ids(host):
            rel = "/proc/meminfo"
    stats = _meminfo(host, rel)
    if not stats:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, "no prameters found", domain=_D)
    return dict(stats)


def cpu_stats(host: SysRoot, cpu: int) -> dict[str, int]:
    """``virNodeGetCPUStats``: cumulative nanoseconds of all CPUs (-1) or one."""
    if cpu < -1:
        raise VirtError(ErrorNumber.INVALID_ARG, "cpuNum in virNodeGetCPUStats must be -1 or greater", domain=_D)
    wanted = "cpu" if cpu == -1 else f"cpu{cpu}"
    tick = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
    for line in host.lines("/proc/stat"):
        words = line.split()
        if not words or words[0] != wanted:
            continue
        try:
            usr, nice, system, idle, iowait, irq, softirq = (int(w) for w in words[1:8])
        except ValueError:
            break
        return {"kernel": (system + irq + softirq) * tick, "user": (usr + nice) * tick, "idle": idle * tick,
                "iowait": iowait * tick}
    raise VirtError(ErrorNumber.INVALID_ARG, "Invalid cpuNum in virHostCPUGetStatsLinux", domain=_D)


def _cell_free(host: SysRoot, cell: int) -> int:
    values = dict(_meminfo(host, f"{_NODE}/node{cell}/meminfo"))
    return values.get("free", 0) * 1024


def cells_free_memory(host: SysRoot, start: int, count: int) -> list[int]:
    """``virNodeGetCellsFreeMemory``: free bytes of ``count`` cells from ``start``."""
    if start < 0:
        raise VirtError(ErrorNumber.INVALID_ARG, "startCell in virNodeGetCellsFreeMemory must be zero or greater",
                        domain=_D)
    if count <= 0:
        raise VirtError(ErrorNumber.INVALID_ARG, "maxCells in virNodeGetCellsFreeMemory must be greater than zero",
                        domain=_D)
    if not node_ids(host):
        # no NUMA information: the whole host is cell 0
        if start > 0:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"start cell {start} out of range (0-0)", domain=_D)
        return [_memory(host)[1]]
    highest = max_node(host)
    if start > highest:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"start cell {start} out of range (0-{highest})", domain=_D)
    last = min(start + count - 1, highest)
    return [_cell_free(host, cell) for cell in range(start, last + 1)]


def free_memory(host: SysRoot) -> int:
    """``virNodeGetFreeMemory``: free bytes of all cells."""
    return _memory(host)[1]
