"""The Xen test lab: a real Xen 4.17 with a busybox dom0, booted inside ``qemu-system-x86_64 -accel tcg``.

    python tests/xenlab.py build     # build (or find) the cached lab, print its paths
    python tests/xenlab.py boot      # boot it, run `xl info` and a PV guest's life, print timings
    python tests/xenlab.py shell     # boot it and forward `xl ARGS` typed on stdin (a debugging aid)

What is built (cached under ``$VIRT_TEST_CACHE/xenlab`` or ``~/.cache/virt-tests/xenlab``, one
directory per package versions + init revision, under a flock and renamed into place):

``xen``             the hypervisor, ``xen-4.17-amd64.gz`` gunzipped: QEMU's multiboot loader
                    does not unpack it;
``dom0-vmlinux``    ``linux-image-amd64``'s kernel as a plain ELF (the payload of the bzImage,
                    decompressed here: the cloud kernel has no ``CONFIG_XEN_DOM0``, and
                    decompressing under TCG would cost ~2 s of every boot);
``dom0-initrd.img`` a busybox initramfs with the xen-utils programs and every library of the
                    Debian packages they need (libgcc_s.so.1 included: glibc loads it at run
                    time and without it every ``xl`` verb aborts), the dom0 modules (xen-evtchn,
                    gntdev, gntalloc, privcmd, xenfs, e1000), and inside it the PV guest's kernel
                    (``linux-image-cloud-amd64``) and initramfs under ``/var/lib/xenlab``.

Nothing is installed on the host: the packages are fetched with ``apt-get download`` and
unpacked with ``dpkg-deb -x`` (see :mod:`tinyguest`, whose helpers this module reuses).

**The dom0** (its ``/init``) mounts the usual file systems, a tmpfs ``/tmp`` (``xl save`` writes
there), ``xenfs`` on ``/proc/xen``, starts ``xenstored``, ``xen-init-dom0`` and ``xenconsoled``,
brings ``eth0`` up on QEMU's user network (10.0.2.15) and serves **the command channel**: busybox
``nc -ll -p 7777 -e /usr/local/bin/xlserve``, reached from the host through a ``hostfwd`` on
127.0.0.1 (QEMU ``restrict=on``: dom0 reaches nothing else).  One TCP connection runs one
command: the client sends one line (a shell command line, quoted by the client), then the
command's standard input up to its half-close; dom0 answers ``RC OUTLEN ERRLEN\\n`` followed by
the command's stdout and stderr.  :class:`XenLab.run` is the client;
``virt_xen``'s ``tcp:HOST:PORT`` toolstack speaks the same protocol.

**The PV guest** (:data:`DOMU_KERNEL`, :data:`DOMU_RAMDISK` inside dom0) prints
:data:`DOMU_READY_MARKER` on ``hvc0`` and then waits; Linux's Xen shutdown watch runs
``/sbin/poweroff`` or ``/sbin/reboot`` (scripts calling busybox with ``-f``), so ``xl shutdown``
and ``xl reboot`` work as on a real guest.

Stdlib only (plus the sibling :mod:`tinyguest`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinyguest
from tinyguest import TinyGuestError, _Cpio

READY_MARKER = "VIRT-XENLAB-DOM0-READY"
DOMU_READY_MARKER = "VIRT-XENLAB-DOMU-READY"
SERVER_PORT = 7777
#: dom0's sshd (OpenSSH), for ``xen+ssh://``
SSH_PORT = 22
#: dom0's second listener: virt's remote helper (``virt-remote-helper``) serving xen:///system
HELPER_PORT = 7778
#: where :meth:`XenLab.install_virt` puts virt's code in dom0
VIRT_PREFIX = "/opt/virt"
XEN_LIBEXEC = "/usr/lib/xen-4.17/bin"
DOMU_KERNEL = "/var/lib/xenlab/domu-vmlinuz"
DOMU_RAMDISK = "/var/lib/xenlab/domu-initrd.img"
DOMU_CMDLINE = "console=hvc0 quiet loglevel=3 panic=-1 mitigations=off"
DOM0_MEMORY_MB = 512
# QEMU's TCG emulates AMD-V (SVM) with nested paging: Xen then has HAP and runs HVM containers
# (PVH guests); rdrand, or dom0 starves for entropy; -cpu max crashes dom0 under TCG
CPU = "qemu64,+rdrand,+svm,+npt"
VM_MEMORY_MB = 1024
# two CPUs for Xen: dom0 keeps one (dom0_max_vcpus=1), a guest booting under TCG gets the other;
# an idle TCG vCPU costs the host nothing
VM_CPUS = 2

XEN_PACKAGE = "xen-hypervisor-4.17-amd64"
DOM0_KERNEL_META = "linux-image-amd64"
DOMU_KERNEL_META = "linux-image-cloud-amd64"
# xen-utils and the libraries of its programs (the Depends closure of the packages that ship
# them, minus what a busybox dom0 does without: python3, udev, lsb-base, ucf).
USER_PACKAGES = (
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxenmisc4.17",
    "libxencall1",
    "libxendevicemodel1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxenhypfs1",
    "libxenstore4",
    "libxentoollog1",
    "libxentoolcore1",
    "libyajl2",
    "libext2fs2",
    "libcom-err2",
    "libblkid1",
    "libuuid1",
    "libzstd1",
    "zlib1g",
    "liblzma5",
    "libc6",
    "libgcc-s1",
    "libncurses6",
    "libtinfo6",
    "busybox-static",
    # Python, for virt itself inside dom0 (its remote helper serving xen:///system)
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libssl3",
    "libexpat1",
    "libbz2-1.0",
    "libcrypt1",
    "libffi8",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "media-types",
    # OpenSSH's sshd, for xen+ssh:// (virt's remote plugin over SSH to the helper in dom0), and
    # the libraries of its DT_NEEDED closure that the packages above do not bring
    "openssh-server",
    "libwrap0",
    "libaudit1",
    "libpam0g",
    "libsystemd0",
    "libselinux1",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libkeyutils1",
    "libnsl2",
    "libtirpc3",
    "libcap-ng0",
    "libcap2",
    "libgcrypt20",
    "libgpg-error0",
    "liblz4-1",
    "libpcre2-8-0",
)
#: programs of /usr/bin copied into dom0 (xenstore-utils': the driver reads consoles' ptys there)
USR_BIN_PROGRAMS = ("xenstore-read", "xenstore-write", "xenstore-rm", "xenstore-ls", "xenstore-exists",
                    "xenstore-list", "xenstore")
DOM0_MODULES = ("xen_evtchn", "xen_gntdev", "xen_gntalloc", "xen_privcmd", "xenfs", "e1000")

# Xen's command line: its console on the first UART; dom0 gets a fixed 512 MiB (``xl save``
# needs >= 384) and one vCPU; noreboot keeps a crash on the screen.
XEN_CMDLINE = (
    f"console=com1 com1=115200,8n1 dom0_mem={DOM0_MEMORY_MB}M,max:{DOM0_MEMORY_MB}M "
    "dom0_max_vcpus=1 loglvl=warning guest_loglvl=warning noreboot"
)
DOM0_CMDLINE = "console=hvc0 earlyprintk=xen quiet loglevel=3 panic=-1 mitigations=off random.trust_cpu=on"

_FORMAT = 1

_DOM0_INIT = r"""#!/bin/sh
# xenlab dom0 /init
export PATH=/usr/local/bin:@LIBEXEC@:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o size=300m tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var/lock /var/run /var/log/xen /var/lib/xen /var/lib/xenstored /run/xen /run/xenstored /var/run/xen
# save images go to the tmpfs: the initramfs's own root file system is nearly full
mkdir -p /tmp/virt-save && ln -s /tmp/virt-save /var/lib/xen/virt-save
for mod in $(cat /etc/xenlab/modules); do
    insmod "/lib/modules/$mod.ko" || echo "xenlab: insmod $mod failed"
