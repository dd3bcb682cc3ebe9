"""The public, synchronous API: a :class:`Connection` and handles on the objects it manages.

Every method is one hook call on the connection's own plugin manager.  Handles carry only
identity (a domain's name and UUID, a volume's key); their state is always asked of the
driver, so a handle never goes stale.
"""

from __future__ import annotations

import builtins
import itertools
import operator
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from virt import _plugins, _records
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainState
from virt._uri import URI, resolve_uri

if TYPE_CHECKING:  # the records are attrs classes made on first use (virt._records)
    import pluggy

    from virt._records import (
        BlockInfo,
        BlockStats,
        DomainEvent,
        DomainInfo,
        DomainInterface,
        DomainRef,
        Event,
        InterfaceRef,
        InterfaceStats,
        NetworkDHCPLease,
        NetworkEvent,
        NetworkInfo,
        NetworkRef,
        NodeDeviceRef,
        NodeInfo,
        PoolEvent,
        PoolInfo,
        PoolRef,
        SecretRef,
        SecurityLabel,
        SecurityModel,
        VcpuInfo,
        VolumeInfo,
        VolumeRef,
    )

__all__ = [
    "Connection",
    "Domain",
    "Interface",
    "Network",
    "NodeDevice",
    "Snapshot",
    "StoragePool",
    "StorageVolume",
    "open",
]

# libvirt's VIR_CONNECT_LIST_DOMAINS_ACTIVE / _INACTIVE bits.
LIST_ACTIVE = 1
LIST_INACTIVE = 2
# ... and VIR_CONNECT_LIST_{NETWORKS,STORAGE_POOLS,INTERFACES}_*: the other way round.
LIST_OBJ_INACTIVE = 1
LIST_OBJ_ACTIVE = 2

# virDomainXMLFlags
XML_SECURE = 1
XML_INACTIVE = 2

_ERROR_DOMAIN_OF_HOOK = {
    "virt_domain": ErrorDomain.DOM, "virt_snapshot": ErrorDomain.DOMAIN_SNAPSHOT,
    "virt_network": ErrorDomain.NETWORK, "virt_pool": ErrorDomain.STORAGE,
    "virt_vol": ErrorDomain.STORAGE, "virt_node": ErrorDomain.NODEDEV,
    "virt_nodedev": ErrorDomain.NODEDEV, "virt_interface": ErrorDomain.INTERFACE,
    "virt_secret": ErrorDomain.SECRET, "virt_connect": ErrorDomain.NONE,
}


def _error_domain(hook: str) -> ErrorDomain:
    prefix = "_".join(hook.split("_", 2)[:2])
    return _ERROR_DOMAIN_OF_HOOK.get(prefix, ErrorDomain.NONE)


