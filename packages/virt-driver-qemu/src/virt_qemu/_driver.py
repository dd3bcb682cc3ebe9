"""The ``qemu:///`` connection: domains as real QEMU processes, state in files.

No daemon and no resident process per guest: QEMU runs detached, its status and definitions
live in files (see :mod:`virt_qemu._store`), and every process that opens the same URI sees
and controls the same guests.  Within a process, one :class:`Hub` per URI keeps the watchers
of running guests (QMP events and exits) and delivers lifecycle events to the process's
connections.  What libvirt's ``qemu`` driver does is the reference for states, reasons, event
details, error codes and messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import (
    BlockInfo,
    DomainEventType,
    DomainInfo,
    DomainInterface,
    DomainRef,
    DomainState,
    InterfaceStats,
    IPAddress,
    SecurityLabel,
    SecurityModel,
    VcpuInfo,
)
from virt._state_files import short_socket_path
from virt.driverkit import StoredDomains, emit_domain_event, host_device_counters, interface_stats_group
from virt.plugin import OpenRequest
from virt.xml.domain import DomainDocument

from virt_qemu import _loop, _process
from virt_qemu._command import CommandLine, build_command
from virt_qemu._metadata import MetadataMixin
from virt_qemu._monitor import WAIT_RUNSTATE_LEAVES, MonitorGone, session, watch
from virt_qemu._paths import Layout, layout_for
from virt_qemu._snapshots import (
    PAUSED_FROM_SNAPSHOT,
    STARTED_FROM_SNAPSHOT,
    SUSPENDED_FROM_SNAPSHOT,
    Prepare,
    SnapshotMixin,
    remove_snapshot_metadata,
    snapshot_count,
)
from virt_qemu._store import Status, Store, parse_definition, store_for

__all__ = ["QemuConnection"]

_D = ErrorDomain.QEMU
S = DomainState

# state reasons (virDomain<State>Reason)
RUNNING_BOOTED, RUNNING_RESTORED, RUNNING_UNPAUSED = 1, 3, 5
PAUSED_UNKNOWN, PAUSED_USER, PAUSED_SAVE, PAUSED_IOERROR, PAUSED_WATCHDOG = 0, 1, 3, 5, 6
PAUSED_SHUTTING_DOWN, PAUSED_STARTING_UP = 8, 11
SHUTDOWN_UNKNOWN = 0
SHUTOFF_UNKNOWN, SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_CRASHED, SHUTOFF_SAVED, SHUTOFF_FAILED = 0, 1, 2, 3, 5, 6
CRASHED_PANICKED = 1

# event details (virDomainEvent<Type>DetailType)
DEFINED_ADDED, DEFINED_UPDATED = 0, 1
UNDEFINED_REMOVED = 0
STARTED_BOOTED, STARTED_RESTORED = 0, 2
SUSPENDED_PAUSED, SUSPENDED_IOERROR, SUSPENDED_WATCHDOG, SUSPENDED_RESTORED = 0, 2, 3, 4
RESUMED_UNPAUSED = 0
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_CRASHED, STOPPED_SAVED, STOPPED_FAILED = 0, 1, 2, 4, 5
SHUTDOWN_GUEST, SHUTDOWN_HOST = 1, 2
CRASHED_EVENT_PANICKED = 0

# flags
_START_PAUSED = 1
_AFFECT_LIVE, _AFFECT_CONFIG = 1, 2
_MEM_MAXIMUM = _VCPU_MAXIMUM = 4
_VCPU_GUEST = 8
_DESTROY_GRACEFUL = 1
_SAVE_RUNNING, _SAVE_PAUSED = 2, 4
_UNDEFINE_MANAGED_SAVE, _UNDEFINE_SNAPSHOTS_METADATA = 1, 2
_XML_SECURE, _XML_INACTIVE = 1, 2
# virDomainStatsTypes
STATS_STATE, STATS_CPU, STATS_BALLOON, STATS_VCPU, STATS_INTERFACE, STATS_BLOCK = 1, 2, 4, 8, 16, 32

_SAVE_MAGIC = b"VirtQemuSave\0\0\0\0"
_SAVE_HEADER = struct.Struct("<16sIIII")  # magic, version, xml length, flags, data offset
_SAVE_VERSION = 1
_SAVE_RUNNING_FLAG = 1
_SAVE_MAX_XML = 10 * 1024 * 1024
# QEMU throttles migration to 128 MiB/s by default; a save to a local file should not wait.
_UNLIMITED_BANDWIDTH = 1 << 53

_START_TIMEOUT = 60.0


def _invalid(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, detail, domain=_D)


def _no_agent() -> VirtError:
    return VirtError(ErrorNumber.ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured", domain=_D,
                     message="argument unsupported: QEMU guest agent is not configured")


def _no_cgroups(controller: str) -> VirtError:
    # libvirt's words when the controller is missing; this driver places no guest in a cgroup
    return VirtError(ErrorNumber.OPERATION_INVALID, f"cgroup {controller} controller is not mounted "
                     "(the QEMU driver does not place guests in cgroups)", domain=_D)


def _arp_table() -> dict[str, list[str]]:
    """MAC -> IPv4 addresses from the kernel's neighbour table (``domifaddr --source arp``)."""
    out: dict[str, list[str]] = {}
    try:
        with open("/proc/net/arp") as src:
            next(src, None)
            for line in src:
                fields = line.split()
                if len(fields) >= 4 and fields[3] != "00:00:00:00:00:00":
                    out.setdefault(fields[3].lower(), []).append(fields[0])
    except OSError:
        pass
    return out


def _not_running() -> VirtError:
    return _invalid("domain is not running")


def _failed(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_FAILED, detail, domain=_D)


# -- the per-process hub of one URI -------------------------------------------------------


