"""virt CLI: domain snapshot commands, with virsh's names, options and output."""

from __future__ import annotations

import time
from typing import Any

from lxml import etree

from virt._errors import ErrorNumber, VirtError
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.domain import DOMAIN_OPT, lookup_domain
from virt.cli.commands.node import read_xml_file
from virt.cli.commands.nodedev import tree_lines
from virt.xml._base import escape

GROUP = "Snapshot"

# virDomainSnapshotCreateFlags / ListFlags / DeleteFlags / RevertFlags
_CREATE = {"redefine": 1, "current": 2, "no-metadata": 4, "halt": 8, "disk-only": 16, "reuse-external": 32,
           "quiesce": 64, "atomic": 128, "live": 256, "validate": 512}
_LIST_ROOTS = _LIST_DESCENDANTS = 1
_LIST = {"metadata": 2, "leaves": 4, "no-leaves": 8, "no-metadata": 16, "inactive": 32, "active": 64,
         "disk-only": 128, "internal": 256, "external": 512, "topological": 1024}
_DELETE_CHILDREN, _DELETE_METADATA_ONLY, _DELETE_CHILDREN_ONLY = 1, 2, 4
_REVERT_RUNNING, _REVERT_PAUSED, _REVERT_FORCE = 1, 2, 4


def _snapshot(ctx: Context, dom: Any, opts: dict[str, Any], name_opt: str = "snapshotname") -> Any:
    """The snapshot a command names, or the current one with ``--current``."""
    name = opts.get(name_opt)
    if opts.get("current") and name:
        raise CommandError(f"--{name_opt} and --current are mutually exclusive")
    if name:
        return dom.lookup_snapshot(name)
    if opts.get("current"):
        return dom.current_snapshot()
    raise CommandError(f"--{name_opt} or --current is required")


def _info(xml: str) -> dict[str, Any]:
    root = etree.fromstring(xml.encode("utf-8"))
    created = int((root.findtext("creationTime") or "0").strip() or 0)
    memory = root.find("memory")
    external = (memory is not None and memory.get("snapshot") == "external") or any(
        d.get("snapshot") == "external" for d in root.iterfind("disks/disk"))
    return {"name": root.findtext("name") or "", "state": (root.findtext("state") or "").strip(),
            "creation_time": created, "parent": (root.findtext("parent/name") or "").strip() or None,
            "location": "external" if external else "internal", "description": root.findtext("description")}


