"""Storage pool and volume commands: ``pool-*`` and ``vol-*``, as virsh prints them."""

from __future__ import annotations

from typing import Any

from lxml import etree

from virt._errors import VirtError
from virt._records import PoolState, VolumeType
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.node import (
    XPATH_OPTS,
    dump_xml,
    exclusive,
    format_capacity,
    lookup_uuid_or_name,
    parse_size,
    read_xml_file,
    sorted_by_name,
)
from virt.xml._base import escape

__all__ = ["lookup_pool", "lookup_volume", "pool_xml"]

POOL = "Storage Pool"
VOLUME = "Storage Volume"

# VIR_CONNECT_LIST_STORAGE_POOLS_*
_INACTIVE, _ACTIVE, _PERSISTENT, _TRANSIENT, _AUTOSTART, _NO_AUTOSTART = 1, 2, 4, 8, 16, 32
_TYPE_BITS = {
    "dir": 64, "fs": 128, "netfs": 256, "logical": 512, "disk": 1024, "iscsi": 2048, "scsi": 4096,
    "mpath": 8192, "rbd": 16384, "sheepdog": 32768, "gluster": 65536, "zfs": 131072, "vstorage": 262144,
    "iscsi-direct": 524288,
}
# the pool states whose capacity, allocation and available sizes virsh prints
_SIZED_STATES = (PoolState.RUNNING, PoolState.DEGRADED)
_WIPE_ALGORITHMS = ("zero", "nnsa", "dod", "bsi", "gutmann", "schneier", "pfitzner7", "pfitzner33", "random",
                    "trim")
# VIR_STORAGE_POOL_CREATE_WITH_BUILD{,_OVERWRITE,_NO_OVERWRITE}; VIR_STORAGE_POOL_BUILD_{NO_,}OVERWRITE
_CREATE_BUILD, _CREATE_OVERWRITE, _CREATE_NO_OVERWRITE = 1, 2, 4
_BUILD_NO_OVERWRITE, _BUILD_OVERWRITE = 4, 8
# VIR_STORAGE_VOL_CREATE_*, VIR_STORAGE_VOL_RESIZE_*
_PREALLOC, _REFLINK, _VALIDATE = 1, 2, 4
_RESIZE_ALLOCATE, _RESIZE_DELTA, _RESIZE_SHRINK = 1, 2, 4

_POOL_OPT = Opt("pool", required=True, positional=True, help="pool name or uuid")
_VOL_OPT = Opt("vol", required=True, positional=True, help="vol name, key or path")
_OPT_POOL = Opt("pool", help="pool name or uuid")
_FILE_OPT = Opt("file", required=True, positional=True, help="file containing an XML pool description")
_BUILD_OPTS = (
    Opt("build", "bool", "build the pool as normal"),
    Opt("no-overwrite", "bool", "do not overwrite any existing data"),
    Opt("overwrite", "bool", "overwrite any existing data"),
)
_X_AS_OPTS = (
    Opt("name", required=True, positional=True, help="name of the pool"),
    Opt("type", required=True, positional=True, help="type of the pool"),
    Opt("print-xml", "bool", "print XML document, but don't define/create"),
    Opt("source-host", positional=True, help="source-host for underlying storage"),
    Opt("source-path", positional=True, help="source path for underlying storage"),
    Opt("source-dev", positional=True, help="source device for underlying storage"),
    Opt("source-name", positional=True, help="source name for underlying storage"),
    Opt("target", positional=True, help="target for underlying storage"),
    Opt("source-format", help="format for underlying storage"),
    Opt("auth-type", help="auth type to be used for underlying storage"),
    Opt("auth-username", help="auth username to be used for underlying storage"),
    Opt("secret-usage", help="auth secret usage to be used for underlying storage"),
    Opt("secret-uuid", help="auth secret UUID to be used for underlying storage"),
    Opt("adapter-name", help="adapter name to be used for underlying storage"),
    Opt("adapter-wwnn", help="adapter wwnn to be used for underlying storage"),
    Opt("adapter-wwpn", help="adapter wwpn to be used for underlying storage"),
    Opt("adapter-parent", help="adapter parent scsi_hostN to be used for underlying vHBA storage"),
    Opt("adapter-parent-wwnn", help="adapter parent scsi_hostN wwnn to be used for underlying vHBA storage"),
    Opt("adapter-parent-wwpn", help="adapter parent scsi_hostN wwpn to be used for underlying vHBA storage"),
    Opt("adapter-parent-fabric-wwn",
        help="adapter parent scsi_hostN fabric_wwn to be used for underlying vHBA storage"),
    Opt("source-protocol-ver", help="nfsvers value for NFS pool mount option"),
    Opt("source-initiator", help="initiator iqn for underlying storage"),
)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def lookup_pool(ctx: Context, name: str, by_uuid: bool = True, by_name: bool = True) -> Any:
    """virsh's ``virshCommandOptPoolBy``: a 36-character argument is tried as a UUID first."""
    conn = ctx.conn
    return lookup_uuid_or_name("pool", name, conn.lookup_storage_pool_by_uuid if by_uuid else None,
                               conn.lookup_storage_pool if by_name else None)


