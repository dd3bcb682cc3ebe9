"""Small canonicalisation helpers shared by the XML models (network, storage, node devices,
interfaces, secrets): libvirt's ``virXPath*``/``virStrToLong*``/``virUUIDParse`` equivalents and the
tree shaping (element order, attribute order, singletons) each ``post_parse`` needs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from lxml import etree

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element, escape, sub

#: ``iterchildren``/``iter`` filter for elements only (no comments or processing instructions).
_ELEMENTS: Any = etree.Element


def fail(domain: ErrorDomain, detail: str, code: ErrorNumber = ErrorNumber.XML_ERROR) -> VirtError:
    """The error to raise for a rejected definition."""
    return VirtError(code, detail, domain=domain)


def refuse_dot_name(name: str, kind: str, domain: ErrorDomain) -> None:
    """Refuse the names ``.`` and ``..`` (libvirt 9.0 accepts them).  Drivers make file and
    directory names from object names, where these two mean something else; the models refuse
    them so that no driver has to remember to."""
    if name in (".", ".."):
        raise fail(domain, f"{kind} name '{name}' is not allowed")


def text_of(elem: Element | None) -> str | None:
    """XPath ``string(elem)`` as libvirt's ``virXPathString`` returns it: None when empty.

    In an element that holds elements (``<name><x/></name>``), text that is only the
    whitespace between them is layout, not a value: formatting drops it, so reading it as a
    value would make the next parse disagree with this one."""
    if elem is None:
        return None
    if len(elem) == 0:
        return elem.text or None
    text = "".join(cast("Iterable[str]", elem.itertext()))
    return text if text.strip() else None


def child_text(parent: Element, tag: str) -> str | None:
    """``virXPathString("string(./tag[1])")``."""
    return text_of(parent.find(tag))


def attr(elem: Element | None, name: str) -> str | None:
    """``virXPathString("string(./@name)")``: the attribute, None when absent or empty."""
    if elem is None:
        return None
    return elem.get(name) or None


def only_first(parent: Element, tag: str) -> Element | None:
    """Keep the first ``tag`` child (the one libvirt reads) and drop the others."""
    found = parent.findall(tag)
    for extra in found[1:]:
        parent.remove(extra)
    return found[0] if found else None


def dedupe(parent: Element, tags: frozenset[str]) -> None:
    """Keep only the first child of each tag in ``tags`` (one pass over the children)."""
    seen: set[str] = set()
    for child in list(parent):
        tag = child.tag
        if tag in tags:
            if tag in seen:
                parent.remove(child)
            else:
                seen.add(tag)


def drop(parent: Element, *tags: str) -> None:
    for tag in tags:
        for child in parent.findall(tag):
            parent.remove(child)


def set_text(parent: Element, tag: str, value: str | None) -> Element | None:
    """Make ``<tag>value</tag>`` the only ``tag`` child (created at the end when missing), or
    remove it when ``value`` is None."""
    found = parent.findall(tag)
    if value is None:
        for child in found:
            parent.remove(child)
        return None
    for extra in found[1:]:
        parent.remove(extra)
    if found:
        child = found[0]
        for grandchild in list(child):
            child.remove(grandchild)
        child.attrib.clear()
    else:
        child = sub(parent, tag)
    child.text = value
    return child


def set_attrs(elem: Element, pairs: Iterable[tuple[str, str | None]], keep_unknown: bool = True) -> None:
    """Rewrite ``elem``'s attributes: the named ones in this order (None = absent), then any
    attribute not named, as found (unless ``keep_unknown`` is false)."""
    pairs = list(pairs)
    names = {name for name, _ in pairs}
    current = elem.items()
    wanted = [(k, v) for k, v in pairs if v is not None]
    if keep_unknown:
        wanted += [(str(k), str(v)) for k, v in current if k not in names]
    if wanted == current:
        return
    elem.attrib.clear()
    for key, value in wanted:
        elem.set(key, value)


def arrange(elem: Element, order: Sequence[str]) -> None:
    """Sort ``elem``'s children into ``order`` (by tag, stable); unknown ones go last."""
    kids = list(elem)
    if len(kids) < 2:
        return
    rank = {tag: i for i, tag in enumerate(order)}
    last = len(order)
    ordered = sorted(kids, key=lambda c: rank.get(c.tag, last) if isinstance(c.tag, str) else last)
    if ordered != kids:
        elem[:] = ordered


