"""The QEMU driver over ``qemu+ssh://``: real QEMU processes (TCG) on the far side of a
private sshd, driven through the helper: the lifecycle of a q35 domain with no devices, the
conformance suite, and volume upload/download (bytes, chunks of several MiB) through the
host storage plugin."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import virt
from remote_testlib import Sshd
from virt import DomainState, ErrorNumber, VirtError
from virt.testing import DomainXML, DriverConformance, generic_domain_xml

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="requires qemu-system-x86_64 (Debian package qemu-system-x86)")

Q35 = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>"""


def kill_leftovers(root: Path) -> None:
    """No QEMU a test started may outlive it (by the pids in the driver's state files)."""
    for status in (root / "run" / "qemu").glob("*.json"):
        try:
            pid = int(json.loads(status.read_text()).get("pid", 0))
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu" in cmdline:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    top = tmp_path / "embed"
    top.mkdir()
    yield top
    kill_leftovers(top)


def test_lifecycle_over_ssh(sshd: Sshd, root: Path) -> None:
    with virt.open(sshd.uri("qemu", "/embed", root=root)) as conn:
        assert conn.type() == "QEMU"
        dom = conn.define_domain(Q35.format(name="remote-q35"))
        try:
            assert dom.state()[0] == DomainState.SHUTOFF
            dom.start()
            assert dom.state()[0] == DomainState.RUNNING and dom.id > 0
            dom.suspend()
            assert dom.state()[0] == DomainState.PAUSED
            dom.resume()
            assert dom.state()[0] == DomainState.RUNNING
            listed = {d.name: info.state for d, info in conn.list_domains_info()}
            assert listed == {"remote-q35": DomainState.RUNNING}
            dom.destroy()
            assert dom.state()[0] == DomainState.SHUTOFF
        finally:
            if dom.is_active():
                dom.destroy()
            dom.undefine()
        with pytest.raises(VirtError) as info:
            conn.lookup_domain("remote-q35")
        assert info.value.code == ErrorNumber.NO_DOMAIN


def test_volume_upload_and_download_over_ssh(sshd: Sshd, root: Path, tmp_path: Path) -> None:
    pytest.importorskip("virt_host", reason="requires the virt-host distribution (host storage)")
    with virt.open(sshd.uri("qemu", "/embed", root=root)) as conn:
        pool = conn.define_storage_pool(f"<pool type='dir'><name>images</name><target><path>{root / 'images'}"
                                        "</path></target></pool>")
        pool.build()
        pool.start()
        size = 20 * 1024 * 1024  # several chunks, each a multi-MiB frame
        vol = pool.create_volume(f"<volume><name>blob.raw</name><capacity>{size}</capacity>"
                                 "<target><format type='raw'/></target></volume>")
        data = os.urandom(size)
        source = tmp_path / "in.bin"
        source.write_bytes(data)
        progress: list[int] = []
        assert vol.upload(str(source), progress=lambda done, total: progress.append(done)) == size
        assert progress[-1] == size
        target = tmp_path / "out.bin"
        assert vol.download(str(target)) == size
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
        vol.delete()
        pool.destroy()
        pool.undefine()


@pytest.fixture(scope="class")
def embed_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    top = tmp_path_factory.mktemp("qemu-embed-remote")
    yield top
    kill_leftovers(top)


class TestQemuConformanceOverSsh(DriverConformance):
    event_timeout = 15.0

    @pytest.fixture
    def uri(self, sshd: Sshd, embed_root: Path) -> str:
        return sshd.uri("qemu", "/embed", root=embed_root)

    @pytest.fixture(autouse=True)
    def _keep_peer(self, uri: str) -> Iterator[None]:
        with virt.open(uri):
            yield

    @pytest.fixture
    def domain_xml(self) -> DomainXML:
        return generic_domain_xml("qemu")
