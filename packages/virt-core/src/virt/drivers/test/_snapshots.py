"""Snapshot hooks of the test driver: libvirt's test-driver snapshot tree, in memory.

A snapshot keeps a copy of the domain definition it was taken from, so reverting brings the
configuration back; there is no guest memory or disk to restore.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainState
from virt.drivers.test import _domains as D
from virt.drivers.test._state import DomainObj, NodeState, Plain, check_flags

if TYPE_CHECKING:  # the XML models (lxml) are imported on first use
    from virt.xml._base import Element
    from virt.xml.domain import DomainDocument

__all__ = ["SnapshotObj", "SnapshotOps", "load_snapshots"]

# virDomainSnapshotCreateFlags
_CREATE_REDEFINE, _CREATE_CURRENT, _CREATE_NO_METADATA, _CREATE_HALT = 1, 2, 4, 8
_CREATE_DISK_ONLY, _CREATE_REUSE_EXT, _CREATE_QUIESCE, _CREATE_ATOMIC = 16, 32, 64, 128
_CREATE_LIVE, _CREATE_VALIDATE = 256, 512
# virDomainSnapshotListFlags
_LIST_ROOTS = _LIST_DESCENDANTS = 1
_LIST_METADATA, _LIST_LEAVES, _LIST_NO_LEAVES, _LIST_NO_METADATA = 2, 4, 8, 16
_LIST_INACTIVE, _LIST_ACTIVE, _LIST_DISK_ONLY = 32, 64, 128
_LIST_INTERNAL, _LIST_EXTERNAL, _LIST_TOPOLOGICAL = 256, 512, 1024
_LIST_ALL = 2047
# virDomainSnapshotRevertFlags / virDomainSnapshotDeleteFlags
_REVERT_RUNNING, _REVERT_PAUSED, _REVERT_FORCE = 1, 2, 4
_DELETE_CHILDREN, _DELETE_METADATA_ONLY, _DELETE_CHILDREN_ONLY = 1, 2, 4

_STATE_NAMES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
                "pmsuspended", "disk-snapshot")


class SnapshotObj(Plain):
    """One snapshot: what ``<domainsnapshot>`` says, and its place in the tree."""

    __slots__ = ("children", "creation_time", "description", "disks", "domain", "memory", "memory_file", "name",
                 "parent", "state")

    def __init__(self, name: str, state: str, creation_time: int, description: str | None = None,
                 memory: str = "internal", memory_file: str | None = None,
                 disks: list[tuple[str, str]] | None = None, domain: DomainDocument | None = None,
                 parent: str | None = None, children: list[str] | None = None) -> None:
        self.name = name
        self.state = state
        self.creation_time = creation_time
        self.description = description
        self.memory = memory
        self.memory_file = memory_file
        self.disks: list[tuple[str, str]] = [] if disks is None else disks
        self.domain = domain
        self.parent = parent
        self.children: list[str] = [] if children is None else children

    @property
    def external(self) -> bool:
        return self.memory == "external" or any(kind == "external" for _, kind in self.disks)

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused", "blocked", "shutdown", "crashed", "pmsuspended")


def _no_snapshot(name: str) -> VirtError:
    return D.domain_error(ErrorNumber.NO_DOMAIN_SNAPSHOT, f"no domain snapshot with matching name '{name}'")


def _snap(dom: DomainObj, name: str) -> SnapshotObj:
    snap: SnapshotObj | None = dom.snapshots.get(name)
    if snap is None:
        raise _no_snapshot(name)
    return snap


def format_snapshot(uuid: str, snap: SnapshotObj, secure: bool) -> str:
    """``virDomainSnapshotDefFormat``'s text for ``snap``."""
    from virt.xml._base import escape

    out = ["<domainsnapshot>", f"  <name>{escape(snap.name)}</name>"]
    if snap.description:
        out.append(f"  <description>{escape(snap.description)}</description>")
    out.append(f"  <state>{snap.state}</state>")
    if snap.parent:
        out += ["  <parent>", f"    <name>{escape(snap.parent)}</name>", "  </parent>"]
    out.append(f"  <creationTime>{snap.creation_time}</creationTime>")
    if snap.memory_file:
        out.append(f"  <memory snapshot='{snap.memory}' file='{escape(snap.memory_file)}'/>")
    else:
        out.append(f"  <memory snapshot='{snap.memory}'/>")
    if snap.disks:
        out.append("  <disks>")
        out += [f"    <disk name='{escape(name)}' snapshot='{kind}'/>" for name, kind in snap.disks]
        out.append("  </disks>")
    if snap.domain is not None:
        text = snap.domain.to_string(inactive=True, secure=secure)
        out += ["  " + line if line else line for line in text.rstrip("\n").split("\n")]
    else:
        out += ["  <domain>", f"    <uuid>{uuid}</uuid>", "  </domain>"]
    out.append("</domainsnapshot>")
    return "\n".join(out) + "\n"


