"""Host capabilities XML (``<capabilities>``), kept whole and formatted as libvirt prints it.

``virCapabilitiesFormatXML`` leaves a blank line after ``<capabilities>`` and after each top-level
section (``<host>``, every ``<guest>``), and prints a present-but-empty security model
``<model>``/``<doi>`` as ``<x></x>``; both are reproduced so the corpus round-trips byte for byte.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from virt._errors import ErrorDomain
from virt.xml._base import Element, XMLDocument, format_element
from virt.xml._util import attr

__all__ = ["CapabilitiesDocument", "GuestCapability", "SecurityModel"]


@attrs.frozen
class GuestCapability:
    """One ``<guest>``: an OS type on an architecture, with the domain types that run it."""

    os_type: str
    arch: str
    wordsize: int | None = None
    emulator: str | None = None
    machines: tuple[str, ...] = ()
    domain_types: tuple[str, ...] = ()
    features: tuple[str, ...] = ()


@attrs.frozen
class SecurityModel:
    model: str
    doi: str
    base_labels: tuple[tuple[str, str], ...] = ()


class CapabilitiesDocument(XMLDocument):
    """``virConnectGetCapabilities`` XML.  ``validate=True`` checks ``capability.rng``."""

    ROOT: ClassVar[str] = "capabilities"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = ErrorDomain.CAPABILITIES
    SCHEMA: ClassVar[str] = "capability"

    __slots__ = ()

    def to_string(self, **options: Any) -> str:
        out = ["<capabilities>", ""]
        for child in self.root:
            if not isinstance(child.tag, str):
                continue
            lines = format_element(child, 2)
            if child.tag == "host":
                lines = [_empty_secmodel(line) for line in lines]
            out.extend(lines)
            out.append("")
        out.append("</capabilities>")
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- accessors
    @property
    def host(self) -> Element | None:
        return self.root.find("host")

    @property
    def host_uuid(self) -> str | None:
        return self.root.findtext("host/uuid") or None

    @property
    def host_arch(self) -> str | None:
        return self.root.findtext("host/cpu/arch") or None

    @property
    def host_cpu_model(self) -> str | None:
        return self.root.findtext("host/cpu/model") or None

    def cells(self) -> int:
        """The number of NUMA cells of the host topology (0 when not reported)."""
        cells = self.root.find("host/topology/cells")
        return len(cells.findall("cell")) if cells is not None else 0

    def secmodels(self) -> tuple[SecurityModel, ...]:
        return tuple(
            SecurityModel(
                el.findtext("model") or "", el.findtext("doi") or "",
                tuple((b.get("type", ""), b.text or "") for b in el.findall("baselabel")),
            )
            for el in self.root.findall("host/secmodel")
        )

    def guests(self) -> tuple[GuestCapability, ...]:
        out = []
        for guest in self.root.findall("guest"):
            arch = guest.find("arch")
            wordsize = arch.findtext("wordsize") if arch is not None else None
            out.append(GuestCapability(
                os_type=guest.findtext("os_type") or "",
                arch=attr(arch, "name") or "",
                wordsize=int(wordsize) if wordsize and wordsize.isdigit() else None,
                emulator=arch.findtext("emulator") if arch is not None else None,
                machines=tuple(m.text or "" for m in arch.findall("machine")) if arch is not None else (),
                domain_types=tuple(d.get("type", "") for d in arch.findall("domain")) if arch is not None else (),
                features=tuple(str(f.tag) for f in guest.findall("features/*")),
            ))
        return tuple(out)


def _empty_secmodel(line: str) -> str:
    stripped = line.strip()
    if stripped in ("<model/>", "<doi/>"):
        tag = stripped[1:-2]
        return line.replace(stripped, f"<{tag}></{tag}>")
    return line