class _EventDispatcher:
    """The core's subscriber: delivers event hooks to user callbacks of one connection."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self._subs: dict[int, tuple[type[Event], Callable[[Connection, Any], None], str | None]] = {}
        self._ids = itertools.count(1)
        self.lock = threading.Lock()

    def add(self, kind: type[Event], callback: Callable[[Connection, Any], None], uuid: str | None) -> int:
        with self.lock:
            sub_id = next(self._ids)
            self._subs[sub_id] = (kind, callback, uuid)
            return sub_id

    def remove(self, sub_id: int) -> None:
        with self.lock:
            if self._subs.pop(sub_id, None) is None:
                raise VirtError(ErrorNumber.INVALID_ARG, f"no event subscription with id {sub_id}")

    def _deliver(self, event: Event) -> None:
        conn = self.conn
        if conn is None:
            return
        with self.lock:
            targets = [(cb, uuid) for kind, cb, uuid in self._subs.values() if isinstance(event, kind)]
        for callback, uuid in targets:
            if uuid is not None and uuid != event.uuid:
                continue
            try:
                callback(conn, event)
            except Exception:  # a subscriber's bug must not break the driver that reported
                import logging

                logging.getLogger("virt").exception("event callback %r failed", callback)

    @hookimpl
    def virt_event_domain(self, event: DomainEvent) -> None:
        self._deliver(event)

    @hookimpl
    def virt_event_network(self, event: NetworkEvent) -> None:
        self._deliver(event)

    @hookimpl
    def virt_event_pool(self, event: PoolEvent) -> None:
        self._deliver(event)


#: event name -> the name of its record class in virt._records
_EVENT_NAMES: dict[str, str] = {
    "lifecycle": "DomainEvent", "domain-lifecycle": "DomainEvent", "domain": "DomainEvent",
    "network-lifecycle": "NetworkEvent", "network": "NetworkEvent",
    "pool-lifecycle": "PoolEvent", "storage-pool-lifecycle": "PoolEvent", "pool": "PoolEvent",
}


class Connection:
    """An open connection to one driver on one node.  Use as a context manager, or call
    :meth:`close`.  Thread-safe to the extent its driver is."""

    def __init__(self, uri: URI, readonly: bool, pm: pluggy.PluginManager, driver: object,
                 dispatcher: _EventDispatcher) -> None:
        self._uri = uri
        self.readonly = readonly
        self._pm = pm
        self.driver = driver
        self._dispatcher = dispatcher
        dispatcher.conn = self
        self._impl: dict[str, Any] = _plugins.implemented_hooks(pm)
        self._closed = False

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, hook: str, **kwargs: Any) -> Any:
        try:
            caller = self._impl[hook]  # a lone driver's hooks are bound on first use (DirectHooks)
        except KeyError:
            caller = None
        if caller is None or (self.readonly and hook in _plugins.MUTATING_HOOKS):
            raise self._refusal(hook)
        try:
            return caller(**kwargs)
        except VirtError:
            raise
        except Exception as exc:
            # A driver's bug must reach the caller as an error with a code, not a traceback.
            raise VirtError(ErrorNumber.INTERNAL_ERROR,
                            f"{_plugins.LIBVIRT_API.get(hook, hook)} failed in the driver: "
                            f"{type(exc).__name__}: {exc}", domain=_error_domain(hook)) from exc

    def _refusal(self, hook: str) -> VirtError:
        api = _plugins.LIBVIRT_API.get(hook, hook)
        if self._closed:
            return VirtError(ErrorNumber.INVALID_CONN, "connection is closed")
        # libvirt refuses a read-only caller before it looks for a driver implementation.
        if self.readonly and hook in _plugins.MUTATING_HOOKS:
            return VirtError(ErrorNumber.OPERATION_DENIED, f"read only access prevents {api}",
                             domain=_error_domain(hook))
        return VirtError(ErrorNumber.NO_SUPPORT, api, domain=_error_domain(hook))

    def supports(self, hook: str) -> bool:
        """Whether some plugin of this connection implements ``hook``."""
        return hook in self._impl

    @property
    def hook(self) -> Any:
        """The connection's raw pluggy hook relay (for plugins and tests)."""
        return self._pm.hook

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return _plugins.real_manager(self._pm)

    def close(self) -> None:
        if self._closed:
            return
        try:
            _plugins.close_connection(self._pm)
        finally:
            self._closed = True
            self._impl = {}
            self._dispatcher.conn = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<virt.Connection {self._uri}{' (read-only)' if self.readonly else ''}>"

    # -- the connection and node ----------------------------------------------------------

    @property
    def uri(self) -> str:
        if "virt_connect_get_uri" in self._impl:
            return str(self._call("virt_connect_get_uri"))
        return str(self._uri)

    @property
    def parsed_uri(self) -> URI:
        return self._uri

    def is_alive(self) -> bool:
        return not self._closed

    def is_secure(self) -> bool:
        return bool(self._call("virt_connect_is_secure")) if "virt_connect_is_secure" in self._impl else True

    def is_encrypted(self) -> bool:
        return bool(self._call("virt_connect_is_encrypted")) if "virt_connect_is_encrypted" in self._impl else False

    def type(self) -> str:
        return str(self._call("virt_connect_get_type"))

    def version(self) -> int:
        return int(self._call("virt_connect_get_version"))

    @staticmethod
    def lib_version() -> int:
        from virt import LIBVIRT_COMPAT_VERSION

        return LIBVIRT_COMPAT_VERSION

    def hostname(self) -> str:
        return str(self._call("virt_connect_get_hostname"))

    def capabilities(self) -> str:
        return str(self._call("virt_connect_get_capabilities"))

    def domain_capabilities(self, emulator: str | None = None, arch: str | None = None,
                            machine: str | None = None, virttype: str | None = None, flags: int = 0) -> str:
        return str(self._call("virt_connect_get_domain_capabilities", emulator=emulator, arch=arch,
                              machine=machine, virttype=virttype, flags=flags))

    def sysinfo(self, flags: int = 0) -> str:
        return str(self._call("virt_connect_get_sysinfo", flags=flags))

    def max_vcpus(self, type: str | None = None) -> int:
        return int(self._call("virt_connect_get_max_vcpus", type=type))

    def domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str:
        """A domain XML as the driver's ``native_format`` (``"xen-xl"``...): virConnectDomainXMLToNative."""
        return str(self._call("virt_connect_domain_xml_to_native", native_format=native_format, xml=xml,
                              flags=flags))

    def domain_xml_from_native(self, native_format: str, config: str, flags: int = 0) -> str:
        """The domain XML of a ``native_format`` configuration: virConnectDomainXMLFromNative."""
        return str(self._call("virt_connect_domain_xml_from_native", native_format=native_format,
                              config=config, flags=flags))

    def cpu_model_names(self, arch: str, flags: int = 0) -> list[str]:
        return list(self._call("virt_connect_get_cpu_model_names", arch=arch, flags=flags))

    def node_info(self) -> NodeInfo:
        result: NodeInfo = self._call("virt_node_get_info")
        return result

    def security_model(self) -> SecurityModel:
        """The node's security driver; ``model`` is "" when guests are not confined."""
        result: SecurityModel = self._call("virt_node_get_security_model")
        return result

    def cells_free_memory(self, start_cell: int = 0, max_cells: int = 1 << 30) -> list[int]:
        return list(self._call("virt_node_get_cells_free_memory", start_cell=start_cell, max_cells=max_cells))

    def free_memory(self) -> int:
        return int(self._call("virt_node_get_free_memory"))

    def node_cpu_stats(self, cpu: int = -1, flags: int = 0) -> dict[str, int]:
        return dict(self._call("virt_node_get_cpu_stats", cpu_num=cpu, flags=flags))

    def node_memory_stats(self, cell: int = -1, flags: int = 0) -> dict[str, int]:
        return dict(self._call("virt_node_get_memory_stats", cell_num=cell, flags=flags))

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Connection, Any], None],
                  event: builtins.type[Event] | str = "lifecycle", *, uuid: str | None = None) -> int:
        """Call ``callback(connection, event_record)`` for each event of that kind.

        :param event: a record class (:class:`virt.DomainEvent`, :class:`virt.NetworkEvent`,
            :class:`virt.PoolEvent`) or a name (``"lifecycle"``, the default, is DomainEvent;
            ``"network-lifecycle"``, ``"pool-lifecycle"``).
        :param uuid: only events about this object.
        :returns: a subscription id for :meth:`unsubscribe`.

        Callbacks run in the thread that reported the event (the caller's for the test
        driver, the background loop's for drivers with live monitors); keep them short.
        """
        if isinstance(event, str):
            record = _EVENT_NAMES.get(event)
            if record is None:
                raise VirtError(ErrorNumber.INVALID_ARG, f"unknown event '{event}'; expected one of "
                                + ", ".join(sorted(_EVENT_NAMES)))
            kind: builtins.type[Event] = getattr(_records, record)
        else:
            kind = event
        # The dispatcher joins the connection's plugins with its first subscription, so a
        # driver can see that nobody listens (virt.plugin.listening) and skip the work.
        with self._dispatcher.lock:
            if not self._pm.is_registered(self._dispatcher):
                self._pm.register(self._dispatcher, name="virt:events")
        # A driver that must ask for events before it can report them (the remote proxy asks
        # the far side to forward them) says so with an ``on_subscribe(kind)`` method.
        on_subscribe = getattr(self.driver, "on_subscribe", None)
        if callable(on_subscribe):
            on_subscribe(kind)
        return self._dispatcher.add(kind, callback, uuid)

    def unsubscribe(self, subscription: int) -> None:
        self._dispatcher.remove(subscription)

    # -- domains --------------------------------------------------------------------------

    def _domain(self, ref: DomainRef) -> Domain:
        return Domain(self, ref.name, ref.uuid)

    def define_domain(self, xml: str, flags: int = 0) -> Domain:
        return self._domain(self._call("virt_domain_define_xml", xml=xml, flags=flags))

    def create_domain(self, xml: str, flags: int = 0) -> Domain:
        return self._domain(self._call("virt_domain_create_xml", xml=xml, flags=flags))

    def restore_domain(self, path: str, xml: str | None = None, flags: int = 0) -> Domain:
        return self._domain(self._call("virt_domain_restore", path=path, xml=xml, flags=flags))

    def lookup_domain(self, name: str) -> Domain:
        return self._domain(self._call("virt_domain_lookup_by_name", name=name))

    def lookup_domain_by_uuid(self, uuid: str) -> Domain:
        return self._domain(self._call("virt_domain_lookup_by_uuid", uuid=_norm_uuid(uuid)))

    def lookup_domain_by_id(self, id: int) -> Domain:
        return self._domain(self._call("virt_domain_lookup_by_id", id=_integer(id, "id")))

    def list_domains(self, active: bool | None = None, flags: int = 0) -> list[Domain]:
        """All domains, or only running (``active=True``) or inactive (``False``) ones."""
        if active is True:
            flags |= LIST_ACTIVE
        elif active is False:
            flags |= LIST_INACTIVE
        return [self._domain(ref) for ref in self._call("virt_domain_list", flags=flags)]

    def list_domains_info(self, active: bool | None = None, flags: int = 0) -> list[tuple[Domain, DomainInfo]]:
        """Every domain (or only running, ``active=True``, or inactive ones) with its info, in
        one call: one round trip over a remote connection, not one per domain."""
        if active is True:
            flags |= LIST_ACTIVE
        elif active is False:
            flags |= LIST_INACTIVE
        return [(self._domain(ref), info) for ref, info in self._call("virt_domain_list_info", flags=flags)]

    def get_all_domain_stats(self, stats: int = 0, flags: int = 0) -> list[tuple[Domain, dict[str, Any]]]:
        """Statistics of every domain that ``flags`` (``virConnectListAllDomains`` flags) selects,
        like ``virConnectGetAllDomainStats``; a domain that vanishes meanwhile is left out."""
        out: list[tuple[Domain, dict[str, Any]]] = []
        for dom in self.list_domains(flags=flags):
            try:
                out.append((dom, dom.stats(stats)))
            except VirtError as exc:
                if exc.code != ErrorNumber.NO_DOMAIN:
                    raise
        return out

    # -- networks -------------------------------------------------------------------------

    def define_network(self, xml: str, flags: int = 0) -> Network:
        return Network(self, self._call("virt_network_define_xml", xml=xml, flags=flags))

    def create_network(self, xml: str, flags: int = 0) -> Network:
        return Network(self, self._call("virt_network_create_xml", xml=xml, flags=flags))

    def lookup_network(self, name: str) -> Network:
        return Network(self, self._call("virt_network_lookup_by_name", name=name))

    def lookup_network_by_uuid(self, uuid: str) -> Network:
        return Network(self, self._call("virt_network_lookup_by_uuid", uuid=_norm_uuid(uuid)))

    def list_networks(self, active: bool | None = None, flags: int = 0) -> list[Network]:
        flags |= LIST_OBJ_ACTIVE if active is True else LIST_OBJ_INACTIVE if active is False else 0
        return [Network(self, ref) for ref in self._call("virt_network_list", flags=flags)]

    # -- storage --------------------------------------------------------------------------

    def define_storage_pool(self, xml: str, flags: int = 0) -> StoragePool:
        return StoragePool(self, self._call("virt_pool_define_xml", xml=xml, flags=flags))

    def create_storage_pool(self, xml: str, flags: int = 0) -> StoragePool:
        return StoragePool(self, self._call("virt_pool_create_xml", xml=xml, flags=flags))

    def lookup_storage_pool(self, name: str) -> StoragePool:
        return StoragePool(self, self._call("virt_pool_lookup_by_name", name=name))

    def lookup_storage_pool_by_uuid(self, uuid: str) -> StoragePool:
        return StoragePool(self, self._call("virt_pool_lookup_by_uuid", uuid=_norm_uuid(uuid)))

    def list_storage_pools(self, active: bool | None = None, flags: int = 0) -> list[StoragePool]:
        flags |= LIST_OBJ_ACTIVE if active is True else LIST_OBJ_INACTIVE if active is False else 0
        return [StoragePool(self, ref) for ref in self._call("virt_pool_list", flags=flags)]

    def lookup_volume_by_key(self, key: str) -> StorageVolume:
        return StorageVolume(self, self._call("virt_vol_lookup_by_key", key=key))

    def lookup_volume_by_path(self, path: str) -> StorageVolume:
        return StorageVolume(self, self._call("virt_vol_lookup_by_path", path=path))

    # -- host devices, interfaces, secrets ------------------------------------------------

    def list_node_devices(self, cap: str | None = None, flags: int = 0) -> list[NodeDevice]:
        return [NodeDevice(self, ref) for ref in self._call("virt_nodedev_list", cap=cap, flags=flags)]

    def lookup_node_device(self, name: str) -> NodeDevice:
        for ref in self._call("virt_nodedev_list", cap=None, flags=0):
            if ref.name == name:
                return NodeDevice(self, ref)
        raise VirtError(ErrorNumber.NO_NODE_DEVICE, f"no node device with matching name '{name}'",
                        domain=ErrorDomain.NODEDEV)

    def list_interfaces(self, active: bool | None = None) -> list[Interface]:
        flags = 2 if active is True else 1 if active is False else 0
        return [Interface(self, ref) for ref in self._call("virt_interface_list", flags=flags)]

    def lookup_interface(self, name: str) -> Interface:
        return Interface(self, self._call("virt_interface_lookup_by_name", name=name))

    def list_secrets(self, flags: int = 0) -> list[SecretRef]:
        return list(self._call("virt_secret_list", flags=flags))


