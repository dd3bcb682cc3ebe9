"""The ``xen`` driver: ``xen:///system``, Xen through its xl toolstack (libvirt's libxl driver).

Guests live in Xen; the driver keeps what Xen does not: persistent definitions, and a status
file per domain it started (state reason, domid, whether persistent).  Every change goes
through ``xl`` (``create``, ``shutdown``, ``reboot``, ``destroy``, ``pause``, ``unpause``,
``save``, ``restore``), and what runs is read back from ``xl list -v``, ``xl vcpu-list`` and
``xl info``.

Where ``xl`` runs is the *toolstack* (:mod:`virt_xen._toolstack`): this host when it is Xen's
control domain (dom0; ``/proc/xen/capabilities`` says ``control_d``, as libvirt checks), or,
when ``$VIRT_XEN_TOOLSTACK`` names one, a dom0 reached over a channel (the Xen test lab's
``tcp:HOST:PORT``).  Without either, opening fails with ``NO_CONNECT``: "Xen is not running".

State lives under ``$VIRT_XEN_STATE`` or ``/var/lib/virt/xen``: ``config/NAME.xml``,
``run/UUID.json`` (status), ``run/UUID.xml`` (the running definition), ``saves/`` (what
``save`` wrote where, so ``restore`` finds the definition again).  Paths given to ``save`` and
``restore`` are paths of the toolstack's host (``xl`` reads and writes them).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainInfo, DomainRef, DomainState, NodeInfo, VcpuInfo
from virt._state_files import DomainLock, atomic_write, read_json, write_json
from virt.driverkit import emit_domain_event
from virt.plugin import OpenRequest
from virt.xml.domain import DomainDocument

from virt_xen import _caps, xlconfig
from virt_xen._toolstack import STDIN_PATH, TOOLSTACK_ENV, LocalToolstack, Toolstack, XlResult, toolstack_from_env
from virt_xen._xl import DOM0_UUID, XlDomain, cpu_set, parse_info, parse_list, parse_list_long, parse_vcpu_list

__all__ = ["XenConnection", "xen_running"]

#: what libvirt's libxl driver reads to decide whether this host runs Xen's control domain
XEN_CAPABILITIES: Final = Path("/proc/xen/capabilities")
STATE_ENV: Final = "VIRT_XEN_STATE"
DEFAULT_STATE: Final = Path("/var/lib/virt/xen")
#: where managed save images go, on the toolstack's host (xl writes them)
SAVE_DIR_ENV: Final = "VIRT_XEN_SAVE_DIR"
DEFAULT_SAVE_DIR: Final = "/var/lib/xen/virt-save"

_D = ErrorDomain.LIBXL
_log = logging.getLogger("virt_xen")
S = DomainState

# state reasons (virDomain<State>Reason)
RUNNING_UNKNOWN, RUNNING_BOOTED, RUNNING_RESTORED, RUNNING_UNPAUSED = 0, 1, 3, 5
PAUSED_UNKNOWN, PAUSED_USER = 0, 1
SHUTDOWN_UNKNOWN = 0
SHUTOFF_UNKNOWN, SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_CRASHED, SHUTOFF_SAVED = 0, 1, 2, 3, 5
CRASHED_UNKNOWN = 0
# event details (virDomainEvent<Type>DetailType)
DEFINED_ADDED, DEFINED_UPDATED = 0, 1
UNDEFINED_REMOVED = 0
STARTED_BOOTED, STARTED_RESTORED = 0, 2
SUSPENDED_PAUSED, SUSPENDED_RESTORED = 0, 4
RESUMED_UNPAUSED = 0
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_CRASHED, STOPPED_SAVED = 0, 1, 2, 4
SHUTDOWN_FINISHED = 0
# flags
_START_PAUSED = 1
_SAVE_RUNNING, _SAVE_PAUSED = 2, 4
_XML_INACTIVE = 2
_UNDEFINE_MANAGED_SAVE = 1
_LIST_ACTIVE, _LIST_INACTIVE, _LIST_PERSISTENT, _LIST_TRANSIENT = 1, 2, 4, 8
_LIST_RUNNING, _LIST_PAUSED, _LIST_SHUTOFF, _LIST_OTHER = 16, 32, 64, 128
_LIST_MANAGEDSAVE, _LIST_NO_MANAGEDSAVE, _LIST_AUTOSTART, _LIST_NO_AUTOSTART = 256, 512, 1024, 2048
_LIST_HAS_SNAPSHOT, _LIST_NO_SNAPSHOT, _LIST_HAS_CHECKPOINT, _LIST_NO_CHECKPOINT = 4096, 8192, 16384, 32768
# virDomainStatsTypes
STATS_STATE, STATS_CPU, STATS_BALLOON, STATS_VCPU = 1, 2, 4, 8
# virVcpuState
VCPU_OFFLINE, VCPU_RUNNING, VCPU_BLOCKED = 0, 1, 2

#: Xen's control domain, listed as libvirt's libxl driver lists it
DOM0_NAME: Final = "Domain-0"
#: where in xenstore the driver notes that it has autostarted its domains since Xen booted
#: (xenstore starts empty with every boot of Xen, as libvirt's /run marker with every boot)
XENSTORE_AUTOSTARTED: Final = "/tool/virt/autostarted"

#: how often the watcher asks ``xl list`` whether the guests it follows still run
POLL_INTERVAL = 1.0
#: how long a domain missing from ``xl list`` is looked for again before it counts as gone
GONE_GRACE = 1.0
#: the same after a reboot, while xl builds the domain again
REBOOT_GRACE = 30.0
#: Xen's shutdown reason code for a reboot (``SHUTDOWN_reboot``)
SHUTDOWN_CODE_REBOOT = 1


def xen_running(capabilities: Path | None = None) -> bool:
    """Whether this host is a running Xen's control domain (dom0)."""
    if capabilities is None:
        capabilities = XEN_CAPABILITIES
    try:
        return "control_d" in capabilities.read_text()
    except OSError:
        return False


def _invalid(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, detail, domain=_D)


def _no_domain(detail: str) -> VirtError:
    return VirtError(ErrorNumber.NO_DOMAIN, detail, domain=ErrorDomain.DOM)


def _xl_failed(what: str, result: XlResult) -> VirtError:
    lines = [line.strip() for line in result.err.splitlines() if line.strip() and not line.startswith("xc: progress")]
    # the first errors say why (xc's, then libxl's); the last lines are the clean-up's
    errors = [line for line in lines if "error" in line.lower()]
    detail = "; ".join(errors[:3] or lines[-3:]) or f"xl exited with status {result.rc}"
    return VirtError(ErrorNumber.INTERNAL_ERROR, f"{what}: {detail}", domain=_D)


def _dom0_refused() -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, "Domain-0 does not support requested operation", domain=_D)


def _size_kib(text: str) -> int | None:
    """A size of Xen's command line (``512M``, ``4G``, ``1048576`` KiB) in KiB."""
    digits = "".join(itertools.takewhile(str.isdigit, text))
    if not digits:
        return None
    unit = text[len(digits):len(digits) + 1].lower()
    scale = {"": 1, "k": 1, "b": 1 / 1024, "m": 1024, "g": 1024 ** 2, "t": 1024 ** 3}.get(unit)
    return int(int(digits) * scale) if scale is not None else None


