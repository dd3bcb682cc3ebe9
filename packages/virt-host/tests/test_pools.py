"""Directory pools through the public API: lifecycle, info, XML, autostart, events, bad
input, and the state every connection and process of a root shares."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import virt
from virt import ErrorDomain, ErrorNumber, PoolEvent, PoolEventType, PoolState, VirtError
from virt.xml.storage import PoolDocument


def dir_pool(name: str, target: Path, pool_uuid: str | None = None) -> str:
    uuid_xml = f"<uuid>{pool_uuid}</uuid>" if pool_uuid else ""
    return f"<pool type='dir'><name>{name}</name>{uuid_xml}<target><path>{target}</path></target></pool>"


def check(info: pytest.ExceptionInfo[VirtError], code: ErrorNumber, message: str) -> None:
    assert info.value.code == code, info.value
    assert info.value.message == message
    assert info.value.domain == ErrorDomain.STORAGE


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path / "images"


def test_dir_pool_lifecycle(conn: virt.Connection, images: Path, root: Path) -> None:
    pool = conn.define_storage_pool(dir_pool("p", images))
    assert not pool.is_active() and pool.is_persistent() and not pool.autostart
    assert (root / "etc" / "storage" / "p.xml").is_file()
    assert pool.info() == virt.PoolInfo(PoolState.INACTIVE, 0, 0, 0)
    with pytest.raises(VirtError) as info:
        pool.start()
    check(info, ErrorNumber.SYSTEM_ERROR, f"cannot open directory '{images}': No such file or directory")
    pool.build()
    assert images.is_dir() and (images.stat().st_mode & 0o777) == 0o711
    pool.start()
    assert pool.is_active()
    assert (root / "run" / "storage" / "p.xml").is_file()
    stats = os.statvfs(images)
    pinfo = pool.info()
    assert pinfo.state == PoolState.RUNNING
    assert pinfo.capacity == stats.f_blocks * stats.f_frsize
    assert 0 < pinfo.available <= pinfo.capacity and 0 < pinfo.allocation <= pinfo.capacity
    pool.refresh()
    pool.destroy()
    assert not pool.is_active() and pool.info().state == PoolState.INACTIVE
    pool.delete()
    assert not images.exists()
    pool.undefine()
    with pytest.raises(VirtError) as info:
        conn.lookup_storage_pool("p")
    check(info, ErrorNumber.NO_STORAGE_POOL, "Storage pool not found: no storage pool with matching name 'p'")
    assert not list((root / "etc" / "storage").glob("*.xml"))


def test_create_with_build_and_transient_pool(conn: virt.Connection, images: Path) -> None:
    pool = conn.create_storage_pool(dir_pool("t", images), 1)  # VIR_STORAGE_POOL_CREATE_WITH_BUILD
    assert pool.is_active() and not pool.is_persistent() and images.is_dir()
    with pytest.raises(VirtError) as info:
        pool.set_autostart(True)
    check(info, ErrorNumber.INVALID_ARG, "invalid argument: cannot set autostart for transient pool")
    pool.destroy()
    assert conn.list_storage_pools() == []


def test_pool_xml_running_and_round_trip(conn: virt.Connection, images: Path) -> None:
    pool_uuid = str(uuid.uuid4())
    pool = conn.define_storage_pool(dir_pool("x", images, pool_uuid))
    inactive = pool.xml()
    assert inactive == textwrap.dedent(f"""\
        <pool type='dir'>
          <name>x</name>
          <uuid>{pool_uuid}</uuid>
          <capacity unit='bytes'>0</capacity>
          <allocation unit='bytes'>0</allocation>
          <available unit='bytes'>0</available>
          <source>
          </source>
          <target>
            <path>{images}</path>
          </target>
        </pool>
        """)
    pool.build()
    pool.start()
    live = pool.xml()
    st = images.stat()
    assert f"<mode>{st.st_mode & 0o777:04o}</mode>" in live and f"<owner>{st.st_uid}</owner>" in live
    assert f"<capacity unit='bytes'>{pool.info().capacity}</capacity>" in live
    # what the backend reports parses back to itself, but for the sizes (runtime data the
    # parser zeroes, as libvirt's)
    assert PoolDocument.from_string(live).to_string() == re.sub(r"unit='bytes'>\d+<", "unit='bytes'>0<", live)
    redefined = conn.define_storage_pool(live)  # a running pool's own XML defines it again
    assert redefined.uuid == pool_uuid and pool.is_active()
    assert pool.xml(inactive=True).count("<capacity unit='bytes'>") == 1


def test_list_filters_and_autostart(conn: virt.Connection, tmp_path: Path, root: Path) -> None:
    a = conn.define_storage_pool(dir_pool("a", tmp_path / "a"))
    b = conn.define_storage_pool(dir_pool("b", tmp_path / "b"))
    b.build()
    b.start()
    a.set_autostart(True)
    assert a.autostart and os.path.islink(root / "etc" / "storage" / "autostart" / "a.xml")
    assert [p.name for p in conn.list_storage_pools()] == ["a", "b"]
    assert [p.name for p in conn.list_storage_pools(active=True)] == ["b"]
    assert [p.name for p in conn.list_storage_pools(active=False)] == ["a"]
    assert [p.name for p in conn.list_storage_pools(flags=16)] == ["a"]  # _AUTOSTART
    assert [p.name for p in conn.list_storage_pools(flags=128)] == []  # type fs
    a.set_autostart(False)
    assert not a.autostart


def test_autostart_once_per_boot(plugins: None, uri: str, tmp_path: Path, root: Path) -> None:
    images = tmp_path / "auto"
    images.mkdir()
    with virt.open(uri) as conn:
        pool = conn.define_storage_pool(dir_pool("auto", images))
        pool.set_autostart(True)
        assert not pool.is_active()
    # the next process after a boot starts it: forget this process's root and the marker
    from virt_host import _root

    _root._ROOTS.clear()
    (root / "run" / "storage" / "autostarted").unlink()
    with virt.open(uri) as conn:
        pool = conn.lookup_storage_pool("auto")
        assert pool.is_active()
        pool.destroy()
    _root._ROOTS.clear()
    with virt.open(uri) as conn:  # same boot: a stopped pool stays stopped
        assert not conn.lookup_storage_pool("auto").is_active()


def test_wrong_states(conn: virt.Connection, images: Path) -> None:
    pool = conn.define_storage_pool(dir_pool("s", images))
    with pytest.raises(VirtError) as info:
        pool.destroy()
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: storage pool 's' is not active")
    with pytest.raises(VirtError) as info:
        pool.list_volumes()
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: storage pool 's' is not active")
    with pytest.raises(VirtError) as info:
        pool.refresh()
    assert info.value.code == ErrorNumber.OPERATION_INVALID
    pool.build()
    pool.start()
    for call in (pool.start, pool.build):
        with pytest.raises(VirtError) as info:
            call()
        check(info, ErrorNumber.OPERATION_INVALID,
              "Requested operation is not valid: storage pool 's' is already active")
    undoers: list[Callable[[], None]] = [pool.delete, pool.undefine]
    for undo in undoers:
        with pytest.raises(VirtError) as info:
            undo()
        check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: storage pool 's' is still active")
    assert pool.is_active() and images.is_dir()
    with pytest.raises(VirtError) as info:
        conn.create_storage_pool(dir_pool("s", images, pool.uuid))
    check(info, ErrorNumber.OPERATION_INVALID, "Requested operation is not valid: storage pool 's' is already active")


def test_duplicates_and_conflicts(conn: virt.Connection, tmp_path: Path, root: Path) -> None:
    first = conn.define_storage_pool(dir_pool("one", tmp_path / "one"))
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(dir_pool("one", tmp_path / "other"))
    check(info, ErrorNumber.OPERATION_FAILED, f"operation failed: pool 'one' already exists with uuid {first.uuid}")
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(dir_pool("two", tmp_path / "two", first.uuid))
    check(info, ErrorNumber.OPERATION_FAILED,
          f"operation failed: pool 'one' is already defined with uuid {first.uuid}")
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(dir_pool("three", tmp_path / "one"))
    check(info, ErrorNumber.OPERATION_FAILED, "operation failed: Storage source conflict with pool: 'one'")
    assert sorted(p.name for p in (root / "etc" / "storage").glob("*.xml")) == ["one.xml"]


@pytest.mark.parametrize(("name", "message"), [
    ("a/b", "XML error: name a/b cannot contain '/'"),
    ("..", "XML error: pool name '..' is not allowed"),
    (".", "XML error: pool name '.' is not allowed"),
])
def test_bad_pool_names(conn: virt.Connection, tmp_path: Path, root: Path, name: str, message: str) -> None:
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(dir_pool(name, tmp_path / "x"))
    assert info.value.code == ErrorNumber.XML_ERROR and info.value.message == message
    assert not (root / "etc" / "storage").exists() or not list((root / "etc" / "storage").iterdir())


def test_hidden_and_unicode_pool_names(conn: virt.Connection, tmp_path: Path) -> None:
    for name in (".hidden", "ünï cødé"):
        conn.define_storage_pool(dir_pool(name, tmp_path / name.strip(".")))
    assert [p.name for p in conn.list_storage_pools()] == [".hidden", "ünï cødé"]
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(dir_pool("n" * 300, tmp_path / "long"))
    assert info.value.code == ErrorNumber.SYSTEM_ERROR and info.value.message.endswith("File name too long")


def test_target_that_is_not_a_directory(conn: virt.Connection, tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.write_text("not a directory\n")
    pool = conn.define_storage_pool(dir_pool("f", plain))
    with pytest.raises(VirtError) as info:
        pool.build()
    check(info, ErrorNumber.SYSTEM_ERROR, f"path '{plain}' is not a directory: Not a directory")
    with pytest.raises(VirtError) as info:
        pool.start()
    check(info, ErrorNumber.SYSTEM_ERROR, f"cannot open directory '{plain}': Not a directory")
    assert not pool.is_active() and plain.read_text() == "not a directory\n"


def test_delete_refuses_a_pool_with_content(conn: virt.Connection, images: Path) -> None:
    pool = conn.define_storage_pool(dir_pool("d", images))
    pool.build()
    (images / "keep").write_text("x")
    with pytest.raises(VirtError) as info:
        pool.delete()
    check(info, ErrorNumber.SYSTEM_ERROR, f"failed to remove pool '{images}': Directory not empty")
    with pytest.raises(VirtError) as info:
        pool.delete(1)
    assert info.value.code == ErrorNumber.INVALID_ARG
    assert (images / "keep").exists()


def test_unsupported_pool_type(conn: virt.Connection) -> None:
    xml = "<pool type='netfs'><name>n</name><source><host name='h'/><dir path='/x'/></source>" \
          "<target><path>/mnt/n</path></target></pool>"
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(xml)
    check(info, ErrorNumber.INTERNAL_ERROR, "internal error: missing backend for pool type 2 (netfs)")


def test_malformed_xml_is_xml_error(conn: virt.Connection) -> None:
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool("<pool type='dir'><name>x</name>")
    assert info.value.code == ErrorNumber.XML_ERROR


def test_events(conn: virt.Connection, images: Path) -> None:
    seen: list[tuple[str, PoolEventType]] = []
    conn.subscribe(lambda c, e: seen.append((e.name, e.event)), PoolEvent)
    pool = conn.define_storage_pool(dir_pool("e", images))
    pool.build()
    pool.start()
    pool.destroy()
    pool.delete()
    pool.undefine()
    assert seen == [("e", PoolEventType.DEFINED), ("e", PoolEventType.CREATED), ("e", PoolEventType.STARTED),
                    ("e", PoolEventType.STOPPED), ("e", PoolEventType.DELETED), ("e", PoolEventType.UNDEFINED)]


def test_two_connections_share_pools_and_events(plugins: None, uri: str, images: Path) -> None:
    with virt.open(uri) as one, virt.open(uri) as two:
        seen: list[PoolEventType] = []
        two.subscribe(lambda c, e: seen.append(e.event), PoolEvent)
        pool = one.define_storage_pool(dir_pool("shared", images))
        pool.build()
        pool.start()
        other = two.lookup_storage_pool("shared")
        assert other.uuid == pool.uuid and other.is_active()
        other.destroy()
        assert not pool.is_active()
        assert seen == [PoolEventType.DEFINED, PoolEventType.CREATED, PoolEventType.STARTED, PoolEventType.STOPPED]


def test_read_only_connection_sees_but_cannot_change(plugins: None, uri: str, images: Path) -> None:
    with virt.open(uri) as conn:
        conn.define_storage_pool(dir_pool("ro", images))
    with virt.open(uri, readonly=True) as conn:
        pool = conn.lookup_storage_pool("ro")
        with pytest.raises(VirtError) as info:
            pool.build()
        assert info.value.code == ErrorNumber.OPERATION_DENIED
    assert not images.exists()


_SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
os.environ["VIRT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
import hosttest_driver, virt
hosttest_driver.register()
conn = virt.open({uri!r})
action = sys.argv[1]
if action == "define-start":
    pool = conn.define_storage_pool({xml!r})
    pool.build()
    pool.start()
    pool.create_volume("<volume><name>v.img</name><capacity>1048576</capacity></volume>")
elif action == "show":
    pool = conn.lookup_storage_pool("proc")
    print(json.dumps({{"uuid": pool.uuid, "active": pool.is_active(),
                       "volumes": [v.name for v in pool.list_volumes()] if pool.is_active() else []}}))
elif action == "destroy":
    conn.lookup_storage_pool("proc").destroy()
conn.close()
"""


