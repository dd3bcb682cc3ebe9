"""The example driver's connection object: a handful of hooks over an in-memory node.

Every connection to the same URI path shares one node for the life of the process, so a
second connection (a read-only one, say) sees what the first defined.  Domains do not run
anything: starting one only changes its state.
"""

from __future__ import annotations

import socket
import threading
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from virt import DomainEvent, DomainEventType, DomainInfo, DomainRef, DomainState, ErrorDomain, ErrorNumber, VirtError
from virt.plugin import OpenRequest, hookimpl

__all__ = ["ExampleConnection"]

# libvirt's numbers for the flags, state reasons and event details used here.
LIST_ACTIVE, LIST_INACTIVE = 1, 2
XML_INACTIVE = 2
RUNNING_BOOTED, RUNNING_UNPAUSED, PAUSED_USER, SHUTOFF_DESTROYED = 1, 5, 1, 2
DEFINED_ADDED, DEFINED_UPDATED, STOPPED_DESTROYED = 0, 1, 1
MAX_XML = 1 << 20
_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


@dataclass(eq=False)
class _Domain:
    name: str
    uuid: str
    config: ET.Element | None  # the persistent definition; None for a transient domain
    live: ET.Element | None = None  # the running definition
    state: DomainState = DomainState.SHUTOFF
    reason: int = 0
    id: int = -1

    @property
    def definition(self) -> ET.Element:
        element = self.live if self.live is not None else self.config
        assert element is not None
        return element


@dataclass(eq=False)
class _Node:
    lock: threading.RLock = field(default_factory=threading.RLock)
    domains: dict[str, _Domain] = field(default_factory=dict)  # by UUID
    next_id: int = 1
    listeners: list[Any] = field(default_factory=list)  # hook relays of open connections


_nodes: dict[str, _Node] = {}
_nodes_lock = threading.Lock()


def _error(code: ErrorNumber, detail: str) -> VirtError:
    return VirtError(code, detail, domain=ErrorDomain.DOM)


def _parse(xml: str) -> ET.Element:
    if len(xml) > MAX_XML or "<!ENTITY" in xml or "<!DOCTYPE" in xml:
        raise VirtError(ErrorNumber.XML_ERROR, "domain XML is too large or declares entities", domain=ErrorDomain.DOM)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise VirtError(ErrorNumber.XML_ERROR, f"malformed domain XML: {exc}", domain=ErrorDomain.DOM) from None
    if root.tag != "domain":
        raise VirtError(ErrorNumber.XML_ERROR, f"unexpected root element <{root.tag}>, expecting <domain>",
                        domain=ErrorDomain.DOM)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise VirtError(ErrorNumber.XML_ERROR, "missing domain name", domain=ErrorDomain.DOM)
    text = (root.findtext("uuid") or "").strip()
    try:
        uuid = str(uuidlib.UUID(text)) if text else str(uuidlib.uuid4())
    except ValueError:
        raise VirtError(ErrorNumber.XML_ERROR, f"malformed uuid element '{text}'", domain=ErrorDomain.DOM) from None
    uuid_elem = root.find("uuid")
    if uuid_elem is None:
        uuid_elem = ET.SubElement(root, "uuid")
    uuid_elem.text = uuid
    _kib(root, "memory")  # reject a bad size now rather than at the first info()
    root.attrib.pop("id", None)
    return root


def _kib(root: ET.Element, tag: str, default: int = 0) -> int:
    elem = root.find(tag)
    if elem is None or not (elem.text or "").strip():
        return default
    unit = _UNITS.get(elem.get("unit", "KiB").lower())
    text = (elem.text or "").strip()
    if unit is None or not text.isdigit():
        raise VirtError(ErrorNumber.XML_ERROR, f"invalid <{tag}> size '{text}'", domain=ErrorDomain.DOM)
    return int(text) * unit // 1024


def _ref(dom: _Domain) -> DomainRef:
    return DomainRef(dom.name, dom.uuid, dom.id)