def dom0_max_kib(info: dict[str, str]) -> int:
    """Domain-0's maximum memory as libvirt reads it: ``dom0_mem=...,max:SIZE`` on Xen's command
    line, else all of the host's memory."""
    for token in info.get("xen_commandline", "").split():
        if token.startswith("dom0_mem="):
            for part in token[len("dom0_mem="):].split(","):
                if part.startswith("max:"):
                    kib = _size_kib(part[4:])
                    if kib is not None:
                        return kib
    return int(info.get("total_memory", "0") or 0) * 1024


def dom0_xml(dom: XlDomain, max_kib: int, max_vcpus: int, inactive: bool = False) -> str:
    """Domain-0's XML, shaped as libvirt's libxl driver shows it (a definition it makes up at
    start: name, UUID, memory, vCPUs, os type; no devices)."""
    vcpus = f"<vcpu placement='static'>{max_vcpus}</vcpu>" if dom.vcpus >= max_vcpus else (
        f"<vcpu placement='static' current='{dom.vcpus}'>{max_vcpus}</vcpu>")
    head = "<domain type='xen'>" if inactive else "<domain type='xen' id='0'>"
    return (f"{head}\n  <name>{DOM0_NAME}</name>\n  <uuid>{DOM0_UUID}</uuid>\n"
            f"  <memory unit='KiB'>{max_kib}</memory>\n"
            f"  <currentMemory unit='KiB'>{dom.mem_mib * 1024}</currentMemory>\n"
            f"  {vcpus}\n  <os>\n    <type>linux</type>\n  </os>\n  <clock offset='utc'/>\n"
            "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
            "  <on_crash>destroy</on_crash>\n  <devices>\n  </devices>\n</domain>\n")


def parse_definition(xml: str | bytes) -> DomainDocument:
    doc = DomainDocument.from_string(xml, inactive=True, default_arch="x86_64", mac_prefix="00:16:3e")
    if doc.type != "xen":
        raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"virt type '{doc.type}' is not supported by the Xen "
                        "driver (libxl), expecting 'xen'", domain=_D)
    if "/" in doc.name or doc.name.startswith("."):
        raise VirtError(ErrorNumber.XML_ERROR, f"name {doc.name} cannot contain '/' or start with '.'",
                        domain=ErrorDomain.DOMAIN)
    if doc.name == "Domain-0" or doc.uuid == DOM0_UUID:
        raise VirtError(ErrorNumber.OPERATION_INVALID, "Domain-0 cannot be defined", domain=_D)
    return doc


# -- state on disk ------------------------------------------------------------------------------