def _integer(value: Any, what: str) -> int:
    """``value`` as an int; anything else (a float, a numeric string) is refused, not
    silently truncated or parsed."""
    try:
        return operator.index(value)
    except TypeError:
        raise VirtError(ErrorNumber.INVALID_ARG, f"{what} must be an integer, not {value!r}") from None


def _some_params(params: Mapping[str, Any], api: str) -> None:
    """libvirt's ``virCheckPositiveArgGoto(nparams)`` of the setters that have it."""
    if not params:
        raise VirtError(ErrorNumber.INVALID_ARG, None, domain=ErrorDomain.DOMAIN,
                        message=f"nparams in {api} must be greater than zero")


def _norm_uuid(text: str) -> str:
    raw = text.replace("-", "").strip().lower() if isinstance(text, str) else ""
    if len(raw) != 32 or any(c not in "0123456789abcdef" for c in raw):
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid UUID '{text}'")
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


class Domain:
    """A virtual machine or container.  Compare handles with ``==`` (same connection and UUID)."""

    __slots__ = ("_conn", "name", "uuid")

    def __init__(self, conn: Connection, name: str, uuid: str) -> None:
        self._conn = conn
        self.name = name
        self.uuid = uuid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Domain) and other._conn is self._conn and other.uuid == self.uuid

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        return f"<virt.Domain {self.name!r} {self.uuid}>"

    @property
    def connection(self) -> Connection:
        return self._conn

    @property
    def id(self) -> int:
        """The id while running, -1 otherwise."""
        return int(self._conn._call("virt_domain_get_id", uuid=self.uuid))

    def _do(self, hook: str, **kwargs: Any) -> Any:
        return self._conn._call(hook, uuid=self.uuid, **kwargs)

    # lifecycle
    def start(self, flags: int = 0) -> None:
        self._do("virt_domain_create", flags=flags)

    create = start

    def shutdown(self, flags: int = 0) -> None:
        self._do("virt_domain_shutdown", flags=flags)

    def reboot(self, flags: int = 0) -> None:
        self._do("virt_domain_reboot", flags=flags)

    def reset(self, flags: int = 0) -> None:
        self._do("virt_domain_reset", flags=flags)

    def destroy(self, flags: int = 0) -> None:
        self._do("virt_domain_destroy", flags=flags)

    def suspend(self) -> None:
        self._do("virt_domain_suspend")

    def resume(self) -> None:
        self._do("virt_domain_resume")

    def undefine(self, flags: int = 0) -> None:
        self._do("virt_domain_undefine", flags=flags)

    def save(self, path: str, xml: str | None = None, flags: int = 0) -> None:
        self._do("virt_domain_save", path=path, xml=xml, flags=flags)

    def managed_save(self, flags: int = 0) -> None:
        self._do("virt_domain_managed_save", flags=flags)

    def has_managed_save_image(self, flags: int = 0) -> bool:
        return bool(self._do("virt_domain_has_managed_save_image", flags=flags))

    def managed_save_remove(self, flags: int = 0) -> None:
        self._do("virt_domain_managed_save_remove", flags=flags)

    def rename(self, new_name: str, flags: int = 0) -> None:
        self._do("virt_domain_rename", new_name=new_name, flags=flags)
        self.name = new_name

    # state and config
    def info(self) -> DomainInfo:
        result: DomainInfo = self._do("virt_domain_get_info")
        return result

    def state(self, flags: int = 0) -> tuple[DomainState, int]:
        state, reason = self._do("virt_domain_get_state", flags=flags)
        return DomainState(state), int(reason)

    def xml(self, inactive: bool = False, secure: bool = False, flags: int = 0) -> str:
        flags |= (XML_INACTIVE if inactive else 0) | (XML_SECURE if secure else 0)
        return str(self._do("virt_domain_get_xml", flags=flags))

    def security_label(self) -> SecurityLabel:
        result: SecurityLabel = self._do("virt_domain_get_security_label")
        return result

    def os_type(self) -> str:
        return str(self._do("virt_domain_get_os_type"))

    def is_active(self) -> bool:
        return bool(self._do("virt_domain_is_active"))

    def is_persistent(self) -> bool:
        return bool(self._do("virt_domain_is_persistent"))

    @property
    def autostart(self) -> bool:
        return bool(self._do("virt_domain_get_autostart"))

    def set_autostart(self, autostart: bool) -> None:
        self._do("virt_domain_set_autostart", autostart=bool(autostart))

    def set_memory(self, memory: int, flags: int = 0) -> None:
        self._do("virt_domain_set_memory", memory=_integer(memory, "memory"), flags=flags)

    def set_max_memory(self, memory: int, flags: int = 0) -> None:
        self._do("virt_domain_set_memory", memory=_integer(memory, "memory"), flags=flags | 4)

    def set_vcpus(self, nvcpus: int, flags: int = 0) -> None:
        self._do("virt_domain_set_vcpus", nvcpus=_integer(nvcpus, "nvcpus"), flags=flags)

    def vcpus_count(self, flags: int = 0) -> int:
        return int(self._do("virt_domain_get_vcpus_flags", flags=flags))

    def vcpus(self) -> list[VcpuInfo]:
        return list(self._do("virt_domain_get_vcpus"))

    def set_metadata(self, type: int, metadata: str | None, key: str | None = None,
                     uri: str | None = None, flags: int = 0) -> None:
        self._do("virt_domain_set_metadata", type=type, metadata=metadata, key=key, uri=uri, flags=flags)

    def metadata(self, type: int, uri: str | None = None, flags: int = 0) -> str:
        return str(self._do("virt_domain_get_metadata", type=type, uri=uri, flags=flags))

    # monitoring
    def scheduler_type(self) -> tuple[str, int]:
        name, count = self._do("virt_domain_get_scheduler_type")
        return str(name), int(count)

    def scheduler_parameters(self, flags: int = 0) -> dict[str, Any]:
        return dict(self._do("virt_domain_get_scheduler_parameters", flags=flags))

    def memory_parameters(self, flags: int = 0) -> dict[str, Any]:
        return dict(self._do("virt_domain_get_memory_parameters", flags=flags))

    def blkio_parameters(self, flags: int = 0) -> dict[str, Any]:
        return dict(self._do("virt_domain_get_blkio_parameters", flags=flags))

    def numa_parameters(self, flags: int = 0) -> dict[str, Any]:
        return dict(self._do("virt_domain_get_numa_parameters", flags=flags))

    # tunables: libvirt's typed parameters as a dict (an int for its integer types, a str for
    # its strings); a driver refuses names it does not know (ARGUMENT_UNSUPPORTED)
    def set_scheduler_parameters(self, params: Mapping[str, Any], flags: int = 0) -> None:
        """``virDomainSetSchedulerParametersFlags``: ``{"weight": 100}``."""
        self._do("virt_domain_set_scheduler_parameters", params=dict(params), flags=flags)

    def set_memory_parameters(self, params: Mapping[str, Any], flags: int = 0) -> None:
        """``virDomainSetMemoryParameters``: ``{"hard_limit": 1048576}`` (KiB)."""
        _some_params(params, "virDomainSetMemoryParameters")
        self._do("virt_domain_set_memory_parameters", params=dict(params), flags=flags)

    def set_blkio_parameters(self, params: Mapping[str, Any], flags: int = 0) -> None:
        """``virDomainSetBlkioParameters``: ``{"weight": 500, "device_weight": "/dev/sda,100"}``."""
        self._do("virt_domain_set_blkio_parameters", params=dict(params), flags=flags)

    def set_numa_parameters(self, params: Mapping[str, Any], flags: int = 0) -> None:
        """``virDomainSetNumaParameters``: ``{"numa_mode": 0, "numa_nodeset": "0-1"}``."""
        _some_params(params, "virDomainSetNumaParameters")
        self._do("virt_domain_set_numa_parameters", params=dict(params), flags=flags)

    def memory_stats(self, flags: int = 0) -> dict[str, int]:
        return dict(self._do("virt_domain_memory_stats", flags=flags))

    def block_stats(self, disk: str) -> BlockStats:
        result: BlockStats = self._do("virt_domain_block_stats", disk=disk)
        return result

    def interface_stats(self, device: str) -> InterfaceStats:
        result: InterfaceStats = self._do("virt_domain_interface_stats", device=device)
        return result

    def stats(self, stats: int = 0, flags: int = 0) -> dict[str, Any]:
        """libvirt's per-domain statistics (``virsh domstats``): ``{"state.state": 1, ...}``.

        :param stats: a mask of ``virDomainStatsTypes``; 0 for every group the driver has.
        """
        return dict(self._do("virt_domain_get_stats", stats=stats, flags=flags))

    def console_path(self, dev_name: str | None = None, flags: int = 0) -> str:
        """The host pty behind the domain's console (``dev_name``: ``serial0``, ``console0``)."""
        result: str = self._do("virt_domain_open_console", dev_name=dev_name, flags=flags)
        return result

    def open_console(self, dev_name: str | None = None, flags: int = 0) -> ConsoleStream:
        """The domain's console as a duplex byte stream, here or on another node.

        Locally this opens the pty of :meth:`console_path`; a driver that carries consoles
        itself (the remote proxy relays the far side's pty as a stream of its protocol) offers
        ``open_console_stream(uuid, dev_name, flags)`` on its connection object.
        """
        conn = self._conn
        opener = getattr(conn.driver, "open_console_stream", None)
        if callable(opener):
            hook = "virt_domain_open_console"
            if conn._closed or (conn.readonly and hook in _plugins.MUTATING_HOOKS):
                raise conn._refusal(hook)
            stream: ConsoleStream = opener(uuid=self.uuid, dev_name=dev_name, flags=flags)
            return stream
        return PtyStream(self.console_path(dev_name, flags))

    def block_info(self, disk: str, flags: int = 0) -> BlockInfo:
        result: BlockInfo = self._do("virt_domain_get_block_info", disk=disk, flags=flags)
        return result

    def interface_addresses(self, source: int = 0, flags: int = 0) -> list[DomainInterface]:
        return list(self._do("virt_domain_interface_addresses", source=source, flags=flags))

    def job_info(self) -> dict[str, int]:
        return dict(self._do("virt_domain_get_job_info"))

    def time(self, flags: int = 0) -> tuple[int, int]:
        seconds, nseconds = self._do("virt_domain_get_time", flags=flags)
        return int(seconds), int(nseconds)

    def set_time(self, seconds: int, nseconds: int = 0, flags: int = 0) -> None:
        """``virDomainSetTime``; ``flags=virt.flags.DOMAIN_TIME_SYNC`` resyncs from the RTC."""
        self._do("virt_domain_set_time", seconds=_integer(seconds, "seconds"),
                 nseconds=_integer(nseconds, "nseconds"), flags=flags)

    def hostname(self, flags: int = 0) -> str:
        return str(self._do("virt_domain_get_hostname", flags=flags))

    # snapshots
    def create_snapshot(self, xml: str = "<domainsnapshot/>", flags: int = 0) -> Snapshot:
        return Snapshot(self, str(self._do("virt_snapshot_create_xml", xml=xml, flags=flags)))

    def list_snapshots(self, flags: int = 0) -> list[Snapshot]:
        return [Snapshot(self, name) for name in self._do("virt_snapshot_list", flags=flags)]

    def lookup_snapshot(self, name: str) -> Snapshot:
        snap = Snapshot(self, name)
        snap.xml()  # raises NO_DOMAIN_SNAPSHOT when absent
        return snap

    def current_snapshot(self, flags: int = 0) -> Snapshot:
        return Snapshot(self, str(self._do("virt_snapshot_current", flags=flags)))

    def has_current_snapshot(self) -> bool:
        try:
            self._do("virt_snapshot_current", flags=0)
        except VirtError as exc:
            if exc.code == ErrorNumber.NO_DOMAIN_SNAPSHOT:
                return False
            raise
        return True