def _parse(xml: str, redefine: bool) -> tuple[SnapshotObj, dict[str, str], Element]:
    from virt.xml._base import parse_xml

    root = parse_xml(xml, root="domainsnapshot", domain=ErrorDomain.DOMAIN_SNAPSHOT)
    now = int(time.time())
    name = (root.findtext("name") or "").strip()
    if not name:
        if redefine:
            raise VirtError(ErrorNumber.XML_ERROR, "a redefined snapshot must have a name",
                            domain=ErrorDomain.DOMAIN_SNAPSHOT)
        name = str(now)
    snap = SnapshotObj(name=name, state="shutoff", creation_time=now,
                       description=root.findtext("description") or None)
    memory = root.find("memory")
    if memory is not None:
        snap.memory = memory.get("snapshot") or ("external" if memory.get("file") else "internal")
        snap.memory_file = memory.get("file")
    wanted = {}
    for disk in root.findall("disks/disk"):
        wanted[disk.get("name") or ""] = disk.get("snapshot") or ""
    if redefine:
        snap.state = (root.findtext("state") or "").strip() or "shutoff"
        if snap.state not in _STATE_NAMES:
            raise VirtError(ErrorNumber.XML_ERROR, f"Invalid state '{snap.state}' in domain snapshot XML",
                            domain=ErrorDomain.DOMAIN_SNAPSHOT)
        created = (root.findtext("creationTime") or "").strip()
        if not created.isdigit():
            raise VirtError(ErrorNumber.XML_ERROR, "missing creationTime from existing snapshot",
                            domain=ErrorDomain.DOMAIN_SNAPSHOT)
        snap.creation_time = int(created)
        snap.parent = (root.findtext("parent/name") or "").strip() or None
        snap.disks = [(n, k or "internal") for n, k in wanted.items()]
    return snap, wanted, root


def _align(snap: SnapshotObj, dom: DomainObj, wanted: dict[str, str], doc: DomainDocument) -> None:
    """testDomainSnapshotAlignDisks: state, memory and one entry per disk of the domain."""
    snap.state = _STATE_NAMES[int(dom.state)]
    if snap.memory == "external":
        pass
    else:
        snap.memory = "no" if dom.state == DomainState.SHUTOFF else "internal"
        snap.memory_file = None
    targets = {d.target for d in doc.disks()}
    for name in wanted:
        if name not in targets:
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"no disk named '{name}'", domain=ErrorDomain.DOMAIN)
    disks = []
    for disk in doc.disks():
        target = disk.target or ""
        kind = wanted.get(target, "")
        if kind not in ("", "internal", "no"):
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"disk '{target}' must use snapshot mode 'internal'",
                            domain=ErrorDomain.DOMAIN)
        if not kind:
            kind = "no" if (disk.readonly or not disk.source) else "internal"
        disks.append((target, kind))
    snap.disks = disks


def _descendants(dom: DomainObj, snap: SnapshotObj) -> list[SnapshotObj]:
    out: list[SnapshotObj] = []
    stack = list(reversed(snap.children))
    while stack:
        child = dom.snapshots.get(stack.pop())
        if child is None:
            continue
        out.append(child)
        stack.extend(reversed(child.children))
    return out


