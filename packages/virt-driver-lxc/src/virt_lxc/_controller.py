"""The controller of one container: ``python -S -E -s -c 'import _controller; ...'`` with
this directory first on ``sys.path`` (imported, not run as a script, so that its compiled code
is cached; see ``_driver._CONTROLLER_ARGV``).

One small process per running container, as libvirt's ``libvirt_lxc``.  It imports only
``os``, ``select``, ``struct``, ``ctypes``, ``termios``, ``fcntl`` and the C modules
``_signal``, ``_socket`` and ``_json`` (the Python ``signal``, ``socket`` and ``json`` import
``enum``, ``re`` and more), so it stays small and starts fast (``docs/lxc.md`` gives its
measured memory), and it runs in a session of its own, so it outlives the process that
started it.  It:

* starts as a *spare*, before any container needs it: the driver moves it into the cgroups
  it made for it (``VIRT_LXC_SPARE``) while it starts and says so (``j``) on its stdin; it
  makes its console's ptys (:class:`Consoles`), forks its container's init-to-be into a new
  PID namespace with its mount, UTS, IPC and network namespaces and what does not depend on
  the spec made (:class:`Child`), says ``j PTY`` (or ``n PTY`` when it is not in the
  cgroups) on its stdin, a socket to the driver, and waits there for the container's spec,
  one line of JSON.  EOF instead means nobody needs it: it goes home and removes its cgroups;
* hands the spec to the child, which mounts the root and the spec's filesystems, its own
  ``/proc``, a ``/dev`` with only the safe nodes, pivots into the root, sets the hostname,
  brings ``lo`` up, takes the console, enters a user namespace when the spec maps ids, and
  execs the init; nothing is mounted in the host's mount namespace;
* answers the driver with the outcome (``{"ok": true, "init": PID, "tty": PTY}`` or the
  error), then writes its record (``UUID.ctl.json``) and leaves the container's freezer
  cgroup;
* holds the console: it relays the container's pty to the one a user attaches to;
* reaps the init the moment it exits, records why, and exits at once; a reboot (the
  ``reboot`` request, or the init killed by SIGHUP as the kernel does for ``reboot(2)`` in a
  PID namespace) starts the init again in fresh namespaces instead;
* answers a line of JSON per request on the unix socket ``UUID8.ctl``: ``state``,
  ``console``, ``shutdown``, ``reboot``, ``destroy``.

This file must not import anything from ``virt`` or ``virt_lxc``: it runs with ``-S`` (no
site-packages), imported from its own directory.
"""

from __future__ import annotations

import _json
import _socket as socket
import ctypes
import fcntl
import os
import select
import struct
import termios

# No ``typing`` at run time (it is not free); mypy treats TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any, NoReturn

    Spec = dict[str, Any]
else:
    # the C modules: ``signal``, ``socket`` and ``json`` import ``enum``, ``re`` and more, a
    # third of the controller's start-up
    import _signal as signal


class _JsonContext:
    """What ``_json``'s scanner asks of a decoder (``json.JSONDecoder``'s defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_JsonContext())  # type: ignore[arg-type]  # it reads these attributes
_quote = _json.encode_basestring_ascii


def loads(text: str | bytes) -> Any:
    """``json.loads`` (without importing ``json``): one JSON value, ValueError otherwise."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"not JSON: {text[:80]!r}") from None
    if text[end:].strip():
        raise ValueError(f"extra data after JSON: {text[end:end + 80]!r}")
    return value


