"""The ``lxc:///`` connection: containers from namespaces and cgroups, one controller each.

No daemon: each running container has its controller (:mod:`virt_lxc._controller`, like
libvirt's ``libvirt_lxc``), a small detached process that created it, holds its console and
reaps its init.  Definitions and status live in files (:mod:`virt_lxc._store`), so every
process that opens the same URI sees and controls the same containers.  Within a process, one
:class:`Hub` per URI watches the controllers (a pidfd each: a controller exits the moment its
container ends) and delivers lifecycle events to the process's connections.  What libvirt's
LXC driver does is the reference for states, reasons, event details, errors and messages.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from virt import _state_files as files
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainInfo, DomainRef, DomainState, InterfaceStats
from virt.driverkit import StoredDomains, emit_domain_event, host_device_counters, interface_stats_group
from virt.plugin import OpenRequest
from virt.xml.domain import DomainDocument

from virt_lxc import _cgroups
from virt_lxc._container import build_spec, check_definition, name_interfaces
from virt_lxc._paths import Layout, layout_for
from virt_lxc._store import Status, Store, parse_definition, store_for

__all__ = ["LxcConnection"]

_D = ErrorDomain.LXC
S = DomainState

# state reasons (virDomain<State>Reason)
RUNNING_BOOTED, RUNNING_UNPAUSED = 1, 5
PAUSED_USER = 1
SHUTOFF_UNKNOWN, SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_CRASHED, SHUTOFF_FAILED = 0, 1, 2, 3, 6

# event details (virDomainEvent<Type>DetailType)
DEFINED_ADDED, DEFINED_UPDATED = 0, 1
UNDEFINED_REMOVED = 0
STARTED_BOOTED = 0
SUSPENDED_PAUSED = 0
RESUMED_UNPAUSED = 0
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_CRASHED, STOPPED_FAILED = 0, 1, 2, 5

# flags
_SHUTDOWN_INITCTL, _SHUTDOWN_SIGNAL = 4, 8
_DESTROY_GRACEFUL = 1
_XML_SECURE, _XML_INACTIVE = 1, 2
STATS_STATE, STATS_CPU, STATS_BALLOON, STATS_VCPU, STATS_INTERFACE, STATS_BLOCK = 1, 2, 4, 8, 16, 32

_CONTROLLER = str(Path(__file__).with_name("_controller.py"))
# imported, not run as a script: its compiled code is cached (__pycache__) like any module's
_CONTROLLER_ARGV = [sys.executable, "-S", "-E", "-s", "-c",
                    f"import sys; sys.path.insert(0, {os.path.dirname(_CONTROLLER)!r}); import _controller; "
                    "sys.exit(_controller.main(sys.argv[1:]))"]
#: what ``<emulator>`` says for this driver's domains: the controller each container has
EMULATOR = _CONTROLLER
_START_TIMEOUT = 30.0
_REASONS = {"shutdown": (SHUTOFF_SHUTDOWN, STOPPED_SHUTDOWN), "destroyed": (SHUTOFF_DESTROYED, STOPPED_DESTROYED),
            "failed": (SHUTOFF_FAILED, STOPPED_FAILED), "crashed": (SHUTOFF_CRASHED, STOPPED_FAILED)}
_REASON_WORD = {SHUTOFF_SHUTDOWN: "shutdown", SHUTOFF_DESTROYED: "destroyed", SHUTOFF_CRASHED: "crashed",
                SHUTOFF_FAILED: "failed"}


def _invalid(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, detail, domain=_D)


def _not_running() -> VirtError:
    return _invalid("domain is not running")


def _failed(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_FAILED, detail, domain=_D)


def _append_log(path: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(path, "a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}.000+0000: {line}\n")


# -- controllers: spares started ahead of time ---------------------------------------------


class Spare:
    """A controller started ahead of time, waiting in cgroups of its own (if it could)."""

    def __init__(self, pid: int, channel: socket.socket, cgroups: _cgroups.Cgroups | None) -> None:
        self.pid, self.channel, self.cgroups = pid, channel, cgroups


class Controllers:
    """The controller processes this process started, and one spare, started ahead of time.

    A spare is a controller waiting for a container's spec on its stdin (a socketpair it also
    answers on): a start then pays for building the container only, not for starting an
    interpreter, nor for moving a process into cgroups (which costs the kernel an RCU grace
    period per hierarchy): the spare waits in cgroups made for it, which a start renames into
    the container's.  A spare nobody needs goes home, removes its cgroups and exits when this
    process goes (its stdin reaches EOF).  Controllers are started with ``posix_spawn`` in a
    session of their own; this process reaps those that end while it lives.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._spare: Spare | None = None
        self._pid = os.getpid()
        self._wanted = threading.Event()
        self._maker: threading.Thread | None = None
        self._spawning = threading.Lock()  # held while a spare's cgroups exist without it
        self._starts = 0
        atexit.register(self.close)

    def close(self) -> None:
        """Let the spare go (it goes home, removes its cgroups and exits when its stdin closes);
        a spare being made is waited for, so that its cgroups do not outlive us."""
        if self._pid != os.getpid():
            return
        with self._spawning, self._guard:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.channel.close()

    @staticmethod
    def _spawn() -> Spare:
        cgroups: _cgroups.Cgroups | None = None
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        if os.geteuid() == 0:
            try:
                cgroups = _cgroups.create(f"spare-{os.urandom(6).hex()}", _cgroups.Limits(pids_max=None))
            except (_cgroups.CgroupError, OSError):
                cgroups = None
        if cgroups is not None:
            env["VIRT_LXC_SPARE"] = json.dumps({"dirs": cgroups.all_dirs(),
                                                "home": sorted(set(cgroups.home().values()))})
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
                       (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                       (os.POSIX_SPAWN_DUP2, 1, 2)]
            pid = os.posix_spawn(sys.executable, _CONTROLLER_ARGV, env, file_actions=actions, setsid=True)
        except BaseException:
            ours.close()
            if cgroups is not None:
                cgroups.remove(timeout=0)
            raise
        finally:
            theirs.close()
        if cgroups is not None:
            # Moved into its cgroups while its interpreter starts: the kernel's grace period
            # (the first move of a process costs one) overlaps that start-up.  It waits for
            # our word before it forks its container's init-to-be.
            moved: list[str] = []
            try:
                for procs in cgroups.procs_files():
                    Path(procs).write_text(str(pid))
                    moved.append(procs)
                word = b"j"
            except OSError:
                word = b"n"
                home = cgroups.home()
                for procs in moved:
                    with contextlib.suppress(OSError, KeyError):
                        Path(home[os.path.dirname(procs)]).write_text(str(pid))
            with contextlib.suppress(OSError):
                ours.sendall(word)
        return Spare(pid, ours, cgroups)

    def take(self) -> Spare:
        with self._guard:
            if self._pid != os.getpid():  # forked: the spare belongs to the parent
                self._spare, self._pid, self._maker = None, os.getpid(), None
            spare, self._spare = self._spare, None
        if spare is not None and files.alive(spare.pid, None):
            return spare
        if spare is not None:
            spare.channel.close()
            self.reap(spare.pid)
        return self._spawn()

    def prepare(self) -> None:
        """Have the next spare started in the background, unless there is one.

        Not after the first start of a process: a process that starts one container and
        exits (``virt start``) would only make a spare to throw away."""
        with self._guard:
            self._starts += 1
            if self._starts < 2:
                return
            if self._maker is None or not self._maker.is_alive():
                self._maker = threading.Thread(target=self._make, name="virt-lxc-spare", daemon=True)
                self._maker.start()
        self._wanted.set()

    def _make(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            with self._spawning:
                with self._guard:
                    if self._spare is not None or self._starts < 2:
                        continue
                try:
                    spare = self._spawn()
                except OSError:
                    continue
                with self._guard:
                    if self._spare is None:
                        self._spare = spare
                        continue
                spare.channel.close()

    @staticmethod
    def reap(pid: int) -> None:
        """Collect ``pid``'s exit status if it is an exited child of ours."""
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


_controllers = Controllers()


class _Tidy:
    """Removes empty cgroups on a thread of its own; what is queued is done before exit."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_cgroups.Cgroups | tuple[Store, str, tuple[Path, ...]]] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._guard)
        atexit.register(self.drain)

    def remove(self, cgroups: _cgroups.Cgroups) -> None:
        self._put(cgroups)

    def unlink(self, store: Store, uuid: str, paths: tuple[Path, ...]) -> None:
        """Remove the runtime files of ``uuid``, unless it has started again meanwhile."""
        self._put((store, uuid, paths))

    def _put(self, job: _cgroups.Cgroups | tuple[Store, str, tuple[Path, ...]]) -> None:
        with self._guard:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="virt-lxc-tidy", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if isinstance(job, _cgroups.Cgroups):
                    job.remove()
                else:
                    store, uuid, paths = job
                    with store.lock(uuid):
                        status = store.status(uuid)
                        if status is None or not status.active:
                            for path in paths:
                                with contextlib.suppress(FileNotFoundError):
                                    os.unlink(path)
            finally:
                with self._guard:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float = 5.0) -> None:
        with self._guard:
            self._idle.wait_for(lambda: self._pending <= 0, timeout)


_tidy = _Tidy()


def _ask(layout: Layout, uuid: str, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any] | None:
    """Send one request to the controller of ``uuid``; None when it is not there."""
    path = files.short_socket_path(layout.control_socket(uuid))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    reply = json.loads(data)
    return reply if isinstance(reply, dict) else None


# -- the per-process hub of one URI -------------------------------------------------------


class _Watcher:
    """One thread per process polling the pidfds of the controllers it follows."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._fds: dict[int, Callable[[], None]] = {}
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread: threading.Thread | None = None

    def add(self, fd: int, on_exit: Callable[[], None]) -> None:
        with self._guard:
            self._fds[fd] = on_exit
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="virt-lxc-watch", daemon=True)
                self._thread.start()
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _serve(self) -> None:
        while True:
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            with self._guard:
                for fd in self._fds:
                    poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                with self._guard:
                    callback = self._fds.pop(fd, None)
                os.close(fd)
                if callback is not None:
                    with contextlib.suppress(Exception):
                        callback()


