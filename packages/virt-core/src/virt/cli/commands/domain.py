"""virt CLI: domain commands, with virsh's names, options and output."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from virt._errors import ErrorNumber, VirtError
from virt._records import STATE_NAMES, DomainState, state_reason_name
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.node import XPATH_OPTS, dump_xml, exclusive, format_capacity, parse_size, read_xml_file

if TYPE_CHECKING:
    from virt._records import DomainEvent

__all__ = ["DOMAIN_OPT", "event_text", "lookup_domain"]

GROUP = "Domain Management"
MONITOR = "Domain Monitoring"

DOMAIN_OPT = Opt("domain", required=True, positional=True, help="domain name, id or uuid")

_BY_ID, _BY_UUID, _BY_NAME = 1, 2, 4
_UUID_LEN = 36

# libvirt flag values the commands pass on
_AFFECT_LIVE, _AFFECT_CONFIG = 1, 2
_MEM_MAXIMUM = _VCPU_MAXIMUM = 4
_VCPU_GUEST = 8
_VCPU_HOTPLUGGABLE = 16
_TYPED_PARAM_STRING_OKAY = 4
_TIME_SYNC = 1
_META_DESCRIPTION, _META_TITLE = 0, 1
_MEMORY_UNLIMITED = 9007199254740991
_LIST_FLAGS = {
    "persistent": 4, "transient": 8, "with-managed-save": 256, "without-managed-save": 512,
    "autostart": 1024, "no-autostart": 2048, "with-snapshot": 4096, "without-snapshot": 8192,
    "with-checkpoint": 16384, "without-checkpoint": 32768, "state-running": 16, "state-paused": 32,
    "state-shutoff": 64, "state-other": 128,
}
_EVENT_NAMES = ("Defined", "Undefined", "Started", "Suspended", "Resumed", "Stopped", "Shutdown",
                "PMSuspended", "Crashed")
_EVENT_DETAILS = (
    ("Added", "Updated", "Renamed", "Snapshot"),
    ("Removed", "Renamed"),
    ("Booted", "Migrated", "Restored", "Snapshot", "Event wakeup"),
    ("Paused", "Migrated", "I/O Error", "Watchdog", "Restored", "Snapshot", "API error", "Post-copy",
     "Post-copy Error"),
    ("Unpaused", "Migrated", "Snapshot", "Post-copy", "Post-copy Error"),
    ("Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "Snapshot"),
    ("Finished", "Finished after guest request", "Finished after host request"),
    ("Memory", "Disk"),
    ("Panicked", "Crashloaded"),
)
# The domain events virsh knows by name (`event --list`); only lifecycle is ever reported here.
_EVENT_KINDS = (
    "lifecycle", "reboot", "rtc-change", "watchdog", "io-error", "graphics", "io-error-reason",
    "control-error", "block-job", "disk-change", "tray-change", "pm-wakeup", "pm-suspend",
    "balloon-change", "pm-suspend-disk", "device-removed", "block-job-2", "tunable", "agent-lifecycle",
    "device-added", "migration-iteration", "job-completed", "device-removal-failed", "metadata-change",
    "block-threshold", "memory-failure", "memory-device-size-change",
)


# -- helpers --------------------------------------------------------------------------------


def lookup_domain(ctx: Context, name: str, by: int = _BY_ID | _BY_UUID | _BY_NAME) -> Any:
    """virsh's domain lookup: as an id, then as a UUID, then as a name."""
    conn = ctx.conn
    if by & _BY_ID and re.fullmatch(r"\s*\+?\d+", name):
        try:
            return conn.lookup_domain_by_id(int(name))
        except VirtError:
            pass
    if by & _BY_UUID and len(name) == _UUID_LEN:
        try:
            return conn.lookup_domain_by_uuid(name)
        except VirtError:
            pass
    if by & _BY_NAME:
        try:
            return conn.lookup_domain(name)
        except VirtError:
            pass
    raise CommandError(f"failed to get domain '{name}'")


def _dom(ctx: Context, opts: dict[str, Any], by: int = _BY_ID | _BY_UUID | _BY_NAME) -> Any:
    return lookup_domain(ctx, opts["domain"], by)


def _affect_flags(opts: dict[str, Any]) -> int:
    """--current / --live / --config as virsh turns them into VIR_DOMAIN_AFFECT_* bits."""
    exclusive(opts, "current", "live")
    exclusive(opts, "current", "config")
    flags = 0
    if opts.get("live"):
        flags |= _AFFECT_LIVE
    if opts.get("config"):
        flags |= _AFFECT_CONFIG
    return flags


_AFFECT_OPTS = (
    Opt("config", "bool", "affect next boot"),
    Opt("live", "bool", "affect running domain"),
    Opt("current", "bool", "affect current domain"),
)

def _scaled_kib(value: str, opt: str) -> int:
    """virsh's ``vshCommandOptScaledInt`` with KiB as the default unit (setmem, setmaxmem):
    a size with an optional unit suffix, in KiB."""
    malformed = f"Scaled numeric value '{value}' for <{opt}> option is malformed or out of range"
    try:
        nbytes = parse_size(value, unit=1024)
    except ValueError:
        raise CommandError(malformed) from None
    except VirtError as exc:
        raise CommandError(malformed, exc) from None
    return nbytes // 1024


def _state_name(state: int) -> str:
    return STATE_NAMES.get(DomainState(state), "no state")


def _xml_tree(dom: Any, flags: int = 0) -> Any:
    from lxml import etree

    return etree.fromstring(dom.xml(flags=flags).encode("utf-8"))


def _title(dom: Any) -> str:
    try:
        return str(dom.metadata(_META_TITLE))
    except VirtError as exc:
        if exc.code == ErrorNumber.NO_DOMAIN_METADATA:
            return ""
        raise


# -- listing ----------------------------------------------------------------------------------


@command("list", Opt("inactive", "bool", "list inactive domains"), Opt("all", "bool", "list inactive & active domains"),
         Opt("transient", "bool", "list transient domains"), Opt("persistent", "bool", "list persistent domains"),
         Opt("with-snapshot", "bool", "list domains with existing snapshot"),
         Opt("without-snapshot", "bool", "list domains without a snapshot"),
         Opt("with-checkpoint", "bool", "list domains with existing checkpoint"),
         Opt("without-checkpoint", "bool", "list domains without a checkpoint"),
         Opt("state-running", "bool", "list domains in running state"),
         Opt("state-paused", "bool", "list domains in paused state"),
         Opt("state-shutoff", "bool", "list domains in shutoff state"),
         Opt("state-other", "bool", "list domains in other states"),
         Opt("autostart", "bool", "list domains with autostart enabled"),
         Opt("no-autostart", "bool", "list domains with autostart disabled"),
         Opt("with-managed-save", "bool", "list domains with managed save state"),
         Opt("without-managed-save", "bool", "list domains without managed save"),
         Opt("uuid", "bool", "list uuid's only"), Opt("name", "bool", "list domain names only"),
         Opt("id", "bool", "list domain IDs only"), Opt("table", "bool", "list table (default)"),
         Opt("managed-save", "bool", "mark inactive domains with managed save state"),
         Opt("title", "bool", "show domain title"),
         help="list domains", group=MONITOR, json=True)
