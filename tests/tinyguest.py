"""A tiny real guest for the QEMU tests and benchmarks: Debian's cloud kernel + a busybox initramfs.

    python tests/tinyguest.py build     # build (or find) the cached guest, print its paths
    python tests/tinyguest.py boot      # boot it once under bare QEMU (TCG) and print timings

The guest boots in about 1.5 s under TCG (``/dev/kvm`` on these machines cannot run a stock
kernel).  Its ``/init`` (a busybox sh script):

* mounts proc, sysfs, devtmpfs; loads ``button`` and ``evdev``, plus the pvpanic modules when
  QEMU has a pvpanic device and the virtio ones (virtio_pci, virtio_net, virtio_blk) when
  there is a virtio PCI device (skipping them when there is none saves ~0.1 s of boot);
* starts busybox ``acpid``: the ACPI power button (QMP ``system_powerdown``, libvirt's
  ``shutdown --mode acpi``) runs ``poweroff -f``;
* prints :data:`READY_MARKER` on ttyS0;
* prints ``tick N`` every 100 ms, on ttyS1 when the machine has a second serial port, else on
  ttyS0: a test sees the guest run, stop while paused, and go on after resume/restore;
* runs an interactive busybox shell on ttyS0 (prompt ``tinyguest# ``), so a test can type
  ``poweroff -f``, ``reboot -f`` or ``echo c > /proc/sysrq-trigger`` (a panic; with
  ``-device pvpanic`` or ``-device pvpanic-pci`` QEMU reports GUEST_PANICKED).  The shell's
  line editor asks the terminal for the cursor position (``ESC [6n``) after each prompt: that
  sequence shows up in serial transcripts and needs no answer;
* ships ``udhcpc`` with ``/usr/share/udhcpc/default.script``, which prints
  ``tinyguest-dhcp: bound IP`` on ttyS0.

Kernel command line switches the init honours (append them to :attr:`Guest.cmdline`):

``tinyguest.poweroff_after_ready=1``  ``poweroff -f`` right after the marker
``tinyguest.panic_after_ready=1``     crash (sysrq ``c``) right after the marker
``tinyguest.ticks=0``                 no ticks
``tinyguest.tick_ms=N``               tick period in milliseconds (default 100)
``tinyguest.dhcp=1``                  run ``udhcpc -i eth0`` in the background after the marker
``tinyguest.shell=0``                 no shell on ttyS0
``tinyguest.debug=1``                 print the guest's uptime at each stage of /init

Nothing is installed on the host: the two packages (``linux-image-<ver>-cloud-amd64``, which
``linux-image-cloud-amd64`` depends on, and ``busybox-static``) are fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x`` in a temporary directory.  The result
(``vmlinuz``, ``initrd.img``, ``manifest.json``) is cached under ``$VIRT_TEST_CACHE/tinyguest``
or else ``~/.cache/virt-tests/tinyguest``, one directory per package versions + init revision.

Stdlib only: importable from any test (``tests/`` is on ``sys.path`` through the root conftest).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import json
import lzma
import os
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY_MARKER = "VIRT-TINYGUEST-READY"
TICK_PREFIX = "tick "
SHELL_PROMPT = "tinyguest# "
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
QEMU_BINARY = "qemu-system-x86_64"

# Kernel command line.  console=ttyS0: the only console; quiet + loglevel=3: little kernel
# chatter on a slow emulated UART; cryptomgr.notests: skip the crypto self-tests (~0.3 s under
# TCG); panic=-1: a crashed guest resets at once instead of spinning a host CPU (with a pvpanic
# device QEMU has reported GUEST_PANICKED before that); the rest skips probes that cost time
# and give nothing here.
CMDLINE = " ".join(
    [
        "console=ttyS0",
        "quiet",
        "loglevel=3",
        "cryptomgr.notests",
        "panic=-1",
        "nokaslr",
        "no_timer_check",
        "tsc=reliable",
        "i8042.noaux",
        "random.trust_cpu=on",
        "rcupdate.rcu_expedited=1",
        "mitigations=off",
    ]
)

# Modules loaded by /init when they are modules (built-in ones need nothing), in this order,
# their dependencies first.  pvpanic-mmio drives QEMU's ISA "-device pvpanic" (ACPI QEMU0001),
# pvpanic-pci drives "-device pvpanic-pci".
WANTED_MODULES = (
    "button",
    "evdev",
    "pvpanic_mmio",
    "pvpanic_pci",
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
)

# Bump when the initramfs layout or the init script changes in a way the hash below misses.
_FORMAT = 1

_INIT = r"""#!/bin/sh
# tinyguest /init: PID 1 of the virt test guest.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run /var/log
mount -t devpts devpts /dev/pts