class ConsoleStream(Protocol):
    """What :meth:`Domain.open_console` returns."""

    def read(self, size: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; b"" when ``timeout`` passes or at the end of the stream."""

    def write(self, data: bytes) -> int:
        """Send all of ``data``; returns its length."""

    def close(self) -> None:
        """Let go of the console."""


class PtyStream:
    """A console's pty on this node, as a :class:`ConsoleStream` (raw mode, non-blocking)."""

    def __init__(self, path: str) -> None:
        import os
        import termios
        import tty

        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise VirtError(ErrorNumber.OPERATION_FAILED, f"cannot open console {path}: {exc.strerror}",
                            domain=ErrorDomain.DOM) from None
        try:
            tty.setraw(self._fd, termios.TCSANOW)
        except termios.error:
            pass

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int = 65536, timeout: float | None = None) -> bytes:
        import os
        import select

        if not select.select([self._fd], [], [], timeout)[0]:
            return b""
        try:
            return os.read(self._fd, size)
        except BlockingIOError:
            return b""
        except OSError:
            return b""  # EIO: the other end (QEMU) went away

    def write(self, data: bytes) -> int:
        import os
        import select

        view = memoryview(data)
        while view:
            select.select([], [self._fd], [])
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:
                continue
        return len(data)

    def close(self) -> None:
        import os

        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PtyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Snapshot:
    __slots__ = ("domain", "name")

    def __init__(self, domain: Domain, name: str) -> None:
        self.domain = domain
        self.name = name

    def __repr__(self) -> str:
        return f"<virt.Snapshot {self.domain.name}/{self.name}>"

    def _do(self, hook: str, **kwargs: Any) -> Any:
        return self.domain._conn._call(hook, uuid=self.domain.uuid, name=self.name, **kwargs)

    def xml(self, flags: int = 0) -> str:
        return str(self._do("virt_snapshot_get_xml", flags=flags))

    def parent(self) -> Snapshot | None:
        name = self._do("virt_snapshot_get_parent", flags=0)
        return None if name is None else Snapshot(self.domain, name)

    def revert(self, flags: int = 0) -> None:
        self._do("virt_snapshot_revert", flags=flags)

    def delete(self, flags: int = 0) -> None:
        self._do("virt_snapshot_delete", flags=flags)