done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid
xen-init-dom0 || echo "xenlab: xen-init-dom0 failed"
mkdir -p /var/log/xen/console
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
hostname xenlab-dom0
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
nc -ll -p @PORT@ -e /usr/local/bin/xlserve &
nc -ll -p @HELPER_PORT@ -e /usr/local/bin/virt-helper &
mkdir -p /run/sshd && chmod 755 /run/sshd
/usr/sbin/sshd -f /etc/ssh/sshd_config -E /tmp/sshd.log || echo "xenlab: sshd failed"
echo "@MARKER@"
export PS1='xenlab-dom0# ' HOME=/root
while :; do setsid -c sh -i </dev/hvc0 >/dev/hvc0 2>&1 || sleep 1; done
"""

# One command per connection: a line (the command), its stdin up to EOF; the answer is
# "RC OUTLEN ERRLEN\n" + stdout + stderr.
_XLSERVE = r"""#!/bin/sh
d=$(mktemp -d /tmp/xlserve.XXXXXX)
IFS= read -r cmd
cat >"$d/in"
(cd / && eval "$cmd") <"$d/in" >"$d/out" 2>"$d/err"
rc=$?
echo "$rc $(wc -c <"$d/out") $(wc -c <"$d/err")"
cat "$d/out" "$d/err"
rm -rf "$d"
"""

# virt's remote helper on a connection: the driver runs here, in dom0, with the local xl
_VIRT_HELPER = r"""#!/bin/sh
export PATH=/usr/local/bin:@LIBEXEC@:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export PYTHONPATH=@PREFIX@ PYTHONDONTWRITEBYTECODE=1 VIRT_XEN_STATE=/var/lib/virt/xen
exec python3.11 -c 'import sys, virt_remote_helper; sys.exit(virt_remote_helper.main())' "$@" 2>>/tmp/virt-helper.log
"""

# OpenSSH in dom0: root by public key only (the lab's client key), no PAM, nothing else
_SSHD_CONFIG = """Port @SSH_PORT@
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile /etc/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PidFile /run/sshd.pid
PrintMotd no
LogLevel ERROR
"""

_DOMU_INIT = r"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@MARKER@" >/dev/hvc0
while :; do sleep 3600; done
"""