poweroff_after_ready=0 panic_after_ready=0
ticks=1 tick_ms=100 dhcp=0 shell=1 debug=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        tinyguest.poweroff_after_ready=1) poweroff_after_ready=1 ;;
        tinyguest.panic_after_ready=1) panic_after_ready=1 ;;
        tinyguest.ticks=0) ticks=0 ;;
        tinyguest.tick_ms=*) tick_ms=${arg#*=} ;;
        tinyguest.dhcp=1) dhcp=1 ;;
        tinyguest.shell=0) shell=0 ;;
        tinyguest.debug=1) debug=1 ;;
    esac
done

stage() { [ $debug = 1 ] && echo "tinyguest-debug: $1 uptime $(cat /proc/uptime)" >/dev/ttyS0; }
stage init

# Modules by group: "always", "virtio" (a virtio PCI device is present), "pvpanic" (QEMU's
# pvpanic device, ISA/ACPI QEMU0001 or PCI 1b36:0011).  Skipping absent hardware saves boot time.
virtio=0 pvpanic=0
for dev in /sys/bus/pci/devices/*; do
    read -r vendor <"$dev/vendor"
    read -r device <"$dev/device"
    case "$vendor:$device" in
        0x1af4:*) virtio=1 ;;
        0x1b36:0x0011) pvpanic=1 ;;
    esac
done
[ -e /sys/bus/acpi/devices/QEMU0001:00 ] && pvpanic=1
while read -r group mod; do
    [ -n "$mod" ] || continue
    case "$group" in
        virtio) [ $virtio = 1 ] || continue ;;
        pvpanic) [ $pvpanic = 1 ] || continue ;;
    esac
    insmod "/lib/modules/$mod.ko" || echo "tinyguest: insmod $mod failed" >/dev/ttyS0
done </etc/tinyguest/modules
stage modules

# acpid opens /dev/input/event* once, at start: wait (a little) for devtmpfs to have them all.
n=0
while [ $n -lt 100 ]; do
    missing=0
    for ev in /sys/class/input/event*; do
        [ -e "$ev" ] || continue
        [ -c "/dev/input/${ev##*/}" ] || missing=1
    done
    [ $missing = 0 ] && break
    n=$((n + 1))
    usleep 10000
done
acpid -c /etc/acpi -l /var/log/acpid.log
stage acpid

ip link set lo up 2>/dev/null

echo "$(cat /etc/tinyguest/marker)" >/dev/ttyS0

if [ $poweroff_after_ready = 1 ]; then poweroff -f; fi
if [ $panic_after_ready = 1 ]; then echo c >/proc/sysrq-trigger; fi

if [ $dhcp = 1 ]; then
    ip link set eth0 up 2>/dev/null
    udhcpc -i eth0 -b -t 10 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
fi

if [ $ticks = 1 ]; then
    tick_tty=/dev/ttyS0
    if grep '^1:' /proc/tty/driver/serial 2>/dev/null | grep -qv 'uart:unknown'; then
        tick_tty=/dev/ttyS1
    fi
    (
        exec >"$tick_tty"
        i=0
        while :; do
            i=$((i + 1))
            echo "tick $i"
            usleep $((tick_ms * 1000))
        done
    ) &
fi