def _topological(dom: DomainObj) -> list[SnapshotObj]:
    out: list[SnapshotObj] = []
    for snap in dom.snapshots.values():
        if snap.parent is None or snap.parent not in dom.snapshots:
            out.append(snap)
            out.extend(_descendants(dom, snap))
    return out


def load_snapshots(domain_root: Element, base_dir: str | None) -> tuple[dict[str, SnapshotObj], str | None]:
    """The ``test:domainsnapshot`` children of a node file's domain (redefined snapshots):
    the snapshots by name and the current one's name."""
    from virt.drivers.test._loader import child_xml

    snapshots: dict[str, SnapshotObj] = {}
    current: str | None = None
    nodes = domain_root.findall(f"{{{D._TEST_NS}}}domainsnapshot")
    for node in nodes:
        inner = node.find("domainsnapshot")
        text = child_xml(inner if inner is not None else node, base_dir)
        if inner is None and node.get("file") is None:
            text = text.replace("test:domainsnapshot", "domainsnapshot")
        snap, _, root = _parse(text, redefine=True)
        inner_dom = root.find("domain")
        if inner_dom is not None:
            from virt.xml._base import format_element

            snap.domain = D.parse_domain("\n".join(format_element(inner_dom)))
        snapshots[snap.name] = snap
        if (root.findtext("active") or "").strip() == "1":
            current = snap.name
    for snap in snapshots.values():
        if snap.parent is not None and snap.parent in snapshots:
            snapshots[snap.parent].children.append(snap.name)
    return snapshots, current


