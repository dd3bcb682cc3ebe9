"""virt CLI: ``domxml-to-native`` and ``domxml-from-native`` (domain XML <-> a hypervisor's
native configuration).

As in virsh, both ask the connection (virConnectDomainXMLToNative/FromNative).  When the
connection's driver does not convert (``NO_SUPPORT``, as the test driver answers) and the
format is Xen's (``xen-xl``, ``xen-xm``), the conversion is done here, offline, by
``virt_xen.xlconfig`` if virt-driver-xen is installed: it needs neither Xen nor libxl.
"""

from __future__ import annotations

from typing import Any

from virt._errcodes import ErrorNumber
from virt._errors import VirtError
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.node import read_xml_file

__all__ = ["OFFLINE_FORMATS"]

GROUP = "Domain Management"
#: formats converted without a driver when the connection's cannot (with virt-driver-xen)
OFFLINE_FORMATS = ("xen-xl", "xen-xm")
_OFFLINE_NOTE = " (xen-xl, xen-xm: offline with virt-driver-xen on any connection)"


def _offline(native_format: str, exc: VirtError) -> Any:
    """The offline converter module, or None when the failure must stand."""
    if exc.code != ErrorNumber.NO_SUPPORT or native_format not in OFFLINE_FORMATS:
        return None
    try:
        from virt_xen import xlconfig
    except ImportError:
        return None
    return xlconfig


def _bridge_of(conn: Any) -> Any:
    """A virtual network's bridge from the connection's networks (as libvirt's converter asks
    its connection), for the offline conversion."""

    def bridge_of(name: str) -> str:
        net = conn.lookup_network(name)
        return str(net.bridge_name()) if net.is_active() else ""

    return bridge_of


@command("domxml-to-native", Opt("format", required=True, positional=True, help="target config data type format"),
         Opt("xml", positional=True, help="xml data file to export from"),
         Opt("domain", help="domain name, id or uuid"),
         help="Convert domain XML to native config" + _OFFLINE_NOTE, group=GROUP)
def cmd_domxml_to_native(ctx: Context, opts: dict[str, Any]) -> None:
    if opts["domain"] is not None and opts["xml"] is not None:
        raise CommandError("Options --domain and --xml are mutually exclusive")
    fmt = opts["format"]
    if opts["domain"] is not None:
        from virt.cli.commands.domain import lookup_domain

        dom = lookup_domain(ctx, opts["domain"])
        try:
            xml = dom.xml()
        except VirtError as exc:
            raise CommandError(None, exc) from None
    elif opts["xml"] is not None:
        xml = read_xml_file(opts["xml"])
    else:
        raise CommandError("need either domain or domain XML")
    conn = ctx.conn
    try:
        config = conn.domain_xml_to_native(fmt, xml, 0)
    except VirtError as exc:
        local = _offline(fmt, exc)
        if local is None:
            raise CommandError(None, exc) from None
        try:
            config = local.domain_xml_to_native(fmt, xml, 0, bridge_of=_bridge_of(conn))
        except VirtError as err:
            raise CommandError(None, err) from None
    ctx.print(config, end="")


@command("domxml-from-native", Opt("format", required=True, positional=True, help="source config data format"),
         Opt("config", required=True, positional=True, help="config data file to import from"),
         help="Convert native config to domain XML" + _OFFLINE_NOTE, group=GROUP)
def cmd_domxml_from_native(ctx: Context, opts: dict[str, Any]) -> None:
    fmt = opts["format"]
    config = read_xml_file(opts["config"])
    conn = ctx.conn
    try:
        xml = conn.domain_xml_from_native(fmt, config, 0)
    except VirtError as exc:
        local = _offline(fmt, exc)
        if local is None:
            raise CommandError(None, exc) from None
        try:
            xml = local.domain_xml_from_native(fmt, config, 0)
        except VirtError as err:
            raise CommandError(None, err) from None
    ctx.print(xml, end="")
