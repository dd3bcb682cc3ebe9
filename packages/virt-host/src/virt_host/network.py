"""Virtual networks for local drivers: the ``host-network`` provider, and taps for guests.

Networks with ``<forward mode='nat'|'route'|'open'>`` or none (isolated) are a Linux bridge
with the network's addresses, a dnsmasq for DHCP and DNS (:mod:`virt_host._dnsmasq`) and an
nftables table of their own (:mod:`virt_host._nft`); ``<forward mode='bridge'>`` with a
``<bridge name=...>`` names a host bridge made by someone else (starting it makes nothing).
Link work goes through netlink (:mod:`virt_host._netlink`).

State is in files (:mod:`virt_host._paths`): the persistent config ``<config>/NAME.xml``
(autostart: a symlink in ``<config>/autostart/``), and for a running network the live
definition ``<run>/NAME.xml`` plus ``<run>/NAME.state.json``, which records what starting it
made (the bridge, the nftables table, dnsmasq's pid, the network namespace).  A network runs
when its live file exists and, for one with a bridge of its own, that bridge exists in this
process's network namespace (as libvirt's ``networkUpdateState`` decides).  So every process
of a root sees the same networks in the same states; changes are serialised by a lock file.

The state file is written *before* anything is made, so a start that fails half-way, or a
process that died while starting, leaves a record of what to remove: a failed start removes
it at once, and the next start of the same network removes what a dead one left.

For hypervisor drivers: :func:`plug_tap` / :func:`unplug_tap` give a guest's
``<interface type='network'|'bridge'>`` its tap on the bridge.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import random
import socket
import threading
from pathlib import Path
from typing import Any

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import NetworkDHCPLease, NetworkEvent, NetworkEventType, NetworkRef
from virt._uri import URI, parse_uri
from virt.plugin import OpenRequest
from virt.xml.network import NetworkDocument

from virt_host._files import atomic_write
from virt_host._paths import NetworkLayout, network_layout_for
from virt_host._root import HostProvider, HostRoot, root_of

__all__ = ["NetworkProvider", "NetworkRoot", "Tap", "network_root_for", "plug_tap", "plug_veth", "unplug_tap"]

_D = ErrorDomain.NETWORK
_log = logging.getLogger("virt.host.network")

# virConnectListAllNetworksFlags
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_LIST_ALL = 63
_DEFINE_VALIDATE = 1
_CREATE_VALIDATE = 1
_XML_INACTIVE = 1
_UPDATE_LIVE, _UPDATE_CONFIG = 1, 2
# virNetworkUpdateSection values whose live change dnsmasq picks up on SIGHUP, or by a restart
_SECTION_RELOAD = frozenset({4, 10})  # ip-dhcp-host, dns-host
_SECTION_RESTART = frozenset({5, 11, 12})  # ip-dhcp-range, dns-txt, dns-srv

_L3_MODES = (None, "nat", "route", "open")
_BRIDGE_TEMPLATE = "virbr%d"
_MAX_BRIDGE_ID = 256


def _invalid(message: str) -> VirtError:
    return VirtError(ErrorNumber.OPERATION_INVALID, message, domain=_D)


def _check_flags(flags: int, allowed: int, function: str) -> None:
    if flags & ~allowed:
        raise VirtError(ErrorNumber.INVALID_ARG, f"{function}: unsupported flags (0x{flags & ~allowed:x})",
                        domain=_D)


def _write_run(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a runtime file whole (temporary file + rename), without fsync: runtime state need
    not outlive the machine (a reboot ends every network anyway), only the writing process, and
    the page cache does that.  (``/run`` is a tmpfs where fsync costs nothing; an embed root on
    a disk pays ~10 ms a sync.)"""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _own_netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


@attrs.define(eq=False)
class _Net:
    """One network as its files say."""

    name: str
    uuid: str
    config: NetworkDocument | None = None
    live: NetworkDocument | None = None
    autostart: bool = False
    state: dict[str, Any] = attrs.field(factory=dict)

    @property
    def active(self) -> bool:
        return self.live is not None

    @property
    def persistent(self) -> bool:
        return self.config is not None

    @property
    def definition(self) -> NetworkDocument:
        doc = self.live if self.live is not None else self.config
        assert doc is not None
        return doc

    @property
    def ref(self) -> NetworkRef:
        return NetworkRef(self.name, self.uuid)


