"""Network hooks of the test driver: libvirt's test-driver network objects, in memory.

A network has a definition (what ``XMLDesc`` shows), and while it runs with a pending
persistent one, the config to apply when it stops (``new_def``).  Lookups go through two
dicts on the node (by UUID and name -> UUID), so no call scans the networks.
"""

from __future__ import annotations

from typing import Any

import attrs

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import NetworkEvent, NetworkEventType, NetworkRef
from virt.drivers.test._state import NodeState
from virt.xml._base import Element
from virt.xml.network import NetworkDocument

__all__ = ["NetworkObj", "NetworkOps", "load_from_node", "unsupported_flags"]

# Errors the driver itself raises come from libvirt's test driver (VIR_FROM_TEST); the
# document parsers report their own domains.
_D = ErrorDomain.TEST

# virConnectListAllNetworksFlags
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_LIST_ALL = 63
_DEFINE_VALIDATE = 1

# virNetworkUpdate bits
_UPDATE_LIVE, _UPDATE_CONFIG = 1, 2


@attrs.define(eq=False)
class NetworkObj:
    """One network of a test node."""

    uuid: str
    name: str
    definition: NetworkDocument
    new_def: NetworkDocument | None = None  # persistent config saved while running
    active: bool = False
    persistent: bool = True
    autostart: bool = False


def unsupported_flags(flags: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> VirtError:
    """libvirt's ``virCheckFlags`` failure: INVALID_ARG with no code prefix in the message."""
    message = f"unsupported flags (0x{flags:x}) in function {function}"
    return VirtError(ErrorNumber.INVALID_ARG, message, domain=domain, message=message)


def check_flags(flags: int, allowed: int, function: str, domain: ErrorDomain = ErrorDomain.TEST) -> None:
    if flags & ~allowed:
        raise unsupported_flags(flags & ~allowed, function, domain)


def _ref(net: NetworkObj) -> NetworkRef:
    return NetworkRef(net.name, net.uuid)


def _parse(xml: str, validate: bool = False) -> NetworkDocument:
    doc = NetworkDocument.from_string(xml, validate=validate)
    name = doc.name
    if name in (".", ".."):
        raise VirtError(ErrorNumber.XML_ERROR, f"network name '{name}' is not allowed", domain=_D)
    return doc


def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """Add the ``<network>`` children of a node file, running, as libvirt's test driver does."""
    from virt.drivers.test._loader import child_xml

    for elem in root.findall("network"):
        doc = _parse(child_xml(elem, base_dir))
        net = _assign(node, doc, live=False)
        net.active = True


def _assign(node: NodeState, doc: NetworkDocument, *, live: bool, check_live: bool = False) -> NetworkObj:
    """``virNetworkObjAssignDef``: add ``doc`` as a new network or as the new config of the
    network with its UUID; a name/UUID clash is refused."""
    existing: NetworkObj | None = node.networks.get(doc.uuid)
    if existing is not None:
        if existing.name != doc.name:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"network '{existing.name}' is already defined with uuid {doc.uuid}", domain=_D)
        if check_live and existing.active:
            raise VirtError(ErrorNumber.OPERATION_INVALID,
                            f"network is already active as '{existing.name}'", domain=_D)
        if live:
            if existing.persistent and existing.new_def is None:
                existing.new_def = existing.definition
            existing.definition = doc
        else:
            if existing.active:
                existing.new_def = doc
            else:
                existing.definition = doc
                existing.new_def = None
            existing.persistent = True
        return existing
    other = node.network_names.get(doc.name)
    if other is not None:
        raise VirtError(ErrorNumber.OPERATION_FAILED,
                        f"network '{doc.name}' already exists with uuid {other}", domain=_D)
    net = NetworkObj(uuid=doc.uuid, name=doc.name, definition=doc, persistent=not live)
    node.networks[net.uuid] = net
    node.network_names[net.name] = net.uuid
    return net


def _remove(node: NodeState, net: NetworkObj) -> None:
    node.networks.pop(net.uuid, None)
    if node.network_names.get(net.name) == net.uuid:
        del node.network_names[net.name]


def _matches(net: NetworkObj, flags: int) -> bool:
    if flags & (_ACTIVE | _INACTIVE) and not (
        (flags & _ACTIVE and net.active) or (flags & _INACTIVE and not net.active)
    ):
        return False
    if flags & (_PERSISTENT | _TRANSIENT) and not (
        (flags & _PERSISTENT and net.persistent) or (flags & _TRANSIENT and not net.persistent)
    ):
        return False
    return not (flags & (_AUTOSTART | _NO_AUTOSTART) and not (
        (flags & _AUTOSTART and net.autostart) or (flags & _NO_AUTOSTART and not net.autostart)
    ))