_watcher = _Watcher()


class Hub:
    """What the connections of one URI share in a process: the store, watchers, listeners."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.store: Store = store_for(layout)
        self.connections: weakref.WeakSet[LxcConnection] = weakref.WeakSet()
        self.watching: dict[str, int] = {}
        self._guard = threading.Lock()

    def emit(self, name: str, uuid: str, event: DomainEventType, detail: int, dom_id: int = -1) -> None:
        emit_domain_event(self.connections, name, uuid, event, detail, dom_id)

    def watch(self, status: Status) -> None:
        """Follow the controller of ``status`` from this process, once."""
        uuid, pid = str(status["uuid"]), status.pid
        with self._guard:
            if self.watching.get(uuid) == pid:
                return
            fd = files.pidfd(pid)
            if fd is not None:
                self.watching[uuid] = pid
        if fd is None:
            threading.Thread(target=self.on_exit, args=(uuid, pid), daemon=True).start()
            return
        _watcher.add(fd, lambda: self.on_exit(uuid, pid))

    def on_exit(self, uuid: str, pid: int) -> None:
        """Controller ``pid`` exited: unless whoever stopped it already did, record why."""
        with self._guard:
            if self.watching.get(uuid) == pid:
                del self.watching[uuid]
        _controllers.reap(pid)
        with self.store.lock(uuid):
            status = self.store.status(uuid)
            if status is None or status.pid != pid or not status.active:
                return
            if files.alive(pid, status.get("started")):
                return
            record = files.read_json(self.layout.record_file(uuid)) or {}
            exit_info = record.get("exit") if record.get("controller") == pid else None
            if status.get("stopping"):
                reason, detail = _REASONS[str(status["stopping"])]
            elif isinstance(exit_info, dict):
                reason, detail = _REASONS.get(str(exit_info.get("reason")), _REASONS["failed"])
            else:  # the controller died without a word: the container went with it
                reason, detail = _REASONS["crashed"]
            self.finish(status, reason, detail, clean=isinstance(exit_info, dict))

    def finish(self, status: Status, reason: int, detail: int | None, *, clean: bool = False) -> None:
        """The domain of ``status`` is now shut off (caller holds its lock).

        ``clean``: its controller saw the init go, recorded it and exited: its cgroups are
        empty, and removed in the background (removing a memory cgroup can take the kernel
        milliseconds nobody needs to wait for).  Otherwise whatever is left in them is
        killed, and they are removed, first."""
        uuid, name = str(status["uuid"]), str(status["name"])
        dom_id = int(status.get("id", -1))
        cgroups = _cgroups.Cgroups.from_json(status.get("cgroups"))
        unused = _cgroups.Cgroups.from_json(status.get("unused_cgroups"))
        if not clean:
            cgroups.kill_all()
            cgroups.remove()
        else:
            _tidy.remove(cgroups)
        if unused.all_dirs():
            _tidy.remove(unused)
        layout = self.layout
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.control_socket(uuid))
        # what no reader looks at once the status says shut off: removed in the background
        _tidy.unlink(self.store, uuid, (layout.live_xml(uuid), layout.record_file(uuid)))
        if status.get("persistent"):
            self.store.write_status(uuid, {"uuid": uuid, "name": name, "state": int(S.SHUTOFF), "reason": reason,
                                           "pid": 0, "persistent": True})
        else:
            self.store.remove_status(uuid)
        _append_log(layout.log_file(name), "shutting down, reason=" + _REASON_WORD.get(reason, "unknown"))
        if detail is not None:
            self.emit(name, uuid, DomainEventType.STOPPED, detail, dom_id)

    def settle(self, uuid: str, status: Status) -> Status | None:
        """``status`` says running but its controller is gone: record why, now."""
        self.on_exit(uuid, status.pid)
        return self.store.status(uuid)


_hubs: dict[str, Hub] = {}
_hubs_guard = threading.Lock()


def hub_for(layout: Layout) -> Hub:
    with _hubs_guard:
        hub = _hubs.get(layout.root)
        if hub is None:
            hub = _hubs[layout.root] = Hub(layout)
        return hub


# -- the connection -----------------------------------------------------------------------


class LxcConnection(StoredDomains):
    """One ``lxc:///`` connection."""

    def __init__(self, request: OpenRequest) -> None:
        self.layout = layout_for(request.uri)
        self.hub = hub_for(self.layout)
        self.store = self.hub.store
        self.hook = request.hook
        self.readonly = request.readonly
        self.uri = self.layout.root
        self.hub.connections.add(self)
        self._reconnect()

    @classmethod
    def open(cls, request: OpenRequest) -> LxcConnection:
        return cls(request)

    def _follow(self, status: Status) -> None:
        self.hub.watch(status)

    # -- connection hooks -------------------------------------------------------------------

    @hookimpl
    def virt_connect_close(self) -> None:
        self.hub.connections.discard(self)

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "LXC"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        release = os.uname().release.split("-")[0].split(".")
        nums = [int("".join(c for c in p if c.isdigit()) or 0) for p in ([*release, "0", "0"])[:3]]
        return nums[0] * 1_000_000 + nums[1] * 1_000 + nums[2]

    @hookimpl
    def virt_connect_get_max_vcpus(self, type: str | None) -> int:
        return os.cpu_count() or 1

    @hookimpl
    def virt_connect_get_capabilities(self) -> str:
        from virt_lxc._native import capabilities_xml

        return capabilities_xml()

    # -- finding domains (virt.driverkit.StoredDomains) ---------------------------------------

    error_domain = ErrorDomain.LXC

    def _settle(self, uuid: str, status: Status) -> Status | None:
        return self.hub.settle(uuid, status)

    # -- definitions --------------------------------------------------------------------------

    def _parse(self, xml: str) -> DomainDocument:
        doc = parse_definition(xml)
        if "/" in doc.name or doc.name.startswith("."):
            raise VirtError(ErrorNumber.XML_ERROR, f"name {doc.name} cannot contain '/' or start with '.'",
                            domain=ErrorDomain.DOMAIN)
        check_definition(doc)
        return doc

    def _check_unique(self, doc: DomainDocument) -> tuple[DomainDocument | None, Status | None]:
        same_uuid_doc: DomainDocument | None = None
        same_uuid_status: Status | None = None
        for uuid, (other, status) in self._entries().items():
            other_name = other.name if other is not None else str(status["name"]) if status is not None else ""
            if uuid == doc.uuid:
                if other_name != doc.name:
                    raise _failed(f"domain '{other_name}' is already defined with uuid {doc.uuid}")
                same_uuid_doc, same_uuid_status = other, status
            elif other_name == doc.name:
                raise _failed(f"domain '{doc.name}' already exists with uuid {uuid}")
        return same_uuid_doc, same_uuid_status

    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> DomainRef:
        doc = self._parse(xml)
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            self.store.write_config(doc)
            if status is not None and status.active and not status.get("persistent"):
                status["persistent"] = True
                self.store.write_status(doc.uuid, status)
        detail = DEFINED_UPDATED if existing is not None or status is not None else DEFINED_ADDED
        self.hub.emit(doc.name, doc.uuid, DomainEventType.DEFINED, detail)
        return self._ref(doc.uuid, doc.name, status)

    @hookimpl
    def virt_domain_undefine(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            if doc is None:
                raise _invalid("cannot undefine transient domain")
            self.store.remove_config(name)
            if status is not None and status.active:
                status["persistent"] = False
                self.store.write_status(uuid, status)
            else:
                self.store.remove_status(uuid)
        self.hub.emit(name, uuid, DomainEventType.UNDEFINED, UNDEFINED_REMOVED)

    @hookimpl
    def virt_domain_get_xml(self, uuid: str, flags: int) -> str:
        doc, status, _ = self._find(uuid)
        if status is not None and status.active and not flags & _XML_INACTIVE:
            live = self.store.live(uuid)
            if live is not None:
                return live.to_string(secure=bool(flags & _XML_SECURE))
        if doc is None:
            # a running transient domain has no other definition than its live one: libvirt
            # formats that with the INACTIVE flag, which keeps <target dev='vethN'/> (the LXC
            # driver's XML options have no netPrefix; only vnet/macvtap/macvlan are left out)
            doc = self.store.live(uuid)
            if doc is None:
                raise _not_running()
        return doc.to_string(secure=bool(flags & _XML_SECURE), inactive=True)

    @hookimpl
    def virt_domain_get_os_type(self, uuid: str) -> str:
        return "exe"

    @hookimpl
    def virt_domain_get_id(self, uuid: str) -> int:
        _, status, _ = self._find(uuid)
        return int(status.get("id", -1)) if status is not None and status.active else -1

    @hookimpl
    def virt_domain_is_active(self, uuid: str) -> bool:
        _, status, _ = self._find(uuid)
        return status is not None and status.active

    @hookimpl
    def virt_domain_is_persistent(self, uuid: str) -> bool:
        doc, _, _ = self._find(uuid)
        return doc is not None

    @hookimpl
    def virt_domain_get_autostart(self, uuid: str) -> bool:
        doc, _, name = self._find(uuid)
        return doc is not None and self.store.autostart(name)

    @hookimpl
    def virt_domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.store.lock(uuid):
            doc, _, name = self._find(uuid)
            if doc is None:
                raise _invalid("cannot set autostart for transient domain")
            self.store.set_autostart(name, autostart)

    @hookimpl
    def virt_domain_has_managed_save_image(self, uuid: str, flags: int) -> bool:
        """Containers have no managed save: never one (``virsh undefine`` asks)."""
        self._find(uuid)
        return False

    # -- state ----------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_state(self, uuid: str, flags: int) -> tuple[int, int]:
        _, status, _ = self._find(uuid)
        if status is None:
            return int(S.SHUTOFF), SHUTOFF_UNKNOWN
        return status.state, status.reason

    @hookimpl
    def virt_domain_get_info(self, uuid: str) -> DomainInfo:
        doc, status, _ = self._find(uuid)
        active = status is not None and status.active
        live = (self.store.live(uuid) if active else None) or doc
        assert live is not None
        state = DomainState(status.state) if status is not None else S.SHUTOFF
        memory, cpu = live.current_memory_kib, 0
        if active and status is not None:
            cgroups = _cgroups.Cgroups.from_json(status.get("cgroups"))
            cpu = cgroups.cpu_ns()[0]
            usage = cgroups.memory().get("usage")
            if usage is not None:
                memory = usage // 1024
        return DomainInfo(state=state, max_memory=live.memory_kib, memory=memory, nr_virt_cpu=live.current_vcpus,
                          cpu_time=cpu)

    # -- lifecycle ------------------------------------------------------------------------------

    def _launch(self, doc: DomainDocument, *, persistent: bool) -> None:
        """Start the container of ``doc`` (caller holds the domain's lock, checked it inactive)."""
        layout, uuid, name = self.layout, doc.uuid, doc.name
        spec, limits = build_spec(doc, layout)
        if os.geteuid() != 0:
            raise VirtError(ErrorNumber.OPERATION_DENIED, "containers need root", domain=_D,
                            message="operation forbidden: the LXC driver needs root to create containers")
        leaf = f"{name}-{uuid[:8]}"
        log_path = layout.log_file(name)
        spare = _controllers.take()
        cgroups: _cgroups.Cgroups | None = None
        joined = False
        try:
            spare.channel.settimeout(_START_TIMEOUT)
            # the spare says where it waits ("j": in its cgroups, "n": not) and its console
            waiting, _, spare_tty = _read_line(spare.channel).decode(errors="replace").strip().partition(" ")
            if waiting != "j" and spare.cgroups is not None:
                spare.cgroups.remove(timeout=0)  # it could not join them: they are empty
                spare.cgroups = None
            if spare.cgroups is not None and not limits.cpuset:  # a spare waits outside any cpuset
                with contextlib.suppress(OSError, _cgroups.CgroupError):
                    cgroups = spare.cgroups.renamed(leaf)
                    joined = True
                    _cgroups.apply(cgroups, limits)
            if cgroups is None:
                cgroups = _cgroups.create(leaf, limits)
        except _cgroups.CgroupError as exc:
            spare.channel.close()
            if cgroups is not None:
                cgroups.kill_all()
                cgroups.remove()
            raise VirtError(ErrorNumber.SYSTEM_ERROR, str(exc), domain=_D) from None
        freeze = cgroups.freeze_file()
        home = cgroups.home()
        # cgroups the spare waits in but the container does not use: removed when it stops
        unused = spare.cgroups if spare.cgroups is not None and not joined else None
        # After the start, the controller leaves the container's freezer cgroup (a suspended
        # container keeps its controller awake) and memory cgroup (the OOM killer of a container
        # that runs out never picks its controller); it stays in the others, as libvirt_lxc.
        leave = sorted({home[cgroups.dirs[job]] for job in ("freezer", "memory") if job in cgroups.dirs}) \
            if joined else []
        spec.update(cgroup_procs=[] if joined else cgroups.procs_files(),
                    leave=leave,
                    thaw=[[freeze[0], freeze[2]]] if freeze else [], socket=str(layout.control_socket(uuid)),
                    record=str(layout.record_file(uuid)), log=str(log_path))
        chan = spare.channel
        controller = spare.pid
        previous = self.store.status(uuid)
        wrote = False
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(layout.record_file(uuid))
            dom_id = self.store.next_id()
            spec["hold"] = bool(interface_hooks) and doc.root.find("devices/interface") is not None
            if spec["hold"]:  # a reboot plugs them again, without us: see virt_lxc._replug
                spec["replug"] = {"argv": [sys.executable, "-m", "virt_lxc._replug", self.uri,
                                           str(layout.live_xml(uuid))],
                                  "env": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
            try:
                chan.settimeout(_START_TIMEOUT)
                chan.sendall(json.dumps(spec).encode() + b"\n")
                # while the controller builds the container: the live XML and the status
                status = Status(uuid=uuid, name=name, id=dom_id, pid=controller,
                                started=files.start_time(controller), state=int(S.RUNNING), reason=RUNNING_BOOTED,
                                persistent=persistent, cgroups=cgroups.to_json(), tty=spare_tty)
                if unused is not None:
                    status["unused_cgroups"] = unused.to_json()
                live = doc.copy()
                live.set_id(dom_id)
                _fill_live(live, spare_tty)
                wrote = True
                self.store.write_live(uuid, live)
                self.store.write_status(uuid, status)
                reply = _read_reply(chan)
                if reply.get("held"):
                    # the init is waiting before its execve: what needs its pid happens now
                    try:
                        hosts: Sequence[str] | None = None
                        for attach in interface_hooks:
                            hosts = attach(self.uri, doc, int(reply["init"])) or hosts
                        if hosts:  # libvirt's live XML names the host ends (<target dev='vethN'/>)
                            name_interfaces(live, hosts)
                            self.store.write_live(uuid, live)
                    except BaseException:
                        chan.sendall(b"abort\n")
                        _read_reply(chan)
                        raise
                    chan.sendall(b"go\n")
                    reply = _read_reply(chan)
            except OSError as exc:
                reply = {"ok": False, "error": f"the container's controller did not answer: {exc}"}
            if not reply.get("ok"):
                fd = files.pidfd(spare.pid)
                if fd is not None:
                    files.wait_exit(fd, 5.0)
                    os.close(fd)
                _controllers.reap(spare.pid)
                raise _failed(f"cannot start the container '{name}': {reply.get('error')}")
        except BaseException:
            for group in (cgroups, unused):
                if group is not None:
                    group.kill_all()
                    group.remove()
            for path in (layout.record_file(uuid), layout.control_socket(uuid), layout.live_xml(uuid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            if wrote:  # what the status said before
                if previous is not None:
                    self.store.write_status(uuid, previous)
                else:
                    self.store.remove_status(uuid)
            raise
        finally:
            chan.close()
            _controllers.prepare()
        self.hub.watch(status)
        self.hub.emit(name, uuid, DomainEventType.STARTED, STARTED_BOOTED, dom_id)

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        if flags:
            raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported flags (0x{flags:x}) in function lxcDomainCreate",
                            domain=_D)
        with self.store.lock(uuid):
            doc, status, _ = self._find(uuid)
            if status is not None and status.active:
                raise _invalid("Domain is already running")
            assert doc is not None
            self._launch(doc, persistent=True)

    @hookimpl
    def virt_domain_create_xml(self, xml: str, flags: int) -> DomainRef:
        if flags:
            raise VirtError(ErrorNumber.INVALID_ARG,
                            f"unsupported flags (0x{flags:x}) in function lxcDomainCreateXMLWithFiles", domain=_D)
        doc = self._parse(xml)
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            if status is not None and status.active:
                raise _invalid(f"domain '{doc.name}' is already active")
            self._launch(doc, persistent=existing is not None)
            status = self.store.status(doc.uuid)
        return self._ref(doc.uuid, doc.name, status)

    def _running(self, uuid: str) -> tuple[Status, str]:
        _, status, name = self._find(uuid)
        if status is None or not status.active:
            raise _not_running()
        return status, name

    def _request(self, uuid: str, message: dict[str, Any]) -> dict[str, Any]:
        reply = _ask(self.layout, uuid, message)
        if reply is None:
            raise _not_running()
        if not reply.get("ok"):
            raise _failed(str(reply.get("error")))
        return reply

    def _init_pid(self, uuid: str, status: Status) -> int:
        record = files.read_json(self.layout.record_file(uuid)) or {}
        init = int(record.get("init") or 0) if record.get("controller") == status.pid else 0
        if not init:  # the controller writes its record just after a start: ask it
            reply = _ask(self.layout, uuid, {"cmd": "state"}) or {}
            init = int(reply.get("init") or 0)
        return init

    @hookimpl
    def virt_domain_shutdown(self, uuid: str, flags: int) -> None:
        self._stop_request(uuid, flags, "shutdown")

    @hookimpl
    def virt_domain_reboot(self, uuid: str, flags: int) -> None:
        self._stop_request(uuid, flags, "reboot")

    def _stop_request(self, uuid: str, flags: int, what: str) -> None:
        if flags & ~(_SHUTDOWN_INITCTL | _SHUTDOWN_SIGNAL):
            raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported flags (0x{flags:x}) in function "
                            f"lxcDomain{what.capitalize()}Flags", domain=_D)
        with self.store.lock(uuid):
            status, _ = self._running(uuid)
            init = self._init_pid(uuid, status)
            if not flags or flags & _SHUTDOWN_INITCTL:
                if _initctl(init, "6" if what == "reboot" else "0"):
                    self._request(uuid, {"cmd": what, "signal": 0})  # what to make of the exit
                    return
                if flags == _SHUTDOWN_INITCTL:
                    raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED,
                                    "Container does not provide an initctl pipe", domain=_D)
            self._request(uuid, {"cmd": what})

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            status, _ = self._running(uuid)
            status["stopping"] = "destroyed"
            self.store.write_status(uuid, status)
            _ask(self.layout, uuid, {"cmd": "destroy"})
            fd = files.pidfd(status.pid)
            gone = True
            if fd is not None:
                try:
                    gone = files.wait_exit(fd, 10.0)
                finally:
                    os.close(fd)
            if not gone:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(status.pid, 9)
            record = files.read_json(self.layout.record_file(uuid)) or {}
            clean = gone and record.get("controller") == status.pid and isinstance(record.get("exit"), dict)
            self.hub.finish(status, SHUTOFF_DESTROYED, STOPPED_DESTROYED, clean=clean)
            _controllers.reap(status.pid)

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        with self.store.lock(uuid):
            status, name = self._running(uuid)
            if status.state == S.PAUSED:
                return
            cgroups = _cgroups.Cgroups.from_json(status.get("cgroups"))
            freezer = cgroups.dirs.get("freezer")
            if freezer is not None:
                # a controller leaves its container's freezer cgroup right after the start
                procs = Path(freezer, "cgroup.procs")
                deadline = time.monotonic() + 2.0
                while str(status.pid) in procs.read_text().split() and time.monotonic() < deadline:
                    time.sleep(0.002)
            try:
                if not cgroups.freeze(True):
                    raise VirtError(ErrorNumber.OPERATION_INVALID, "Unable to freeze domain: no freezer cgroup",
                                    domain=_D)
            except OSError as exc:
                raise _failed(f"Unable to freeze domain: {exc.strerror}") from None
            status.update(state=int(S.PAUSED), reason=PAUSED_USER)
            self.store.write_status(uuid, status)
        self.hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_PAUSED, int(status.get("id", -1)))

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        with self.store.lock(uuid):
            status, name = self._running(uuid)
            if status.state == S.RUNNING:
                raise _invalid("domain is already running")
            cgroups = _cgroups.Cgroups.from_json(status.get("cgroups"))
            try:
                cgroups.freeze(False)
            except OSError as exc:
                raise _failed(f"Unable to resume domain: {exc.strerror}") from None
            status.update(state=int(S.RUNNING), reason=RUNNING_UNPAUSED)
            self.store.write_status(uuid, status)
        self.hub.emit(name, uuid, DomainEventType.RESUMED, RESUMED_UNPAUSED, int(status.get("id", -1)))

    # -- monitoring -------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_memory_stats(self, uuid: str, flags: int) -> dict[str, int]:
        status, _ = self._running(uuid)
        live = self.store.live(uuid)
        assert live is not None
        mem = _cgroups.Cgroups.from_json(status.get("cgroups")).memory()
        out = {"actual": live.current_memory_kib}
        if "usage" in mem:
            out["rss"] = mem["usage"] // 1024
        return out

    @hookimpl
    def virt_domain_get_stats(self, uuid: str, stats: int, flags: int) -> dict[str, Any]:
        doc, status, _ = self._find(uuid)
        groups = stats or (STATS_STATE | STATS_CPU | STATS_BALLOON | STATS_VCPU | STATS_INTERFACE | STATS_BLOCK)
        active = status is not None and status.active
        live = (self.store.live(uuid) if active else None) or doc
        assert live is not None
        cgroups = _cgroups.Cgroups.from_json(status.get("cgroups")) if active and status is not None else None
        out: dict[str, Any] = {}
        if groups & STATS_STATE:
            out["state.state"] = status.state if status is not None else int(S.SHUTOFF)
            out["state.reason"] = status.reason if status is not None else 0
        if groups & STATS_CPU and cgroups is not None:
            total, user, system = cgroups.cpu_ns()
            out["cpu.time"] = total
            out["cpu.user"] = user
            out["cpu.system"] = system
        if groups & STATS_BALLOON:
            out["balloon.current"] = live.current_memory_kib
            out["balloon.maximum"] = live.memory_kib
            if cgroups is not None:
                mem = cgroups.memory()
                if "usage" in mem:
                    out["balloon.current"] = mem["usage"] // 1024
                    out["balloon.rss"] = mem.get("rss", mem["usage"]) // 1024
        if groups & STATS_VCPU:
            out["vcpu.current"] = live.current_vcpus
            out["vcpu.maximum"] = live.max_vcpus
        if groups & STATS_INTERFACE:
            out.update(interface_stats_group(live, active))
        if groups & STATS_BLOCK:
            out["block.count"] = 0
        return out

    @hookimpl
    def virt_domain_interface_stats(self, uuid: str, device: str) -> InterfaceStats:
        """``virsh domifstat``: the counters of an interface named by its host veth
        (``<target dev>`` of the live definition) or its MAC, as libvirt's
        lxcDomainInterfaceStats (virDomainNetFind), seen from the container: what the host end
        sends, the container receives."""
        self._running(uuid)
        live = self.store.live(uuid)
        nics = live.root.findall("devices/interface") if live is not None else []
        mac = _mac_or_none(device)
        for nic in nics:
            target = nic.find("target")
            dev = target.get("dev") if target is not None else None
            if mac is not None:
                mac_el = nic.find("mac")
                hit = mac_el is not None and _mac_or_none(mac_el.get("address", "")) == mac
            else:
                hit = dev == device
            if hit and dev:
                counters = host_device_counters(dev)
                if counters is not None:
                    return counters
                raise _failed(f"cannot read the counters of interface '{dev}'")
        raise VirtError(ErrorNumber.INVALID_ARG, f"'{device}' is not a known interface", domain=_D,
                        message=f"invalid argument: '{device}' is not a known interface")

    @hookimpl
    def virt_domain_open_console(self, uuid: str, dev_name: str | None, flags: int) -> str:
        status, _ = self._running(uuid)
        if dev_name not in (None, "console0"):
            raise _failed(f"cannot find console device '{dev_name}'")
        tty = str(status.get("tty") or "")
        if not tty:
            raise _failed("cannot find a console for the domain")
        return tty