def _has_own_bridge(doc: NetworkDocument) -> bool:
    return doc.forward_mode in _L3_MODES


class NetworkRoot(HostRoot):
    """The networks of one root, shared by every connection to it in this process (and,
    through its files, with every other process)."""

    KIND = "network"
    layout: NetworkLayout

    def __init__(self, layout: NetworkLayout) -> None:
        super().__init__(layout)
        self._docs: dict[Path, tuple[tuple[int, int, int], NetworkDocument]] = {}

    # -- reading the files --------------------------------------------------------------------

    def _read(self, path: Path) -> NetworkDocument | None:
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._docs.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            doc = NetworkDocument.from_string(path.read_bytes())
        except (OSError, VirtError) as exc:
            _log.warning("ignoring network file %s: %s", path, exc)
            return None
        self._docs[path] = (key, doc)
        return doc

    def _scan(self, directory: Path) -> dict[str, NetworkDocument]:
        try:
            names = os.listdir(directory)
        except OSError:
            return {}
        found: dict[str, NetworkDocument] = {}
        for entry in names:
            if not entry.endswith(".xml") or entry.startswith("."):
                continue
            doc = self._read(directory / entry)
            if doc is not None and doc.name == entry[:-4]:
                found[doc.name] = doc
        return found

    def read_state(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads(self.layout.run_file(name, "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def networks(self) -> dict[str, _Net]:
        """Every network, by name (fresh from the files)."""
        from virt_host import _netlink

        out: dict[str, _Net] = {}
        for name, doc in self._scan(self.layout.config).items():
            out[name] = _Net(name, doc.uuid, config=doc, autostart=os.path.lexists(self.layout.autostart_link(name)))
        for name, doc in self._scan(self.layout.run).items():
            state = self.read_state(name)
            bridge = state.get("bridge")
            if state.get("made_bridge") and not (isinstance(bridge, str) and _netlink.exists(bridge)):
                continue  # its bridge is gone (a reboot, another namespace, removed by hand): not running
            net = out.get(name)
            if net is None:
                out[name] = _Net(name, doc.uuid, live=doc, state=state)
            elif net.uuid == doc.uuid:
                net.live, net.state = doc, state
        return out

    def by_uuid(self, uuid: str) -> _Net:
        for net in self.networks().values():
            if net.uuid == uuid:
                return net
        raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching uuid '{uuid}'", domain=_D)

    def by_name(self, name: str) -> _Net:
        net = self.networks().get(name)
        if net is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{name}'", domain=_D)
        return net

    # -- writing them -------------------------------------------------------------------------

    def save_config(self, doc: NetworkDocument) -> None:
        path = self.layout.config_file(doc.name)
        try:
            atomic_write(path, doc.to_string(inactive=True))
        except OSError as exc:
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"cannot save config file '{path}': "
                            f"{exc.strerror or exc}", domain=_D) from None

    def save_live(self, doc: NetworkDocument) -> None:
        _write_run(self.layout.live_file(doc.name), doc.to_string())

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        _write_run(self.layout.run_file(name, "state.json"), json.dumps(state, sort_keys=True) + "\n")

    def remove_run_files(self, name: str, *, leases: bool) -> None:
        suffixes = ["xml", "state.json", "conf", "hostsfile", "addnhosts", "pid"] + (["leases"] if leases else [])
        for suffix in suffixes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.layout.run_file(name, suffix))
        import shutil

        shutil.rmtree(self.layout.run_file(name, "ports"), ignore_errors=True)

    def add_port(self, name: str, tap: str, record: dict[str, Any]) -> None:
        """Note a guest's tap on the network (``<run>/NAME.ports/TAP``)."""
        _write_run(self.layout.run_file(name, "ports") / tap, json.dumps(record, sort_keys=True) + "\n")

    def connections(self, name: str) -> int:
        """The taps of guests on the network that still exist (``connections`` in its live XML);
        notes of taps that are gone are removed."""
        directory = self.layout.run_file(name, "ports")
        try:
            entries = os.listdir(directory)
        except OSError:
            return 0
        count = 0
        for tap in entries:
            if tap.startswith("."):
                continue
            try:
                index = json.loads((directory / tap).read_text(encoding="utf-8")).get("ifindex")
                alive = socket.if_nametoindex(tap) == index
            except (OSError, ValueError, AttributeError):
                alive = False
            if alive:
                count += 1
            else:
                with contextlib.suppress(OSError):
                    os.unlink(directory / tap)
        return count

    # -- events -------------------------------------------------------------------------------

    def emit(self, net: _Net | NetworkDocument, event: NetworkEventType) -> None:
        """Tell every open connection of this root in this process."""
        self._emit("virt_event_network", lambda: NetworkEvent(name=net.name, uuid=net.uuid, event=event, detail=0))

    # -- autostart ----------------------------------------------------------------------------

    def _boot(self) -> str:
        # per boot of the host *and* network namespace: a new namespace has no bridges
        return f"{super()._boot()} {_own_netns()}"

    def _autostart(self) -> None:
        for net in self.networks().values():
            if net.autostart and not net.active and net.config is not None:
                try:
                    _start(self, net.config)
                except VirtError as exc:
                    _log.warning("could not autostart network %s: %s", net.name, exc)


def network_root_for(layout: NetworkLayout) -> NetworkRoot:
    """The process's one :class:`NetworkRoot` of ``layout``."""
    return root_of(NetworkRoot, layout)


# -- definitions: bridge names and MAC addresses ----------------------------------------------


def _random_mac() -> str:
    tail = [random.randrange(256) for _ in range(3)]
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


def _fill_in(root: NetworkRoot, doc: NetworkDocument) -> None:
    """``networkValidate``'s bridge name (the first free ``virbrN`` for a network that names
    none, or a ``%d`` template) and bridge MAC address, for networks with their own bridge."""
    from virt_host import _netlink

    if not _has_own_bridge(doc):
        return
    others = [n for n in root.networks().values() if n.uuid != doc.uuid]
    used = {d.bridge for n in others for d in (n.config, n.live) if d is not None and d.bridge}
    bridge = doc.bridge
    if bridge and "%d" not in bridge:
        if bridge in used:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"bridge name '{bridge}' already in use.", domain=_D)
    else:
        template = bridge or _BRIDGE_TEMPLATE
        for i in range(_MAX_BRIDGE_ID):
            candidate = template.replace("%d", str(i), 1)
            if candidate not in used and not _netlink.exists(candidate):
                doc.bridge = candidate
                break
        else:
            raise VirtError(ErrorNumber.INTERNAL_ERROR,
                            f"Bridge generation exceeded max id {_MAX_BRIDGE_ID}", domain=_D)
    if len(doc.bridge or "") >= 16:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"bridge name '{doc.bridge}' is too long", domain=_D)
    if doc.mac is None:
        doc.mac = _random_mac()