_DOMU_POWER = """#!/bin/sh
echo "xenlab-domu: $0" >/dev/hvc0
exec /bin/busybox {verb} -f
"""


class XenLabError(TinyGuestError):
    """The lab cannot be built or booted here."""


@dataclasses.dataclass(frozen=True)
class Lab:
    xen: Path
    dom0_kernel: Path
    dom0_initrd: Path
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)


# -- cache and versions -----------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("VIRT_TEST_CACHE")
    if base:
        return Path(base).expanduser() / "xenlab"
    return Path.home() / ".cache" / "virt-tests" / "xenlab"


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def _real_kernel(meta: str, flavour: str) -> str:
    proc = _run(["apt-cache", "depends", meta])
    m = re.search(rf"Depends:\s*(linux-image-\S+-{flavour})\b", proc.stdout)
    if not m:
        raise XenLabError(f"apt does not know {meta}; run `apt-get update` first")
    return m.group(1)


def resolve_packages() -> dict[str, str]:
    """{package: candidate version} of everything the lab is made of."""
    wanted = [XEN_PACKAGE, _real_kernel(DOM0_KERNEL_META, "amd64"), _real_kernel(DOMU_KERNEL_META, "cloud-amd64"),
              *USER_PACKAGES]
    return tinyguest.candidate_versions(wanted, XenLabError, "the Xen lab")


def _content_hash() -> str:
    h = hashlib.sha256()
    for part in (str(_FORMAT), _DOM0_INIT, _XLSERVE, _VIRT_HELPER, _SSHD_CONFIG, _DOMU_INIT, _DOMU_POWER,
                 " ".join(DOM0_MODULES), " ".join(USER_PACKAGES), " ".join(USR_BIN_PROGRAMS)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _cache_key(versions: dict[str, str]) -> str:
    h = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]
    xen = versions.get(XEN_PACKAGE, "")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", f"xen_{xen}+pkgs-{h}+init-{_content_hash()}")


# -- building ---------------------------------------------------------------------------------


def vmlinux_of(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage (its payload, decompressed), as extract-vmlinux finds it.

    The setup header says where the payload is (``payload_offset``/``payload_length`` at 0x248,
    relative to the protected-mode code after ``setup_sects`` sectors); its magic says how it is
    compressed."""
    if bzimage[0x202:0x206] != b"HdrS":
        raise XenLabError("not a bzImage (no HdrS setup header)")
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start : start + length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        data = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        data = gzip.decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        zstd = shutil.which("zstd")
        if not zstd:
            raise XenLabError("the kernel is zstd-compressed and the zstd tool is not installed")
        data = subprocess.run([zstd, "-dc"], input=payload, capture_output=True, check=True).stdout
    else:
        raise XenLabError(f"unknown kernel compression (magic {payload[:6]!r})")
    if not data.startswith(b"\x7fELF"):
        raise XenLabError("the bzImage payload is not an ELF kernel")
    return data


def _collect_modules(moddir: Path, wanted: tuple[str, ...]) -> list[tuple[str, bytes]]:
    index = {tinyguest._module_name(p): p for p in (moddir / "kernel").rglob("*.ko*")}
    builtin: set[str] = set()
    with contextlib.suppress(OSError):
        builtin = {tinyguest._module_name(Path(x.strip())) for x in (moddir / "modules.builtin").read_text().split()}
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in builtin:
            return
        path = index.get(name)
        if path is None:
            raise XenLabError(f"dom0 module {name} not found in {moddir.name}")
        data = tinyguest._module_bytes(path)
        for dep in tinyguest._depends(data):
            visit(dep)
        seen.add(name)
        order.append((name, data))

    for name in wanted:
        visit(name)
    return order


def elf_needed(data: bytes) -> list[str]:
    """The DT_NEEDED names of a 64-bit little-endian ELF file ([] for anything else)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    dynamic = None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + k) for k in range(0, dynamic[1], 16)]
    strtab_vaddr = next((v for t, v in entries if t == 5), None)
    if strtab_vaddr is None:
        return []
    strtab = next((off + strtab_vaddr - va for va, off, size in loads if va <= strtab_vaddr < va + size), None)
    if strtab is None:
        return []
    names = []
    for tag, val in entries:
        if tag == 0:
            break
        if tag == 1:
            end = data.index(b"\0", strtab + val)
            names.append(data[strtab + val : end].decode())
    return names