export PS1='tinyguest# ' HOME=/root
while :; do
    if [ $shell = 1 ]; then
        setsid -c sh -i </dev/ttyS0 >/dev/ttyS0 2>&1
    else
        sleep 3600
    fi
done
"""

_POWER_BUTTON = """#!/bin/sh
echo "tinyguest: power button" >/dev/ttyS0
poweroff -f
"""

_DHCP_SCRIPT = r"""#!/bin/sh
# udhcpc event script: $1 is deconfig|bound|renew|leasefail|nak.
case "$1" in
    deconfig)
        ip addr flush dev "$interface" 2>/dev/null
        ip link set "$interface" up
        ;;
    bound|renew)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        if [ -n "$router" ]; then
            while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
            for r in $router; do route add default gw "$r" dev "$interface"; done
        fi
        : >/etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
        echo "tinyguest-dhcp: $1 $ip" >/dev/ttyS0
        ;;
    leasefail)
        echo "tinyguest-dhcp: leasefail" >/dev/ttyS0
        ;;
esac
exit 0
"""


class TinyGuestError(RuntimeError):
    """The guest cannot be built here (no apt data, no network, no dpkg-deb...)."""


@dataclasses.dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    cmdline: str
    ready_marker: str = READY_MARKER
    kernel_version: str = ""
    # module name -> "module" (loaded by /init), "builtin" or "absent"
    modules: dict[str, str] = dataclasses.field(default_factory=dict, hash=False, compare=False)

    def append(self, *extra: str) -> str:
        """The recommended command line plus ``extra`` switches (e.g. tinyguest.ticks=0)."""
        return " ".join([self.cmdline, *extra])


# -- cache location and versions --------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("VIRT_TEST_CACHE")
    if base:
        return Path(base).expanduser() / "tinyguest"
    return Path.home() / ".cache" / "virt-tests" / "tinyguest"


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def _apt_lists_fingerprint() -> str | None:
    """Changes whenever apt's package lists (and so the candidate versions) may have changed."""
    lists = Path("/var/lib/apt/lists")
    entries = []
    with contextlib.suppress(OSError):
        for f in sorted(lists.iterdir()):
            if "Packages" in f.name or f.name.endswith("Release"):
                st = f.stat()
                entries.append(f"{f.name}:{st.st_mtime_ns}:{st.st_size}")
    for extra in (Path("/etc/apt/preferences"), Path("/etc/apt/preferences.d")):
        with contextlib.suppress(OSError):
            entries.append(f"{extra}:{extra.stat().st_mtime_ns}")
    if not entries:
        return None
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def candidate_versions(wanted: list[str] | tuple[str, ...], error: type[Exception],
                       what: str = "the tiny guest") -> dict[str, str]:
    """{package: apt's candidate version} of every package in ``wanted``, or ``error`` saying
    which one apt does not know (the labs share this)."""
    try:
        proc = _run(["apt-cache", "policy", *wanted])
    except OSError as exc:
        raise error(f"apt-cache not found ({exc}): {what} needs Debian's apt") from exc
    versions: dict[str, str] = {}
    for block in re.split(r"^(?=\S)", proc.stdout, flags=re.M):
        name = block.split(":", 1)[0].strip()
        cand = re.search(r"^\s*Candidate:\s*(\S+)", block, re.M)
        if name in wanted and cand and cand.group(1) != "(none)":
            versions[name] = cand.group(1)
    missing = [p for p in wanted if p not in versions]
    if missing:
        raise error(f"apt has no candidate version of {', '.join(missing)}; run `apt-get update` first")
    return versions


def remembered(memo: Path, resolve: Callable[[], dict[str, str]]) -> dict[str, str]:
    """``resolve()``, remembered in ``memo`` for as long as apt's lists do not change
    (apt-cache takes ~0.5 s a call on these machines: there is no binary package cache)."""
    fingerprint = _apt_lists_fingerprint()
    if fingerprint:
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads(memo.read_text())
            if saved.get("fingerprint") == fingerprint and saved.get("versions"):
                return dict(saved["versions"])
    versions = resolve()
    if fingerprint:
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".resolved.{os.getpid()}.json")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "versions": versions}))
            os.replace(tmp, memo)
    return versions


