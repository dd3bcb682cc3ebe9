"""The host-node provider's CPU and memory figures: against independent readings of this host
through the public API, and libvirt's topology rules on made-up hosts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import virt
from node_fakehost import build_fake_host
from virt import ErrorNumber, VirtError
from virt_host._sysfs import SysRoot
from virt_host.node import NodeProvider

_NODE = Path("/sys/devices/system/node")


def _meminfo(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:1] == ["Node"]:
            words = words[2:]
        if len(words) >= 2 and words[1].isdigit():
            out[words[0].rstrip(":")] = int(words[1])
    return out


def _lscpu() -> dict[str, str]:
    out = subprocess.run(["lscpu", "-J"], capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            fields[item["field"].rstrip(":")] = item.get("data") or ""
            walk(item.get("children", []))

    walk(json.loads(out)["lscpu"])
    return fields


# -- this host, through the public API ----------------------------------------------------------


def test_node_info_matches_the_host(conn: virt.Connection) -> None:
    info = conn.node_info()
    assert info.model == os.uname().machine
    from virt_host._node_info import parse_ranges

    assert info.cpus == len(parse_ranges(Path("/sys/devices/system/cpu/online").read_text()))
    assert info.cpus <= (os.cpu_count() or 0)
    assert info.nodes * info.sockets * info.cores * info.threads >= info.cpus
    if _NODE.is_dir():
        total = sum(_meminfo(n / "meminfo")["MemTotal"] for n in _NODE.glob("node[0-9]*"))
        assert info.memory == total  # libvirt adds the NUMA cells up
        assert info.nodes == len([n for n in _NODE.glob("node[0-9]*") if list(n.glob("cpu[0-9]*"))])
    else:
        assert info.memory == _meminfo(Path("/proc/meminfo"))["MemTotal"]
    with open("/proc/cpuinfo") as fh:
        mhz = next((line.split(":")[1].strip() for line in fh if line.startswith("cpu MHz")), None)
    if mhz is not None:
        assert info.mhz == int(float(mhz))


@pytest.mark.skipif(shutil.which("lscpu") is None, reason="[optional] needs lscpu")
def test_topology_agrees_with_lscpu(conn: virt.Connection) -> None:
    info = conn.node_info()
    fields = _lscpu()
    assert info.cpus == int(fields["On-line CPU(s) list"].count(",") + 1) or info.cpus == int(fields["CPU(s)"])
    sockets, cores, threads = int(fields["Socket(s)"]), int(fields["Core(s) per socket"]), \
        int(fields["Thread(s) per core"])
    nodes = int(fields.get("NUMA node(s)", "1"))
    if nodes * sockets * cores * threads == info.cpus:
        assert (info.sockets * info.nodes, info.cores, info.threads) == (sockets, cores, threads)
    else:  # libvirt's "the topology does not add up" answer
        assert (info.nodes, info.sockets, info.cores, info.threads) == (1, 1, info.cpus, 1)


def test_cpu_stats(conn: virt.Connection) -> None:
    first = conn.node_cpu_stats()
    assert list(first) == ["kernel", "user", "idle", "iowait"]
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert all(value % tick == 0 for value in first.values())
    with open("/proc/stat") as fh:
        words = fh.readline().split()
    assert first["idle"] <= int(words[4]) * tick
    second = conn.node_cpu_stats()
    assert all(second[key] >= first[key] for key in first)
    per_cpu = conn.node_cpu_stats(0)
    assert per_cpu["user"] <= second["user"] + tick * 100
    with pytest.raises(VirtError) as err:
        conn.node_cpu_stats(4096)
    assert err.value.code == ErrorNumber.INVALID_ARG
    assert "Invalid cpuNum" in str(err.value)
    with pytest.raises(VirtError) as err:
        conn.node_cpu_stats(-2)
    assert err.value.code == ErrorNumber.INVALID_ARG
    with pytest.raises(VirtError) as err:
        conn.node_cpu_stats(-1, flags=1)
    assert err.value.code == ErrorNumber.INVALID_ARG
    assert "unsupported flags (0x1)" in str(err.value)


def test_memory_stats(conn: virt.Connection) -> None:
    stats = conn.node_memory_stats()
    proc = _meminfo(Path("/proc/meminfo"))
    assert list(stats) == ["total", "free", "buffers", "cached"]
    assert stats["total"] == proc["MemTotal"]
    assert 0 < stats["free"] <= stats["total"]
    if _NODE.is_dir():
        cell = conn.node_memory_stats(0)
        assert list(cell) == ["total", "free"]  # a cell's meminfo has no Buffers: nor Cached:
        assert cell["total"] == _meminfo(_NODE / "node0" / "meminfo")["MemTotal"]
        highest = max(int(n.name[4:]) for n in _NODE.glob("node[0-9]*"))
        with pytest.raises(VirtError) as err:
            conn.node_memory_stats(highest + 1)
        assert err.value.code == ErrorNumber.INVALID_ARG
        assert f"cellNum in virHostMemGetStats must be less than or equal to {highest}" in str(err.value)


def test_free_memory(conn: virt.Connection) -> None:
    cells = conn.cells_free_memory(0, 64)
    assert cells and all(free > 0 for free in cells)
    assert conn.free_memory() > 0
    # the figures move while we read them: within 5 % of each other
    assert abs(sum(cells) - conn.free_memory()) <= conn.free_memory() // 20
    with pytest.raises(VirtError) as err:
        conn.cells_free_memory(len(cells) + 10, 1)
    assert "out of range" in str(err.value)
    with pytest.raises(VirtError) as err:
        conn.cells_free_memory(0, 0)
    assert err.value.code == ErrorNumber.INVALID_ARG


# -- made-up hosts --------------------------------------------------------------------------------


def test_fake_host_topology_and_memory(tmp_path: Path) -> None:
    build_fake_host(tmp_path)
    provider = NodeProvider(str(tmp_path))
    info = provider.virt_node_get_info()
    assert (info.cpus, info.nodes, info.sockets, info.cores, info.threads) == (8, 2, 1, 2, 2)
    assert info.mhz == 2394  # the first processor's, truncated
    assert info.memory == 2 * 8388608
    assert provider.virt_node_get_memory_stats(-1, 0) == {"total": 16777216, "free": 3145728, "buffers": 123456,
                                                          "cached": 2345678}
    assert provider.virt_node_get_memory_stats(1, 0) == {"total": 8388608, "free": 2097152}
    assert provider.virt_node_get_cells_free_memory(0, 10) == [1048576 * 1024, 2097152 * 1024]
    assert provider.virt_node_get_cells_free_memory(1, 1) == [2097152 * 1024]
    assert provider.virt_node_get_free_memory() == 3 * 1048576 * 1024
    with pytest.raises(VirtError, match=r"start cell 2 out of range \(0-1\)"):
        provider.virt_node_get_cells_free_memory(2, 1)
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert provider.virt_node_get_cpu_stats(-1, 0) == {"kernel": (30 + 6 + 7) * tick, "user": 120 * tick,
                                                       "idle": 400 * tick, "iowait": 50 * tick}
    assert provider.virt_node_get_cpu_stats(1, 0)["user"] == 108 * tick


def test_fake_host_odd_topology_falls_back(tmp_path: Path) -> None:
    """One CPU taken offline: 2 × 1 × 2 × 2 is no longer 7 online + 1 offline... it is 8, so
    the figures stay; a CPU with a third sibling makes them not add up, and libvirt reports
    1 node, 1 socket, every CPU a core, 1 thread."""
    build_fake_host(tmp_path)
    (tmp_path / "sys/devices/system/cpu/cpu7/online").write_text("0\n")
    info = NodeProvider(str(tmp_path)).virt_node_get_info()
    assert (info.cpus, info.nodes, info.sockets, info.cores, info.threads) == (7, 2, 1, 2, 2)
    (tmp_path / "sys/devices/system/cpu/cpu0/topology/thread_siblings").write_text("00000007\n")
    info = NodeProvider(str(tmp_path)).virt_node_get_info()
    assert (info.cpus, info.nodes, info.sockets, info.cores, info.threads) == (7, 1, 1, 8, 1)


def test_fake_host_without_numa(tmp_path: Path) -> None:
    build_fake_host(tmp_path)
    shutil.rmtree(tmp_path / "sys/devices/system/node")
    provider = NodeProvider(str(tmp_path))
    info = provider.virt_node_get_info()
    assert (info.cpus, info.nodes, info.sockets, info.cores, info.threads) == (8, 1, 2, 2, 2)
    assert info.memory == 16777216  # /proc/meminfo
    assert provider.virt_node_get_cells_free_memory(0, 4) == [3145728 * 1024]
    assert provider.virt_node_get_memory_stats(0, 0)["total"] == 16777216


def test_ranges() -> None:
    from virt_host._node_info import parse_ranges

    assert parse_ranges("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_ranges("") == set()
    assert SysRoot("/").read("/nonexistent/file") is None
