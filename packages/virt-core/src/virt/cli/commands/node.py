"""Host commands: ``nodeinfo``, ``nodecpustats``, ``nodememstats``, ``freecell``, ``capabilities``,
``domcapabilities``, ``sysinfo``, ``cpu-models``, ``maxvcpus``, ``secret-list``, ``nwfilter-list``;
and the helpers the network, storage and node device commands share (sizes, XML files, XPath).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from virt._errors import ErrorNumber, VirtError
from virt.cli._framework import CommandError, Context, Opt, command

__all__ = [
    "MAX_XML_FILE",
    "XPATH_OPTS",
    "dump_xml",
    "exclusive",
    "format_capacity",
    "lookup_uuid_or_name",
    "parse_size",
    "pretty_capacity",
    "read_xml_file",
    "sorted_by_name",
]

HOST = "Host and Hypervisor"
SECRET = "Secret"
NWFILTER = "Network Filter"

#: virsh's VSH_MAX_XML_FILE
MAX_XML_FILE = 10 * 1024 * 1024
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")

T = TypeVar("T")

#: ``--xpath`` and ``--wrap`` of the ``*-dumpxml`` commands
XPATH_OPTS = (
    Opt("xpath", help="xpath expression to filter the XML document"),
    Opt("wrap", "bool", "wrap xpath results in an common root element"),
)


# -- shared helpers ---------------------------------------------------------------------------


def pretty_capacity(value: int) -> tuple[float, str]:
    """virsh's ``vshPrettyCapacity``: the largest binary unit that keeps the value >= 1."""
    limit = 1024
    for unit in _UNITS[:-1]:
        if value < limit:
            return value / (limit // 1024), unit
        limit *= 1024
    return value / (limit // 1024), _UNITS[-1]


def format_capacity(value: int, precision: int = 2) -> str:
    """``"%.2lf %s"`` of :func:`pretty_capacity` (``1.00 GiB``); ``domblkinfo --human`` uses 3."""
    number, unit = pretty_capacity(value)
    return f"{number:.{precision}f} {unit}"


_SIZE = re.compile(r"[ \t\n\v\f\r]*\+?([0-9]+)(.*)", re.DOTALL)
_ULLONG_MAX = (1 << 64) - 1


def parse_size(text: str, unit: int = 1) -> int:
    """virsh's ``virshVolSize`` and ``vshCommandOptScaledInt``: an unsigned integer with an
    optional unit suffix (``1G``, ``10MiB``, ``5MB``, ``1024bytes``), in bytes; a bare number
    counts in ``unit`` bytes.

    :raises ValueError: when there is no number or it is negative or too large.
    :raises VirtError: ``INVALID_ARG`` for an unknown suffix, ``OVERFLOW`` when the scaled value
        does not fit in 64 bits (libvirt's ``virScaleInteger`` errors).
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    value = int(match.group(1))
    if value > _ULLONG_MAX:
        raise ValueError(text)
    suffix = match.group(2)
    if not suffix and unit != 1:
        if value and value > _ULLONG_MAX // unit:
            raise VirtError(ErrorNumber.OVERFLOW, f"value too large: {value}")
        return value * unit
    if not suffix or suffix.lower() in ("b", "byte", "bytes"):
        return value
    if len(suffix) == 1 or suffix[1:].lower() == "ib":
        base = 1024
    elif len(suffix) == 2 and suffix[1].lower() == "b":
        base = 1000
    else:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unknown suffix '{suffix}'")
    power = "kmgtpe".find(suffix[0].lower()) + 1
    if power == 0:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unknown suffix '{suffix}'")
    scale: int = base**power
    if value and value > _ULLONG_MAX // scale:
        raise VirtError(ErrorNumber.OVERFLOW, f"value too large: {value}{suffix}")
    return value * scale


def read_xml_file(path: str) -> str:
    """``virFileReadAll`` as virsh uses it for ``*-define``/``*-create`` files."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_XML_FILE + 1)
    except OSError as exc:
        raise CommandError(None, VirtError(ErrorNumber.SYSTEM_ERROR,
                                           f"Failed to open file '{path}': {exc.strerror}")) from None
    if len(data) > MAX_XML_FILE:
        raise CommandError(None, VirtError(ErrorNumber.INTERNAL_ERROR, f"File '{path}' is too large"))
    return data.decode("utf-8", errors="replace")


def lookup_uuid_or_name(kind: str, name: str, by_uuid: Callable[[str], T] | None,
                        by_name: Callable[[str], T] | None) -> T:
    """virsh's ``virshCommandOpt<Kind>By``: a 36-character argument is tried as a UUID first,
    then as a name; ``None`` skips a way (``net-uuid`` takes only names)."""
    error: VirtError | None = None
    if by_uuid is not None and len(name) == 36:
        try:
            return by_uuid(name)
        except VirtError as exc:
            error = exc
    if by_name is not None:
        try:
            return by_name(name)
        except VirtError as exc:
            error = exc
    raise CommandError(f"failed to get {kind} '{name}'", error)


def exclusive(opts: dict[str, Any], first: str, second: str) -> None:
    """virsh's ``VSH_EXCLUSIVE_OPTIONS``."""
    if opts.get(first) and opts.get(second):
        raise CommandError(f"Options --{first} and --{second} are mutually exclusive")


def sorted_by_name(items: Iterable[T], name: Callable[[T], str]) -> list[T]:
    """Sorted as virsh's listings are (``vshStrcasecmp`` of the names)."""
    return sorted(items, key=lambda item: name(item).lower())


def dump_xml(ctx: Context, xml: str, xpath: str | None, wrap: bool) -> None:
    """``virshDumpXML``, for every ``*dumpxml`` command: the document, or the nodes ``--xpath``
    selects of it, each printed as libxml2 dumps a node (an element re-indented from column 0,
    an attribute as `` name="value"``, a text as its escaped text), one per line, or copied
    into one ``<nodes>`` element with ``--wrap``.

    As in virsh, the expression must select a node-set ("Incorrect xpath" otherwise); where
    virsh prints libxml2's complaint about an expression it cannot compile and succeeds with
    nothing, we fail and say so."""
    if xpath is None:
        ctx.print(xml, end="")
        return
    from lxml import etree

    # virsh parses without the blank text between elements (xmlKeepBlanksDefault(0)), so a
    # selected element is indented afresh; the document is our own driver's output.
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser)
        found: Any = root.xpath(xpath)
    except etree.XPathError:
        raise CommandError(None, VirtError(ErrorNumber.XML_ERROR, f"Invalid xpath '{xpath}'")) from None
    except etree.XMLSyntaxError as exc:
        raise CommandError(None, VirtError(ErrorNumber.XML_ERROR, str(exc))) from None
    if not isinstance(found, list):  # a number, string or boolean: virXPathNodeSet refuses it
        raise CommandError(None, VirtError(ErrorNumber.INTERNAL_ERROR, f"Incorrect xpath '{xpath}'"))
    if wrap:
        from copy import deepcopy  # here: a start that prints no XPath result does not import it

        nodes = etree.Element("nodes")
        for node in found:
            if isinstance(node, etree._Element):
                nodes.append(deepcopy(node))
            elif getattr(node, "is_attribute", False):
                nodes.set(node.attrname, str(node))
            elif len(nodes):
                nodes[-1].tail = (nodes[-1].tail or "") + str(node)
            else:
                nodes.text = (nodes.text or "") + str(node)
        found = [nodes]
    for node in found:
        if isinstance(node, etree._Element):
            ctx.print(etree.tostring(node, encoding="unicode", pretty_print=True, with_tail=False).rstrip("\n"))
        elif getattr(node, "is_attribute", False):
            ctx.print(f" {_qualified(node)}=\"{_escape_attr(str(node))}\"")
        else:
            ctx.print(_escape_text(str(node)))


def _qualified(attr: Any) -> str:
    """An attribute's name as libxml2 prints it: ``prefix:name`` for a namespaced one."""
    name: str = attr.attrname
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        prefix = next((p for p, u in attr.getparent().nsmap.items() if u == uri and p), None)
        return f"{prefix}:{local}" if prefix else local
    return name


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attr(text: str) -> str:
    return (_escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;"))


# -- the node ---------------------------------------------------------------------------------


@command("nodeinfo", json=True, help="node information")
def cmd_nodeinfo(ctx: Context, opts: dict[str, Any]) -> None:
    try:
        info = ctx.conn.node_info()
    except VirtError as exc:
        raise CommandError("failed to get node information", exc) from None
    pairs: list[tuple[str, Any]] = [("CPU model", info.model), ("CPU(s)", info.cpus)]
    if info.mhz:
        pairs.append(("CPU frequency", f"{info.mhz} MHz"))
    pairs += [("CPU socket(s)", info.sockets), ("Core(s) per socket", info.cores),
              ("Thread(s) per core", info.threads), ("NUMA cell(s)", info.nodes),
              ("Memory size", f"{info.memory} KiB")]
    record = {"model": info.model, "cpus": info.cpus, "mhz": info.mhz, "sockets": info.sockets,
              "cores": info.cores, "threads": info.threads, "nodes": info.nodes, "memory_kib": info.memory}
    ctx.fields(pairs, width=20, record=record)


# virsh's order and labels of the CPU time fields (libvirt's VIR_NODE_CPU_STATS_* names).
_CPU_FIELDS = (("user", "user"), ("kernel", "system"), ("idle", "idle"), ("iowait", "iowait"), ("intr", "intr"))


@command("nodecpustats", Opt("cpu", "int", "prints specified cpu statistics only."),
         Opt("percent", "bool", "prints by percentage during 1 second."), json=True,
         help="Prints cpu stats of the node.")
def cmd_nodecpustats(ctx: Context, opts: dict[str, Any]) -> None:
    cpu = -1 if opts["cpu"] is None else opts["cpu"]
    try:
        first = ctx.conn.node_cpu_stats(cpu)
    except VirtError as exc:
        raise CommandError("Unable to get number of cpu stats", exc) from None
    if not first:
        return
    if not opts["percent"]:
        present = [(label, first[field]) for field, label in _CPU_FIELDS if field in first]
        if ctx.want_json:
            ctx.emit_json({label: value for label, value in present})
            return
        for label, value in present:
            ctx.print(f"{label + ':':<15} {value:>20}")
        return
    if "utilization" in first:
        usage = first["utilization"]
        if ctx.want_json:
            ctx.emit_json({"usage": usage, "idle": 100 - usage})
            return
        ctx.print(f"{'usage:':<15} {usage:>5}%")
        ctx.print(f"{'idle:':<15} {100 - usage:>5}%")
        return
    import math
    import time

    time.sleep(1)
    try:
        second = ctx.conn.node_cpu_stats(cpu)
    except VirtError as exc:
        raise CommandError("Unable to get node cpu stats", exc) from None
    delta = {field: second.get(field, 0) - value for field, value in first.items()}
    fields = [(field, label) for field, label in _CPU_FIELDS if field in first]
    total = sum(delta[field] for field, _ in fields)

    def percent(value: float) -> float:
        return value / total * 100 if total else math.nan

    def shown(value: float) -> str:
        # glibc prints the NaN of 0.0/0.0 (no CPU time passed, as on the test driver) as "-nan".
        return f"{'-nan':>5}" if math.isnan(value) else f"{value:5.1f}"

    usage = percent(delta.get("user", 0) + delta.get("kernel", 0))
    if ctx.want_json:
        values = {"usage": usage, **{label: percent(delta[field]) for field, label in fields}}
        ctx.emit_json({key: None if math.isnan(value) else value for key, value in values.items()})
        return
    ctx.print(f"{'usage:':<15} {shown(usage)}%")
    for field, label in fields:
        ctx.print(f"{label + ':':<15} {shown(percent(delta[field]))}%")


@command("nodememstats", Opt("cell", "int", "prints specified cell statistics only."), json=True,
         help="Prints memory stats of the node.")
def cmd_nodememstats(ctx: Context, opts: dict[str, Any]) -> None:
    cell = -1 if opts["cell"] is None else opts["cell"]
    try:
        stats = ctx.conn.node_memory_stats(cell)
    except VirtError as exc:
        raise CommandError("Unable to get number of memory stats", exc) from None
    if ctx.want_json:
        ctx.emit_json(stats)
        return
    for field, value in stats.items():
        ctx.print(f"{field:<7}: {value:>20} KiB")


@command("freecell", Opt("cellno", "int", "NUMA cell number"),
         Opt("all", "bool", "show free memory for all NUMA cells"), json=True, help="NUMA free memory")
def cmd_freecell(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "all", "cellno")
    conn = ctx.conn
    if opts["all"]:
        try:
            caps = conn.capabilities()
        except VirtError as exc:
            raise CommandError("unable to get node capabilities", exc) from None
        from lxml import etree

        root = etree.fromstring(caps.encode())
        cells: list[tuple[int, int]] = []
        for cell in root.findall("host/topology/cells/cell"):
            text = cell.get("id") or ""
            if not text.isdigit():
                raise CommandError("conversion from string failed")
            cell_id = int(text)
            try:
                free = conn.cells_free_memory(cell_id, 1)
            except VirtError as exc:
                raise CommandError(f"failed to get free memory for NUMA node number: {cell_id}", exc) from None
            if len(free) != 1:
                raise CommandError(f"failed to get free memory for NUMA node number: {cell_id}")
            cells.append((cell_id, free[0]))
        total = sum(free for _, free in cells)
        if ctx.want_json:
            ctx.emit_json({"cells": [{"cell": c, "free_kib": f // 1024} for c, f in cells],
                           "total_kib": total // 1024})
            return
        for cell_id, free in cells:
            ctx.print(f"{cell_id:>5}: {free // 1024:>10} KiB")
        ctx.extra("--------------------\n")
        ctx.extra(f"{'Total':>5}: {total // 1024:>10} KiB\n")
        return
    if opts["cellno"] is not None:
        cell_id = opts["cellno"]
        free_list = conn.cells_free_memory(cell_id, 1)
        if len(free_list) != 1:
            raise CommandError(None)
        if ctx.want_json:
            ctx.emit_json({"cell": cell_id, "free_kib": free_list[0] // 1024})
            return
        ctx.print(f"{cell_id}: {free_list[0] // 1024} KiB")
        return
    memory = conn.free_memory()
    if memory == 0:
        raise CommandError(None)
    if ctx.want_json:
        ctx.emit_json({"total_kib": memory // 1024})
        return
    ctx.print(f"Total: {memory // 1024} KiB")


@command("capabilities", help="capabilities")
def cmd_capabilities(ctx: Context, opts: dict[str, Any]) -> None:
    try:
        caps = ctx.conn.capabilities()
    except VirtError as exc:
        raise CommandError("failed to get capabilities", exc) from None
    ctx.print(caps)


@command("domcapabilities", Opt("virttype", help="virtualization type (/domain/@type)"),
         Opt("emulatorbin", help="path to emulator binary (/domain/devices/emulator)"),
         Opt("arch", help="domain architecture (/domain/os/type/@arch)"),
         Opt("machine", help="machine type (/domain/os/type/@machine)"), *XPATH_OPTS,
         help="domain capabilities")
def cmd_domcapabilities(ctx: Context, opts: dict[str, Any]) -> None:
    try:
        caps = ctx.conn.domain_capabilities(emulator=opts["emulatorbin"], arch=opts["arch"],
                                            machine=opts["machine"], virttype=opts["virttype"])
    except VirtError as exc:
        raise CommandError("failed to get emulator capabilities", exc) from None
    if opts["xpath"] is None:
        ctx.print(caps)
    else:
        dump_xml(ctx, caps, opts["xpath"], opts["wrap"])


@command("sysinfo", help="print the hypervisor sysinfo")
def cmd_sysinfo(ctx: Context, opts: dict[str, Any]) -> None:
    try:
        info = ctx.conn.sysinfo()
    except VirtError as exc:
        raise CommandError("failed to get sysinfo", exc) from None
    ctx.print(info, end="")


@command("cpu-models", Opt("arch", required=True, positional=True, help="architecture"), json=True,
         help="CPU models")
def cmd_cpu_models(ctx: Context, opts: dict[str, Any]) -> None:
    try:
        models = ctx.conn.cpu_model_names(opts["arch"])
    except VirtError as exc:
        raise CommandError("failed to get CPU model names", exc) from None
    if ctx.want_json:
        ctx.emit_json(models)
        return
    if not models:
        ctx.extra("all CPU models are accepted\n")
    for model in models:
        ctx.print(model)


@command("maxvcpus", Opt("type", help="domain type"), json=True, help="connection vcpu maximum")
def cmd_maxvcpus(ctx: Context, opts: dict[str, Any]) -> None:
    conn = ctx.conn
    vcpus = -1
    try:
        caps = conn.domain_capabilities(virttype=opts["type"])
    except VirtError:
        caps = None
    if caps:
        from lxml import etree

        found = etree.fromstring(caps.encode()).find("vcpu")
        if found is not None and (found.get("max") or "").isdigit():
            vcpus = int(found.get("max") or "-1")
    if vcpus < 0:
        vcpus = conn.max_vcpus(opts["type"])
    if ctx.want_json:
        ctx.emit_json({"max_vcpus": vcpus})
        return
    ctx.print(str(vcpus))


# -- secrets and network filters --------------------------------------------------------------


@command("secret-list", Opt("ephemeral", "bool", "list ephemeral secrets"),
         Opt("no-ephemeral", "bool", "list non-ephemeral secrets"), Opt("private", "bool", "list private secrets"),
         Opt("no-private", "bool", "list non-private secrets"), json=True, group=SECRET, help="list secrets")
def cmd_secret_list(ctx: Context, opts: dict[str, Any]) -> None:
    flags = 0
    for bit, name in ((1, "ephemeral"), (2, "no-ephemeral"), (4, "private"), (8, "no-private")):
        if opts[name]:
            flags |= bit
    try:
        secrets = ctx.conn.list_secrets(flags)
    except VirtError as exc:
        if exc.code == ErrorNumber.NO_SUPPORT:
            # virsh falls back to the older counting call, which fails the same way.
            exc = VirtError(ErrorNumber.NO_SUPPORT, "virConnectNumOfSecrets", domain=exc.domain)
        raise CommandError("Failed to count secrets", exc) from None
    usage_types = {0: "none", 1: "volume", 2: "ceph", 3: "iscsi", 4: "tls", 5: "vtpm"}
    secrets = sorted(secrets, key=lambda s: s.uuid.lower())
    rows = [[s.uuid, f"{usage_types.get(s.usage_type, 'unknown')} {s.usage_id}".rstrip()] for s in secrets]
    records = [{"uuid": s.uuid, "usage_type": usage_types.get(s.usage_type, "unknown"), "usage_id": s.usage_id}
               for s in secrets]
    ctx.table(["UUID", "Usage"], rows, records)


@command("nwfilter-list", json=True, group=NWFILTER, help="list network filters")
def cmd_nwfilter_list(ctx: Context, opts: dict[str, Any]) -> None:
    _ = ctx.conn
    # No virt driver implements network filters (libvirt's test driver has none either).
    raise CommandError("Failed to count network filters",
                       VirtError(ErrorNumber.NO_SUPPORT, "virConnectNumOfNWFilters"))