def check_closure(root: Path, programs: list[Path]) -> None:
    """Every library the programs (and their libraries) need is in root's library directories."""
    libdirs = [root / "lib/x86_64-linux-gnu", root / "usr/lib/x86_64-linux-gnu", root / "lib64"]
    todo, seen, missing = list(programs), set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in elf_needed(path.read_bytes()):
            found = next((d / name for d in libdirs if (d / name).exists()), None)
            if found is None:
                missing.add(f"{name} (needed by {path.name})")
            else:
                todo.append(found.resolve())
    if missing:
        raise XenLabError("the dom0 user space lacks libraries: " + ", ".join(sorted(missing)))


def _add_tree(cpio: _Cpio, root: Path, sub: str, skip: tuple[str, ...] = ()) -> None:
    """Copy root/sub into the archive (files, symlinks), keeping paths."""
    base = root / sub
    if not base.exists():
        return
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames.sort()
        for name in sorted(dirnames):
            p = Path(dirpath) / name
            if p.is_symlink():
                cpio.symlink(str(rel_dir / name), os.readlink(p))
        cpio.mkdir(str(rel_dir))
        for name in sorted(filenames):
            rel = rel_dir / name
            if any(str(rel).startswith(s) for s in skip):
                continue
            p = Path(dirpath) / name
            if p.is_symlink():
                cpio.symlink(str(rel), os.readlink(p))
            else:
                cpio.file(str(rel), p.read_bytes(), p.stat().st_mode & 0o777)


def _busybox_into(cpio: _Cpio, busybox: Path) -> None:
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in tinyguest._busybox_applets(busybox):
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")


def _domu_initrd(busybox: Path) -> bytes:
    cpio = _Cpio()
    for d in ("dev", "proc", "sys", "tmp", "root"):
        cpio.mkdir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    _busybox_into(cpio, busybox)
    cpio.file("init", _DOMU_INIT.replace("@MARKER@", DOMU_READY_MARKER).encode(), 0o755)
    # the kernel's orderly_poweroff/orderly_reboot run these; busybox's own poweroff would only
    # signal PID 1 (a shell, which ignores it)
    cpio.file("sbin/poweroff", _DOMU_POWER.format(verb="poweroff").encode(), 0o755)
    cpio.file("sbin/reboot", _DOMU_POWER.format(verb="reboot").encode(), 0o755)
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def _dom0_initrd(root: Path, modules: list[tuple[str, bytes]], domu_kernel: bytes, domu_initrd: bytes,
                 keys: Path) -> bytes:
    cpio = _Cpio()
    for d in ("dev", "proc", "sys", "tmp", "run", "root", "var/log", "var/lib", "lib/modules", "etc/xenlab"):
        cpio.mkdir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    _busybox_into(cpio, root / "bin" / "busybox")
    # the Xen user space: programs, libraries, the dynamic loader, xen's configuration
    for sub in ("lib", "lib64", "usr/lib", "etc/xen", "etc/default"):
        _add_tree(cpio, root, sub, skip=("lib/modules", "usr/lib/debug", "usr/lib/python3.11/test",
                                         "usr/lib/python3.11/ensurepip", "usr/lib/python3.11/idlelib"))
    cpio.file("usr/bin/python3.11", (root / "usr/bin/python3.11").read_bytes(), 0o755)
    for name in USR_BIN_PROGRAMS:
        prog = root / "usr/bin" / name
        if prog.is_symlink():
            cpio.symlink(f"usr/bin/{name}", os.readlink(prog))
        elif prog.is_file():
            cpio.file(f"usr/bin/{name}", prog.read_bytes(), 0o755)
    cpio.mkdir("etc/ssh")
    cpio.file("etc/ssh/sshd_config", _SSHD_CONFIG.replace("@SSH_PORT@", str(SSH_PORT)).encode())
    cpio.file("etc/ssh/ssh_host_ed25519_key", (keys / "host_key").read_bytes(), 0o600)
    cpio.file("etc/ssh/ssh_host_ed25519_key.pub", (keys / "host_key.pub").read_bytes(), 0o644)
    cpio.file("etc/ssh/authorized_keys", (keys / "client_key.pub").read_bytes(), 0o644)
    cpio.symlink("usr/local/bin/virt-remote-helper", "virt-helper")
    for sub in ("usr/sbin",):
        base = root / sub
        for p in sorted(base.iterdir()) if base.is_dir() else []:
            # the Debian wrappers pick the version from /sys/hypervisor; call the programs directly
            if not p.is_symlink() and not (root / "bin" / p.name).exists():
                cpio.file(f"{sub}/{p.name}", p.read_bytes(), p.stat().st_mode & 0o777)
    init = _DOM0_INIT.replace("@LIBEXEC@", XEN_LIBEXEC).replace("@PORT@", str(SERVER_PORT))
    init = init.replace("@HELPER_PORT@", str(HELPER_PORT))
    helper = _VIRT_HELPER.replace("@LIBEXEC@", XEN_LIBEXEC).replace("@PREFIX@", VIRT_PREFIX)
    cpio.file("usr/local/bin/virt-helper", helper.encode(), 0o755)
    cpio.file("init", init.replace("@MARKER@", READY_MARKER).encode(), 0o755)
    cpio.file("usr/local/bin/xlserve", _XLSERVE.encode(), 0o755)
    cpio.file("etc/xenlab/modules", "".join(f"{name}\n" for name, _ in modules).encode())
    for name, data in modules:
        cpio.file(f"lib/modules/{name}.ko", data)
    cpio.file(DOMU_KERNEL, domu_kernel)
    cpio.file(DOMU_RAMDISK, domu_initrd)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n")
    cpio.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    cpio.file("etc/hostname", b"xenlab-dom0\n")
    cpio.file("etc/hosts", b"127.0.0.1 localhost xenlab-dom0\n")
    return gzip.compress(cpio.finish(), compresslevel=1, mtime=0)