class Store:
    """Definitions, statuses and save records under one state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config"
        self.run = root / "run"
        self.saves = root / "saves"
        self.autostart_dir = root / "autostart"
        for d in (self.config, self.run, self.saves, self.autostart_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def lock(self, uuid: str) -> DomainLock:
        return DomainLock.of(self.run / f"{uuid}.lock")

    def configs(self) -> list[DomainDocument]:
        out = []
        for entry in sorted(os.scandir(self.config), key=lambda e: e.name):
            if entry.name.endswith(".xml") and not entry.name.startswith("."):
                with contextlib.suppress(OSError, VirtError):
                    out.append(parse_definition(Path(entry.path).read_bytes()))
        return out

    def write_config(self, doc: DomainDocument) -> None:
        atomic_write(self.config / f"{doc.name}.xml", doc.to_string())

    def remove_config(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.config / f"{name}.xml").unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.autostart_dir / f"{name}.xml").unlink()

    def autostart(self, name: str) -> bool:
        return os.path.lexists(self.autostart_dir / f"{name}.xml")

    def set_autostart(self, name: str, on: bool) -> None:
        """A symlink ``autostart/NAME.xml`` to the definition, as libvirt keeps it."""
        link = self.autostart_dir / f"{name}.xml"
        if on:
            if not os.path.lexists(link):
                os.symlink(os.path.relpath(self.config / f"{name}.xml", self.autostart_dir), link)
        else:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()

    def status(self, uuid: str) -> dict[str, Any] | None:
        data = read_json(self.run / f"{uuid}.json")
        return data if isinstance(data, dict) else None

    def statuses(self) -> list[dict[str, Any]]:
        out = []
        for entry in os.scandir(self.run):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                status = self.status(entry.name[:-5])
                if status is not None and "uuid" in status:
                    out.append(status)
        return out

    def write_status(self, status: dict[str, Any]) -> None:
        write_json(self.run / f"{status['uuid']}.json", status, durable=False)

    def remove_status(self, uuid: str) -> None:
        for suffix in (".json", ".xml"):
            with contextlib.suppress(FileNotFoundError):
                (self.run / f"{uuid}{suffix}").unlink()

    def live(self, uuid: str) -> DomainDocument | None:
        try:
            return DomainDocument.from_string((self.run / f"{uuid}.xml").read_bytes(), inactive=False,
                                              default_arch="x86_64", mac_prefix="00:16:3e")
        except (FileNotFoundError, VirtError):
            return None

    def write_live(self, uuid: str, doc: DomainDocument) -> None:
        atomic_write(self.run / f"{uuid}.xml", doc.to_string(), durable=False)

    def _save_record_path(self, path: str) -> Path:
        return self.saves / (hashlib.sha256(path.encode()).hexdigest()[:32] + ".json")

    def save_record(self, path: str) -> dict[str, Any] | None:
        data = read_json(self._save_record_path(path))
        return data if isinstance(data, dict) else None

    def write_save_record(self, path: str, record: dict[str, Any]) -> None:
        write_json(self._save_record_path(path), record)

    def remove_save_record(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._save_record_path(path).unlink()


# -- what the connections of one state root share in a process ----------------------------------


class Hub:
    """The store, the toolstack and the open connections of one (state root, toolstack)."""

    def __init__(self, store: Store, toolstack: Toolstack) -> None:
        self.store = store
        self.toolstack = toolstack
        self.connections: weakref.WeakSet[XenConnection] = weakref.WeakSet()
        self._guard = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    def emit(self, name: str, uuid: str, event: DomainEventType, detail: int, dom_id: int = -1) -> None:
        emit_domain_event(self.connections, name, uuid, event, detail, dom_id)

    def xl(self, *args: str, stdin: bytes | None = None) -> XlResult:
        t0 = time.monotonic()
        result = self.toolstack.xl(list(args), stdin)
        _log.debug("xl %s: rc=%d in %.2f s", " ".join(args), result.rc, time.monotonic() - t0)
        return result

    def all_domains(self) -> list[XlDomain]:
        """What Xen runs now, Domain-0 included (``xl list -v``)."""
        result = self.xl("list", "-v")
        if result.rc != 0:
            raise _xl_failed("cannot list Xen's domains", result)
        return parse_list(result.out)

    def domains(self) -> dict[str, XlDomain]:
        """What Xen runs now, by UUID (Domain-0 left out)."""
        return {d.uuid: d for d in self.all_domains() if d.uuid and d.uuid != DOM0_UUID and d.domid != 0}

    def dom0(self) -> XlDomain:
        dom = next((d for d in self.all_domains() if d.domid == 0), None)
        if dom is None:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, "unable to get Domain-0 information from libxenlight",
                            domain=_D)
        return dom

    # -- following guests: their ends are seen by polling xl list -----------------------------

    def ensure_watcher(self) -> None:
        with self._guard:
            if self._watcher is None or not self._watcher.is_alive():
                self._stop.clear()
                self._watcher = threading.Thread(target=self._watch, name="virt-xen-watch", daemon=True)
                self._watcher.start()

    def stop_watcher(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            active = [s for s in self.store.statuses() if s.get("active")]
            if not active or not self.connections:
                with self._guard:
                    self._watcher = None
                return
            try:
                running = self.domains()
            except VirtError:
                continue
            for status in active:
                uuid = str(status["uuid"])
                dom = running.get(uuid)
                if dom is None or dom.domid != status.get("domid") or dom.shutdown:
                    with self.store.lock(uuid):
                        self.reconcile(uuid, running)

    def reconcile(self, uuid: str, running: dict[str, XlDomain]) -> dict[str, Any] | None:
        """The status of ``uuid`` made to agree with Xen (call under the domain's lock).

        A domain the driver believes active that Xen no longer runs has been shut down (by its
        guest, or after ``shutdown``): SHUT OFF (shutdown), with a STOPPED event.  A new domid
        with the same UUID is a reboot: xl destroys the domain and builds it again, so a domain
        missing from one ``xl list`` is looked for again for a moment (half a minute after a
        reboot was asked for or seen) before it counts as gone."""
        status = self.store.status(uuid)
        if status is None or not status.get("active"):
            return status
        dom = running.get(uuid)
        if dom is None:
            rebooting = status.get("reboot_asked", 0) > time.time() - REBOOT_GRACE
            deadline = time.monotonic() + (REBOOT_GRACE if rebooting else GONE_GRACE)
            while dom is None and time.monotonic() < deadline:
                time.sleep(0.3)
                with contextlib.suppress(VirtError):
                    dom = self.domains().get(uuid)
        if dom is None:
            status.update(active=False, domid=-1, state=int(S.SHUTOFF), reason=SHUTOFF_SHUTDOWN)
            name = str(status["name"])
            if status.get("persistent"):
                self.store.write_status(status)
                with contextlib.suppress(FileNotFoundError):
                    (self.store.run / f"{uuid}.xml").unlink()
            else:
                self.store.remove_status(uuid)
            self.emit(name, uuid, DomainEventType.STOPPED, STOPPED_SHUTDOWN)
            return status if status.get("persistent") else None
        if dom.domid != status.get("domid"):
            status["domid"] = dom.domid
            status.pop("reboot_asked", None)
            self.store.write_status(status)
        elif dom.shutdown and dom.reason == SHUTDOWN_CODE_REBOOT and not status.get("reboot_asked"):
            status["reboot_asked"] = time.time()  # the guest reboots itself: xl will build it again
            self.store.write_status(status)
        return status


DOM0_REF: Final = DomainRef(DOM0_NAME, DOM0_UUID, 0)

_hubs: dict[tuple[str, str], Hub] = {}
_hubs_guard = threading.Lock()


def _hub_for(root: Path, toolstack: Toolstack) -> Hub:
    key = (str(root), toolstack.description)
    with _hubs_guard:
        hub = _hubs.get(key)
        if hub is None:
            hub = _hubs[key] = Hub(Store(root), toolstack)
        return hub


def _state_root() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE)


# -- the connection -------------------------------------------------------------------------------


class XenConnection:
    """The connection object of ``xen:///system``."""

    def __init__(self, request: OpenRequest, hub: Hub | None = None, info: dict[str, str] | None = None) -> None:
        self.request = request
        self.hook = request.hook
        self.hub = hub
        self.info = info or {}
        if hub is not None:
            hub.connections.add(self)
            if any(s.get("active") for s in hub.store.statuses()):
                hub.ensure_watcher()

    @classmethod
    def open(cls, request: OpenRequest, capabilities: Path | None = None,
             toolstack: Toolstack | None = None) -> XenConnection:
        if capabilities is None:
            capabilities = XEN_CAPABILITIES
        uri = request.uri
        if uri.path not in ("/system", ""):
            raise VirtError(ErrorNumber.INTERNAL_ERROR,
                            f"unexpected Xen URI path '{uri.path}', try xen:///system", domain=_D)
        if toolstack is None:
            spec = os.environ.get(TOOLSTACK_ENV, "")
            toolstack = toolstack_from_env()
            if spec and toolstack is None:
                raise VirtError(ErrorNumber.NO_CONNECT, f"xen:///system: ${TOOLSTACK_ENV}='{spec}' names no "
                                "toolstack (expecting local, local:/path/to/xl or tcp:HOST:PORT)", domain=_D)
        if toolstack is None:
            if not xen_running(capabilities):
                where = "/proc/xen is missing" if not os.path.isdir(capabilities.parent) else (
                    f"{capabilities} does not say control_d")
                raise VirtError(ErrorNumber.NO_CONNECT,
                                f"xen:///system: Xen is not running ({where}: this host is not a Xen dom0)",
                                domain=_D)
            toolstack = LocalToolstack()
        result = toolstack.xl(["info"])
        if result.rc != 0:
            raise VirtError(ErrorNumber.NO_CONNECT, f"xen:///system: Xen is not running (`xl info` through "
                            f"{toolstack.description} failed: {result.err.strip()[-300:]})", domain=_D)
        info = parse_info(result.out)
        try:
            hub = _hub_for(_state_root(), toolstack)
        except OSError as exc:
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"cannot create the Xen driver's state directory "
                            f"{_state_root()}: {exc.strerror}", domain=_D) from None
        conn = cls(request, hub, info)
        if not request.readonly:
            conn._autostart()
        return conn

    def _autostart(self) -> None:
        """Start the domains marked autostart, once per boot of Xen (as libvirt does once per
        boot of the host): the first connection since Xen booted does it, and notes so in
        xenstore, which Xen starts empty.  A domain that fails to start is logged, as libvirt
        logs it; a toolstack without xenstore's tools autostarts nothing."""
        hub = self._hub
        key = f"{XENSTORE_AUTOSTARTED}/{hashlib.sha256(str(hub.store.root).encode()).hexdigest()[:16]}"
        with DomainLock.of(hub.store.root / "autostart.lock"):
            seen = hub.toolstack.tool(["xenstore-read", key])
            if seen.rc == 0:
                return
            if seen.rc != 1:  # 1: no such key; anything else: no xenstore here
                _log.info("not autostarting domains: xenstore-read failed (%s)", seen.err.strip()[-200:])
                return
            wrote = hub.toolstack.tool(["xenstore-write", key, str(int(time.time()))])
            if wrote.rc != 0:
                _log.info("not autostarting domains: xenstore-write failed (%s)", wrote.err.strip()[-200:])
                return
        for doc in hub.store.configs():
            if not hub.store.autostart(doc.name):
                continue
            try:
                self.virt_domain_create(doc.uuid, 0)
            except VirtError as exc:
                if "already running" not in exc.message:
                    _log.error("Failed to autostart VM '%s': %s", doc.name, exc.message)

    @property
    def _hub(self) -> Hub:
        assert self.hub is not None
        return self.hub

    @property
    def store(self) -> Store:
        return self._hub.store

    # -- identity ------------------------------------------------------------------------------

    @hookimpl
    def virt_connect_close(self) -> None:
        if self.hub is not None:
            self.hub.connections.discard(self)

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "Xen"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        try:
            major, minor = int(self.info.get("xen_major", "0")), int(self.info.get("xen_minor", "0"))
            extra = self.info.get("xen_extra", "").lstrip(".")
            micro = int("".join(c for c in extra.split("-")[0] if c.isdigit()) or 0)
        except ValueError:
            return 0
        return major * 1_000_000 + minor * 1_000 + micro

    @hookimpl
    def virt_connect_get_hostname(self) -> str:
        host = self.info.get("host", "")
        return host if host and host != "(none)" else socket.gethostname()

    @hookimpl
    def virt_connect_get_uri(self) -> str:
        return "xen:///system"

    @hookimpl
    def virt_connect_get_max_vcpus(self, type: str | None) -> int:
        return _caps.MAX_VCPUS["xenpv"]

    @hookimpl
    def virt_connect_get_capabilities(self) -> str:
        return _caps.capabilities_xml(self.info)

    @hookimpl
    def virt_connect_get_domain_capabilities(self, emulator: str | None, arch: str | None, machine: str | None,
                                             virttype: str | None, flags: int) -> str:
        hvm = "hvm" in self.info.get("virt_caps", "hvm").split()
        return _caps.domain_capabilities_xml(emulator, arch, machine, virttype, hvm=hvm)

    @hookimpl
    def virt_node_get_info(self) -> NodeInfo:
        info = self.info
        cpus = int(info.get("nr_cpus", "1") or 1)
        cores = int(info.get("cores_per_socket", "1") or 1)
        threads = int(info.get("threads_per_core", "1") or 1)
        nodes = int(info.get("nr_nodes", "1") or 1)
        return NodeInfo(model=info.get("machine", "x86_64"), memory=int(info.get("total_memory", "0")) * 1024,
                        cpus=cpus, mhz=int(float(info.get("cpu_mhz", "0") or 0)), nodes=nodes,
                        sockets=max(1, cpus // max(1, cores * threads * nodes)), cores=cores, threads=threads)

    @hookimpl
    def virt_node_get_free_memory(self) -> int:
        result = self._hub.xl("info")
        if result.rc != 0:
            raise _xl_failed("xl info", result)
        return int(parse_info(result.out).get("free_memory", "0")) * 1024 * 1024

    # -- conversions -----------------------------------------------------------------------------

    def _bridge_of(self, name: str) -> str:
        """A virtual network's bridge, from the network provider of this connection."""
        hook = self.request.hook
        ref = hook.virt_network_lookup_by_name(name=name) if hook is not None else None
        if ref is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{name}'",
                            domain=ErrorDomain.NETWORK)
        if not hook.virt_network_is_active(uuid=ref.uuid):
            return ""
        return str(hook.virt_network_get_bridge_name(uuid=ref.uuid) or "")

    @hookimpl
    def virt_connect_domain_xml_to_native(self, native_format: str, xml: str, flags: int) -> str:
        return xlconfig.domain_xml_to_native(native_format, xml, flags, bridge_of=self._bridge_of)

    @hookimpl
    def virt_connect_domain_xml_from_native(self, native_format: str, config: str, flags: int) -> str:
        return xlconfig.domain_xml_from_native(native_format, config, flags)

    # -- finding domains -----------------------------------------------------------------------

    def _entries(self) -> dict[str, tuple[DomainDocument | None, dict[str, Any] | None]]:
        out: dict[str, tuple[DomainDocument | None, dict[str, Any] | None]] = {}
        for doc in self.store.configs():
            out[doc.uuid] = (doc, None)
        for status in self.store.statuses():
            uuid = str(status["uuid"])
            config = out.get(uuid, (None, None))[0]
            if config is None and not status.get("active"):
                continue  # a stale status of an undefined domain
            out[uuid] = (config, status)
        return out

    def _find(self, uuid: str) -> tuple[DomainDocument | None, dict[str, Any] | None, str]:
        entry = self._entries().get(uuid)
        if entry is None:
            raise _no_domain(f"no domain with matching uuid '{uuid}'")
        doc, status = entry
        name = doc.name if doc is not None else str(status["name"]) if status is not None else ""
        return doc, status, name

    def _synced(self, uuid: str) -> tuple[DomainDocument | None, dict[str, Any] | None, str, XlDomain | None]:
        """The domain, its status agreeing with Xen, and Xen's line for it (None when not running)."""
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            if status is None or not status.get("active"):
                return doc, status, name, None
            running = self._hub.domains()
            status = self._hub.reconcile(uuid, running)
            if status is None:  # a transient domain that has gone
                raise _no_domain(f"no domain with matching uuid '{uuid}' ({name})")
            return doc, status, name, running.get(uuid) if status.get("active") else None

    @staticmethod
    def _ref(uuid: str, name: str, status: dict[str, Any] | None) -> DomainRef:
        active = status is not None and bool(status.get("active"))
        return DomainRef(name, uuid, int(status.get("domid", -1)) if active and status is not None else -1)

    @hookimpl
    def virt_domain_lookup_by_uuid(self, uuid: str) -> DomainRef:
        if uuid == DOM0_UUID:
            return DOM0_REF
        _doc, status, name = self._find(uuid)
        return self._ref(uuid, name, status)

    @hookimpl
    def virt_domain_lookup_by_name(self, name: str) -> DomainRef:
        if name == DOM0_NAME:
            return DOM0_REF
        for uuid, (doc, status) in self._entries().items():
            other = doc.name if doc is not None else str(status["name"]) if status is not None else ""
            if other == name:
                return self._ref(uuid, name, status)
        raise _no_domain(f"no domain with matching name '{name}'")

    @hookimpl
    def virt_domain_lookup_by_id(self, id: int) -> DomainRef:
        if id == 0:
            return DOM0_REF
        for uuid, (doc, status) in self._entries().items():
            if status is not None and status.get("active") and int(status.get("domid", -1)) == id:
                name = doc.name if doc is not None else str(status["name"])
                return self._ref(uuid, name, status)
        raise _no_domain(f"no domain with matching id {id}")

    def _state_of(self, status: dict[str, Any] | None, dom: XlDomain | None) -> tuple[int, int]:
        if status is None or not status.get("active") or dom is None:
            if status is None:
                return int(S.SHUTOFF), SHUTOFF_UNKNOWN
            return int(status.get("state", S.SHUTOFF)), int(status.get("reason", SHUTOFF_UNKNOWN))
        if dom.crashed:
            return int(S.CRASHED), CRASHED_UNKNOWN
        if dom.shutdown or dom.dying:
            return int(S.SHUTDOWN), SHUTDOWN_UNKNOWN
        if dom.paused:
            return int(S.PAUSED), int(status.get("pause_reason", PAUSED_UNKNOWN))
        return int(S.RUNNING), int(status.get("run_reason", RUNNING_UNKNOWN))

    def _selected(self, flags: int, *, active: bool, persistent: bool, state: int, name: str) -> bool:
        """Whether a domain passes the filters of ``flags`` (virConnectListAllDomains)."""

        def pair(yes: int, no: int, value: bool) -> bool:
            return flags & (yes | no) in (0, yes | no) or bool(flags & yes) == value

        if not pair(_LIST_ACTIVE, _LIST_INACTIVE, active) or not pair(_LIST_PERSISTENT, _LIST_TRANSIENT, persistent):
            return False
        if flags & (_LIST_RUNNING | _LIST_PAUSED | _LIST_SHUTOFF | _LIST_OTHER):
            kind = {S.RUNNING: _LIST_RUNNING, S.PAUSED: _LIST_PAUSED, S.SHUTOFF: _LIST_SHUTOFF}.get(S(state),
                                                                                                  _LIST_OTHER)
            if not flags & kind:
                return False
        is_dom0 = name == DOM0_NAME
        if flags & (_LIST_MANAGEDSAVE | _LIST_NO_MANAGEDSAVE) and not pair(
                _LIST_MANAGEDSAVE, _LIST_NO_MANAGEDSAVE,
                not is_dom0 and self.store.save_record(self._managed_path(name)) is not None):
            return False
        if not pair(_LIST_AUTOSTART, _LIST_NO_AUTOSTART, not is_dom0 and self.store.autostart(name)):
            return False
        return pair(_LIST_HAS_SNAPSHOT, _LIST_NO_SNAPSHOT, False) and pair(
            _LIST_HAS_CHECKPOINT, _LIST_NO_CHECKPOINT, False)

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[DomainRef]:
        entries = self._entries()
        running: dict[str, XlDomain] | None = None
        out = []
        if self._selected(flags, active=True, persistent=True, state=int(S.RUNNING), name=DOM0_NAME):
            out.append(DOM0_REF)
        for uuid, (doc, status) in entries.items():
            name = doc.name if doc is not None else str(status["name"]) if status is not None else ""
            active = status is not None and bool(status.get("active"))
            if active and running is None:
                running = self._hub.domains()
            if active and running is not None and uuid not in running:
                with self.store.lock(uuid):
                    status = self._hub.reconcile(uuid, running)
                if status is None:
                    continue
                active = bool(status.get("active"))
            if flags:
                state = self._state_of(status, running.get(uuid) if running else None)[0]
                if not self._selected(flags, active=active, persistent=doc is not None, state=state, name=name):
                    continue
            out.append(self._ref(uuid, name, status))
        out.sort(key=lambda r: (r.id < 0, r.id, r.name))
        return out

    # -- definitions ---------------------------------------------------------------------------

    def _check_unique(self, doc: DomainDocument) -> tuple[DomainDocument | None, dict[str, Any] | None]:
        """libvirt's rules: a name belongs to one UUID, a UUID to one name."""
        for uuid, (other, status) in self._entries().items():
            other_name = other.name if other is not None else str(status["name"]) if status is not None else ""
            if uuid == doc.uuid:
                if other_name != doc.name:
                    raise VirtError(ErrorNumber.OPERATION_FAILED,
                                    f"domain '{other_name}' is already defined with uuid {doc.uuid}", domain=_D)
                return other, status
            if other_name == doc.name:
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"domain '{doc.name}' already exists with uuid {uuid}",
                                domain=_D)
        return None, None

    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> DomainRef:
        doc = parse_definition(xml)
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            self.store.write_config(doc)
            if status is not None and status.get("active") and not status.get("persistent"):
                status["persistent"] = True
                self.store.write_status(status)
        detail = DEFINED_UPDATED if existing is not None or status is not None else DEFINED_ADDED
        self._hub.emit(doc.name, doc.uuid, DomainEventType.DEFINED, detail)
        return self._ref(doc.uuid, doc.name, status)

    @hookimpl
    def virt_domain_undefine(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            if doc is None:
                raise _invalid("cannot undefine transient domain")
            if self.store.save_record(self._managed_path(name)) is not None:
                if not flags & _UNDEFINE_MANAGED_SAVE:
                    raise _invalid("Refusing to undefine while domain managed save image exists")
                self._drop_managed(name)
            self.store.remove_config(name)
            if status is not None and status.get("active"):
                status["persistent"] = False
                self.store.write_status(status)
            else:
                self.store.remove_status(uuid)
        self._hub.emit(name, uuid, DomainEventType.UNDEFINED, UNDEFINED_REMOVED)

    @hookimpl
    def virt_domain_get_xml(self, uuid: str, flags: int) -> str:
        if uuid == DOM0_UUID:
            return self._dom0_xml(bool(flags & _XML_INACTIVE))
        doc, status, _name, _dom = self._synced(uuid)
        if status is not None and status.get("active") and not flags & _XML_INACTIVE:
            live = self.store.live(uuid)
            if live is not None:
                live.set_id(int(status.get("domid", -1)))
                self._fill_ttys(uuid, live, int(status.get("domid", -1)))
                return live.to_string()
        if doc is None:
            raise _no_domain(f"no domain with matching uuid '{uuid}'")
        return doc.to_string(inactive=True)

    def _fill_ttys(self, uuid: str, live: DomainDocument, domid: int) -> None:
        """The running XML names the ptys of pty consoles and serials (``tty=``, ``<source
        path=>``), as libvirt's libxl driver fills them in once Xen has made them.  They are read
        from xenstore without waiting and kept in the status until the domid changes."""
        devices = live.root.find("devices")
        if devices is None or domid < 0:
            return
        wanted = []
        for elem in devices:
            if elem.tag in ("console", "serial") and elem.get("type") == "pty":
                target = elem.find("target")
                if elem.tag == "serial" or (target is not None and target.get("type") == "serial"):
                    port = int((target.get("port") if target is not None else None) or 0)
                    wanted.append((elem, "serial", port))
                else:
                    wanted.append((elem, "console", len([w for w in wanted if w[1] == "console"])))
        if not wanted:
            return
        with self.store.lock(uuid):
            status = self.store.status(uuid) or {}
            ttys: dict[str, str] = dict(status.get("ttys") or {}) if status.get("ttys_domid") == domid else {}
            changed = False
            for _elem, kind, port in wanted:
                key = f"{kind}{port}"
                if key not in ttys:
                    path = self._xenstore_tty(domid, kind, port)
                    if path:
                        ttys[key] = path
                        changed = True
            if changed and status.get("active") and status.get("domid") == domid:
                status.update(ttys=ttys, ttys_domid=domid)
                self.store.write_status(status)
        for elem, kind, port in wanted:
            tty = ttys.get(f"{kind}{port}")
            if tty:
                live.set_pty_path(elem, tty)

    # -- starting ------------------------------------------------------------------------------

    def _native(self, doc: DomainDocument) -> str:
        return xlconfig.domain_xml_to_native("xen-xl", doc.to_string(), 0, bridge_of=self._bridge_of)

    def _find_started(self, name: str, uuid: str) -> XlDomain:
        running = self._hub.domains()
        dom = running.get(uuid)
        if dom is None:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"xl started domain '{name}' but Xen does not list it",
                            domain=_D)
        return dom

    def _start(self, doc: DomainDocument, *, persistent: bool, paused: bool) -> dict[str, Any]:
        """``xl create`` of ``doc`` (called under its lock); the new status."""
        cfg = self._native(doc)
        args = ["create"] + (["-p"] if paused else []) + [STDIN_PATH]
        result = self._hub.xl(*args, stdin=cfg.encode())
        if result.rc != 0:
            raise _xl_failed(f"libxenlight failed to create new domain '{doc.name}'", result)
        dom = self._find_started(doc.name, doc.uuid)
        status = {"uuid": doc.uuid, "name": doc.name, "domid": dom.domid, "active": True, "persistent": persistent,
                  "state": int(S.PAUSED if paused else S.RUNNING), "run_reason": RUNNING_BOOTED,
                  "pause_reason": PAUSED_USER if paused else PAUSED_UNKNOWN, "started": time.time()}
        live = doc.copy()
        self.store.write_live(doc.uuid, live)
        self.store.write_status(status)
        self._hub.ensure_watcher()
        return status

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _invalid("Domain is already running")
        with self.store.lock(uuid):
            doc, status, name, _dom = self._synced(uuid)
            if status is not None and status.get("active"):
                raise _invalid("Domain is already running")
            if doc is None:
                raise _no_domain(f"no domain with matching uuid '{uuid}'")
            managed = self._managed_path(name)
            record = self.store.save_record(managed)
            if record is not None:
                paused = bool(flags & _START_PAUSED) or not record.get("running", True)
                self._restore_locked(managed, parse_definition(str(record.get("xml") or doc.to_string())), paused,
                                     persistent=True)
                self._drop_managed(name)
                return
            status = self._start(doc, persistent=True, paused=bool(flags & _START_PAUSED))
        self._hub.emit(name, uuid, DomainEventType.STARTED, STARTED_BOOTED, int(status["domid"]))
        if flags & _START_PAUSED:
            self._hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_PAUSED, int(status["domid"]))

    @hookimpl
    def virt_domain_create_xml(self, xml: str, flags: int) -> DomainRef:
        doc = parse_definition(xml)
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            if status is not None and status.get("active"):
                raise _invalid(f"domain '{doc.name}' is already active")
            status = self._start(doc, persistent=existing is not None, paused=bool(flags & _START_PAUSED))
        self._hub.emit(doc.name, doc.uuid, DomainEventType.STARTED, STARTED_BOOTED, int(status["domid"]))
        if flags & _START_PAUSED:
            self._hub.emit(doc.name, doc.uuid, DomainEventType.SUSPENDED, SUSPENDED_PAUSED, int(status["domid"]))
        return self._ref(doc.uuid, doc.name, status)

    # -- running domains -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _active(self, uuid: str) -> Iterator[tuple[DomainDocument | None, dict[str, Any], str, XlDomain]]:
        with self.store.lock(uuid):
            doc, status, name, dom = self._synced(uuid)
            if status is None or not status.get("active") or dom is None:
                raise _invalid("Domain is not running")
            yield doc, status, name, dom

    def _stopped(self, uuid: str, status: dict[str, Any], reason: int) -> None:
        status.update(active=False, domid=-1, state=int(S.SHUTOFF), reason=reason)
        if status.get("persistent"):
            self.store.write_status(status)
            with contextlib.suppress(FileNotFoundError):
                (self.store.run / f"{uuid}.xml").unlink()
        else:
            self.store.remove_status(uuid)

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self._active(uuid) as (_doc, status, name, dom):
            result = self._hub.xl("destroy", str(dom.domid))
            if result.rc != 0:
                raise _xl_failed(f"Failed to destroy domain '{dom.domid}'", result)
            self._stopped(uuid, status, SHUTOFF_DESTROYED)
        self._hub.emit(name, uuid, DomainEventType.STOPPED, STOPPED_DESTROYED)

    def _os_type(self, uuid: str, doc: DomainDocument | None) -> str:
        live = self.store.live(uuid)
        return (live or doc).os_type if (live or doc) is not None else "linux"  # type: ignore[union-attr]

    @hookimpl
    def virt_domain_shutdown(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self._active(uuid) as (doc, _status, _name, dom):
            # HVM guests without PV drivers get the ACPI power button (-F), as libvirt asks libxl
            fallback = ["-F"] if self._os_type(uuid, doc) == "hvm" else []
            result = self._hub.xl("shutdown", *fallback, str(dom.domid))
            if result.rc != 0:
                raise _xl_failed(f"Failed to shutdown domain '{dom.domid}'", result)
        self._hub.ensure_watcher()

    @hookimpl
    def virt_domain_reboot(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self._active(uuid) as (doc, status, _name, dom):
            fallback = ["-F"] if self._os_type(uuid, doc) == "hvm" else []
            result = self._hub.xl("reboot", *fallback, str(dom.domid))
            if result.rc != 0:
                raise _xl_failed(f"Failed to reboot domain '{dom.domid}'", result)
            status["reboot_asked"] = time.time()
            self.store.write_status(status)

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self._active(uuid) as (_doc, status, name, dom):
            if dom.paused:
                raise _invalid(f"domain '{name}' is already paused")
            result = self._hub.xl("pause", str(dom.domid))
            if result.rc != 0:
                raise _xl_failed(f"Failed to suspend domain '{dom.domid}'", result)
            status.update(state=int(S.PAUSED), pause_reason=PAUSED_USER)
            self.store.write_status(status)
        self._hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_PAUSED, dom.domid)

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self._active(uuid) as (_doc, status, name, dom):
            if not dom.paused:
                raise _invalid(f"domain '{name}' is not paused")
            result = self._hub.xl("unpause", str(dom.domid))
            if result.rc != 0:
                raise _xl_failed(f"Failed to resume domain '{dom.domid}'", result)
            status.update(state=int(S.RUNNING), run_reason=RUNNING_UNPAUSED)
            self.store.write_status(status)
        self._hub.emit(name, uuid, DomainEventType.RESUMED, RESUMED_UNPAUSED, dom.domid)

    # -- save and restore --------------------------------------------------------------------------

    def _managed_path(self, name: str) -> str:
        return f"{os.environ.get(SAVE_DIR_ENV) or DEFAULT_SAVE_DIR}/{name}.save"

    def _drop_managed(self, name: str) -> None:
        path = self._managed_path(name)
        try:
            self._hub.toolstack.remove(path)
        except OSError as exc:
            raise VirtError(ErrorNumber.OPERATION_FAILED, f"cannot remove managed save image {path}: {exc}",
                            domain=_D) from None
        self.store.remove_save_record(path)

    def _save(self, uuid: str, path: str, xml: str | None, flags: int, *, managed: bool = False) -> None:
        if flags & _SAVE_RUNNING and flags & _SAVE_PAUSED:
            raise VirtError(ErrorNumber.INVALID_ARG, "flags 'running' and 'paused' are mutually exclusive",
                            domain=_D)
        with self._active(uuid) as (doc, status, name, dom):
            if managed and doc is None:
                raise _invalid("cannot do managed save for transient domain")
            live = self.store.live(uuid) or doc
            if xml is not None:
                live = parse_definition(xml)
                if live.uuid != uuid or live.name != name:
                    raise _invalid("the saved XML must keep the domain's name and UUID")
            if managed:
                try:
                    self._hub.toolstack.makedirs(path.rpartition("/")[0])
                except OSError as exc:
                    raise VirtError(ErrorNumber.OPERATION_FAILED, f"cannot create the managed save directory: "
                                    f"{exc}", domain=_D) from None
            result = self._hub.xl("save", str(dom.domid), path)
            if result.rc != 0:
                if managed:  # a partial image is no image
                    with contextlib.suppress(OSError):
                        self._hub.toolstack.remove(path)
                raise _xl_failed(f"Failed to save domain '{dom.domid}' with libxenlight", result)
            running = not dom.paused
            if flags & _SAVE_RUNNING:
                running = True
            elif flags & _SAVE_PAUSED:
                running = False
            self.store.write_save_record(path, {"path": path, "uuid": uuid, "name": name, "running": running,
                                                "managed": managed,
                                                "xml": live.to_string() if live is not None else ""})
            self._stopped(uuid, status, SHUTOFF_SAVED)
        self._hub.emit(name, uuid, DomainEventType.STOPPED, STOPPED_SAVED)

    @hookimpl
    def virt_domain_save(self, uuid: str, path: str, xml: str | None, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        self._save(uuid, path, xml, flags)

    @hookimpl
    def virt_domain_managed_save(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        _doc, _status, name = self._find(uuid)
        self._save(uuid, self._managed_path(name), None, flags, managed=True)

    @hookimpl
    def virt_domain_has_managed_save_image(self, uuid: str, flags: int) -> bool:
        if uuid == DOM0_UUID:
            return False
        _doc, _status, name = self._find(uuid)
        return self.store.save_record(self._managed_path(name)) is not None

    @hookimpl
    def virt_domain_managed_save_remove(self, uuid: str, flags: int) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self.store.lock(uuid):
            _doc, _status, name = self._find(uuid)
            if self.store.save_record(self._managed_path(name)) is None:
                raise _invalid(f"domain '{name}' has no managed save image")
            self._drop_managed(name)

    def _restore_locked(self, path: str, doc: DomainDocument, paused: bool, *, persistent: bool) -> DomainRef:
        """``xl restore`` of ``path`` as ``doc`` (under its lock); events sent."""
        result = self._hub.xl("restore", *(["-p"] if paused else []), path)
        if result.rc != 0:
            raise _xl_failed(f"Failed to restore domain '{doc.name}'", result)
        dom = self._find_started(doc.name, doc.uuid)
        status = {"uuid": doc.uuid, "name": doc.name, "domid": dom.domid, "active": True,
                  "persistent": persistent, "state": int(S.PAUSED if paused else S.RUNNING),
                  "run_reason": RUNNING_RESTORED, "pause_reason": PAUSED_USER if paused else PAUSED_UNKNOWN,
                  "started": time.time()}
        self.store.write_live(doc.uuid, doc)
        self.store.write_status(status)
        self._hub.ensure_watcher()
        self._hub.emit(doc.name, doc.uuid, DomainEventType.STARTED, STARTED_RESTORED, dom.domid)
        if paused:
            self._hub.emit(doc.name, doc.uuid, DomainEventType.SUSPENDED, SUSPENDED_RESTORED, dom.domid)
        return self._ref(doc.uuid, doc.name, status)

    @hookimpl
    def virt_domain_restore(self, path: str, xml: str | None, flags: int) -> DomainRef:
        if flags & _SAVE_RUNNING and flags & _SAVE_PAUSED:
            raise VirtError(ErrorNumber.INVALID_ARG, "flags 'running' and 'paused' are mutually exclusive",
                            domain=_D)
        record = self.store.save_record(path)
        if xml is not None:
            doc = parse_definition(xml)
        elif record is not None and record.get("xml"):
            doc = parse_definition(str(record["xml"]))
        else:
            raise VirtError(ErrorNumber.OPERATION_INVALID, f"'{path}' was not saved by this driver: restore it "
                            "with the domain's XML (--xml)", domain=_D)
        paused = bool(flags & _SAVE_PAUSED) or (not flags & _SAVE_RUNNING and record is not None
                                                 and not record.get("running", True))
        with self.store.lock(doc.uuid):
            existing, status = self._check_unique(doc)
            if status is not None and status.get("active"):
                raise _invalid(f"domain '{doc.name}' is already active")
            return self._restore_locked(path, doc, paused, persistent=existing is not None)

    # -- state -------------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_state(self, uuid: str, flags: int) -> tuple[int, int]:
        if uuid == DOM0_UUID:
            return int(S.RUNNING), RUNNING_BOOTED
        _doc, status, _name, dom = self._synced(uuid)
        return self._state_of(status, dom)

    @hookimpl
    def virt_domain_get_info(self, uuid: str) -> DomainInfo:
        if uuid == DOM0_UUID:
            dom0 = self._hub.dom0()
            return DomainInfo(state=S.RUNNING, max_memory=dom0_max_kib(self.info), memory=dom0.mem_mib * 1024,
                              nr_virt_cpu=dom0.vcpus, cpu_time=int(dom0.cpu_seconds * 1e9))
        doc, status, _name, dom = self._synced(uuid)
        definition = (self.store.live(uuid) if dom is not None else None) or doc
        max_kib = definition.memory_kib if definition is not None else 0
        vcpus = definition.current_vcpus if definition is not None else 1
        state = S(self._state_of(status, dom)[0])
        if dom is None:
            cur_kib = definition.current_memory_kib if definition is not None else 0
            return DomainInfo(state=state, max_memory=max_kib, memory=cur_kib, nr_virt_cpu=vcpus, cpu_time=0)
        return DomainInfo(state=state, max_memory=max(max_kib, dom.mem_mib * 1024), memory=dom.mem_mib * 1024,
                          nr_virt_cpu=dom.vcpus or vcpus, cpu_time=int(dom.cpu_seconds * 1e9))

    @hookimpl
    def virt_domain_get_id(self, uuid: str) -> int:
        if uuid == DOM0_UUID:
            return 0
        _doc, _status, _name, dom = self._synced(uuid)
        return dom.domid if dom is not None else -1

    @hookimpl
    def virt_domain_is_active(self, uuid: str) -> bool:
        if uuid == DOM0_UUID:
            return True
        return self._synced(uuid)[3] is not None

    @hookimpl
    def virt_domain_is_persistent(self, uuid: str) -> bool:
        if uuid == DOM0_UUID:
            return True
        doc, _status, _name = self._find(uuid)
        return doc is not None

    @hookimpl
    def virt_domain_get_os_type(self, uuid: str) -> str:
        if uuid == DOM0_UUID:
            return "linux"
        doc, _status, _name = self._find(uuid)
        live = self.store.live(uuid)
        definition = live or doc
        return definition.os_type if definition is not None else "linux"

    def _vcpus_of(self, domid: int) -> list[VcpuInfo]:
        result = self._hub.xl("vcpu-list", str(domid))
        if result.rc != 0:
            raise _xl_failed(f"Failed to list vcpus for domain '{domid}' with libxenlight", result)
        ncpus = int(self.info.get("nr_cpus", "1") or 1)
        out = []
        for v in parse_vcpu_list(result.out):
            if v.domid != domid:
                continue
            state = VCPU_RUNNING if "r" in v.state else VCPU_BLOCKED if "b" in v.state else VCPU_OFFLINE
            out.append(VcpuInfo(number=v.vcpu, state=state, cpu_time=int(v.cpu_seconds * 1e9), cpu=v.cpu,
                                affinity=cpu_set(v.affinity, ncpus)))
        return out

    @hookimpl
    def virt_domain_get_vcpus(self, uuid: str) -> list[VcpuInfo]:
        if uuid == DOM0_UUID:
            return self._vcpus_of(0)
        _doc, _status, _name, dom = self._synced(uuid)
        if dom is None:
            raise _invalid("cannot list vcpus for an inactive domain")
        return self._vcpus_of(dom.domid)

    # -- Domain-0 --------------------------------------------------------------------------------

    def _dom0_xml(self, inactive: bool) -> str:
        dom = self._hub.dom0()
        max_vcpus = max(dom.vcpus, len(self._vcpus_of(0)))
        return dom0_xml(dom, dom0_max_kib(self.info), max_vcpus, inactive=inactive)

    # -- autostart -------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_autostart(self, uuid: str) -> bool:
        if uuid == DOM0_UUID:
            return False
        doc, _status, name = self._find(uuid)
        return doc is not None and self.store.autostart(name)

    @hookimpl
    def virt_domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        if uuid == DOM0_UUID:
            raise _dom0_refused()
        with self.store.lock(uuid):
            doc, _status, name = self._find(uuid)
            if doc is None:
                raise _invalid("cannot set autostart for transient domain")
            try:
                self.store.set_autostart(name, autostart)
            except OSError as exc:
                verb = "create" if autostart else "delete"
                raise VirtError(ErrorNumber.SYSTEM_ERROR, f"Failed to {verb} symlink '{self.store.autostart_dir}/"
                                f"{name}.xml': {exc.strerror}", domain=_D) from None

    # -- statistics ------------------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_stats(self, uuid: str, stats: int, flags: int) -> dict[str, Any]:
        """libvirt's libxl groups: state, cpu.time, balloon, vcpu (from ``xl list -v``,
        ``xl list -l`` and ``xl vcpu-list``); inactive domains report state, balloon and vCPU
        counts from their definition."""
        groups = stats or (STATS_STATE | STATS_CPU | STATS_BALLOON | STATS_VCPU)
        definition: DomainDocument | None
        dom: XlDomain | None
        if uuid == DOM0_UUID:
            dom = self._hub.dom0()
            state, reason = int(S.RUNNING), RUNNING_BOOTED
            definition = None
        else:
            doc, status, _name, dom = self._synced(uuid)
            state, reason = self._state_of(status, dom)
            definition = (self.store.live(uuid) if dom is not None else None) or doc
        out: dict[str, Any] = {}
        if groups & STATS_STATE:
            out["state.state"] = state
            out["state.reason"] = reason
        if groups & STATS_CPU and dom is not None:
            out["cpu.time"] = int(dom.cpu_seconds * 1e9)
        config: dict[str, Any] = {}
        if dom is not None and groups & (STATS_BALLOON | STATS_VCPU):
            result = self._hub.xl("list", "-l", str(dom.domid))
            with contextlib.suppress(ValueError):
                for entry in parse_list_long(result.out) if result.rc == 0 else []:
                    if entry.get("domid") == dom.domid and isinstance(entry.get("config"), dict):
                        b_info = entry["config"].get("b_info")
                        config = b_info if isinstance(b_info, dict) else {}
        if groups & STATS_BALLOON:
            if dom is not None:
                out["balloon.current"] = dom.mem_mib * 1024
                out["balloon.maximum"] = int(config.get("max_memkb") or 0) or (
                    definition.memory_kib if definition is not None else dom0_max_kib(self.info))
            elif definition is not None:
                out["balloon.current"] = definition.current_memory_kib
                out["balloon.maximum"] = definition.memory_kib
        if groups & STATS_VCPU:
            vcpus = self._vcpus_of(dom.domid) if dom is not None else []
            if dom is not None:
                out["vcpu.current"] = dom.vcpus
                out["vcpu.maximum"] = int(config.get("max_vcpus") or 0) or max(len(vcpus), dom.vcpus)
            elif definition is not None:
                out["vcpu.current"] = definition.current_vcpus
                out["vcpu.maximum"] = definition.max_vcpus
            for v in vcpus:
                out[f"vcpu.{v.number}.state"] = v.state
                out[f"vcpu.{v.number}.time"] = v.cpu_time
        return out

    # -- consoles --------------------------------------------------------------------------------

    def _console_tty(self, domid: int, kind: str, port: int) -> str:
        """The pty Xen's console daemon (PV consoles) or device model (serials) made in dom0,
        as xenstore names it; it appears a moment after the domain is built."""
        if kind == "serial":
            key = f"/local/domain/{domid}/serial/{port}/tty"
        elif port == 0:
            key = f"/local/domain/{domid}/console/tty"
        else:
            key = f"/local/domain/{domid}/device/console/{port}/tty"
        deadline = time.monotonic() + 10.0
        while True:
            result = self._hub.toolstack.tool(["xenstore-read", key])
            tty = result.out.strip()
            if result.rc == 0 and tty:
                return tty
            if result.rc not in (0, 1) or time.monotonic() > deadline:
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"cannot find the console's pty in xenstore ({key}): "
                                f"{result.err.strip()[-200:] or 'not there yet'}", domain=_D)
            time.sleep(0.2)

    def _xenstore_tty(self, domid: int, kind: str, port: int) -> str:
        """The pty of a console or serial if xenstore names it now, else ""."""
        key = (f"/local/domain/{domid}/serial/{port}/tty" if kind == "serial" else
               f"/local/domain/{domid}/console/tty" if port == 0 else
               f"/local/domain/{domid}/device/console/{port}/tty")
        result = self._hub.toolstack.tool(["xenstore-read", key])
        return result.out.strip() if result.rc == 0 else ""

    @hookimpl
    def virt_domain_open_console(self, uuid: str, dev_name: str | None, flags: int) -> str:
        """The pty in dom0 behind a console (``console0``, the first when ``dev_name`` is None)
        or a serial port (``serialN``), as libvirt's libxl driver finds them."""
        if uuid == DOM0_UUID:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"cannot find character device {dev_name or '<null>'}",
                            domain=_D)
        with self._active(uuid) as (doc, _status, _name, dom):
            live = self.store.live(uuid) or doc
            devices = live.root.find("devices") if live is not None else None
            consoles = devices.findall("console") if devices is not None else []
            serials = devices.findall("serial") if devices is not None else []
            chosen: tuple[Any, str, int] | None = None
            if dev_name is None or dev_name == "console0":
                if consoles:
                    target = consoles[0].find("target")
                    if target is not None and target.get("type") == "serial" and serials:
                        chosen = (serials[0], "serial", 0)
                    else:
                        chosen = (consoles[0], "console", 0)
            elif dev_name.startswith("serial") and dev_name[6:].isdigit():
                port = int(dev_name[6:])
                for serial in serials:
                    target = serial.find("target")
                    if int((target.get("port") if target is not None else None) or 0) == port:
                        chosen = (serial, "serial", port)
            elif dev_name.startswith("console") and dev_name[7:].isdigit() and int(dev_name[7:]) < len(consoles):
                chosen = (consoles[int(dev_name[7:])], "console", int(dev_name[7:]))
            if chosen is None:
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"cannot find character device {dev_name or '<null>'}",
                                domain=_D)
            element, kind, port = chosen
            if element.get("type") != "pty":
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"character device {dev_name or kind + str(port)} "
                                "is not using a PTY", domain=_D)
            return self._console_tty(dom.domid, kind, port)

    @property
    def open_console_stream(self) -> Any:
        """None where ``xl`` runs here (the core opens the pty), else a refusal that says where
        the pty is: in the dom0 behind the toolstack channel, which carries no streams."""
        if self.hub is None or isinstance(self.hub.toolstack, LocalToolstack):
            return None

        def refuse(uuid: str, dev_name: str | None, flags: int) -> Any:
            path = self.virt_domain_open_console(uuid, dev_name, flags)
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"the console is {path} in the dom0 behind "
                            f"{self._hub.toolstack.description}, which carries no streams: open it through "
                            "xen+ssh:// or xen+ext:// (virt's remote plugin carries consoles)", domain=_D)

        return refuse

    @hookimpl
    def virt_domain_get_scheduler_type(self, uuid: str) -> tuple[str, int]:
        if uuid == DOM0_UUID:
            sched = self.info.get("xen_scheduler", "credit")
            return sched, 2 if sched.startswith("credit") else 0
        self._find(uuid)
        sched = self.info.get("xen_scheduler", "credit")
        return sched, 2 if sched.startswith("credit") else 0