def _assign(nets: dict[str, _Net], doc: NetworkDocument, *, live: bool) -> _Net | None:
    """``virNetworkObjAssignDef``'s checks: the network of that name and UUID (None: a new
    one); another network's name or UUID is an error, and so is a live definition for a
    running network."""
    existing = nets.get(doc.name)
    for net in nets.values():
        if net.uuid == doc.uuid and net.name != doc.name:
            raise VirtError(ErrorNumber.OPERATION_FAILED,
                            f"network '{net.name}' is already defined with uuid {doc.uuid}", domain=_D)
    if existing is not None and existing.uuid != doc.uuid:
        raise VirtError(ErrorNumber.OPERATION_FAILED,
                        f"network '{doc.name}' already exists with uuid {existing.uuid}", domain=_D)
    if existing is not None and live and existing.active:
        raise _invalid(f"network is already active as '{existing.name}'")
    return existing


# -- starting and stopping --------------------------------------------------------------------


def _files(layout: NetworkLayout, name: str) -> Any:
    from virt_host._dnsmasq import DnsmasqFiles

    return DnsmasqFiles(conf=layout.run_file(name, "conf"), hostsfile=layout.run_file(name, "hostsfile"),
                        addnhosts=layout.run_file(name, "addnhosts"), pidfile=layout.run_file(name, "pid"),
                        leases=layout.run_file(name, "leases"))