def build(dest: Path, versions: dict[str, str]) -> dict[str, Any]:
    """Download, unpack and assemble the lab into the (new, empty) directory ``dest``."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xenlab-dl-") as tmp:
        work = Path(tmp)
        debs = tinyguest._download(versions, work)
        dom0_pkg = next(p for p in versions if p.startswith("linux-image-") and not p.endswith("cloud-amd64"))
        domu_pkg = next(p for p in versions if p.startswith("linux-image-") and p.endswith("cloud-amd64"))
        root, k0, ku = work / "root", work / "dom0-kernel", work / "domu-kernel"
        for pkg, deb in debs.items():
            if pkg == dom0_pkg:
                tinyguest._extract(deb, k0)
            elif pkg == domu_pkg:
                tinyguest._extract(deb, ku)
            else:
                tinyguest._extract(deb, root)
        libexec = root / XEN_LIBEXEC.lstrip("/")
        check_closure(root, [p for p in sorted(libexec.iterdir()) if p.is_file() and not p.is_symlink()]
                      + [root / "usr/bin/python3.11", root / "usr/sbin/sshd"]
                      + [root / "usr/bin" / n for n in USR_BIN_PROGRAMS
                         if (root / "usr/bin" / n).is_file() and not (root / "usr/bin" / n).is_symlink()])
        keys = dest / "ssh"
        make_keys(keys)
        xen_gz = sorted((root / "boot").glob("xen-*.gz"))
        if not xen_gz:
            raise XenLabError(f"{XEN_PACKAGE} has no /boot/xen-*.gz")
        (dest / "xen").write_bytes(gzip.decompress(xen_gz[-1].read_bytes()))
        vmlinuz0 = sorted((k0 / "boot").glob("vmlinuz-*"))[-1]
        (dest / "dom0-vmlinux").write_bytes(vmlinux_of(vmlinuz0.read_bytes()))
        moddir = sorted((k0 / "lib" / "modules").glob("*"))[-1]
        modules = _collect_modules(moddir, DOM0_MODULES)
        domu_kernel = sorted((ku / "boot").glob("vmlinuz-*"))[-1].read_bytes()
        domu_initrd = _domu_initrd(root / "bin" / "busybox")
        (dest / "dom0-initrd.img").write_bytes(_dom0_initrd(root, modules, domu_kernel, domu_initrd, keys))
        manifest = {
            "packages": versions,
            "dom0_kernel_version": moddir.name,
            "dom0_modules": [name for name, _ in modules],
            "xen_cmdline": XEN_CMDLINE,
            "dom0_cmdline": DOM0_CMDLINE,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - t0, 1),
        }
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest


def make_keys(keys: Path) -> None:
    """The lab's SSH keys (OpenSSH's ssh-keygen, ed25519, no passphrase): dom0's host key and the
    client key whose public half dom0's sshd accepts for root."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise XenLabError("ssh-keygen not found: the lab's sshd needs keys (Debian package openssh-client)")
    keys.mkdir(parents=True, exist_ok=True)
    for name, comment in (("host_key", "xenlab-dom0"), ("client_key", "xenlab-client")):
        proc = _run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(keys / name)])
        if proc.returncode != 0:
            raise XenLabError(f"ssh-keygen failed: {proc.stderr.strip()[-300:]}")


def _complete(directory: Path) -> bool:
    return all((directory / n).is_file() for n in ("xen", "dom0-vmlinux", "dom0-initrd.img", "manifest.json",
                                                     "ssh/client_key", "ssh/host_key.pub"))


