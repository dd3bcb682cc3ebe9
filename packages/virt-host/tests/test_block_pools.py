"""``fs`` pools on a real loop device (``mkfs`` at build, mounted while running) and the
``logical`` pool's refusal to start on a kernel without device-mapper.  Every loop device,
mount and volume group is released in teardown."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import virt
from virt import ErrorDomain, ErrorNumber, PoolState, VirtError
from virt_host._tools import have_device_mapper, is_mounted

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control"),
                       reason="needs root and loop devices [optional]"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="needs losetup (util-linux)"),
]
MiB = 1 << 20


def fs_pool(name: str, device: str, target: Path, fmt: str = "ext4") -> str:
    return (f"<pool type='fs'><name>{name}</name><source><device path='{device}'/><format type='{fmt}'/>"
            f"</source><target><path>{target}</path></target></pool>")


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs e2fsprogs")
def test_fs_pool_on_a_loop_device(conn: virt.Connection, loop_device: Callable[[int], str], tmp_path: Path) -> None:
    device = loop_device(64)
    target = tmp_path / "mnt"
    pool = conn.define_storage_pool(fs_pool("fs", device, target))
    pool.build()  # as libvirt: without flags only the mount point is made
    assert target.is_dir()
    with pytest.raises(VirtError) as info:
        pool.start()  # nothing to mount yet
    assert info.value.code == ErrorNumber.INTERNAL_ERROR and "mount" in info.value.message
    assert is_mounted(str(target)) is None and not pool.is_active()
    pool.build(8)  # VIR_STORAGE_POOL_BUILD_OVERWRITE: mkfs
    with pytest.raises(VirtError) as info:
        pool.build(4)  # _NO_OVERWRITE on a formatted device
    assert info.value.code == ErrorNumber.STORAGE_POOL_BUILT
    assert info.value.message == f"Storage pool already built: Device '{device}' already formatted using 'ext4'"
    with pytest.raises(VirtError) as info:
        pool.build(4 | 8)
    assert info.value.code == ErrorNumber.INVALID_ARG
    try:
        pool.start()
        assert is_mounted(str(target)) == device
        info_ = pool.info()
        assert info_.state == PoolState.RUNNING and 50 * MiB < info_.capacity <= 64 * MiB
        assert 0 < info_.available < info_.capacity
        vol = pool.create_volume("<volume><name>disk.qcow2</name><capacity unit='M'>100</capacity>"
                                 "<target><format type='qcow2'/></target></volume>")
        assert vol.path == f"{target}/disk.qcow2" and vol.info().capacity == 100 * MiB
        names = [v.name for v in pool.list_volumes()]
        assert names == ["disk.qcow2", "lost+found"]  # as libvirt, a subdirectory is a 'dir' volume
        with pytest.raises(VirtError) as info:  # more than the filesystem holds, not sparse
            pool.create_volume("<volume><name>big.img</name><capacity unit='M'>200</capacity></volume>")
        assert info.value.code == ErrorNumber.SYSTEM_ERROR and "No space left on device" in info.value.message
        assert sorted(os.listdir(target)) == ["disk.qcow2", "lost+found"]
        with pytest.raises(VirtError) as info:
            pool.delete()
        assert info.value.code == ErrorNumber.OPERATION_INVALID
    finally:
        if pool.is_active():
            pool.destroy()
    assert is_mounted(str(target)) is None and os.listdir(target) == []
    pool.start()  # the data is still on the device
    assert [v.name for v in pool.list_volumes()] == ["disk.qcow2", "lost+found"]
    subprocess.run(["umount", str(target)], check=True)
    assert not pool.is_active()  # unmounted behind its back: no longer running
    pool.start()
    pool.destroy()
    pool.delete()
    assert not target.exists()
    pool.undefine()


def test_fs_pool_needs_its_device(conn: virt.Connection, tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    pool = conn.define_storage_pool(fs_pool("nodev", "/dev/nonexistent-virt-test", target))
    with pytest.raises(VirtError) as info:
        pool.start()
    assert info.value.code == ErrorNumber.SYSTEM_ERROR
    assert info.value.message == "cannot find source device '/dev/nonexistent-virt-test': No such file or directory"
    assert not pool.is_active()


def test_fs_pools_refuse_a_shared_device(conn: virt.Connection, tmp_path: Path) -> None:
    conn.define_storage_pool(fs_pool("one", "/dev/loop-shared", tmp_path / "a"))
    with pytest.raises(VirtError) as info:
        conn.define_storage_pool(fs_pool("two", "/dev/loop-shared", tmp_path / "b"))
    assert info.value.message == "operation failed: Storage source conflict with pool: 'one'"


def _lvm_works() -> bool:
    return shutil.which("pvcreate") is not None and shutil.which("vgcreate") is not None


@pytest.mark.skipif(not _lvm_works(), reason="needs lvm2")
def test_logical_pool_builds_a_volume_group_but_refuses_to_start(
        conn: virt.Connection, loop_device: Callable[[int], str]) -> None:
    device = loop_device(64)
    vg = f"virttest{os.getpid()}"
    xml = (f"<pool type='logical'><name>{vg}</name><source><device path='{device}'/></source>"
           f"<target><path>/dev/{vg}</path></target></pool>")
    pool = conn.define_storage_pool(xml)
    pool.build()
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    out = subprocess.run(["vgs", "--noheadings", "-o", "vg_name", vg], capture_output=True, text=True, env=env,
                         check=False)
    assert out.returncode == 0 and out.stdout.strip() == vg
    with pytest.raises(VirtError) as info:
        pool.build()  # the device now holds an LVM signature
    assert info.value.code == ErrorNumber.STORAGE_POOL_BUILT
    with pytest.raises(VirtError) as info:
        pool.start()
    assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED and info.value.domain == ErrorDomain.STORAGE
    if not have_device_mapper():
        assert info.value.message == (
            f"Operation not supported: cannot start logical pool '{vg}': this kernel has no device-mapper, so no "
            f"logical volume of volume group '{vg}' can be created or activated")
    assert not pool.is_active() and pool.info().state == PoolState.INACTIVE
    pool.delete()
    out = subprocess.run(["vgs", vg], capture_output=True, text=True, env=env, check=False)
    assert out.returncode != 0
    pool.undefine()