class Network:
    __slots__ = ("_conn", "name", "uuid")

    def __init__(self, conn: Connection, ref: NetworkRef) -> None:
        self._conn = conn
        self.name = ref.name
        self.uuid = ref.uuid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and other._conn is self._conn and other.uuid == self.uuid

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        return f"<virt.Network {self.name!r} {self.uuid}>"

    def _do(self, hook: str, **kwargs: Any) -> Any:
        return self._conn._call(hook, uuid=self.uuid, **kwargs)

    def start(self) -> None:
        self._do("virt_network_create")

    create = start

    def destroy(self) -> None:
        self._do("virt_network_destroy")

    def undefine(self) -> None:
        self._do("virt_network_undefine")

    @property
    def autostart(self) -> bool:
        return bool(self._do("virt_network_get_autostart"))

    def set_autostart(self, autostart: bool) -> None:
        self._do("virt_network_set_autostart", autostart=bool(autostart))

    def is_active(self) -> bool:
        return bool(self._do("virt_network_is_active"))

    def is_persistent(self) -> bool:
        return bool(self._do("virt_network_is_persistent"))

    def bridge_name(self) -> str:
        return str(self._do("virt_network_get_bridge_name"))

    def info(self) -> NetworkInfo:
        """What ``net-info`` shows besides name and UUID; ``bridge`` is None for drivers
        whose networks have none."""
        bridge = self.bridge_name() if self._conn.supports("virt_network_get_bridge_name") else None
        return _records.NetworkInfo(active=self.is_active(), persistent=self.is_persistent(),
                           autostart=self.autostart, bridge=bridge)

    def xml(self, inactive: bool = False, flags: int = 0) -> str:
        return str(self._do("virt_network_get_xml", flags=flags | (1 if inactive else 0)))

    def dhcp_leases(self, mac: str | None = None, flags: int = 0) -> list[NetworkDHCPLease]:
        return list(self._do("virt_network_get_dhcp_leases", mac=mac, flags=flags))

    def update(self, command: int, section: int, xml: str, parent_index: int = -1, flags: int = 0) -> None:
        self._do("virt_network_update", command=command, section=section, parent_index=parent_index,
                 xml=xml, flags=flags)