class Hub:
    """What the connections of one URI share in a process: the store, watchers, listeners."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.store: Store = store_for(layout)
        self.connections: weakref.WeakSet[QemuConnection] = weakref.WeakSet()
        self.watching: dict[str, int] = {}  # uuid -> pid being watched
        self._guard = threading.Lock()

    # -- events -----------------------------------------------------------------------------

    def emit(self, name: str, uuid: str, event: DomainEventType, detail: int, dom_id: int = -1) -> None:
        emit_domain_event(self.connections, name, uuid, event, detail, dom_id)

    # -- watching running guests ------------------------------------------------------------

    def watch(self, status: Status) -> None:
        """Follow the QEMU of ``status`` (events, exit) from this process, once."""
        uuid, pid = str(status["uuid"]), status.pid
        with self._guard:
            if self.watching.get(uuid) == pid:
                return
            fd = _process.pidfd(pid)
            if fd is None:
                self.watching.pop(uuid, None)
            else:
                self.watching[uuid] = pid
        if fd is None:
            _loop.get_loop().call_soon_threadsafe(self._exited_soon, uuid, pid)
            return
        evt = self.layout.event_socket(uuid)
        coro = watch(evt, fd, lambda name, data, query: self.on_qmp_event(uuid, pid, name, data, query),
                     lambda: self.on_exit(uuid, pid))
        _loop.get_loop().call_soon_threadsafe(lambda: _loop.get_loop().create_task(coro))

    def _exited_soon(self, uuid: str, pid: int) -> None:
        _loop.get_loop().run_in_executor(None, self.on_exit, uuid, pid)

    def on_qmp_event(self, uuid: str, pid: int, name: str, data: dict[str, Any],
                     query_status: Callable[[], dict[str, Any] | None]) -> list[tuple[str, Any]]:
        replies: list[tuple[str, Any]] = []
        with self.store.lock(uuid):
            status = self.store.status(uuid)
            if status is None or status.pid != pid or not status.active:
                return replies
            dom_name, dom_id = str(status["name"]), int(status.get("id", -1))
            if name == "SHUTDOWN":
                if status.get("fake_reboot"):
                    status["fake_reboot"] = False
                    self.store.write_status(uuid, status)
                    return [("system_reset", None), (WAIT_RUNSTATE_LEAVES, {"status": "shutdown"}),
                            ("set-action", {"shutdown": "poweroff"}), ("cont", None)]
                guest = bool(data.get("guest"))
                status["shutdown"] = "guest" if guest else "host"
                if data.get("reason") == "guest-panic":
                    status["panicked"] = True
                if status.get("stopping"):
                    self.store.write_status(uuid, status)
                    return replies
                status.update(state=S.SHUTDOWN, reason=SHUTDOWN_UNKNOWN)
                self.store.write_status(uuid, status)
                self.emit(dom_name, uuid, DomainEventType.SHUTDOWN, SHUTDOWN_GUEST if guest else SHUTDOWN_HOST,
                          dom_id)
            elif name in ("STOP", "RESUME"):
                # Events can be stale: a suspend and resume by a command may both be done by
                # the time the lock is ours.  Reconcile the status with QEMU's state now.
                if status.get("stopping") or status.get("fake_reboot") or status.get("shutdown"):
                    return replies
                now = query_status()
                if now is None:
                    return replies
                running = bool(now.get("running"))
                if running and status.state in (S.PAUSED, S.CRASHED):
                    status.update(state=S.RUNNING, reason=RUNNING_UNPAUSED)
                    self.store.write_status(uuid, status)
                    self.emit(dom_name, uuid, DomainEventType.RESUMED, RESUMED_UNPAUSED, dom_id)
                elif not running and status.state == S.RUNNING:
                    why = str(now.get("status", ""))
                    reason = {"io-error": PAUSED_IOERROR, "watchdog": PAUSED_WATCHDOG}.get(why, PAUSED_UNKNOWN)
                    status.update(state=S.PAUSED, reason=reason)
                    self.store.write_status(uuid, status)
                    detail = {PAUSED_IOERROR: SUSPENDED_IOERROR, PAUSED_WATCHDOG: SUSPENDED_WATCHDOG}.get(
                        reason, SUSPENDED_PAUSED)
                    self.emit(dom_name, uuid, DomainEventType.SUSPENDED, detail, dom_id)
            elif name == "GUEST_PANICKED":
                status["panicked"] = True
                if data.get("action") == "pause":
                    status.update(state=S.CRASHED, reason=CRASHED_PANICKED)
                self.store.write_status(uuid, status)
                self.emit(dom_name, uuid, DomainEventType.CRASHED, CRASHED_EVENT_PANICKED, dom_id)
        return replies

    def settle(self, uuid: str, status: Status) -> Status | None:
        """``status`` says running but its QEMU is gone: let whoever watches it record why.

        The watcher (here, or in the process that holds the event monitor) may still be
        handling QEMU's last events (a SHUTDOWN says 'shutdown', not 'crashed'); give it a
        moment, then settle it ourselves.
        """
        pid = status.pid
        grace = 2.0 if self.watching.get(uuid) == pid else 0.3
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            now = self.store.status(uuid)
            if now is None or now.pid != pid or not now.active:
                return now
            time.sleep(0.005)
        self.on_exit(uuid, pid)
        return self.store.status(uuid)

    def on_exit(self, uuid: str, pid: int) -> None:
        """QEMU ``pid`` exited: unless whoever stopped it already did, record why and tidy up."""
        with self._guard:
            if self.watching.get(uuid) == pid:
                del self.watching[uuid]
        _process.reap(pid)
        with self.store.lock(uuid):
            status = self.store.status(uuid)
            if status is None or status.pid != pid or not status.active:
                return
            if _process.alive(pid, status.get("started")):
                return  # not ours to judge: the pidfd was of another process
            if status.get("panicked"):
                reason, detail = SHUTOFF_CRASHED, STOPPED_CRASHED
            elif status.get("shutdown"):
                reason, detail = SHUTOFF_SHUTDOWN, STOPPED_SHUTDOWN
            else:
                reason, detail = SHUTOFF_CRASHED, STOPPED_FAILED
            self.finish(status, reason, detail)

    def finish(self, status: Status, reason: int, detail: int | None) -> None:
        """The domain of ``status`` is now shut off (caller holds its lock; QEMU is gone)."""
        uuid, name = str(status["uuid"]), str(status["name"])
        dom_id = int(status.get("id", -1))
        layout = self.layout
        for path in (layout.monitor_socket(uuid), layout.event_socket(uuid), layout.live_xml(uuid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if status.get("persistent"):
            self.store.write_status(uuid, {"uuid": uuid, "name": name, "state": int(S.SHUTOFF), "reason": reason,
                                           "pid": 0, "persistent": True})
        else:
            self.store.remove_status(uuid)
            remove_snapshot_metadata(layout, name)  # libvirt forgets a transient domain's snapshots
        if status.get("taps"):
            _unplug_taps(list(status["taps"]))
        _append_log(layout.log_file(name), "shutting down, reason=" + _REASON_WORD.get(reason, "unknown"))
        if detail is not None:
            self.emit(name, uuid, DomainEventType.STOPPED, detail, dom_id)


_REASON_WORD = {SHUTOFF_SHUTDOWN: "shutdown", SHUTOFF_DESTROYED: "destroyed", SHUTOFF_CRASHED: "crashed",
                SHUTOFF_SAVED: "saved", SHUTOFF_FAILED: "failed"}

_hubs: dict[str, Hub] = {}
_hubs_guard = threading.Lock()


def hub_for(layout: Layout) -> Hub:
    with _hubs_guard:
        hub = _hubs.get(layout.root)
        if hub is None:
            hub = _hubs[layout.root] = Hub(layout)
        return hub


def _unplug_taps(names: list[str]) -> None:
    """Remove the guest's taps (they also vanish when QEMU, their last holder, exits)."""
    try:
        from virt_host.network import unplug_tap
    except ImportError:
        return
    for name in names:
        with contextlib.suppress(Exception):
            unplug_tap(name)


def _append_log(path: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(path, "a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}.000+0000: {line}\n")


# -- host facts ---------------------------------------------------------------------------

_emulators: dict[str, str | None] = {}
_ARCH_BINARY = {"x86_64": "qemu-system-x86_64", "i686": "qemu-system-i386", "aarch64": "qemu-system-aarch64"}


def find_emulator(arch: str) -> str | None:
    if arch not in _emulators:
        binary = _ARCH_BINARY.get(arch, f"qemu-system-{arch}")
        _emulators[arch] = shutil.which(binary) or (f"/usr/bin/{binary}" if os.path.exists(f"/usr/bin/{binary}")
                                                     else None)
    return _emulators[arch]


def kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


_versions: dict[str, int] = {}


def qemu_version(emulator: str) -> int:
    """``major * 1000000 + minor * 1000 + micro`` of ``emulator`` (libvirt's encoding)."""
    if emulator not in _versions:
        out = subprocess.run([emulator, "--version"], capture_output=True, text=True, check=False).stdout
        words = out.split()
        number = words[words.index("version") + 1] if "version" in words else "0.0.0"
        parts = (number.split(".") + ["0"] * 3)[:3]
        major, minor, micro = (int("".join(c for c in p if c.isdigit()) or 0) for p in parts)
        _versions[emulator] = major * 1_000_000 + minor * 1_000 + micro
    return _versions[emulator]


def _free_vnc_port() -> int:
    for port in range(5900, 65536):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise _failed("no free VNC port")


def _listen(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(short_socket_path(path))
    os.chmod(path, 0o600)
    sock.listen(8)
    return sock


def _log_tail(path: Path, offset: int) -> str:
    """What QEMU printed to its log since ``offset``, as one line for an error message."""
    try:
        with open(path, "rb") as src:
            src.seek(offset)
            text = src.read(65536).decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("LC_", "PATH=", "HOME="))]
    lines = [ln for ln in lines if not ln.startswith("/") or ":" in ln]
    return " ".join(lines[-6:])


