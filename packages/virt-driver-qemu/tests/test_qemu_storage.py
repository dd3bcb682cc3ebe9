"""Disks from storage pools: ``<source pool= volume=>`` resolves through the host storage plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
import virt
from qemu_testlib import Console, GuestXML, tinyguest
from virt import VirtError
from virt._errors import ErrorNumber

pytest.importorskip("virt_host", reason="requires the virt-host distribution (host storage)")

DISK = ("<disk type='volume' device='disk'><source pool='images' volume='data.qcow2'/>"
        "<target dev='vda' bus='virtio'/></disk>")


def _pool(conn: virt.Connection, tmp_path: Path) -> virt.StoragePool:
    target = tmp_path / "images"
    pool = conn.define_storage_pool(f"<pool type='dir'><name>images</name><target><path>{target}</path>"
                                    "</target></pool>")
    pool.build()
    pool.start()
    pool.create_volume("<volume><name>data.qcow2</name><capacity unit='MiB'>24</capacity>"
                       "<target><format type='qcow2'/></target></volume>")
    return pool


def test_volume_disk_reaches_the_guest(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    with virt.open(uri) as conn:
        _pool(conn, tmp_path)
        dom = conn.define_domain(guest_xml(devices=DISK))
        dom.start()
        con = Console(dom.console_path())
        try:
            con.read_until(tinyguest.READY_MARKER)
            con.read_until(tinyguest.SHELL_PROMPT)
            sectors = con.command("cat /sys/block/vda/size")
            assert str(24 * 1024 * 1024 // 512) in sectors
        finally:
            con.close()
        assert "pool='images'" in dom.xml()  # the live XML keeps the pool and volume names
        dom.destroy()


def test_inactive_pool_is_refused(uri: str, guest_xml: GuestXML, tmp_path: Path) -> None:
    with virt.open(uri) as conn:
        pool = _pool(conn, tmp_path)
        pool.destroy()
        dom = conn.define_domain(guest_xml(devices=DISK))
        with pytest.raises(VirtError) as err:
            dom.start()
        assert err.value.code == ErrorNumber.OPERATION_INVALID
        assert "storage pool 'images' containing volume 'data.qcow2' is not active" in str(err.value)
        assert not dom.is_active()