def sort_children(elem: Element, rank: Mapping[str, int], ns_rank: int | None = None) -> None:
    """Stable sort of the element children by ``rank``; an unknown tag takes the rank of the
    element before it (so it travels with it); namespaced tags take ``ns_rank`` when given.
    (:func:`arrange` puts unknown tags last instead.)"""
    children = list(elem.iterchildren(_ELEMENTS))
    if len(children) < 2:
        return
    keys: list[int] = []
    last = -1
    get = rank.get
    for child in children:
        tag: str = child.tag
        r = get(tag)
        if r is None:
            r = ns_rank if (ns_rank is not None and tag[0] == "{") else last
        last = r
        keys.append(r)
    if keys == sorted(keys):
        return
    for _, i in sorted(zip(keys, range(len(keys)), strict=True)):  # stable: ties keep their order
        elem.append(children[i])


def strip_blanks(root: Element, skip: Iterable[Element] = ()) -> None:
    """Drop whitespace-only text (libvirt parses with ``keepBlanks=0``), except under ``skip``.

    Whitespace tails are left alone: the formatter ignores them.
    """
    skipped = {e for s in skip for e in s.iter()}
    for elem in root.iter(etree.Element):
        text = elem.text
        if text is not None and not text.strip() and (not skipped or elem not in skipped):
            elem.text = None


def keep_open(elem: Element, depth: int) -> None:
    """Make an element print as ``<x>`` + newline + ``</x>`` when it has no children, as libvirt
    does for a few elements it always opens (``<ip>``, a pool's ``<source>``)."""
    if len(elem) == 0:
        elem.text = "\n" + "  " * depth
    else:
        elem.text = None


def parse_uuid(text: str) -> str | None:
    """``virUUIDParse``: 32 hex digits, ``-`` and spaces anywhere between pairs; canonical form."""
    s = text.strip(" \t\n\r\v\f")
    digits = s.replace("-", "").replace(" ", "")
    if len(digits) != 32 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return None
    # pairs may not be split by a separator
    pos = 0
    for _ in range(16):
        while s[pos] in "- ":
            pos += 1
        if s[pos] in "- " or s[pos + 1] in "- ":
            return None
        pos += 2
    d = digits.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


def new_uuid() -> str:
    """A random (version 4) UUID in canonical form."""
    import uuid  # not at the top: only defining an object without a UUID needs it

    return str(uuid.uuid4())


def parse_ull(text: str | None, base: int = 10) -> int | None:
    """``virStrToLong_ullp``: an unsigned integer filling the whole string (leading blanks ok)."""
    if text is None:
        return None
    s = text.lstrip(" \t\n\r\v\f")
    if not s or s[0] == "-":
        return None
    if s[0] == "+":
        s = s[1:]
    try:
        if base == 0:
            if s[:2].lower() == "0x":
                value = int(s, 0) if s[2:] and all(c in "0123456789abcdefABCDEF" for c in s[2:]) else -1
            elif len(s) > 1 and s[0] == "0":
                value = int(s[1:], 8) if all(c in "01234567" for c in s[1:]) else -1
            else:
                value = int(s, 10) if s.isdigit() else -1
        elif base == 16:
            t = s[2:] if s[:2].lower() == "0x" else s
            value = int(t, 16) if t and all(c in "0123456789abcdefABCDEF" for c in t) else -1
        elif base == 8:
            value = int(s, 8) if s and all(c in "01234567" for c in s) else -1
        else:
            value = int(s, 10) if s.isascii() and s.isdigit() else -1
    except ValueError:
        return None
    if value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        return None
    return value


def parse_uint(text: str | None, base: int = 10, limit: int = 0xFFFFFFFF) -> int | None:
    value = parse_ull(text, base)
    if value is None or value > limit:
        return None
    return value


def parse_int(text: str | None, base: int = 10, bits: int = 32) -> int | None:
    """``virStrToLong_i``/``_ll``: a signed integer filling the whole string."""
    if text is None:
        return None
    s = text.lstrip(" \t\n\r\v\f")
    neg = s[:1] == "-"
    if s[:1] in "+-" and s:
        s = s[1:]
    if s[:1] in "+-":
        return None
    value = parse_ull(s, base) if s else None
    if value is None:
        return None
    value = -value if neg else value
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        return None
    return value


def tristate(elem: Element | None, name: str, domain: ErrorDomain) -> str | None:
    """``virXMLPropTristateBool``: 'yes', 'no' or absent."""
    if elem is None:
        return None
    value = elem.get(name)
    if value is None:
        return None
    if value not in ("yes", "no"):
        raise fail(domain, f"Invalid value for attribute '{name}' in element '{elem.tag}': "
                           f"'{value}'. Expected one of 'yes', 'no'")
    return value