# -- the connection -----------------------------------------------------------------------


class QemuConnection(StoredDomains, SnapshotMixin, MetadataMixin):
    """One ``qemu:///`` connection (snapshots in :mod:`virt_qemu._snapshots`, metadata in
    :mod:`virt_qemu._metadata`)."""

    def __init__(self, request: OpenRequest) -> None:
        self.layout = layout_for(request.uri)
        self.hub = hub_for(self.layout)
        self.store = self.hub.store
        self.hook = request.hook
        self.readonly = request.readonly
        self.uri = "qemu://" + request.uri.path if request.uri.path != "/embed" else self.layout.root
        self.hub.connections.add(self)
        self._reconnect()

    @classmethod
    def open(cls, request: OpenRequest) -> QemuConnection:
        return cls(request)

    def _follow(self, status: Status) -> None:
        self.hub.watch(status)

    # -- connection hooks -------------------------------------------------------------------

    @hookimpl
    def virt_connect_close(self) -> None:
        self.hub.connections.discard(self)

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "QEMU"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        emulator = find_emulator("x86_64")
        return qemu_version(emulator) if emulator else 0

    @hookimpl
    def virt_connect_get_max_vcpus(self, type: str | None) -> int:
        return 255 if (type or "qemu").lower() in ("qemu", "kvm") else 0

    @hookimpl
    def virt_connect_get_capabilities(self) -> str:
        from virt_qemu._caps import capabilities_xml

        return capabilities_xml()

    @hookimpl
    def virt_connect_get_domain_capabilities(self, emulator: str | None, arch: str | None, machine: str | None,
                                             virttype: str | None, flags: int) -> str:
        from virt_qemu._caps import domain_capabilities_xml

        return domain_capabilities_xml(emulator, arch, machine, virttype)

    # -- finding domains (virt.driverkit.StoredDomains) ---------------------------------------

    error_domain = _D

    def _settle(self, uuid: str, status: Status) -> Status | None:
        return self.hub.settle(uuid, status)

    def _has_managed_save(self, name: str) -> bool:
        return self.layout.managed_save(name).exists()

    def _snapshot_count(self, name: str) -> int:
        return snapshot_count(self.layout, name)

    # -- definitions --------------------------------------------------------------------------

    def _parse(self, xml: str) -> DomainDocument:
        doc = parse_definition(xml)
        if doc.type not in ("qemu", "kvm"):
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED,
                            f"Emulator '{find_emulator('x86_64') or 'qemu-system-x86_64'}' does not support "
                            f"virt type '{doc.type}'", domain=_D)
        if "/" in doc.name or doc.name.startswith("."):
            raise VirtError(ErrorNumber.XML_ERROR, f"name {doc.name} cannot contain '/' or start with '.'",
                            domain=ErrorDomain.DOMAIN)
        arch = doc.arch or "x86_64"
        if find_emulator(arch) is None:
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"no QEMU binary for architecture '{arch}' "
                            f"(install qemu-system for it)", domain=_D)
        return doc

    def _check_unique(self, doc: DomainDocument) -> tuple[DomainDocument | None, Status | None]:
        """libvirt's rules: a name belongs to one UUID, a UUID to one name."""
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
            save = self.layout.managed_save(name)
            if save.exists():
                if not flags & _UNDEFINE_MANAGED_SAVE:
                    raise _invalid("Refusing to undefine while domain managed save image exists")
                save.unlink()
            snapshots = snapshot_count(self.layout, name)
            if snapshots and not (status is not None and status.active):
                if not flags & _UNDEFINE_SNAPSHOTS_METADATA:
                    raise _invalid(f"cannot delete inactive domain with {snapshots} snapshots")
                remove_snapshot_metadata(self.layout, name)
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
        assert doc is not None
        return doc.to_string(secure=bool(flags & _XML_SECURE), inactive=True)

    @hookimpl
    def virt_domain_get_os_type(self, uuid: str) -> str:
        doc, _, _ = self._find(uuid)
        live = doc if doc is not None else self.store.live(uuid)
        return live.os_type if live is not None else "hvm"

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
        cpu = _process.cpu_time_ns(status.pid) if active and status is not None else 0
        vcpus = live.current_vcpus
        return DomainInfo(state=state, max_memory=live.memory_kib,
                          memory=live.current_memory_kib, nr_virt_cpu=vcpus, cpu_time=cpu)

    # -- lifecycle ------------------------------------------------------------------------------

    def _emulator(self, doc: DomainDocument) -> str:
        emulator = doc.root.findtext("devices/emulator")
        if emulator:
            if not os.access(emulator, os.X_OK):
                raise _failed(f"Cannot find QEMU binary {emulator}: No such file or directory")
            return emulator
        found = find_emulator(doc.arch or "x86_64")
        if found is None:
            raise _failed(f"no QEMU binary for architecture '{doc.arch or 'x86_64'}'")
        return found

    def _launch(self, doc: DomainDocument, *, persistent: bool, paused: bool, image: _SaveImage | None = None,
                reason: int = RUNNING_BOOTED, detail: int = STARTED_BOOTED, prepare: Prepare | None = None) -> None:
        """Start QEMU for ``doc`` (caller holds the domain's lock and checked it is inactive);
        ``prepare(qmp, cmd)`` runs on the paused QEMU before it continues (a snapshot's load)."""
        layout = self.layout
        emulator = self._emulator(doc)
        live = doc.copy()
        kvm = kvm_usable()
        vnc_port = None
        graphics = live.root.find("devices/graphics[@type='vnc']")
        if graphics is not None and graphics.get("autoport", "yes" if graphics.get("port", "-1") == "-1" else "no") \
                == "yes":
            vnc_port = _free_vnc_port()
        host_view = self._host_view(live)
        incoming = f"fd:{image.fd}" if image is not None else None
        cmd = build_command(host_view.root, emulator=emulator, domain_dir=layout.run, kvm=kvm,
                            vnc_port=vnc_port, incoming=incoming)
        taps = self._plug_taps(live, cmd.needs_taps) if cmd.needs_taps else []
        try:
            if taps:
                cmd = build_command(host_view.root, emulator=emulator, domain_dir=layout.run, kvm=kvm,
                                    vnc_port=vnc_port, incoming=incoming,
                                    taps={index: tap.fd for index, tap in taps})
            self._spawn_and_boot(live, cmd, persistent=persistent, paused=paused, image=image, reason=reason,
                                 detail=detail, taps=taps, prepare=prepare)
        finally:
            for _, tap in taps:
                tap.close()  # QEMU holds its own descriptor now, or the start failed

    def _plug_taps(self, live: DomainDocument, indexes: tuple[int, ...]) -> list[tuple[int, Any]]:
        """A tap on its bridge for each ``<interface type='network'|'bridge'>`` at ``indexes``."""
        try:
            from virt_host.network import plug_tap, unplug_tap
        except ImportError:
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, "interface types 'network' and 'bridge' need the host "
                            "networking plugin (pip install virt-host)", domain=_D) from None
        nics = live.root.findall("devices/interface")
        plugged: list[tuple[int, Any]] = []
        try:
            for index in indexes:
                nic = nics[index]
                source = nic.find("source")
                mac = nic.find("mac")
                target = nic.find("target")
                kind = nic.get("type")
                tap = plug_tap(self.uri, network=source.get("network") if kind == "network" and source is not None
                               else None,
                               bridge=source.get("bridge") if kind == "bridge" and source is not None else None,
                               mac=mac.get("address", "") if mac is not None else "", domain_name=live.name,
                               index=index, target=target.get("dev") if target is not None else None)
                plugged.append((index, tap))
                if target is None:
                    target = etree.SubElement(nic, "target")
                    # libvirt's order: target right after source
                    nic.remove(target)
                    nic.insert(list(nic).index(source) + 1 if source is not None else len(nic), target)
                target.set("dev", tap.name)
        except BaseException:
            for _, tap in plugged:
                tap.close()
                with contextlib.suppress(Exception):
                    unplug_tap(tap.name)
            raise
        return plugged

    def _spawn_and_boot(self, live: DomainDocument, cmd: CommandLine, *, persistent: bool, paused: bool,
                        image: _SaveImage | None, reason: int, detail: int, taps: list[tuple[int, Any]],
                        prepare: Prepare | None = None) -> None:
        layout, uuid, name = self.layout, live.uuid, live.name
        emulator = cmd.argv[0]
        if cmd.nvram is not None:
            nvram, template = cmd.nvram
            if not os.path.exists(nvram):
                if template is None:
                    raise _failed(f"NVRAM file '{nvram}' does not exist and no template is given")
                import shutil as _shutil

                os.makedirs(os.path.dirname(nvram), exist_ok=True)
                _shutil.copyfile(template, nvram)
        dom_id = self.store.next_id()
        mon = _listen(layout.monitor_socket(uuid))
        evt = _listen(layout.event_socket(uuid))
        log_path = layout.log_file(name)
        argv = [cmd.argv[0], "-name", f"guest={name},debug-threads=on", "-S", "-uuid", uuid,
                "-no-user-config", "-nodefaults",
                "-chardev", f"socket,id=charmonitor,fd={mon.fileno()},server=on,wait=off",
                "-mon", "chardev=charmonitor,id=monitor,mode=control",
                "-chardev", f"socket,id=charevents,fd={evt.fileno()},server=on,wait=off",
                "-mon", "chardev=charevents,id=events,mode=control",
                *cmd.argv[1:]]
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            offset = os.lseek(log_fd, 0, os.SEEK_END)
            header = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}.000+0000: starting up\n"
            os.write(log_fd, (header + " ".join(_quote(a) for a in argv) + "\n").encode())
            offset = os.lseek(log_fd, 0, os.SEEK_END)
            fds = [mon.fileno(), evt.fileno()] + ([image.fd] if image is not None else []) + [t.fd for _, t in taps]
            try:
                pid = _process.spawn(argv, log_fd=log_fd, pass_fds=fds)
            except OSError as exc:
                raise _failed(f"cannot execute QEMU binary {emulator}: {exc.strerror}") from None
        finally:
            os.close(log_fd)
            mon.close()
            evt.close()
        started = _process.start_time(pid)
        status = Status(uuid=uuid, name=name, id=dom_id, pid=pid, started=started, state=int(S.PAUSED),
                        reason=PAUSED_STARTING_UP, persistent=persistent, taps=[t.name for _, t in taps])
        self.store.write_status(uuid, status)
        wanted_ptys: dict[str, list[str]] = {}
        for chardev in cmd.chardevs:
            if chardev.kind == "pty":  # one chardev may back a serial and a console
                wanted_ptys.setdefault(chardev.alias, []).append(chardev.device)
        try:
            ptys = _loop.run(self._boot(uuid, cmd, wanted_ptys, paused, image is not None, prepare),
                             _START_TIMEOUT if prepare is None else None)
        except BaseException as exc:
            _process.kill(pid, started, force_after=1.0)
            message = _log_tail(log_path, offset)
            self.hub.finish(status, SHUTOFF_FAILED, None)
            if isinstance(exc, VirtError):
                raise
            if isinstance(exc, MonitorGone | TimeoutError):
                raise VirtError(ErrorNumber.INTERNAL_ERROR,
                                f"QEMU unexpectedly closed the monitor (vm='{name}'): {message or exc}",
                                domain=_D) from None
            raise
        live.set_id(dom_id)
        _fill_live(live, ptys, cmd.vnc_port)
        self.store.write_live(uuid, live)
        from_snapshot = detail == STARTED_FROM_SNAPSHOT
        status.update(state=int(S.PAUSED if paused else S.RUNNING),
                      reason=(PAUSED_FROM_SNAPSHOT if from_snapshot else PAUSED_USER) if paused else reason,
                      ptys=ptys, vnc_port=cmd.vnc_port,
                      disks=[list(d) for d in cmd.disks], nics=[list(n) for n in cmd.nics])
        self.store.write_status(uuid, status)
        self.hub.watch(status)
        self.hub.emit(name, uuid, DomainEventType.STARTED, detail, dom_id)
        if paused:
            self.hub.emit(name, uuid, DomainEventType.SUSPENDED,
                          SUSPENDED_RESTORED if image is not None else
                          SUSPENDED_FROM_SNAPSHOT if from_snapshot else SUSPENDED_PAUSED, dom_id)

    def _host_view(self, live: DomainDocument) -> DomainDocument:
        """``live`` as QEMU must see it: ``<disk type='volume'>`` resolved to the volume's path
        through the host storage plugin (the live XML keeps the pool and volume names)."""
        volumes = [d for d in live.root.iterfind("devices/disk") if d.get("type") == "volume"]
        if not volumes:
            return live
        try:
            from virt_host.storage import resolve_volume
        except ImportError:
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, "disks from storage pools need the host storage plugin "
                            "(pip install virt-host)", domain=_D) from None
        view = live.copy()
        for disk in view.root.iterfind("devices/disk"):
            source = disk.find("source")
            if disk.get("type") != "volume" or source is None:
                continue
            pool, volume = source.get("pool"), source.get("volume")
            if not pool or not volume:
                raise VirtError(ErrorNumber.XML_ERROR, "missing storage pool or volume name for disk source",
                                domain=ErrorDomain.DOMAIN)
            found = resolve_volume(self.uri, pool, volume)
            block = int(found.type) == 1  # VolumeType.BLOCK
            disk.set("type", "block" if block else "file")
            for name in list(source.attrib):
                del source.attrib[name]
            source.set("dev" if block else "file", found.path)
            driver = disk.find("driver")
            if driver is None:
                driver = etree.Element("driver", name="qemu")
                disk.insert(0, driver)
            if driver.get("type") is None:
                driver.set("type", found.format if found.format in ("raw", "qcow2") else "raw")
        return view

    async def _boot(self, uuid: str, cmd: CommandLine, wanted_ptys: dict[str, list[str]], paused: bool,
                    incoming: bool, prepare: Prepare | None = None) -> dict[str, str]:
        import asyncio

        ptys: dict[str, str] = {}
        async with session(self.layout.monitor_socket(uuid)) as qmp:
            if wanted_ptys:
                for dev in await qmp.execute("query-chardev"):
                    label, filename = dev.get("label"), str(dev.get("filename", ""))
                    if label in wanted_ptys and filename.startswith("pty:"):
                        for device in wanted_ptys[label]:
                            ptys[device] = filename[4:]
            if cmd.vnc_password is not None:
                await qmp.execute("set_password", {"protocol": "vnc", "password": cmd.vnc_password})
            if cmd.balloon_stats_period:
                await qmp.execute("qom-set", {"path": "/machine/peripheral/balloon0",
                                              "property": "guest-stats-polling-interval",
                                              "value": cmd.balloon_stats_period})
            if incoming:
                while True:
                    run_state = (await qmp.execute("query-status")).get("status")
                    if run_state != "inmigrate":
                        break
                    await asyncio.sleep(0.005)
                if run_state not in ("paused", "postmigrate", "prelaunch", "running", "finish-migrate"):
                    migrate = await qmp.execute("query-migrate")
                    raise _failed(f"cannot restore domain: QEMU is in state '{run_state}' "
                                  f"({migrate.get('error-desc', 'no detail')})")
            if prepare is not None:
                await prepare(qmp, cmd)
            if not paused:
                await qmp.execute("cont")
        return ptys

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            if status is not None and status.active:
                raise _invalid("domain is already running")
            assert doc is not None
            image_path = self.layout.managed_save(name)
            if image_path.exists():
                image = _SaveImage.open(image_path)
                try:
                    self._launch(image.doc, persistent=True, paused=bool(flags & _START_PAUSED) or not image.running,
                                 image=image, reason=RUNNING_RESTORED, detail=STARTED_RESTORED)
                finally:
                    image.close()
                image_path.unlink()
                return
            self._launch(doc, persistent=True, paused=bool(flags & _START_PAUSED))

    @hookimpl
    def virt_domain_create_xml(self, xml: str, flags: int) -> DomainRef:
        doc = self._parse(xml)
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            if status is not None and status.active:
                raise _invalid(f"domain '{doc.name}' is already active")
            if existing is not None:
                # libvirt starts the persistent domain with this new definition as its live one
                self._launch(doc, persistent=True, paused=bool(flags & _START_PAUSED))
            else:
                self._launch(doc, persistent=False, paused=bool(flags & _START_PAUSED))
            status = self.store.status(doc.uuid)
        return self._ref(doc.uuid, doc.name, status)

    def _running(self, uuid: str) -> tuple[Status, str]:
        _, status, name = self._find(uuid)
        if status is None or not status.active:
            raise _not_running()
        return status, name

    def _qmp(self, uuid: str, *commands: tuple[str, dict[str, Any] | None]) -> list[Any]:
        async def go() -> list[Any]:
            async with session(self.layout.monitor_socket(uuid)) as qmp:
                return [await qmp.execute(cmd, args) for cmd, args in commands]

        try:
            return _loop.run(go(), 60)
        except MonitorGone:
            raise _not_running() from None

    @hookimpl
    def virt_domain_shutdown(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            self._running(uuid)
            self._qmp(uuid, ("system_powerdown", None))

    @hookimpl
    def virt_domain_reboot(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            status, _ = self._running(uuid)
            status["fake_reboot"] = True
            self.store.write_status(uuid, status)
            try:
                self._qmp(uuid, ("set-action", {"shutdown": "pause"}), ("system_powerdown", None))
            except BaseException:
                status["fake_reboot"] = False
                self.store.write_status(uuid, status)
                raise

    @hookimpl
    def virt_domain_reset(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            self._running(uuid)
            self._qmp(uuid, ("system_reset", None))

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            status, _ = self._running(uuid)
            status["stopping"] = "destroyed"
            self.store.write_status(uuid, status)
            graceful = bool(flags & _DESTROY_GRACEFUL)
            if not _process.kill(status.pid, status.get("started"), force_after=None if graceful else 10.0):
                del status["stopping"]
                self.store.write_status(uuid, status)
                raise _failed(f"failed to terminate process {status.pid} with SIGTERM: Device or resource busy")
            self.hub.finish(status, SHUTOFF_DESTROYED, STOPPED_DESTROYED)

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        with self.store.lock(uuid):
            status, name = self._running(uuid)
            if status.state == S.PAUSED:
                return
            self._qmp(uuid, ("stop", None))
            status.update(state=int(S.PAUSED), reason=PAUSED_USER)
            self.store.write_status(uuid, status)
        self.hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_PAUSED, int(status.get("id", -1)))

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        with self.store.lock(uuid):
            status, name = self._running(uuid)
            if status.state == S.RUNNING:
                raise _invalid("domain is already running")
            self._qmp(uuid, ("cont", None))
            status.update(state=int(S.RUNNING), reason=RUNNING_UNPAUSED)
            self.store.write_status(uuid, status)
        self.hub.emit(name, uuid, DomainEventType.RESUMED, RESUMED_UNPAUSED, int(status.get("id", -1)))

    # -- save and restore -----------------------------------------------------------------------

    def _save(self, uuid: str, path: str, xml: str | None, flags: int) -> None:
        """Save the running domain ``uuid`` to ``path`` and stop it (caller holds the lock)."""
        status, name = self._running(uuid)
        live = self.store.live(uuid)
        assert live is not None
        if xml is not None:
            live = self._parse(xml)
        was_running = status.state == S.RUNNING
        keep_running = bool(flags & _SAVE_RUNNING) or (was_running and not flags & _SAVE_PAUSED)
        blob = live.to_string(inactive=True).encode()
        offset = (_SAVE_HEADER.size + len(blob) + 4095) // 4096 * 4096
        tmp = f"{path}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"Failed to create file '{path}': {exc.strerror}",
                            domain=_D) from None
        try:
            os.write(fd, _SAVE_HEADER.pack(_SAVE_MAGIC, _SAVE_VERSION, len(blob),
                                           _SAVE_RUNNING_FLAG if keep_running else 0, offset) + blob)
            os.lseek(fd, offset, os.SEEK_SET)
            status["stopping"] = "saved"
            self.store.write_status(uuid, status)
            _loop.run(self._migrate_to(uuid, fd, was_running), None)
            os.fsync(fd)
        except BaseException:
            status.pop("stopping", None)
            self.store.write_status(uuid, status)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _process.kill(status.pid, status.get("started"))
        self.hub.finish(status, SHUTOFF_SAVED, STOPPED_SAVED)
        del name

    async def _migrate_to(self, uuid: str, fd: int, was_running: bool) -> None:
        import asyncio

        try:
            async with session(self.layout.monitor_socket(uuid)) as qmp:
                if was_running:
                    await qmp.execute("stop")
                await qmp.execute("migrate-set-parameters", {"max-bandwidth": _UNLIMITED_BANDWIDTH})
                qmp.send_fd(fd)
                await qmp.execute("getfd", {"fdname": "virt-save"})
                try:
                    await qmp.execute("migrate", {"uri": "fd:virt-save"})
                    while True:
                        info = await qmp.execute("query-migrate")
                        if info.get("status") == "completed":
                            return
                        if info.get("status") in ("failed", "cancelled"):
                            raise _failed(f"domain save job: {info.get('error-desc', info.get('status'))}")
                        await asyncio.sleep(0.005)
                except BaseException:
                    if was_running:
                        with contextlib.suppress(Exception):
                            await qmp.execute("cont")
                    raise
        except MonitorGone:
            raise _not_running() from None

    @hookimpl
    def virt_domain_save(self, uuid: str, path: str, xml: str | None, flags: int) -> None:
        if not os.path.isabs(path):
            path = os.path.abspath(path)
        with self.store.lock(uuid):
            self._save(uuid, path, xml, flags)

    @hookimpl
    def virt_domain_restore(self, path: str, xml: str | None, flags: int) -> DomainRef:
        image = _SaveImage.open(Path(path))
        try:
            doc = self._parse(xml) if xml is not None else image.doc
            if xml is not None and (doc.uuid != image.doc.uuid or doc.name != image.doc.name):
                raise VirtError(ErrorNumber.INVALID_ARG, "cannot restore domain: the XML does not match the saved "
                                "domain's name and UUID", domain=_D)
            with self.store.lock(doc.uuid):
                existing, status = self._check_unique(doc)
                if status is not None and status.active:
                    raise _invalid(f"domain '{doc.name}' is already active")
                paused = bool(flags & _SAVE_PAUSED) or (not image.running and not flags & _SAVE_RUNNING)
                self._launch(doc, persistent=existing is not None, paused=paused, image=image,
                             reason=RUNNING_RESTORED, detail=STARTED_RESTORED)
                status = self.store.status(doc.uuid)
        finally:
            image.close()
        return self._ref(doc.uuid, doc.name, status)

    @hookimpl
    def virt_domain_managed_save(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            doc, _, name = self._find(uuid)
            if doc is None:
                raise _invalid("cannot do managed save for transient domain")
            self._save(uuid, str(self.layout.managed_save(name)), None, flags)

    @hookimpl
    def virt_domain_has_managed_save_image(self, uuid: str, flags: int) -> bool:
        _, _, name = self._find(uuid)
        return self.layout.managed_save(name).exists()

    @hookimpl
    def virt_domain_managed_save_remove(self, uuid: str, flags: int) -> None:
        with self.store.lock(uuid):
            _, _, name = self._find(uuid)
            with contextlib.suppress(FileNotFoundError):
                self.layout.managed_save(name).unlink()

    # -- monitoring -------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_memory_stats(self, uuid: str, flags: int) -> dict[str, int]:
        status, _ = self._running(uuid)
        live = self.store.live(uuid)
        assert live is not None
        out = {"actual": live.current_memory_kib}
        if live.root.find("devices/memballoon[@model='virtio']") is not None:
            try:
                (balloon,) = self._qmp(uuid, ("query-balloon", None))
                out["actual"] = int(balloon.get("actual", 0)) // 1024
            except VirtError:
                pass
        rss = _rss_kib(status.pid)
        if rss is not None:
            out["rss"] = rss
        return out

    @hookimpl
    def virt_domain_block_stats(self, uuid: str, disk: str) -> Any:
        from virt._records import BlockStats

        status, _ = self._running(uuid)
        for name, _path, stats in self._block_stats(uuid, status):
            if disk in (name, _path):
                return BlockStats(rd_req=stats.get("rd_operations", 0), rd_bytes=stats.get("rd_bytes", 0),
                                  wr_req=stats.get("wr_operations", 0), wr_bytes=stats.get("wr_bytes", 0),
                                  errs=-1)
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid path: {disk}", domain=_D)

    def _block_stats(self, uuid: str, status: Status) -> list[tuple[str, str, dict[str, int]]]:
        live = self.store.live(uuid)
        disks: dict[str, str] = {}
        if live is not None:
            for d in live.disks():
                disks[str(d.target)] = d.source or "-"
        ids = {str(qdev): str(target) for target, qdev in status.get("disks", [])}
        (blocks,) = self._qmp(uuid, ("query-blockstats", None))
        out = []
        for entry in blocks:
            # qdev is a QOM path such as /machine/peripheral/virtio-disk0/virtio-backend
            names = [*str(entry.get("qdev", "")).split("/"), str(entry.get("node-name", "")),
                     str(entry.get("device", ""))]
            target = next((ids[n] for n in names if n in ids), None)
            if target is None:
                continue
            out.append((target, disks.get(target, "-"), dict(entry.get("stats", {}))))
        order = {t: i for i, t in enumerate(disks)}
        out.sort(key=lambda item: order.get(item[0], 1 << 30))
        return out

    @hookimpl
    def virt_domain_interface_stats(self, uuid: str, device: str) -> InterfaceStats:
        self._running(uuid)
        live = self.store.live(uuid)
        for nic in live.interfaces() if live is not None else ():
            if device in (nic.target_dev, nic.mac) and nic.target_dev:
                counters = host_device_counters(nic.target_dev)
                if counters is not None:
                    return counters
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid path, '{device}' is not a known interface",
                        domain=_D, message=f"invalid argument: invalid path, '{device}' is not a known interface")

    @hookimpl
    def virt_domain_get_stats(self, uuid: str, stats: int, flags: int) -> dict[str, Any]:
        doc, status, _ = self._find(uuid)
        groups = stats or (STATS_STATE | STATS_CPU | STATS_BALLOON | STATS_VCPU | STATS_INTERFACE | STATS_BLOCK)
        active = status is not None and status.active
        live = (self.store.live(uuid) if active else None) or doc
        assert live is not None
        out: dict[str, Any] = {}
        if groups & STATS_STATE:
            out["state.state"] = status.state if status is not None else int(S.SHUTOFF)
            out["state.reason"] = status.reason if status is not None else 0
        if groups & STATS_CPU and active and status is not None:
            user, system = _cpu_split_ns(status.pid)
            out["cpu.time"] = user + system
            out["cpu.user"] = user
            out["cpu.system"] = system
        if groups & STATS_BALLOON:
            out["balloon.current"] = live.current_memory_kib
            out["balloon.maximum"] = live.memory_kib
            if active and status is not None and live.root.find("devices/memballoon[@model='virtio']") is not None:
                with contextlib.suppress(VirtError):
                    (balloon,) = self._qmp(uuid, ("query-balloon", None))
                    out["balloon.current"] = int(balloon.get("actual", 0)) // 1024
            if active and status is not None:
                rss = _rss_kib(status.pid)
                if rss is not None:
                    out["balloon.rss"] = rss
        if groups & STATS_VCPU:
            out["vcpu.current"] = live.current_vcpus
            out["vcpu.maximum"] = live.max_vcpus
            if active and status is not None:
                for index, (state, ns) in enumerate(_vcpu_times(status.pid)):
                    if index >= live.current_vcpus:
                        break
                    out[f"vcpu.{index}.state"] = state
                    out[f"vcpu.{index}.time"] = ns
        if groups & STATS_INTERFACE:
            out.update(interface_stats_group(live, active))
        if groups & STATS_BLOCK:
            disks = live.disks()
            if active and status is not None:
                with contextlib.suppress(VirtError):
                    rows = self._block_stats(uuid, status)
                    out["block.count"] = len(rows)
                    for index, (name, path, st) in enumerate(rows):
                        prefix = f"block.{index}."
                        out[prefix + "name"] = name
                        if path != "-":
                            out[prefix + "path"] = path
                        out[prefix + "rd.reqs"] = int(st.get("rd_operations", 0))
                        out[prefix + "rd.bytes"] = int(st.get("rd_bytes", 0))
                        out[prefix + "rd.times"] = int(st.get("rd_total_time_ns", 0))
                        out[prefix + "wr.reqs"] = int(st.get("wr_operations", 0))
                        out[prefix + "wr.bytes"] = int(st.get("wr_bytes", 0))
                        out[prefix + "wr.times"] = int(st.get("wr_total_time_ns", 0))
                        out[prefix + "fl.reqs"] = int(st.get("flush_operations", 0))
                        out[prefix + "fl.times"] = int(st.get("flush_total_time_ns", 0))
            else:
                out["block.count"] = len(disks)
                for index, disk in enumerate(disks):
                    out[f"block.{index}.name"] = disk.target or ""
                    if disk.source:
                        out[f"block.{index}.path"] = disk.source
        return out

    # -- vCPUs, memory, names ---------------------------------------------------------------------

    def _defs(self, uuid: str, flags: int) -> tuple[DomainDocument | None, DomainDocument | None]:
        """(live, persistent) definitions that ``flags`` (VIR_DOMAIN_AFFECT_*) address.

        ``AFFECT_CURRENT`` (0) is the live one when running, else the persistent one; asking
        for the live one of an inactive domain, or the persistent one of a transient domain,
        is OPERATION_INVALID as in libvirt."""
        doc, status, _ = self._find(uuid)
        active = status is not None and status.active
        want_live, want_config = bool(flags & _AFFECT_LIVE), bool(flags & _AFFECT_CONFIG)
        if not want_live and not want_config:
            want_live, want_config = active, not active
        if want_live and not active:
            raise _invalid("domain is not running")
        if want_config and doc is None:
            raise _invalid("transient domains do not have any persistent config")
        live = self.store.live(uuid) if want_live else None
        return live, (doc.copy() if want_config and doc is not None else None)

    @hookimpl
    def virt_domain_get_vcpus_flags(self, uuid: str, flags: int) -> int:
        if flags & _VCPU_GUEST:
            raise VirtError(ErrorNumber.ARGUMENT_UNSUPPORTED, "vcpu count from the guest needs the guest agent, "
                            "which this driver does not use", domain=_D)
        live, config = self._defs(uuid, flags & (_AFFECT_LIVE | _AFFECT_CONFIG))
        doc = live or config
        assert doc is not None
        return int(doc.max_vcpus if flags & _VCPU_MAXIMUM else doc.current_vcpus)

    @hookimpl
    def virt_domain_get_vcpus(self, uuid: str) -> list[VcpuInfo]:
        status, _ = self._running(uuid)
        live = self.store.live(uuid)
        assert live is not None
        ncpu = os.cpu_count() or 1
        out = []
        for index, tid, ns, cpu in _vcpu_threads(status.pid):
            if index >= live.current_vcpus:
                break
            try:
                allowed = os.sched_getaffinity(tid)
            except OSError:
                allowed = set(range(ncpu))
            out.append(VcpuInfo(number=index, state=1, cpu_time=ns, cpu=cpu,
                                affinity=tuple(i in allowed for i in range(ncpu))))
        return out

    @hookimpl
    def virt_domain_set_vcpus(self, uuid: str, nvcpus: int, flags: int) -> None:
        if nvcpus < 1:
            raise VirtError(ErrorNumber.INVALID_ARG, "nvcpus in virDomainSetVcpusFlags must not be zero",
                            domain=_D, message="invalid argument: nvcpus in virDomainSetVcpusFlags must not be zero")
        with self.store.lock(uuid):
            live, config = self._defs(uuid, flags & (_AFFECT_LIVE | _AFFECT_CONFIG))
            if live is not None and nvcpus != live.current_vcpus:
                raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "changing the vCPU count of a running guest "
                                "(vCPU hotplug) is not supported by this driver; use --config", domain=_D)
            if config is not None:
                if flags & _VCPU_MAXIMUM:
                    config.max_vcpus = nvcpus
                    if config.current_vcpus > nvcpus:
                        config.current_vcpus = nvcpus
                else:
                    if nvcpus > config.max_vcpus:
                        raise VirtError(ErrorNumber.INVALID_ARG, f"requested vcpus is greater than max allowable "
                                        f"vcpus for the persistent domain: {nvcpus} > {config.max_vcpus}", domain=_D)
                    config.current_vcpus = nvcpus
                self.store.write_config(config)

    @hookimpl
    def virt_domain_set_memory(self, uuid: str, memory: int, flags: int) -> None:
        with self.store.lock(uuid):
            live, config = self._defs(uuid, flags & (_AFFECT_LIVE | _AFFECT_CONFIG))
            if flags & _MEM_MAXIMUM:
                if live is not None:
                    raise _invalid("cannot resize the maximum memory on an active domain")
                assert config is not None
                config.memory_kib = memory
                if config.current_memory_kib > memory:
                    config.current_memory_kib = memory
                self.store.write_config(config)
                return
            for doc in (live, config):
                if doc is not None and memory > doc.memory_kib:
                    raise VirtError(ErrorNumber.INVALID_ARG, "cannot set memory higher than max memory", domain=_D)
            if live is not None:
                if live.root.find("devices/memballoon[@model='virtio']") is None:
                    raise _invalid("Unable to change memory of active domain without the balloon device")
                self._qmp(uuid, ("balloon", {"value": memory * 1024}))
                live.current_memory_kib = memory
                self.store.write_live(uuid, live)
            if config is not None:
                config.current_memory_kib = memory
                self.store.write_config(config)

    @hookimpl
    def virt_domain_rename(self, uuid: str, new_name: str, flags: int) -> None:
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            if status is not None and status.active:
                raise _invalid("cannot rename active domain")
            if doc is None:
                raise _invalid("cannot rename a transient domain")
            if new_name == name:
                raise _invalid("Can't rename domain to itself")
            if "/" in new_name or new_name.startswith("."):
                raise VirtError(ErrorNumber.XML_ERROR, f"name {new_name} cannot contain '/' or start with '.'",
                                domain=ErrorDomain.DOMAIN)
            if self.store.config(new_name) is not None or any(s.get("name") == new_name and s.active
                                                              for s in self.store.statuses()):
                raise _invalid(f"domain with name '{new_name}' already exists")
            if self.layout.managed_save(name).exists():
                raise _invalid("cannot rename domain with a managed save image")
            if snapshot_count(self.layout, name):
                raise _invalid("cannot rename domain with snapshots")
            autostart = self.store.autostart(name)
            renamed = doc.copy()
            renamed.name = new_name
            self.store.write_config(renamed)
            self.store.remove_config(name)
            if autostart:
                self.store.set_autostart(new_name, True)
            if status is not None:
                status["name"] = new_name
                self.store.write_status(uuid, status)
        self.hub.emit(name, uuid, DomainEventType.UNDEFINED, 1)  # VIR_DOMAIN_EVENT_UNDEFINED_RENAMED
        self.hub.emit(new_name, uuid, DomainEventType.DEFINED, 2)  # VIR_DOMAIN_EVENT_DEFINED_RENAMED

    @hookimpl
    def virt_connect_get_cpu_model_names(self, arch: str, flags: int) -> list[str]:
        from virt_qemu._caps import emulator_caps

        emulator = find_emulator(arch or "x86_64")
        if emulator is None:
            raise VirtError(ErrorNumber.INVALID_ARG, f"cannot find CPU models for arch '{arch}'", domain=_D)
        models = emulator_caps(emulator).cpu_models.get("tcg", ())
        return sorted({m.name for m in models if not m.deprecated})

    @hookimpl
    def virt_domain_get_block_info(self, uuid: str, disk: str, flags: int) -> BlockInfo:
        import json
        import subprocess

        doc, status, _ = self._find(uuid)
        active = status is not None and status.active
        base = (self.store.live(uuid) if active else None) or doc
        assert base is not None
        view = self._host_view(base)
        for d in view.disks():
            if disk not in (d.target, d.source) or not d.source:
                continue
            argv = ["qemu-img", "info", "--output=json", "-U", d.source]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise _failed(f"cannot read '{d.source}': {proc.stderr.strip()}")
            info = json.loads(proc.stdout)
            capacity = int(info.get("virtual-size", 0))
            allocation = int(info.get("actual-size", 0))
            try:
                st = os.stat(d.source)
                physical = st.st_size if d.type != "block" else capacity
            except OSError:
                physical = allocation
            return BlockInfo(capacity=capacity, allocation=allocation, physical=physical)
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid path {disk} not assigned to domain", domain=_D,
                        message=f"invalid argument: invalid path {disk} not assigned to domain")

    @hookimpl
    def virt_domain_interface_addresses(self, uuid: str, source: int, flags: int) -> list[DomainInterface]:
        self._running(uuid)
        live = self.store.live(uuid)
        assert live is not None
        if source == 1:  # VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT
            raise _no_agent()
        out: list[DomainInterface] = []
        arp = _arp_table() if source == 2 else {}
        for nic in live.interfaces():
            mac = (nic.mac or "").lower()
            addrs: list[IPAddress] = []
            if source == 0 and nic.type == "network" and nic.source and self.hook is not None:
                try:
                    ref = self.hook.virt_network_lookup_by_name(name=nic.source)
                    leases = self.hook.virt_network_get_dhcp_leases(uuid=ref.uuid, mac=mac, flags=0)
                except VirtError:
                    leases = []
                addrs = [IPAddress(type=lease.type, addr=lease.ipaddr, prefix=lease.prefix) for lease in leases or ()]
            elif source == 2:
                addrs = [IPAddress(type=0, addr=ip, prefix=0) for ip in arp.get(mac, ())]
            if addrs:
                out.append(DomainInterface(name=nic.target_dev or "-", hwaddr=mac, addrs=tuple(addrs)))
        return out

    @hookimpl
    def virt_domain_get_time(self, uuid: str, flags: int) -> tuple[int, int]:
        self._running(uuid)
        raise _no_agent()

    @hookimpl
    def virt_domain_get_hostname(self, uuid: str, flags: int) -> str:
        self._running(uuid)
        if flags & 1:  # VIR_DOMAIN_GET_HOSTNAME_LEASE
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "no hostname found in the guest's DHCP leases",
                            domain=_D)
        raise _no_agent()

    @hookimpl
    def virt_domain_get_scheduler_type(self, uuid: str) -> tuple[str, int]:
        self._find(uuid)
        raise _no_cgroups("CPU")

    @hookimpl
    def virt_domain_get_scheduler_parameters(self, uuid: str, flags: int) -> dict[str, Any]:
        self._find(uuid)
        raise _no_cgroups("CPU")

    @hookimpl
    def virt_domain_get_memory_parameters(self, uuid: str, flags: int) -> dict[str, Any]:
        self._find(uuid)
        raise _no_cgroups("memory")

    @hookimpl
    def virt_domain_get_blkio_parameters(self, uuid: str, flags: int) -> dict[str, Any]:
        self._find(uuid)
        raise _no_cgroups("blkio")

    @hookimpl
    def virt_domain_get_numa_parameters(self, uuid: str, flags: int) -> dict[str, Any]:
        self._find(uuid)
        raise _no_cgroups("cpuset")

    @hookimpl
    def virt_node_get_security_model(self) -> SecurityModel:
        # QEMU runs as the caller, with no SELinux/AppArmor/DAC relabelling: libvirt's "none"
        return SecurityModel(model="none", doi="0")

    @hookimpl
    def virt_domain_get_security_label(self, uuid: str) -> SecurityLabel:
        self._find(uuid)
        return SecurityLabel(label="", enforcing=False)

    @hookimpl
    def virt_domain_get_job_info(self, uuid: str) -> dict[str, int]:
        self._find(uuid)
        return {"type": 0}  # VIR_DOMAIN_JOB_NONE: saves run under the caller's lock

    @hookimpl
    def virt_domain_open_console(self, uuid: str, dev_name: str | None, flags: int) -> str:
        status, _ = self._running(uuid)
        ptys: dict[str, str] = dict(status.get("ptys") or {})
        if not ptys:
            raise _failed("cannot find character device for the console: the domain has no pty console")
        if dev_name is None:
            for candidate in ("console0", "serial0"):
                if candidate in ptys:
                    return ptys[candidate]
            return next(iter(ptys.values()))
        if dev_name not in ptys:
            raise _failed(f"cannot find character device {dev_name}")
        return ptys[dev_name]


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_=,./:@+" for c in arg) else "'" + arg.replace("'", "'\\''") + "'"


