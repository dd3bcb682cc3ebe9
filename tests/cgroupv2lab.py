"""The cgroup v2 lab: this checkout's tests run in a VM whose only cgroup hierarchy is v2.

    python tests/cgroupv2lab.py build                    # build (or find) the cached lab
    python tests/cgroupv2lab.py run [PYTEST ARGS...]     # run pytest in the lab, print its output

The build machines mount memory, cpu and pids as cgroup v1 hierarchies, so code for a pure v2
host (``memory.max``, ``cpu.max``, ``cpu.weight``, ``pids.max`` and ``cgroup.freeze`` in one
tree) cannot run on them for real.  The lab boots Debian's cloud kernel (the tiny guest's, see
:mod:`tinyguest`) with ``cgroup_no_v1=all`` and mounts ``cgroup2`` alone on
``/sys/fs/cgroup``; nothing else mounts cgroups there.

**No copy of Python or of the code**: the guest mounts, read-only over 9p (QEMU's
``-virtfs``), the host directories the running interpreter needs, at the same paths
(``/usr``, the interpreter's installation, its virtual environment and this checkout, the
cached static busybox): the tests run in the guest with this very interpreter, its
site-packages and this checkout's sources, as they are now.  ``/tmp``, ``/run``, ``/root``
and ``/var`` are tmpfs; one more 9p share, read-write, is the job directory: the command
to run, its output (``out.log``) and its exit status (``rc``), which the host-side test
reads (the serial console gets the output too).

What is built (cached under ``$VIRT_TEST_CACHE/cgroupv2lab`` or
``~/.cache/virt-tests/cgroupv2lab``, one directory per package versions + init revision, under
a flock and renamed into place): ``vmlinuz`` (the cloud kernel) and ``initrd.img`` (static
busybox, the 9p and virtio modules, the first-stage ``/init``), from ``linux-image-amd64``'s
kernel package and ``busybox-static`` (``apt-get download``, ``dpkg-deb -x``, nothing
installed); the helpers are :mod:`tinyguest`'s and :mod:`xenlab`'s, imported.

Accelerator: TCG by default.  On the build machines ``/dev/kvm`` opens but a guest kernel
under it never gets past the boot loader (it spins in the host kernel; ``-cpu host`` even
fails on MSR 0x10a), as :mod:`tinyguest` notes; ``VIRT_CGROUPV2LAB_ACCEL=kvm`` asks for KVM
(``-accel kvm -accel tcg``: TCG when KVM cannot be initialised) where it works.

Stdlib only (plus the sibling :mod:`tinyguest` and :mod:`xenlab`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinyguest
import xenlab
from tinyguest import TinyGuestError, _Cpio

REPO = Path(__file__).resolve().parents[1]
MARKER = "VIRT-CGROUPV2LAB-DONE"
# 9p over virtio (and what it needs); netfs is built in or a dependency, found by modinfo
MODULES = ("virtio_pci", "9pnet_virtio", "9p")
KERNEL_META = "linux-image-amd64"
CMDLINE = " ".join([*tinyguest.CMDLINE.split(), "cgroup_no_v1=all", "systemd.unified_cgroup_hierarchy=1"])
MEMORY_MB = 768

_FORMAT = 2  # 2: /tmp and /run are mounted before the shares

# The first stage, in the initramfs: modules, a tmpfs root with the host's directories on 9p,
# then the second stage (in the job directory) in it.
_INIT = r"""#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "cgroupv2lab: $*"; echo "@MARKER@ rc=125"; poweroff -f; }
for mod in $(cat /etc/cgroupv2lab/modules); do
    insmod "/lib/modules/$mod.ko" || fail "insmod $mod failed"
done
R=/newroot
mount -t tmpfs -o mode=755 root $R || fail "no tmpfs"
mkdir -p $R/job $R/proc $R/sys $R/dev $R/tmp $R/run $R/root $R/var/tmp $R/etc $R/.lab
# /tmp and /run before the shares: a checkout (or a venv) below them is mounted on top
mount -t tmpfs tmp $R/tmp && mount -t tmpfs run $R/run || fail "no tmpfs for /tmp, /run"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job $R/job || fail "cannot mount the job share"
while read -r kind a b; do
    case "$kind" in
        share) mkdir -p "$R$b" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro "$a" "$R$b" \
                   || fail "cannot mount share $a on $b" ;;
        link) ln -s "$b" "$R$a" ;;
    esac