def cmd_list(ctx: Context, opts: dict[str, Any]) -> None:
    flags = 1  # VIR_CONNECT_LIST_DOMAINS_ACTIVE
    if opts["inactive"] or opts["state-shutoff"]:
        flags = 2
    if opts["all"]:
        flags = 3
    for name, bit in _LIST_FLAGS.items():
        if opts[name]:
            flags |= bit
    exclusive(opts, "table", "name")
    exclusive(opts, "table", "id")
    want_uuid, want_name, want_id = opts["uuid"], opts["name"], opts["id"]
    table = opts["table"] or not (want_uuid or want_name or want_id)
    conn = ctx.conn
    try:
        domains = conn.list_domains(flags=flags)
    except VirtError as exc:
        raise CommandError("Failed to list domains", exc) from None
    entries = []
    for dom in domains:
        try:
            dom_id = dom.id
            state = int(dom.state()[0]) if table or ctx.want_json else -1
        except VirtError:
            continue  # gone in the meantime
        entries.append((dom, dom_id, state))
    running = sorted((e for e in entries if e[1] >= 0), key=lambda e: e[1])
    inactive = sorted((e for e in entries if e[1] < 0), key=lambda e: e[0].name.casefold())
    entries = running + inactive
    if table or ctx.want_json:
        headers = ["Id", "Name", "State"]
        if opts["title"]:
            headers.append("Title")
        if want_uuid:
            headers.append("UUID")
        rows, records = [], []
        for dom, dom_id, state in entries:
            state_text = _state_name(state)
            if opts["managed-save"] and state == DomainState.SHUTOFF and dom.has_managed_save_image():
                state_text = "saved"
            row = ["-" if dom_id < 0 else str(dom_id), dom.name, state_text]
            record: dict[str, Any] = {"id": None if dom_id < 0 else dom_id, "name": dom.name,
                                      "state": state_text}
            if opts["title"]:
                title = _title(dom)
                row.append(title)
                record["title"] = title
            if want_uuid or ctx.want_json:
                if want_uuid:
                    row.append(dom.uuid)
                record["uuid"] = dom.uuid
            rows.append(row)
            records.append(record)
        ctx.table(headers, rows, records)
        return
    for dom, dom_id, _ in entries:
        parts = []
        if want_uuid:
            parts.append(dom.uuid)
        if want_id:
            if dom_id < 0 and not want_uuid and not want_name:
                continue
            parts.append("-" if dom_id < 0 else str(dom_id))
        if want_name:
            parts.append(dom.name)
        ctx.print(" ".join(parts))