def _find_volume(conn: Any, pool: Any, name: str) -> tuple[Any, VirtError | None]:
    """By name in ``pool`` (unless None), then by key, then by path: the first volume found,
    or None and the last lookup's error."""
    error: VirtError | None = None
    in_pool = () if pool is None else (pool.lookup_volume,)
    for lookup in (*in_pool, conn.lookup_volume_by_key, conn.lookup_volume_by_path):
        try:
            return lookup(name), None
        except VirtError as exc:
            error = exc
    return None, error


def lookup_volume(ctx: Context, name: str, pool_name: str | None, *, pool_option: bool = True) -> Any:
    """virsh's ``virshCommandOptVolBy``: by name in ``--pool``, then by key, then by path."""
    pool = None
    if pool_name is not None:
        pool = lookup_pool(ctx, pool_name)
        try:
            active = pool.is_active()
        except VirtError:
            active = False
        if not active:
            raise CommandError(f"pool '{pool_name}' is not active")
    vol, error = _find_volume(ctx.conn, pool, name)
    if vol is None:
        if pool is not None or not pool_option:
            raise CommandError(f"failed to get vol '{name}'", error)
        raise CommandError(f"failed to get vol '{name}', specifying --pool might help", error)
    if pool is not None and vol.pool_name != pool.name:
        raise CommandError(f"Requested volume '{name}' is not in pool '{pool.name}'")
    return vol


def _pool_state(state: int) -> str:
    """virsh's ``virshStoragePoolStateToString``: the :class:`PoolState` name in lower case."""
    try:
        return PoolState(state).name.lower()
    except ValueError:
        return "unknown"


# -- pools ------------------------------------------------------------------------------------


@command("pool-list", Opt("inactive", "bool", "list inactive pools"),
         Opt("all", "bool", "list inactive & active pools"),
         Opt("transient", "bool", "list transient pools"), Opt("persistent", "bool", "list persistent pools"),
         Opt("autostart", "bool", "list pools with autostart enabled"),
         Opt("no-autostart", "bool", "list pools with autostart disabled"),
         Opt("type", help="only list pool of specified type(s) (if supported)"),
         Opt("details", "bool", "display extended details for pools"),
         Opt("uuid", "bool", "list UUID of active pools only"), Opt("name", "bool", "list name of active pools only"),
         json=True, group=POOL, help="list pools")
def cmd_pool_list(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "all", "inactive")
    flags: int = _ACTIVE
    if opts["inactive"]:
        flags = _INACTIVE
    if opts["all"]:
        flags = _ACTIVE | _INACTIVE
    for name, bit in (("autostart", _AUTOSTART), ("no-autostart", _NO_AUTOSTART), ("persistent", _PERSISTENT),
                      ("transient", _TRANSIENT)):
        if opts[name]:
            flags |= bit
    exclusive(opts, "details", "uuid")
    exclusive(opts, "details", "name")
    if opts["type"]:
        for kind in (t for t in opts["type"].split(",") if t):
            type_bit = _TYPE_BITS.get(kind)
            if type_bit is None:
                raise CommandError(f"Invalid pool type '{kind}'")
            flags |= type_bit
    try:
        pools = sorted_by_name(ctx.conn.list_storage_pools(flags=flags), lambda p: p.name)
    except VirtError as exc:
        raise CommandError("Failed to list pools", exc) from None
    details = opts["details"]
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    for pool in pools:
        record: dict[str, Any] = {"name": pool.name, "uuid": pool.uuid}
        try:
            autostart: bool | None = pool.autostart
        except VirtError:
            autostart = None
        record["autostart"] = autostart
        autostart_text = "no autostart" if autostart is None else _yes(autostart)
        try:
            persistent: bool | None = pool.is_persistent()
        except VirtError:
            persistent = None
        record["persistent"] = persistent
        try:
            info = pool.info()
        except VirtError as exc:
            ctx.err.write(f"error: Could not retrieve pool information\nerror: {exc.message}\n")
            info = None
        if info is None:
            state = "unknown"
            sizes = ["unknown"] * 3
        else:
            record.update(state=_pool_state(info.state),
                          capacity=info.capacity, allocation=info.allocation, available=info.available)
            if details:
                state = record["state"]
                if info.state in _SIZED_STATES:
                    sizes = [format_capacity(info.capacity), format_capacity(info.allocation),
                             format_capacity(info.available)]
                else:
                    sizes = ["-"] * 3
            else:
                state = "active" if pool.is_active() else "inactive"
        if details:
            rows.append([pool.name, state, autostart_text, "unknown" if persistent is None else _yes(persistent),
                         *sizes])
        else:
            rows.append([pool.name, state, autostart_text])
        records.append(record)
    if ctx.want_json:
        ctx.emit_json(records)
    elif details:
        ctx.table(["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation", "Available"], rows, records)
    elif opts["uuid"] or opts["name"]:
        for pool in pools:
            if opts["uuid"]:
                ctx.print(f"{pool.uuid:<36}", end=" " if opts["name"] else "\n")
            if opts["name"]:
                ctx.print(f"{pool.name:<20}")
    else:
        ctx.table(["Name", "State", "Autostart"], rows, records)


