"""Volumes of a running directory pool through the public API, with real files and real
``qemu-img``: create (raw, qcow2, qcow2 over a backing volume), clone, delete, wipe, resize,
info, XML, upload and download, and bad input that must leave nothing behind."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import virt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virt import ErrorDomain, ErrorNumber, VirtError, VolumeType
from virt.xml.storage import PoolDocument, VolumeDocument

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

MiB = 1 << 20


@pytest.fixture
def pool(conn: virt.Connection, tmp_path: Path) -> virt.StoragePool:
    target = tmp_path / "images"
    pool = conn.define_storage_pool(f"<pool type='dir'><name>images</name><target><path>{target}</path>"
                                    "</target></pool>")
    pool.build()
    pool.start()
    return pool


def vol_xml(name: str, capacity: int, *, allocation: int | None = None, fmt: str | None = None,
            backing: str | None = None, backing_fmt: str | None = None, extra: str = "") -> str:
    parts = [f"<volume><name>{name}</name><capacity>{capacity}</capacity>"]
    if allocation is not None:
        parts.append(f"<allocation>{allocation}</allocation>")
    if fmt or extra:
        parts.append(f"<target>{f'<format type={chr(39)}{fmt}{chr(39)}/>' if fmt else ''}{extra}</target>")
    if backing:
        bfmt = f"<format type='{backing_fmt}'/>" if backing_fmt else ""
        parts.append(f"<backingStore><path>{backing}</path>{bfmt}</backingStore>")
    parts.append("</volume>")
    return "".join(parts)


def qemu_info(path: str) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True,
                         check=True)
    data: dict[str, object] = json.loads(out.stdout)
    return data


def runtime_stripped(xml: str) -> str:
    """The volume XML without what libvirt's parser drops as runtime data."""
    xml = re.sub(r"\n *<physical[^\n]*", "", xml)
    return re.sub(r"\n *<timestamps>.*?</timestamps>", "", xml, flags=re.S)


def pool_files(pool: virt.StoragePool) -> list[str]:
    return sorted(os.listdir(PoolDocument.from_string(pool.xml()).target_path or ""))


def test_raw_sparse_and_allocated(pool: virt.StoragePool) -> None:
    sparse = pool.create_volume(vol_xml("sparse.img", 64 * MiB, allocation=0))
    full = pool.create_volume(vol_xml("full.img", 4 * MiB))
    assert sparse.path == sparse.key == str(Path(pool_target(pool)) / "sparse.img")
    assert os.path.getsize(sparse.path) == 64 * MiB and os.stat(sparse.path).st_blocks == 0
    assert os.stat(full.path).st_blocks * 512 >= 4 * MiB
    assert sparse.info() == virt.VolumeInfo(VolumeType.FILE, 64 * MiB, 0)
    assert full.info().capacity == 4 * MiB and full.info().allocation >= 4 * MiB
    assert (os.stat(sparse.path).st_mode & 0o777) == 0o600
    assert [v.name for v in pool.list_volumes()] == ["full.img", "sparse.img"]
    assert pool.lookup_volume("full.img") == full


def pool_target(pool: virt.StoragePool) -> str:
    return PoolDocument.from_string(pool.xml()).target_path or ""


def test_lookup_by_key_and_path(conn: virt.Connection, pool: virt.StoragePool) -> None:
    vol = pool.create_volume(vol_xml("k.img", MiB))
    assert conn.lookup_volume_by_key(vol.key) == vol
    assert conn.lookup_volume_by_path(vol.path) == vol
    assert conn.lookup_volume_by_path(vol.path.replace("/k.img", "//k.img")).name == "k.img"
    for bad in ("/etc/passwd", pool_target(pool) + "/../images/k.img/..", "k.img", pool_target(pool) + "/nope"):
        with pytest.raises(VirtError) as info:
            conn.lookup_volume_by_path(bad)
        assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    with pytest.raises(VirtError) as info:
        pool.lookup_volume("../images/k.img")
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    assert info.value.message == "Storage volume not found: no storage vol with matching name '../images/k.img'"