def _sysctl(path: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{path}", "w", encoding="ascii") as fh:
            fh.write(value)
    except OSError as exc:
        raise VirtError(ErrorNumber.SYSTEM_ERROR, f"cannot write to '/proc/sys/{path}': {exc.strerror}",
                        domain=_D) from None


def _undo(root: NetworkRoot, name: str, state: dict[str, Any]) -> None:
    """Remove what ``state`` says a start of network ``name`` made (in this namespace)."""
    from virt_host import _dnsmasq, _netlink, _nft

    if state.get("netns") and state.get("netns") != _own_netns():
        _log.warning("network %s was started in another network namespace (%s): not touching it", name,
                     state.get("netns"))
        return
    files = _files(root.layout, name)
    pid = state.get("dnsmasq_pid") or _dnsmasq.read_pid(files.pidfile)
    _dnsmasq.stop(pid if isinstance(pid, int) else None, files.conf)
    table = state.get("table")
    if isinstance(table, str) and table:
        _nft.remove(table)
    bridge = state.get("bridge")
    if state.get("made_bridge") and isinstance(bridge, str) and bridge:
        with _netlink.ipr() as sock:
            _netlink.delete_link(sock, bridge)


def _start(root: NetworkRoot, doc: NetworkDocument) -> dict[str, Any]:
    """Start ``doc``'s network and record it as running; on any failure remove what was made."""
    name = doc.name
    stale = root.read_state(name)
    if stale:  # a start or stop that did not finish (a dead process): finish its cleanup
        _undo(root, name, stale)
        root.remove_run_files(name, leases=False)
    mode = doc.forward_mode
    state: dict[str, Any] = {"netns": _own_netns(), "bridge": doc.bridge, "made_bridge": False, "table": None,
                             "dnsmasq_pid": None}
    if mode == "bridge" and doc.bridge:
        root.save_state(name, state)
        root.save_live(doc)
        return state
    if mode not in _L3_MODES:
        raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED,
                        f"forward mode '{mode}' of network '{name}' is not supported by virt-host", domain=_D)
    try:
        _start_virtual(root, doc, state)
        root.save_live(doc)
    except BaseException:
        try:
            _undo(root, name, state)
        except (VirtError, OSError) as exc:  # keep the first error; say what could not be undone
            _log.error("cleaning up the failed start of network %s: %s", name, exc)
        root.remove_run_files(name, leases=False)
        raise
    return state


def _start_virtual(root: NetworkRoot, doc: NetworkDocument, state: dict[str, Any]) -> None:
    """``networkStartNetworkVirtual``: the bridge, its addresses and routes, the firewall
    table, dnsmasq.  ``state`` records each thing before it is made."""
    from virt_host import _dnsmasq, _netlink, _nft

    name, bridge = doc.name, doc.bridge
    if not bridge:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{name}' does not have a bridge name.", domain=_D)
    ips = doc.ips()
    subnets = [ipaddress.ip_network(f"{ip.address}/{ip.prefix}", strict=False) for ip in ips]
    with _netlink.ipr() as sock:
        user = _netlink.route_collision(sock, subnets)
        if user is not None:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Network is already in use by interface {user}",
                            domain=_D)
        if _netlink.exists(bridge):
            raise VirtError(ErrorNumber.SYSTEM_ERROR, f"error creating bridge interface {bridge}: File exists",
                            domain=_D)
        state["made_bridge"] = True
        root.save_state(name, state)
        br_el = doc.root.find("bridge")
        stp = br_el is None or br_el.get("stp") != "off"
        delay = int(br_el.get("delay") or 0) if br_el is not None else 0
        try:
            _netlink.create_bridge(sock, bridge, mac=doc.mac, stp=stp, delay=delay, mtu=doc.mtu)
        except VirtError:
            state["made_bridge"] = False  # (someone made one of that name since the check: not ours)
            raise
        has_v6 = any(n.version == 6 for n in subnets)
        if has_v6:
            for key, value in (("accept_ra", "0"), ("autoconf", "0")):
                with contextlib.suppress(VirtError):
                    _sysctl(f"net/ipv6/conf/{bridge}/{key}", value)
        elif not doc.ipv6_enabled:
            with contextlib.suppress(VirtError):
                _sysctl(f"net/ipv6/conf/{bridge}/disable_ipv6", "1")
        for ip in ips:
            _netlink.add_address(sock, bridge, ip.address, ip.prefix)
        _netlink.set_up(sock, bridge)
        for route in doc.root.findall("route"):
            address, gateway = route.get("address"), route.get("gateway")
            if not address or not gateway:
                continue
            prefix_s = route.get("prefix")
            if prefix_s:
                prefix = int(prefix_s)
            elif route.get("netmask"):
                prefix = ipaddress.ip_network(f"0.0.0.0/{route.get('netmask')}").prefixlen
            else:
                prefix = 32 if ipaddress.ip_address(address).version == 4 else 128
            metric = int(route.get("metric") or 0) or None
            _netlink.add_route(sock, bridge, address, prefix, gateway, metric)
    if doc.forward_mode in ("nat", "route"):
        if any(n.version == 4 for n in subnets):
            _sysctl("net/ipv4/ip_forward", "1")
        if any(n.version == 6 for n in subnets):
            _sysctl("net/ipv6/conf/all/forwarding", "1")
    table = _nft.table_name(bridge)
    rules = _nft.ruleset(doc, bridge, table)
    if rules is not None:
        state["table"] = table
        root.save_state(name, state)
        _nft.apply(rules, replace=table)  # a leftover of that name goes (no one else uses virt_<bridge>)
    if _dnsmasq.needed(doc):
        _write_dnsmasq_files(root, doc, bridge)
        files = _files(root.layout, name)
        state["dnsmasq_pid"] = _dnsmasq.start(files)
    root.save_state(name, state)