class StoragePool:
    __slots__ = ("_conn", "name", "uuid")

    def __init__(self, conn: Connection, ref: PoolRef) -> None:
        self._conn = conn
        self.name = ref.name
        self.uuid = ref.uuid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoragePool) and other._conn is self._conn and other.uuid == self.uuid

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        return f"<virt.StoragePool {self.name!r} {self.uuid}>"

    def _do(self, hook: str, **kwargs: Any) -> Any:
        return self._conn._call(hook, uuid=self.uuid, **kwargs)

    def build(self, flags: int = 0) -> None:
        self._do("virt_pool_build", flags=flags)

    def start(self, flags: int = 0) -> None:
        self._do("virt_pool_create", flags=flags)

    create = start

    def destroy(self) -> None:
        self._do("virt_pool_destroy")

    def delete(self, flags: int = 0) -> None:
        self._do("virt_pool_delete", flags=flags)

    def undefine(self) -> None:
        self._do("virt_pool_undefine")

    def refresh(self, flags: int = 0) -> None:
        self._do("virt_pool_refresh", flags=flags)

    @property
    def autostart(self) -> bool:
        return bool(self._do("virt_pool_get_autostart"))

    def set_autostart(self, autostart: bool) -> None:
        self._do("virt_pool_set_autostart", autostart=bool(autostart))

    def is_active(self) -> bool:
        return bool(self._do("virt_pool_is_active"))

    def is_persistent(self) -> bool:
        return bool(self._do("virt_pool_is_persistent"))

    def info(self) -> PoolInfo:
        result: PoolInfo = self._do("virt_pool_get_info")
        return result

    def xml(self, inactive: bool = False, flags: int = 0) -> str:
        return str(self._do("virt_pool_get_xml", flags=flags | (1 if inactive else 0)))

    def list_volumes(self, flags: int = 0) -> list[StorageVolume]:
        refs = self._conn._call("virt_vol_list", pool=self.uuid, flags=flags)
        return [StorageVolume(self._conn, ref) for ref in refs]

    def lookup_volume(self, name: str) -> StorageVolume:
        return StorageVolume(self._conn, self._conn._call("virt_vol_lookup_by_name", pool=self.uuid, name=name))

    def create_volume(self, xml: str, flags: int = 0) -> StorageVolume:
        return StorageVolume(self._conn, self._conn._call("virt_vol_create_xml", pool=self.uuid, xml=xml, flags=flags))

    def create_volume_from(self, xml: str, source: StorageVolume, flags: int = 0) -> StorageVolume:
        ref = self._conn._call("virt_vol_create_xml_from", pool=self.uuid, xml=xml, clone_key=source.key, flags=flags)
        return StorageVolume(self._conn, ref)