@command("pool-info", _POOL_OPT, Opt("bytes", "bool", "Return pool info in bytes"), json=True, group=POOL,
         help="storage pool information")
def cmd_pool_info(ctx: Context, opts: dict[str, Any]) -> None:
    pool = lookup_pool(ctx, opts["pool"])
    pairs: list[tuple[str, Any]] = [("Name", pool.name), ("UUID", pool.uuid)]
    record: dict[str, Any] = {"name": pool.name, "uuid": pool.uuid}
    try:
        info = pool.info()
    except VirtError as exc:
        ctx.fields(pairs, record=record)
        raise CommandError(None, exc) from None
    record["state"] = _pool_state(info.state)
    pairs.append(("State", record["state"]))
    try:
        persistent = pool.is_persistent()
        pairs.append(("Persistent", _yes(persistent)))
        record["persistent"] = persistent
    except VirtError:
        pairs.append(("Persistent", "unknown"))
    try:
        autostart = pool.autostart
        pairs.append(("Autostart", _yes(autostart)))
        record["autostart"] = autostart
    except VirtError:
        pairs.append(("Autostart", "no autostart"))
    if info.state in _SIZED_STATES:
        record.update(capacity=info.capacity, allocation=info.allocation, available=info.available)
        for label, value in (("Capacity", info.capacity), ("Allocation", info.allocation),
                             ("Available", info.available)):
            pairs.append((label, str(value) if opts["bytes"] else format_capacity(value)))
    ctx.fields(pairs, record=record)


@command("pool-dumpxml", _POOL_OPT, Opt("inactive", "bool", "show inactive defined XML"), *XPATH_OPTS, group=POOL,
         help="pool information in XML")
def cmd_pool_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    pool = lookup_pool(ctx, opts["pool"])
    dump_xml(ctx, pool.xml(inactive=opts["inactive"]), opts["xpath"], opts["wrap"])


def _simple(name: str, method: str, done: str, failed: str, help: str, *extra: Opt,
            flags: Any = None) -> None:
    """Register a ``pool-<verb> POOL`` command: look the pool up, call ``method``, report."""

    @command(name, _POOL_OPT, *extra, group=POOL, help=help)
    def handler(ctx: Context, opts: dict[str, Any]) -> None:
        pool_name = opts["pool"]
        pool = lookup_pool(ctx, pool_name)
        args: tuple[Any, ...] = () if flags is None else (flags(opts),)
        try:
            getattr(pool, method)(*args)
        except VirtError as exc:
            raise CommandError(failed.format(pool_name), exc) from None
        ctx.extra(done.format(pool_name) + "\n")


def _build_flags(opts: dict[str, Any]) -> int:
    return (_BUILD_NO_OVERWRITE if opts["no-overwrite"] else 0) | (_BUILD_OVERWRITE if opts["overwrite"] else 0)


def _create_flags(opts: dict[str, Any]) -> int:
    exclusive(opts, "overwrite", "no-overwrite")
    return ((_CREATE_BUILD if opts["build"] else 0) | (_CREATE_OVERWRITE if opts["overwrite"] else 0)
            | (_CREATE_NO_OVERWRITE if opts["no-overwrite"] else 0))


_simple("pool-build", "build", "Pool {} built", "Failed to build pool {}", "build a pool", *_BUILD_OPTS[1:],
        flags=_build_flags)
_simple("pool-start", "start", "Pool {} started", "Failed to start pool {}",
        "start a (previously defined) inactive pool", *_BUILD_OPTS, flags=_create_flags)
