"""Host capabilities and domain capabilities of the QEMU driver (virt_qemu._caps)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import virt
from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._schema import validate
from virt_qemu import _caps

QEMU_X86 = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU_X86 is None, reason="qemu-system-x86_64 is not installed")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets an empty cache directory and an empty in-process memo."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    _caps.clear_memo()
    yield cache / "virt" / "qemu-caps"
    _caps.clear_memo()


class ProbeCounter:
    """Wraps ``probe_qmp``: counts the QEMU runs, optionally answering with canned replies."""

    def __init__(self, canned: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.canned = canned
        self.real = _caps.probe_qmp

    def __call__(self, binary: str, accel: str) -> list[dict[str, Any]]:
        self.calls.append((binary, accel))
        if self.canned is not None:
            return self.canned
        return self.real(binary, accel)


CANNED: list[dict[str, Any]] = [
    {"QMP": {"version": {}, "capabilities": []}},
    {"return": {}},
    {"id": "version", "return": {"qemu": {"major": 7, "minor": 2, "micro": 9}, "package": ""}},
    {"id": "machines", "return": [
        {"name": "pc-q35-7.2", "alias": "q35", "cpu-max": 288, "deprecated": False},
        {"name": "none", "cpu-max": 1},
        {"name": "pc-i440fx-7.2", "alias": "pc", "is-default": True, "cpu-max": 255, "deprecated": False},
        {"name": "pc-i440fx-1.4", "cpu-max": 255, "deprecated": True},
    ]},
    {"id": "cpus", "return": [
        {"name": "max", "unavailable-features": []},
        {"name": "qemu64-v1", "unavailable-features": []},
        {"name": "qemu64", "alias-of": "qemu64-v1", "unavailable-features": []},
        {"name": "Haswell", "unavailable-features": ["avx2"], "deprecated": False},
        {"name": "Icelake-Client", "unavailable-features": ["x"], "deprecated": True},
        {"name": "EPYC"},
    ]},
    {"return": {}},
]


def fake_binary(tmp_path: Path, name: str = "qemu-system-x86_64") -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return path


def guest_of(root: etree._Element, arch: str) -> etree._Element | None:
    for guest in root.findall("guest"):
        arch_el = guest.find("arch")
        if arch_el is not None and arch_el.get("name") == arch:
            return guest
    return None


def valid(text: str, schema: str) -> etree._Element:
    root = etree.fromstring(text.encode())
    validate(root, schema)
    return root


# ------------------------------------------------------------------------------------------
# <capabilities>


@needs_qemu
@pytest.mark.parametrize("kvm", [True, False])
def test_capabilities_validate_and_list_x86_64(monkeypatch: pytest.MonkeyPatch, kvm: bool) -> None:
    monkeypatch.setattr(_caps, "kvm_usable", lambda: kvm)
    text = _caps.capabilities_xml()
    root = valid(text, "capability")
    assert text.startswith("<capabilities>\n\n  <host>\n")
    guest = guest_of(root, "x86_64")
    assert guest is not None
    assert guest.findtext("os_type") == "hvm"
    arch = guest.find("arch")
    assert arch is not None
    assert arch.findtext("wordsize") == "64"
    assert arch.findtext("emulator") == QEMU_X86
    names = {m.text: m for m in arch.findall("machine")}
    assert names["pc"].get("canonical", "").startswith("pc-i440fx-")
    assert names["q35"].get("canonical", "").startswith("pc-q35-")
    assert names[names["pc"].get("canonical")].get("maxCpus") == "255"
    assert "none" not in names
    # the default machine comes first, its alias right after it
    assert [m.text for m in arch.findall("machine")[:2]] == [names["pc"].get("canonical"), "pc"]
    assert [d.get("type") for d in arch.findall("domain")] == (["qemu", "kvm"] if kvm else ["qemu"])
    features = [str(f.tag) for f in guest.findall("features/*")]
    assert features == ["acpi", "apic", "cpuselection", "deviceboot", "disksnapshot"]


@needs_qemu
def test_capabilities_i686_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_caps, "kvm_usable", lambda: True)
    root = valid(_caps.capabilities_xml(), "capability")
    guests = [g.get("name") for g in root.findall("guest/arch")]
    assert guests.index("i686") < guests.index("x86_64")  # libvirt's architecture order
    i686 = guest_of(root, "i686")
    assert i686 is not None
    assert i686.findtext("arch/wordsize") == "32"
    assert [str(f.tag) for f in i686.findall("features/*")][:2] == ["pae", "nonpae"]
    assert [d.get("type") for d in i686.findall("arch/domain")] == ["qemu", "kvm"]


@needs_qemu
def test_capabilities_host_facts() -> None:
    root = valid(_caps.capabilities_xml(), "capability")
    host = root.find("host")
    assert host is not None
    assert host.findtext("cpu/arch") == _caps.host_arch()
    topo = host.find("cpu/topology")
    assert topo is not None
    online = len(_caps.parse_cpuset(Path("/sys/devices/system/cpu/online").read_text()))
    assert int(topo.get("sockets", 0)) * int(topo.get("dies", 0)) * int(topo.get("cores", 0)) * \
        int(topo.get("threads", 0)) == online
    sizes = [int(p.get("size", 0)) for p in host.findall("cpu/pages")]
    assert sizes[0] == os.sysconf("SC_PAGE_SIZE") // 1024 and sizes == sorted(sizes)
    cells = host.find("topology/cells")
    assert cells is not None
    assert int(cells.get("num", 0)) == len(cells.findall("cell")) >= 1
    cpu_ids = [int(c.get("id", -1)) for c in cells.iter("cpu")]
    assert len(cpu_ids) == len(set(cpu_ids)) >= online
    assert host.findtext("secmodel/model") == "none"
    assert host.find("iommu") is not None
    assert [t.text for t in host.findall("migration_features/uri_transports/uri_transport")] == ["tcp", "rdma"]
    if Path("/etc/machine-id").exists() and not Path("/sys/class/dmi/id/product_uuid").exists():
        digits = Path("/etc/machine-id").read_text().strip()
        assert (host.findtext("uuid") or "").replace("-", "") == digits


def test_cpuset_round_trip() -> None:
    assert _caps.parse_cpuset("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert _caps.format_cpuset([11, 0, 1, 2, 3, 8, 10]) == "0-3,8,10-11"
    assert _caps.format_cpuset([4]) == "4"


def test_kvm_usable_is_about_opening_dev_kvm() -> None:
    expected = os.access("/dev/kvm", os.R_OK | os.W_OK)
    assert _caps.kvm_usable() is expected


# ------------------------------------------------------------------------------------------
# <domainCapabilities>


@needs_qemu
@pytest.mark.parametrize(("machine", "virttype", "kvm"), [
    (None, None, False), (None, "qemu", True), ("q35", "qemu", False), ("pc", "kvm", True),
    ("pc-q35-7.2", None, True),
])
def test_domain_capabilities_validate(monkeypatch: pytest.MonkeyPatch, machine: str | None,
                                      virttype: str | None, kvm: bool) -> None:
    monkeypatch.setattr(_caps, "kvm_usable", lambda: kvm)
    caps = _caps.emulator_caps(QEMU_X86 or "")
    if machine and caps.machine(machine) is None:
        pytest.skip(f"this QEMU has no machine {machine}")
    root = valid(_caps.domain_capabilities_xml(None, None, machine, virttype), "domaincaps")
    assert root.findtext("path") == QEMU_X86
    assert root.findtext("arch") == "x86_64"
    assert root.findtext("domain") == (virttype or ("kvm" if kvm else "qemu"))
    name = root.findtext("machine") or ""
    if machine in (None, "pc"):
        assert name.startswith("pc-i440fx-")
        assert root.find("vcpu").get("max") == "255"  # type: ignore[union-attr]
    else:
        assert name.startswith("pc-q35-")
        assert root.find("vcpu").get("max") == "288"  # type: ignore[union-attr]
    passthrough = root.find("cpu/mode[@name='host-passthrough']")
    assert passthrough is not None and passthrough.get("supported") == ("yes" if root.findtext("domain") == "kvm"
                                                                         else "no")
    models = [m.text for m in root.findall("cpu/mode[@name='custom']/model")]
    assert "qemu64" in models and "qemu64-v1" not in models and "max" not in models and "host" not in models
    buses = [v.text for v in root.findall("devices/disk/enum[@name='bus']/value")]
    assert set(buses) == {"virtio", "sata", "scsi", "ide"}
    assert [v.text for v in root.findall("devices/graphics/enum[@name='type']/value")] == ["vnc"]
    assert root.find("devices/hostdev").get("supported") == "no"  # type: ignore[union-attr]
    assert root.find("features/sev").get("supported") == "no"  # type: ignore[union-attr]


@needs_qemu
def test_domain_capabilities_kvm_refused_without_dev_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_caps, "kvm_usable", lambda: False)
    with pytest.raises(VirtError) as err:
        _caps.domain_capabilities_xml(None, "x86_64", None, "kvm")
    assert err.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert err.value.domain == ErrorDomain.QEMU
    assert "KVM is not supported" in err.value.message


@needs_qemu
@pytest.mark.parametrize(("args", "code"), [
    ((None, None, "no-such-machine", "qemu"), ErrorNumber.INVALID_ARG),
    ((None, None, None, "xen"), ErrorNumber.INVALID_ARG),
    ((None, "no-such-arch", None, "qemu"), ErrorNumber.INVALID_ARG),
    (("/usr/bin/qemu-system-x86_64", "aarch64", None, "qemu"), ErrorNumber.INVALID_ARG),
    (("/nonexistent/qemu-system-x86_64", None, None, "qemu"), ErrorNumber.SYSTEM_ERROR),
])
def test_domain_capabilities_errors(args: tuple[str | None, str | None, str | None, str | None],
                                    code: ErrorNumber) -> None:
    with pytest.raises(VirtError) as err:
        _caps.domain_capabilities_xml(*args)
    assert err.value.code == code


@needs_qemu
def test_domain_capabilities_i686_on_the_x86_64_binary() -> None:
    root = valid(_caps.domain_capabilities_xml(QEMU_X86, "i686", None, "qemu"), "domaincaps")
    assert root.findtext("arch") == "i686" and root.findtext("path") == QEMU_X86


def test_domain_capabilities_from_canned_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shape without QEMU: canned QMP replies for a fake binary."""
    binary = fake_binary(tmp_path)
    monkeypatch.setattr(_caps, "probe_qmp", ProbeCounter(CANNED))
    monkeypatch.setattr(_caps, "kvm_usable", lambda: False)
    root = valid(_caps.domain_capabilities_xml(str(binary), None, None, None), "domaincaps")
    assert root.findtext("machine") == "pc-i440fx-7.2" and root.findtext("domain") == "qemu"
    models = {m.text: (m.get("usable"), m.get("deprecated"), m.get("vendor"))
              for m in root.findall("cpu/mode[@name='custom']/model")}
    assert models == {
        "qemu64": ("yes", None, "unknown"),
        "Haswell": ("no", None, "Intel"),
        "Icelake-Client": ("no", "yes", "Intel"),
        "EPYC": ("unknown", None, "AMD"),
    }
    caps = _caps.emulator_caps(str(binary))
    assert [m.name for m in caps.machines] == ["pc-i440fx-7.2", "pc-q35-7.2", "pc-i440fx-1.4"]
    assert caps.version == (7, 2, 9)


