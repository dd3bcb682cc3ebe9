"""Domain snapshots of the ``qemu:///`` driver: libvirt's internal (qcow2) snapshots.

* **Where they live.** Each snapshot's ``<domainsnapshot>`` XML (with the domain definition it
  was taken from) is ``lib/qemu/snapshot/DOMAIN/SNAPSHOT.xml`` under the URI's layout, as
  libvirt keeps ``/var/lib/libvirt/qemu/snapshot/DOMAIN/``; the current snapshot is the one
  whose file says ``<active>1</active>``.  Every file is replaced atomically, under the
  domain's lock.
* **What a snapshot holds.** Every writable disk must be qcow2 (or be excluded with
  ``<disk name='vdb' snapshot='no'/>``): the snapshot lives inside the images.  A running
  domain's snapshot (state ``running`` or ``paused``) also holds the guest's memory, written by
  QMP's ``snapshot-save`` job into the first snapshotted disk, with the vCPUs paused around it
  as libvirt does; an inactive domain's (state ``shutoff``) is ``qemu-img snapshot -c`` on each
  disk.
* **Revert.** A running snapshot is loaded with QMP's ``snapshot-load`` job: in the domain's
  QEMU when it runs with the same definition, else in a fresh QEMU started paused (``-S``), then
  continued or left paused per the snapshot's state and the flags; a shutoff snapshot is
  ``qemu-img snapshot -a`` on each disk of the stopped domain.  The snapshot's definition
  becomes the domain's.  Events are libvirt's (``STARTED``/``SUSPENDED``/``RESUMED``/``STOPPED``
  with ``FROM_SNAPSHOT`` details).
* **Delete** is QMP's ``snapshot-delete`` job while running, ``qemu-img snapshot -d`` otherwise;
  the children move up to the deleted snapshot's parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainState
from virt._state_files import atomic_write
from virt.xml._base import escape
from virt.xml.domain import DomainDocument
from virt.xml.snapshot import SnapshotDocument

from virt_qemu import _loop, _process
from virt_qemu._monitor import MonitorGone, Session, session
from virt_qemu._store import parse_definition

if TYPE_CHECKING:
    from virt_qemu._command import CommandLine
    from virt_qemu._driver import Hub
    from virt_qemu._paths import Layout
    from virt_qemu._store import Status, Store

__all__ = ["SnapshotMixin", "remove_snapshot_metadata", "snapshot_count"]

_D = ErrorDomain.QEMU
_DS = ErrorDomain.DOMAIN_SNAPSHOT
S = DomainState

# virDomainSnapshotCreateFlags
_CREATE_REDEFINE, _CREATE_CURRENT, _CREATE_NO_METADATA, _CREATE_HALT = 1, 2, 4, 8
_CREATE_DISK_ONLY, _CREATE_REUSE_EXT, _CREATE_QUIESCE, _CREATE_ATOMIC = 16, 32, 64, 128
_CREATE_LIVE, _CREATE_VALIDATE = 256, 512
# virDomainSnapshotListFlags
_LIST_ROOTS = 1
_LIST_METADATA, _LIST_LEAVES, _LIST_NO_LEAVES, _LIST_NO_METADATA = 2, 4, 8, 16
_LIST_INACTIVE, _LIST_ACTIVE, _LIST_DISK_ONLY = 32, 64, 128
_LIST_INTERNAL, _LIST_EXTERNAL, _LIST_TOPOLOGICAL = 256, 512, 1024
_LIST_ALL = 2047
# virDomainSnapshotRevertFlags / virDomainSnapshotDeleteFlags
_REVERT_RUNNING, _REVERT_PAUSED, _REVERT_FORCE = 1, 2, 4
_DELETE_CHILDREN, _DELETE_METADATA_ONLY, _DELETE_CHILDREN_ONLY = 1, 2, 4

# state reasons and event details (virDomain<State>Reason, virDomainEvent<Type>DetailType)
RUNNING_FROM_SNAPSHOT, RUNNING_UNPAUSED = 4, 5
PAUSED_FROM_SNAPSHOT, PAUSED_SNAPSHOT = 7, 9
SHUTOFF_FROM_SNAPSHOT = 7
STARTED_FROM_SNAPSHOT = 3
SUSPENDED_FROM_SNAPSHOT = 5
RESUMED_FROM_SNAPSHOT = 2
STOPPED_FROM_SNAPSHOT = 6

_ACTIVE_STATES = ("running", "paused", "blocked", "shutdown", "crashed", "pmsuspended")
_JOB_TIMEOUT = 600.0


def _unsupported_flags(flags: int, function: str) -> VirtError:
    message = f"unsupported flags (0x{flags:x}) in function {function}"
    return VirtError(ErrorNumber.INVALID_ARG, message, domain=_D, message=message)


def _check_flags(flags: int, allowed: int, function: str) -> None:
    if flags & ~allowed:
        raise _unsupported_flags(flags & ~allowed, function)


def _no_snapshot(name: str) -> VirtError:
    return VirtError(ErrorNumber.NO_DOMAIN_SNAPSHOT, f"no domain snapshot with matching name '{name}'", domain=_D)


def _invalid(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, detail, domain=_D)


def _failed(detail: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_FAILED, detail, domain=_D)


# -- the metadata on disk ------------------------------------------------------------------


def _files(directory: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.endswith(".xml") and entry.is_file():
            yield Path(entry.path)


def snapshot_count(layout: Layout, domain: str) -> int:
    """How many snapshots domain ``domain`` has metadata for."""
    return sum(1 for _ in _files(layout.snapshot_dir(domain)))


def remove_snapshot_metadata(layout: Layout, domain: str) -> None:
    """Forget every snapshot of ``domain`` (the images keep theirs), as libvirt's
    ``qemuSnapshotDiscardAllMetadata``."""
    shutil.rmtree(layout.snapshot_dir(domain), ignore_errors=True)


def _load(layout: Layout, domain: str) -> dict[str, SnapshotDocument]:
    """The snapshots of ``domain`` by name, oldest first."""
    found: list[SnapshotDocument] = []
    for path in _files(layout.snapshot_dir(domain)):
        try:
            doc = SnapshotDocument.from_string(path.read_bytes(), redefine=True, internal=True)
        except (OSError, VirtError):
            continue  # a broken file is skipped, as libvirt skips it when loading
        found.append(doc)
    found.sort(key=lambda d: (d.creation_time or 0, d.name))
    return {d.name: d for d in found}


def _save(layout: Layout, domain: str, snap: SnapshotDocument) -> None:
    directory = layout.snapshot_dir(domain)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(directory / f"{snap.name}.xml", snap.to_string(internal=True))


def _unlink(layout: Layout, domain: str, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.snapshot_dir(domain) / f"{name}.xml")


def _current(snaps: dict[str, SnapshotDocument]) -> str | None:
    return next((name for name, snap in snaps.items() if snap.current), None)


def _children(snaps: dict[str, SnapshotDocument], name: str | None) -> list[str]:
    return [n for n, s in snaps.items() if s.parent == name]


def _descendants(snaps: dict[str, SnapshotDocument], name: str) -> list[str]:
    """Every snapshot below ``name``, parents before their children."""
    out: list[str] = []
    stack = list(reversed(_children(snaps, name)))
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(reversed(_children(snaps, child)))
    return out


def _disk_modes(snap: SnapshotDocument) -> list[tuple[str, str]]:
    return [(d.get("name") or "", d.get("snapshot") or "internal") for d in snap.root.iterfind("disks/disk")]


def _internal_disks(snap: SnapshotDocument) -> list[str]:
    return [name for name, mode in _disk_modes(snap) if mode == "internal"]


def _is_external(snap: SnapshotDocument) -> bool:
    return snap.memory_snapshot == "external" or any(mode == "external" for _, mode in _disk_modes(snap))


def _list_matches(snap: SnapshotDocument, has_children: bool, flags: int) -> bool:
    if flags & (_LIST_LEAVES | _LIST_NO_LEAVES) and not (
            (flags & _LIST_LEAVES and not has_children) or (flags & _LIST_NO_LEAVES and has_children)):
        return False
    if flags & _LIST_NO_METADATA and not flags & _LIST_METADATA:
        return False  # every snapshot this driver lists has metadata
    state = snap.state or ""
    if flags & (_LIST_INACTIVE | _LIST_ACTIVE | _LIST_DISK_ONLY) and not (
            (flags & _LIST_INACTIVE and state == "shutoff") or (flags & _LIST_ACTIVE and state in _ACTIVE_STATES)
            or (flags & _LIST_DISK_ONLY and state == "disk-snapshot")):
        return False
    external = _is_external(snap)
    return not flags & (_LIST_INTERNAL | _LIST_EXTERNAL) or bool(
        (flags & _LIST_INTERNAL and not external) or (flags & _LIST_EXTERNAL and external))


# -- disks -------------------------------------------------------------------------------------


def _plan_disks(doc: DomainDocument, wanted: dict[str, str]) -> list[tuple[str, str]]:
    """libvirt's ``virDomainSnapshotAlignDisks`` and ``qemuSnapshotPrepare`` for internal
    snapshots: (target, 'internal'|'no') for every disk of ``doc``."""
    targets = [d.target or "" for d in doc.disks()]
    for name in wanted:
        if name not in targets:
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"no disk named '{name}'", domain=ErrorDomain.DOMAIN)
    out = []
    for disk in doc.disks():
        target = disk.target or ""
        mode = wanted.get(target) or ("no" if disk.readonly or not disk.source else "internal")
        if mode not in ("internal", "no"):
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"snapshot mode '{mode}' of disk {target}: this "
                            "driver takes internal snapshots only", domain=_D)
        if mode == "internal":
            if disk.type not in ("file", "block", "volume", None):
                raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"internal snapshot for disk {target} unsupported "
                                f"for storage type {disk.type}", domain=_D)
            fmt = disk.driver_type or "raw"
            if fmt != "qcow2":
                raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"internal snapshot for disk {target} unsupported "
                                f"for storage type {fmt}", domain=_D)
        out.append((target, mode))
    return out


def _qemu_img(args: list[str]) -> None:
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False, timeout=_JOB_TIMEOUT)
    except FileNotFoundError:
        raise _failed("cannot find qemu-img: install it (Debian: qemu-utils)") from None
    if done.returncode != 0:
        words = " ".join((done.stderr or done.stdout).split())
        raise _failed(f"qemu-img {' '.join(args)} failed: {words}")


# -- QMP ------------------------------------------------------------------------------------------


async def _block_nodes(qmp: Session, qdevs: dict[str, str]) -> dict[str, str]:
    """target -> node name of each disk's top node, from ``query-block`` (``qdevs``: qdev id ->
    target)."""
    out: dict[str, str] = {}
    for entry in await qmp.execute("query-block"):
        inserted = entry.get("inserted")
        if not isinstance(inserted, dict):
            continue
        names = [*str(entry.get("qdev", "")).split("/"), str(entry.get("device", ""))]
        target = next((qdevs[n] for n in names if n in qdevs), None)
        if target is not None and inserted.get("node-name"):
            out[target] = str(inserted["node-name"])
    return out


def _nodes_for(targets: list[str], nodes: dict[str, str]) -> list[str]:
    missing = [t for t in targets if t not in nodes]
    if missing:
        raise _failed(f"cannot find the block node of disk {missing[0]}")
    return [nodes[t] for t in targets]


async def _job(qmp: Session, command: str, args: dict[str, Any]) -> None:
    """Run the snapshot job ``command`` and wait for it (QEMU keeps it until dismissed)."""
    job_id = f"virt-{command}"
    with contextlib.suppress(VirtError):  # a job left behind by a process that died
        await qmp.execute("job-dismiss", {"id": job_id})
    await qmp.execute(command, {"job-id": job_id, **args})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _JOB_TIMEOUT
    delay = 0.002
    while True:
        jobs = await qmp.execute("query-jobs")
        job = next((j for j in jobs if j.get("id") == job_id), None)
        if job is None:
            return
        if job.get("status") == "concluded":
            with contextlib.suppress(VirtError):
                await qmp.execute("job-dismiss", {"id": job_id})
            if job.get("error"):
                raise _failed(f"QEMU's {command} job failed: {job['error']}")
            return
        if loop.time() > deadline:
            raise _failed(f"QEMU's {command} job did not finish within {_JOB_TIMEOUT:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _snapshot_xml(name: str, description: str | None, state: str, parent: str | None, created: int,
                  memory: str, disks: list[tuple[str, str]]) -> str:
    out = ["<domainsnapshot>", f"  <name>{escape(name)}</name>"]
    if description:
        out.append(f"  <description>{escape(description)}</description>")
    out.append(f"  <state>{state}</state>")
    if parent:
        out.append(f"  <parent><name>{escape(parent)}</name></parent>")
    out.append(f"  <creationTime>{created}</creationTime>")
    out.append(f"  <memory snapshot='{memory}'/>")
    if disks:
        out.append("  <disks>")
        out += [f"    <disk name='{escape(target)}' snapshot='{mode}'/>" for target, mode in disks]
        out.append("  </disks>")
    out.append("</domainsnapshot>")
    return "\n".join(out) + "\n"


Prepare = Callable[[Session, "CommandLine"], Awaitable[None]]


class SnapshotMixin:
    """The snapshot hooks of :class:`virt_qemu._driver.QemuConnection`."""

    if TYPE_CHECKING:
        layout: Layout
        store: Store
        hub: Hub

        def _find(self, uuid: str) -> tuple[DomainDocument | None, Status | None, str]: ...

        def _host_view(self, live: DomainDocument) -> DomainDocument: ...

        def _launch(self, doc: DomainDocument, *, persistent: bool, paused: bool, image: Any = None,
                    reason: int = ..., detail: int = ..., prepare: Prepare | None = None) -> None: ...

    # -- helpers ----------------------------------------------------------------------------------

    def _snapshots(self, uuid: str) -> tuple[str, dict[str, SnapshotDocument]]:
        _, _, name = self._find(uuid)
        return name, _load(self.layout, name)

    def _snapshot(self, uuid: str, snap_name: str) -> tuple[str, dict[str, SnapshotDocument], SnapshotDocument]:
        name, snaps = self._snapshots(uuid)
        snap = snaps.get(snap_name)
        if snap is None:
            raise _no_snapshot(snap_name)
        return name, snaps, snap

    def _set_current(self, domain: str, snaps: dict[str, SnapshotDocument], name: str | None) -> None:
        """Make ``name`` (or none) the current snapshot: rewrite the files whose mark changes."""
        for snap_name, snap in snaps.items():
            want = snap_name == name
            if snap.current != want:
                snap.current = want
                _save(self.layout, domain, snap)

    def _disk_paths(self, doc: DomainDocument) -> dict[str, str]:
        """target -> host path of every disk of ``doc`` (volumes resolved)."""
        return {d.target or "": d.source or "" for d in self._host_view(doc).disks()}

    def _qemu_img_each(self, action: str, snap_name: str, paths: list[str], *, undo: str | None = None,
                       try_all: bool = False) -> None:
        """``qemu-img snapshot ACTION SNAP`` on each image; on a failure, ``undo`` on those done
        (creation), or (``try_all``) go on with the others, as libvirt's qemu-img loop."""
        done: list[str] = []
        for path in paths:
            try:
                _qemu_img(["snapshot", action, snap_name, path])
            except VirtError:
                if try_all:
                    continue
                for earlier in done if undo else ():
                    with contextlib.suppress(VirtError):
                        _qemu_img(["snapshot", undo or "", snap_name, earlier])
                raise
            done.append(path)

    def _run_qmp(self, uuid: str, work: Callable[[Session], Awaitable[None]]) -> None:
        async def go() -> None:
            async with session(self.layout.monitor_socket(uuid)) as qmp:
                await work(qmp)

        try:
            _loop.run(go(), _JOB_TIMEOUT + 30)
        except MonitorGone:
            raise _invalid("domain is not running") from None

    def _stop_for_snapshot(self, status: Status) -> None:
        """Stop QEMU (HALT, or a revert that needs a fresh one): SHUT OFF (from snapshot)."""
        uuid = str(status["uuid"])
        status["stopping"] = "snapshot"
        self.store.write_status(uuid, status)
        if not _process.kill(status.pid, status.get("started"), force_after=10.0):
            del status["stopping"]
            self.store.write_status(uuid, status)
            raise _failed(f"failed to terminate process {status.pid} with SIGTERM: Device or resource busy")
        self.hub.finish(status, SHUTOFF_FROM_SNAPSHOT, STOPPED_FROM_SNAPSHOT)

    # -- hooks ------------------------------------------------------------------------------------

    @hookimpl
    def virt_snapshot_create_xml(self, uuid: str, xml: str, flags: int) -> str:
        _check_flags(flags, _CREATE_REDEFINE | _CREATE_CURRENT | _CREATE_NO_METADATA | _CREATE_HALT
                     | _CREATE_DISK_ONLY | _CREATE_REUSE_EXT | _CREATE_QUIESCE | _CREATE_ATOMIC | _CREATE_LIVE
                     | _CREATE_VALIDATE, "qemuDomainSnapshotCreateXML")
        redefine = bool(flags & _CREATE_REDEFINE)
        if flags & _CREATE_REDEFINE and flags & ~(_CREATE_REDEFINE | _CREATE_CURRENT | _CREATE_VALIDATE):
            raise VirtError(ErrorNumber.INVALID_ARG, "redefine can only be combined with current and validate",
                            domain=_D)
        if flags & _CREATE_CURRENT and not redefine:
            raise VirtError(ErrorNumber.INVALID_ARG, "current flag requires redefine flag", domain=_D)
        if flags & (_CREATE_DISK_ONLY | _CREATE_REUSE_EXT):
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "disk-only (external) snapshots are not supported "
                            "by this driver", domain=_D)
        if flags & _CREATE_QUIESCE:
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "quiesce needs the guest agent, which this driver "
                            "does not use", domain=_D)
        if flags & _CREATE_LIVE:
            raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "live snapshot creation is supported only using "
                            "external snapshots", domain=_D)
        with self.store.lock(uuid):
            doc, status, name = self._find(uuid)
            active = status is not None and status.active
            if flags & _CREATE_HALT and doc is None:
                raise _invalid("cannot halt after transient domain snapshot")
            new = SnapshotDocument.from_string(xml, redefine=redefine, validate=bool(flags & _CREATE_VALIDATE))
            if "/" in new.name:
                raise VirtError(ErrorNumber.XML_ERROR, f"invalid snapshot name '{new.name}': it cannot contain '/'",
                                domain=_DS)
            snaps = _load(self.layout, name)
            if redefine:
                return self._redefine(uuid, name, snaps, new, bool(flags & _CREATE_CURRENT))
            if new.name in snaps:
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"domain moment {new.name} already exists",
                                domain=_DS)
            if new.memory_snapshot in ("external", "manual"):
                raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "external memory snapshots are not supported by "
                                "this driver", domain=_D)
            if active and new.memory_snapshot == "no":
                raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "internal snapshot of a running VM must include "
                                "the memory state", domain=_D)
            wanted = {d.get("name") or "": d.get("snapshot") or "" for d in new.root.iterfind("disks/disk")}
            source = self.store.live(uuid) if active else doc
            assert source is not None
            disks = _plan_disks(source, wanted)
            internal = [t for t, mode in disks if mode == "internal"]
            parent = _current(snaps)
            created = new.creation_time or int(time.time())
            if active:
                assert status is not None
                state = "paused" if status.state == S.PAUSED else "running"
                if not internal:
                    raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "the memory of a running domain is saved "
                                    "into a qcow2 disk, and this domain has none to snapshot", domain=_D)
                self._save_running(uuid, status, new.name, internal)
            else:
                state = "shutoff"
                paths = self._disk_paths(source)
                self._qemu_img_each("-c", new.name, [paths[t] for t in internal], undo="-d")
            snap = SnapshotDocument.from_string(
                _snapshot_xml(new.name, new.description, state, parent, created, "internal" if active else "no",
                              disks), redefine=True, internal=True)
            # secure: a revert must bring back the VNC password too (dumpxml hides it)
            snap.set_domain(parse_definition(source.to_string(inactive=True, secure=True)))
            if not flags & _CREATE_NO_METADATA:
                _save(self.layout, name, snap)
                snaps[snap.name] = snap
                self._set_current(name, snaps, snap.name)
            if flags & _CREATE_HALT and active and status is not None:
                self._stop_for_snapshot(status)
            return snap.name

    def _redefine(self, uuid: str, name: str, snaps: dict[str, SnapshotDocument], new: SnapshotDocument,
                  current: bool) -> str:
        """``VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE``: metadata only (the images are not touched)."""
        inner = new.domain()
        if inner is not None and inner.uuid and inner.uuid != uuid:
            raise VirtError(ErrorNumber.INVALID_ARG, f"definition for snapshot {new.name} must use uuid {uuid}",
                            domain=_DS)
        parent = new.parent
        if parent is not None and parent not in snaps:
            raise VirtError(ErrorNumber.INVALID_ARG, f"parent {parent} for snapshot {new.name} not found",
                            domain=_DS)
        if parent is not None and (parent == new.name or new.name in [parent, *self._ancestors(snaps, parent)]):
            raise VirtError(ErrorNumber.INVALID_ARG, f"parent {parent} would create cycle to {new.name}",
                            domain=_DS)
        old = snaps.get(new.name)
        new.current = bool(old is not None and old.current)
        _save(self.layout, name, new)
        snaps[new.name] = new
        if current:
            self._set_current(name, snaps, new.name)
        return new.name

    @staticmethod
    def _ancestors(snaps: dict[str, SnapshotDocument], name: str) -> list[str]:
        out: list[str] = []
        seen = {name}
        parent = snaps[name].parent if name in snaps else None
        while parent is not None and parent in snaps and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = snaps[parent].parent
        return out

    def _save_running(self, uuid: str, status: Status, snap_name: str, targets: list[str]) -> None:
        """``snapshot-save`` of the running QEMU, its vCPUs stopped around it as libvirt does."""
        was_running = status.state == S.RUNNING
        qdevs = {str(qdev): str(target) for target, qdev in status.get("disks", [])}

        async def work(qmp: Session) -> None:
            devices = _nodes_for(targets, await _block_nodes(qmp, qdevs))
            if was_running:
                await qmp.execute("stop")
            try:
                await _job(qmp, "snapshot-save", {"tag": snap_name, "vmstate": devices[0], "devices": devices})
            finally:
                if was_running:
                    await qmp.execute("cont")

        if was_running:
            status.update(state=int(S.PAUSED), reason=PAUSED_SNAPSHOT)
            self.store.write_status(uuid, status)
        try:
            self._run_qmp(uuid, work)
        finally:
            if was_running:
                status.update(state=int(S.RUNNING), reason=RUNNING_UNPAUSED)
                self.store.write_status(uuid, status)

    @hookimpl
    def virt_snapshot_list(self, uuid: str, flags: int) -> list[str]:
        _check_flags(flags, _LIST_ALL, "qemuDomainListAllSnapshots")
        _, snaps = self._snapshots(uuid)
        if flags & _LIST_TOPOLOGICAL:
            order: list[str] = []
            for root in _children(snaps, None) + [n for n, s in snaps.items()
                                                  if s.parent is not None and s.parent not in snaps]:
                order += [root, *_descendants(snaps, root)]
        else:
            order = list(snaps)
        if flags & _LIST_ROOTS:
            order = [n for n in order if snaps[n].parent is None]
        return [n for n in order if _list_matches(snaps[n], bool(_children(snaps, n)), flags)]

    @hookimpl
    def virt_snapshot_get_xml(self, uuid: str, name: str, flags: int) -> str:
        _check_flags(flags, 1, "qemuDomainSnapshotGetXMLDesc")
        _, _, snap = self._snapshot(uuid, name)
        inner = snap.domain()
        if inner is not None and not flags & 1:  # VIR_DOMAIN_SNAPSHOT_XML_SECURE
            snap.set_domain(parse_definition(inner.to_string(inactive=True)))
        return snap.to_string(domain_uuid=uuid)

    @hookimpl
    def virt_snapshot_current(self, uuid: str, flags: int) -> str:
        _check_flags(flags, 0, "qemuDomainSnapshotCurrent")
        _, snaps = self._snapshots(uuid)
        current = _current(snaps)
        if current is None:
            raise VirtError(ErrorNumber.NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot", domain=_D)
        return current

    @hookimpl
    def virt_snapshot_get_parent(self, uuid: str, name: str, flags: int) -> str | None:
        _check_flags(flags, 0, "qemuDomainSnapshotGetParent")
        _, _, snap = self._snapshot(uuid, name)
        return snap.parent

    @hookimpl
    def virt_snapshot_delete(self, uuid: str, name: str, flags: int) -> None:
        _check_flags(flags, _DELETE_CHILDREN | _DELETE_METADATA_ONLY | _DELETE_CHILDREN_ONLY,
                     "qemuDomainSnapshotDelete")
        with self.store.lock(uuid):
            doc, status, dom_name = self._find(uuid)
            snaps = _load(self.layout, dom_name)
            snap = snaps.get(name)
            if snap is None:
                raise _no_snapshot(name)
            below = _descendants(snaps, name) if flags & (_DELETE_CHILDREN | _DELETE_CHILDREN_ONLY) else []
            doomed = ([] if flags & _DELETE_CHILDREN_ONLY else [name]) + below
            if not flags & _DELETE_METADATA_ONLY:
                external = [n for n in doomed if _is_external(snaps[n])]
                if external:
                    raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, f"deletion of external snapshot "
                                    f"'{external[0]}' is not supported by this driver", domain=_D)
                active = status is not None and status.active
                for victim in reversed(doomed):  # children first
                    self._discard_data(uuid, status if active else None, doc, snaps[victim])
            current = _current(snaps)
            parent = snap.parent
            for victim in doomed:
                _unlink(self.layout, dom_name, victim)
            survivors = {n: s for n, s in snaps.items() if n not in doomed}
            if name in survivors:  # children only: the snapshot stays, its subtree goes
                new_current = name if current in doomed else current
            else:
                for child in _children(snaps, name):  # the children move up to the parent
                    if child in survivors:
                        survivors[child].parent = parent
                        _save(self.layout, dom_name, survivors[child])
                new_current = (parent if parent in survivors else None) if current in doomed else current
            self._set_current(dom_name, survivors, new_current)

    def _discard_data(self, uuid: str, status: Status | None, doc: DomainDocument | None,
                      snap: SnapshotDocument) -> None:
        """Remove ``snap`` from the images: ``snapshot-delete`` while running, else qemu-img."""
        targets = _internal_disks(snap)
        if not targets:
            return
        if status is not None:
            qdevs = {str(qdev): str(target) for target, qdev in status.get("disks", [])}

            async def work(qmp: Session) -> None:
                nodes = await _block_nodes(qmp, qdevs)
                devices = [nodes[t] for t in targets if t in nodes]
                if devices:
                    await _job(qmp, "snapshot-delete", {"tag": snap.name, "devices": devices})

            self._run_qmp(uuid, work)
            return
        source = doc or snap.domain()
        if source is None:
            return
        paths = self._disk_paths(source)
        self._qemu_img_each("-d", snap.name, [paths[t] for t in targets if paths.get(t)], try_all=True)

    @hookimpl
    def virt_snapshot_revert(self, uuid: str, name: str, flags: int) -> None:
        _check_flags(flags, _REVERT_RUNNING | _REVERT_PAUSED | _REVERT_FORCE, "qemuDomainRevertToSnapshot")
        if flags & _REVERT_RUNNING and flags & _REVERT_PAUSED:
            raise VirtError(ErrorNumber.INVALID_ARG, "running and paused flags in virDomainRevertToSnapshot are "
                            "mutually exclusive", domain=_D)
        with self.store.lock(uuid):
            doc, status, dom_name = self._find(uuid)
            snaps = _load(self.layout, dom_name)
            snap = snaps.get(name)
            if snap is None:
                raise _no_snapshot(name)
            active = status is not None and status.active
            state = snap.state or "shutoff"
            run_state = state in ("running", "paused")
            if doc is None and not run_state and not flags & (_REVERT_RUNNING | _REVERT_PAUSED):
                raise _invalid("transient domain needs to request run or pause to revert to inactive snapshot")
            if _is_external(snap):
                raise VirtError(ErrorNumber.OPERATION_UNSUPPORTED, "revert to external snapshot not supported yet",
                                domain=_D)
            config = snap.domain()
            if not flags & _REVERT_FORCE:
                if config is None:
                    raise VirtError(ErrorNumber.SNAPSHOT_REVERT_RISKY, f"snapshot '{name}' lacks domain "
                                    f"'{dom_name}' rollback info", domain=_D)
                if active and not run_state and flags & (_REVERT_RUNNING | _REVERT_PAUSED):
                    raise VirtError(ErrorNumber.SNAPSHOT_REVERT_RISKY, "must respawn guest to start inactive "
                                    "snapshot", domain=_D)
            if config is None:
                config = doc.copy() if doc is not None else self.store.live(uuid)
                assert config is not None
            want_paused = not flags & _REVERT_RUNNING and (state == "paused" or bool(flags & _REVERT_PAUSED))
            targets = _internal_disks(snap)
            if run_state:
                self._revert_running(uuid, doc, status if active else None, snap.name, config, targets, want_paused)
            else:
                self._revert_shutoff(uuid, doc, status if active else None, snap.name, config, targets, flags)
            self._set_current(dom_name, snaps, snap.name)

    def _revert_running(self, uuid: str, doc: DomainDocument | None, status: Status | None, snap_name: str,
                        config: DomainDocument, targets: list[str], want_paused: bool) -> None:
        if status is not None:
            live = self.store.live(uuid)
            same = live is not None and parse_definition(live.to_string(inactive=True, secure=True)).to_string(
                inactive=True, secure=True) == config.to_string(inactive=True, secure=True)
            if same:
                self._load_in_place(uuid, status, snap_name, targets, want_paused)
                if doc is not None:
                    self.store.write_config(config)
                return
            self._stop_for_snapshot(status)  # another definition: a fresh QEMU
        if doc is not None:
            self.store.write_config(config)

        async def prepare(qmp: Session, cmd: CommandLine) -> None:
            devices = _nodes_for(targets, dict(cmd.disk_nodes))
            if devices:
                await _job(qmp, "snapshot-load", {"tag": snap_name, "vmstate": devices[0], "devices": devices})

        self._launch(config, persistent=doc is not None, paused=want_paused, reason=RUNNING_FROM_SNAPSHOT,
                     detail=STARTED_FROM_SNAPSHOT, prepare=prepare)

    def _load_in_place(self, uuid: str, status: Status, snap_name: str, targets: list[str],
                       want_paused: bool) -> None:
        """``snapshot-load`` in the domain's own QEMU (same definition), as libvirt's loadvm."""
        was_running = status.state == S.RUNNING
        qdevs = {str(qdev): str(target) for target, qdev in status.get("disks", [])}
        name, dom_id = str(status["name"]), int(status.get("id", -1))

        async def work(qmp: Session) -> None:
            devices = _nodes_for(targets, await _block_nodes(qmp, qdevs))
            if was_running:
                await qmp.execute("stop")
            await _job(qmp, "snapshot-load", {"tag": snap_name, "vmstate": devices[0], "devices": devices})
            if not want_paused:
                await qmp.execute("cont")

        status.update(state=int(S.PAUSED), reason=PAUSED_FROM_SNAPSHOT)
        self.store.write_status(uuid, status)
        try:
            self._run_qmp(uuid, work)
        except BaseException:
            if was_running:  # a failed load leaves the guest paused, and says so (libvirt does too)
                self.hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_FROM_SNAPSHOT, dom_id)
            raise
        if want_paused:
            if was_running:
                self.hub.emit(name, uuid, DomainEventType.SUSPENDED, SUSPENDED_FROM_SNAPSHOT, dom_id)
        else:
            status.update(state=int(S.RUNNING), reason=RUNNING_FROM_SNAPSHOT)
            self.store.write_status(uuid, status)
            if not was_running:
                self.hub.emit(name, uuid, DomainEventType.RESUMED, RESUMED_FROM_SNAPSHOT, dom_id)

    def _revert_shutoff(self, uuid: str, doc: DomainDocument | None, status: Status | None, snap_name: str,
                        config: DomainDocument, targets: list[str], flags: int) -> None:
        if status is not None:
            self._stop_for_snapshot(status)
        paths = self._disk_paths(config)
        self._qemu_img_each("-a", snap_name, [paths[t] for t in targets if paths.get(t)])
        if doc is not None:
            self.store.write_config(config)
        if flags & (_REVERT_RUNNING | _REVERT_PAUSED):
            self._launch(config, persistent=doc is not None, paused=bool(flags & _REVERT_PAUSED),
                         reason=RUNNING_FROM_SNAPSHOT, detail=STARTED_FROM_SNAPSHOT)
