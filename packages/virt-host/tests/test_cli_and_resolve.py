"""``virt vol-upload`` / ``vol-download`` against host storage, and :func:`resolve_volume`,
the helper local hypervisor drivers use for ``<disk type='volume'>`` sources."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import virt
from virt import ErrorNumber, VirtError, VolumeType
from virt.cli import main
from virt_host.storage import ResolvedVolume, resolve_volume

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
MiB = 1 << 20


@pytest.fixture
def pool(conn: virt.Connection, tmp_path: Path) -> virt.StoragePool:
    pool = conn.define_storage_pool(f"<pool type='dir'><name>cli</name><target><path>{tmp_path / 'img'}</path>"
                                    "</target></pool>")
    pool.build()
    pool.start()
    return pool


def test_vol_upload_and_download(pool: virt.StoragePool, uri: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    pool.create_volume(f"<volume><name>v.img</name><capacity>{MiB}</capacity><allocation>0</allocation></volume>")
    source = tmp_path / "in.bin"
    payload = os.urandom(2 * MiB + 7)
    source.write_bytes(payload)
    assert main(["-c", uri, "vol-upload", "--pool", "cli", "v.img", str(source)]) == 0
    assert main(["-c", uri, "vol-download", "v.img", str(tmp_path / "out.bin"), "--pool", "cli",
                 "--offset", "10", "--length", "1000"]) == 0
    assert (tmp_path / "out.bin").read_bytes() == payload[10:1010]
    assert main(["-c", uri, "vol-download", "--pool", "cli", "v.img", str(tmp_path / "all.bin")]) == 0
    assert (tmp_path / "all.bin").read_bytes() == payload
    out, err = capsys.readouterr()
    assert out.strip() == "" and err == ""  # virsh prints nothing but its closing newline


def test_cli_errors(pool: virt.StoragePool, uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", uri, "vol-upload", "--pool", "cli", "v.img", str(tmp_path / "missing")]) == 1
    assert "error: failed to get vol 'v.img'" in capsys.readouterr().err
    pool.create_volume("<volume><name>v.img</name><capacity>1024</capacity></volume>")
    assert main(["-c", uri, "vol-upload", "--pool", "cli", "v.img", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err == f"error: cannot read {tmp_path / 'missing'}\n"
    assert main(["-c", uri, "vol-download", "--pool", "cli", "v.img", str(tmp_path / "x"), "--offset", "-1"]) == 1
    assert "malformed or out of range" in capsys.readouterr().err
    assert main(["-c", uri, "vol-download", "--pool", "cli", "v.img", str(tmp_path / "x"), "--sparse"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download from volume v.img\nerror: unsupported flags (0x1)")
    assert not (tmp_path / "x").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(pool: virt.StoragePool, uri: str, tmp_path: Path) -> None:
    pytest.importorskip("rich")
    from virt.cli._framework import Context
    from virt.cli.commands.storage import _progress

    vol = pool.create_volume(f"<volume><name>p.img</name><capacity>{3 * MiB}</capacity></volume>")
    term = _Terminal()
    ctx = Context(uri, False, term, io.StringIO())
    update, stop = _progress(ctx, "p.img")
    assert update is not None
    vol.download(str(tmp_path / "p.bin"), progress=update)
    stop()
    assert "p.img" in term.getvalue()
    plain = Context(uri, False, io.StringIO(), io.StringIO())
    assert _progress(plain, "p.img")[0] is None


def test_resolve_volume(pool: virt.StoragePool, uri: str) -> None:
    vol = pool.create_volume("<volume><name>d.qcow2</name><capacity unit='M'>8</capacity>"
                             "<target><format type='qcow2'/></target></volume>")
    assert resolve_volume(uri, "cli", "d.qcow2") == ResolvedVolume(
        pool="cli", name="d.qcow2", path=vol.path, type=VolumeType.FILE, format="qcow2", pool_type="dir")
    with pytest.raises(VirtError) as info:
        resolve_volume(uri, "cli", "nope")
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    with pytest.raises(VirtError) as info:
        resolve_volume(uri, "other", "d.qcow2")
    assert info.value.code == ErrorNumber.NO_STORAGE_POOL
    pool.destroy()
    with pytest.raises(VirtError) as info:
        resolve_volume(virt.parse_uri(uri), "cli", "d.qcow2")
    assert info.value.message == ("Requested operation is not valid: storage pool 'cli' containing volume "
                                  "'d.qcow2' is not active")


def test_virsh_pool_and_volume_commands(plugins: None, uri: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "pool"

    def virt_(*words: str) -> str:
        assert main(["-c", uri, *words]) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    assert virt_("pool-define-as", "p", "dir", "--target", str(target)).strip() == "Pool p defined"
    virt_("pool-build", "p")
    virt_("pool-start", "p")
    virt_("pool-autostart", "p")
    virt_("vol-create-as", "p", "base.img", "16M")
    virt_("vol-create-as", "p", "top.qcow2", "32M", "--format", "qcow2", "--backing-vol", "base.img",
          "--backing-vol-format", "raw")
    listing = virt_("vol-list", "p", "--details")
    assert "base.img" in listing and "top.qcow2" in listing and "32.00 MiB" in listing
    info = virt_("vol-info", "--pool", "p", "top.qcow2")
    assert "Capacity:       32.00 MiB" in info and "Type:           file" in info
    assert "<backingStore>" in virt_("vol-dumpxml", "--pool", "p", "top.qcow2")
    virt_("vol-clone", "--pool", "p", "top.qcow2", "copy.qcow2")
    virt_("vol-resize", "--pool", "p", "copy.qcow2", "64M")
    assert "64.00 MiB" in virt_("vol-info", "--pool", "p", "copy.qcow2")
    virt_("vol-wipe", "--pool", "p", "base.img")
    virt_("vol-delete", "--pool", "p", "copy.qcow2")
    pool_info = virt_("pool-info", "p")
    assert "State:          running" in pool_info and "Autostart:      yes" in pool_info
    assert "running" in virt_("pool-list", "--all", "--details")
    assert main(["-c", uri, "pool-undefine", "p"]) == 1
    assert "is still active" in capsys.readouterr().err
    virt_("pool-destroy", "p")
    assert main(["-c", uri, "pool-delete", "p"]) == 1  # volumes are still there
    assert "Directory not empty" in capsys.readouterr().err
    virt_("pool-undefine", "p")
    assert virt_("pool-list", "--all").count("\n") <= 4