def _fill_live(live: DomainDocument, ptys: dict[str, str], vnc_port: int | None) -> None:
    """Put what only exists while running into the live XML: pty paths, the VNC port.

    ``ptys`` is keyed by device alias: ``serialN`` by target port, ``consoleN`` by the
    console's index (a serial-type console shares its serial's chardev, under both names).
    """
    devices = live.root.find("devices")
    if devices is None:
        return
    console_index = 0
    for elem in devices:
        tag = elem.tag
        if tag not in ("serial", "console"):
            continue
        target = elem.find("target")
        if tag == "serial":
            alias = f"serial{target.get('port', '0') if target is not None else '0'}"
        else:
            alias = f"console{console_index}"
            console_index += 1
        path = ptys.get(alias)
        if elem.get("type") == "pty" and path:
            live.set_pty_path(elem, path)
    if vnc_port is not None:
        for graphics in devices.iter("graphics"):
            if graphics.get("type") == "vnc":
                graphics.set("port", str(vnc_port))


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as src:
            pages = int(src.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _cpu_split_ns(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            data = src.read()
    except OSError:
        return 0, 0
    fields = data[data.rindex(b")") + 2:].split()
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * tick, int(fields[12]) * tick


def _vcpu_threads(pid: int) -> list[tuple[int, int, int, int]]:
    """(index, thread id, cpu time ns, host cpu last run on) of each vCPU thread of QEMU
    ``pid``; QEMU names them ``CPU N/KVM`` or ``CPU N/TCG`` (``-name debug-threads=on``)."""
    out: dict[int, tuple[int, int, int, int]] = {}
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as src:
                comm = src.read().strip()
            if not comm.startswith("CPU "):
                continue
            index = int(comm[4:].split("/")[0])
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as src:
                data = src.read()
        except (OSError, ValueError):
            continue
        fields = data[data.rindex(b")") + 2:].split()
        out[index] = (index, int(tid), (int(fields[11]) + int(fields[12])) * tick, int(fields[36]))
    return [out[i] for i in sorted(out)]


def _vcpu_times(pid: int) -> list[tuple[int, int]]:
    """(state, cpu time ns) of each vCPU, for ``domstats``."""
    return [(1, ns) for _, _, ns, _ in _vcpu_threads(pid)]


class _SaveImage:
    """A save file: our header, the domain XML, then QEMU's migration stream."""

    def __init__(self, fd: int, doc: DomainDocument, running: bool) -> None:
        self.fd, self.doc, self.running = fd, doc, running

    @classmethod
    def open(cls, path: Path) -> _SaveImage:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"Failed to open domain image file '{path}': {exc.strerror}",
                            domain=_D) from None
        try:
            head = os.read(fd, _SAVE_HEADER.size)
            if len(head) != _SAVE_HEADER.size:
                raise _failed(f"failed to read qemu header from '{path}'")
            magic, version, xml_len, flags, offset = _SAVE_HEADER.unpack(head)
            if magic != _SAVE_MAGIC:
                raise _failed(f"image magic is incorrect: '{path}' is not a saved domain")
            if version != _SAVE_VERSION or xml_len > _SAVE_MAX_XML or offset < _SAVE_HEADER.size + xml_len:
                raise _failed(f"image version or header of '{path}' is not supported")
            blob = os.read(fd, xml_len)
            doc = parse_definition(blob)
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, doc, bool(flags & _SAVE_RUNNING_FLAG))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def domains_of(conn: QemuConnection) -> Iterable[str]:
    """UUIDs of every domain of a connection (tests and tools)."""
    return list(conn._entries())