done < $R/job/layout
cp /bin/busybox $R/.lab/busybox
for d in dev proc sys; do mount --move /$d $R/$d; done
exec switch_root $R /.lab/busybox sh /job/stage2
"""

# The second stage, as the root's init: cgroup v2 alone, the command, its status, power off.
_STAGE2 = r"""export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root USER=root
B=/.lab/busybox
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$B mount -t tmpfs shm /dev/shm
$B mount -t cgroup2 cgroup2 /sys/fs/cgroup
$B ip link set lo up
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo 'root:x:0:' > /etc/group
echo '127.0.0.1 localhost' > /etc/hosts
$B hostname cgroupv2lab
echo "cgroupv2lab: cgroups: $($B grep cgroup /proc/mounts | $B tr '\n' ';')"
cd /job
$B sh /job/command > /job/out.log 2>&1
rc=$?
$B cat /job/out.log
echo $rc > /job/rc
echo "@MARKER@ rc=$rc"
$B sync
$B poweroff -f
"""


class LabError(TinyGuestError):
    """The lab cannot be built or booted here."""


@dataclasses.dataclass(frozen=True)
class Lab:
    kernel: Path
    initrd: Path
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Result:
    rc: int
    output: str
    serial: str
    seconds: float


def cache_root() -> Path:
    base = os.environ.get("VIRT_TEST_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "virt-tests") / "cgroupv2lab"


def _content_hash() -> str:
    h = hashlib.sha256()
    for part in (str(_FORMAT), _INIT, " ".join(MODULES)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _cache_key(versions: dict[str, str]) -> str:
    parts = [f"{p}_{v}" for p, v in sorted(versions.items())]
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "+".join(parts) + "+init-" + _content_hash())


def resolve_packages() -> dict[str, str]:
    """{package: candidate version}: the generic kernel's real package and busybox-static
    (remembered while apt's lists do not change: apt-cache is slow here)."""

    def resolve() -> dict[str, str]:
        wanted = [xenlab._real_kernel(KERNEL_META, "amd64"), tinyguest.BUSYBOX_PACKAGE]
        return tinyguest.candidate_versions(wanted, LabError, "the cgroup v2 lab")

    return tinyguest.remembered(cache_root() / "resolved.json", resolve)


def build(dest: Path, versions: dict[str, str]) -> dict[str, Any]:
    """Download the tiny guest's packages and assemble the lab into the empty directory ``dest``."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cgroupv2lab-dl-") as tmp:
        work = Path(tmp)
        debs = tinyguest._download(versions, work)
        root = work / "root"
        for deb in debs.values():
            tinyguest._extract(deb, root)
        vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
        moddirs = sorted((root / "lib" / "modules").glob("*"))
        if not vmlinuz or not moddirs:
            raise LabError("the kernel package has no /boot/vmlinuz-* or /lib/modules/*")
        try:
            modules = xenlab._collect_modules(moddirs[-1], MODULES)
        except xenlab.XenLabError as exc:
            raise LabError(str(exc)) from None
        cpio = _Cpio()
        for d in ("dev", "proc", "sys", "newroot", "etc/cgroupv2lab", "lib/modules"):
            cpio.mkdir(d)
        cpio.chardev("dev/console", 5, 1)
        cpio.chardev("dev/null", 1, 3, 0o666)
        xenlab._busybox_into(cpio, root / "bin" / "busybox")
        cpio.file("init", _INIT.replace("@MARKER@", MARKER).encode(), 0o755)
        cpio.file("etc/cgroupv2lab/modules", "".join(f"{name}\n" for name, _ in modules).encode())
        for name, data in modules:
            cpio.file(f"lib/modules/{name}.ko", data)
        shutil.copy2(vmlinuz[-1], dest / "vmlinuz")
        (dest / "initrd.img").write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
        manifest = {"packages": versions, "kernel_version": moddirs[-1].name,
                    "modules": [name for name, _ in modules], "cmdline": CMDLINE,
                    "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "build_seconds": round(time.monotonic() - t0, 1)}
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest


def _complete(directory: Path) -> bool:
    return all((directory / n).is_file() for n in ("vmlinuz", "initrd.img", "manifest.json"))


def _lab_from(directory: Path) -> Lab:
    return Lab(directory / "vmlinuz", directory / "initrd.img", json.loads((directory / "manifest.json").read_text()))


def ensure_lab() -> Lab:
    """The cached lab for apt's current package versions, built first if need be (flock, atomic)."""
    root = cache_root()
    try:
        versions = resolve_packages()
    except TinyGuestError:
        found = sorted((d for d in root.glob("*+init-" + _content_hash()) if _complete(d)),
                       key=lambda d: d.stat().st_mtime) if root.is_dir() else []
        if not found:
            raise
        return _lab_from(found[-1])
    final = root / _cache_key(versions)
    tinyguest.cached_build(root, final, lambda tmp: build(tmp, versions), _complete, keep_others=False)
    return _lab_from(final)


# -- what the guest mounts from the host ------------------------------------------------------


def _top_level_links() -> list[tuple[str, str]]:
    """``/bin`` -> ``usr/bin`` and the like (a merged-/usr host): made the same in the guest."""
    out = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            out.append((f"/{name}", os.readlink(path)))
    return out


def host_shares(extra: tuple[Path, ...] = ()) -> list[Path]:
    """The host directories the guest mounts read-only, at the same paths: ``/usr`` (and the
    top-level directories that are not links into it), the interpreter's installation and
    virtual environment, this checkout, and ``extra``; none inside another."""
    wanted = [Path("/usr")]
    wanted += [Path("/", n) for n in ("bin", "sbin", "lib", "lib64") if Path("/", n).is_dir()
               and not Path("/", n).is_symlink()]
    for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], os.path.realpath(sys.executable)):
        wanted.append(Path(os.path.realpath(p)))
    wanted.append(Path(os.path.realpath(sys.executable)).parent.parent)
    wanted += [REPO, *extra]
    out: list[Path] = []
    for path in sorted({p.resolve() for p in wanted if p.exists()}, key=lambda p: len(p.parts)):
        if path.is_file():
            path = path.parent
        if not any(path == o or o in path.parents for o in out):
            out.append(path)
    return out