def dumps(value: Any) -> str:
    """``dumps(value, sort_keys=True)`` for what the controller writes: dicts with string
    keys, lists, strings, ints, bools, None."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(_quote(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quote(str(k))}: {dumps(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
SYS_PIVOT_ROOT = 155  # x86_64
SYS_CLONE = 56  # x86_64
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 1

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"cannot mount {source or fstype} on {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "cannot create namespaces (unshare)")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write_atomic(path: str, data: Spec) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, dumps(data).encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _raw(fd: int) -> None:
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                  | termios.IGNCR | termios.ICRNL | termios.IXON)
    attrs[1] &= ~termios.OPOST
    attrs[2] &= ~(termios.CSIZE | termios.PARENB)
    attrs[2] |= termios.CS8
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            data = src.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def fork_into_new_pid_namespace() -> int:
    """``fork()`` whose child is pid 1 of a new PID namespace.

    The raw ``clone`` system call (no new stack: the child runs on a copy of ours, as after
    ``fork``), because ``unshare(CLONE_NEWPID)`` can be done once per process only, and a
    reboot needs a fresh namespace.  The controller is single-threaded, so the child needs
    none of what ``os.fork`` repairs in a threaded interpreter; it execs the init soon.
    """
    pid = _libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(CLONE_NEWPID | signal.SIGCHLD), ctypes.c_void_p(0),
                        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_ulong(0))
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot create the container's PID namespace: {os.strerror(err)}")
    return int(pid)


# -- inside the container: runs as its pid 1, then execs the init ---------------------------


def _mkdirs(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, 0o755, exist_ok=True)


def _touch(path: str) -> None:
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _inside(root: str, target: str) -> str:
    """``target`` (an absolute path in the container) under ``root``, refusing a symlink that
    points out of the container."""
    full = os.path.normpath(root + "/" + target.lstrip("/"))
    real = os.path.realpath(full)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise OSError(0, f"mount target {target} leads out of the container's root")
    return real


def _setup_dev(dev: str, console: str) -> None:
    _mkdirs(dev)
    mount("devfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for node in DEV_NODES:
        path = f"{dev}/{node}"
        _touch(path)
        mount(f"/dev/{node}", path, None, MS_BIND)
    os.mkdir(dev + "/pts", 0o755)
    mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", dev + "/ptmx")
    for name in ("console", "tty1"):
        _touch(f"{dev}/{name}")
        mount(console, f"{dev}/{name}", None, MS_BIND)
    os.mkdir(dev + "/shm", 0o1777)
    mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    os.symlink("/proc/self/fd", dev + "/fd")
    for index, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{index}", f"{dev}/{name}")


def _lo_up() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        sock.close()


def _report(report_w: int, exc: BaseException, init: str) -> NoReturn:
    text = str(exc) if not isinstance(exc, OSError) or not exc.filename else f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.filename == init:
        text = f"cannot execute the init {init}: {exc.strerror}"
    try:
        os.write(report_w, text.encode()[:4000])
    finally:
        os._exit(127)


#: Where the child builds, before its spec is known, the container's ``/proc``, ``/sys`` and
#: ``/dev`` (moved into the root once it is known): a tmpfs over this directory, in the
#: child's own mount namespace (the host does not see it).  Under ``/dev``, because no
#: container's root or mount source may be there (``_container._FORBIDDEN_SOURCES``).
STAGE = "/dev/shm"


def _stage(console: str) -> bool:
    """What does not depend on the spec, done ahead of time: ``/proc`` (of the new PID
    namespace), ``/sys`` (of the new network namespace, read-only) and ``/dev`` mounted under
    :data:`STAGE`, ``lo`` up, the console the controlling terminal and fds 0-2.  False when
    there is no :data:`STAGE` directory (the container's mounts are made after the spec)."""
    _lo_up()
    os.setsid()
    fd = os.open(console, os.O_RDWR)
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    for target_fd in (0, 1, 2):
        os.dup2(fd, target_fd)
    if fd > 2:
        os.close(fd)
    if not os.path.isdir(STAGE) or os.path.islink(STAGE):
        return False
    mount("stage", STAGE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=700,size=64k")
    for sub in ("proc", "sys"):
        os.mkdir(f"{STAGE}/{sub}", 0o755)
    mount("proc", STAGE + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("sysfs", STAGE + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    _setup_dev(STAGE + "/dev", console)
    return True


def early_init(spec_r: int, report_w: int, user_r: int, user_w: int, console: str) -> NoReturn:
    """The child, before it knows what container it is: pid 1 of its PID namespace, it makes
    its mount, UTS, IPC and network namespaces (the costly part) and what of the container
    does not depend on the spec (:func:`_stage`), then waits for the spec; EOF instead means
    nobody needs it."""
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _oom_score_adj("0")  # the container's processes are fair game again
        unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        staged = _stage(console)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the driver
        _report(report_w, exc, "")
    data = b""
    while True:
        chunk = os.read(spec_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(spec_r)
    if not data:
        os._exit(0)
    container_init(loads(data), console, staged, report_w, user_r, user_w)


def container_init(spec: Spec, console: str, staged: bool, report_w: int, user_r: int, user_w: int) -> NoReturn:
    """The child, namespaces made (and ``staged``, see :func:`_stage`): cgroups, mounts, then
    exec the init."""
    try:
        for procs in spec["cgroup_procs"]:
            _write(procs, "0")
        root = os.path.realpath(spec["root"])
        mount(root, root, None, MS_BIND | MS_REC)
        for fs in spec["mounts"]:
            target = _inside(root, fs["target"])
            if fs["type"] == "ram":
                _mkdirs(target)
                mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={fs['size_kib']}k")
                continue
            if os.path.isdir(fs["source"]):
                _mkdirs(target)
            else:
                _mkdirs(os.path.dirname(target))
                _touch(target)
            mount(fs["source"], target, None, MS_BIND | MS_REC)
            if fs.get("readonly"):
                mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        proc = root + "/proc"
        _mkdirs(proc)
        if staged:  # made ahead of time: moved in
            mount(STAGE + "/proc", proc, None, MS_MOVE)
            if os.path.isdir(root + "/sys"):
                mount(STAGE + "/sys", root + "/sys", None, MS_MOVE)
            _mkdirs(root + "/dev")
            mount(STAGE + "/dev", root + "/dev", None, MS_MOVE)
        else:
            mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            if os.path.isdir(root + "/sys"):
                mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            _setup_dev(root + "/dev", console)
        if spec.get("readonly_root"):
            mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        os.chdir(root)
        _check(_libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), ctypes.c_char_p(b"."), ctypes.c_char_p(b".")),
               "cannot pivot_root into the container's root")
        _check(_libc.umount2(b".", MNT_DETACH), "cannot detach the host's root")
        os.chdir("/")
        socket.sethostname(spec["hostname"])
        if spec.get("idmap"):
            unshare(CLONE_NEWUSER)
            os.write(user_w, b"u")
            if os.read(user_r, 1) != b"g":
                raise OSError(0, "the controller could not write the user namespace's id maps")
            os.setresgid(0, 0, 0)
            os.setgroups([])
            os.setresuid(0, 0, 0)
        for cap in spec.get("drop_caps", []):
            # out of the bounding set: root's execve of the init does not get it back
            if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: unknown
                _check(-1, f"cannot drop capability {cap}")
        if spec.get("gid") is not None:
            os.setgroups([])
            os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        if spec.get("uid") is not None:
            os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        if spec.get("hold"):
            os.write(user_w, b"h")  # namespaces made: the controller may let the driver in
            if os.read(user_r, 1) != b"r":
                raise OSError(0, "the driver could not set up the container's network interfaces")
        os.chdir(spec.get("initdir") or "/")
        init = spec["init"]
        os.execve(init[0], init, spec["env"])
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the driver
        _report(report_w, exc, spec["init"][0])


class Child:
    """A container's init-to-be: forked into a new PID namespace, its other namespaces made,
    waiting for its spec (see :func:`early_init`).  A spare controller makes one ahead of
    time; a reboot makes one on the spot."""

    def __init__(self, console: str) -> None:
        self.report_r, report_w = os.pipe2(os.O_CLOEXEC)
        self.up_r, up_w = os.pipe2(os.O_CLOEXEC)  # child -> controller: "u" userns made, "h" held
        down_r, self.down_w = os.pipe2(os.O_CLOEXEC)  # controller -> child: "g" maps, "r" run
        spec_r, self.spec_w = os.pipe2(os.O_CLOEXEC)
        pid = fork_into_new_pid_namespace()
        if pid == 0:
            for fd in (self.report_r, self.up_r, self.down_w, self.spec_w):
                os.close(fd)
            early_init(spec_r, report_w, down_r, up_w, console)
        for fd in (report_w, up_w, down_r, spec_r):
            os.close(fd)
        self.pid = pid
        self.started = False

    def start(self, spec: Spec) -> None:
        self.started = True
        os.write(self.spec_w, dumps(spec).encode())
        os.close(self.spec_w)

    def dismiss(self) -> None:
        """Nobody needs it (any more): it exits, and is reaped."""
        if self.started:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            os.close(self.spec_w)
        for fd in (self.report_r, self.up_r, self.down_w):
            os.close(fd)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


# -- the controller -------------------------------------------------------------------------


class Consoles:
    """The two ptys of a container's console, made before its spec is known.

    The container's ``/dev/console`` is the slave of the first, whose master only the
    controller holds; what a user attaches to is the slave of the second."""

    def __init__(self) -> None:
        self.cmaster, self.cslave = os.openpty()
        self.cslave_path = os.ttyname(self.cslave)  # kept open: the relay never sees a hang-up
        self.hmaster, self.hslave = os.openpty()
        self.hslave_path = os.ttyname(self.hslave)
        _raw(self.hslave)
        for fd in (self.cmaster, self.hmaster):
            os.set_blocking(fd, False)


class Controller:
    def __init__(self, spec: Spec, consoles: Consoles | None = None) -> None:
        self.spec = spec
        self.init = 0
        self.boots = 0
        self.want = None  # None, "shutdown", "reboot", "destroy"
        self.clients: dict[int, tuple[socket.socket, bytes]] = {}
        self.poller = select.poll()
        self.consoles = consoles = consoles or Consoles()
        self.cmaster, self.cslave_path = consoles.cmaster, consoles.cslave_path
        self.hmaster, self.hslave_path = consoles.hmaster, consoles.hslave_path
        idmap = spec.get("idmap")
        if idmap:
            uid0 = next((t for s, t, _ in idmap["uid"] if s == 0), None)
            gid0 = next((t for s, t, _ in idmap["gid"] if s == 0), None)
            os.chown(self.cslave_path, uid0 if uid0 is not None else -1, gid0 if gid0 is not None else -1)

    pending: Child | None = None  # made ahead of time by a spare

    def spawn(self, driver: int = -1) -> str | None:
        """Start the init in fresh namespaces; returns an error text or None.

        With ``hold`` in the spec and the driver on ``driver`` (the first boot), the init
        waits before its ``execve`` while the driver sets up what needs its pid (network
        interfaces moved into its namespace): the controller says ``{"held": true, "init":
        PID}`` and waits for ``go`` (or anything else: the start is abandoned).  On a reboot
        (no driver) :func:`run_replug` does the driver's part."""
        spec = self.spec
        child, self.pending = self.pending or Child(self.cslave_path), None
        if not child.started:
            child.start(spec)
        report_r, up_r, down_w, pid = child.report_r, child.up_r, child.down_w, child.pid
        self.init = pid
        try:
            if spec.get("idmap") and os.read(up_r, 1) == b"u":
                maps = spec["idmap"]
                try:
                    _write(f"/proc/{pid}/uid_map", "".join(f"{s} {t} {c}\n" for s, t, c in maps["uid"]))
                    _write(f"/proc/{pid}/gid_map", "".join(f"{s} {t} {c}\n" for s, t, c in maps["gid"]))
                    os.write(down_w, b"g")
                except OSError as exc:
                    os.write(down_w, b"x")
                    error = f"cannot write the id maps of the user namespace: {exc.strerror}"
                    os.waitpid(pid, 0)
                    return error
            if spec.get("hold") and os.read(up_r, 1) == b"h":  # else it failed: see its report
                answer = b""
                if driver >= 0:
                    os.write(driver, (dumps({"held": True, "init": pid}) + "\n").encode())
                    while not answer.endswith(b"\n"):
                        chunk = os.read(driver, 4096)
                        if not chunk:
                            break
                        answer += chunk
                else:  # a reboot: no driver in the loop, the spec says what does its part
                    answer = b"go" if run_replug(spec.get("replug"), pid) else b"abort"
                os.write(down_w, b"r" if answer.strip() == b"go" else b"x")
            chunks = []
            while True:
                chunk = os.read(report_r, 4096)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            for fd in (report_r, up_r, down_w):
                os.close(fd)
        if chunks:
            os.waitpid(pid, 0)
            self.init = 0
            return b"".join(chunks).decode(errors="replace")
        self.boots += 1
        if self.boots > 1:
            self.record(None)  # the first boot's record is written after the driver's answer
        return None

    def record(self, exit_info: Spec | None) -> None:
        write_atomic(self.spec["record"], {
            "controller": os.getpid(), "init": self.init, "init_started": _start_time(self.init) if self.init else None,
            "tty": self.hslave_path, "boots": self.boots, "exit": exit_info,
        })

    # -- requests ---------------------------------------------------------------------------

    def request(self, message: Spec) -> Spec:
        cmd = message.get("cmd")
        if cmd == "state":
            return {"ok": True, "init": self.init, "boots": self.boots, "tty": self.hslave_path}
        if cmd == "console":
            return {"ok": True, "tty": self.hslave_path}
        if cmd in ("shutdown", "reboot", "destroy"):
            if not self.init:
                return {"ok": False, "error": "the container's init is not running"}
            self.want = cmd
            # "signal": 0 only notes what comes (the init was asked through its initctl FIFO)
            sig = signal.SIGKILL if cmd == "destroy" else int(message.get("signal", signal.SIGTERM))
            if sig:
                try:
                    os.kill(self.init, sig)
                except ProcessLookupError:
                    pass
            if cmd == "destroy":
                self.thaw()
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {cmd!r}"}

    def thaw(self) -> None:
        for path, value in self.spec.get("thaw", []):
            try:
                with open(path) as src:
                    if src.read().strip() in (value, "0"):
                        continue  # not frozen: writing would only cost
                _write(path, value)
            except OSError:
                pass

    def on_client(self, fd: int, events: int) -> None:
        conn, buf = self.clients[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                reply = self.request(loads(line))
            except ValueError:
                reply = {"ok": False, "error": "malformed request"}
            try:
                conn.sendall(dumps(reply).encode() + b"\n")
            except OSError:
                self.drop(fd)
                return
        self.clients[fd] = (conn, buf)

    def drop(self, fd: int) -> None:
        conn, _ = self.clients.pop(fd)
        self.poller.unregister(fd)
        conn.close()

    # -- console relay ----------------------------------------------------------------------

    @staticmethod
    def relay(src: int, dst: int) -> None:
        try:
            data = os.read(src, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        try:
            os.write(dst, data)
        except (BlockingIOError, OSError):
            pass  # nobody reads the console: what overflows its buffer is dropped

    # -- the loop ---------------------------------------------------------------------------

    def reap(self) -> bool:
        """Collect exited children; True when the container is over."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return False
            if pid != self.init:
                continue
            self.init = 0
            signalled = os.WIFSIGNALED(status)
            sig = os.WTERMSIG(status) if signalled else 0
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            want, self.want = self.want, None
            reboot = want == "reboot" or (signalled and sig == signal.SIGHUP and want != "destroy")
            if reboot and self.spec.get("on_reboot", "restart") == "restart":
                error = self.spawn()
                if error is None:
                    return False
                why = "failed"
            elif want == "destroy":
                why = "destroyed"
            elif want == "shutdown" or code == 0 or (signalled and sig in (signal.SIGINT, signal.SIGTERM)
                                                     and want != "destroy"):
                why = "shutdown"
            else:
                why = "failed"
            self.record({"reason": why, "code": code, "signal": sig})
            return True

    def serve(self, listener: socket.socket) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.request({"cmd": "destroy"}))
        self.poller.register(wake_r, select.POLLIN)
        self.poller.register(listener.fileno(), select.POLLIN)
        self.poller.register(self.cmaster, select.POLLIN)
        self.poller.register(self.hmaster, select.POLLIN)
        if self.reap():
            return
        while True:
            try:
                ready = self.poller.poll()
            except InterruptedError:
                continue
            for fd, events in ready:
                if fd == wake_r:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                    if self.reap():
                        return
                elif fd == listener.fileno():
                    fd_conn, _ = listener._accept()  # type: ignore[attr-defined]  # what socket.accept() wraps
                    conn = socket.socket(fileno=fd_conn)
                    conn.setblocking(True)
                    self.clients[conn.fileno()] = (conn, b"")
                    self.poller.register(conn.fileno(), select.POLLIN)
                elif fd == self.cmaster:
                    self.relay(self.cmaster, self.hmaster)
                elif fd == self.hmaster:
                    self.relay(self.hmaster, self.cmaster)
                elif fd in self.clients:
                    self.on_client(fd, events)


def run_replug(replug: Spec | None, pid: int, timeout: float = 60.0) -> bool:
    """On a reboot, what the driver does while a starting init is held (its network interfaces
    plugged into the fresh network namespace): ``replug["argv"]`` + the held init's pid
    (``python -m virt_lxc._replug URI LIVE_XML``, the full interpreter, paid for on reboots
    only), its output to the log.  True when it succeeded."""
    if not replug:
        return True
    env = dict(os.environ)
    env.update(replug.get("env") or {})
    argv = [*replug["argv"], str(pid)]
    try:
        helper = os.posix_spawn(argv[0], argv, env)
    except OSError as exc:
        _log_line(f"cannot run {argv[0]}: {exc.strerror}")
        return False
    fd = os.pidfd_open(helper)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            _log_line(f"{' '.join(argv)} did not finish in {timeout:.0f} s")
            os.kill(helper, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status = os.waitpid(helper, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _oom_score_adj(value: str) -> None:
    try:
        _write("/proc/self/oom_score_adj", value)
    except OSError:
        pass


def _log_line(text: str) -> None:
    import time

    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    os.write(2, f"{stamp}.000+0000: {text}\n".encode())


def go_home(procs_files: list[str]) -> None:
    """Move this process back to the cgroups it started in (``cgroup.procs`` files)."""
    for procs in procs_files:
        try:
            _write(procs, "0")
        except OSError:
            pass


def main(argv: list[str]) -> int:
    """stdin is a socket to the driver: the container's spec arrives on it as one JSON line,
    the outcome goes back on it.

    A spare may have been given cgroups to wait in (``VIRT_LXC_SPARE``: the ``cgroup.procs``
    files to go back to, the directories): moving a process into a cgroup costs the kernel
    an RCU grace period, which the driver pays while this interpreter starts (it moves this
    process, then says ``j`` on stdin, or ``n`` when it could not); the driver then renames
    those cgroups into the container's.  A spare nobody needs goes home and removes them.
    """
    spare = loads(os.environ.get("VIRT_LXC_SPARE") or "{}")
    # In the container's memory cgroup, the controller must never be what the OOM killer picks
    # when the container runs out: the container would go with it.
    _oom_score_adj("-1000")
    joined = False
    if spare:
        try:
            joined = os.read(0, 1) == b"j"  # before the child is forked: it inherits them
        except OSError:
            pass
    # the console's ptys, and the init-to-be, its namespaces made ahead of time too (in those
    # cgroups)
    consoles = Consoles()
    pending: Child | None
    try:
        pending = Child(consoles.cslave_path)
    except OSError:
        pending = None
    # "ready": in the cgroups made for it ("j"), or not ("n": the driver makes fresh ones),
    # and the console's pty
    try:
        os.write(0, f"{'j' if joined else 'n'} {consoles.hslave_path}\n".encode())
        gone = False
    except OSError:  # EPIPE: the driver is gone already
        gone = True
    line = b""
    while not gone and not line.endswith(b"\n"):
        try:
            chunk = os.read(0, 65536)
        except OSError:  # ECONNRESET: the driver closed its end with our "ready" unread
            chunk = b""
        if not chunk:
            gone = True
        line += chunk
    if gone:  # a spare nobody needed: home, and its cgroups removed
        if pending is not None:
            pending.dismiss()
        go_home(spare.get("home", []))
        for path in spare.get("dirs", []):
            try:
                os.rmdir(path)
            except OSError:
                pass
        return 0
    ready = os.dup(0)
    spec = {}
    try:
        spec = loads(line)
        spec["home"] = spare.get("home", [])
        if pending is not None:  # off it goes, on the other CPU, while this one gets ready
            pending.start(spec)
        log = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        controller = Controller(spec, consoles)
        controller.pending, pending = pending, None
        directory, name = os.path.split(spec["socket"])
        os.chdir(directory)  # bind by a relative name: deep paths exceed sun_path
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(name)
        listener.listen(16)
        os.chdir("/")
        error = controller.spawn(ready)
    except BaseException as exc:  # noqa: BLE001 - reported to the driver
        error = str(exc) or type(exc).__name__
        controller = None
        if pending is not None:
            pending.dismiss()
    os.write(ready, (dumps({"ok": error is None, "error": error,
                                 "tty": controller.hslave_path if controller else None,
                                 "init": controller.init if controller else 0}) + "\n").encode())
    os.close(ready)
    if error is not None or controller is None:
        go_home(spare.get("home", []))
        return 1
    # after the answer, so that a start does not wait for them: the record (the driver has
    # the init's pid from the answer), the log's first line, and out of the container's
    # freezer cgroup (a suspended container keeps its controller awake)
    controller.record(None)
    _log_line(f"starting up: {' '.join(spec['init'])} (controller {os.getpid()}, init {controller.init})")
    go_home(spec.get("leave", []))
    try:
        controller.serve(listener)
    finally:
        try:
            os.unlink(spec["socket"])
        except OSError:
            pass
    # The container is over and its record written: exit now, without the interpreter's
    # finalisation (whoever watches sees the exit at once).  The cgroups are removed by the
    # driver (a process inside them could not remove them, and moving out of a cgroup costs
    # the kernel a grace period that would hold up this very exit).
    os._exit(0)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