def test_qcow2_with_backing_volume(pool: virt.StoragePool) -> None:
    base = pool.create_volume(vol_xml("base.img", 16 * MiB, allocation=0))
    base.upload(io.BytesIO(b"B" * 4096))
    top = pool.create_volume(vol_xml("top.qcow2", 32 * MiB, fmt="qcow2", backing=base.path, backing_fmt="raw"))
    data = qemu_info(top.path)
    assert data["format"] == "qcow2" and data["virtual-size"] == 32 * MiB
    assert data["backing-filename"] == base.path and data["backing-filename-format"] == "raw"
    xml = top.xml()
    doc = VolumeDocument.from_string(xml, pool=PoolDocument.from_string(pool.xml()))
    assert doc.format_type == "qcow2" and doc.backing_path == base.path and doc.backing_format == "raw"
    assert doc.capacity == 32 * MiB and doc.key == top.path
    assert "<compat>1.1</compat>" in xml and "<clusterSize unit='B'>65536</clusterSize>" in xml
    assert f"<physical unit='bytes'>{os.path.getsize(top.path)}</physical>" in xml
    # the overlay reads its backing volume's bytes
    out = io.BytesIO()
    clone = pool.create_volume_from(vol_xml("flat.img", 0), top)
    clone.download(out, length=4096)
    assert out.getvalue() == b"B" * 4096
    assert clone.info().capacity == 32 * MiB


def test_qcow2_backing_format_is_probed_when_not_given(pool: virt.StoragePool) -> None:
    base = pool.create_volume(vol_xml("base.qcow2", 8 * MiB, fmt="qcow2"))
    top = pool.create_volume(vol_xml("top.qcow2", 8 * MiB, fmt="qcow2", backing=base.path))
    assert qemu_info(top.path)["backing-filename-format"] == "qcow2"
    assert "<format type='qcow2'/>\n    <permissions>" in top.xml().split("<backingStore>")[1]


def test_qcow2_options_and_capacity_from_backing(pool: virt.StoragePool) -> None:
    vol = pool.create_volume(vol_xml("opt.qcow2", 8 * MiB, fmt="qcow2",
                                     extra="<compat>1.1</compat><clusterSize unit='KiB'>128</clusterSize>"
                                           "<features><lazy_refcounts/></features>"))
    data = qemu_info(vol.path)
    specific = data["format-specific"]["data"]  # type: ignore[index]
    assert data["cluster-size"] == 128 * 1024 and specific["lazy-refcounts"] is True
    assert "<features>\n      <lazy_refcounts/>\n    </features>" in vol.xml()
    xml = f"<volume><name>nocap.qcow2</name><target><format type='qcow2'/></target>" \
          f"<backingStore><path>{vol.path}</path><format type='qcow2'/></backingStore></volume>"
    assert pool.create_volume(xml).info().capacity == 8 * MiB


def test_prealloc_metadata(pool: virt.StoragePool) -> None:
    vol = pool.create_volume(vol_xml("meta.qcow2", 64 * MiB, fmt="qcow2"), 1)
    assert qemu_info(vol.path)["actual-size"] > 200_000  # type: ignore[operator]
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("meta.img", MiB), 1)
    assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED


def test_clone_keeps_content_and_grows(pool: virt.StoragePool) -> None:
    src = pool.create_volume(vol_xml("src.img", 2 * MiB, allocation=0))
    payload = os.urandom(MiB)
    src.upload(io.BytesIO(payload), offset=MiB // 2)
    copy = pool.create_volume_from(vol_xml("copy.qcow2", 4 * MiB, fmt="qcow2"), src)
    assert copy.info().capacity == 4 * MiB and qemu_info(copy.path)["format"] == "qcow2"
    raw = pool.create_volume_from(vol_xml("copy.img", 0), copy)
    out = io.BytesIO()
    raw.download(out)
    data = out.getvalue()
    assert len(data) == 4 * MiB and data[MiB // 2: MiB // 2 + MiB] == payload and data[:MiB // 2] == bytes(MiB // 2)
    # virsh vol-clone's way: the source's own XML with another name
    doc = VolumeDocument.from_string(src.xml())
    doc.root.find("name").text = "again.img"  # type: ignore[union-attr]
    again = pool.create_volume_from(doc.to_string(), src)
    assert again.info().capacity == src.info().capacity


def test_upload_download_offsets(pool: virt.StoragePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(virt.StorageVolume, "CHUNK", MiB)  # several chunks each way, whatever the default
    vol = pool.create_volume(vol_xml("io.img", MiB, allocation=0))
    source = tmp_path / "in.bin"
    payload = os.urandom(3 * MiB + 123)
    source.write_bytes(payload)
    progress: list[tuple[int, int | None]] = []
    assert vol.upload(str(source), progress=lambda d, t: progress.append((d, t))) == len(payload)
    assert progress[-1] == (len(payload), len(payload)) and len(progress) == 4
    assert os.path.getsize(vol.path) == len(payload)  # as libvirt: writing past the end extends the file
    target = tmp_path / "out.bin"
    assert vol.download(str(target), offset=100, length=2 * MiB) == 2 * MiB
    assert target.read_bytes() == payload[100:100 + 2 * MiB]
    vol.upload(io.BytesIO(b"xyz"), offset=5)
    out = io.BytesIO()
    vol.download(out, length=10)
    assert out.getvalue() == payload[:5] + b"xyz" + payload[8:10]
    with pytest.raises(VirtError) as info:
        vol.download(str(tmp_path / "x"), flags=1)
    assert info.value.code == ErrorNumber.INVALID_ARG
    assert not (tmp_path / "x").exists()


def test_delete_and_wipe(pool: virt.StoragePool) -> None:
    raw = pool.create_volume(vol_xml("w.img", MiB))
    raw.upload(io.BytesIO(b"\xff" * MiB))
    raw.wipe()
    assert Path(raw.path).read_bytes() == bytes(MiB)
    sparse = pool.create_volume(vol_xml("ws.img", 8 * MiB, allocation=0))
    sparse.upload(io.BytesIO(b"\xff" * 4096), offset=MiB)
    sparse.wipe()
    assert os.path.getsize(sparse.path) == 8 * MiB and os.stat(sparse.path).st_blocks == 0
    image = pool.create_volume(vol_xml("w.qcow2", 8 * MiB, fmt="qcow2"))
    subprocess.run(["qemu-io", "-c", "write -P 0xaa 0 64k", image.path], check=False, capture_output=True)
    image.wipe()
    assert qemu_info(image.path)["format"] == "qcow2" and image.info().capacity == 8 * MiB
    with pytest.raises(VirtError) as info:
        image.wipe(9)  # trim
    assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED
    with pytest.raises(VirtError) as info:
        image.wipe(99)
    assert info.value.code == ErrorNumber.INVALID_ARG
    for vol in (raw, sparse, image):
        vol.delete()
    assert pool_files(pool) == []
    with pytest.raises(VirtError) as info:
        raw.info()
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL


def test_resize(pool: virt.StoragePool) -> None:
    raw = pool.create_volume(vol_xml("r.img", 4 * MiB, allocation=0))
    raw.resize(8 * MiB)
    assert raw.info().capacity == 8 * MiB and os.stat(raw.path).st_blocks == 0
    raw.resize(MiB, 2)  # delta
    assert raw.info().capacity == 9 * MiB
    with pytest.raises(VirtError) as info:
        raw.resize(MiB)
    assert info.value.message == ("invalid argument: Can't shrink capacity below current capacity unless shrink "
                                  "flag explicitly specified")
    raw.resize(MiB, 4)
    assert raw.info().capacity == MiB
    raw.resize(2 * MiB, 1)  # allocate
    assert raw.info().allocation >= MiB
    full = pool.create_volume(vol_xml("full.img", 2 * MiB))
    with pytest.raises(VirtError) as info:
        full.resize(MiB, 4)
    assert info.value.message == "invalid argument: can't shrink capacity below existing allocation"
    with pytest.raises(VirtError) as info:
        full.resize(1 << 60, 1)
    assert info.value.code == ErrorNumber.OPERATION_FAILED
    assert info.value.message == "operation failed: Not enough space left in storage pool"
    image = pool.create_volume(vol_xml("r.qcow2", 8 * MiB, fmt="qcow2"))
    image.resize(16 * MiB)
    assert qemu_info(image.path)["virtual-size"] == 16 * MiB == image.info().capacity
    image.resize(4 * MiB, 4)
    assert image.info().capacity == 4 * MiB
    with pytest.raises(VirtError) as info:
        image.resize(32 * MiB, 1)
    assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED


@pytest.mark.parametrize(("name", "code", "message"), [
    ("a/b", ErrorNumber.OPERATION_UNSUPPORTED, "Operation not supported: volume name 'a/b' cannot contain '/'"),
    ("../escape", ErrorNumber.OPERATION_UNSUPPORTED,
     "Operation not supported: volume name '../escape' cannot contain '/'"),
    ("..", ErrorNumber.OPERATION_UNSUPPORTED, "Operation not supported: volume name '..' is not allowed"),
    (".", ErrorNumber.OPERATION_UNSUPPORTED, "Operation not supported: volume name '.' is not allowed"),
])
def test_bad_volume_names(pool: virt.StoragePool, tmp_path: Path, name: str, code: ErrorNumber,
                          message: str) -> None:
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml(name, MiB))
    assert info.value.code == code and info.value.message == message
    assert info.value.domain == ErrorDomain.STORAGE
    assert pool_files(pool) == [] and sorted(os.listdir(tmp_path)) == ["images", "root"]


def test_duplicate_volume(pool: virt.StoragePool) -> None:
    pool.create_volume(vol_xml("dup.img", MiB))
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("dup.img", 2 * MiB, fmt="qcow2"))
    assert info.value.code == ErrorNumber.STORAGE_VOL_EXIST
    assert info.value.message == "storage volume 'dup.img' exists already"
    assert os.path.getsize(pool.lookup_volume("dup.img").path) == MiB


def test_bigger_than_free_space(pool: virt.StoragePool) -> None:
    available = pool.info().available
    huge = available + (1 << 30)
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("huge.img", huge))
    assert info.value.code == ErrorNumber.SYSTEM_ERROR
    assert info.value.message == (f"cannot allocate {huge} bytes in file '{pool_target(pool)}/huge.img': "
                                  "No space left on device")
    assert pool_files(pool) == []
    # sparse, as in libvirt, is fine whatever its size
    assert pool.create_volume(vol_xml("huge.img", huge, allocation=0)).info().capacity == huge


