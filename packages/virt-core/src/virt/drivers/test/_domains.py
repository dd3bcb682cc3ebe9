"""Domain hooks of the test driver: libvirt's test-driver state machine, in memory."""

from __future__ import annotations

from typing import Any

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEvent, DomainEventType, DomainInfo, DomainRef, DomainState
from virt.drivers.test._state import DomainObj, NodeState
from virt.xml._base import Element
from virt.xml.domain import DomainDocument

__all__ = ["DomainOps", "load_from_node"]

# virConnectListAllDomainsFlags
_LIST_ACTIVE, _LIST_INACTIVE, _LIST_PERSISTENT, _LIST_TRANSIENT = 1, 2, 4, 8
_LIST_RUNNING, _LIST_PAUSED, _LIST_SHUTOFF, _LIST_OTHER = 16, 32, 64, 128
_LIST_MANAGEDSAVE, _LIST_NO_MANAGEDSAVE, _LIST_AUTOSTART, _LIST_NO_AUTOSTART = 256, 512, 1024, 2048

# virDomainXMLFlags
_XML_SECURE, _XML_INACTIVE = 1, 2

# Reasons and event details used here (libvirt's numbering).
_RUNNING_BOOTED, _RUNNING_UNPAUSED = 1, 5
_PAUSED_USER = 1
_SHUTOFF_SHUTDOWN, _SHUTOFF_DESTROYED = 1, 2
_DEFINED_ADDED, _DEFINED_UPDATED = 0, 1
_STARTED_BOOTED = 0
_STOPPED_SHUTDOWN, _STOPPED_DESTROYED = 0, 1
_SUSPENDED_PAUSED, _RESUMED_UNPAUSED = 0, 0


def _ref(dom: DomainObj) -> DomainRef:
    return DomainRef(dom.name, dom.uuid, dom.id)


def _invalid(message: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, message, domain=ErrorDomain.DOM)


def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """Add the ``<domain>`` children of a node file, running, as libvirt's test driver does."""
    from virt.drivers.test._loader import child_xml

    for elem in root.findall("domain"):
        doc = DomainDocument.from_string(child_xml(elem, base_dir))
        dom = DomainObj(uuid=doc.uuid, name=doc.name, persistent_def=doc)
        node.add_domain(dom)
        _start(node, dom, _RUNNING_BOOTED)


def _start(node: NodeState, dom: DomainObj, reason: int) -> None:
    dom.live_def = dom.persistent_def.copy() if dom.persistent_def is not None else dom.live_def
    dom.id = node.next_domain_id
    node.next_domain_id += 1
    dom.live_def.set_id(dom.id)
    dom.state, dom.reason = DomainState.RUNNING, reason


def _stop(node: NodeState, dom: DomainObj, reason: int) -> None:
    dom.state, dom.reason = DomainState.SHUTOFF, reason
    dom.id = -1
    dom.live_def = None
    if not dom.persistent:
        node.remove_domain(dom)


