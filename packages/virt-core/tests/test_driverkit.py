"""virt.driverkit: the files a daemonless driver keeps its domains in."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from virt.driverkit import DomainStore, Layout, Status, store_for
from virt.xml.domain import DomainDocument

XML = "<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid><memory>1024</memory><os><type>hvm</type></os></domain>"
U1, U2 = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"


def _parse(xml: bytes, live: bool) -> DomainDocument:
    return DomainDocument.from_string(xml, inactive=not live)


@pytest.fixture
def store(tmp_path: Path) -> DomainStore:
    layout = Layout(f"acme:///embed?root={tmp_path}", tmp_path / "etc", tmp_path / "etc" / "autostart",
                    tmp_path / "run", tmp_path / "log")
    return DomainStore(layout, _parse)


def test_definitions_are_written_read_and_cached_until_their_file_changes(store: DomainStore) -> None:
    store.write_config(_parse(XML.format(name="a", uuid=U1).encode(), False))
    first = store.config("a")
    assert first is not None and first.uuid == U1
    assert store.config("a") is first  # unchanged file: the parsed document is reused
    store.write_config(_parse(XML.format(name="a", uuid=U2).encode(), False))
    again = store.config("a")
    assert again is not None and again.uuid == U2
    (store.layout.config / "broken.xml").write_text("<domain>")
    assert [d.name for d in store.configs()] == ["a"]  # a broken file is skipped, not fatal
    store.set_autostart("a", True)
    assert store.autostart("a") and os.readlink(store.layout.autostart_link("a")) == "../a.xml"
    store.remove_config("a")
    assert store.config("a") is None and not store.autostart("a")


def test_statuses_are_the_uuid_json_files_only(store: DomainStore) -> None:
    status = store.write_status(U1, {"uuid": U1, "name": "a", "state": 1, "pid": os.getpid(), "id": 3})
    assert isinstance(status, Status) and status.active and status.state == 1
    (store.layout.run / f"{U2}.ctl.json").write_text('{"uuid": "x"}')  # a driver's own record
    assert [s["uuid"] for s in store.statuses()] == [U1]
    store.remove_status(U1)
    assert store.status(U1) is None and store.statuses() == []


def _ids(root: str, count: int) -> list[int]:
    layout = Layout(root, Path(root) / "etc", Path(root) / "etc" / "autostart", Path(root) / "run", Path(root) / "log")
    store = DomainStore(layout, _parse)
    return [store.next_id() for _ in range(count)]


def test_ids_are_unique_across_processes(store: DomainStore) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.starmap(_ids, [(store.layout.root.split("=", 1)[1], 50)] * 4)
    ids = sorted(i for chunk in results for i in chunk)
    assert ids == list(range(1, 201))
    assert store.next_id() == 201


def test_one_store_per_layout_root(store: DomainStore) -> None:
    assert store_for(store.layout, _parse) is store_for(store.layout, _parse)


# -- StoredDomains: lookups and listing over a store ------------------------------------------


def _connection(store: DomainStore) -> object:
    from virt import ErrorDomain
    from virt.driverkit import StoredDomains

    class Conn(StoredDomains):
        error_domain = ErrorDomain.QEMU

        def __init__(self) -> None:
            self.store = store
            self.settled: list[str] = []

        def _settle(self, uuid: str, status: Status) -> Status | None:
            self.settled.append(uuid)
            return self.store.write_status(uuid, {**status, "state": 5, "reason": 1, "pid": 0})

    return Conn()


def test_stored_domains_lookups_and_list_flags(store: DomainStore) -> None:
    from virt import ErrorNumber, VirtError

    store.write_config(_parse(XML.format(name="a", uuid=U1).encode(), False))
    store.write_config(_parse(XML.format(name="b", uuid=U2).encode(), False))
    store.write_status(U2, {"uuid": U2, "name": "b", "state": 1, "reason": 1, "pid": os.getpid(), "id": 7,
                            "started": None})
    conn: Any = _connection(store)
    ref = conn.virt_domain_lookup_by_name("a")
    assert (ref.name, ref.uuid, ref.id) == ("a", U1, -1)
    assert conn.virt_domain_lookup_by_id(7).name == "b"
    assert conn.virt_domain_lookup_by_uuid(U2).id == 7
    assert sorted(r.name for r in conn.virt_domain_list(0)) == ["a", "b"]
    assert [r.name for r in conn.virt_domain_list(1)] == ["b"]  # active
    assert [r.name for r in conn.virt_domain_list(2)] == ["a"]  # inactive
    store.set_autostart("a", True)
    assert [r.name for r in conn.virt_domain_list(1024)] == ["a"]  # autostart
    with pytest.raises(VirtError) as err:
        conn.virt_domain_lookup_by_name("nosuch")
    assert err.value.code == ErrorNumber.NO_DOMAIN and "matching name 'nosuch'" in err.value.message


def test_a_status_whose_process_is_gone_is_settled(store: DomainStore) -> None:
    store.write_config(_parse(XML.format(name="b", uuid=U2).encode(), False))
    store.write_status(U2, {"uuid": U2, "name": "b", "state": 1, "pid": 2 ** 22 + 12345, "id": 7})
    conn: Any = _connection(store)
    assert conn.virt_domain_lookup_by_name("b").id == -1
    assert conn.settled == [U2]