def _read_line(chan: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = chan.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _read_reply(chan: socket.socket) -> dict[str, Any]:
    """One line of JSON from a controller (OSError when it cannot be read)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = chan.recv(65536)
        if not chunk:
            break
        data += chunk
    if not data:
        return {"ok": False, "error": "the controller exited"}
    try:
        reply = json.loads(data)
    except ValueError:
        return {"ok": False, "error": "the controller's answer is garbled"}
    return reply if isinstance(reply, dict) else {"ok": False, "error": "the controller's answer is garbled"}


#: The networking hook point: callables ``(uri, doc, init_pid)`` run while a starting
#: container's init waits before its ``execve``, its network namespace made; they move what
#: the definition's ``<interface>``s need into it (``ip link set DEV netns PID``), and may
#: return the host ends' names, one per ``<interface>`` (written into the live definition by
#: ``_container.name_interfaces``).  With the host networking plugin, ``attach_interfaces``
#: plugs a veth into a bridge; without it ``_container.plug_interfaces`` refuses such
#: interfaces before a start gets here.
interface_hooks: list[Callable[[str, DomainDocument, int], Sequence[str] | None]] = []
try:  # the host networking plugin plugs veths; without it plug_interfaces refuses them earlier
    import virt_host.network  # noqa: F401
except ImportError:
    pass
else:
    from virt_lxc._container import attach_interfaces

    interface_hooks.append(attach_interfaces)


def _mac_or_none(text: str) -> str | None:
    """``text`` as a MAC address (lower case, colons), or None when it is not one."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return None
    return ":".join(p.lower().zfill(2) for p in parts)


def _fill_live(live: DomainDocument, tty: str) -> None:
    """The console's pty path, in the live XML, as libvirt shows it."""
    console = live.root.find("devices/console")
    if console is not None and console.get("type", "pty") == "pty" and tty:
        live.set_pty_path(console, tty)


_INITCTL_MAGIC = 0x03091969
_INITCTL_RUNLVL = 1


def _initctl(init: int, runlevel: str) -> bool:
    """Ask a sysvinit-style init for ``runlevel`` through its initctl FIFO; False when the
    container has none (or nobody listens)."""
    if init <= 0:
        return False
    request = struct.pack("iiii368s", _INITCTL_MAGIC, _INITCTL_RUNLVL, ord(runlevel), 0, b"")
    for fifo in ("run/initctl", "dev/initctl"):
        path = f"/proc/{init}/root/{fifo}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            import stat

            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                continue
            os.write(fd, request)
            return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def _domain_xml_from_native(self: LxcConnection, native_format: str, config: str, flags: int) -> str:
    """``virsh domxml-from-native lxc-tools FILE``: an LXC tools configuration as domain XML."""
    if native_format != "lxc-tools":
        raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported config type {native_format}", domain=_D)
    if flags:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported flags (0x{flags:x}) in function "
                        "lxcConnectDomainXMLFromNative", domain=_D)
    from virt_lxc._native import domain_xml_from_native

    return domain_xml_from_native(config, EMULATOR)


def _register_optional_hooks() -> None:
    """Hooks whose specs the core may not have yet: implemented once it has them (an
    implementation of a hook without a spec would make every open fail)."""
    from virt.hookspecs import connection

    if hasattr(connection, "virt_connect_domain_xml_from_native"):
        LxcConnection.virt_connect_domain_xml_from_native = hookimpl(  # type: ignore[attr-defined]
            _domain_xml_from_native)


_register_optional_hooks()