def _write_dnsmasq_files(root: NetworkRoot, doc: NetworkDocument, bridge: str) -> None:
    from virt_host import _dnsmasq

    files = _files(root.layout, doc.name)
    hosts, addn = _dnsmasq.hosts_files(doc)
    _write_run(files.hostsfile, hosts, 0o644)
    _write_run(files.addnhosts, addn, 0o644)
    _write_run(files.conf, _dnsmasq.config(doc, bridge, files), 0o644)


def _stop(root: NetworkRoot, net: _Net) -> None:
    """``networkShutdownNetwork``: remove everything starting made, then its run files."""
    _undo(root, net.name, net.state or root.read_state(net.name))
    root.remove_run_files(net.name, leases=not net.persistent)


# -- the provider -----------------------------------------------------------------------------


def _matches(net: _Net, flags: int) -> bool:
    for on, off, value in ((_ACTIVE, _INACTIVE, net.active), (_PERSISTENT, _TRANSIENT, net.persistent),
                           (_AUTOSTART, _NO_AUTOSTART, net.autostart)):
        if flags & (on | off) and not ((flags & on and value) or (flags & off and not value)):
            return False
    return True


class NetworkProvider(HostProvider):
    """The network operation hooks of one connection (``virt.hookspecs.network``)."""

    root: NetworkRoot

    @classmethod
    def root_for(cls, request: OpenRequest) -> NetworkRoot | None:
        layout = network_layout_for(request.uri)
        return None if layout is None else network_root_for(layout)

    @hookimpl
    def virt_network_define_xml(self, xml: str, flags: int) -> NetworkRef:
        _check_flags(flags, _DEFINE_VALIDATE, "networkDefineXMLFlags")
        doc = NetworkDocument.from_string(xml, validate=bool(flags & _DEFINE_VALIDATE))
        with self.root.lock.held():
            _assign(self.root.networks(), doc, live=False)
            _fill_in(self.root, doc)
            self.root.save_config(doc)
            net = self.root.by_name(doc.name)
        self.root.emit(net, NetworkEventType.DEFINED)
        return net.ref

    @hookimpl
    def virt_network_create_xml(self, xml: str, flags: int) -> NetworkRef:
        _check_flags(flags, _CREATE_VALIDATE, "networkCreateXMLFlags")
        doc = NetworkDocument.from_string(xml, validate=bool(flags & _CREATE_VALIDATE))
        with self.root.lock.held():
            _assign(self.root.networks(), doc, live=True)
            _fill_in(self.root, doc)
            _start(self.root, doc)
            net = self.root.by_name(doc.name)
        self.root.emit(net, NetworkEventType.STARTED)
        return net.ref

    @hookimpl
    def virt_network_undefine(self, uuid: str) -> None:
        with self.root.lock.held():
            net = self.root.by_uuid(uuid)
            if not net.persistent:
                raise _invalid("can't undefine transient network")
            self.root.remove_config(net.name)
            if not net.active:
                self.root.remove_run_files(net.name, leases=True)
        # a running network goes on, transient, until it is destroyed (as libvirt's does)
        self.root.emit(net, NetworkEventType.UNDEFINED)

    @hookimpl
    def virt_network_lookup_by_name(self, name: str) -> NetworkRef:
        return self.root.by_name(name).ref

    @hookimpl
    def virt_network_lookup_by_uuid(self, uuid: str) -> NetworkRef:
        return self.root.by_uuid(uuid).ref

    @hookimpl
    def virt_network_list(self, flags: int) -> list[NetworkRef]:
        _check_flags(flags, _LIST_ALL, "networkConnectListAllNetworks")
        nets = self.root.networks()
        return [nets[name].ref for name in sorted(nets) if _matches(nets[name], flags)]

    @hookimpl
    def virt_network_create(self, uuid: str) -> None:
        with self.root.lock.held():
            net = self.root.by_uuid(uuid)
            if net.active:
                raise _invalid("network is already active")
            _start(self.root, net.definition)
        self.root.emit(net, NetworkEventType.STARTED)

    @hookimpl
    def virt_network_destroy(self, uuid: str) -> None:
        with self.root.lock.held():
            net = self.root.by_uuid(uuid)
            if not net.active:
                raise _invalid(f"network '{net.name}' is not active")
            _stop(self.root, net)
        self.root.emit(net, NetworkEventType.STOPPED)

    @hookimpl
    def virt_network_get_xml(self, uuid: str, flags: int) -> str:
        _check_flags(flags, _XML_INACTIVE, "networkGetXMLDesc")
        net = self.root.by_uuid(uuid)
        if flags & _XML_INACTIVE and net.config is not None:
            return net.config.to_string(inactive=True)
        doc = net.definition
        if net.active and not flags & _XML_INACTIVE:
            used = self.root.connections(net.name)
            if used:
                from virt.xml._util import set_attrs

                doc = doc.copy()
                set_attrs(doc.root, [("connections", str(used)), ("ipv6", doc.root.get("ipv6")),
                                     ("trustGuestRxFilters", doc.root.get("trustGuestRxFilters"))])
        return doc.to_string(inactive=bool(flags & _XML_INACTIVE))

    @hookimpl
    def virt_network_is_active(self, uuid: str) -> bool:
        return self.root.by_uuid(uuid).active

    @hookimpl
    def virt_network_is_persistent(self, uuid: str) -> bool:
        return self.root.by_uuid(uuid).persistent

    @hookimpl
    def virt_network_get_autostart(self, uuid: str) -> bool:
        net = self.root.by_uuid(uuid)
        return net.persistent and net.autostart

    @hookimpl
    def virt_network_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.root.lock.held():
            net = self.root.by_uuid(uuid)
            if not net.persistent:
                raise _invalid("cannot set autostart for transient network")
            self.root.set_autostart(net.name, bool(autostart))

    @hookimpl
    def virt_network_get_bridge_name(self, uuid: str) -> str:
        net = self.root.by_uuid(uuid)
        bridge = net.definition.bridge
        if not bridge:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{net.name}' does not have a bridge name.",
                            domain=_D)
        return bridge

    @hookimpl
    def virt_network_get_dhcp_leases(self, uuid: str, mac: str | None, flags: int) -> list[NetworkDHCPLease]:
        _check_flags(flags, 0, "networkGetDHCPLeases")
        from virt_host import _dnsmasq

        net = self.root.by_uuid(uuid)
        doc = net.definition
        return _dnsmasq.leases(self.root.layout.run_file(net.name, "leases"), doc, doc.bridge or "", mac)

    @hookimpl
    def virt_network_update(self, uuid: str, command: int, section: int, parent_index: int, xml: str,
                            flags: int) -> None:
        _check_flags(flags, _UPDATE_LIVE | _UPDATE_CONFIG, "networkUpdate")
        from virt.drivers.test._networks import apply_update

        with self.root.lock.held():
            net = self.root.by_uuid(uuid)
            if not flags & (_UPDATE_LIVE | _UPDATE_CONFIG):
                flags |= _UPDATE_LIVE if net.active else _UPDATE_CONFIG
            if flags & _UPDATE_LIVE and not net.active:
                raise _invalid("network is not running")
            if flags & _UPDATE_CONFIG and not net.persistent:
                raise _invalid("cannot change persistent config of a transient network")
            # both copies are changed before either is saved: a failure changes nothing
            live = apply_update(net.definition, command, section, parent_index, xml) \
                if flags & _UPDATE_LIVE else None
            config = None
            if flags & _UPDATE_CONFIG:
                assert net.config is not None
                config = apply_update(net.config, command, section, parent_index, xml)
            if config is not None:
                self.root.save_config(config)
            if live is not None:
                self.root.save_live(live)
                self._apply_live(net, live, section)

    def _apply_live(self, net: _Net, live: NetworkDocument, section: int) -> None:
        """Make the running dnsmasq serve the changed definition."""
        from virt_host import _dnsmasq

        if not _has_own_bridge(live) or not _dnsmasq.needed(live):
            return
        if section not in _SECTION_RELOAD | _SECTION_RESTART:
            return
        files = _files(self.root.layout, net.name)
        state = net.state or self.root.read_state(net.name)
        pid = state.get("dnsmasq_pid")
        _write_dnsmasq_files(self.root, live, live.bridge or "")
        if section in _SECTION_RELOAD and _dnsmasq.reload(pid, files.conf):
            return
        _dnsmasq.stop(pid, files.conf)
        state["dnsmasq_pid"] = _dnsmasq.start(files)
        self.root.save_state(net.name, state)


