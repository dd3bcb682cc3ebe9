"""A started domain runs on its persistent definition until either is changed (copy on write).

The test driver does not copy a definition at start (libvirt does, at every start); the first
read of the live or persistent definition through ``DomainObj`` makes the copy.  These tests
change one side after a start, in every way the API allows, and check the other is untouched:
what copy on write must never get wrong.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import pytest
import virt
from virt import flags
from virt.drivers.test import _state

LIVE = flags.DomainModificationImpact.LIVE
CONFIG = flags.DomainModificationImpact.CONFIG
INACTIVE = flags.DomainXMLFlags.INACTIVE


def _xml(name: str, memory: int = 524288) -> str:
    return (f"<domain type='test'><name>{name}</name><uuid>{uuidlib.uuid4()}</uuid>"
            f"<memory unit='KiB'>{memory}</memory><vcpu>2</vcpu><os><type>hvm</type></os>"
            f"<devices><disk type='file' device='disk'><source file='/img/{name}'/>"
            f"<target dev='vda' bus='virtio'/></disk></devices></domain>")


@pytest.fixture
def conn() -> Iterator[Any]:
    # the shared default node (reset when its last connection closes), which _obj can reach
    with virt.open("test:///default") as connection:
        yield connection


def _obj(dom: Any) -> _state.DomainObj:
    """The driver's own record of ``dom`` (white box: whether it still shares)."""
    found = [node.domains[dom.uuid] for node, _ in _state._shared.values() if dom.uuid in node.domains]
    assert len(found) == 1
    return found[0]


def test_start_shares_and_destroy_copies_nothing(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    obj = _obj(dom)
    assert obj._shared and obj._live is obj._persistent
    assert dom.info().memory == 524288  # info reads the facts without a copy
    assert obj._shared
    dom.destroy()
    assert not obj._shared and obj._live is None
    assert "id=" not in dom.xml()


def test_live_xml_has_the_id_and_the_config_does_not(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    live = dom.xml()
    assert f"<domain type='test' id='{dom.id}'>" in live
    assert "id=" not in dom.xml(inactive=True)
    obj = _obj(dom)
    assert not obj._shared and obj._live is not obj._persistent


def test_config_change_after_start_leaves_the_live_definition(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    dom.set_memory(262144, CONFIG)
    assert dom.info().memory == 524288
    assert "<currentMemory unit='KiB'>524288</currentMemory>" in dom.xml()
    assert "<currentMemory unit='KiB'>262144</currentMemory>" in dom.xml(inactive=True)
    dom.destroy()
    dom.start()
    assert dom.info().memory == 262144


def test_live_change_after_start_leaves_the_config(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    dom.set_memory(262144, LIVE)
    assert dom.info().memory == 262144
    assert "<currentMemory unit='KiB'>524288</currentMemory>" in dom.xml(inactive=True)
    dom.destroy()
    assert dom.info().memory == 524288


def test_redefine_while_running_keeps_the_running_definition(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    new = dom.xml(inactive=True).replace("524288", "131072")
    conn.define_domain(new)
    assert dom.info().memory == 524288
    assert "131072" in dom.xml(inactive=True) and "131072" not in dom.xml()
    dom.destroy()
    assert dom.info().memory == 131072


def test_undefine_while_running_keeps_the_running_definition(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    live_id = dom.id
    dom.undefine()
    assert f"id='{live_id}'" in dom.xml() and dom.info().memory == 524288
    dom.destroy()
    assert [d.name for d in conn.list_domains()] == ["test"]


def test_metadata_on_config_after_start(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    dom.set_metadata(flags.DomainMetadataType.DESCRIPTION, "config only", flags=CONFIG)
    assert "config only" in dom.xml(inactive=True)
    assert "config only" not in dom.xml()


def test_many_cycles_give_new_ids_and_a_clean_config(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    config = dom.xml(inactive=True)
    ids = []
    for _ in range(5):
        dom.start()
        ids.append(dom.id)
        dom.destroy()
    assert ids == sorted(set(ids)) and dom.xml(inactive=True) == config == dom.xml()


def test_the_default_domain_restarts_from_its_pending_definition(conn: Any) -> None:
    dom = conn.lookup_domain("test")
    config = dom.xml(inactive=True)
    dom.destroy()
    dom.start()
    assert _obj(dom)._shared
    assert dom.xml(inactive=True) == config
    assert dom.xml() == config.replace("<domain type='test'>", f"<domain type='test' id='{dom.id}'>")


def test_managed_save_and_snapshot_of_a_shared_domain(conn: Any) -> None:
    dom = conn.define_domain(_xml("a"))
    dom.start()
    snap = dom.create_snapshot("<domainsnapshot><name>s1</name></domainsnapshot>")
    assert "<name>a</name>" in snap.xml() and "524288" in snap.xml()
    dom.managed_save()
    assert dom.state()[0] == virt.DomainState.SHUTOFF and "id=" not in dom.xml()
    dom.start()
    assert dom.info().memory == 524288 and f"id='{dom.id}'" in dom.xml()