def _created(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def _create(ctx: Context, dom: Any, xml: str, flags: int, source: str | None) -> None:
    try:
        snap = dom.create_snapshot(xml, flags)
    except VirtError as exc:
        raise CommandError(None, exc) from None
    if source:
        ctx.extra(f"Domain snapshot {snap.name} created from '{source}'")
    else:
        ctx.extra(f"Domain snapshot {snap.name} created")


_CREATE_OPTS = (
    Opt("halt", "bool", "halt domain after snapshot is created"),
    Opt("disk-only", "bool", "capture disk state but not vm state"),
    Opt("reuse-external", "bool", "reuse any existing external files"),
    Opt("quiesce", "bool", "quiesce guest's file systems"),
    Opt("atomic", "bool", "require atomic operation"),
    Opt("live", "bool", "take a live snapshot"),
    Opt("validate", "bool", "validate the XML against the schema"),
)


def _create_flags(opts: dict[str, Any], *names: str) -> int:
    flags = 0
    for name in ("halt", "disk-only", "reuse-external", "quiesce", "atomic", "live", "validate", *names):
        if opts.get(name):
            flags |= _CREATE[name]
    return flags


@command("snapshot-create-as", DOMAIN_OPT, Opt("name", positional=True, help="name of snapshot"),
         Opt("description", positional=True, help="description of snapshot"),
         Opt("print-xml", "bool", "print XML document rather than create"),
         Opt("no-metadata", "bool", "take snapshot but create no metadata"), *_CREATE_OPTS,
         Opt("memspec", help="memory attributes: [file=]name[,snapshot=type]"),
         Opt("diskspec", help="disk attributes: disk[,snapshot=type][,driver=type][,file=name]"),
         help="Create a snapshot from a set of args", group=GROUP)
def cmd_snapshot_create_as(ctx: Context, opts: dict[str, Any]) -> None:
    lines = ["<domainsnapshot>"]
    if opts["name"]:
        lines.append(f"  <name>{escape(opts['name'])}</name>")
    if opts["description"]:
        lines.append(f"  <description>{escape(opts['description'])}</description>")
    if opts["memspec"]:
        lines.append(_memspec(opts["memspec"]))
    if opts["diskspec"]:
        lines += ["  <disks>", _diskspec(opts["diskspec"]), "  </disks>"]
    lines.append("</domainsnapshot>")
    xml = "\n".join(lines) + "\n"
    if opts["print-xml"]:
        ctx.print(xml)
        return
    dom = lookup_domain(ctx, opts["domain"])
    _create(ctx, dom, xml, _create_flags(opts, "no-metadata"), None)


def _memspec(spec: str) -> str:
    attrs: dict[str, str] = {}
    for i, part in enumerate(spec.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            key, value = ("file", part) if i == 0 else (part, "")
        attrs[key] = value
    inner = "".join(f" {k}='{escape(v)}'" for k, v in attrs.items())
    return f"  <memory{inner}/>"


def _diskspec(spec: str) -> str:
    parts = spec.split(",")
    attrs = {"name": parts[0]}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        attrs[key] = value
    inner = "".join(f" {k}='{escape(v)}'" for k, v in attrs.items() if k in ("name", "snapshot"))
    return f"    <disk{inner}/>"


@command("snapshot-create", DOMAIN_OPT, Opt("xmlfile", positional=True, help="domain snapshot XML"),
         Opt("redefine", "bool", "redefine metadata for existing snapshot"),
         Opt("current", "bool", "with redefine, set current snapshot"),
         Opt("no-metadata", "bool", "take snapshot but create no metadata"), *_CREATE_OPTS,
         help="Create a snapshot from XML", group=GROUP)
def cmd_snapshot_create(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    source = opts["xmlfile"]
    xml = read_xml_file(source) if source else "<domainsnapshot/>"
    _create(ctx, dom, xml, _create_flags(opts, "redefine", "current", "no-metadata"), source)


@command("snapshot-current", DOMAIN_OPT, Opt("name", "bool", "list the name, rather than the full xml"),
         Opt("security-info", "bool", "include security sensitive information in XML dump"),
         Opt("snapshotname", help="name of existing snapshot to make current"),
         help="Get or set the current snapshot", group=GROUP)
def cmd_snapshot_current(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    if opts["snapshotname"]:
        if opts["name"] or opts["security-info"]:
            raise CommandError("--snapshotname and --name are mutually exclusive")
        snap = dom.lookup_snapshot(opts["snapshotname"])
        dom.create_snapshot(snap.xml(1), _CREATE["redefine"] | _CREATE["current"])
        ctx.extra(f"Snapshot {snap.name} set as current")
        return
    if not dom.has_current_snapshot():
        raise CommandError(f"domain '{dom.name}' has no current snapshot")
    snap = dom.current_snapshot()
    if opts["name"]:
        ctx.print(snap.name, end="")
    else:
        ctx.print(snap.xml(1 if opts["security-info"] else 0), end="")


def _tree_counts(dom: Any) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    parents: dict[str, str | None] = {}
    for snap in dom.list_snapshots(_LIST["topological"]):
        parent = snap.parent()
        parents[snap.name] = parent.name if parent is not None else None
    children: dict[str, list[str]] = {name: [] for name in parents}
    for name, parent in parents.items():
        if parent is not None and parent in children:
            children[parent].append(name)
    return parents, children


@command("snapshot-info", DOMAIN_OPT, Opt("snapshotname", positional=True, help="snapshot name"),
         Opt("current", "bool", "info on current snapshot"), help="snapshot information", group=GROUP, json=True)
def cmd_snapshot_info(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    snap = _snapshot(ctx, dom, opts)
    info = _info(snap.xml())
    current = dom.has_current_snapshot() and dom.current_snapshot().name == snap.name
    parent = snap.parent()
    _, children = _tree_counts(dom)
    descendants, stack = 0, list(children.get(snap.name, []))
    while stack:
        descendants += 1
        stack.extend(children.get(stack.pop(), []))
    pairs = [("Name", snap.name), ("Domain", dom.name), ("Current", "yes" if current else "no"),
             ("State", info["state"]), ("Location", info["location"]),
             ("Parent", parent.name if parent is not None else "-"),
             ("Children", len(children.get(snap.name, []))), ("Descendants", descendants), ("Metadata", "yes")]
    record = {"name": snap.name, "domain": dom.name, "current": current, "state": info["state"],
              "location": info["location"], "parent": parent.name if parent is not None else None,
              "children": len(children.get(snap.name, [])), "descendants": descendants, "metadata": True}
    ctx.fields(pairs, record=record)


@command("snapshot-list", DOMAIN_OPT, Opt("parent", "bool", "add a column showing parent snapshot"),
         Opt("roots", "bool", "list only snapshots without parents"),
         Opt("leaves", "bool", "list only snapshots without children"),
         Opt("no-leaves", "bool", "list only snapshots that are not leaves (with children)"),
         Opt("metadata", "bool", "list only snapshots that have metadata that would prevent undefine"),
         Opt("no-metadata", "bool", "list only snapshots that have no metadata managed by libvirt"),
         Opt("inactive", "bool", "filter by snapshots taken while inactive"),
         Opt("active", "bool", "filter by snapshots taken while active (full system snapshots)"),
         Opt("disk-only", "bool", "filter by disk-only snapshots"),
         Opt("internal", "bool", "filter by internal snapshots"),
         Opt("external", "bool", "filter by external snapshots"),
         Opt("tree", "bool", "list snapshots in a tree"), Opt("from", help="limit list to children of given snapshot"),
         Opt("current", "bool", "limit list to children of current snapshot"),
         Opt("descendants", "bool", "with --from, list all descendants"),
         Opt("name", "bool", "list snapshot names only"),
         Opt("topological", "bool", "sort list topologically rather than by name"),
         help="List snapshots for a domain", group=GROUP, json=True)
def cmd_snapshot_list(ctx: Context, opts: dict[str, Any]) -> None:
    for a, b in (("tree", "name"), ("parent", "roots"), ("parent", "tree"), ("roots", "tree"), ("roots", "from"),
                 ("roots", "current"), ("from", "current"), ("leaves", "tree"), ("no-leaves", "tree")):
        if opts[a] and opts[b]:
            raise CommandError(f"Options --{a} and --{b} are mutually exclusive")
    dom = lookup_domain(ctx, opts["domain"])
    flags = 0
    for name, bit in _LIST.items():
        if opts[name]:
            flags |= bit
    if opts["roots"]:
        flags |= _LIST_ROOTS
    snaps = {s.name: s for s in dom.list_snapshots(flags)}
    names = list(snaps)
    start = opts["from"]
    if opts["current"]:
        if not dom.has_current_snapshot():
            raise CommandError(f"domain '{dom.name}' has no current snapshot")
        start = dom.current_snapshot().name
    # the whole tree is only needed to walk below --from/--current or to draw --tree
    parents, children = _tree_counts(dom) if start is not None or opts["tree"] else ({}, {})
    if start is not None:
        dom.lookup_snapshot(start)
        below: list[str] = []
        stack = list(reversed(children.get(start, [])))
        while stack:
            name = stack.pop()
            below.append(name)
            if opts["descendants"] or opts["tree"]:
                stack.extend(reversed(children.get(name, [])))
        keep = set(below)
        if opts["tree"]:
            keep.add(start)
        names = [n for n in names if n in keep]
    if not opts["topological"]:
        names.sort(key=str.casefold)
    if opts["tree"]:
        _print_tree(ctx, names, parents, start)
        return
    if opts["name"] and not ctx.want_json:
        for name in names:
            ctx.print(name)
        return
    rows, records = [], []
    for name in names:
        info = _info(snaps[name].xml())
        row = [name, _created(info["creation_time"]), info["state"]]
        if opts["parent"]:
            row.append(info["parent"] or "")
        rows.append(row)
        records.append({"name": name, "creation_time": info["creation_time"], "state": info["state"],
                        "parent": info["parent"]})
    headers = ["Name", "Creation Time", "State"] + (["Parent"] if opts["parent"] else [])
    ctx.table(headers, rows, records)


def _print_tree(ctx: Context, names: list[str], parents: dict[str, str | None], start: str | None) -> None:
    """The snapshots in ``names`` (in that order) as virsh draws them: below --from's snapshot
    (printed alone when the filters dropped it), else below each one whose parent is not listed."""
    shown = set(names)
    tops: list[str | None]
    if start is not None and start not in shown:
        names, tops = [start], [None]
    elif start is not None:
        tops = [None if name == start else parents.get(name) for name in names]
    else:
        tops = [parent if (parent := parents.get(name)) in shown else None for name in names]
    for line in tree_lines(names, tops):
        ctx.print(line)


@command("snapshot-dumpxml", DOMAIN_OPT, Opt("snapshotname", required=True, positional=True, help="snapshot name"),
         Opt("security-info", "bool", "include security sensitive information in XML dump"),
         help="Dump XML for a domain snapshot", group=GROUP)
def cmd_snapshot_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    snap = dom.lookup_snapshot(opts["snapshotname"])
    ctx.print(snap.xml(1 if opts["security-info"] else 0), end="")


@command("snapshot-parent", DOMAIN_OPT, Opt("snapshotname", positional=True, help="find parent of snapshot name"),
         Opt("current", "bool", "find parent of current snapshot"), help="Get the name of the parent of a snapshot",
         group=GROUP)
def cmd_snapshot_parent(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    snap = _snapshot(ctx, dom, opts)
    parent = snap.parent()
    if parent is None:
        raise CommandError(f"snapshot '{snap.name}' has no parent")
    ctx.print(parent.name, end="")


@command("snapshot-revert", DOMAIN_OPT, Opt("snapshotname", positional=True, help="snapshot name"),
         Opt("current", "bool", "revert to current snapshot"),
         Opt("running", "bool", "after reverting, change state to running"),
         Opt("paused", "bool", "after reverting, change state to paused"),
         Opt("force", "bool", "try harder on risky reverts"),
         Opt("reset-nvram", "bool", "re-initialize NVRAM from its pristine template"),
         help="Revert a domain to a snapshot", group=GROUP)
def cmd_snapshot_revert(ctx: Context, opts: dict[str, Any]) -> None:
    if opts["running"] and opts["paused"]:
        raise CommandError("Options --running and --paused are mutually exclusive")
    dom = lookup_domain(ctx, opts["domain"])
    snap = _snapshot(ctx, dom, opts)
    flags = (_REVERT_RUNNING if opts["running"] else 0) | (_REVERT_PAUSED if opts["paused"] else 0)
    try:
        snap.revert(flags)
    except VirtError as exc:
        if not opts["force"] or exc.code != ErrorNumber.SNAPSHOT_REVERT_RISKY:
            raise
        snap.revert(flags | _REVERT_FORCE)
    ctx.extra(f"Domain snapshot {snap.name} reverted\n")


@command("snapshot-delete", DOMAIN_OPT, Opt("snapshotname", positional=True, help="snapshot name"),
         Opt("current", "bool", "delete current snapshot"),
         Opt("children", "bool", "delete snapshot and all children"),
         Opt("children-only", "bool", "delete children but not snapshot"),
         Opt("metadata", "bool", "delete only libvirt metadata, leaving snapshot contents behind"),
         help="Delete a domain snapshot", group=GROUP)
def cmd_snapshot_delete(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    snap = _snapshot(ctx, dom, opts)
    flags = ((_DELETE_CHILDREN if opts["children"] else 0) | (_DELETE_CHILDREN_ONLY if opts["children-only"] else 0)
             | (_DELETE_METADATA_ONLY if opts["metadata"] else 0))
    try:
        snap.delete(flags)
    except VirtError as exc:
        raise CommandError(f"Failed to delete snapshot {snap.name}", exc) from None
    if opts["children-only"]:
        ctx.extra(f"Domain snapshot {snap.name} children deleted\n")
    else:
        ctx.extra(f"Domain snapshot {snap.name} deleted\n")