def parse_mac(text: str | None) -> str | None:
    """``virMacAddrParse``: six 1-2 digit hex groups separated by ':'; lower-case canonical form."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 6:
        return None
    out = []
    for part in parts:
        if not 1 <= len(part) <= 2 or any(c not in "0123456789abcdefABCDEF" for c in part):
            return None
        out.append(int(part, 16))
    return ":".join(f"{b:02x}" for b in out)


def hoist_namespaces(root: Element, keep_local: Element | None = None) -> Element | None:
    """Declare the namespaces the document uses on its root element, as libvirt prints them
    (``<pool type='fs' xmlns:fs='...'>``), and drop declarations nothing uses.

    ``keep_local`` (a ``<metadata>``) keeps its own declarations instead, as libvirt prints
    them there; it is replaced by an equivalent element, which is returned.
    """
    if not root.nsmap and not any(isinstance(c.tag, str) and c.tag[0] == "{" for c in root):
        return keep_local
    fresh: Element | None = None
    index = 0
    if keep_local is not None and keep_local.getparent() is root:
        # serialised on its own, the subtree carries every declaration it needs
        fresh = etree.fromstring(etree.tostring(keep_local, with_tail=False))
        index = root.index(keep_local)
        root.remove(keep_local)
    used: dict[str, str] = {}
    for elem in root.iter(etree.Element):
        prefix = elem.prefix
        if prefix:
            used.setdefault(prefix, etree.QName(elem).namespace or "")
    etree.cleanup_namespaces(root, top_nsmap=used)
    if fresh is not None:
        root.insert(index, fresh)
        return fresh
    return keep_local


def open_tag(elem: Element, ns_first: bool = True) -> str:
    """The start tag of ``elem`` as libvirt prints a root element (without ``>``)."""
    decls = [f" xmlns:{p}='{escape(u)}'" if p else f" xmlns='{escape(u)}'" for p, u in elem.nsmap.items()]
    attrs_ = [f" {k!s}='{escape(str(v))}'" for k, v in elem.attrib.items()]
    parts = decls + attrs_ if ns_first else attrs_ + decls
    return f"<{elem.tag}" + "".join(parts)


def parse_pci_address(node: Element, domain: ErrorDomain) -> tuple[int, int, int, int]:
    """``virPCIDeviceAddressParseXML`` + validity check: (domain, bus, slot, function)."""
    values = []
    for key in ("domain", "bus", "slot", "function"):
        raw = node.get(key)
        if raw is None:
            values.append(0)
            continue
        value = parse_uint(raw, 0)
        if value is None:
            raise fail(domain, f"Cannot parse <address> '{key}' attribute", ErrorNumber.INTERNAL_ERROR)
        values.append(value)
    dom, bus, slot, func = values
    if dom or bus or slot:
        if bus > 0xFF:
            raise fail(domain, f"Invalid PCI address bus='0x{bus:x}', must be <= 0xFF", ErrorNumber.INTERNAL_ERROR)
        if slot > 0x1F:
            raise fail(domain, f"Invalid PCI address slot='0x{slot:x}', must be <= 0x1F", ErrorNumber.INTERNAL_ERROR)
        if func > 7:
            raise fail(domain, f"Invalid PCI address function=0x{func:x}, must be <= 7", ErrorNumber.INTERNAL_ERROR)
    return dom, bus, slot, func



# Private-use characters: one absent from the element stands in for its text's own newlines.
_MARKERS = "".join(chr(c) for c in range(0xE000, 0xE100))


def pretty_lines(elem: Element, pad: str) -> list[str]:
    """``elem`` as libxml2's pretty printer writes it (libvirt's ``<metadata>`` children),
    each line after ``pad``.

    Whitespace-only text is layout and dropped.  Only the line breaks the printer adds get
    ``pad``: a newline inside the element's own text is kept verbatim, or each round trip
    would indent it further.
    """
    dup = copy.deepcopy(elem)
    dup.tail = None
    etree.cleanup_namespaces(dup)
    raw = etree.tostring(dup, encoding="unicode")
    marker = next((c for c in _MARKERS if c not in raw), "")

    def keep(text: str | None) -> str | None:
        if text is None or not text.strip():
            return None
        return text.replace("\n", marker) if marker else text

    for node in dup.iter():
        node.text = keep(node.text)
        for child in node:
            child.tail = keep(child.tail)
    text = etree.tostring(dup, encoding="unicode", pretty_print=True).rstrip("\n")
    lines = [pad + line for line in text.split("\n")]
    return [line.replace(marker, "\n") for line in lines] if marker else lines
