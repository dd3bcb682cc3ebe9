"""Domain XML <-> Xen's native configurations (``xen-xl``: xl.cfg(5); ``xen-xm``: the legacy
xm format), byte for byte as libvirt 9.0's libxl driver converts them
(``virConnectDomainXMLFromNative`` / ``virConnectDomainXMLToNative``).

>>> cfg = domain_xml_to_native("xen-xl", xml)          # doctest: +SKIP
>>> xml = domain_xml_from_native("xen-xl", cfg)        # doctest: +SKIP

Both work offline: they need neither Xen nor libxl.  Failures are :class:`virt.VirtError`:
``CONF_SYNTAX`` for a configuration that does not parse, ``INVALID_ARG`` for an unknown
format, ``CONFIG_UNSUPPORTED`` for what the format cannot express, ``XML_ERROR`` for bad XML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lxml import etree
from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber
from virt.xml.domain import DomainDocument

from virt_xen._conf import ConfValue, XenConf, format_value, parse_conf
from virt_xen._fromnative import LIBXL_FIRMWARE_DIR, native_to_tree

__all__ = [
    "FORMATS", "LIBXL_FIRMWARE_DIR", "XEN_XL", "XEN_XM", "ConfValue", "XenConf", "domain_xml_from_native",
    "domain_xml_to_native", "format_value", "parse_conf",
]

XEN_XL: Final = "xen-xl"
XEN_XM: Final = "xen-xm"
FORMATS: Final = (XEN_XL, XEN_XM)

#: Xen guests' MAC addresses start with Xen's OUI, as libvirt's libxl driver generates them
XEN_MAC_PREFIX: Final = "00:16:3e"


def _check_format(native_format: str) -> None:
    if native_format not in FORMATS:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported config type {native_format}",
                        domain=ErrorDomain.XEN)


def domain_xml_from_native(native_format: str, config: str, flags: int = 0) -> str:
    """The domain XML (formatted ``INACTIVE|SECURE``) of an xl or xm configuration."""
    _check_format(native_format)
    if flags:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported flags (0x{flags:x}) in function "
                        "libxlConnectDomainXMLFromNative", domain=ErrorDomain.LIBXL)
    try:
        root = native_to_tree(native_format, config)
    except ValueError as exc:  # lxml: a value XML cannot carry (control characters)
        raise VirtError(ErrorNumber.CONF_SYNTAX, f"value not representable in XML: {exc}",
                        domain=ErrorDomain.XEN) from None
    # an empty CD-ROM keeps the disk type xm gave it (the core's normaliser, like QEMU's
    # driver, makes every empty CD-ROM a file)
    empty_block = {_target_dev(d) for d in root.iter("disk")
                   if d.get("type") == "block" and d.find("source") is None}
    text = etree.tostring(root, encoding="unicode")
    doc = DomainDocument.from_string(text, inactive=True, video_type="cirrus", mac_prefix=XEN_MAC_PREFIX)
    for disk in doc.root.iter("disk"):
        if disk.find("source") is None and _target_dev(disk) in empty_block:
            disk.set("type", "block")
    # libvirt's xen parser builds the definition directly, so an Open vSwitch port gets no
    # generated interfaceid (the generic XML parser's default)
    for vport in doc.root.iter("virtualport"):
        for params in list(vport.iterchildren("parameters")):
            vport.remove(params)
    return _root_attrs_first(doc.to_string(inactive=True, secure=True))


def _target_dev(disk: etree._Element) -> str | None:
    target = disk.find("target")
    return target.get("dev") if target is not None else None


def _root_attrs_first(text: str) -> str:
    """libvirt writes the root's attributes before its namespace declarations."""
    first, nl, rest = text.partition("\n")
    if " xmlns:" not in first:
        return text
    body = first[len("<domain"):-1]
    parts: list[str] = []
    decls: list[str] = []
    for piece in _attr_pieces(body):
        (decls if piece.startswith("xmlns") else parts).append(piece)
    return "<domain" + "".join(f" {p}" for p in parts + decls) + ">" + nl + rest


def _attr_pieces(body: str) -> list[str]:
    pieces: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == " ":
            i += 1
            continue
        eq = body.index("='", i)
        end = body.index("'", eq + 2)
        pieces.append(body[i:end + 1])
        i = end + 1
    return pieces


def domain_xml_to_native(native_format: str, xml: str, flags: int = 0, *,
                         bridge_of: Callable[[str], str] | None = None) -> str:
    """The xl or xm configuration of a domain XML.

    ``bridge_of(name)`` gives the bridge of a virtual network (``<interface type='network'>``
    becomes ``bridge=...,script=vif-bridge``, as libvirt asks its connection); without it such
    an interface is ``VirtError(NO_NETWORK)``.
    """
    from virt_xen._tonative import tree_to_native

    _check_format(native_format)
    if flags:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unsupported flags (0x{flags:x}) in function "
                        "libxlConnectDomainXMLToNative", domain=ErrorDomain.LIBXL)
    doc = DomainDocument.from_string(xml, inactive=True, video_type="cirrus", mac_prefix=XEN_MAC_PREFIX)
    if doc.type != "xen":
        raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, f"domain type {doc.type!r} is not xen",
                        domain=ErrorDomain.XEN)
    return tree_to_native(native_format, doc.root, bridge_of).to_string()