def _query_apt() -> dict[str, str]:
    try:
        proc = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    except OSError as exc:
        raise TinyGuestError(f"apt-cache not found ({exc}): the tiny guest needs Debian's apt") from exc
    m = re.search(r"Depends:\s*(linux-image-\S+-cloud-amd64)\b", proc.stdout)
    if not m:
        raise TinyGuestError(
            f"apt does not know {KERNEL_META_PACKAGE} ({(proc.stderr or proc.stdout).strip()[:200]}); "
            "run `apt-get update` first"
        )
    return candidate_versions((m.group(1), BUSYBOX_PACKAGE), TinyGuestError)


def resolve_packages() -> dict[str, str]:
    """{package: version} of the real kernel package and busybox-static, from apt's lists
    (remembered while they do not change)."""
    return remembered(cache_root() / "resolved.json", _query_apt)


def _content_hash() -> str:
    h = hashlib.sha256()
    for part in (str(_FORMAT), _INIT, _POWER_BUTTON, _DHCP_SCRIPT, READY_MARKER, " ".join(WANTED_MODULES)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _cache_key(versions: dict[str, str]) -> str:
    parts = [f"{p}_{v}" for p, v in sorted(versions.items())]
    key = "+".join(parts) + "+init-" + _content_hash()
    return re.sub(r"[^A-Za-z0-9._+-]", "_", key)


# -- building ---------------------------------------------------------------------------------


def _download(packages: dict[str, str], dest: Path) -> dict[str, Path]:
    debs: dict[str, Path] = {}
    for pkg, ver in packages.items():
        before = set(dest.glob("*.deb"))
        # As root, apt hands the download to its _apt user, who cannot write into our private
        # temporary directory: it then warns and downloads as root anyway.  Say so up front.
        sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
        proc = _run(["apt-get", *sandbox, "download", f"{pkg}={ver}"], cwd=dest)
        new = sorted(set(dest.glob("*.deb")) - before)
        if proc.returncode != 0 or not new:
            output = (proc.stderr or proc.stdout).strip().splitlines()
            errors = [line for line in output if not line.startswith("W:")] or output
            raise TinyGuestError(
                f"cannot download the Debian package {pkg}={ver} for the tiny test guest: "
                f"{' '.join(errors)[-400:]}\n"
                f"Needs network access to Debian's mirror and fresh lists: run `apt-get update`, then "
                f"`python tests/tinyguest.py build` (or `apt-get download {pkg}` to check by hand)."
            )
        debs[pkg] = new[0]
    return debs


def _extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    except OSError as exc:
        raise TinyGuestError(f"dpkg-deb not found ({exc}): the tiny guest needs Debian's dpkg") from exc
    if proc.returncode != 0:
        raise TinyGuestError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()[-300:]}")


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    name = path.name
    if name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if name.endswith(".ko.zst"):
        zstd = shutil.which("zstd")
        if not zstd:
            raise TinyGuestError(f"{name} is zstd-compressed and the zstd tool is not installed")
        return subprocess.run([zstd, "-dc", str(path)], capture_output=True, check=True).stdout
    return data


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _depends(data: bytes) -> list[str]:
    m = re.search(rb"(?:^|\x00)depends=([^\x00]*)\x00", data)
    if not m or not m.group(1):
        return []
    return [d.decode().replace("-", "_") for d in m.group(1).split(b",") if d]