class DomainOps:
    """Implements :mod:`virt.hookspecs.domain` on the in-memory node."""

    node: NodeState

    def _dom(self, uuid: str) -> DomainObj:
        return self.node.domain(uuid)

    def _emit(self, dom: DomainObj, event: DomainEventType, detail: int) -> None:
        self.node.emit(DomainEvent(name=dom.name, uuid=dom.uuid, event=event, detail=detail, id=dom.id))

    def _check_unique(self, doc: DomainDocument) -> DomainObj | None:
        """The existing domain ``doc`` redefines, or None; a name/UUID clash is an error."""
        node = self.node
        same_uuid = node.domains.get(doc.uuid)
        if same_uuid is not None:
            if same_uuid.name != doc.name:
                raise VirtError(ErrorNumber.OPERATION_FAILED,
                                f"domain '{same_uuid.name}' is already defined with uuid {doc.uuid}",
                                domain=ErrorDomain.DOM)
            return same_uuid
        other = node.domain_names.get(doc.name)
        if other is not None:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"domain '{doc.name}' already exists with uuid {other}", domain=ErrorDomain.DOM)
        return None

    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> DomainRef:
        doc = DomainDocument.from_string(xml, validate=bool(flags & 1))
        with self.node.lock:
            existing = self._check_unique(doc)
            if existing is None:
                dom = DomainObj(uuid=doc.uuid, name=doc.name, persistent_def=doc)
                self.node.add_domain(dom)
                detail = _DEFINED_ADDED
            else:
                dom = existing
                dom.persistent_def = doc
                detail = _DEFINED_UPDATED
            self._emit(dom, DomainEventType.DEFINED, detail)
            return _ref(dom)

    @hookimpl
    def virt_domain_create_xml(self, xml: str, flags: int) -> DomainRef:
        doc = DomainDocument.from_string(xml, validate=bool(flags & 16))
        with self.node.lock:
            existing = self._check_unique(doc)
            if existing is not None and existing.active:
                raise _invalid(f"domain '{doc.name}' is already active")
            if existing is None:
                dom = DomainObj(uuid=doc.uuid, name=doc.name)
                self.node.add_domain(dom)
            else:
                dom = existing
            dom.live_def = doc
            _start(self.node, dom, _RUNNING_BOOTED)
            if flags & 1:
                dom.state, dom.reason = DomainState.PAUSED, _PAUSED_USER
            self._emit(dom, DomainEventType.STARTED, _STARTED_BOOTED)
            return _ref(dom)

    @hookimpl
    def virt_domain_undefine(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._dom(uuid)
            if not dom.persistent:
                raise _invalid("cannot undefine transient domain")
            dom.persistent_def = None
            dom.autostart = False
            if not dom.active:
                self.node.remove_domain(dom)
            self._emit(dom, DomainEventType.UNDEFINED, 0)

    @hookimpl
    def virt_domain_lookup_by_name(self, name: str) -> DomainRef:
        with self.node.lock:
            uuid = self.node.domain_names.get(name)
            if uuid is None:
                raise VirtError(ErrorNumber.NO_DOMAIN, f"no domain with matching name '{name}'",
                                domain=ErrorDomain.DOM)
            return _ref(self.node.domains[uuid])

    @hookimpl
    def virt_domain_lookup_by_uuid(self, uuid: str) -> DomainRef:
        with self.node.lock:
            return _ref(self._dom(uuid))

    @hookimpl
    def virt_domain_lookup_by_id(self, id: int) -> DomainRef:
        with self.node.lock:
            for dom in self.node.domains.values():
                if dom.id == id and id >= 0:
                    return _ref(dom)
        raise VirtError(ErrorNumber.NO_DOMAIN, f"no domain with matching id {id}", domain=ErrorDomain.DOM)

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[DomainRef]:
        with self.node.lock:
            doms = list(self.node.domains.values())
        if flags:
            doms = [d for d in doms if _matches(d, flags)]
        doms.sort(key=lambda d: (not d.active, d.id if d.active else 0, d.name))
        return [_ref(d) for d in doms]

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._dom(uuid)
            if dom.active:
                raise _invalid("domain is already running")
            _start(self.node, dom, _RUNNING_BOOTED)
            self._emit(dom, DomainEventType.STARTED, _STARTED_BOOTED)

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._require_active(uuid)
            _stop(self.node, dom, _SHUTOFF_DESTROYED)
            self._emit(dom, DomainEventType.STOPPED, _STOPPED_DESTROYED)

    @hookimpl
    def virt_domain_shutdown(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._require_active(uuid)
            _stop(self.node, dom, _SHUTOFF_SHUTDOWN)
            self._emit(dom, DomainEventType.STOPPED, _STOPPED_SHUTDOWN)

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        with self.node.lock:
            dom = self._require_active(uuid)
            if dom.state == DomainState.PAUSED:
                raise _invalid(f"domain '{dom.name}' is already paused")
            dom.state, dom.reason = DomainState.PAUSED, _PAUSED_USER
            self._emit(dom, DomainEventType.SUSPENDED, _SUSPENDED_PAUSED)

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        with self.node.lock:
            dom = self._require_active(uuid)
            if dom.state != DomainState.PAUSED:
                raise _invalid(f"domain '{dom.name}' is not paused")
            dom.state, dom.reason = DomainState.RUNNING, _RUNNING_UNPAUSED
            self._emit(dom, DomainEventType.RESUMED, _RESUMED_UNPAUSED)

    def _require_active(self, uuid: str) -> DomainObj:
        dom = self._dom(uuid)
        if not dom.active:
            raise _invalid("domain is not running")
        return dom

    @hookimpl
    def virt_domain_get_info(self, uuid: str) -> DomainInfo:
        with self.node.lock:
            dom = self._dom(uuid)
            doc = dom.definition
            return DomainInfo(state=dom.state, max_memory=doc.memory_kib, memory=doc.current_memory_kib,
                              nr_virt_cpu=doc.current_vcpus, cpu_time=0)

    @hookimpl
    def virt_domain_get_state(self, uuid: str, flags: int) -> tuple[int, int]:
        with self.node.lock:
            dom = self._dom(uuid)
            return int(dom.state), dom.reason

    @hookimpl
    def virt_domain_get_xml(self, uuid: str, flags: int) -> str:
        with self.node.lock:
            dom = self._dom(uuid)
            doc: Any = dom.persistent_def if (flags & _XML_INACTIVE and dom.persistent) else dom.definition
            return str(doc.to_string(inactive=bool(flags & _XML_INACTIVE), secure=bool(flags & _XML_SECURE)))

    @hookimpl
    def virt_domain_get_os_type(self, uuid: str) -> str:
        with self.node.lock:
            return str(self._dom(uuid).definition.os_type)

    @hookimpl
    def virt_domain_get_id(self, uuid: str) -> int:
        with self.node.lock:
            return self._dom(uuid).id

    @hookimpl
    def virt_domain_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self._dom(uuid).active

    @hookimpl
    def virt_domain_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self._dom(uuid).persistent

    @hookimpl
    def virt_domain_get_autostart(self, uuid: str) -> bool:
        with self.node.lock:
            return self._dom(uuid).autostart

    @hookimpl
    def virt_domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.node.lock:
            dom = self._dom(uuid)
            if not dom.persistent:
                raise _invalid("cannot set autostart for transient domain")
            dom.autostart = autostart


def _matches(dom: DomainObj, flags: int) -> bool:
    if flags & (_LIST_ACTIVE | _LIST_INACTIVE) and not (
        (flags & _LIST_ACTIVE and dom.active) or (flags & _LIST_INACTIVE and not dom.active)
    ):
        return False
    if flags & (_LIST_PERSISTENT | _LIST_TRANSIENT) and not (
        (flags & _LIST_PERSISTENT and dom.persistent) or (flags & _LIST_TRANSIENT and not dom.persistent)
    ):
        return False
    if flags & (_LIST_RUNNING | _LIST_PAUSED | _LIST_SHUTOFF | _LIST_OTHER):
        state = dom.state
        if not (
            (flags & _LIST_RUNNING and state == DomainState.RUNNING)
            or (flags & _LIST_PAUSED and state == DomainState.PAUSED)
            or (flags & _LIST_SHUTOFF and state == DomainState.SHUTOFF)
            or (flags & _LIST_OTHER and state not in (DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTOFF))
        ):
            return False
    if flags & (_LIST_MANAGEDSAVE | _LIST_NO_MANAGEDSAVE) and not (
        (flags & _LIST_MANAGEDSAVE and dom.managed_save) or (flags & _LIST_NO_MANAGEDSAVE and not dom.managed_save)
    ):
        return False
    if flags & (_LIST_AUTOSTART | _LIST_NO_AUTOSTART) and not (
        (flags & _LIST_AUTOSTART and dom.autostart) or (flags & _LIST_NO_AUTOSTART and not dom.autostart)
    ):
        return False
    return True