def qemu_argv(lab: Lab, job: Path, shares: list[Path], *, accel: str | None = None) -> list[str]:
    accel = accel or os.environ.get("VIRT_CGROUPV2LAB_ACCEL", "tcg")
    argv = [tinyguest.qemu_binary() or tinyguest.QEMU_BINARY]
    argv += ["-accel", "kvm", "-accel", "tcg"] if accel == "kvm" else ["-accel", "tcg"]
    argv += ["-machine", "q35", "-m", str(MEMORY_MB), "-smp", "1", "-nodefaults", "-no-user-config",
             "-display", "none", "-no-reboot", "-kernel", str(lab.kernel), "-initrd", str(lab.initrd),
             "-append", CMDLINE, "-serial", f"file:{job / 'serial.log'}",
             "-virtfs", f"local,path={job},mount_tag=job,security_model=none,multidevs=remap"]
    for index, path in enumerate(shares):
        argv += ["-virtfs", f"local,path={path},mount_tag=h{index},security_model=none,readonly=on,multidevs=remap"]
    return argv


def run(command: str, *, env: dict[str, str] | None = None, timeout: float = 300.0,
        extra_shares: tuple[Path, ...] = (), lab: Lab | None = None) -> Result:
    """Boot the lab, run ``command`` (a shell command line) in this checkout's directory with
    ``env`` added, and return its exit status and output."""
    lab = lab or ensure_lab()
    shares = host_shares(extra_shares)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cgroupv2lab-") as tmp:
        job = Path(tmp)
        layout = [f"share h{i} {p}" for i, p in enumerate(shares)]
        layout += [f"link {name} {target}" for name, target in _top_level_links()]
        (job / "layout").write_text("\n".join(layout) + "\n")
        (job / "stage2").write_text(_STAGE2.replace("@MARKER@", MARKER))
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
        (job / "command").write_text(f"{exports}cd {shlex.quote(str(REPO))}\n{command}\n")
        argv = qemu_argv(lab, job, shares)
        with open(job / "qemu.log", "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            status = tinyguest.wait_exit(proc, timeout)
        finally:
            tinyguest.kill(proc)
        serial = (job / "serial.log").read_text(errors="replace") if (job / "serial.log").exists() else ""
        qemu_out = (job / "qemu.log").read_text(errors="replace")
        if status is None:
            raise LabError(f"the lab did not finish within {timeout:.0f} s; serial: {serial[-3000:]}")
        rc_text = (job / "rc").read_text().strip() if (job / "rc").exists() else ""
        output = (job / "out.log").read_text(errors="replace") if (job / "out.log").exists() else ""
        if not rc_text.isdigit():
            raise LabError(f"the lab ended without running the command (QEMU exit {status}): "
                           f"{qemu_out[-1000:]} serial: {serial[-3000:]}")
        return Result(int(rc_text), output, serial, time.monotonic() - t0)


#: what the lab's pytest runs get: nothing skipped, cgroup v2 insisted on, nothing written to the
#: (read-only) checkout
LAB_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "VIRT_REQUIRE_ALL": "1", "VIRT_LXC_EXPECT_CGROUP": "2"}


def pytest_command(*args: str) -> str:
    """The shell command that runs pytest in the lab with this interpreter."""
    return shlex.join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args])


def lab_or_skip() -> Lab:
    """The lab, or pytest.skip with the reason (VIRT_REQUIRE_ALL=1 makes that a failure)."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("the cgroup v2 lab's containers need root")
    if tinyguest.qemu_binary() is None:
        pytest.skip(f"requires {tinyguest.QEMU_BINARY} (Debian package qemu-system-x86)")
    try:
        return ensure_lab()
    except TinyGuestError as exc:
        pytest.skip(f"cannot build the cgroup v2 lab: {exc}")
    raise AssertionError("unreachable")


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "build"
    if cmd == "build":
        lab = ensure_lab()
        print(json.dumps({"kernel": str(lab.kernel), "initrd": str(lab.initrd), **lab.manifest}, indent=2))
        return 0
    if cmd == "run":
        args = argv[2:] or ["packages/virt-driver-lxc/tests/test_lxc_limits.py"]
        result = run(pytest_command(*args),
                     env=LAB_ENV)
        print(result.output)
        print(f"cgroupv2lab: rc={result.rc} in {result.seconds:.1f} s", file=sys.stderr)
        return result.rc
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv))
