"""The Xen lab builder's pure parts (no download, no boot): the lab itself runs in `nox -s xen-lab`."""

from __future__ import annotations

import lzma
import shutil
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import xenlab


def fake_bzimage(payload: bytes, setup_sects: int = 4) -> bytes:
    head = bytearray((setup_sects + 1) * 512)
    head[0x1F1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", head, 0x248, 16, len(payload))
    return bytes(head) + b"\0" * 16 + payload + b"trailing"


def test_vmlinux_from_an_xz_bzimage() -> None:
    elf = b"\x7fELF" + bytes(range(200))
    assert xenlab.vmlinux_of(fake_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ))) == elf


def test_vmlinux_refuses_what_is_not_a_kernel() -> None:
    with pytest.raises(xenlab.XenLabError, match="not a bzImage"):
        xenlab.vmlinux_of(b"\0" * 4096)
    with pytest.raises(xenlab.XenLabError, match="unknown kernel compression"):
        xenlab.vmlinux_of(fake_bzimage(b"BZh91AY&SY"))
    with pytest.raises(xenlab.XenLabError, match="not an ELF"):
        xenlab.vmlinux_of(fake_bzimage(lzma.compress(b"MZ not elf", format=lzma.FORMAT_XZ)))


def test_elf_needed_reads_dt_needed() -> None:
    true = Path(shutil.which("true") or "/bin/true").resolve()
    assert "libc.so.6" in xenlab.elf_needed(true.read_bytes())
    assert xenlab.elf_needed(b"#!/bin/sh\n") == []


def test_check_closure_names_what_is_missing(tmp_path: Path) -> None:
    true = Path(shutil.which("true") or "/bin/true").resolve()
    prog = tmp_path / "usr/bin/true"
    prog.parent.mkdir(parents=True)
    prog.write_bytes(true.read_bytes())
    with pytest.raises(xenlab.XenLabError, match=r"libc\.so\.6 \(needed by true\)"):
        xenlab.check_closure(tmp_path, [prog])


def test_pv_config_and_uri() -> None:
    cfg = xenlab.pv_config("g")
    assert 'name = "g"' in cfg and xenlab.DOMU_KERNEL in cfg and "console=hvc0" in cfg
    lab = xenlab.XenLab(xenlab.Lab(Path("/x/xen"), Path("/x/k"), Path("/x/i")))
    try:
        lab.port, lab.helper_port, lab.ssh_port = 1234, 1235, 1236
        assert lab.toolstack == "tcp:127.0.0.1:1234"
        assert lab.remote_uri().startswith("xen+ext:///system?command=")
        argv = lab.argv()
        assert argv[argv.index("-initrd") + 1].startswith("/x/k console=hvc0")
        assert "hostfwd=tcp:127.0.0.1:1235-:7778" in argv[argv.index("-netdev") + 1]
        assert "hostfwd=tcp:127.0.0.1:1236-:22" in argv[argv.index("-netdev") + 1]
        assert argv[argv.index("-cpu") + 1] == "qemu64,+rdrand,+svm,+npt"  # Xen gets HAP: PVH guests run
    finally:
        lab.close()


def test_ssh_uri_names_the_keys(tmp_path: Path) -> None:
    keys = tmp_path / "lab" / "ssh"
    keys.mkdir(parents=True)
    (keys / "host_key.pub").write_text("ssh-ed25519 AAAAC3Nza xenlab-dom0\n")
    lab = xenlab.XenLab(xenlab.Lab(tmp_path / "lab" / "xen", Path("/x/k"), Path("/x/i")), workdir=tmp_path)
    lab.ssh_port = 2222
    uri = lab.ssh_uri()
    assert uri.startswith("xen+ssh://root@127.0.0.1:2222/system?keyfile=")
    assert f"keyfile={keys}/client_key&known_hosts={tmp_path}/known_hosts" in uri
    assert (tmp_path / "known_hosts").read_text() == "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nza\n"