def _collect_modules(moddir: Path) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """(ordered [(name, .ko bytes)] with dependencies first, {wanted name: status})."""
    index = {_module_name(p): p for p in (moddir / "kernel").rglob("*.ko*") if ".ko" in p.name}
    builtin_file = moddir / "modules.builtin"
    builtin = set()
    if builtin_file.exists():
        builtin = {_module_name(Path(line.strip())) for line in builtin_file.read_text().splitlines() if line.strip()}
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in builtin:
            return
        if name in chain:
            raise TinyGuestError(f"module dependency loop: {' -> '.join((*chain, name))}")
        path = index.get(name)
        if path is None:
            raise TinyGuestError(f"module {name} (needed by {chain[-1] if chain else 'tinyguest'}) not found")
        data = _module_bytes(path)
        for dep in _depends(data):
            visit(dep, (*chain, name))
        seen.add(name)
        order.append((name, data))

    status: dict[str, str] = {}
    for name in WANTED_MODULES:
        if name in builtin:
            status[name] = "builtin"
        elif name in index:
            visit(name, ())
            status[name] = "module"
        else:
            status[name] = "absent"
    return order, status


class _Cpio:
    """A newc ("070701") archive, as the kernel's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = (self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0, rdev[0], rdev[1])
        encoded = name.encode() + b"\0"
        header = b"070701" + b"".join(b"%08X" % f for f in fields) + b"%08X" % len(encoded) + b"%08X" % 0
        self.ino += 1
        self.buf += header + encoded
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def mkdir(self, name: str) -> None:
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        parent = name.rpartition("/")[0]
        if parent:
            self.mkdir(parent)
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        self.mkdir(name.rpartition("/")[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        self.mkdir(name.rpartition("/")[0])
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        name = name.strip("/")
        self.mkdir(name.rpartition("/")[0])
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.buf += b"\0" * (-len(self.buf) % 512)
        return bytes(self.buf)


def _module_group(name: str) -> str:
    if "pvpanic" in name:
        return "pvpanic"
    if "virtio" in name or "failover" in name:
        return "virtio"
    return "always"


def _busybox_applets(busybox: Path) -> list[str]:
    proc = _run([str(busybox), "--list-full"])
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TinyGuestError(f"cannot list busybox applets: {proc.stderr.strip()[:200]}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def _build_initramfs(bbroot: Path, modules: list[tuple[str, bytes]]) -> bytes:
    busybox = bbroot / "bin" / "busybox"
    if not busybox.exists():
        raise TinyGuestError(f"{BUSYBOX_PACKAGE} has no bin/busybox")
    cpio = _Cpio()
    for d in ("dev", "proc", "sys", "tmp", "run", "root", "var/log", "etc/acpi", "lib/modules"):
        cpio.mkdir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in _busybox_applets(busybox):
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")
    cpio.file("init", _INIT.encode(), 0o755)
    cpio.file("etc/tinyguest/marker", (READY_MARKER + "\n").encode())
    cpio.file("etc/tinyguest/modules", "".join(f"{_module_group(name)} {name}\n" for name, _ in modules).encode())
    for name, data in modules:
        cpio.file(f"lib/modules/{name}.ko", data)
    # busybox acpid turns the power button's EV_KEY KEY_POWER into the action "PWRF/00000080"
    # and runs /etc/acpi/PWRF/00000080 (a program, or a directory for run-parts).
    cpio.file("etc/acpi/PWRF/00000080", _POWER_BUTTON.encode(), 0o755)
    cpio.file("usr/share/udhcpc/default.script", _DHCP_SCRIPT.encode(), 0o755)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")
    cpio.file("etc/hostname", b"tinyguest\n")
    return cpio.finish()


def build(dest: Path, versions: dict[str, str]) -> dict[str, Any]:
    """Download, unpack and assemble the guest into the (new, empty) directory ``dest``."""
    with tempfile.TemporaryDirectory(prefix="tinyguest-dl-") as tmp:
        work = Path(tmp)
        debs = _download(versions, work)
        kpkg = next(p for p in versions if p.startswith("linux-image-"))
        kroot, bbroot = work / "kernel", work / "busybox"
        _extract(debs[kpkg], kroot)
        _extract(debs[BUSYBOX_PACKAGE], bbroot)
        vmlinuz = sorted((kroot / "boot").glob("vmlinuz-*"))
        moddirs = sorted((kroot / "lib" / "modules").glob("*"))
        if not vmlinuz or not moddirs:
            raise TinyGuestError(f"{kpkg} has no /boot/vmlinuz-* or /lib/modules/*")
        kver = moddirs[-1].name
        modules, status = _collect_modules(moddirs[-1])
        initrd = _build_initramfs(bbroot, modules)
        shutil.copyfile(vmlinuz[-1], dest / "vmlinuz")
        (dest / "initrd.img").write_bytes(gzip.compress(initrd, compresslevel=6, mtime=0))
        manifest = {
            "packages": versions,
            "kernel_version": kver,
            "modules": status,
            "loaded_in_order": [name for name, _ in modules],
            "cmdline": CMDLINE,
            "ready_marker": READY_MARKER,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest


def _guest_from(directory: Path) -> Guest:
    manifest = json.loads((directory / "manifest.json").read_text())
    return Guest(
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        cmdline=CMDLINE,
        ready_marker=READY_MARKER,
        kernel_version=manifest.get("kernel_version", ""),
        modules=dict(manifest.get("modules", {})),
    )


def _complete(directory: Path) -> bool:
    return all((directory / n).is_file() for n in ("vmlinuz", "initrd.img", "manifest.json"))


def _newest_cached(root: Path) -> Path | None:
    suffix = "+init-" + _content_hash()
    found = [d for d in root.glob("*" + suffix) if d.is_dir() and _complete(d)] if root.is_dir() else []
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def cached_build(root: Path, final: Path, build: Callable[[Path], object], complete: Callable[[Path], bool], *,
                 keep_others: bool = True) -> None:
    """Make ``final`` (a directory of ``root``) with ``build(tmp)`` unless ``complete(final)``:
    under an ``flock`` of ``root/.lock`` (several processes may ask at once), in a temporary
    directory renamed into place (a killed build leaves no half of one).  ``keep_others=False``
    then removes the other builds (other versions, older init revisions) of ``root``."""
    if complete(final):
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete(final):
            return
        for leftover in root.glob(".build-*"):  # a killed build's (we hold the lock: none is live)
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            build(tmp)
            if final.exists():  # an incomplete leftover
                shutil.rmtree(final)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not keep_others:
            for old in root.iterdir():
                if old != final and old.is_dir() and not old.name.startswith("."):
                    shutil.rmtree(old, ignore_errors=True)


_memo: dict[Path, Guest] = {}


def ensure_guest() -> Guest:
    """The cached guest for apt's current package versions, built first if need be.

    Safe with several processes at once (a flock on ``<cache>/.lock``; the build happens in a
    temporary directory renamed into place).  Without apt data or network, the newest cached
    build of the same init revision is used (with a warning); with none, TinyGuestError.
    """
    root = cache_root()
    if root in _memo:
        return _memo[root]
    try:
        versions = resolve_packages()
    except TinyGuestError as exc:
        cached = _newest_cached(root)
        if cached is None:
            raise
        warnings.warn(f"tinyguest: {exc}; using the cached {cached.name}", stacklevel=2)
        _memo[root] = guest = _guest_from(cached)
        return guest
    final = root / _cache_key(versions)
    try:
        cached_build(root, final, lambda tmp: build(tmp, versions), _complete)
    except TinyGuestError as exc:
        cached = _newest_cached(root)
        if cached is None:
            raise
        warnings.warn(f"tinyguest: {exc}; using the cached {cached.name}", stacklevel=2)
        final = cached
    _memo[root] = guest = _guest_from(final)
    return guest


# -- pytest helpers ---------------------------------------------------------------------------


def qemu_binary() -> str | None:
    return shutil.which(QEMU_BINARY)


def tiny_guest_or_skip() -> Guest:
    """The guest, or pytest.skip with the reason (VIRT_REQUIRE_ALL=1 in CI makes that a failure)."""
    import pytest

    if qemu_binary() is None:
        pytest.skip(f"requires {QEMU_BINARY} (Debian package qemu-system-x86)")
    try:
        return ensure_guest()
    except TinyGuestError as exc:
        pytest.skip(f"cannot build the tiny test guest: {exc}")
    raise AssertionError("unreachable")


def wait_for_text(
    path: str | os.PathLike[str],
    text: str,
    timeout: float = 30.0,
    *,
    proc: subprocess.Popen[Any] | None = None,
    start: int = 0,
    interval: float = 0.01,
) -> str:
    """Poll the growing file ``path`` until ``text`` appears (after byte offset ``start``).

    Returns the file's content from ``start``.  TimeoutError (with the tail of the file) after
    ``timeout`` seconds, or at once if ``proc`` is given and has exited.
    """
    deadline = time.monotonic() + timeout
    needle = text.encode()
    content = b""
    while True:
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
            f.seek(start)
            content = f.read()
        if needle in content:
            return content.decode(errors="replace")
        if proc is not None and proc.poll() is not None:
            tail = content[-2000:].decode(errors="replace")
            raise TimeoutError(f"process exited ({proc.returncode}) before {text!r} appeared in {path}:\n{tail}")
        if time.monotonic() >= deadline:
            tail = content[-2000:].decode(errors="replace")
            raise TimeoutError(f"{text!r} did not appear in {path} within {timeout} s:\n{tail}")
        time.sleep(interval)


def count_ticks(text: str) -> int:
    """The highest ``tick N`` in ``text`` (0 when none)."""
    found = re.findall(r"tick (\d+)", text)
    return max(map(int, found)) if found else 0


class SerialSocket:
    """A client of a unix-socket serial port (QEMU ``-chardev socket,server=on``, or libvirt's
    ``<serial type='unix'><source mode='bind' path=.../>``): send lines, read until a text.

    A thread drains the socket all the time.  That matters: the guest's UART writes one byte
    at a time, and an unread unix socket fills after a few hundred of them (each byte costs a
    whole buffer of the socket's quota), after which QEMU stalls the guest's console output.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        self.path = str(path)
        self.buffer = b""  # received and not yet consumed by read_until
        self.transcript = b""  # everything received
        self.closed = False
        self._cond = threading.Condition()
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        self.sock = sock
        self._reader = threading.Thread(target=self._drain, name=f"serial:{self.path}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self.closed = True
                    self._cond.notify_all()
                    return
                self.buffer += chunk
                self.transcript += chunk
                self._cond.notify_all()

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\n")

    def read_until(self, text: str, timeout: float = 10.0) -> str:
        """Everything received up to and including ``text`` (consumed from the buffer)."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle not in self.buffer:
                remaining = deadline - time.monotonic()
                if self.closed:
                    raise EOFError(f"{self.path} closed before {text!r}: {self.buffer[-500:]!r}")
                if remaining <= 0:
                    raise TimeoutError(f"{text!r} not seen on {self.path} within {timeout} s: {self.buffer[-500:]!r}")
                self._cond.wait(remaining)
            end = self.buffer.index(needle) + len(needle)
            out, self.buffer = self.buffer[:end], self.buffer[end:]
        return out.decode(errors="replace")

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Type ``line`` into the guest shell; the output up to the next prompt."""
        self.send_line(line)
        return self.read_until(SHELL_PROMPT, timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(5)

    def __enter__(self) -> SerialSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Qmp:
    """A minimal synchronous QMP client (stdlib): enough for tests and the bare-QEMU baseline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.events: list[dict[str, Any]] = []
        self.greeting = self._read()

    @classmethod
    def connect(cls, path: str | os.PathLike[str], timeout: float = 10.0) -> Qmp:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.002)
        sock.settimeout(timeout)
        return cls(sock)

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error']}")
            return reply.get("return")

    def send(self, command: str, **arguments: Any) -> None:
        """Send without reading the reply (e.g. ``quit``, to time the exit alone)."""
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("event") == name:
                self.events.remove(ev)
                return ev
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while True:
                msg = self._read()
                if msg.get("event") == name:
                    return msg
                self.events.append(msg)
        finally:
            self.sock.settimeout(old)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def qemu_argv(
    guest: Guest,
    *,
    serial0: str,
    serial1: str | None = None,
    qmp: str | None = None,
    append: str = "",
    memory_mb: int = 128,
    machine: str = "q35",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """A bare ``qemu-system-x86_64`` command line booting ``guest`` under TCG.

    ``serial0``/``serial1`` are QEMU chardev backends for -serial (``file:/path``,
    ``unix:/path,server=on,wait=off``, ``null``...); ``qmp`` is the -qmp backend."""
    argv = [
        qemu_binary() or QEMU_BINARY,
        "-accel",
        "tcg",
        "-machine",
        machine,
        "-m",
        str(memory_mb),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-kernel",
        str(guest.kernel),
        "-initrd",
        str(guest.initrd),
        "-append",
        guest.append(append) if append else guest.cmdline,
        "-serial",
        serial0,
    ]
    if serial1:
        argv += ["-serial", serial1]
    if qmp:
        argv += ["-qmp", qmp]
    argv += list(extra)
    return argv


def wait_exit(proc: subprocess.Popen[Any], timeout: float) -> int | None:
    """Wait for ``proc`` to exit without Popen.wait(timeout)'s polling sleeps (pidfd + poll).

    Returns the exit status, or None on timeout."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return None
    finally:
        os.close(fd)
    return proc.wait()


def kill(proc: subprocess.Popen[Any]) -> None:
    """Kill and reap ``proc`` if it still runs."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


# -- command line -----------------------------------------------------------------------------


def boot_once(guest: Guest, *, timeout: float = 60.0) -> dict[str, float]:
    """Boot under bare QEMU, wait for the marker, power down by ACPI; timings in ms."""
    with tempfile.TemporaryDirectory(prefix="tinyguest-boot-") as tmp:
        log, ticks, qmp_path = Path(tmp, "ttyS0.log"), Path(tmp, "ttyS1.log"), Path(tmp, "qmp.sock")
        argv = qemu_argv(
            guest, serial0=f"file:{log}", serial1=f"file:{ticks}", qmp=f"unix:{qmp_path},server=on,wait=off"
        )
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            qmp = Qmp.connect(qmp_path)
            qmp.execute("qmp_capabilities")
            t_qmp = time.monotonic()
            wait_for_text(log, guest.ready_marker, timeout, proc=proc, interval=0.005)
            t_ready = time.monotonic()
            wait_for_text(ticks, "tick 3", 10, proc=proc)
            t1 = time.monotonic()
            qmp.execute("system_powerdown")
            status = wait_exit(proc, 20)
            t_exit = time.monotonic()
            if status is None:
                raise TimeoutError("QEMU did not exit within 20 s of system_powerdown")
            qmp.close()
        finally:
            kill(proc)
        return {
            "exec_to_qmp_ms": (t_qmp - t0) * 1000,
            "exec_to_ready_ms": (t_ready - t0) * 1000,
            "powerdown_to_exit_ms": (t_exit - t1) * 1000,
        }


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "build"
    if cmd not in ("build", "boot"):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    try:
        guest = ensure_guest()
    except TinyGuestError as exc:
        print(f"tinyguest: {exc}", file=sys.stderr)
        return 1
    print(f"kernel:  {guest.kernel}")
    print(f"initrd:  {guest.initrd}")
    print(f"cmdline: {guest.cmdline}")
    print(f"marker:  {guest.ready_marker}")
    print(f"kernel version: {guest.kernel_version}")
    print("modules: " + ", ".join(f"{k}={v}" for k, v in guest.modules.items()))
    if cmd == "boot":
        if qemu_binary() is None:
            print(f"tinyguest: {QEMU_BINARY} not found", file=sys.stderr)
            return 1
        for name, ms in boot_once(guest).items():
            print(f"{name}: {ms:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