class NetworkOps:
    """Implements :mod:`virt.hookspecs.network` on the in-memory node."""

    node: NodeState

    def _net(self, uuid: str) -> NetworkObj:
        net: NetworkObj | None = self.node.networks.get(uuid)
        if net is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching uuid '{uuid}'", domain=_D)
        return net

    def _emit_net(self, net: NetworkObj, event: NetworkEventType) -> None:
        self.node.emit(NetworkEvent(name=net.name, uuid=net.uuid, event=event, detail=0))

    @hookimpl
    def virt_network_define_xml(self, xml: str, flags: int) -> NetworkRef:
        check_flags(flags, _DEFINE_VALIDATE, "testNetworkDefineXMLFlags", _D)
        doc = _parse(xml, validate=bool(flags & _DEFINE_VALIDATE))
        with self.node.lock:
            net = _assign(self.node, doc, live=False)
            self._emit_net(net, NetworkEventType.DEFINED)
            return _ref(net)

    @hookimpl
    def virt_network_create_xml(self, xml: str, flags: int) -> NetworkRef:
        check_flags(flags, 0, "testNetworkCreateXMLFlags", _D)
        doc = _parse(xml)
        with self.node.lock:
            net = _assign(self.node, doc, live=True, check_live=True)
            net.active = True
            self._emit_net(net, NetworkEventType.STARTED)
            return _ref(net)

    @hookimpl
    def virt_network_undefine(self, uuid: str) -> None:
        with self.node.lock:
            net = self._net(uuid)
            if net.active:
                raise VirtError(ErrorNumber.OPERATION_INVALID, f"Network '{net.name}' is still running", domain=_D)
            self._emit_net(net, NetworkEventType.UNDEFINED)
            _remove(self.node, net)

    @hookimpl
    def virt_network_lookup_by_name(self, name: str) -> NetworkRef:
        with self.node.lock:
            uuid = self.node.network_names.get(name)
            if uuid is None:
                raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{name}'", domain=_D)
            return _ref(self.node.networks[uuid])

    @hookimpl
    def virt_network_lookup_by_uuid(self, uuid: str) -> NetworkRef:
        with self.node.lock:
            return _ref(self._net(uuid))

    @hookimpl
    def virt_network_list(self, flags: int) -> list[NetworkRef]:
        check_flags(flags, _LIST_ALL, "testConnectListAllNetworks", _D)
        with self.node.lock:
            nets = [n for n in self.node.networks.values() if _matches(n, flags)]
        nets.sort(key=lambda n: n.name)
        return [_ref(n) for n in nets]

    @hookimpl
    def virt_network_create(self, uuid: str) -> None:
        with self.node.lock:
            net = self._net(uuid)
            if net.active:
                raise VirtError(ErrorNumber.OPERATION_INVALID, f"Network '{net.name}' is already running",
                                domain=_D)
            net.active = True
            self._emit_net(net, NetworkEventType.STARTED)

    @hookimpl
    def virt_network_destroy(self, uuid: str) -> None:
        # libvirt's test driver stops the network whatever its state (no "not running" check).
        with self.node.lock:
            net = self._net(uuid)
            net.active = False
            self._emit_net(net, NetworkEventType.STOPPED)
            if not net.persistent:
                _remove(self.node, net)
            elif net.new_def is not None:
                net.definition, net.new_def = net.new_def, None

    @hookimpl
    def virt_network_get_xml(self, uuid: str, flags: int) -> str:
        check_flags(flags, 0, "testNetworkGetXMLDesc", _D)
        with self.node.lock:
            return self._net(uuid).definition.to_string()

    @hookimpl
    def virt_network_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).active

    @hookimpl
    def virt_network_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).persistent

    @hookimpl
    def virt_network_get_autostart(self, uuid: str) -> bool:
        with self.node.lock:
            return self._net(uuid).autostart

    @hookimpl
    def virt_network_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.node.lock:
            self._net(uuid).autostart = bool(autostart)

    @hookimpl
    def virt_network_get_bridge_name(self, uuid: str) -> str:
        with self.node.lock:
            net = self._net(uuid)
            bridge = net.definition.bridge
            if not bridge:
                raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{net.name}' does not have a bridge name.",
                                domain=_D)
            return bridge

    @hookimpl
    def virt_network_update(self, uuid: str, command: int, section: int, parent_index: int, xml: str,
                            flags: int) -> None:
        check_flags(flags, _UPDATE_LIVE | _UPDATE_CONFIG, "testNetworkUpdate", _D)
        update = getattr(NetworkDocument, "update", None)
        if update is None:
            raise VirtError(ErrorNumber.NO_SUPPORT, "virNetworkUpdate", domain=_D)
        with self.node.lock:
            net = self._net(uuid)
            if not flags & (_UPDATE_LIVE | _UPDATE_CONFIG):
                flags |= _UPDATE_LIVE if net.active else _UPDATE_CONFIG
            targets: list[tuple[str, NetworkDocument]] = []
            if flags & _UPDATE_LIVE:
                if not net.active:
                    raise VirtError(ErrorNumber.OPERATION_INVALID, "network is not running", domain=_D)
                targets.append(("definition", net.definition))
            if flags & _UPDATE_CONFIG:
                if not net.persistent:
                    raise VirtError(ErrorNumber.OPERATION_INVALID,
                                    "cannot change persistent config of a transient network", domain=_D)
                if net.active:
                    if net.new_def is None:
                        net.new_def = net.definition.copy()
                    targets.append(("new_def", net.new_def))
                else:
                    targets.append(("definition", net.definition))
            # Change copies first, so a failure leaves the network as it was.
            changed: list[tuple[str, Any]] = []
            for attr_name, doc in targets:
                work: Any = doc.copy()
                work.update(command, section, parent_index, xml)
                changed.append((attr_name, work))
            for attr_name, work in changed:
                setattr(net, attr_name, work)
