"""Host and domain capabilities of the QEMU driver (``virsh capabilities`` / ``virsh domcapabilities``).

Two kinds of facts go into the documents:

* **host facts** (CPU vendor and topology, NUMA cells, page sizes, the machine UUID) are read
  from ``/proc`` and ``/sys`` every time: that costs well under a millisecond;
* **emulator facts** (machine types with their maximum vCPU counts, CPU models and whether they
  can run under an accelerator) come from starting the QEMU binary once, paused with
  ``-machine none``, and asking it over QMP on stdio.  A probe costs ~100-200 ms, so its result
  is kept in memory and in ``$XDG_CACHE_HOME/virt/qemu-caps/<sha256 of the binary path>.json``
  (written atomically).  An entry is used only while the binary's path, mtime and size, and this
  module's format version, are those it was made from: like libvirt's QEMU capabilities cache,
  upgrading QEMU invalidates it.  CPU models are probed per accelerator (``tcg`` always, ``kvm``
  the first time a KVM document is asked for) and added to the same entry.

What the documents claim is what this driver accepts (see ``_command.py``), not everything QEMU
could do: e.g. no ``<hostdev>``, ``<filesystem>`` or ``<tpm>``, VNC as the only graphics.  The
:data:`DRIVER_SUPPORT` table holds those answers in one place.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._state_files import atomic_write
from virt.xml._base import Element, format_element, sub
from virt.xml.capabilities import CapabilitiesDocument

__all__ = [
    "DRIVER_SUPPORT",
    "EmulatorCaps",
    "Machine",
    "CpuModel",
    "cache_dir",
    "capabilities_xml",
    "domain_capabilities_xml",
    "emulator_caps",
    "kvm_usable",
]

#: bumped whenever the cache entry's layout or the probe's meaning changes
CACHE_FORMAT: Final = 1
#: seconds a probe may take before the QEMU process is killed
PROBE_TIMEOUT: Final = 30.0

#: What the driver's command-line builder accepts, as domcapabilities enums.  Keep in step with
#: ``_command.py``; an empty tuple makes the element ``supported='no'``.
DRIVER_SUPPORT: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    # libvirt 9.0 lists the bus enum without regard to the machine: 'ide' stays on q35 too,
    # although a q35 machine has no IDE controller (the driver then refuses the disk).
    "disk": {"diskDevice": ("disk", "cdrom"), "bus": ("ide", "scsi", "virtio", "sata")},
    "graphics": {"type": ("vnc",)},
    "video": {"modelType": ("vga", "cirrus", "qxl", "virtio", "none", "bochs")},
    "hostdev": {},
    "rng": {"model": ("virtio",), "backendModel": ("random", "builtin")},
    "filesystem": {},
    "tpm": {},
    "redirdev": {},
    "channel": {"type": ("pty", "unix")},
}
#: ``<os><loader>`` / ``<os firmware=...>``: not accepted by the driver yet.  When it is, set
#: this and the loaders found in QEMU's firmware descriptors are listed.
LOADER_SUPPORTED: bool = False

# QEMU binary suffix -> the libvirt architectures it serves, in libvirt's virArch order
_ARCHES: Final[tuple[tuple[str, str, int], ...]] = (
    # (libvirt arch, qemu-system-<suffix>, wordsize)
    ("alpha", "alpha", 64),
    ("armv6l", "arm", 32),
    ("armv7l", "arm", 32),
    ("aarch64", "aarch64", 64),
    ("cris", "cris", 32),
    ("i686", "i386", 32),
    ("m68k", "m68k", 32),
    ("microblaze", "microblaze", 32),
    ("microblazeel", "microblazeel", 32),
    ("mips", "mips", 32),
    ("mipsel", "mipsel", 32),
    ("mips64", "mips64", 64),
    ("mips64el", "mips64el", 64),
    ("parisc", "hppa", 32),
    ("ppc", "ppc", 32),
    ("ppc64", "ppc64", 64),
    ("ppc64le", "ppc64", 64),
    ("riscv32", "riscv32", 32),
    ("riscv64", "riscv64", 64),
    ("s390x", "s390x", 64),
    ("sh4", "sh4", 32),
    ("sh4eb", "sh4eb", 32),
    ("sparc", "sparc", 32),
    ("sparc64", "sparc64", 64),
    ("x86_64", "x86_64", 64),
    ("xtensa", "xtensa", 32),
    ("xtensaeb", "xtensaeb", 32),
)
_ARCH_INFO: Final[dict[str, tuple[str, int]]] = {arch: (suffix, size) for arch, suffix, size in _ARCHES}

#: guest architectures KVM runs on a host of the key's architecture
_KVM_GUESTS: Final[dict[str, frozenset[str]]] = {
    "x86_64": frozenset({"x86_64", "i686"}),
    "i686": frozenset({"i686"}),
    "aarch64": frozenset({"aarch64"}),
    "ppc64": frozenset({"ppc64", "ppc64le"}),
    "ppc64le": frozenset({"ppc64", "ppc64le"}),
    "s390x": frozenset({"s390x"}),
}

_X86: Final = frozenset({"x86_64", "i686"})
_VENDORS: Final[dict[str, str]] = {
    "GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon", "CentaurHauls": "VIA",
}
_INTEL_MODELS: Final = re.compile(
    r"^(n270|coreduo|core2duo|Conroe|Penryn|Nehalem|Westmere|SandyBridge|IvyBridge|Haswell|Broadwell|"
    r"Skylake|Cascadelake|Cooperlake|Icelake|Snowridge|KnightsMill|SapphireRapids|Denverton|GraniteRapids)"
)
_AMD_MODELS: Final = re.compile(r"^(athlon|phenom|Opteron_|EPYC)")
_HIDDEN_MODELS: Final = frozenset({"host", "max", "base"})
_VERSIONED: Final = re.compile(r"-v\d+$")


def _err(code: ErrorNumber, detail: str) -> VirtError:
    return VirtError(code, detail, domain=ErrorDomain.QEMU)


# ------------------------------------------------------------------------------------------
# emulator facts


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    max_cpus: int
    alias: str | None = None
    deprecated: bool = False
    default: bool = False


@dataclass(frozen=True, slots=True)
class CpuModel:
    name: str
    #: None: QEMU did not say (no ``unavailable-features``)
    usable: bool | None
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class EmulatorCaps:
    """What one QEMU binary said about itself."""

    binary: str
    version: tuple[int, int, int]
    #: default machine first, then in QEMU's order (as libvirt keeps them)
    machines: tuple[Machine, ...]
    #: accelerator -> CPU models in QEMU's order; an accelerator QEMU could not start is absent
    cpu_models: Mapping[str, tuple[CpuModel, ...]]

    def machine(self, name: str) -> Machine | None:
        for machine in self.machines:
            if name in (machine.name, machine.alias):
                return machine
        return None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "virt" / "qemu-caps"


def _cache_file(binary: str) -> Path:
    return cache_dir() / (hashlib.sha256(binary.encode()).hexdigest() + ".json")


def _stamp(binary: str) -> tuple[int, int]:
    st = os.stat(binary)
    return st.st_mtime_ns, st.st_size


_memo: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
_memo_lock = threading.Lock()


def probe_qmp(binary: str, accel: str) -> list[dict[str, Any]]:
    """Start ``binary`` paused with no machine under ``accel`` and return its QMP replies.

    Replies (and events) are returned in order; the commands carry ids ``version``,
    ``machines`` and ``cpus``.  The process is gone when this returns (``quit``, or killed on
    timeout)."""
    commands = [
        {"execute": "qmp_capabilities"},
        {"execute": "query-version", "id": "version"},
        {"execute": "query-machines", "id": "machines"},
        {"execute": "query-cpu-definitions", "id": "cpus"},
        {"execute": "quit"},
    ]
    argv = [binary, "-S", "-no-user-config", "-nodefaults", "-display", "none", "-machine", "none",
            "-accel", accel, "-qmp", "stdio"]
    env = dict(os.environ, LC_ALL="C")
    try:
        proc = subprocess.run(argv, input="".join(json.dumps(c) + "\n" for c in commands), capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise _err(ErrorNumber.OPERATION_FAILED, f"probing '{binary}' took longer than {PROBE_TIMEOUT:g}s") from None
    except OSError as exc:
        raise _err(ErrorNumber.SYSTEM_ERROR, f"cannot run QEMU binary {binary}: {exc.strerror}") from None
    replies: list[dict[str, Any]] = []
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                replies.append(value)
    if not any(r.get("id") == "machines" and "return" in r for r in replies):
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise _err(ErrorNumber.OPERATION_FAILED, f"cannot probe '{binary}' with accel '{accel}': {tail[0]}")
    return replies


def _reply(replies: Iterable[Mapping[str, Any]], ident: str) -> Any:
    for reply in replies:
        if reply.get("id") == ident and "return" in reply:
            return reply["return"]
    return None


def _probe_cpus(binary: str, accel: str, replies: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
    """CPU models as cache records, or None when ``accel`` cannot start (e.g. no KVM)."""
    if replies is None:
        try:
            replies = probe_qmp(binary, accel)
        except VirtError:
            return None
    defs = _reply(replies, "cpus") or []
    out: list[dict[str, Any]] = []
    for d in defs:
        if not isinstance(d, dict) or "name" not in d:
            continue
        name = str(d["name"])
        # as libvirt: no versioned names ("qemu64-v1", "EPYC-v3"), no QEMU pseudo-models
        # ('host' and 'max' are CPU modes here, 'base' is no CPU)
        if name in _HIDDEN_MODELS or _VERSIONED.search(name):
            continue
        missing = d.get("unavailable-features")
        out.append({"name": name, "usable": None if missing is None else not missing,
                    "deprecated": bool(d.get("deprecated"))})
    return out


def _probe(binary: str) -> dict[str, Any]:
    replies = probe_qmp(binary, "tcg")
    version = _reply(replies, "version") or {}
    q = version.get("qemu", {}) if isinstance(version, dict) else {}
    machines: list[dict[str, Any]] = []
    for m in _reply(replies, "machines") or []:
        if not isinstance(m, dict) or m.get("name") in (None, "none"):
            continue  # libvirt leaves out the 'none' machine
        record = {"name": str(m["name"]), "max_cpus": int(m.get("cpu-max", 1)), "alias": m.get("alias"),
                  "deprecated": bool(m.get("deprecated")), "default": bool(m.get("is-default"))}
        if record["default"]:
            machines.insert(0, record)
        else:
            machines.append(record)
    return {
        "format": CACHE_FORMAT,
        "binary": binary,
        "version": [int(q.get("major", 0)), int(q.get("minor", 0)), int(q.get("micro", 0))],
        "machines": machines,
        "cpu_models": {"tcg": _probe_cpus(binary, "tcg", replies)},
    }


def _load_cached(binary: str, stamp: tuple[int, int]) -> dict[str, Any] | None:
    try:
        data = json.loads(_cache_file(binary).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("binary") != binary:
        return None
    if data.get("mtime_ns") != stamp[0] or data.get("size") != stamp[1]:
        return None
    return data


def _store(binary: str, stamp: tuple[int, int], data: dict[str, Any]) -> None:
    data["mtime_ns"], data["size"] = stamp
    path = _cache_file(binary)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o644)


def _raw_caps(binary: str, accels: Sequence[str] = ()) -> dict[str, Any]:
    try:
        stamp = _stamp(binary)
    except OSError as exc:
        raise _err(ErrorNumber.SYSTEM_ERROR, f"Cannot check QEMU binary {binary}: {exc.strerror}") from None
    with _memo_lock:
        hit = _memo.get(binary)
        data = hit[1] if hit is not None and hit[0] == stamp else None
        dirty = False
        if data is None:
            data = _load_cached(binary, stamp)
        if data is None:
            data = _probe(binary)
            dirty = True
        for accel in accels:
            if accel not in data["cpu_models"]:
                data["cpu_models"][accel] = _probe_cpus(binary, accel)
                dirty = True
        if dirty:
            _store(binary, stamp, data)
        _memo[binary] = (stamp, data)
        return data


def emulator_caps(binary: str, accels: Sequence[str] = ()) -> EmulatorCaps:
    """The probed facts of ``binary`` (from memory, the cache file, or QEMU itself).

    ``accels`` names accelerators whose CPU model usability is wanted besides ``tcg``."""
    data = _raw_caps(binary, accels)
    version = tuple(data["version"])
    return EmulatorCaps(
        binary=binary,
        version=(version[0], version[1], version[2]),
        machines=tuple(Machine(m["name"], m["max_cpus"], m.get("alias"), m["deprecated"], m["default"])
                       for m in data["machines"]),
        cpu_models={accel: tuple(CpuModel(c["name"], c["usable"], c["deprecated"]) for c in models)
                    for accel, models in data["cpu_models"].items() if models is not None},
    )


def clear_memo() -> None:
    """Forget the in-process copies (the cache files stay)."""
    with _memo_lock:
        _memo.clear()


# ------------------------------------------------------------------------------------------
# host facts


def kvm_usable() -> bool:
    """Whether ``/dev/kvm`` can be opened read-write by this process."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def host_arch() -> str:
    machine = platform.machine()
    if re.fullmatch(r"i[3-6]86", machine):
        return "i686"
    return {"amd64": "x86_64", "arm64": "aarch64", "armv7l": "armv7l"}.get(machine.lower(), machine)


