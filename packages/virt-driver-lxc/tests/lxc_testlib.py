"""Helpers of the LXC driver's tests: a static busybox, rootfs trees, domain XML, cleanup.

A module of its own (never ``from conftest import``): with every package's tests in one
pytest run, ``conftest`` could be another package's.

The busybox is Debian's ``busybox-static``: a static ``busybox`` already installed is used,
else the package is fetched once with ``apt-get download`` and cached under
``$VIRT_TEST_CACHE/busybox`` (or ``~/.cache/virt-tests/busybox``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import termios
import time
import tty
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path

import pytest

APPLETS = ("sh", "ps", "hostname", "sleep", "cat", "echo", "ls", "dd", "true", "false", "mkdir", "grep", "head",
           "id", "kill", "mount", "readlink", "stat", "test", "wc", "env", "mkfifo", "od", "reboot", "poweroff")


class BusyboxUnavailable(RuntimeError):
    pass


def _is_static(path: str) -> bool:
    try:
        with open(path, "rb") as src:
            head = src.read(4096)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head


def cache_dir() -> Path:
    base = os.environ.get("VIRT_TEST_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "virt-tests") / "busybox"


def static_busybox() -> Path:
    """A static busybox binary, fetched and cached when needed."""
    for candidate in (os.environ.get("VIRT_TEST_BUSYBOX"), shutil.which("busybox"), "/bin/busybox"):
        if candidate and _is_static(candidate):
            return Path(candidate)
    cached = cache_dir() / "busybox"
    if cached.exists():
        return cached
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
        proc = subprocess.run(["apt-get", *sandbox, "download", "busybox-static"], cwd=tmp, capture_output=True,
                              text=True, check=False)
        debs = list(Path(tmp).glob("busybox-static_*.deb"))
        if proc.returncode != 0 or not debs:
            raise BusyboxUnavailable(f"cannot download busybox-static: {proc.stderr.strip()[-300:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/x"], check=True)
        shutil.copy2(f"{tmp}/x/bin/busybox", f"{tmp}/busybox")
        os.replace(f"{tmp}/busybox", cached)
    return cached


def busybox_or_skip() -> Path:
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    try:
        return static_busybox()
    except (BusyboxUnavailable, OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no static busybox: {exc}")


def make_rootfs(where: Path, busybox: Path, init: str | None = None) -> Path:
    """A minimal root: /bin/busybox and its applets, /sbin/init (``init``, a sh script)."""
    for sub in ("bin", "sbin", "proc", "sys", "dev", "tmp", "share", "etc"):
        (where / sub).mkdir(parents=True, exist_ok=True)
    target = where / "bin" / "busybox"
    if not target.exists():
        try:
            os.link(busybox, target)
        except OSError:
            shutil.copy2(busybox, target)
    for applet in APPLETS:
        link = where / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    if init is not None:
        script = where / "sbin" / "init"
        script.write_text("#!/bin/sh\n" + init + "\n")
        script.chmod(0o755)
    return where


#: an init that counts in /share/counter until asked to stop
COUNTER_INIT = """trap 'echo bye > /share/bye; exit 0' TERM
echo $$ > /share/pid
hostname > /share/hostname
i=0
while :; do i=$((i+1)); echo $i > /share/counter; sleep 0.05; done
"""

#: an init with a shell on the console (prompt "lxc# ")
SHELL_INIT = """trap 'exit 0' TERM
export PS1='lxc# '
while :; do sh; done
"""


def domain_xml(name: str, rootfs: Path, *, share: Path | None = None, uuid: str | None = None,
               memory_mib: int = 64, init: str = "/sbin/init", extra: str = "", devices: str = "",
               initargs: tuple[str, ...] = ()) -> str:
    share_fs = (f"<filesystem type='mount'><source dir='{share}'/><target dir='/share'/></filesystem>"
                if share is not None else "")
    args = "".join(f"<initarg>{a}</initarg>" for a in initargs)
    return f"""<domain type='lxc'>
  <name>{name}</name>
  <uuid>{uuid or uuidlib.uuid4()}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type><init>{init}</init>{args}</os>
  {extra}
  <devices>
    <filesystem type='mount'><source dir='{rootfs}'/><target dir='/'/></filesystem>
    {share_fs}
    <console type='pty'/>
    {devices}
  </devices>
</domain>
"""


def kill_leftovers(root: Path) -> None:
    """Nothing a test started may outlive it: controllers, their containers, their cgroups."""
    run = root / "run" / "lxc"
    for status_file in run.glob("*.json"):
        if status_file.name.count(".") != 1:
            continue
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            continue
        pid = int(status.get("pid", 0))
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        cgroups = status.get("cgroups") or {}
        dirs = list((cgroups.get("dirs") or {}).values()) + ([cgroups["v2dir"]] if cgroups.get("v2dir") else [])
        for directory in dirs:
            with contextlib.suppress(OSError):
                for p in Path(directory, "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(p), signal.SIGKILL)
            with contextlib.suppress(OSError):
                Path(directory, "freezer.state").write_text("THAWED")
        for directory in dirs:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # its processes are still dying
                    with contextlib.suppress(OSError):
                        for p in Path(directory, "cgroup.procs").read_text().split():
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(int(p), signal.SIGKILL)
                    time.sleep(0.01)


def written(path: Path) -> bool:
    """Whether a container's ``echo ... > path`` is done: the shell makes the file (the
    redirection) before echo writes the line, so the file alone can still be empty."""
    try:
        return path.read_text().endswith("\n")
    except FileNotFoundError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Console:
    """A container's console through the pty ``open_console`` names."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)
        self.buffer = b""

    def read_until(self, text: str, timeout: float = 10.0) -> str:
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{text!r} not seen on the console within {timeout} s: {self.buffer[-400:]!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError(f"console closed before {text!r}")
                self.buffer += chunk
        end = self.buffer.index(needle) + len(needle)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return out.decode(errors="replace")

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        os.close(self.fd)


def host_mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as src:
        return [line for line in src if text in line]


def remove_empty_parents() -> None:
    """The ``virt-lxc`` cgroups that hold containers' and spares' cgroups, once empty (after
    letting this process's spare controller go)."""
    from virt_lxc._driver import _controllers

    _controllers.close()
    top = Path("/sys/fs/cgroup")
    # where the driver makes them: right below a hierarchy's root (v1) or the root (v2); a
    # walk of every cgroup fails when one vanishes under it
    parents = [*top.glob("virt-lxc"), *top.glob("*/virt-lxc")]
    wait_until(lambda: not any(next(p.glob("spare-*"), None) for p in parents), timeout=5)
    for parent in parents:
        with contextlib.suppress(OSError):
            parent.rmdir()


def init_pid(root: Path, uuid: str, timeout: float = 10.0) -> int:
    """The host pid of a running container's init, from its controller's record (written just
    after the start returns)."""
    run = root / "run" / "lxc"
    found: list[int] = []

    def look() -> bool:
        try:
            status = json.loads((run / f"{uuid}.json").read_text())
            record = json.loads((run / f"{uuid}.ctl.json").read_text())
        except (OSError, ValueError):
            return False
        if record.get("controller") != status.get("pid") or not record.get("init"):
            return False
        found.append(int(record["init"]))
        return True

    if not wait_until(look, timeout):
        raise TimeoutError(f"no init recorded for {uuid}")
    return found[-1]