# -- taps for guests ----------------------------------------------------------------------------


@attrs.define
class Tap:
    """A guest NIC's tap on a bridge.

    :ivar name: the tap device (``vnet0``...).
    :ivar fd: an open ``/dev/net/tun`` descriptor (``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR``):
        pass it to QEMU (``-netdev tap,fd=N``), then :meth:`close` it.  The tap lives as long
        as some process holds it open.
    :ivar bridge: the bridge it is a port of.
    :ivar network: the network's name, None for ``<interface type='bridge'>``.
    """

    name: str
    fd: int
    bridge: str
    network: str | None = None

    def close(self) -> None:
        """Close this process's descriptor (QEMU keeps its own)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _host_mac(mac: str) -> str:
    """The tap's own MAC: the guest's with the first byte 0xFE, so that the bridge never takes
    the guest's address for its own (libvirt does the same)."""
    from virt.xml._util import parse_mac

    canonical = parse_mac(mac)
    if canonical is None:
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid MAC address: {mac}", domain=_D)
    return "fe" + canonical[2:]


def plug_tap(uri: URI | str, *, network: str | None = None, bridge: str | None = None, mac: str,
             domain_name: str, index: int, target: str | None = None) -> Tap:
    """A tap for NIC number ``index`` of guest ``domain_name``, a port of the bridge of network
    ``network`` (of the network root of ``uri``, the URI the driver was opened with) or of host
    bridge ``bridge``, up, with the bridge's MTU.

    :param target: the ``<target dev=...>`` asked for; names starting with ``vnet`` are the
        kernel's to choose (as in libvirt), as is None.
    :raises VirtError: ``NO_NETWORK``; ``OPERATION_INVALID`` "network 'NAME' is not active";
        ``SYSTEM_ERROR`` when the bridge is missing or the tap cannot be made.
    """
    from virt_host import _netlink

    if (network is None) == (bridge is None):
        raise VirtError(ErrorNumber.INVALID_ARG, "exactly one of network and bridge must be given", domain=_D)
    if network is not None:
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        layout = network_layout_for(parsed)
        if layout is None:
            raise VirtError(ErrorNumber.INVALID_ARG, f"no host networks for URI '{parsed}'", domain=_D)
        net = network_root_for(layout).by_name(network)
        if not net.active:
            raise _invalid(f"network '{network}' is not active")
        doc = net.definition
        if doc.forward_mode not in _L3_MODES and doc.forward_mode != "bridge":
            raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"forward mode '{doc.forward_mode}' of network "
                            f"'{network}' is not supported by virt-host", domain=_D)
        bridge = doc.bridge
        if not bridge:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{network}' does not have a bridge name.",
                            domain=_D)
    assert bridge is not None
    host_mac = _host_mac(mac)
    layout = network_layout_for(parse_uri(uri) if isinstance(uri, str) else uri) if network is not None else None
    wanted = target if target and not target.startswith(("vnet", "macvtap", "macvlan")) else None
    with _netlink.ipr() as sock:
        mtu = _netlink.link_mtu(sock, bridge)
        name, fd = _netlink.open_tap(wanted)
        try:
            _netlink.attach_tap(sock, name, bridge, host_mac, mtu)
            if network is not None and layout is not None:
                root = network_root_for(layout)
                root.add_port(network, name, {"domain": domain_name, "index": index, "mac": mac,
                                              "ifindex": socket.if_nametoindex(name)})
        except BaseException:
            os.close(fd)  # the tap goes with its last descriptor
            raise
    _log.debug("tap %s of %s NIC %d on bridge %s", name, domain_name, index, bridge)
    return Tap(name=name, fd=fd, bridge=bridge, network=network)


