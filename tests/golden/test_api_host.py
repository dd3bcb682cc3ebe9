"""The public API against what libvirt-python 9.0 read from the real test driver (non-domain parts).

``testdriver/golden/{default,testnode}/api.json`` hold what the real driver answered for
``test:///default`` and for libvirt's ``testnode.xml``; ``xml/`` holds the XML it formatted.
Each case opens a fresh connection and compares value for value, XML byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest
import virt
from lxml import etree
from virt import VirtError
from virt_corpus import ABSENT, CORPUS, NODES, conformance_dir, golden_api, node_uri

pytestmark = pytest.mark.skipif(conformance_dir() is None, reason=ABSENT)


@pytest.fixture(params=NODES)
def node(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def conn(node: str) -> Any:
    with virt.open(node_uri(node)) as connection:
        yield connection


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(VirtError) as info:
        call()
    return {"error": int(info.value.code), "message": info.value.message}


def test_node_info(node: str, conn: Any) -> None:
    golden = golden_api(node)
    info = conn.node_info()
    # libvirt-python's getInfo() gives the memory in MiB.
    assert [info.model, info.memory // 1024, info.cpus, info.mhz, info.nodes, info.sockets, info.cores,
            info.threads] == golden["getInfo"]


def test_connection_facts(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert conn.type() == golden["getType"]
    assert conn.version() == golden["getVersion"]
    assert conn.max_vcpus() == golden["getMaxVcpus"]
    assert conn.sysinfo() == golden["getSysinfo"]
    assert conn.is_secure() == bool(golden["isSecure"])
    assert conn.is_encrypted() == bool(golden["isEncrypted"])
    assert conn.is_alive() == bool(golden["isAlive"])
    assert conn.free_memory() == golden["getFreeMemory"]
    expected = golden["getURI"]
    if node != "default":
        expected = expected.replace("$CONFORMANCE", str(CORPUS))
    assert conn.uri == expected


def test_cells_free_memory(node: str, conn: Any) -> None:
    golden = golden_api(node)["getCellsFreeMemory"]
    if isinstance(golden, dict):
        assert _error(conn.cells_free_memory) == golden
    else:
        assert conn.cells_free_memory() == golden


def test_unsupported(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert _error(conn.domain_capabilities) == golden["getDomainCapabilities"]
    # libvirt-python's listSecrets() goes through virConnectNumOfSecrets, virt through the
    # ListAll call: the same failure, naming another function.
    assert _error(conn.list_secrets)["error"] == golden["listSecrets"]["error"]


def test_networks(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert [n.name for n in conn.list_networks(active=True)] == golden["listNetworks"]
    assert [n.name for n in conn.list_networks(active=False)] == golden["listDefinedNetworks"]
    for name, facts in golden["networks"].items():
        net = conn.lookup_network(name)
        assert net.uuid == facts["UUIDString"]
        assert net.autostart == bool(facts["autostart"])
        assert net.bridge_name() == facts["bridgeName"]
        assert net.is_active() == bool(facts["isActive"])
        assert net.is_persistent() == bool(facts["isPersistent"])
        assert _error(net.dhcp_leases) == facts["DHCPLeases"]


def test_pools(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert [p.name for p in conn.list_storage_pools(active=True)] == golden["listStoragePools"]
    assert [p.name for p in conn.list_storage_pools(active=False)] == golden["listDefinedStoragePools"]
    for name, facts in golden["pools"].items():
        pool = conn.lookup_storage_pool(name)
        info = pool.info()
        assert pool.uuid == facts["UUIDString"]
        assert pool.autostart == bool(facts["autostart"])
        assert [int(info.state), info.capacity, info.allocation, info.available] == facts["info"]
        assert pool.is_active() == bool(facts["isActive"])
        assert pool.is_persistent() == bool(facts["isPersistent"])
        assert [v.name for v in pool.list_volumes()] == facts["listVolumes"]
        assert {v.name for v in pool.list_volumes()} == set(facts["volumes"])


def test_interfaces(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert [i.name for i in conn.list_interfaces(active=True)] == golden["listInterfaces"]
    assert [i.name for i in conn.list_interfaces(active=False)] == golden["listDefinedInterfaces"]
    for name, facts in golden["interfaces"].items():
        iface = conn.lookup_interface(name)
        assert iface.mac == facts["MACString"]
        assert iface.is_active() == bool(facts["isActive"])


def test_node_devices(node: str, conn: Any) -> None:
    golden = golden_api(node)
    assert [d.name for d in conn.list_node_devices()] == golden["listDevices"]
    for name, facts in golden["nodedevs"].items():
        dev = conn.lookup_node_device(name)
        assert dev.parent == facts["parent"]
        caps = [c.get("type") for c in etree.fromstring(dev.xml().encode()).findall("capability")]
        assert caps == facts["listCaps"]


def _xml_cases() -> list[tuple[str, str, str]]:
    if conformance_dir() is None:
        return []
    cases = []
    for node in NODES:
        base = CORPUS / "testdriver/golden" / node / "xml"
        for kind in ("network", "pool", "interface", "nodedev"):
            for path in sorted((base / kind).glob("*.xml")) if (base / kind).is_dir() else []:
                cases.append((node, kind, path.stem))
        cases.append((node, "capabilities", "capabilities"))
    return cases


@pytest.mark.parametrize(("node", "kind", "name"), _xml_cases(),
                         ids=[f"{n}-{k}-{x}" for n, k, x in _xml_cases()])
def test_xml(node: str, kind: str, name: str) -> None:
    base = CORPUS / "testdriver/golden" / node / "xml"
    with virt.open(node_uri(node)) as conn:
        if kind == "capabilities":
            expected = (base / "capabilities.xml").read_text()
            got = conn.capabilities()
        else:
            expected = (base / kind / f"{name}.xml").read_text()
            obj = {
                "network": conn.lookup_network, "pool": conn.lookup_storage_pool,
                "interface": conn.lookup_interface, "nodedev": conn.lookup_node_device,
            }[kind](name)
            got = obj.xml()
    assert got == expected
