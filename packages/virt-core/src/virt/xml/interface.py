"""Host network interface XML (``<interface>``, netcf/udev style), kept whole.

The document is lossless: it round-trips byte for byte what libvirt prints (including the
``<interface ...>`` + newline + ``</interface>`` form of an empty bridge member).  ``post_parse``
checks what ``virInterfaceDefParseXML`` requires of the top-level interface.
"""

from __future__ import annotations

from typing import Any, ClassVar

from virt._errors import ErrorDomain, ErrorNumber
from virt.xml._base import XMLDocument
from virt.xml._util import attr, fail, parse_mac, set_attrs

__all__ = ["INTERFACE_TYPES", "InterfaceDocument"]

_D = ErrorDomain.INTERFACE
INTERFACE_TYPES = ("ethernet", "bridge", "bond", "vlan")


class InterfaceDocument(XMLDocument):
    """A host interface definition.  ``validate=True`` checks ``interface.rng``."""

    ROOT: ClassVar[str] = "interface"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "interface"

    __slots__ = ()

    def post_parse(self, **options: Any) -> None:
        kind = self.root.get("type")
        if kind is None:
            raise fail(_D, "interface misses the type attribute")
        if kind not in INTERFACE_TYPES:
            raise fail(_D, f"unknown interface type {kind}")
        if not self.root.get("name"):
            raise fail(_D, "interface has no name")
        mac = self.root.find("mac")
        if mac is not None and mac.get("address") is not None and parse_mac(mac.get("address")) is None:
            raise fail(_D, f"invalid MAC address: {mac.get('address')}", ErrorNumber.INVALID_MAC)

    @property
    def name(self) -> str:
        return self.root.get("name") or ""

    @property
    def type(self) -> str:
        return self.root.get("type") or ""

    @property
    def mac(self) -> str | None:
        return attr(self.root.find("mac"), "address")

    @mac.setter
    def mac(self, value: str | None) -> None:
        el = self.root.find("mac")
        if value is None:
            if el is not None:
                self.root.remove(el)
            return
        if el is None:
            el = self.root.makeelement("mac", {})
            self.root.append(el)
        set_attrs(el, [("address", value)])

    @property
    def start_mode(self) -> str | None:
        return attr(self.root.find("start"), "mode")

    @property
    def mtu(self) -> int | None:
        size = attr(self.root.find("mtu"), "size")
        return int(size) if size and size.isdigit() else None

    def members(self) -> tuple[str, ...]:
        """Names of the bridge/bond member interfaces, or the vlan's parent."""
        parent = self.root.find(self.type) if self.type in ("bridge", "bond", "vlan") else None
        if parent is None:
            return ()
        return tuple(i.get("name", "") for i in parent.findall("interface"))