def unplug_tap(name: str) -> None:
    """Remove tap ``name`` if it is still there (it also goes away by itself when the last
    process holding it, QEMU, exits).  Idempotent."""
    from virt_host import _netlink

    if not _netlink.exists(name):
        return
    with _netlink.ipr() as sock:
        _netlink.delete_link(sock, name)


def plug_veth(uri: URI | str, *, network: str | None = None, bridge: str | None = None, mac: str,
              domain_name: str, index: int, netns_pid: int, guest_name: str | None = None) -> str:
    """A veth pair for NIC number ``index`` of container ``domain_name``: one end a port of the
    bridge of ``network`` (or host bridge ``bridge``), up; the other moved into the network
    namespace of process ``netns_pid`` (the container's init), named ``guest_name`` (default
    ``ethN``) with the guest's MAC, up.  Returns the host end's name (``vethN``).  The pair
    goes away by itself with the container's network namespace.

    :raises VirtError: as :func:`plug_tap`.
    """
    from pyroute2 import IPRoute  # type: ignore[import-untyped,unused-ignore]
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped,unused-ignore]

    from virt_host import _netlink

    if (network is None) == (bridge is None):
        raise VirtError(ErrorNumber.INVALID_ARG, "exactly one of network and bridge must be given", domain=_D)
    if network is not None:
        layout = network_layout_for(parse_uri(uri) if isinstance(uri, str) else uri)
        if layout is None:
            raise VirtError(ErrorNumber.INVALID_ARG, f"no host networks for URI '{uri}'", domain=_D)
        net = network_root_for(layout).by_name(network)
        if not net.active:
            raise _invalid(f"network '{network}' is not active")
        bridge = net.definition.bridge
        if not bridge:
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"network '{network}' does not have a bridge name.",
                            domain=_D)
    assert bridge is not None
    inside = guest_name or f"eth{index}"
    with _netlink.ipr() as sock:
        mtu = _netlink.link_mtu(sock, bridge)
        host = next(f"veth{n}" for n in range(4096) if not _netlink.exists(f"veth{n}"))
        peer = f"vp{os.getpid() % 100000}x{index}"
        try:
            sock.link("add", ifname=host, kind="veth", peer={"ifname": peer, "address": mac, "mtu": mtu})
        except NetlinkError as exc:
            raise _netlink._system(f"Failed to create veth device pair '{host}'", _netlink._code(exc)) from None
        try:
            _netlink.attach_tap(sock, host, bridge, _host_mac(mac), mtu)
            sock.link("set", index=sock.link_lookup(ifname=peer)[0], net_ns_pid=netns_pid)
        except BaseException:
            _netlink.delete_link(sock, host)
            raise
    try:
        with IPRoute(netns=f"/proc/{netns_pid}/ns/net") as inner:
            found = inner.link_lookup(ifname=peer)
            inner.link("set", index=found[0], ifname=inside, state="up")
    except (NetlinkError, OSError, IndexError) as exc:
        with _netlink.ipr() as sock:
            _netlink.delete_link(sock, host)
        raise VirtError(ErrorNumber.SYSTEM_ERROR, f"Failed to move interface {peer} into the container as "
                        f"{inside}: {exc}", domain=_D) from None
    _log.debug("veth %s of %s NIC %d on bridge %s", host, domain_name, index, bridge)
    return host