def _lab_from(directory: Path) -> Lab:
    return Lab(directory / "xen", directory / "dom0-vmlinux", directory / "dom0-initrd.img",
               json.loads((directory / "manifest.json").read_text()))


def _newest_cached(root: Path) -> Path | None:
    suffix = "+init-" + _content_hash()
    found = [d for d in root.glob("*" + suffix) if d.is_dir() and _complete(d)] if root.is_dir() else []
    return max(found, key=lambda d: d.stat().st_mtime) if found else None


def ensure_lab() -> Lab:
    """The cached lab for apt's current package versions, built first if need be (flock, atomic)."""
    root = cache_root()
    try:
        versions = resolve_packages()
    except XenLabError:
        cached = _newest_cached(root)
        if cached is None:
            raise
        return _lab_from(cached)
    final = root / _cache_key(versions)
    # ~100 MB each: older builds (other versions or init revisions) go
    tinyguest.cached_build(root, final, lambda tmp: build(tmp, versions), _complete, keep_others=False)
    return _lab_from(final)


# -- booting and the command channel ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_remote(
    host: str, port: int, command: str, stdin: bytes = b"", timeout: float = 120.0
) -> tuple[int, bytes, bytes]:
    """Run one shell command line in dom0 through the command channel: (rc, stdout, stderr)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n" + stdin)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    header, sep, rest = data.partition(b"\n")
    fields = header.split()
    if not sep or len(fields) != 3:
        raise ConnectionError(f"the dom0 command server answered {data[:200]!r}")
    rc, nout, nerr = (int(f) for f in fields)
    return rc, rest[:nout], rest[nout : nout + nerr]


class XenLab:
    """A running lab: ``XenLab(lab).start()``, then :meth:`run` / :meth:`xl`, then :meth:`stop`."""

    def __init__(self, lab: Lab, workdir: Path | None = None, memory_mb: int = VM_MEMORY_MB) -> None:
        self.lab = lab
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="xenlab-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.console_log = self.workdir / "console.log"
        self.memory_mb = memory_mb
        self.port = 0
        self.helper_port = 0
        self.ssh_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}

    @property
    def toolstack(self) -> str:
        """The ``VIRT_XEN_TOOLSTACK`` value that points virt's Xen driver at this lab."""
        return f"tcp:127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        lab = self.lab
        for p in (lab.xen, lab.dom0_kernel, lab.dom0_initrd):
            if "," in str(p):
                raise XenLabError(f"{p}: QEMU's multiboot module list cannot name a path with a comma")
        return [
            tinyguest.qemu_binary() or tinyguest.QEMU_BINARY,
            "-accel", "tcg",
            "-machine", "pc",
            "-cpu", CPU,
            "-m", str(self.memory_mb),
            "-smp", str(VM_CPUS),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(lab.xen),
            "-append", XEN_CMDLINE,
            "-initrd", f"{lab.dom0_kernel} {DOM0_CMDLINE},{lab.dom0_initrd}",
            "-serial", f"file:{self.console_log}",
            "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:{SERVER_PORT}"
                       f",hostfwd=tcp:127.0.0.1:{self.helper_port}-:{HELPER_PORT}"
                       f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:{SSH_PORT}",
            "-device", "e1000,netdev=n0",
        ]

    def domain_xml(self, name: str = "xenlab") -> str:
        """The same VM as :meth:`argv`, as a domain of virt's own QEMU driver: the machine,
        memory, vCPUs, the multiboot kernel and modules and the serial log in libvirt's XML,
        and QEMU's user network with its forwards as ``<qemu:commandline>`` arguments (libvirt's
        passthrough).  ``self.port`` and friends must be set (:func:`_free_port`)."""
        from xml.sax.saxutils import escape, quoteattr

        lab = self.lab
        netdev = (f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:{SERVER_PORT}"
                  f",hostfwd=tcp:127.0.0.1:{self.helper_port}-:{HELPER_PORT}"
                  f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:{SSH_PORT}")
        model, *features = CPU.split(",")
        cpu_features = "".join(f"<feature policy='require' name={quoteattr(f.lstrip('+'))}/>" for f in features)
        args = "".join(f"<qemu:arg value={quoteattr(a)}/>" for a in ("-netdev", netdev, "-device", "e1000,netdev=n0"))
        return (
            "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
            f"<name>{escape(name)}</name>"
            f"<memory unit='MiB'>{self.memory_mb}</memory><vcpu>{VM_CPUS}</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type>"
            f"<kernel>{escape(str(lab.xen))}</kernel>"
            f"<initrd>{escape(f'{lab.dom0_kernel} {DOM0_CMDLINE},{lab.dom0_initrd}')}</initrd>"
            f"<cmdline>{escape(XEN_CMDLINE)}</cmdline></os>"
            "<features><acpi/><apic/></features>"  # Xen finds its CPUs in ACPI (no <acpi/>: -machine acpi=off)
            f"<cpu mode='custom' match='exact'><model>{escape(model)}</model>{cpu_features}</cpu>"
            "<on_poweroff>destroy</on_poweroff>"
            f"<devices><serial type='file'><source path={quoteattr(str(self.console_log))}/></serial></devices>"
            f"<qemu:commandline>{args}</qemu:commandline>"
            "</domain>"
        )

    def start(self, timeout: float = 180.0) -> XenLab:
        for _attempt in range(3):
            self.port, self.helper_port, self.ssh_port = _free_port(), _free_port(), _free_port()
            t0 = time.monotonic()
            with open(self.workdir / "qemu.err", "wb") as errfile:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=errfile)
            try:
                tinyguest.wait_for_text(self.console_log, READY_MARKER, timeout, proc=self.proc, interval=0.05)
            except TimeoutError:
                err = (self.workdir / "qemu.err").read_text(errors="replace")
                self.stop()
                if "hostfwd" in err or "Could not set up host forwarding" in err:
                    continue
                raise
            self.timings["boot_to_ready_s"] = time.monotonic() - t0
            deadline = time.monotonic() + 30
            while True:
                try:
                    rc, _out, err_ = self.run("xl info")
                except OSError:
                    rc, err_ = -1, b""
                if rc == 0:
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise XenLabError(f"xl info fails in the lab's dom0: {err_[-500:]!r}")
                time.sleep(0.2)
            self.timings["boot_to_xl_info_s"] = time.monotonic() - t0
            return self
        raise XenLabError("QEMU could not forward a host port to dom0")

    def run(self, command: str, stdin: bytes = b"", timeout: float = 120.0) -> tuple[int, bytes, bytes]:
        return run_remote("127.0.0.1", self.port, command, stdin, timeout)

    def xl(self, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        rc, out, err = self.run(shlex.join(["xl", *args]), stdin)
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def install_virt(self, repo: Path | None = None) -> float:
        """Copy virt (core, Xen driver, remote helper) and its dependencies into dom0; seconds taken.

        The code comes from this checkout (``packages/*/src``) and the dependencies (pluggy,
        attrs, lxml) from the running interpreter's site-packages, with the distributions'
        metadata, so the entry points that find drivers work there too."""
        t0 = time.monotonic()
        repo = repo or Path(__file__).resolve().parents[1]
        tree = {
            "virt": repo / "packages/virt-core/src/virt",
            "virt_xen": repo / "packages/virt-driver-xen/src/virt_xen",
            "virt_remote": repo / "packages/virt-remote/src/virt_remote",
            "virt_remote_helper.py": repo / "packages/virt-remote/src/virt_remote_helper.py",
        }
        import importlib.metadata as md

        for dist, top in (("pluggy", ("pluggy",)), ("attrs", ("attr", "attrs")), ("lxml", ("lxml",)),
                          ("typing_extensions", ("typing_extensions.py",)), ("virt-core", ()),
                          ("virt-driver-xen", ()), ("virt-remote", ())):
            with contextlib.suppress(md.PackageNotFoundError):
                d = md.distribution(dist)
                base = Path(str(d.locate_file("")))
                for name in top:
                    if (base / name).exists():
                        tree.setdefault(name, base / name)
                info = getattr(d, "_path", None)
                if info is not None:
                    tree[Path(info).name] = Path(info)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
            for name, path in tree.items():
                tar.add(str(path), arcname=name,
                        filter=lambda ti: None if "__pycache__" in ti.name or ti.name.endswith(".pyi") else ti)
        rc, _out, err = self.run(f"mkdir -p {VIRT_PREFIX} /var/lib/virt/xen && tar -xzf - -C {VIRT_PREFIX}",
                                 buf.getvalue())
        if rc != 0:
            raise XenLabError(f"cannot copy virt into dom0: {err.decode(errors='replace')[-300:]}")
        return time.monotonic() - t0

    def remote_uri(self) -> str:
        """A ``xen+ext://`` URI: virt's remote plugin, its helper in dom0 serving ``xen:///system``."""
        command = f"{sys.executable} {Path(__file__).resolve()} relay {self.helper_port}"
        return "xen+ext:///system?command=" + urllib.parse.quote(command, safe="/")

    def ssh_uri(self) -> str:
        """A ``xen+ssh://`` URI: virt's remote plugin over SSH (asyncssh) to dom0's sshd, which
        runs the helper serving ``xen:///system`` there; the lab's client key, and a known_hosts
        file naming dom0's host key at this boot's forwarded port."""
        keys = self.lab.xen.parent / "ssh"
        known = self.workdir / "known_hosts"
        host_key = (keys / "host_key.pub").read_text().split()
        known.write_text(f"[127.0.0.1]:{self.ssh_port} {host_key[0]} {host_key[1]}\n")
        query = (f"keyfile={urllib.parse.quote(str(keys / 'client_key'), safe='/')}"
                 f"&known_hosts={urllib.parse.quote(str(known), safe='/')}")
        return f"xen+ssh://root@127.0.0.1:{self.ssh_port}/system?{query}"

    def guest_console(self, name: str) -> str:
        """What the guest ``name`` wrote on its console (xenconsoled's log in dom0)."""
        rc, out, _ = self.run(f"cat /var/log/xen/console/guest-{shlex.quote(name)}.log")
        return out.decode(errors="replace") if rc == 0 else ""

    def console(self) -> str:
        with contextlib.suppress(OSError):
            return self.console_log.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.proc is not None:
            tinyguest.kill(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> XenLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pv_config(name: str, memory_mb: int = 128) -> str:
    """An xl.cfg for the lab's PV guest."""
    return (f'name = "{name}"\ntype = "pv"\nkernel = "{DOMU_KERNEL}"\nramdisk = "{DOMU_RAMDISK}"\n'
            f'extra = "{DOMU_CMDLINE}"\nmemory = {memory_mb}\nvcpus = 1\n')


def lab_or_skip() -> Lab:
    """The lab, or pytest.skip with the reason (VIRT_REQUIRE_ALL=1 makes that a failure)."""
    import pytest

    if tinyguest.qemu_binary() is None:
        pytest.skip(f"requires {tinyguest.QEMU_BINARY} (Debian package qemu-system-x86)")
    try:
        return ensure_lab()
    except TinyGuestError as exc:
        pytest.skip(f"cannot build the Xen lab: {exc}")
    raise AssertionError("unreachable")


def _boot_demo(lab: Lab) -> int:
    with XenLab(lab) as vm:
        vm.start()
        for k, v in vm.timings.items():
            print(f"{k}: {v:.1f}")
        t = time.monotonic()
        steps: list[tuple[str, list[str]]] = [
            ("create", ["create", "/proc/self/fd/0"]),
            ("list", ["list"]),
        ]
        for label, args in steps:
            rc, out, err = vm.xl(*args, stdin=pv_config("demo").encode() if label == "create" else b"")
            print(f"{label}: rc={rc} {time.monotonic() - t:.1f}s\n{out}{err}")
        deadline = time.monotonic() + 60
        while DOMU_READY_MARKER not in vm.guest_console("demo") and time.monotonic() < deadline:
            time.sleep(0.5)
        print(f"domU ready: {time.monotonic() - t:.1f}s")
        for label, args in [("pause", ["pause", "demo"]), ("unpause", ["unpause", "demo"]),
                            ("save", ["save", "demo", "/tmp/demo.save"]), ("restore", ["restore", "/tmp/demo.save"]),
                            ("list -l", ["list", "-l"]), ("shutdown", ["shutdown", "-w", "demo"])]:
            rc, out, err = vm.xl(*args)
            print(f"{label}: rc={rc} {time.monotonic() - t:.1f}s\n{out[:300]}{err}")
    return 0


def relay(port: int, host: str = "127.0.0.1") -> int:
    """Copy stdin to a TCP connection and the connection to stdout (the ``ext`` command of
    :meth:`XenLab.remote_uri`): virt's remote plugin talks to the helper in dom0 through it."""
    sock = socket.create_connection((host, port))

    def up() -> None:
        while True:
            data = os.read(0, 65536)
            if not data:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                return
            sock.sendall(data)

    threading.Thread(target=up, daemon=True).start()
    while True:
        data = sock.recv(65536)
        if not data:
            return 0
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "build"
    if cmd == "relay" and len(argv) > 2:
        return relay(int(argv[2]))
    if cmd not in ("build", "boot", "shell"):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        lab = ensure_lab()
    except TinyGuestError as exc:
        print(f"xenlab: {exc}", file=sys.stderr)
        return 1
    print(f"xen:         {lab.xen}\ndom0 kernel: {lab.dom0_kernel}\ndom0 initrd: {lab.dom0_initrd}")
    print(f"ready in {time.monotonic() - t0:.1f} s (build took {lab.manifest.get('build_seconds')} s)")
    if cmd == "boot":
        return _boot_demo(lab)
    if cmd == "shell":
        with XenLab(lab) as vm:
            vm.start()
            print(f"dom0 is up ({vm.timings}); console log {vm.console_log}; type shell commands")
            for line in sys.stdin:
                rc, out, err = vm.run(line.strip())
                sys.stdout.write(out.decode(errors="replace") + err.decode(errors="replace") + f"[rc={rc}]\n")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
