"""Volume upload and download over ``qemu+ssh://`` as streams of the protocol (``vol-upload``,
``vol-download``): a window of data in flight each way instead of a round trip per chunk, the
far side's errors at the right moment, the window held when the reader stops, read-only
enforced on the far side, and chunked calls still used with a far side that predates them."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import virt
from remote_testlib import Sshd
from virt import ErrorNumber, VirtError
from virt_remote._client import Peer
from virt_remote._wire import VOLUME_PIECE, VOLUME_WINDOW

pytestmark = [
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="requires qemu-system-x86_64 (Debian package qemu-system-x86)"),
]

SIZE = 24 * 1024 * 1024  # six windows, 24 pieces


@pytest.fixture
def pool(sshd: Sshd, tmp_path: Path) -> Iterator[tuple[virt.Connection, Any, str]]:
    pytest.importorskip("virt_host", reason="requires the virt-host distribution (host storage)")
    root = tmp_path / "embed"
    root.mkdir()
    uri = sshd.uri("qemu", "/embed", root=root)
    with virt.open(uri) as conn:
        pool = conn.define_storage_pool(f"<pool type='dir'><name>images</name><target><path>{root / 'images'}"
                                        "</path></target></pool>")
        pool.build()
        pool.start()
        yield conn, pool, uri
        for vol in pool.list_volumes():
            vol.delete()
        pool.destroy()
        pool.undefine()


def _volume(pool: Any, name: str = "blob.raw", size: int = SIZE) -> Any:
    return pool.create_volume(f"<volume><name>{name}</name><capacity>{size}</capacity>"
                              "<target><format type='raw'/></target></volume>")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hooks called through the proxy (as plain calls, not streams)."""
    seen: list[str] = []
    real = Peer.call

    def call(self: Peer, session: int, hook: str, kwargs: dict[str, Any]) -> Any:
        seen.append(hook)
        return real(self, session, hook, kwargs)

    monkeypatch.setattr(Peer, "call", call)
    return seen


def test_upload_and_download_are_streams(pool: Any, calls: list[str], tmp_path: Path) -> None:
    _conn, storage, _uri = pool
    vol = _volume(storage)
    data = os.urandom(SIZE)
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    progress: list[int] = []
    assert vol.upload(str(source), progress=lambda done, total: progress.append(done)) == SIZE
    assert progress[-1] == SIZE
    assert vol.download(str(target), progress=lambda done, total: progress.append(done)) == SIZE
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    # a part of it, from an offset
    assert vol.download(str(tmp_path / "part.bin"), offset=1000, length=3 * VOLUME_PIECE + 7) == 3 * VOLUME_PIECE + 7
    assert (tmp_path / "part.bin").read_bytes() == data[1000:1000 + 3 * VOLUME_PIECE + 7]
    assert "virt_vol_upload" not in calls and "virt_vol_download" not in calls, calls


def test_a_reader_that_stops_holds_the_far_side_at_its_window(pool: Any) -> None:
    conn, storage, _uri = pool
    vol = _volume(storage)
    data = os.urandom(SIZE)
    vol.upload(_BytesFile(data))
    stream = conn.driver.open_volume_stream(key=vol.key, mode="download", offset=0, length=0, flags=0)
    try:
        deadline = time.monotonic() + 10
        while len(stream._buf) < VOLUME_WINDOW and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # and no more comes while nothing is read
        assert len(stream._buf) == VOLUME_WINDOW, f"{len(stream._buf)} bytes buffered: the window does not hold"
        got = bytearray()
        while chunk := stream.read(VOLUME_PIECE * 3):
            got += chunk
        assert bytes(got) == data
    finally:
        stream.close()


class _BytesFile:
    """A binary file object over bytes (what ``upload`` reads from)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int) -> bytes:
        chunk = self.data[self.at:self.at + size]
        self.at += len(chunk)
        return chunk


def test_far_side_errors_end_the_stream(pool: Any, tmp_path: Path) -> None:
    _conn, storage, _uri = pool
    vol = _volume(storage, "gone.raw", 4 * VOLUME_PIECE)
    vol.delete()
    target = tmp_path / "out.bin"
    with pytest.raises(VirtError) as info:
        vol.download(str(target))
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    assert not target.exists(), "a failed download left the file it created"
    with pytest.raises(VirtError) as info:
        vol.upload(_BytesFile(os.urandom(2 * VOLUME_WINDOW)))
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL


def test_read_only_is_enforced_on_the_far_side(pool: Any) -> None:
    _conn, storage, uri = pool
    vol = _volume(storage)
    with virt.open(uri, readonly=True) as ro:
        # past the client's own check, straight to the far side
        with pytest.raises(VirtError) as info:
            ro.driver.open_volume_stream(key=vol.key, mode="upload", offset=0, length=0, flags=0)
        assert info.value.code == ErrorNumber.OPERATION_DENIED
        stream = ro.driver.open_volume_stream(key=vol.key, mode="download", offset=0, length=5, flags=0)
        try:
            assert stream.read(100) == b"\0" * 5
            assert stream.read(100) == b""
        finally:
            stream.close()


def test_a_far_side_without_volume_streams_gets_chunked_calls(pool: Any, calls: list[str], tmp_path: Path) -> None:
    conn, storage, _uri = pool
    conn.driver._peer.features = conn.driver._peer.features - {"volume-streams"}
    vol = _volume(storage)
    data = os.urandom(SIZE)
    assert vol.upload(_BytesFile(data)) == SIZE
    target = tmp_path / "out.bin"
    assert vol.download(str(target)) == SIZE
    assert target.read_bytes() == data
    assert "virt_vol_upload" in calls and "virt_vol_download" in calls


def test_cli_vol_upload_and_download_over_ssh(pool: Any, calls: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``virt -c qemu+ssh://... vol-upload / vol-download`` (virsh's words) ride the streams."""
    from virt.cli import main

    _conn, storage, uri = pool
    _volume(storage, "cli.raw", VOLUME_PIECE)
    payload = os.urandom(3 * VOLUME_PIECE + 11)  # past the capacity: the file grows, as virsh's
    source = tmp_path / "in.bin"
    source.write_bytes(payload)
    assert main(["-c", uri, "vol-upload", "--pool", "images", "cli.raw", str(source)]) == 0
    assert main(["-c", uri, "vol-download", "cli.raw", str(tmp_path / "part.bin"), "--pool", "images",
                 "--offset", "10", "--length", "1000"]) == 0
    assert (tmp_path / "part.bin").read_bytes() == payload[10:1010]
    assert main(["-c", uri, "vol-download", "--pool", "images", "cli.raw", str(tmp_path / "all.bin")]) == 0
    assert (tmp_path / "all.bin").read_bytes() == payload
    out, err = capsys.readouterr()
    assert out.strip() == "" and err == ""
    assert "virt_vol_upload" not in calls and "virt_vol_download" not in calls, calls