def test_two_processes_see_the_same_pools_and_state(tmp_path: Path, uri: str, images: Path) -> None:
    script = tmp_path / "proc.py"
    script.write_text(_SCRIPT.format(tests=str(Path(__file__).parent), uri=uri, xml=dir_pool("proc", images)))

    def run(action: str) -> str:
        out = subprocess.run([sys.executable, str(script), action], capture_output=True, text=True, timeout=120,
                             check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    run("define-start")
    import json

    shown = json.loads(run("show"))
    assert shown["active"] is True and shown["volumes"] == ["v.img"]
    run("destroy")
    again = json.loads(run("show"))
    assert again == {"uuid": shown["uuid"], "active": False, "volumes": []}


def test_config_files_are_written_atomically(conn: virt.Connection, images: Path, root: Path) -> None:
    pool = conn.define_storage_pool(dir_pool("w", images))
    pool.build()
    pool.start()
    pool.set_autostart(True)
    leftovers = [p.name for d in (root / "etc" / "storage", root / "run" / "storage") for p in d.rglob(".*.tmp")]
    assert leftovers == []
    stored = (root / "etc" / "storage" / "w.xml").read_text()
    assert PoolDocument.from_string(stored).to_string() == stored


def test_embed_root_must_be_absolute(plugins: None) -> None:
    with pytest.raises(VirtError) as info:
        virt.open("hosttest:///embed?root=relative/dir")
    assert info.value.code == ErrorNumber.INVALID_ARG
    assert "absolute 'root'" in info.value.message


def test_test_driver_has_no_stream_hooks() -> None:
    with virt.open("test:///default") as conn:
        pool = conn.lookup_storage_pool("default-pool")
        vol = pool.create_volume("<volume><name>s</name><capacity>1024</capacity></volume>")
        try:
            with pytest.raises(VirtError) as info:
                vol.download(os.devnull)
            assert info.value.code == ErrorNumber.NO_SUPPORT
            assert info.value.message.endswith("virStorageVolDownload")
            with pytest.raises(VirtError) as info:
                vol.upload(os.devnull)
            assert info.value.message.endswith("virStorageVolUpload")
        finally:
            vol.delete()