def find_binary(arch: str) -> str | None:
    """The ``qemu-system-*`` binary serving ``arch`` (an i686 guest may use the x86_64 one)."""
    info = _ARCH_INFO.get(arch)
    if info is None:
        return None
    found = shutil.which(f"qemu-system-{info[0]}")
    if found is None and arch == "i686":
        found = shutil.which("qemu-system-x86_64")
    return found


def _read(path: str | Path) -> str | None:
    try:
        with open(path) as src:
            return src.read().strip()
    except OSError:
        return None


def _int_file(path: str | Path, default: int = 0) -> int:
    text = _read(path)
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def parse_cpuset(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def format_cpuset(cpus: Iterable[int]) -> str:
    ordered = sorted(set(cpus))
    ranges: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(ranges)


def _uuid() -> str | None:
    """The host UUID: SMBIOS first (libvirt's default source), then /etc/machine-id."""
    for path in ("/sys/devices/virtual/dmi/id/product_uuid", "/sys/class/dmi/id/product_uuid"):
        text = (_read(path) or "").lower()
        digits = text.replace("-", "")
        if re.fullmatch(r"[0-9a-f]{32}", digits) and len(set(digits)) > 1:
            return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    digits = (_read("/etc/machine-id") or "").lower()
    if re.fullmatch(r"[0-9a-f]{32}", digits):
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    return None


def _cpuinfo() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as src:
            for line in src:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, value = line.partition(":")
                out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


@dataclass(frozen=True, slots=True)
class _Cpu:
    id: int
    online: bool
    socket: int
    die: int
    core: int
    siblings: str


def _cpu(n: int) -> _Cpu:
    base = f"/sys/devices/system/cpu/cpu{n}"
    online = _int_file(f"{base}/online", 1) == 1  # cpu0 usually has no 'online' switch
    topo = f"{base}/topology"
    if not online or not os.path.isdir(topo):
        return _Cpu(n, online, 0, 0, n, str(n))
    return _Cpu(n, True, _int_file(f"{topo}/physical_package_id"), max(_int_file(f"{topo}/die_id"), 0),
                _int_file(f"{topo}/core_id", n), _read(f"{topo}/thread_siblings_list") or str(n))


def _present_cpus() -> list[int]:
    text = _read("/sys/devices/system/cpu/present")
    if text:
        return parse_cpuset(text)
    return list(range(os.cpu_count() or 1))


def _page_sizes() -> list[int]:
    """KiB sizes: the base page, then the huge page sizes, ascending."""
    sizes = {os.sysconf("SC_PAGE_SIZE") // 1024}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/sys/kernel/mm/hugepages"):
            m = re.fullmatch(r"hugepages-(\d+)kB", entry)
            if m:
                sizes.add(int(m.group(1)))
    return sorted(sizes)


def _host_cpu(host: Element, arch: str, cpus: list[_Cpu], pages: list[int]) -> None:
    cpu = sub(host, "cpu")
    sub(cpu, "arch", text=arch)
    info = _cpuinfo() if arch in _X86 else {}
    if arch in _X86:
        vendor = _VENDORS.get(info.get("vendor_id", ""))
        if vendor:
            sub(cpu, "vendor", text=vendor)
        with contextlib.suppress(ValueError):
            microcode = int(info.get("microcode", ""), 0)
            if microcode > 0:
                sub(cpu, "microcode", {"version": str(microcode)})
        with contextlib.suppress(ValueError):
            family, model, stepping = (int(info.get(k, "")) for k in ("cpu family", "model", "stepping"))
            if family > 0:
                sub(cpu, "signature", {"family": str(family), "model": str(model), "stepping": str(stepping)})
    online = [c for c in cpus if c.online]
    if online:
        first = online[0]
        sockets = len({c.socket for c in online})
        dies = len({c.die for c in online if c.socket == first.socket})
        cores = len({c.core for c in online if c.socket == first.socket and c.die == first.die})
        threads = len(parse_cpuset(first.siblings))
        sub(cpu, "topology", {"sockets": str(sockets), "dies": str(dies), "cores": str(cores),
                              "threads": str(threads)})
    if arch in _X86:
        m = re.search(r"(\d+) bits physical", info.get("address sizes", ""))
        if m:
            sub(cpu, "maxphysaddr", {"mode": "emulate", "bits": m.group(1)})
    for size in pages:
        sub(cpu, "pages", {"unit": "KiB", "size": str(size)})


def _node_ids() -> list[int]:
    text = _read("/sys/devices/system/node/online")
    return parse_cpuset(text) if text else []


def _node_memory_kib(node: int) -> int | None:
    text = _read(f"/sys/devices/system/node/node{node}/meminfo") or ""
    m = re.search(r"MemTotal:\s+(\d+)\s*kB", text)
    return int(m.group(1)) if m else None


def _topology(host: Element, cpus: list[_Cpu], pages: list[int]) -> None:
    nodes = _node_ids()
    by_id = {c.id: c for c in cpus}
    cells: list[tuple[int, int | None, dict[int, int], list[int], list[int]]] = []
    if nodes:
        for node in nodes:
            base = f"/sys/devices/system/node/node{node}"
            huge = {size: _int_file(f"{base}/hugepages/hugepages-{size}kB/nr_hugepages") for size in pages[1:]}
            distances = [int(d) for d in (_read(f"{base}/distance") or "").split()]
            members = parse_cpuset(_read(f"{base}/cpulist") or "")
            cells.append((node, _node_memory_kib(node), huge, distances, members))
    else:  # no NUMA in the kernel: one cell with everything, as libvirt shows it
        meminfo = _read("/proc/meminfo") or ""
        m = re.search(r"MemTotal:\s+(\d+)\s*kB", meminfo)
        huge = {size: _int_file(f"/sys/kernel/mm/hugepages/hugepages-{size}kB/nr_hugepages") for size in pages[1:]}
        cells.append((0, int(m.group(1)) if m else None, huge, [], [c.id for c in cpus]))
    topology = sub(host, "topology")
    cells_el = sub(topology, "cells", {"num": str(len(cells))})
    for node, memory, huge, distances, members in cells:
        cell = sub(cells_el, "cell", {"id": str(node)})
        if memory is not None:
            sub(cell, "memory", {"unit": "KiB"}, str(memory))
            if pages:
                base_pages = max(memory - sum(size * n for size, n in huge.items()), 0) // pages[0]
                sub(cell, "pages", {"unit": "KiB", "size": str(pages[0])}, str(base_pages))
                for size, count in huge.items():
                    sub(cell, "pages", {"unit": "KiB", "size": str(size)}, str(count))
        if distances and len(distances) == len(nodes):
            dist_el = sub(cell, "distances")
            for other, value in zip(nodes, distances, strict=True):
                sub(dist_el, "sibling", {"id": str(other), "value": str(value)})
        cpus_el = sub(cell, "cpus", {"num": str(len(members))})
        for n in members:
            c = by_id.get(n) or _cpu(n)
            if c.online:
                sub(cpus_el, "cpu", {"id": str(n), "socket_id": str(c.socket), "die_id": str(c.die),
                                     "core_id": str(c.core), "siblings": format_cpuset(parse_cpuset(c.siblings))})
            else:
                sub(cpus_el, "cpu", {"id": str(n)})


def _iommu() -> bool:
    try:
        return any(os.scandir("/sys/kernel/iommu_groups"))
    except OSError:
        return False


def _host(root: Element) -> str:
    arch = host_arch()
    host = sub(root, "host")
    uuid = _uuid()
    if uuid:
        sub(host, "uuid", text=uuid)
    cpus = [_cpu(n) for n in _present_cpus()]
    pages = _page_sizes()
    _host_cpu(host, arch, cpus, pages)
    sub(host, "power_management")
    sub(host, "iommu", {"support": "yes" if _iommu() else "no"})
    migration = sub(host, "migration_features")
    sub(migration, "live")
    transports = sub(migration, "uri_transports")
    for name in ("tcp", "rdma"):
        sub(transports, "uri_transport", text=name)
    _topology(host, cpus, pages)
    secmodel = sub(host, "secmodel")
    sub(secmodel, "model", text="none")
    sub(secmodel, "doi", text="0")
    return arch


# ------------------------------------------------------------------------------------------
# <capabilities>


def _guest_features(guest: Element, arch: str) -> None:
    features = sub(guest, "features")
    if arch == "i686":
        sub(features, "pae")
        sub(features, "nonpae")
    if arch in _X86:
        sub(features, "acpi", {"default": "on", "toggle": "yes"})
        sub(features, "apic", {"default": "on", "toggle": "no"})
    elif arch == "aarch64":
        sub(features, "acpi", {"default": "on", "toggle": "yes"})
    sub(features, "cpuselection")
    sub(features, "deviceboot")
    sub(features, "disksnapshot", {"default": "on", "toggle": "no"})


def _guests(root: Element, hostarch: str, kvm: bool) -> None:
    kvm_arches = _KVM_GUESTS.get(hostarch, frozenset()) if kvm else frozenset()
    for arch, _suffix, wordsize in _ARCHES:
        binary = find_binary(arch)
        if binary is None:
            continue
        caps = emulator_caps(binary)
        guest = sub(root, "guest")
        sub(guest, "os_type", text="hvm")
        arch_el = sub(guest, "arch", {"name": arch})
        sub(arch_el, "wordsize", text=str(wordsize))
        sub(arch_el, "emulator", text=binary)
        for machine in caps.machines:
            for name, canonical in ((machine.name, None), (machine.alias, machine.name)):
                if name is None:
                    continue
                attrs = {"canonical": canonical} if canonical else {}
                attrs["maxCpus"] = str(machine.max_cpus)
                if machine.deprecated:
                    attrs["deprecated"] = "yes"
                sub(arch_el, "machine", attrs, name)
        sub(arch_el, "domain", {"type": "qemu"})
        if arch in kvm_arches:
            sub(arch_el, "domain", {"type": "kvm"})
        _guest_features(guest, arch)


def capabilities_xml() -> str:
    """``virConnectGetCapabilities`` for the QEMU driver: the host, then one guest per emulator."""
    root = etree.Element("capabilities")
    hostarch = _host(root)
    _guests(root, hostarch, kvm_usable())
    return CapabilitiesDocument(root).to_string()


# ------------------------------------------------------------------------------------------
# <domainCapabilities>


def _enum(parent: Element, name: str, values: Iterable[str]) -> None:
    el = sub(parent, "enum", {"name": name})
    for value in values:
        sub(el, "value", text=value)


def _firmware_descriptors() -> list[dict[str, Any]]:
    """QEMU's firmware descriptors (docs/interop/firmware.json), user and /etc ones overriding by name."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    found: dict[str, Path] = {}
    for directory in ("/usr/share/qemu/firmware", "/etc/qemu/firmware", f"{config}/qemu/firmware"):
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if entry.name.endswith(".json"):
                    found[entry.name] = Path(entry.path)
    out: list[dict[str, Any]] = []
    for name in sorted(found):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(found[name].read_text())
            if isinstance(data, dict):
                out.append(data)
    return out


def firmware_loaders(arch: str, machine: str) -> tuple[list[str], bool]:
    """Executables of UEFI firmware for ``arch``/``machine`` in descriptor priority order, and
    whether one of them does Secure Boot."""
    paths: list[str] = []
    secure = False
    for desc in _firmware_descriptors():
        if "uefi" not in desc.get("interface-types", ()):
            continue
        mapping = desc.get("mapping", {})
        path = mapping.get("executable", {}).get("filename") if mapping.get("device") == "flash" \
            else mapping.get("filename")
        if not isinstance(path, str) or not os.path.exists(path) or path in paths:
            continue
        if not any(t.get("architecture") == arch and any(fnmatch.fnmatchcase(machine, pattern)
                                                          for pattern in t.get("machines", ()))
                   for t in desc.get("targets", ()) if isinstance(t, dict)):
            continue
        paths.append(path)
        secure = secure or "secure-boot" in desc.get("features", ())
    return paths, secure


def _os(root: Element, arch: str, machine: str) -> None:
    os_el = sub(root, "os", {"supported": "yes"})
    loaders, secure = firmware_loaders(arch, machine) if LOADER_SUPPORTED else ([], False)
    _enum(os_el, "firmware", (["bios"] if arch in _X86 else []) + (["efi"] if loaders else []))
    if not loaders:
        sub(os_el, "loader", {"supported": "no"})
        return
    loader = sub(os_el, "loader", {"supported": "yes"})
    for path in loaders:
        sub(loader, "value", text=path)
    _enum(loader, "type", ("rom", "pflash"))
    _enum(loader, "readonly", ("yes", "no"))
    _enum(loader, "secure", ("yes", "no") if secure and machine.startswith("pc-q35") else ("no",))


def _model_vendor(name: str) -> str:
    if _INTEL_MODELS.match(name):
        return "Intel"
    if _AMD_MODELS.match(name):
        return "AMD"
    if name.startswith("Dhyana"):
        return "Hygon"
    return "unknown"


def _cpu_modes(root: Element, caps: EmulatorCaps, arch: str, virttype: str) -> None:
    cpu = sub(root, "cpu")
    host_pt = sub(cpu, "mode", {"name": "host-passthrough", "supported": "yes" if virttype == "kvm" else "no"})
    if virttype == "kvm":
        _enum(host_pt, "hostPassthroughMigratable", ("on",))
    maximum = sub(cpu, "mode", {"name": "maximum", "supported": "yes"})
    _enum(maximum, "maximumMigratable", ("on",))
    # the driver runs host-model as QEMU's 'host' (KVM) or 'max' (TCG) CPU; no model is named
    sub(cpu, "mode", {"name": "host-model", "supported": "yes"})
    models = caps.cpu_models.get("kvm" if virttype == "kvm" else "tcg")
    if models is None:  # the accelerator did not start under QEMU: usability unknown
        models = tuple(CpuModel(m.name, None, m.deprecated) for m in caps.cpu_models.get("tcg", ()))
    custom = sub(cpu, "mode", {"name": "custom", "supported": "yes" if models else "no"})
    for model in models:
        attrs = {"usable": "unknown" if model.usable is None else "yes" if model.usable else "no"}
        if model.deprecated:
            attrs["deprecated"] = "yes"
        attrs["vendor"] = _model_vendor(model.name) if arch in _X86 else "unknown"
        sub(custom, "model", attrs, model.name)


def _devices(root: Element) -> None:
    devices = sub(root, "devices")
    for tag, enums in DRIVER_SUPPORT.items():
        el = sub(devices, tag, {"supported": "yes" if enums else "no"})
        for name, values in enums.items():
            _enum(el, name, values)


def _features(root: Element) -> None:
    # none of these is accepted by the driver (gic is ARM only; sev/sgx need host support too)
    features = sub(root, "features")
    for name in ("gic", "vmcoreinfo", "genid", "backingStoreInput", "backup", "sev", "sgx"):
        sub(features, name, {"supported": "no"})


def _resolve_binary(emulator: str | None, arch: str | None) -> tuple[str, str]:
    if emulator:
        binary = emulator
        if not os.path.exists(binary):
            raise _err(ErrorNumber.SYSTEM_ERROR, f"Cannot check QEMU binary {binary}: No such file or directory")
        suffix = os.path.basename(binary).removeprefix("qemu-system-")
        served = [a for a, s, _w in _ARCHES if s == suffix]
        if arch is None:
            if not served:
                raise _err(ErrorNumber.INVALID_ARG, f"unable to determine the architecture of emulator '{binary}'")
            # the binary's own architecture (ppc64 and arm serve two; the first is the default)
            return binary, suffix if suffix in served else served[0]
        if arch not in served and not (arch == "i686" and suffix == "x86_64"):
            raise _err(ErrorNumber.INVALID_ARG, f"emulator '{binary}' does not support arch '{arch}'")
        return binary, arch
    arch = arch or host_arch()
    if arch not in _ARCH_INFO:
        raise _err(ErrorNumber.INVALID_ARG, f"unknown architecture: {arch}")
    found = find_binary(arch)
    if found is None:
        raise _err(ErrorNumber.INVALID_ARG, f"unable to find any emulator to serve '{arch}' architecture")
    return found, arch


def domain_capabilities_xml(emulator: str | None, arch: str | None, machine: str | None,
                            virttype: str | None) -> str:
    """``virConnectGetDomainCapabilities``: what a domain of ``virttype`` on ``machine`` of
    ``arch`` run by ``emulator`` may use.  Each argument may be None for libvirt's default: the
    host's architecture, its emulator, that emulator's default machine, KVM when it is usable
    for the architecture and TCG otherwise."""
    binary, arch = _resolve_binary(emulator, arch)
    kvm_ok = kvm_usable() and arch in _KVM_GUESTS.get(host_arch(), frozenset())
    if virttype is None:
        virttype = "kvm" if kvm_ok else "qemu"
    virttype = virttype.lower()
    if virttype not in ("qemu", "kvm"):
        raise _err(ErrorNumber.INVALID_ARG, f"unknown virttype: {virttype}")
    if virttype == "kvm" and not kvm_ok:
        raise _err(ErrorNumber.CONFIG_UNSUPPORTED,
                   f"KVM is not supported by '{binary}' on this host (/dev/kvm is not usable"
                   f"{'' if arch in _KVM_GUESTS.get(host_arch(), frozenset()) else f' for {arch} guests'})")
    caps = emulator_caps(binary, ("kvm",) if virttype == "kvm" else ())
    if machine:
        found = caps.machine(machine)
        if found is None:
            raise _err(ErrorNumber.INVALID_ARG, f"the machine '{machine}' is not supported by emulator '{binary}'")
    else:
        found = next((m for m in caps.machines if m.default), caps.machines[0] if caps.machines else None)
        if found is None:
            raise _err(ErrorNumber.OPERATION_FAILED, f"emulator '{binary}' reports no machine types")

    root = etree.Element("domainCapabilities")
    sub(root, "path", text=binary)
    sub(root, "domain", text=virttype)
    sub(root, "machine", text=found.name)
    sub(root, "arch", text=arch)
    sub(root, "vcpu", {"max": str(found.max_cpus)})
    sub(root, "iothreads", {"supported": "no"})
    _os(root, arch, found.name)
    _cpu_modes(root, caps, arch, virttype)
    sub(root, "memoryBacking", {"supported": "no"})
    _devices(root)
    _features(root)
    return "\n".join(format_element(root)) + "\n"