_simple("pool-destroy", "destroy", "Pool {} destroyed", "Failed to destroy pool {}", "destroy (stop) a pool")
_simple("pool-delete", "delete", "Pool {} deleted", "Failed to delete pool {}", "delete a pool",
        flags=lambda opts: 0)
_simple("pool-undefine", "undefine", "Pool {} has been undefined", "Failed to undefine pool {}",
        "undefine an inactive pool")
_simple("pool-refresh", "refresh", "Pool {} refreshed", "Failed to refresh pool {}", "refresh a pool",
        flags=lambda opts: 0)


@command("pool-autostart", _POOL_OPT, Opt("disable", "bool", "disable autostarting"), group=POOL,
         help="autostart a pool")
def cmd_pool_autostart(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["pool"]
    pool = lookup_pool(ctx, name)
    enable = not opts["disable"]
    try:
        pool.set_autostart(enable)
    except VirtError as exc:
        raise CommandError(f"failed to {'mark' if enable else 'unmark'} pool {name} as autostarted", exc) from None
    ctx.extra(f"Pool {name} {'marked' if enable else 'unmarked'} as autostarted\n")


@command("pool-uuid", _POOL_OPT, group=POOL, help="convert a pool name to pool UUID")
def cmd_pool_uuid(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_pool(ctx, opts["pool"], by_uuid=False).uuid)


@command("pool-name", _POOL_OPT, group=POOL, help="convert a pool UUID to pool name")
def cmd_pool_name(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_pool(ctx, opts["pool"], by_name=False).name)


@command("pool-define", _FILE_OPT, Opt("validate", "bool", "validate the XML against the schema"), group=POOL,
         help="define an inactive persistent storage pool or modify an existing persistent one from an XML file")
def cmd_pool_define(ctx: Context, opts: dict[str, Any]) -> None:
    path = opts["file"]
    xml = read_xml_file(path)
    try:
        pool = ctx.conn.define_storage_pool(xml, 1 if opts["validate"] else 0)
    except VirtError as exc:
        raise CommandError(f"Failed to define pool from {path}", exc) from None
    ctx.extra(f"Pool {pool.name} defined from {path}\n")


@command("pool-create", _FILE_OPT, *_BUILD_OPTS, group=POOL, help="create a pool from an XML file")
def cmd_pool_create(ctx: Context, opts: dict[str, Any]) -> None:
    path = opts["file"]
    flags = _create_flags(opts)
    xml = read_xml_file(path)
    try:
        pool = ctx.conn.create_storage_pool(xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create pool from {path}", exc) from None
    ctx.extra(f"Pool {pool.name} created from {path}\n")


def pool_xml(opts: dict[str, Any]) -> str:
    """virsh's ``virshBuildPoolXML``: the ``<pool>`` the ``pool-*-as`` options describe."""
    exclusive(opts, "secret-usage", "secret-uuid")

    def q(key: str) -> str:
        return escape(str(opts[key]))

    lines = [f"<pool type='{q('type')}'>", f"  <name>{q('name')}</name>"]
    has_adapter = opts["adapter-wwnn"] and opts["adapter-wwpn"]
    if any(opts[k] for k in ("source-host", "source-path", "source-dev", "source-initiator", "source-format",
                             "source-name", "adapter-name")) or has_adapter:
        lines.append("  <source>")
        if opts["source-host"]:
            lines.append(f"    <host name='{q('source-host')}'/>")
        if opts["source-path"]:
            lines.append(f"    <dir path='{q('source-path')}'/>")
        if opts["source-dev"]:
            lines.append(f"    <device path='{q('source-dev')}'/>")
        if opts["source-initiator"]:
            lines += ["    <initiator>", f"      <iqn name='{q('source-initiator')}'/>", "    </initiator>"]
        if has_adapter:
            parent = ""
            if opts["adapter-parent"]:
                parent = f" parent='{q('adapter-parent')}'"
            elif opts["adapter-parent-wwnn"] and opts["adapter-parent-wwpn"]:
                parent = f" parent_wwnn='{q('adapter-parent-wwnn')}' parent_wwpn='{q('adapter-parent-wwpn')}'"
            elif opts["adapter-parent-fabric-wwn"]:
                parent = f" parent_fabric_wwn='{q('adapter-parent-fabric-wwn')}'"
            lines.append(f"    <adapter type='fc_host'{parent} wwnn='{q('adapter-wwnn')}' wwpn='{q('adapter-wwpn')}'/>")
        elif opts["adapter-name"]:
            lines.append(f"    <adapter type='scsi_host' name='{q('adapter-name')}'/>")
        if opts["auth-type"] and opts["auth-username"] and (opts["secret-usage"] or opts["secret-uuid"]):
            lines.append(f"    <auth type='{q('auth-type')}' username='{q('auth-username')}'>")
            if opts["secret-usage"]:
                lines.append(f"      <secret usage='{q('secret-usage')}'/>")
            else:
                lines.append(f"      <secret uuid='{q('secret-uuid')}'/>")
            lines.append("    </auth>")
        if opts["source-format"]:
            lines.append(f"    <format type='{q('source-format')}'/>")
        if opts["source-name"]:
            lines.append(f"    <name>{q('source-name')}</name>")
        if opts["source-protocol-ver"]:
            lines.append(f"    <protocol ver='{q('source-protocol-ver')}'/>")
        lines.append("  </source>")
    if opts["target"]:
        lines += ["  <target>", f"    <path>{q('target')}</path>", "  </target>"]
    lines.append("</pool>")
    return "\n".join(lines) + "\n"


@command("pool-define-as", *_X_AS_OPTS, group=POOL, help="define a pool from a set of args")
def cmd_pool_define_as(ctx: Context, opts: dict[str, Any]) -> None:
    xml = pool_xml(opts)
    if opts["print-xml"]:
        ctx.print(xml, end="")
        return
    try:
        ctx.conn.define_storage_pool(xml)
    except VirtError as exc:
        raise CommandError(f"Failed to define pool {opts['name']}", exc) from None
    ctx.extra(f"Pool {opts['name']} defined\n")


@command("pool-create-as", *_X_AS_OPTS, *_BUILD_OPTS, group=POOL, help="create a pool from a set of args")
def cmd_pool_create_as(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _create_flags(opts)
    xml = pool_xml(opts)
    if opts["print-xml"]:
        ctx.print(xml, end="")
        return
    try:
        ctx.conn.create_storage_pool(xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create pool {opts['name']}", exc) from None
    ctx.extra(f"Pool {opts['name']} created\n")


# -- volumes ----------------------------------------------------------------------------------


def _vol_type(kind: int) -> str:
    """virsh's ``virshVolumeTypeToString``: the :class:`VolumeType` name in lower case."""
    try:
        return VolumeType(kind).name.lower()
    except ValueError:
        return "unknown"


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError:
        raise CommandError(f"Malformed size {text}") from None
    except VirtError as exc:
        raise CommandError(f"Malformed size {text}", exc) from None


@command("vol-list", Opt("pool", required=True, positional=True, help="pool name or uuid"),
         Opt("details", "bool", "display extended details for volumes"), json=True, group=VOLUME, help="list vols")
def cmd_vol_list(ctx: Context, opts: dict[str, Any]) -> None:
    pool = lookup_pool(ctx, opts["pool"])
    try:
        vols = sorted_by_name(pool.list_volumes(), lambda v: v.name)
    except VirtError as exc:
        raise CommandError("Failed to list volumes", exc) from None
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []
    for vol in vols:
        record: dict[str, Any] = {"name": vol.name, "path": vol.path, "key": vol.key}
        if opts["details"] or ctx.want_json:
            try:
                info = vol.info()
                kind, cap, alloc = _vol_type(info.type), format_capacity(info.capacity), format_capacity(
                    info.allocation)
                record.update(type=kind, capacity=info.capacity, allocation=info.allocation)
            except VirtError:
                kind = cap = alloc = "unknown"
            rows.append([vol.name, vol.path, kind, cap, alloc])
        else:
            rows.append([vol.name, vol.path])
        records.append(record)
    if opts["details"]:
        ctx.table(["Name", "Path", "Type", "Capacity", "Allocation"], rows, records)
    else:
        ctx.table(["Name", "Path"], rows, records)


@command("vol-info", _VOL_OPT, _OPT_POOL,
         Opt("bytes", "bool", "sizes are represented in bytes rather than pretty units"),
         Opt("physical", "bool", "return the physical size of the volume in allocation field"), json=True,
         group=VOLUME, help="storage vol information")
def cmd_vol_info(ctx: Context, opts: dict[str, Any]) -> None:
    vol = lookup_volume(ctx, opts["vol"], opts["pool"])
    if opts["physical"]:
        from virt._errors import ErrorNumber

        if not ctx.want_json:
            ctx.print(f"{'Name:':<15} {vol.name}")
        raise CommandError(None, VirtError(ErrorNumber.NO_SUPPORT, "virStorageVolGetInfoFlags"))
    try:
        info = vol.info()
    except VirtError as exc:
        if not ctx.want_json:
            ctx.print(f"{'Name:':<15} {vol.name}")
        raise CommandError(None, exc) from None
    size_label = "Allocation"
    pairs: list[tuple[str, Any]] = [("Name", vol.name), ("Type", _vol_type(info.type))]
    if opts["bytes"]:
        pairs += [("Capacity", f"{info.capacity} bytes"), (size_label, f"{info.allocation} bytes")]
    else:
        pairs += [("Capacity", format_capacity(info.capacity)), (size_label, format_capacity(info.allocation))]
    record = {"name": vol.name, "type": _vol_type(info.type), "capacity": info.capacity,
              "allocation": info.allocation}
    ctx.fields(pairs, record=record)


@command("vol-dumpxml", _VOL_OPT, _OPT_POOL, *XPATH_OPTS, group=VOLUME, help="vol information in XML")
def cmd_vol_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    vol = lookup_volume(ctx, opts["vol"], opts["pool"])
    dump_xml(ctx, vol.xml(), opts["xpath"], opts["wrap"])


def volume_xml(name: str, capacity: int, allocation: int | None, fmt: str | None,
               backing: tuple[str, str | None] | None) -> str:
    """The ``<volume>`` ``vol-create-as`` builds."""
    lines = ["<volume>", f"  <name>{escape(name)}</name>", f"  <capacity>{capacity}</capacity>"]
    if allocation is not None:
        lines.append(f"  <allocation>{allocation}</allocation>")
    if fmt:
        lines += ["  <target>", f"    <format type='{escape(fmt)}'/>", "  </target>"]
    if backing is not None:
        lines += ["  <backingStore>", f"    <path>{escape(backing[0])}</path>"]
        if backing[1]:
            lines.append(f"    <format type='{escape(backing[1])}'/>")
        lines.append("  </backingStore>")
    lines.append("</volume>")
    return "\n".join(lines) + "\n"


@command("vol-create-as", Opt("pool", required=True, positional=True, help="pool name"),
         Opt("name", required=True, positional=True, help="name of the volume"),
         Opt("capacity", required=True, positional=True, help="size of the vol, as scaled integer (default bytes)"),
         Opt("allocation", help="initial allocation size, as scaled integer (default bytes)"),
         Opt("format", help="file format type raw,bochs,qcow,qcow2,qed,vmdk"),
         Opt("backing-vol", help="the backing volume if taking a snapshot"),
         Opt("backing-vol-format", help="format of backing volume if taking a snapshot"),
         Opt("prealloc-metadata", "bool", "preallocate metadata (for qcow2 instead of full allocation)"),
         Opt("print-xml", "bool", "print XML document, but don't define/create"), group=VOLUME,
         help="create a volume from a set of args")
def cmd_vol_create_as(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _PREALLOC if opts["prealloc-metadata"] else 0
    pool = lookup_pool(ctx, opts["pool"])
    name = opts["name"]
    capacity = _size(opts["capacity"])
    allocation = _size(opts["allocation"]) if opts["allocation"] is not None else None
    backing: tuple[str, str | None] | None = None
    if opts["backing-vol"] is not None:
        source = opts["backing-vol"]
        found, _ = _find_volume(ctx.conn, pool, source)
        if found is None:
            raise CommandError(f"failed to get vol '{source}'")
        backing = (found.path, opts["backing-vol-format"])
    xml = volume_xml(name, capacity, allocation, opts["format"], backing)
    if opts["print-xml"]:
        ctx.print(xml, end="")
        return
    try:
        pool.create_volume(xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create vol {name}", exc) from None
    ctx.extra(f"Vol {name} created\n")


@command("vol-create", Opt("pool", required=True, positional=True, help="pool name"),
         Opt("file", required=True, positional=True, help="file containing an XML vol description"),
         Opt("prealloc-metadata", "bool", "preallocate metadata (for qcow2 instead of full allocation)"),
         Opt("validate", "bool", "validate the XML against the schema"), group=VOLUME,
         help="create a vol from an XML file")
def cmd_vol_create(ctx: Context, opts: dict[str, Any]) -> None:
    flags = (_PREALLOC if opts["prealloc-metadata"] else 0) | (_VALIDATE if opts["validate"] else 0)
    pool = lookup_pool(ctx, opts["pool"])
    path = opts["file"]
    xml = read_xml_file(path)
    try:
        vol = pool.create_volume(xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create vol from {path}", exc) from None
    ctx.extra(f"Vol {vol.name} created from {path}\n")


@command("vol-create-from", Opt("pool", required=True, positional=True, help="pool name or uuid"),
         Opt("file", required=True, positional=True, help="file containing an XML vol description"), _VOL_OPT,
         Opt("inputpool", help="pool name or uuid of the input volume's pool"),
         Opt("prealloc-metadata", "bool", "preallocate metadata (for qcow2 instead of full allocation)"),
         Opt("reflink", "bool", "use btrfs COW lightweight copy"),
         Opt("validate", "bool", "validate the XML against the schema"), group=VOLUME,
         help="create a vol, using another volume as input")
def cmd_vol_create_from(ctx: Context, opts: dict[str, Any]) -> None:
    pool = lookup_pool(ctx, opts["pool"])
    flags = ((_PREALLOC if opts["prealloc-metadata"] else 0) | (_REFLINK if opts["reflink"] else 0)
             | (_VALIDATE if opts["validate"] else 0))
    path = opts["file"]
    source = lookup_volume(ctx, opts["vol"], opts["inputpool"])
    xml = read_xml_file(path)
    try:
        vol = pool.create_volume_from(xml, source, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create vol from {path}", exc) from None
    ctx.extra(f"Vol {vol.name} created from input vol {source.name}\n")


@command("vol-clone", _VOL_OPT, Opt("newname", required=True, positional=True, help="clone name"), _OPT_POOL,
         Opt("prealloc-metadata", "bool", "preallocate metadata (for qcow2 instead of full allocation)"),
         Opt("reflink", "bool", "use btrfs COW lightweight copy"), group=VOLUME, help="clone a volume.")
def cmd_vol_clone(ctx: Context, opts: dict[str, Any]) -> None:
    source = lookup_volume(ctx, opts["vol"], opts["pool"])
    flags = (_PREALLOC if opts["prealloc-metadata"] else 0) | (_REFLINK if opts["reflink"] else 0)
    try:
        pool = source.pool()
    except VirtError as exc:
        raise CommandError("failed to get parent pool", exc) from None
    root = etree.fromstring(source.xml().encode())
    name_el = root.find("name")
    if name_el is None:
        raise CommandError("Failed to allocate XML buffer")
    name_el.text = opts["newname"]
    xml = etree.tostring(root, encoding="unicode")
    try:
        vol = pool.create_volume_from(xml, source, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to clone vol from {source.name}", exc) from None
    ctx.extra(f"Vol {vol.name} cloned from {source.name}\n")


@command("vol-delete", _VOL_OPT, _OPT_POOL,
         Opt("delete-snapshots", "bool", "delete snapshots associated with volume (must be supported by storage "
                                         "driver)"), group=VOLUME, help="delete a vol")
def cmd_vol_delete(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["vol"]
    vol = lookup_volume(ctx, name, opts["pool"])
    try:
        vol.delete(2 if opts["delete-snapshots"] else 0)
    except VirtError as exc:
        raise CommandError(f"Failed to delete vol {name}", exc) from None
    ctx.extra(f"Vol {name} deleted\n")


@command("vol-wipe", _VOL_OPT, _OPT_POOL, Opt("algorithm", help="perform selected wiping algorithm"), group=VOLUME,
         help="wipe a vol")
def cmd_vol_wipe(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["vol"]
    vol = lookup_volume(ctx, name, opts["pool"])
    algorithm = 0
    if opts["algorithm"] is not None:
        if opts["algorithm"] not in _WIPE_ALGORITHMS:
            raise CommandError(f"Unsupported algorithm '{opts['algorithm']}'")
        algorithm = _WIPE_ALGORITHMS.index(opts["algorithm"])
    try:
        vol.wipe(algorithm)
    except VirtError as exc:
        raise CommandError(f"Failed to wipe vol {name}", exc) from None
    ctx.extra(f"Vol {name} wiped\n")


@command("vol-resize", _VOL_OPT,
         Opt("capacity", required=True, positional=True,
             help="new capacity for the vol, as scaled integer (default bytes)"), _OPT_POOL,
         Opt("allocate", "bool", "allocate the new capacity, rather than leaving it sparse"),
         Opt("delta", "bool", "use capacity as a delta to current size, rather than the new size"),
         Opt("shrink", "bool", "allow the resize to shrink the volume"), group=VOLUME, help="resize a vol")
def cmd_vol_resize(ctx: Context, opts: dict[str, Any]) -> None:
    flags = (_RESIZE_ALLOCATE if opts["allocate"] else 0) | (_RESIZE_SHRINK if opts["shrink"] else 0)
    delta = bool(opts["delta"])
    vol = lookup_volume(ctx, opts["vol"], opts["pool"])
    text = opts["capacity"].lstrip(" \t\n\v\f\r")
    if text.startswith("-"):
        if not opts["shrink"]:
            raise CommandError("negative size requires --shrink")
        text = text[1:]
        delta = True
    if delta:
        flags |= _RESIZE_DELTA
    capacity = _size(text)
    try:
        vol.resize(capacity, flags)
    except VirtError as exc:
        how = "by" if delta else "to"
        raise CommandError(f"Failed to change size of volume '{vol.name}' {how} {text}", exc) from None
    ctx.extra(f"Size of volume '{vol.name}' successfully changed {'by' if delta else 'to'} {text}\n")


@command("vol-path", Opt("vol", required=True, positional=True, help="volume name or key"), _OPT_POOL, group=VOLUME,
         help="returns the volume path for a given volume name or key")
def cmd_vol_path(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_volume(ctx, opts["vol"], opts["pool"]).path)


@command("vol-key", Opt("vol", required=True, positional=True, help="volume name or path"), _OPT_POOL, group=VOLUME,
         help="returns the volume key for a given volume name or path")
def cmd_vol_key(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_volume(ctx, opts["vol"], opts["pool"]).key)


@command("vol-name", Opt("vol", required=True, positional=True, help="volume key or path"), group=VOLUME,
         help="returns the volume name for a given volume key or path")
def cmd_vol_name(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(lookup_volume(ctx, opts["vol"], None, pool_option=False).name)


@command("vol-pool", Opt("vol", required=True, positional=True, help="volume key or path"),
         Opt("uuid", "bool", "return the pool uuid rather than pool name"), group=VOLUME,
         help="returns the storage pool for a given volume key or path")
def cmd_vol_pool(ctx: Context, opts: dict[str, Any]) -> None:
    vol = lookup_volume(ctx, opts["vol"], None, pool_option=False)
    try:
        pool = vol.pool()
    except VirtError as exc:
        raise CommandError("failed to get parent pool", exc) from None
    ctx.print(pool.uuid if opts["uuid"] else pool.name)


def _progress(ctx: Context, label: str) -> Any:
    """A rich progress bar on a terminal (``(callback, stop)``), else ``(None, no-op)``."""
    try:
        tty = bool(ctx.out.isatty()) and not ctx.quiet and not ctx.want_json
    except (AttributeError, ValueError):
        tty = False
    if tty:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
        except ImportError:
            tty = False
    if not tty:
        return None, lambda: None
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(file=ctx.out), transient=True)
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def _offset_length(opts: dict[str, Any]) -> tuple[int, int]:
    values = []
    for name in ("offset", "length"):
        value = opts[name] or 0
        if not 0 <= value < 1 << 64:  # virsh reads them as unsigned long long
            raise CommandError(f"Numeric value '{value}' for <{name}> option is malformed or out of range")
        values.append(value)
    return values[0], values[1]


_STREAM_OPTS = (_VOL_OPT, Opt("file", required=True, positional=True, help="file"), _OPT_POOL)


@command("vol-upload", *_STREAM_OPTS, Opt("offset", "int", "volume offset to upload to"),
         Opt("length", "int", "amount of data to upload"), Opt("sparse", "bool", "preserve sparseness of volume"),
         group=VOLUME, help="upload file contents to a volume")
def cmd_vol_upload(ctx: Context, opts: dict[str, Any]) -> None:
    offset, length = _offset_length(opts)
    vol = lookup_volume(ctx, opts["vol"], opts["pool"])
    path = opts["file"]
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        raise CommandError(f"cannot read {path}") from None
    update, stop = _progress(ctx, f"{vol.name} <- {path}")
    try:
        vol.upload(source, offset=offset, length=length, progress=update, flags=1 if opts["sparse"] else 0)
    except VirtError as exc:
        raise CommandError(f"cannot upload to volume {opts['vol']}", exc) from None
    finally:
        stop()
        source.close()


@command("vol-download", *_STREAM_OPTS, Opt("offset", "int", "volume offset to download from"),
         Opt("length", "int", "amount of data to download"), Opt("sparse", "bool", "preserve sparseness of volume"),
         group=VOLUME, help="download volume contents to a file")
def cmd_vol_download(ctx: Context, opts: dict[str, Any]) -> None:
    import os

    offset, length = _offset_length(opts)
    vol = lookup_volume(ctx, opts["vol"], opts["pool"])
    path = opts["file"]
    created = not os.path.exists(path)
    try:
        out = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError:
        raise CommandError(f"cannot create {path}") from None
    update, stop = _progress(ctx, f"{vol.name} -> {path}")
    try:
        vol.download(out, offset=offset, length=length, progress=update, flags=1 if opts["sparse"] else 0)
    except VirtError as exc:
        out.close()
        if created:
            os.unlink(path)
        raise CommandError(f"cannot download from volume {opts['vol']}", exc) from None
    finally:
        stop()
        out.close()
