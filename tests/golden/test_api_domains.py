"""The public API's domains against what libvirt-python 9.0 read from the real test driver.

``testdriver/golden/{default,testnode}/api.json`` hold what the real driver answered for
``test:///default`` and for libvirt's ``testnode.xml``; ``xml/domain/`` the XML it formatted
(live, inactive, secure).  Values libvirt derives from the clock (CPU time, block and
interface counters) are checked in shape: the same fields, non-negative integers, and the
same ratios between the counters as libvirt computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import virt
from virt import VirtError
from virt_corpus import ABSENT, CORPUS, NODES, conformance_dir, golden_api, node_uri

pytestmark = pytest.mark.skipif(conformance_dir() is None, reason=ABSENT)


def _cases() -> list[tuple[str, str]]:
    if conformance_dir() is None:
        return []
    return [(node, name) for node in NODES for name in sorted(golden_api(node)["domains"])]


def _xml_cases() -> list[Any]:
    if conformance_dir() is None:
        return []
    out = []
    for node in NODES:
        for path in sorted((CORPUS / "testdriver/golden" / node / "xml/domain").glob("*.xml")):
            name, kind, _ = path.name.split(".")
            out.append(pytest.param(node, name, kind, path, id=f"{node}-{name}-{kind}"))
    return out


@pytest.fixture(params=NODES)
def node(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def conn(node: str) -> Any:
    with virt.open(node_uri(node)) as connection:
        yield connection


def _error(exc: VirtError) -> dict[str, Any]:
    return {"error": int(exc.code), "message": exc.message}


# -- connection-level lists -------------------------------------------------------------------


def test_domain_lists(node: str, conn: Any) -> None:
    golden = golden_api(node)
    active = conn.list_domains(active=True)
    inactive = conn.list_domains(active=False)
    assert sorted(d.id for d in active) == sorted(golden["listDomainsID"])
    assert sorted(d.name for d in inactive) == sorted(golden["listDefinedDomains"])
    assert len(active) == golden["numOfDomains"]
    assert len(inactive) == golden["numOfDefinedDomains"]
    assert sorted(d.name for d in conn.list_domains()) == sorted(golden["domains"])


# -- per-domain values ------------------------------------------------------------------------


@pytest.mark.parametrize(("node", "name"), _cases())
def test_domain_values(node: str, name: str) -> None:
    expected = golden_api(node)["domains"][name]
    with virt.open(node_uri(node)) as conn:
        dom = conn.lookup_domain(name)
        assert dom.id == expected["ID"]
        assert dom.os_type() == expected["OSType"]
        assert dom.uuid == expected["UUIDString"]
        assert int(dom.autostart) == expected["autostart"]
        assert int(dom.has_current_snapshot()) == expected["hasCurrentSnapshot"]
        assert int(dom.has_managed_save_image()) == expected["hasManagedSaveImage"]
        assert int(dom.is_active()) == expected["isActive"]
        assert int(dom.is_persistent()) == expected["isPersistent"]
        assert [s.name for s in dom.list_snapshots()] == expected["listAllSnapshots"]
        assert dom.info().max_memory == expected["maxMemory"]
        assert dom.vcpus_count(1 | 4) == expected["maxVcpus"]  # AFFECT_LIVE | VCPU_MAXIMUM
        assert list(dom.state()) == expected["state"]
        assert dom.memory_stats() == expected["memoryStats"]
        assert dom.scheduler_parameters() == expected["schedulerParameters"]
        assert list(dom.scheduler_type()) == expected["schedulerType"]

        info = dom.info()
        state, max_mem, mem, ncpu, cpu_time = expected["info"]
        assert (int(info.state), info.max_memory, info.memory, info.nr_virt_cpu) == (state, max_mem, mem, ncpu)
        assert len(str(info.cpu_time)) == len(str(cpu_time))  # ns since the epoch, like libvirt

        want_block = expected["blockInfo_vda"]
        try:
            block = dom.block_info("vda")
            got_block: Any = [block.capacity, block.allocation, block.physical]
        except VirtError as exc:
            got_block = _error(exc)
        assert got_block == want_block

        stats = dom.interface_stats("testnet0")
        values = [stats.rx_bytes, stats.rx_packets, stats.rx_errs, stats.rx_drop, stats.tx_bytes,
                  stats.tx_packets, stats.tx_errs, stats.tx_drop]
        assert [len(str(v)) for v in values] == [len(str(v)) for v in expected["interfaceStats_testnet0"]]

        vcpus = dom.vcpus()
        infos, maps = expected["vcpus"]
        assert [(v.number, v.state, v.cpu) for v in vcpus] == [(n, s, c) for n, s, _, c in infos]
        assert [len(str(v.cpu_time)) for v in vcpus] == [len(str(t)) for _, _, t, _ in infos]
        assert [list(v.affinity) for v in vcpus] == maps


def test_clock_values_follow_libvirts_formulas(conn: Any) -> None:
    dom = conn.list_domains(active=True)[0]
    disk = dom.xml().split("<target dev='")[1].split("'")[0]
    block = dom.block_stats(disk)
    base = block.rd_req * 10
    assert abs(block.rd_bytes - base // 20) <= 1
    assert abs(block.wr_req - base // 30) <= 1
    stats = dom.interface_stats("testnet0")
    base = stats.rx_bytes * 10
    assert abs(stats.rx_packets - base // 100) <= 1
    assert abs(stats.tx_drop - base // 4000000) <= 1


# -- XML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("node", "name", "kind", "path"), _xml_cases())
def test_domain_xml(node: str, name: str, kind: str, path: Path) -> None:
    with virt.open(node_uri(node)) as conn:
        dom = conn.lookup_domain(name)
        text = dom.xml(inactive=kind == "inactive", secure=kind == "secure")
    assert text == path.read_text()