def test_failures_leave_nothing(pool: virt.StoragePool) -> None:
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("bad.qcow2", MiB, fmt="qcow2", backing="/nonexistent/base.img"))
    assert info.value.message == "inaccessible backing store volume /nonexistent/base.img: No such file or directory"
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("bad.img", MiB, backing=pool_target(pool)))
    assert info.value.code == ErrorNumber.NO_SUPPORT
    assert info.value.message.endswith("backing storage not supported for raw volumes")
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("bad.cow", MiB, fmt="cow"))  # a format qemu-img cannot make
    assert info.value.code == ErrorNumber.INTERNAL_ERROR and "qemu-img" in info.value.message
    with pytest.raises(VirtError) as info:
        pool.create_volume(vol_xml("bad.vmdk", MiB, fmt="bogus"))
    assert info.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert pool_files(pool) == []


def test_volume_xml_shape(pool: virt.StoragePool) -> None:
    vol = pool.create_volume(vol_xml("shape.img", MiB, allocation=0, extra="<permissions><mode>0640</mode>"
                                                                             "</permissions>"))
    st_ = os.stat(vol.path)
    expected = "\n".join([
        "<volume type='file'>",
        "  <name>shape.img</name>",
        f"  <key>{vol.path}</key>",
        f"  <capacity unit='bytes'>{MiB}</capacity>",
        "  <allocation unit='bytes'>0</allocation>",
        f"  <physical unit='bytes'>{MiB}</physical>",
        "  <target>",
        f"    <path>{vol.path}</path>",
        "    <format type='raw'/>",
        "    <permissions>",
        "      <mode>0640</mode>",
        f"      <owner>{st_.st_uid}</owner>",
        f"      <group>{st_.st_gid}</group>",
        "    </permissions>",
        "  </target>",
        "</volume>",
        "",
    ])
    assert re.sub(r"\n *<timestamps>.*?</timestamps>", "", vol.xml(), flags=re.S) == expected
    assert re.search(r"<atime>\d+(\.\d{9})?</atime>\n *<mtime>\d+(\.\d{9})?</mtime>\n *<ctime>", vol.xml())


def test_directory_volumes(pool: virt.StoragePool) -> None:
    vol = pool.create_volume("<volume type='dir'><name>sub</name><capacity>0</capacity>"
                             "<target><format type='dir'/></target></volume>")
    assert vol.info().type == VolumeType.DIR and os.path.isdir(vol.path)
    assert "<format type='dir'/>" in vol.xml()
    vol.delete()
    assert pool_files(pool) == []