class StorageVolume:
    __slots__ = ("_conn", "key", "name", "path", "pool_name")

    def __init__(self, conn: Connection, ref: VolumeRef) -> None:
        self._conn = conn
        self.pool_name = ref.pool
        self.name = ref.name
        self.key = ref.key
        self.path = ref.path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageVolume) and other._conn is self._conn and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"<virt.StorageVolume {self.pool_name}/{self.name}>"

    def _do(self, hook: str, **kwargs: Any) -> Any:
        return self._conn._call(hook, key=self.key, **kwargs)

    def pool(self) -> StoragePool:
        return self._conn.lookup_storage_pool(self.pool_name)

    def info(self) -> VolumeInfo:
        result: VolumeInfo = self._do("virt_vol_get_info")
        return result

    def xml(self, flags: int = 0) -> str:
        return str(self._do("virt_vol_get_xml", flags=flags))

    def delete(self, flags: int = 0) -> None:
        self._do("virt_vol_delete", flags=flags)

    def wipe(self, algorithm: int = 0, flags: int = 0) -> None:
        self._do("virt_vol_wipe", algorithm=algorithm, flags=flags)

    def resize(self, capacity: int, flags: int = 0) -> None:
        self._do("virt_vol_resize", capacity=_integer(capacity, "capacity"), flags=flags)

    #: bytes per ``virt_vol_download``/``virt_vol_upload`` call: the most a provider moves at
    #: once (8 MiB, see the hooks); fewer, larger calls cost less per byte (bench/storage_ops.py)
    CHUNK = 8 << 20

    def _stream_total(self, offset: int, length: int) -> int | None:
        """Best guess of the bytes a download moves, for a progress bar (None: unknown)."""
        if length:
            return length
        try:
            from virt.xml._base import parse_xml

            root = parse_xml(self.xml())
        except VirtError:
            return None
        text = root.findtext("physical") or root.findtext("capacity")
        return max(int(text) - offset, 0) if text and text.isdigit() else None

    def _stream_args(self, hook: str, offset: int, length: int) -> tuple[int, int]:
        if not self._conn.supports(hook) or (self._conn.readonly and hook in _plugins.MUTATING_HOOKS):
            raise self._conn._refusal(hook)
        offset, length = _integer(offset, "offset"), _integer(length, "length")
        if offset < 0 or length < 0:
            raise VirtError(ErrorNumber.INVALID_ARG, "offset and length must not be negative",
                            domain=ErrorDomain.STORAGE)
        return offset, length

    def download(self, target: str | Any, offset: int = 0, length: int = 0,
                 progress: Callable[[int, int | None], None] | None = None, flags: int = 0) -> int:
        """Copy the volume's content to ``target`` (``virsh vol-download``): a path, or a binary
        file object.  ``length`` 0 means to the end.  ``progress(done, total)`` is called after
        each chunk (``total`` None when unknown).  Returns the bytes copied; a file this call
        created is removed again when the copy fails."""
        offset, length = self._stream_args("virt_vol_download", offset, length)
        total = self._stream_total(offset, length) if progress is not None else None
        stream = self._open_stream("download", offset, length, flags)
        try:
            return self._download_to(target, stream, offset, length, progress, total, flags)
        finally:
            if stream is not None:
                stream.close()

    def _download_to(self, target: str | Any, stream: Any, offset: int, length: int,
                     progress: Callable[[int, int | None], None] | None, total: int | None, flags: int) -> int:
        import os

        created = isinstance(target, str) and not os.path.exists(target)
        out = builtins.open(target, "wb") if isinstance(target, str) else target  # noqa: SIM115 (closed below)
        done = 0
        try:
            while not length or done < length:
                if stream is not None:
                    chunk = stream.read(self.CHUNK)
                else:
                    want = self.CHUNK if not length else min(self.CHUNK, length - done)
                    chunk = self._do("virt_vol_download", offset=offset + done, length=want, flags=flags)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        except BaseException:
            if created:
                out.close()
                os.unlink(target)
            raise
        finally:
            if out is not target:
                out.close()
        return done

    def _open_stream(self, mode: str, offset: int, length: int, flags: int) -> Any:
        """The driver's stream of the volume's content, if it carries one (the remote proxy
        does: ``open_volume_stream(key, mode, offset, length, flags)`` on its connection
        object, a window of data in flight instead of a round trip per chunk); else None."""
        opener = getattr(self._conn.driver, "open_volume_stream", None)
        if not callable(opener):
            return None
        return opener(key=self.key, mode=mode, offset=offset, length=length, flags=flags)

    def upload(self, source: str | Any, offset: int = 0, length: int = 0,
               progress: Callable[[int, int | None], None] | None = None, flags: int = 0) -> int:
        """Copy ``source`` (a path, or a binary file object) into the volume from ``offset`` on
        (``virsh vol-upload``).  ``length`` 0 means all of it.  ``progress(done, total)`` as for
        :meth:`download`.  Returns the bytes copied."""
        import os

        offset, length = self._stream_args("virt_vol_upload", offset, length)
        src = builtins.open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115 (closed below)
        done = 0
        stream = None
        try:
            stream = self._open_stream("upload", offset, length, flags)
            total: int | None = length or None
            if total is None and progress is not None:
                try:
                    total = os.fstat(src.fileno()).st_size or None
                except (AttributeError, OSError, ValueError):
                    total = None
            while not length or done < length:
                want = self.CHUNK if not length else min(self.CHUNK, length - done)
                chunk = src.read(want)
                if not chunk:
                    break
                if stream is not None:
                    stream.write(chunk)
                else:
                    self._do("virt_vol_upload", offset=offset + done, data=bytes(chunk), flags=flags)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if stream is not None:
                stream.finish()  # every byte written on the far side, or its error
        finally:
            if stream is not None:
                stream.close()
            if src is not source:
                src.close()
        return done


