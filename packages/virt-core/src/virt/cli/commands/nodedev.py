"""Node device commands: ``nodedev-list`` (with virsh's ``--tree``) and ``nodedev-dumpxml``."""

from __future__ import annotations

from typing import Any

from virt._errors import VirtError
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.node import XPATH_OPTS, dump_xml, exclusive, sorted_by_name

__all__ = ["tree_lines"]

NODEDEV = "Node Device"

# VIR_CONNECT_LIST_NODE_DEVICES_CAP_* by the names virsh accepts for --cap.
_CAP_BITS = {
    "system": 1 << 0, "pci": 1 << 1, "usb_device": 1 << 2, "usb": 1 << 3, "net": 1 << 4, "scsi_host": 1 << 5,
    "scsi_target": 1 << 6, "scsi": 1 << 7, "storage": 1 << 8, "fc_host": 1 << 9, "vports": 1 << 10,
    "scsi_generic": 1 << 11, "drm": 1 << 12, "mdev_types": 1 << 13, "mdev": 1 << 14, "ccw": 1 << 15,
    "css": 1 << 16, "vdpa": 1 << 17, "ap_card": 1 << 18, "ap_queue": 1 << 19, "ap_matrix": 1 << 20,
    "vpd": 1 << 21,
}
_INACTIVE = 1 << 30
_ACTIVE = 1 << 31


def tree_lines(names: list[str], parents: list[str | None]) -> list[str]:
    """virsh's ``vshTreePrint`` of every root device (``parents[i]`` None) and its descendants."""
    out: list[str] = []

    def walk(devid: int, lastdev: int, root: bool, indent: str) -> None:
        out.append(f"{indent}{'' if root else '+- '}{names[devid]}")
        if not root:
            indent += (" " if devid == lastdev else "|") + " "
        children = [i for i, parent in enumerate(parents) if parent == names[devid]]
        if children:
            out.append(f"{indent}  |")
        for child in children:
            walk(child, children[-1], False, indent + "  ")
        if not children and devid == lastdev:
            out.append(indent)

    for index, parent in enumerate(parents):
        if parent is None:
            walk(index, index, True, "")
    return out


@command("nodedev-list", Opt("tree", "bool", "list devices in a tree"),
         Opt("cap", help="capability names, separated by comma"),
         Opt("inactive", "bool", "list inactive devices"), Opt("all", "bool", "list inactive & active devices"),
         json=True, group=NODEDEV, help="enumerate devices on this host")
def cmd_nodedev_list(ctx: Context, opts: dict[str, Any]) -> None:
    exclusive(opts, "all", "inactive")
    if opts["tree"] and (opts["cap"] or opts["inactive"]):
        raise CommandError("Option --tree is incompatible with --cap and --inactive")
    flags = 0
    if opts["cap"]:
        for cap in opts["cap"].split(","):
            bit = _CAP_BITS.get(cap)
            if bit is None:
                raise CommandError(f"Invalid capability type '{cap}'")
            flags |= bit
    if opts["inactive"]:
        flags |= _INACTIVE
    elif not opts["all"]:
        flags |= _ACTIVE
    try:
        devices = sorted_by_name(ctx.conn.list_node_devices(flags=flags), lambda d: d.name)
    except VirtError as exc:
        raise CommandError("Failed to list node devices", exc) from None
    if ctx.want_json:
        ctx.emit_json([{"name": d.name, "parent": d.parent} for d in devices])
        return
    names = [d.name for d in devices]
    if opts["tree"]:
        parents = [None if d.name == "computer" else d.parent for d in devices]
        for line in tree_lines(names, parents):
            ctx.print(line)
        return
    for name in names:
        ctx.print(name)


@command("nodedev-dumpxml",
         Opt("device", required=True, positional=True, help="device name or wwn pair in 'wwnn,wwpn' format"),
         *XPATH_OPTS, group=NODEDEV, help="node device details in XML")
def cmd_nodedev_dumpxml(ctx: Context, opts: dict[str, Any]) -> None:
    name = opts["device"]
    if "," in name:
        raise CommandError(f"Could not find matching device '{name}'")
    try:
        dev = ctx.conn.lookup_node_device(name)
    except VirtError as exc:
        raise CommandError(f"Could not find matching device '{name}'", exc) from None
    dump_xml(ctx, dev.xml(), opts["xpath"], opts["wrap"])