@command("dominfo", DOMAIN_OPT, help="domain information", group=MONITOR, json=True)
def cmd_dominfo(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    dom_id = dom.id
    pairs: list[tuple[str, Any]] = [("Id", "-" if dom_id < 0 else dom_id), ("Name", dom.name), ("UUID", dom.uuid)]
    record: dict[str, Any] = {"id": None if dom_id < 0 else dom_id, "name": dom.name, "uuid": dom.uuid}
    failed: VirtError | None = None
    try:
        os_type = dom.os_type()
        pairs.append(("OS Type", os_type))
        record["os_type"] = os_type
    except VirtError:
        pass
    try:
        info = dom.info()
    except VirtError as exc:
        failed = exc
    else:
        pairs.append(("State", _state_name(info.state)))
        pairs.append(("CPU(s)", info.nr_virt_cpu))
        if info.cpu_time:
            pairs.append(("CPU time", f"{info.cpu_time / 1e9:.1f}s"))
        pairs.append(("Max memory", "no limit" if info.max_memory == 0xFFFFFFFF else f"{info.max_memory} KiB"))
        pairs.append(("Used memory", f"{info.memory} KiB"))
        record.update(state=_state_name(info.state), cpus=info.nr_virt_cpu, cpu_time=info.cpu_time,
                      max_memory=info.max_memory, used_memory=info.memory)
    persistent = dom.is_persistent()
    pairs.append(("Persistent", "yes" if persistent else "no"))
    autostart = dom.autostart
    pairs.append(("Autostart", "enable" if autostart else "disable"))
    managed = dom.has_managed_save_image()
    pairs.append(("Managed save", "yes" if managed else "no"))
    record.update(persistent=persistent, autostart=autostart, managed_save=managed)
    # As virsh: a driver without a security model prints nothing about it, and the label
    # line appears only when the domain has one (running, confined).
    try:
        security = ctx.conn.security_model()
    except VirtError as exc:
        if exc.code != ErrorNumber.NO_SUPPORT:
            raise
    else:
        if security.model:
            pairs.append(("Security model", security.model))
            pairs.append(("Security DOI", security.doi))
            record.update(security_model=security.model, security_doi=security.doi)
            label = dom.security_label()
            if label.label:
                mode = "enforcing" if label.enforcing else "permissive"
                pairs.append(("Security label", f"{label.label} ({mode})"))
                record.update(security_label=label.label, security_enforcing=label.enforcing)
    ctx.fields(pairs, record=record)
    if failed is not None:
        raise failed


@command("domstate", DOMAIN_OPT, Opt("reason", "bool", "also print reason for the state"),
         help="domain state", group=MONITOR, json=True)
def cmd_domstate(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    state, reason = dom.state()
    text = _state_name(state)
    if ctx.want_json:
        ctx.emit_json({"state": text, "reason": state_reason_name(state, reason)})
    elif opts["reason"]:
        ctx.print(f"{text} ({state_reason_name(state, reason)})")
    else:
        ctx.print(text)


@command("domid", Opt("domain", required=True, positional=True, help="domain name or uuid"),
         help="convert a domain name or UUID to domain id", group=GROUP)
def cmd_domid(ctx: Context, opts: dict[str, Any]) -> None:
    dom_id = _dom(ctx, opts, _BY_NAME | _BY_UUID).id
    ctx.print("-" if dom_id < 0 else str(dom_id))


@command("domuuid", Opt("domain", required=True, positional=True, help="domain id or name"),
         help="convert a domain name or id to domain UUID", group=GROUP)
def cmd_domuuid(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(_dom(ctx, opts, _BY_ID | _BY_NAME).uuid)


@command("domname", Opt("domain", required=True, positional=True, help="domain id or uuid"),
         help="convert a domain id or UUID to domain name", group=GROUP)
def cmd_domname(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(_dom(ctx, opts, _BY_ID | _BY_UUID).name)


@command("dumpxml", DOMAIN_OPT, Opt("inactive", "bool", "show inactive defined XML"),
         Opt("security-info", "bool", "include security sensitive information in XML dump"),
         Opt("update-cpu", "bool", "update guest CPU according to host CPU"),
         Opt("migratable", "bool", "provide XML suitable for migrations"),
         *XPATH_OPTS, help="domain information in XML", group=GROUP)
def cmd_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    flags = ((1 if opts["security-info"] else 0) | (2 if opts["inactive"] else 0)
             | (4 if opts["update-cpu"] else 0) | (8 if opts["migratable"] else 0))
    dump_xml(ctx, _dom(ctx, opts).xml(flags=flags), opts["xpath"], opts["wrap"])


@command("domblklist", DOMAIN_OPT, Opt("inactive", "bool", "get inactive rather than running configuration"),
         Opt("details", "bool", "additionally display the type and device value"),
         help="list all domain blocks", group=MONITOR, json=True)
def cmd_domblklist(ctx: Context, opts: dict[str, Any]) -> None:
    root = _xml_tree(_dom(ctx, opts), 2 if opts["inactive"] else 0)
    rows, records = [], []
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        if dev is None:
            raise CommandError("unable to query block list")
        source = disk.find("source")
        src = None
        if source is not None:
            for key in ("file", "dev", "dir", "name", "volume", "path"):
                if source.get(key) is not None:
                    src = source.get(key)
                    break
        kind, device = disk.get("type") or "", disk.get("device") or "disk"
        rows.append([kind, device, dev, src or "-"] if opts["details"] else [dev, src or "-"])
        records.append({"type": kind, "device": device, "target": dev, "source": src})
    headers = ["Type", "Device", "Target", "Source"] if opts["details"] else ["Target", "Source"]
    ctx.table(headers, rows, records)


@command("domiflist", DOMAIN_OPT, Opt("inactive", "bool", "get inactive rather than running configuration"),
         help="list all domain virtual interfaces", group=MONITOR, json=True)
def cmd_domiflist(ctx: Context, opts: dict[str, Any]) -> None:
    root = _xml_tree(_dom(ctx, opts), 2 if opts["inactive"] else 0)
    rows, records = [], []
    for net in root.iterfind("devices/interface"):
        source = net.find("source")
        src = None
        if source is not None:
            for key in ("bridge", "dev", "network", "name", "path"):
                if source.get(key) is not None:
                    src = source.get(key)
                    break
        target = net.find("target")
        model = net.find("model")
        mac = net.find("mac")
        record = {
            "interface": target.get("dev") if target is not None else None, "type": net.get("type") or "",
            "source": src, "model": model.get("type") if model is not None else None,
            "mac": mac.get("address") if mac is not None else None,
        }
        records.append(record)
        rows.append([str(record["interface"] or "-"), str(record["type"]), src or "-",
                     str(record["model"] or "-"), str(record["mac"] or "-")])
    ctx.table(["Interface", "Type", "Source", "Model", "MAC"], rows, records)


@command("domifaddr", DOMAIN_OPT, Opt("interface", positional=True, help="network interface name"),
         Opt("full", "bool", "always display names and MACs of interfaces"),
         Opt("source", help="address source: 'lease', 'agent', or 'arp'"),
         help="Get network interfaces' addresses for a running domain", group=MONITOR, json=True)
def cmd_domifaddr(ctx: Context, opts: dict[str, Any]) -> None:
    sources = {"lease": 0, "agent": 1, "arp": 2}
    source = 0
    if opts["source"] is not None:
        if opts["source"] not in sources:
            raise CommandError(f"Unknown data source '{opts['source']}'")
        source = sources[opts["source"]]
    dom = _dom(ctx, opts)
    try:
        ifaces = dom.interface_addresses(source)
    except VirtError as exc:
        raise CommandError("Failed to query for interfaces addresses", exc) from None
    wanted = opts["interface"]
    ifaces = [i for i in ifaces if wanted is None or i.name == wanted]
    if ctx.want_json:
        ctx.emit_json([{"name": i.name, "mac": i.hwaddr,
                        "addrs": [{"type": "ipv6" if a.type == 1 else "ipv4", "addr": a.addr, "prefix": a.prefix}
                                  for a in i.addrs]} for i in ifaces])
        return
    ctx.extra(f" {'Name':<10} {'MAC address':<20} {'Protocol':<8}     Address\n{'-' * 79}\n")
    for iface in ifaces:
        if not iface.addrs:
            ctx.print(f" {iface.name:<10} {iface.hwaddr or 'N/A':<17}    {'N/A':<12} N/A")
            continue
        for j, addr in enumerate(iface.addrs):
            text = f"{'ipv6' if addr.type == 1 else 'ipv4':<12} {addr.addr}/{addr.prefix}"
            if opts["full"] or j == 0:
                ctx.print(f" {iface.name:<10} {iface.hwaddr:<17}    {text}")
            else:
                ctx.print(f" {'-':<10} {'-':<17}    {text}")


@command("vcpuinfo", DOMAIN_OPT, Opt("pretty", "bool", "return human readable output"),
         help="detailed domain vcpu information", group=GROUP, json=True)
def cmd_vcpuinfo(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    try:
        vcpus = dom.vcpus()
        live = True
    except VirtError as exc:
        if exc.code != ErrorNumber.OPERATION_INVALID or dom.is_active():
            raise
        live = False
        count = dom.vcpus_count(_AFFECT_CONFIG)
    if ctx.want_json:
        if live:
            ctx.emit_json([{"vcpu": v.number, "cpu": v.cpu, "state": "running" if v.state == 1 else "offline",
                            "cpu_time": v.cpu_time, "affinity": "".join("y" if b else "-" for b in v.affinity)}
                           for v in vcpus])
        else:
            ctx.emit_json([{"vcpu": i, "cpu": None, "state": None, "cpu_time": None, "affinity": "y" * 8}
                           for i in range(count)])
        return
    blocks: list[list[str]] = []
    if live:
        states = ("offline", "running", "blocked")
        for v in vcpus:
            affinity = "".join("y" if b else "-" for b in v.affinity)
            if opts["pretty"]:
                affinity = _cpulist(v.affinity)
            blocks.append([f"{'VCPU:':<15} {v.number}", f"{'CPU:':<15} {v.cpu}",
                           f"{'State:':<15} {states[v.state] if 0 <= v.state < 3 else 'no state'}",
                           f"{'CPU time:':<15} {v.cpu_time / 1e9:.1f}s", f"{'CPU Affinity:':<15} {affinity}"])
    else:
        for i in range(count):
            blocks.append([f"{'VCPU:':<15} {i}", f"{'CPU:':<15} N/A", f"{'State:':<15} N/A",
                           f"{'CPU time':<15} N/A", f"{'CPU Affinity:':<15} {'yyyyyyyy'}"])
    ctx.print("\n\n".join("\n".join(b) for b in blocks))


def _cpulist(bits: Sequence[bool]) -> str:
    ranges, start = [], None
    for i, bit in enumerate([*bits, False]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            ranges.append(str(start) if i - 1 == start else f"{start}-{i - 1}")
            start = None
    return ",".join(ranges) + f" (out of {len(bits)})"


@command("vcpucount", DOMAIN_OPT, Opt("maximum", "bool", "get maximum count of vcpus"),
         Opt("active", "bool", "get number of currently active vcpus"),
         Opt("live", "bool", "get value from running domain"),
         Opt("config", "bool", "get value to be used on next boot"),
         Opt("current", "bool", "get value according to current domain state"),
         Opt("guest", "bool", "retrieve vcpu count from the guest instead of the hypervisor"),
         help="domain vcpu counts", group=GROUP, json=True)
def cmd_vcpucount(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "active", "maximum")
    exclusive(opts, "guest", "config")
    flags = _affect_flags(opts)
    if opts["maximum"]:
        flags |= _VCPU_MAXIMUM
    if opts["guest"]:
        flags |= _VCPU_GUEST
    dom = _dom(ctx, opts)
    every = not any(opts[k] for k in ("maximum", "active", "live", "config", "current", "guest"))
    if not every:
        try:
            count = dom.vcpus_count(flags)
        except VirtError as exc:
            if flags & _VCPU_GUEST:
                raise CommandError("Failed to retrieve vCPU count from the guest", exc) from None
            raise
        if ctx.want_json:
            ctx.emit_json({"count": count})
        else:
            ctx.print(str(count))
        return
    active, persistent = dom.is_active(), dom.is_persistent()
    rows = []
    for which, extra in (("maximum", _VCPU_MAXIMUM), ("current", 0)):
        for where, bit in (("config", _AFFECT_CONFIG), ("live", _AFFECT_LIVE)):
            if (bit == _AFFECT_LIVE and not active) or (bit == _AFFECT_CONFIG and not persistent):
                continue
            rows.append((which, where, dom.vcpus_count(bit | extra)))
    order = {("maximum", "config"): 0, ("maximum", "live"): 1, ("current", "config"): 2, ("current", "live"): 3}
    rows.sort(key=lambda r: order[(r[0], r[1])])
    if ctx.want_json:
        ctx.emit_json({f"{which}_{where}": count for which, where, count in rows})
        return
    for which, where, count in rows:
        ctx.print(f"{which:<12} {where:<12} {count:>3}")


def _params(ctx: Context, values: dict[str, Any], special: dict[str, Any] | None = None) -> None:
    if ctx.want_json:
        ctx.emit_json(values)
        return
    for name, value in values.items():
        if special and name in special:
            value = special[name](value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        ctx.print(f"{name:<15}: {value}")


@command("schedinfo", DOMAIN_OPT, Opt("set", "argv", positional=True, help="parameter=value"),
         Opt("weight", help="weight for XEN_CREDIT"),
         Opt("cap", help="cap for XEN_CREDIT"), *_AFFECT_OPTS,
         help="show/set scheduler parameters", group=GROUP, json=True)
def cmd_schedinfo(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    kind, _ = dom.scheduler_type()
    if not ctx.want_json:
        ctx.print(f"{'Scheduler':<15}: {kind}")
    # virsh reads the parameters first (both --live and --config: the current ones), then
    # types each new value as the one of that name (virTypedParamsAddFromString)
    query = (0 if flags == _AFFECT_LIVE | _AFFECT_CONFIG else flags)
    query |= _TYPED_PARAM_STRING_OKAY if flags or opts["current"] else 0
    params = dom.scheduler_parameters(query)
    updates: dict[str, Any] = {}
    settings: list[tuple[str, str]] = []
    for item in opts["set"] or ():
        name, eq, value = item.partition("=")
        if not eq:
            raise CommandError("Invalid syntax for --set, expecting name=value")
        settings.append((name, value))
    for name in ("cap", "weight"):
        if opts[name] is not None:
            settings.append((name, _nonempty(opts, name)))
    for name, value in settings:
        if name not in params:
            raise CommandError(f"invalid scheduler option: {name}")
        updates[name] = _typed_from_string(name, params[name], value)
    if settings:
        if len(updates) < len(settings):  # virTypedParamsValidate: a name given twice
            repeated = next(name for name, _ in settings if sum(n == name for n, _ in settings) > 1)
            raise VirtError(ErrorNumber.INVALID_ARG, f"parameter '{repeated}' occurs multiple times")
        dom.set_scheduler_parameters(updates, flags)
        params = dom.scheduler_parameters(query)
    if ctx.want_json:
        ctx.emit_json({"scheduler": kind, **params})
        return
    _params(ctx, params)


@command("dommemstat", DOMAIN_OPT, Opt("period", "int", "period in seconds to set collection"), *_AFFECT_OPTS,
         help="get memory statistics for a domain", group=MONITOR, json=True)
def cmd_dommemstat(ctx: Context, opts: dict[str, Any]) -> None:
    _affect_flags(opts)
    dom = _dom(ctx, opts)
    if opts["period"] is not None:
        if opts["period"] < 0:
            raise CommandError(f"Invalid collection period value '{opts['period']}'")
        raise CommandError("Unable to change balloon collection period.",
                           VirtError(ErrorNumber.NO_SUPPORT, "virDomainSetMemoryStatsPeriod"))
    try:
        stats = dom.memory_stats()
    except VirtError as exc:
        raise CommandError(f"Failed to get memory statistics for domain {opts['domain']}", exc) from None
    if ctx.want_json:
        ctx.emit_json(stats)
        return
    for name, value in stats.items():
        ctx.print(f"{name} {value}")


_BLKSTAT_HUMAN = {"rd_req": "number of read operations:", "rd_bytes": "number of bytes read:",
                  "wr_req": "number of write operations:", "wr_bytes": "number of bytes written:",
                  "errs": "error count:"}


@command("domblkstat", DOMAIN_OPT, Opt("device", positional=True, help="block device"),
         Opt("human", "bool", "print a more human readable output"),
         help="get device block stats for a domain", group=MONITOR, json=True)
def cmd_domblkstat(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    device = opts["device"] or ""
    try:
        stats = dom.block_stats(device)
    except VirtError as exc:
        raise CommandError(f"Failed to get block stats {opts['domain']} {device}", exc) from None
    values = {"rd_req": stats.rd_req, "rd_bytes": stats.rd_bytes, "wr_req": stats.wr_req,
              "wr_bytes": stats.wr_bytes, "errs": stats.errs}
    if ctx.want_json:
        ctx.emit_json(values)
        return
    if opts["human"]:
        ctx.print(f"Device: {device}")
        device = ""
    for name, value in values.items():
        if value >= 0:
            if opts["human"]:
                ctx.print(f"{device} {_BLKSTAT_HUMAN[name]:<31} {value}")
            else:
                ctx.print(f"{device} {name} {value}")


@command("domifstat", DOMAIN_OPT,
         Opt("interface", required=True, positional=True, help="interface device specified by name or MAC Address"),
         help="get network interface stats for a domain", group=MONITOR, json=True)
def cmd_domifstat(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    device = opts["interface"]
    try:
        stats = dom.interface_stats(device)
    except VirtError as exc:
        raise CommandError(f"Failed to get interface stats {opts['domain']} {device}", exc) from None
    values = {name: getattr(stats, name) for name in ("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "tx_bytes",
                                                      "tx_packets", "tx_errs", "tx_drop")}
    if ctx.want_json:
        ctx.emit_json(values)
        return
    for name, value in values.items():
        if value >= 0:
            ctx.print(f"{device} {name} {value}")


@command("domblkinfo", DOMAIN_OPT, Opt("device", positional=True, help="block device"),
         Opt("human", "bool", "Human readable output"), Opt("all", "bool", "display all block devices info"),
         help="domain block device size information", group=MONITOR, json=True)
def cmd_domblkinfo(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "all", "device")
    dom = _dom(ctx, opts)
    if not opts["all"] and not opts["device"]:
        raise CommandError("command 'domblkinfo' requires <device> option")

    def cells(info: Any) -> list[str]:
        if info is None or (info.capacity == 0 and info.allocation == 0 and info.physical == 0):
            return ["-", "-", "-"]
        values = (info.capacity, info.allocation, info.physical)
        return [format_capacity(v, 3) if opts["human"] else str(v) for v in values]

    if opts["all"]:
        rows, records = [], []
        for disk in _xml_tree(dom).iterfind("devices/disk"):
            target = disk.find("target")
            dev = target.get("dev", "") if target is not None else ""
            info = dom.block_info(dev) if disk.find("source") is not None else None
            rows.append([dev, *cells(info)])
            records.append({"target": dev, "capacity": info.capacity if info else None,
                            "allocation": info.allocation if info else None,
                            "physical": info.physical if info else None})
        ctx.table(["Target", "Capacity", "Allocation", "Physical"], rows, records)
        return
    info = dom.block_info(opts["device"])
    cap, alloc, phy = cells(info)
    ctx.fields([("Capacity", cap), ("Allocation", alloc), ("Physical", phy)],
               record={"capacity": info.capacity, "allocation": info.allocation, "physical": info.physical})


_MEMTUNE_SETTERS = ("hard-limit", "soft-limit", "swap-hard-limit", "min-guarantee")
_INT_RANGE = (-(1 << 31), (1 << 31) - 1)
_LLONG_RANGE = (-(1 << 63), (1 << 63) - 1)
# strtol's view of a number (blanks, a sign, digits, the rest), and with base 0; compiled on
# first use (re's cache), not at import: every CLI start imports this module
_C_NUMBER = r"(?s)[ \t\n\v\f\r]*([+-]?)([0-9]+)(.*)"
_C_NUMBER_ANY_BASE = r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*))"


def _nonempty(opts: dict[str, Any], name: str) -> str:
    """vshCommandOptStringReq: a string option's value, refused when empty."""
    value: str = opts[name]
    if value == "":
        raise CommandError(f"Failed to get option '{name}': Option argument is empty")
    return value


def _c_long(text: str, low: int, high: int) -> int | None:
    """virStrToLong_i/_ll with base 10 and no trailing text: the value, or None."""
    match = re.fullmatch(_C_NUMBER, text)
    if match is None or match.group(3):
        return None
    value = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    return value if low <= value <= high else None


def _int_opt(opts: dict[str, Any], name: str, low: int, high: int) -> int | None:
    """vshCommandOptInt / vshCommandOptLongLong: None when the option is absent."""
    text = opts[name]
    if text is None:
        return None
    value = _c_long(text, low, high)
    if value is None:
        raise CommandError(f"Numeric value '{text}' for <{name}> option is malformed or out of range")
    return value


# The types of libvirt's scheduler parameters (VIR_DOMAIN_SCHEDULER_*): a dict of the driver's
# values says int, not which of libvirt's integer types; unknown names count as ullong.
_SCHED_TYPES = {"weight": "uint", "cap": "uint", "cpu_shares": "ullong", "vcpu_period": "ullong",
                "vcpu_quota": "llong", "emulator_period": "ullong", "emulator_quota": "llong",
                "global_period": "ullong", "global_quota": "llong", "iothread_period": "ullong",
                "iothread_quota": "llong", "reservation": "llong", "limit": "llong", "shares": "int"}
_TYPE_WORDS = {"int": "int", "uint": "unsigned int", "llong": "long long", "ullong": "unsigned long long"}


def _typed_from_string(name: str, current: Any, text: str) -> Any:
    """virTypedParamsAddFromString, for the type of the parameter the driver reported."""
    if isinstance(current, str):
        return text
    if isinstance(current, bool):
        if text.lower() in ("1", "yes", "true"):
            return True
        if text.lower() in ("0", "no", "false"):
            return False
        raise VirtError(ErrorNumber.INVALID_ARG, f"Invalid boolean value for field '{name}'")
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise VirtError(ErrorNumber.INVALID_ARG, f"Invalid value for field '{name}': expected double") from None
    kind = _SCHED_TYPES.get(name, "ullong")
    bits = 32 if kind in ("int", "uint") else 64
    match = re.fullmatch(_C_NUMBER, text)
    value = None
    if match is not None and not match.group(3):
        value = int(match.group(2))
        if kind.startswith("u"):  # virStrToLong_ui/_ull: a negative number wraps
            value = value if value < 1 << bits else None
            if value is not None and match.group(1) == "-":
                value = -value & ((1 << bits) - 1)
        else:
            value *= -1 if match.group(1) == "-" else 1
            value = value if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None
    if value is None:
        raise VirtError(ErrorNumber.INVALID_ARG, f"Invalid value for field '{name}': expected {_TYPE_WORDS[kind]}")
    return value


def _memtune_size(opts: dict[str, Any], opt: str) -> int | None:
    """virsh's virshMemtuneGetSize: KiB by default, a unit suffix scales it (at most
    LLONG_MAX bytes), rounded up to KiB; a negative number means unlimited."""
    text = opts[opt]
    if text is None:
        return None
    failed = f"Unable to parse integer parameter {opt}"
    match = re.fullmatch(_C_NUMBER, text)
    if match is None:
        raise CommandError(failed)
    value = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    if not _LLONG_RANGE[0] <= value <= _LLONG_RANGE[1]:
        raise CommandError(failed)
    if value < 0:
        return _MEMORY_UNLIMITED
    suffix = match.group(3)
    if not suffix:
        scale = 1024
    elif suffix.lower() in ("b", "byte", "bytes"):
        scale = 1
    else:
        if len(suffix) == 1 or suffix[1:].lower() == "ib":
            base = 1024
        elif len(suffix) == 2 and suffix[1].lower() == "b":
            base = 1000
        else:
            raise CommandError(failed, VirtError(ErrorNumber.INVALID_ARG, f"unknown suffix '{suffix}'"))
        power = "kmgtpe".find(suffix[0].lower()) + 1
        if power == 0:
            raise CommandError(failed, VirtError(ErrorNumber.INVALID_ARG, f"unknown suffix '{suffix}'"))
        scale = base**power
    if value and value > _LLONG_RANGE[1] // scale:
        raise CommandError(failed, VirtError(ErrorNumber.OVERFLOW, f"value too large: {value}{suffix}"))
    return -(-value * scale // 1024)


def _tune(updates: dict[str, Any], setter: Any, getter: Any, flags: int, what: str,
          get_failed: str) -> dict[str, Any] | None:
    """virsh's ``*tune`` commands: set what was given (None: nothing to print), or read them all."""
    if updates:
        try:
            setter(updates, flags)
        except VirtError as exc:
            raise CommandError(f"Unable to change {what} parameters", exc) from None
        return None
    try:
        return dict(getter(flags))
    except VirtError as exc:
        raise CommandError(get_failed, exc) from None


@command("memtune", DOMAIN_OPT, *(Opt(name, help=f"{name.replace('-', ' ')} in KiB") for name in _MEMTUNE_SETTERS),
         *_AFFECT_OPTS, help="Get or set memory parameters", group=GROUP, json=True)
def cmd_memtune(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    updates = {}
    for opt in _MEMTUNE_SETTERS:
        value = _memtune_size(opts, opt)
        if value is not None:
            updates[opt.replace("-", "_")] = value
    params = _tune(updates, dom.set_memory_parameters, dom.memory_parameters, flags, "memory",
                   "Unable to get number of memory parameters")
    if params is None:
        return
    unlimited = {name: (lambda v: "unlimited" if v == _MEMORY_UNLIMITED else v) for name in params}
    _params(ctx, params, unlimited)


_BLKIO_SETTERS = ("weight", "device-weights", "device-read-iops-sec", "device-write-iops-sec",
                  "device-read-bytes-sec", "device-write-bytes-sec")
_BLKIO_PARAMS = ("weight", "device_weight", "device_read_iops_sec", "device_write_iops_sec",
                 "device_read_bytes_sec", "device_write_bytes_sec")


@command("blkiotune", DOMAIN_OPT, *(Opt(name, help=name) for name in _BLKIO_SETTERS), *_AFFECT_OPTS,
         help="Get or set blkio parameters", group=GROUP, json=True)
def cmd_blkiotune(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    updates: dict[str, Any] = {}
    weight = _int_opt(opts, "weight", *_INT_RANGE)
    if weight is not None:
        if weight <= 0:
            raise CommandError(f"Invalid value of {weight} for I/O weight")
        updates["weight"] = weight
    for opt, param in zip(_BLKIO_SETTERS[1:], _BLKIO_PARAMS[1:], strict=True):
        if opts[opt] == "":
            raise CommandError("Unable to parse string parameter")
        if opts[opt] is not None:
            updates[param] = opts[opt]
    params = _tune(updates, dom.set_blkio_parameters, dom.blkio_parameters, flags, "blkio",
                   "Unable to get number of blkio parameters")
    if params is not None:
        _params(ctx, params)


_NUMA_MODES = ("strict", "preferred", "interleave", "restrictive")


def _numa_mode(text: str) -> int | None:
    """A mode's name, or an int as virStrToLong_i reads it with base 0 (``0x2``, ``010``)."""
    if text in _NUMA_MODES:
        return _NUMA_MODES.index(text)
    match = re.fullmatch(_C_NUMBER_ANY_BASE, text)
    if match is None:
        return None
    hexa, octal, decimal = match.group(2), match.group(3), match.group(4)
    value = int(hexa, 16) if hexa is not None else int(octal or "0", 8) if decimal is None else int(decimal)
    value *= -1 if match.group(1) == "-" else 1
    return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else None


@command("numatune", DOMAIN_OPT, Opt("mode", help="NUMA mode"), Opt("nodeset", help="NUMA node selections to set"),
         *_AFFECT_OPTS, help="Get or set numa parameters", group=GROUP, json=True)
def cmd_numatune(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    updates: dict[str, Any] = {}
    if opts["nodeset"] is not None:  # virsh adds the nodeset first: the driver checks it first
        updates["numa_nodeset"] = _nonempty(opts, "nodeset")
    if opts["mode"] is not None:
        mode = _numa_mode(_nonempty(opts, "mode"))
        if mode is None:
            raise CommandError(f"Invalid mode: {opts['mode']}")
        updates["numa_mode"] = mode
    params = _tune(updates, dom.set_numa_parameters, dom.numa_parameters, flags, "numa",
                   "Unable to get numa parameters")
    if params is None:
        return
    mode_name = {"numa_mode": lambda v: _NUMA_MODES[v] if isinstance(v, int) and 0 <= v < 4 else v}
    if ctx.want_json:
        params = {k: mode_name[k](v) if k in mode_name else v for k, v in params.items()}
    _params(ctx, params, mode_name)


_JOB_TYPES = ("None", "Bounded", "Unbounded", "Completed", "Failed", "Cancelled")


@command("domjobinfo", DOMAIN_OPT, Opt("completed", "bool", "return statistics of a recently completed job"),
         Opt("keep-completed", "bool", "don't destroy statistics of a recently completed job"),
         Opt("anystats", "bool", "print statistics for any kind of job (even failed ones)"),
         Opt("rawstats", "bool", "print the raw data returned by libvirt"),
         help="domain job information", group=GROUP, json=True)
def cmd_domjobinfo(ctx: Context, opts: dict[str, Any]) -> None:
    info = _dom(ctx, opts).job_info()
    if ctx.want_json or opts["rawstats"]:
        ctx.emit_json(info)
        return
    kind = int(info.get("type", 0))
    ctx.print(f"{'Job type:':<17} {_JOB_TYPES[kind] if 0 <= kind < len(_JOB_TYPES) else 'unknown'}")
    for name, value in info.items():
        if name != "type":
            ctx.print(f"{name + ':':<17} {value}")


@command("domtime", DOMAIN_OPT, Opt("now", "bool", "set to the time of the host running virsh"),
         Opt("pretty", "bool", "print domain's time in human readable form"),
         Opt("sync", "bool", "instead of setting given time, synchronize from domain's RTC"),
         Opt("time", help="time to set"), help="domain time", group=GROUP, json=True)
def cmd_domtime(ctx: Context, opts: dict[str, Any]) -> None:
    given = {name: opts[name] is not None and opts[name] is not False for name in ("time", "now", "sync")}
    for first, second in (("time", "now"), ("time", "sync"), ("now", "sync")):
        if given[first] and given[second]:
            raise CommandError(f"Options --{first} and --{second} are mutually exclusive")
    dom = _dom(ctx, opts)
    seconds = _int_opt(opts, "time", *_LLONG_RANGE)
    if seconds is not None or opts["now"] or opts["sync"]:
        if opts["now"]:
            seconds = int(time.time())
        dom.set_time(seconds or 0, 0, _TIME_SYNC if opts["sync"] else 0)
        return
    seconds, nseconds = dom.time()
    if ctx.want_json:
        ctx.emit_json({"seconds": seconds, "nseconds": nseconds})
    elif opts["pretty"]:
        ctx.print("Time: " + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)), end="")
    else:
        ctx.print(f"Time: {seconds}", end="")


@command("domhostname", DOMAIN_OPT, Opt("source", help="address source: 'lease' or 'agent'"),
         help="print the domain's hostname", group=GROUP)
def cmd_domhostname(ctx: Context, opts: dict[str, Any]) -> None:
    sources = {"lease": 1, "agent": 2}
    flags = 0
    if opts["source"] is not None:
        if opts["source"] not in sources:
            raise CommandError(f"Unknown data source '{opts['source']}'")
        flags = sources[opts["source"]]
    dom = _dom(ctx, opts)
    try:
        name = dom.hostname(flags)
    except VirtError as exc:
        raise CommandError("failed to get hostname", exc) from None
    ctx.print(name)


# -- lifecycle --------------------------------------------------------------------------------


@command("autostart", DOMAIN_OPT, Opt("disable", "bool", "disable autostarting"),
         help="autostart a domain", group=GROUP)
def cmd_autostart(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    enable = not opts["disable"]
    try:
        dom.set_autostart(enable)
    except VirtError as exc:
        verb = "mark" if enable else "unmark"
        raise CommandError(f"Failed to {verb} domain '{dom.name}' as autostarted", exc) from None
    ctx.extra(f"Domain '{dom.name}' {'marked' if enable else 'unmarked'} as autostarted\n")


def _simple(ctx: Context, opts: dict[str, Any], action: str, done: str, call: Any) -> None:
    dom = _dom(ctx, opts)
    try:
        call(dom)
    except VirtError as exc:
        raise CommandError(f"Failed to {action} domain '{dom.name}'", exc) from None
    ctx.extra(f"Domain '{dom.name}' {done}\n")


@command("suspend", DOMAIN_OPT, help="suspend a domain", group=GROUP)
def cmd_suspend(ctx: Context, opts: dict[str, Any]) -> None:
    _simple(ctx, opts, "suspend", "suspended", lambda d: d.suspend())


@command("resume", DOMAIN_OPT, help="resume a domain", group=GROUP)
def cmd_resume(ctx: Context, opts: dict[str, Any]) -> None:
    _simple(ctx, opts, "resume", "resumed", lambda d: d.resume())


@command("destroy", DOMAIN_OPT, Opt("graceful", "bool", "terminate gracefully"),
         Opt("remove-logs", "bool", "remove domain logs"), help="destroy (stop) a domain", group=GROUP)
def cmd_destroy(ctx: Context, opts: dict[str, Any]) -> None:
    flags = 1 if opts["graceful"] else 0
    _simple(ctx, opts, "destroy", "destroyed", lambda d: d.destroy(flags))


@command("reset", DOMAIN_OPT, help="reset a domain", group=GROUP)
def cmd_reset(ctx: Context, opts: dict[str, Any]) -> None:
    _simple(ctx, opts, "reset", "was reset", lambda d: d.reset())


_SHUTDOWN_MODES = {"acpi": 1, "agent": 2, "initctl": 4, "signal": 8, "paravirt": 16}


def _mode_flags(mode: str | None) -> int:
    flags = 0
    for word in (mode or "").split(","):
        if not word:
            continue
        if word not in _SHUTDOWN_MODES:
            raise CommandError(f"Unknown mode {word} value, expecting "
                               "'acpi', 'agent', 'initctl', 'signal' or 'paravirt'")
        flags |= _SHUTDOWN_MODES[word]
    return flags


@command("shutdown", DOMAIN_OPT, Opt("mode", help="shutdown mode: acpi|agent|initctl|signal|paravirt"),
         help="gracefully shutdown a domain", group=GROUP)
def cmd_shutdown(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _mode_flags(opts["mode"])
    _simple(ctx, opts, "shutdown", "is being shutdown", lambda d: d.shutdown(flags))


@command("reboot", DOMAIN_OPT, Opt("mode", help="shutdown mode: acpi|agent|initctl|signal|paravirt"),
         help="reboot a domain", group=GROUP)
def cmd_reboot(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _mode_flags(opts["mode"])
    _simple(ctx, opts, "reboot", "is being rebooted", lambda d: d.reboot(flags))


@command("start", DOMAIN_OPT, Opt("console", "bool", "attach to console after creation"),
         Opt("paused", "bool", "leave the guest paused after creation"),
         Opt("autodestroy", "bool", "automatically destroy the guest when virsh disconnects"),
         Opt("bypass-cache", "bool", "avoid file system cache when loading"),
         Opt("force-boot", "bool", "force fresh boot by discarding any managed save"),
         Opt("pass-fds", help="pass file descriptors N,M,... to the guest"),
         Opt("reset-nvram", "bool", "re-initialize NVRAM from its pristine template"),
         help="start a (previously defined) inactive domain", group=GROUP)
def cmd_start(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts, _BY_NAME | _BY_UUID)
    if dom.id >= 0:
        raise CommandError("Domain is already active")
    flags = ((1 if opts["paused"] else 0) | (2 if opts["autodestroy"] else 0)
             | (4 if opts["bypass-cache"] else 0) | (8 if opts["force-boot"] else 0)
             | (16 if opts["reset-nvram"] else 0))
    try:
        if flags & 8 and dom.has_managed_save_image():
            dom.managed_save_remove()
            flags &= ~8
        dom.start(flags)
    except VirtError as exc:
        raise CommandError(f"Failed to start domain '{dom.name}'", exc) from None
    ctx.extra(f"Domain '{dom.name}' started\n")


@command("undefine", DOMAIN_OPT, Opt("managed-save", "bool", "remove domain managed state file"),
         Opt("storage", help="remove associated storage volumes"),
         Opt("remove-all-storage", "bool", "remove all associated storage volumes"),
         Opt("delete-storage-volume-snapshots", "bool", "delete snapshots associated with volume(s)"),
         Opt("wipe-storage", "bool", "wipe data on the removed volumes"),
         Opt("snapshots-metadata", "bool", "remove all domain snapshot metadata, if inactive"),
         Opt("checkpoints-metadata", "bool", "remove all domain checkpoint metadata, if inactive"),
         Opt("nvram", "bool", "remove nvram file"), Opt("keep-nvram", "bool", "keep nvram file"),
         Opt("tpm", "bool", "remove TPM state"), Opt("keep-tpm", "bool", "keep TPM state"),
         help="undefine a domain", group=GROUP)
def cmd_undefine(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "nvram", "keep-nvram")
    exclusive(opts, "tpm", "keep-tpm")
    dom = _dom(ctx, opts)
    flags = 0
    if opts["managed-save"]:
        flags |= 1
    elif dom.has_managed_save_image():
        raise CommandError("Refusing to undefine while domain managed save image exists")
    if opts["snapshots-metadata"]:
        flags |= 2
    if opts["nvram"]:
        flags |= 4
    if opts["keep-nvram"]:
        flags |= 8
    if opts["checkpoints-metadata"]:
        flags |= 16
    if opts["tpm"]:
        flags |= 32
    if opts["keep-tpm"]:
        flags |= 64
    try:
        dom.undefine(flags)
    except VirtError as exc:
        raise CommandError(f"Failed to undefine domain '{dom.name}'", exc) from None
    ctx.extra(f"Domain '{dom.name}' has been undefined\n")


_SAVE_OPTS = (
    Opt("bypass-cache", "bool", "avoid file system cache when saving"),
    Opt("running", "bool", "set domain to be running on next start"),
    Opt("paused", "bool", "set domain to be paused on next start"),
    Opt("verbose", "bool", "display the progress of save"),
)


def _save_flags(opts: dict[str, Any]) -> int:
    exclusive(opts, "running", "paused")
    return (1 if opts["bypass-cache"] else 0) | (2 if opts["running"] else 0) | (4 if opts["paused"] else 0)


@command("managedsave", DOMAIN_OPT, *_SAVE_OPTS, help="managed save of a domain state", group=GROUP)
def cmd_managedsave(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _save_flags(opts)
    dom = _dom(ctx, opts)
    try:
        dom.managed_save(flags)
    except VirtError as exc:
        raise CommandError(f"Failed to save domain '{dom.name}' state", exc) from None
    ctx.extra(f"\nDomain '{dom.name}' state saved by libvirt\n")


@command("managedsave-remove", DOMAIN_OPT, help="Remove managed save of a domain", group=GROUP)
def cmd_managedsave_remove(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    try:
        has = dom.has_managed_save_image()
    except VirtError as exc:
        raise CommandError("Failed to check for domain managed save image", exc) from None
    if not has:
        ctx.extra(f"Domain '{dom.name}' has no manage save image; removal skipped")
        return
    try:
        dom.managed_save_remove()
    except VirtError as exc:
        raise CommandError(f"Failed to remove managed save image for domain '{dom.name}'", exc) from None
    ctx.extra(f"Removed managedsave image for domain '{dom.name}'")


@command("save", DOMAIN_OPT, Opt("file", required=True, positional=True, help="where to save the data"),
         Opt("xml", help="filename containing updated XML for the target"), *_SAVE_OPTS,
         help="save a domain state to a file", group=GROUP)
def cmd_save(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _save_flags(opts)
    xml = read_xml_file(opts["xml"]) if opts["xml"] else None
    dom = _dom(ctx, opts)
    try:
        dom.save(opts["file"], xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to save domain '{dom.name}' to {opts['file']}", exc) from None
    ctx.extra(f"\nDomain '{dom.name}' saved to {opts['file']}\n")


@command("restore", Opt("file", required=True, positional=True, help="the state to restore"),
         Opt("bypass-cache", "bool", "avoid file system cache when restoring"),
         Opt("xml", help="filename containing updated XML for the target"),
         Opt("running", "bool", "restore domain into running state"),
         Opt("paused", "bool", "restore domain into paused state"),
         Opt("reset-nvram", "bool", "re-initialize NVRAM from its pristine template"),
         help="restore a domain from a saved state in a file", group=GROUP)
def cmd_restore(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _save_flags({**opts, "verbose": False})
    xml = read_xml_file(opts["xml"]) if opts["xml"] else None
    try:
        ctx.conn.restore_domain(opts["file"], xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to restore domain from {opts['file']}", exc) from None
    ctx.extra(f"Domain restored from {opts['file']}\n")


@command("define", Opt("file", required=True, positional=True, help="file containing an XML domain description"),
         Opt("validate", "bool", "validate the XML against the schema"),
         help="define (but don't start) a domain from an XML file", group=GROUP)
def cmd_define(ctx: Context, opts: dict[str, Any]) -> None:
    xml = read_xml_file(opts["file"])
    try:
        dom = ctx.conn.define_domain(xml, 1 if opts["validate"] else 0)
    except VirtError as exc:
        raise CommandError(f"Failed to define domain from {opts['file']}", exc) from None
    ctx.extra(f"Domain '{dom.name}' defined from {opts['file']}\n")


@command("create", Opt("file", required=True, positional=True, help="file containing an XML domain description"),
         Opt("console", "bool", "attach to console after creation"),
         Opt("paused", "bool", "leave the guest paused after creation"),
         Opt("autodestroy", "bool", "automatically destroy the guest when virsh disconnects"),
         Opt("pass-fds", help="pass file descriptors N,M,... to the guest"),
         Opt("validate", "bool", "validate the XML against the schema"),
         help="create a domain from an XML file", group=GROUP)
def cmd_create(ctx: Context, opts: dict[str, Any]) -> None:
    xml = read_xml_file(opts["file"])
    flags = (1 if opts["paused"] else 0) | (2 if opts["autodestroy"] else 0) | (16 if opts["validate"] else 0)
    try:
        dom = ctx.conn.create_domain(xml, flags)
    except VirtError as exc:
        raise CommandError(f"Failed to create domain from {opts['file']}", exc) from None
    ctx.extra(f"Domain '{dom.name}' created from {opts['file']}\n")


# -- configuration ----------------------------------------------------------------------------


@command("setmem", DOMAIN_OPT,
         Opt("size", required=True, positional=True, help="new memory size, as scaled integer (default KiB)"),
         *_AFFECT_OPTS, help="change memory allocation", group=GROUP)
def cmd_setmem(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    kib = _scaled_kib(opts["size"], "size")
    # with no --live/--config virsh calls virDomainSetMemory, which means the live domain
    dom.set_memory(kib, flags if flags or opts["current"] else _AFFECT_LIVE)


@command("setmaxmem", DOMAIN_OPT,
         Opt("size", required=True, positional=True, help="new maximum memory size, as scaled integer (default KiB)"),
         *_AFFECT_OPTS, help="change maximum memory limit", group=GROUP)
def cmd_setmaxmem(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    kib = _scaled_kib(opts["size"], "size")
    try:
        dom.set_max_memory(kib, flags)
    except VirtError as exc:
        raise CommandError("Unable to change MaxMemorySize", exc) from None


@command("setvcpus", DOMAIN_OPT, Opt("count", "int", "number of virtual CPUs", required=True, positional=True),
         Opt("maximum", "bool", "set maximum limit on next boot"), *_AFFECT_OPTS,
         Opt("guest", "bool", "modify cpu state in the guest"),
         Opt("hotpluggable", "bool", "make added vcpus hot(un)pluggable"),
         help="change number of virtual CPUs", group=GROUP)
def cmd_setvcpus(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "guest", "config")
    flags = _affect_flags(opts)
    if opts["maximum"]:
        flags |= _VCPU_MAXIMUM
    if opts["guest"]:
        flags |= _VCPU_GUEST
    if opts["hotpluggable"]:
        flags |= _VCPU_HOTPLUGGABLE
    if opts["count"] < 0:
        raise CommandError(f"Numeric value '{opts['count']}' for <count> option is malformed or out of range")
    dom = _dom(ctx, opts)
    dom.set_vcpus(opts["count"], flags)


@command("desc", DOMAIN_OPT, *_AFFECT_OPTS, Opt("title", "bool", "modify/get the title instead of description"),
         Opt("edit", "bool", "open an editor to modify the description"),
         Opt("new-desc", "argv", "message", positional=True),
         help="show or set domain's description or title", group=GROUP)
def cmd_desc(ctx: Context, opts: dict[str, Any]) -> None:
    flags = _affect_flags(opts)
    dom = _dom(ctx, opts)
    kind = _META_TITLE if opts["title"] else _META_DESCRIPTION
    what = "title" if opts["title"] else "description"
    words = opts["new-desc"]
    if words is not None:
        text = " ".join(words)
        try:
            dom.set_metadata(kind, text or None, flags=flags)
        except VirtError as exc:
            raise CommandError(f"Failed to set new domain {what}", exc) from None
        ctx.extra(f"Domain {what} updated successfully")
        return
    if opts["edit"]:
        raise CommandError("--edit needs an interactive editor, which virt does not start; give the new text")
    try:
        text = str(dom.metadata(kind, flags=flags))
    except VirtError as exc:
        if exc.code != ErrorNumber.NO_DOMAIN_METADATA:
            raise
        text = ""
    if text:
        ctx.print(text, end="")
    else:
        ctx.extra(f"No {what} for domain: {dom.name}")


@command("domrename", DOMAIN_OPT, Opt("new-name", required=True, positional=True, help="new domain name"),
         help="rename a domain", group=GROUP)
def cmd_domrename(ctx: Context, opts: dict[str, Any]) -> None:
    dom = _dom(ctx, opts)
    dom.rename(opts["new-name"])
    ctx.extra("Domain successfully renamed\n")


# -- events -----------------------------------------------------------------------------------


def event_text(event: DomainEvent) -> str:
    """virsh's line for a lifecycle event (without the newline)."""
    kind = int(event.event)
    name = _EVENT_NAMES[kind] if 0 <= kind < len(_EVENT_NAMES) else "unknown"
    details = _EVENT_DETAILS[kind] if 0 <= kind < len(_EVENT_DETAILS) else ()
    detail = details[event.detail] if 0 <= event.detail < len(details) else "unknown"
    return f"event 'lifecycle' for domain '{event.name}': {name} {detail}"


@command("event", Opt("domain", positional=True, help="filter by domain name, id or uuid"),
         Opt("event", help="which event type to wait for"),
         Opt("all", "bool", "wait for all events instead of just one type"),
         Opt("loop", "bool", "loop until timeout or interrupt, rather than one-shot"),
         Opt("timeout", "int", "timeout seconds"), Opt("list", "bool", "list valid event types"),
         Opt("timestamp", "bool", "show timestamp for each printed event"),
         help="Domain Events", group=GROUP)
def cmd_event(ctx: Context, opts: dict[str, Any]) -> None:
    if opts["list"]:
        if opts["all"] or opts["event"]:
            raise CommandError("--list is mutually exclusive with --all and --event")
        for name in _EVENT_KINDS:
            ctx.print(name)
        return
    if not opts["all"] and not opts["event"]:
        raise CommandError("one of --list, --all, or --event <type> is required")
    if opts["event"] and opts["event"] not in _EVENT_KINDS:
        raise CommandError(f"unknown event type {opts['event']}")
    if opts["timeout"] is not None and opts["timeout"] < 1:
        raise CommandError(f"invalid timeout value {opts['timeout']}")
    uuid = _dom(ctx, opts).uuid if opts["domain"] else None
    wants_lifecycle = opts["all"] or opts["event"] == "lifecycle"
    done = threading.Event()
    count = 0
    lock = threading.Lock()

    def on_event(_conn: Any, event: DomainEvent) -> None:
        nonlocal count
        with lock:
            if not opts["loop"] and count:
                return
            stamp = ""
            if opts["timestamp"]:
                now = time.time()
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000: "
            ctx.print(stamp + event_text(event))
            ctx.out.flush()
            count += 1
            if not opts["loop"]:
                done.set()

    conn = ctx.conn
    sub = conn.subscribe(on_event, "lifecycle", uuid=uuid) if wants_lifecycle else None
    timed_out = False
    try:
        deadline = None if opts["timeout"] is None else time.monotonic() + opts["timeout"]
        while not done.is_set():
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0:
                timed_out = True
                break
            done.wait(wait)
    except KeyboardInterrupt:
        pass
    finally:
        if sub is not None:
            conn.unsubscribe(sub)
    if timed_out:
        ctx.print("event loop timed out")
    ctx.print(f"events received: {count}")
    if not count:
        raise CommandError(None)