class ExampleConnection:
    """One connection to an ``example:///PATH`` node."""

    def __init__(self, uri: str, node: _Node, hook: Any) -> None:
        self.uri = uri
        self.node = node
        self.hook = hook
        with node.lock:
            node.listeners.append(hook)

    @classmethod
    def open(cls, request: OpenRequest) -> ExampleConnection:
        path = request.uri.path or "/"
        with _nodes_lock:
            node = _nodes.setdefault(path, _Node())
        return cls(f"example://{path}", node, request.hook)

    # -- helpers ------------------------------------------------------------------------

    def _get(self, uuid: str) -> _Domain:
        dom = self.node.domains.get(uuid)
        if dom is None:
            raise _error(ErrorNumber.NO_DOMAIN, f"no domain with matching uuid '{uuid}'")
        return dom

    def _running(self, uuid: str) -> _Domain:
        dom = self._get(uuid)
        if dom.id < 0:
            raise _error(ErrorNumber.OPERATION_INVALID, f"domain '{dom.name}' is not running")
        return dom

    def _emit(self, dom: _Domain, event: DomainEventType, detail: int = 0) -> None:
        record = DomainEvent(name=dom.name, uuid=dom.uuid, event=event, detail=detail, id=dom.id)
        for relay in list(self.node.listeners):
            relay.virt_event_domain(event=record)

    # -- connection ---------------------------------------------------------------------

    @hookimpl
    def virt_connect_close(self) -> None:
        with self.node.lock:
            if self.hook in self.node.listeners:
                self.node.listeners.remove(self.hook)

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "EXAMPLE"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        return 1000  # 0.1.0

    @hookimpl
    def virt_connect_get_uri(self) -> str:
        return self.uri

    @hookimpl
    def virt_connect_get_hostname(self) -> str:
        return socket.gethostname()

    # -- define and look up -------------------------------------------------------------

    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> DomainRef:
        root = _parse(xml)
        name, uuid = (root.findtext("name") or "").strip(), (root.findtext("uuid") or "").strip()
        with self.node.lock:
            for other in self.node.domains.values():
                if other.name == name and other.uuid != uuid:
                    raise _error(ErrorNumber.OPERATION_FAILED, f"domain '{name}' already exists with uuid {other.uuid}")
            dom = self.node.domains.get(uuid)
            if dom is not None and dom.name != name:
                raise _error(ErrorNumber.OPERATION_FAILED, f"domain '{dom.name}' is already defined with uuid {uuid}")
            detail = DEFINED_UPDATED if dom is not None else DEFINED_ADDED
            if dom is None:
                dom = self.node.domains[uuid] = _Domain(name, uuid, root)
            dom.config = root
            self._emit(dom, DomainEventType.DEFINED, detail)
            return _ref(dom)

    @hookimpl
    def virt_domain_undefine(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._get(uuid)
            if dom.config is None:
                raise _error(ErrorNumber.OPERATION_INVALID, "cannot undefine transient domain")
            dom.config = None
            if dom.id < 0:
                del self.node.domains[uuid]
            self._emit(dom, DomainEventType.UNDEFINED)

    @hookimpl
    def virt_domain_lookup_by_name(self, name: str) -> DomainRef:
        with self.node.lock:
            for dom in self.node.domains.values():
                if dom.name == name:
                    return _ref(dom)
        raise _error(ErrorNumber.NO_DOMAIN, f"no domain with matching name '{name}'")

    @hookimpl
    def virt_domain_lookup_by_uuid(self, uuid: str) -> DomainRef:
        with self.node.lock:
            return _ref(self._get(uuid))

    @hookimpl
    def virt_domain_lookup_by_id(self, id: int) -> DomainRef:
        with self.node.lock:
            for dom in self.node.domains.values():
                if dom.id == id >= 0:
                    return _ref(dom)
        raise _error(ErrorNumber.NO_DOMAIN, f"no domain with matching id {id}")

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[DomainRef]:
        with self.node.lock:
            doms = list(self.node.domains.values())
        if flags & (LIST_ACTIVE | LIST_INACTIVE):
            doms = [d for d in doms if (d.id >= 0 and flags & LIST_ACTIVE) or (d.id < 0 and flags & LIST_INACTIVE)]
        doms.sort(key=lambda d: (d.id < 0, d.id, d.name))
        return [_ref(d) for d in doms]

    # -- lifecycle ----------------------------------------------------------------------

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._get(uuid)
            if dom.id >= 0:
                raise _error(ErrorNumber.OPERATION_INVALID, "domain is already running")
            dom.live = dom.config
            dom.id, self.node.next_id = self.node.next_id, self.node.next_id + 1
            dom.state, dom.reason = DomainState.RUNNING, RUNNING_BOOTED
            self._emit(dom, DomainEventType.STARTED)

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        with self.node.lock:
            dom = self._running(uuid)
            dom.live, dom.id = None, -1
            dom.state, dom.reason = DomainState.SHUTOFF, SHUTOFF_DESTROYED
            if dom.config is None:
                del self.node.domains[uuid]
            self._emit(dom, DomainEventType.STOPPED, STOPPED_DESTROYED)

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        with self.node.lock:
            dom = self._running(uuid)
            if dom.state == DomainState.PAUSED:
                raise _error(ErrorNumber.OPERATION_INVALID, f"domain '{dom.name}' is already paused")
            dom.state, dom.reason = DomainState.PAUSED, PAUSED_USER
            self._emit(dom, DomainEventType.SUSPENDED)

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        with self.node.lock:
            dom = self._running(uuid)
            if dom.state != DomainState.PAUSED:
                raise _error(ErrorNumber.OPERATION_INVALID, f"domain '{dom.name}' is not paused")
            dom.state, dom.reason = DomainState.RUNNING, RUNNING_UNPAUSED
            self._emit(dom, DomainEventType.RESUMED)

    # -- state ----------------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_info(self, uuid: str) -> DomainInfo:
        with self.node.lock:
            dom = self._get(uuid)
            root = dom.definition
            memory = _kib(root, "memory")
            vcpus = int((root.findtext("vcpu") or "1").strip())
            return DomainInfo(state=dom.state, max_memory=memory, memory=_kib(root, "currentMemory", memory),
                              nr_virt_cpu=vcpus, cpu_time=0)

    @hookimpl
    def virt_domain_get_state(self, uuid: str, flags: int) -> tuple[int, int]:
        with self.node.lock:
            dom = self._get(uuid)
            return int(dom.state), dom.reason

    @hookimpl
    def virt_domain_get_id(self, uuid: str) -> int:
        with self.node.lock:
            return self._get(uuid).id

    @hookimpl
    def virt_domain_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self._get(uuid).id >= 0

    @hookimpl
    def virt_domain_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self._get(uuid).config is not None

    @hookimpl
    def virt_domain_get_xml(self, uuid: str, flags: int) -> str:
        with self.node.lock:
            dom = self._get(uuid)
            inactive = bool(flags & XML_INACTIVE) and dom.config is not None
            root = dom.config if inactive or dom.live is None else dom.live
            assert root is not None
            if dom.id >= 0 and not inactive:  # a running domain's XML carries its id first
                live = ET.Element(root.tag, {"id": str(dom.id), **root.attrib})
                live.text, live[:] = root.text, list(root)
                root = live
            return ET.tostring(root, encoding="unicode") + "\n"