_FORMATS = st.sampled_from(["raw", "qcow2"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/\x00",
                                           exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
       .filter(lambda n: n not in (".", "..") and not n.startswith(".virt-new-")),
       mib=st.integers(min_value=1, max_value=64), fmt=_FORMATS, sparse=st.booleans())
def test_reported_xml_round_trips(pool: virt.StoragePool, name: str, mib: int, fmt: str, sparse: bool) -> None:
    """What the backend reports for any volume it made parses and formats back to itself (but
    for the runtime-only ``<physical>`` and ``<timestamps>``), and defines the same volume."""
    pdoc = PoolDocument.from_string(pool.xml())
    from virt.xml._base import escape

    try:
        vol = pool.create_volume(vol_xml(escape(name), mib * MiB, allocation=0 if sparse else None, fmt=fmt))
    except VirtError as exc:  # a name libvirt's XML cannot carry is refused, not half-made
        assert exc.code in (ErrorNumber.XML_ERROR, ErrorNumber.OPERATION_UNSUPPORTED)
        assert pool_files(pool) == []
        return
    try:
        xml = vol.xml()
        assert VolumeDocument.from_string(xml, pool=pdoc).to_string() == runtime_stripped(xml)
        info = vol.info()
        assert info.capacity == mib * MiB
        doc = VolumeDocument.from_string(xml, pool=pdoc)
        assert doc.name == name and doc.format_type == fmt and doc.target_path == vol.path == vol.key
    finally:
        vol.delete()
    assert pool_files(pool) == []


# -- what is remembered between calls must never outlive what it describes ----------------------


def _fresh_xml(vol: virt.StorageVolume) -> str:
    """The volume's XML as a process that never saw it would print it (``qemu-img info`` run)."""
    from virt_host import _tools

    _tools._INFO_CACHE.clear()
    return vol.xml()


@pytest.mark.parametrize("extra", ["", "<compat>0.10</compat>", "<clusterSize unit='KiB'>4</clusterSize>"
                                   "<features><lazy_refcounts/></features>",
                                   "<compat>1.1</compat><features><extended_l2/></features>"])
def test_new_images_are_described_without_qemu_img_info(pool: virt.StoragePool, extra: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from virt_host import _tools

    base = pool.create_volume(vol_xml("base.qcow2", 3 * MiB + 1, fmt="qcow2"))
    base_xml = base.xml()
    runs: list[tuple[str, ...]] = []
    real_run = _tools.run

    def counting(*argv: str, **kwargs: bool) -> tuple[int, str, str]:
        runs.append(argv)
        return real_run(*argv, **kwargs)

    monkeypatch.setattr(_tools, "run", counting)
    vols = [pool.create_volume(vol_xml("new.qcow2", 5 * MiB + 7, fmt="qcow2", extra=extra)),
            pool.create_volume(vol_xml("over.qcow2", 0, fmt="qcow2", extra=extra, backing=base.path,
                                       backing_fmt="qcow2")),
            pool.create_volume_from(vol_xml("copy.qcow2", 0, fmt="qcow2", extra=extra), base),
            pool.create_volume(vol_xml("plain.raw", MiB + 1, allocation=0))]
    described = [vol.xml() for vol in vols]
    assert [argv[1] for argv in runs] == ["create", "create", "convert", ] and base.xml() == base_xml
    assert described == [_fresh_xml(vol) for vol in vols]


def test_streams_follow_the_volume_and_its_pool(pool: virt.StoragePool, tmp_path: Path) -> None:
    vol = pool.create_volume(vol_xml("s.img", MiB, allocation=0))
    vol.upload(io.BytesIO(b"a" * 10))
    out = io.BytesIO()
    vol.download(out, length=4)
    assert out.getvalue() == b"aaaa"
    # replaced behind the provider's back: the next chunk goes to the new file
    os.unlink(vol.path)
    Path(vol.path).write_bytes(b"bbbbbb")
    out = io.BytesIO()
    assert vol.download(out) == 6 and out.getvalue() == b"bbbbbb"
    vol.upload(io.BytesIO(b"c"), offset=1)
    assert Path(vol.path).read_bytes() == b"bcbbbb"
    # gone: NO_STORAGE_VOL, never the old file
    os.unlink(vol.path)
    for call in (lambda: vol.download(io.BytesIO()), lambda: vol.upload(io.BytesIO(b"x"))):
        with pytest.raises(VirtError) as info:
            call()
        assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    assert not os.path.exists(vol.path)
    # a stopped pool has no volumes, a restarted one has them again
    Path(vol.path).write_bytes(b"dd")
    vol.download(io.BytesIO())
    pool.destroy()
    with pytest.raises(VirtError) as info:
        vol.download(io.BytesIO())
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    with pytest.raises(VirtError) as info:
        vol.delete()
    assert info.value.code == ErrorNumber.NO_STORAGE_VOL
    pool.create()
    out = io.BytesIO()
    assert vol.download(out) == 2 and out.getvalue() == b"dd"
    # a directory that takes the file's place is refused as before
    os.unlink(vol.path)
    os.mkdir(vol.path)
    with pytest.raises(VirtError) as info:
        vol.download(io.BytesIO())
    assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED
    vol.delete()
    assert not os.path.exists(vol.path)


def test_default_chunks_are_large(pool: virt.StoragePool, tmp_path: Path) -> None:
    payload = os.urandom(9 * MiB + 5)
    vol = pool.create_volume(vol_xml("big.img", len(payload), allocation=0))
    progress: list[tuple[int, int | None]] = []
    assert vol.upload(io.BytesIO(payload), progress=lambda d, t: progress.append((d, t))) == len(payload)
    assert [d for d, _ in progress] == [8 * MiB, len(payload)]
    out = io.BytesIO()
    assert vol.download(out) == len(payload) and out.getvalue() == payload