@pytest.mark.skipif(not list(Path("/usr/share/qemu/firmware").glob("*.json")), reason="no firmware descriptors")
def test_loader_listing_when_the_driver_supports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = fake_binary(tmp_path)
    monkeypatch.setattr(_caps, "probe_qmp", ProbeCounter(CANNED))
    monkeypatch.setattr(_caps, "LOADER_SUPPORTED", True)
    root = valid(_caps.domain_capabilities_xml(str(binary), None, "q35", "qemu"), "domaincaps")
    loaders = [v.text for v in root.findall("os/loader/value")]
    if loaders:
        assert [v.text for v in root.findall("os/enum[@name='firmware']/value")] == ["bios", "efi"]
        assert all(path and os.path.exists(path) for path in loaders)
    monkeypatch.setattr(_caps, "LOADER_SUPPORTED", False)
    root = valid(_caps.domain_capabilities_xml(str(binary), None, "q35", "qemu"), "domaincaps")
    assert root.find("os/loader").get("supported") == "no"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------
# the probe cache


def test_cache_memo_file_and_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> None:
    binary = fake_binary(tmp_path)
    probe = ProbeCounter(CANNED)
    monkeypatch.setattr(_caps, "probe_qmp", probe)
    monkeypatch.setattr(_caps, "kvm_usable", lambda: False)

    first = _caps.emulator_caps(str(binary))
    assert probe.calls == [(str(binary), "tcg")]
    files = list(private_cache.glob("*.json"))
    assert len(files) == 1
    entry = json.loads(files[0].read_text())
    st = binary.stat()
    assert entry["binary"] == str(binary)
    assert (entry["mtime_ns"], entry["size"]) == (st.st_mtime_ns, st.st_size)
    assert entry["format"] == _caps.CACHE_FORMAT
    assert not list(private_cache.glob(".*.tmp"))  # written atomically, nothing left behind

    # memo, then the file after the memo is dropped: no QEMU
    assert _caps.emulator_caps(str(binary)) == first
    _caps.clear_memo()
    assert _caps.emulator_caps(str(binary)) == first
    assert len(probe.calls) == 1

    # a changed binary (new mtime) is probed again, also with the memo in place
    os.utime(binary, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    _caps.emulator_caps(str(binary))
    assert len(probe.calls) == 2
    # ... and so is one of another size
    binary.write_text("#!/bin/sh\nexit 2\n# longer\n")
    _caps.emulator_caps(str(binary))
    assert len(probe.calls) == 3

    # a corrupt or foreign cache file is ignored, not trusted
    _caps.clear_memo()
    files[0].write_text("{not json")
    _caps.emulator_caps(str(binary))
    assert len(probe.calls) == 4
    _caps.clear_memo()
    assert _caps.emulator_caps(str(binary)) is not None
    assert len(probe.calls) == 4


def test_cache_adds_kvm_models_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = fake_binary(tmp_path)
    probe = ProbeCounter(CANNED)
    monkeypatch.setattr(_caps, "probe_qmp", probe)
    monkeypatch.setattr(_caps, "kvm_usable", lambda: True)
    monkeypatch.setattr(_caps, "host_arch", lambda: "x86_64")
    _caps.domain_capabilities_xml(str(binary), None, None, "qemu")
    assert [a for _b, a in probe.calls] == ["tcg"]
    _caps.domain_capabilities_xml(str(binary), None, None, "kvm")
    _caps.domain_capabilities_xml(str(binary), None, None, None)
    _caps.clear_memo()
    _caps.domain_capabilities_xml(str(binary), None, None, "kvm")
    assert [a for _b, a in probe.calls] == ["tcg", "kvm"]


@needs_qemu
def test_real_probe_runs_once_then_comes_from_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ProbeCounter()
    monkeypatch.setattr(_caps, "probe_qmp", probe)
    first = _caps.capabilities_xml()
    runs = len(probe.calls)
    assert runs >= 1
    assert _caps.capabilities_xml() == first
    _caps.clear_memo()
    assert _caps.capabilities_xml() == first
    assert len(probe.calls) == runs

    def no_qemu(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("QEMU was run although the cache is fresh")

    _caps.clear_memo()
    monkeypatch.setattr(subprocess, "run", no_qemu)
    monkeypatch.setattr(_caps, "probe_qmp", probe.real)
    assert _caps.capabilities_xml() == first


@needs_qemu
def test_probe_failure_is_a_clear_error(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path)
    with pytest.raises(VirtError) as err:
        _caps.emulator_caps(str(binary))
    assert err.value.code == ErrorNumber.OPERATION_FAILED
    assert str(binary) in err.value.message


# ------------------------------------------------------------------------------------------
# through the public API


@needs_qemu
def test_public_api(tmp_path: Path) -> None:
    conn = virt.open(f"qemu:///embed?root={tmp_path / 'embed'}")
    try:
        caps = conn.capabilities()
        valid(caps, "capability")
        assert "<emulator>" + (QEMU_X86 or "") + "</emulator>" in caps
        domcaps = conn.domain_capabilities(virttype="qemu")
        assert valid(domcaps, "domaincaps").findtext("domain") == "qemu"
        q35 = valid(conn.domain_capabilities(machine="q35", virttype="qemu"), "domaincaps")
        assert (q35.findtext("machine") or "").startswith("pc-q35-")
    finally:
        conn.close()