class NodeDevice:
    __slots__ = ("_conn", "name", "parent")

    def __init__(self, conn: Connection, ref: NodeDeviceRef) -> None:
        self._conn = conn
        self.name = ref.name
        self.parent = ref.parent

    def __repr__(self) -> str:
        return f"<virt.NodeDevice {self.name!r}>"

    def xml(self, flags: int = 0) -> str:
        return str(self._conn._call("virt_nodedev_get_xml", name=self.name, flags=flags))


class Interface:
    __slots__ = ("_conn", "active", "mac", "name")

    def __init__(self, conn: Connection, ref: InterfaceRef) -> None:
        self._conn = conn
        self.name = ref.name
        self.mac = ref.mac
        self.active = ref.active

    def __repr__(self) -> str:
        return f"<virt.Interface {self.name!r}>"

    def is_active(self) -> bool:
        return self.active

    def xml(self, inactive: bool = False, flags: int = 0) -> str:
        return str(self._conn._call("virt_interface_get_xml", name=self.name, flags=flags | (1 if inactive else 0)))


def open(uri: str | None = None, readonly: bool = False) -> Connection:  # noqa: A001 - libvirt's name
    """Open a connection.

    :param uri: a URI (``qemu:///system``, ``test:///default``, ``qemu+ssh://host/system``) or
        an alias from the config file; None takes ``VIRT_DEFAULT_URI``, then
        ``LIBVIRT_DEFAULT_URI``, then ``uri_default`` from the config, then ``test:///default``.
    :param readonly: refuse every operation that changes state.
    :raises VirtError: ``NO_CONNECT`` when no installed driver takes the URI.
    """
    parsed = resolve_uri(uri)
    spec = _plugins.find_driver(parsed)
    pm, driver = _plugins.build_connection_manager(spec, parsed, readonly)
    return Connection(parsed, readonly, pm, driver, _EventDispatcher())