class SnapshotOps:
    """Implements :mod:`virt.hookspecs.snapshot` on the in-memory node."""

    node: NodeState

    @hookimpl
    def virt_snapshot_create_xml(self, uuid: str, xml: str, flags: int) -> str:
        check_flags(flags, _CREATE_REDEFINE | _CREATE_CURRENT | _CREATE_HALT | _CREATE_QUIESCE
                      | _CREATE_ATOMIC | _CREATE_LIVE | _CREATE_VALIDATE, "testDomainSnapshotCreateXML")
        redefine = bool(flags & _CREATE_REDEFINE)
        with self.node.lock:
            dom = self.node.domain(uuid)
            if not dom.persistent and flags & _CREATE_HALT:
                raise D.domain_error(ErrorNumber.OPERATION_INVALID, "cannot halt after transient domain snapshot")
            snap, wanted, root = _parse(xml, redefine)
            if snap.name in dom.snapshots and not redefine:
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"domain moment {snap.name} already exists",
                                domain=ErrorDomain.DOMAIN_SNAPSHOT)
            if redefine:
                inner = root.find("domain")
                if inner is not None and inner.find("name") is not None:
                    from virt.xml._base import format_element

                    snap.domain = D.parse_domain("\n".join(format_element(inner)))
                    if snap.domain.uuid and snap.domain.uuid != dom.uuid:
                        raise VirtError(ErrorNumber.INVALID_ARG,
                                        f"definition for snapshot {snap.name} must use uuid {dom.uuid}",
                                        domain=ErrorDomain.DOMAIN_SNAPSHOT)
                if snap.parent is not None and snap.parent not in dom.snapshots:
                    raise VirtError(ErrorNumber.INVALID_ARG,
                                    f"parent {snap.parent} for snapshot {snap.name} not found",
                                    domain=ErrorDomain.DOMAIN_SNAPSHOT)
                old = dom.snapshots.get(snap.name)
                if old is not None:
                    snap.children = old.children
                    if old.parent in dom.snapshots and old.parent != snap.parent:
                        dom.snapshots[old.parent].children.remove(snap.name)
                        old = None
            else:
                doc = dom.definition
                _align(snap, dom, wanted, doc)
                snap.domain = doc.copy()
                snap.domain.set_id(-1)
                snap.parent = dom.current_snapshot
                old = None
            dom.snapshots[snap.name] = snap
            if snap.parent is not None and old is None:
                dom.snapshots[snap.parent].children.append(snap.name)
            if not redefine or flags & _CREATE_CURRENT:
                dom.current_snapshot = snap.name
            if not redefine and flags & _CREATE_HALT and dom.active:
                D._stop(self.node, dom, D.SHUTOFF_FROM_SNAPSHOT)
                D.emit(self.node, dom, DomainEventType.STOPPED, D.STOPPED_FROM_SNAPSHOT)
            return snap.name

    @hookimpl
    def virt_snapshot_list(self, uuid: str, flags: int) -> list[str]:
        check_flags(flags, _LIST_ALL, "testDomainListAllSnapshots")
        with self.node.lock:
            dom = self.node.domain(uuid)
            snaps = _topological(dom) if flags & _LIST_TOPOLOGICAL else list(dom.snapshots.values())
            if flags & _LIST_ROOTS:
                snaps = [s for s in snaps if s.parent is None]
            return [s.name for s in snaps if _snap_matches(s, flags)]

    @hookimpl
    def virt_snapshot_get_xml(self, uuid: str, name: str, flags: int) -> str:
        check_flags(flags, 1, "testDomainSnapshotGetXMLDesc")
        with self.node.lock:
            dom = self.node.domain(uuid)
            return format_snapshot(dom.uuid, _snap(dom, name), secure=bool(flags & 1))

    @hookimpl
    def virt_snapshot_current(self, uuid: str, flags: int) -> str:
        check_flags(flags, 0, "testDomainSnapshotCurrent")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.current_snapshot is None:
                raise D.domain_error(ErrorNumber.NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")
            return dom.current_snapshot

    @hookimpl
    def virt_snapshot_get_parent(self, uuid: str, name: str, flags: int) -> str | None:
        check_flags(flags, 0, "testDomainSnapshotGetParent")
        with self.node.lock:
            return _snap(self.node.domain(uuid), name).parent

    @hookimpl
    def virt_snapshot_delete(self, uuid: str, name: str, flags: int) -> None:
        check_flags(flags, _DELETE_CHILDREN | _DELETE_METADATA_ONLY | _DELETE_CHILDREN_ONLY,
                      "testDomainSnapshotDelete")
        with self.node.lock:
            dom = self.node.domain(uuid)
            snap = _snap(dom, name)
            if flags & (_DELETE_CHILDREN | _DELETE_CHILDREN_ONLY):
                for child in _descendants(dom, snap):
                    if dom.current_snapshot == child.name:
                        dom.current_snapshot = snap.name
                    del dom.snapshots[child.name]
                snap.children = []
            else:
                parent = dom.snapshots.get(snap.parent) if snap.parent else None
                for child_name in snap.children:
                    child = dom.snapshots[child_name]
                    child.parent = snap.parent
                    if parent is not None:
                        parent.children.append(child_name)
                snap.children = []
            if not flags & _DELETE_CHILDREN_ONLY:
                if snap.parent in dom.snapshots:
                    dom.snapshots[snap.parent].children.remove(snap.name)
                if dom.current_snapshot == snap.name:
                    dom.current_snapshot = snap.parent if snap.parent in dom.snapshots else None
                del dom.snapshots[snap.name]

    @hookimpl
    def virt_snapshot_revert(self, uuid: str, name: str, flags: int) -> None:
        check_flags(flags, _REVERT_RUNNING | _REVERT_PAUSED | _REVERT_FORCE, "testDomainRevertToSnapshot")
        node = self.node
        with node.lock:
            dom = self.node.domain(uuid)
            snap = _snap(dom, name)
            run_state = snap.state in ("running", "paused")
            if not dom.persistent and not run_state and not flags & (_REVERT_RUNNING | _REVERT_PAUSED):
                raise D.domain_error(ErrorNumber.OPERATION_INVALID,
                                     "transient domain needs to request run or pause to revert to inactive snapshot")
            if not flags & _REVERT_FORCE:
                if snap.domain is None:
                    raise D.domain_error(ErrorNumber.SNAPSHOT_REVERT_RISKY,
                                         f"snapshot '{snap.name}' lacks domain '{dom.name}' rollback info")
                if dom.active and not run_state and flags & (_REVERT_RUNNING | _REVERT_PAUSED):
                    raise D.domain_error(ErrorNumber.SNAPSHOT_REVERT_RISKY,
                                         "must respawn guest to start inactive snapshot")
            dom.current_snapshot = None
            config = snap.domain.copy() if snap.domain is not None else dom.definition.copy()
            want_paused = not flags & _REVERT_RUNNING and (snap.state == "paused" or bool(flags & _REVERT_PAUSED))
            if run_state:
                if dom.active:
                    was_running = dom.state == DomainState.RUNNING
                    if was_running:
                        dom.state, dom.reason = DomainState.PAUSED, D.PAUSED_FROM_SNAPSHOT
                    config.set_id(dom.id)
                    dom.live_def = config
                    if want_paused:
                        dom.state, dom.reason = DomainState.PAUSED, D.PAUSED_FROM_SNAPSHOT
                        if was_running:
                            D.emit(node, dom, DomainEventType.SUSPENDED, D.SUSPENDED_FROM_SNAPSHOT)
                    else:
                        dom.state, dom.reason = DomainState.RUNNING, D.RUNNING_FROM_SNAPSHOT
                        if not was_running:
                            D.emit(node, dom, DomainEventType.RESUMED, D.RESUMED_FROM_SNAPSHOT)
                else:
                    self._assign(dom, config)
                    D._start(node, dom, D.RUNNING_FROM_SNAPSHOT)
                    D.emit(node, dom, DomainEventType.STARTED, D.STARTED_FROM_SNAPSHOT)
                    if want_paused:
                        dom.state, dom.reason = DomainState.PAUSED, D.PAUSED_FROM_SNAPSHOT
                        D.emit(node, dom, DomainEventType.SUSPENDED, D.SUSPENDED_FROM_SNAPSHOT)
            else:
                if dom.active:
                    D._stop(node, dom, D.SHUTOFF_FROM_SNAPSHOT)
                    D.emit(node, dom, DomainEventType.STOPPED, D.STOPPED_FROM_SNAPSHOT)
                if dom.uuid not in node.domains:
                    return
                self._assign(dom, config)
                if flags & (_REVERT_RUNNING | _REVERT_PAUSED):
                    D._start(node, dom, D.RUNNING_FROM_SNAPSHOT)
                    D.emit(node, dom, DomainEventType.STARTED, D.STARTED_FROM_SNAPSHOT)
                    if flags & _REVERT_PAUSED:
                        dom.state, dom.reason = DomainState.PAUSED, D.PAUSED_FROM_SNAPSHOT
                        D.emit(node, dom, DomainEventType.SUSPENDED, D.SUSPENDED_FROM_SNAPSHOT)
            dom.current_snapshot = snap.name

    @staticmethod
    def _assign(dom: DomainObj, config: DomainDocument) -> None:
        """virDomainObjAssignDef for an inactive domain: the config becomes its definition."""
        config.set_id(-1)
        if dom.persistent:
            dom.persistent_def = config
        else:
            dom.live_def = config


def _snap_matches(snap: SnapshotObj, flags: int) -> bool:
    if flags & (_LIST_LEAVES | _LIST_NO_LEAVES) and not (
        (flags & _LIST_LEAVES and not snap.children) or (flags & _LIST_NO_LEAVES and snap.children)
    ):
        return False
    if flags & _LIST_NO_METADATA and not flags & _LIST_METADATA:
        return False
    if flags & (_LIST_INACTIVE | _LIST_ACTIVE | _LIST_DISK_ONLY):
        disk_only = snap.state == "disk-snapshot"
        if not (
            (flags & _LIST_INACTIVE and snap.state == "shutoff")
            or (flags & _LIST_ACTIVE and snap.active)
            or (flags & _LIST_DISK_ONLY and disk_only)
        ):
            return False
    return not (flags & (_LIST_INTERNAL | _LIST_EXTERNAL)) or bool(
        (flags & _LIST_INTERNAL and not snap.external) or (flags & _LIST_EXTERNAL and snap.external))
