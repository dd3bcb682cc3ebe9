"""Safe parsing and libvirt-style formatting shared by every XML model.

Parsing: no entity expansion, no DTD loading, no network, a size limit; every failure is a
``VirtError(XML_ERROR)``.  Formatting: what libvirt's ``virBuffer`` writes — two-space indent,
single-quoted attributes, ``<x/>`` for empty elements, ``&apos;``/``&quot;`` escapes — so the
output can be compared byte for byte with libvirt's.  lxml's C serialiser writes it when its
output is provably the same (most documents); a pure-Python formatter does the rest.
"""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar, Self

from lxml import etree

from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = [
    "MAX_XML_BYTES", "Element", "XMLDocument", "parse_xml", "format_element", "escape",
    "xml_error", "sub", "ensure",
]

Element = etree._Element

# libvirt's remote protocol carries strings of at most 4 MiB (VIR_NET_MESSAGE_STRING_MAX);
# nothing a driver accepts can be larger, so refuse before lxml builds a tree.
MAX_XML_BYTES = 4 * 1024 * 1024

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


_ENTITIES: Any = etree.Entity


def xml_error(detail: str, domain: ErrorDomain = ErrorDomain.XML) -> VirtError:
    return VirtError(ErrorNumber.XML_ERROR, detail, domain=domain)


def parse_xml(text: str | bytes, *, root: str | None = None, domain: ErrorDomain = ErrorDomain.XML) -> Element:
    """Parse untrusted XML into an element, or raise ``VirtError(XML_ERROR)``.

    :param root: the expected root element name (``domain``, ``network``); another one is an
        error, as in libvirt ("unexpected root element <x>, expecting <domain>").
    """
    if isinstance(text, str):
        if len(text) > MAX_XML_BYTES:
            raise xml_error(f"document is larger than {MAX_XML_BYTES} bytes", domain)
        data = text.encode("utf-8")
    elif isinstance(text, (bytes, bytearray)):
        data = bytes(text)
    else:
        raise VirtError(ErrorNumber.INVALID_ARG, f"XML must be a string, not {type(text).__name__}", domain=domain)
    if len(data) > MAX_XML_BYTES:
        raise xml_error(f"document is larger than {MAX_XML_BYTES} bytes", domain)
    if b"<!ENTITY" in data or b"<!entity" in data:
        raise xml_error("entity declarations are not allowed", domain)
    try:
        tree = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise xml_error(f"malformed XML: {exc.msg}", domain) from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise xml_error(f"malformed XML: {exc}", domain) from None
    if next(tree.iter(_ENTITIES), None) is not None:  # entity references, found in C
        raise xml_error("entity references are not allowed", domain)
    if root is not None and tree.tag != root:
        raise xml_error(f"unexpected root element <{tree.tag}>, expecting <{root}>", domain)
    return tree


_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def escape(value: str) -> str:
    """Escape text or an attribute value as libvirt's ``virBufferEscapeString`` does."""
    value = value.translate(_ESCAPES)
    if "\r" in value or "\n" in value or "\t" in value:
        value = value.replace("\r", "&#13;")
    return _CONTROL.sub("", value)


def _qname(elem: Element, tag: str) -> str:
    if tag[0] != "{":
        return tag
    ns, _, local = tag[1:].partition("}")
    for prefix, uri in (elem.nsmap or {}).items():
        if uri == ns and prefix:
            return f"{prefix}:{local}"
    return local


def _format_element_python(elem: Element, indent: int = 0, out: list[str] | None = None) -> list[str]:
    """Append libvirt-style lines for ``elem`` to ``out`` (which is returned)."""
    if out is None:
        out = []
    pad = " " * indent
    tag = _qname(elem, elem.tag)
    parts = [pad, "<", tag]
    parent = elem.getparent()
    parent_ns = parent.nsmap if parent is not None else {}
    declarations = [f" xmlns:{prefix}='{escape(uri)}'" if prefix else f" xmlns='{escape(uri)}'"
                    for prefix, uri in elem.nsmap.items() if parent_ns.get(prefix) != uri]
    attributes = [f" {_qname(elem, str(key))}='{escape(str(value))}'" for key, value in elem.attrib.items()]
    # libvirt writes a document's root as <domain type='qemu' xmlns:qemu='...'> (its own
    # attributes, then the driver namespaces it declares); inner elements come from libxml2,
    # which declares namespaces first.
    parts += (attributes + declarations) if parent is None else (declarations + attributes)
    children = [c for c in elem if isinstance(c.tag, str)]
    text = elem.text or ""
    if not children:
        if text:
            parts.append(f">{escape(text)}</{tag}>")
        else:
            parts.append("/>")
        out.append("".join(parts))
        return out
    if text.strip() or any((c.tail or "").strip() for c in children):
        # Mixed content: keep it exactly, on one line, as libvirt does for such nodes.
        parts.append(">")
        parts.append(escape(text))
        for child in children:
            lines = _format_element_python(child, 0)
            parts.append("".join(line.lstrip() if i == 0 else line for i, line in enumerate(lines)))
            parts.append(escape(child.tail or ""))
        parts.append(f"</{tag}>")
        out.append("".join(parts))
        return out
    parts.append(">")
    out.append("".join(parts))
    for child in children:
        _format_element_python(child, indent + 2, out)
    out.append(f"{pad}</{tag}>")
    return out


# What lxml's C serialiser writes differently from libvirt, found in its output (see
# _format_element_fast): &#9; &#10; &#13; (libvirt keeps tab and newline raw in attributes)
# and entity references; a " in a text (libvirt: &quot;) -- attribute values have theirs as
# &quot; and < > escaped, so what lies between a > and the next < is a text.
_ODD_REFERENCE = re.compile(r"&(?!lt;|gt;|amp;|quot;)")
_QUOTE_IN_TEXT = re.compile(r'>[^<]*"')
_ELEMENTS: Any = etree.Element
_NOT_ELEMENTS: Any = (etree.Comment, etree.ProcessingInstruction, etree.Entity)


def _layout_lines(elem: Element) -> int | None:
    """How many lines the Python formatter gives ``elem`` when no text holds a newline (two
    per element with children, one per leaf), or None when it is not all elements, or some
    element with children has text or tails that are not only whitespace (mixed content)."""
    if next(elem.iter(*_NOT_ELEMENTS), None) is not None:
        return None
    lines = 0
    for node in elem.iter(_ELEMENTS):
        if len(node):
            lines += 2
            text = node.text
            if text and not text.isspace():
                return None
        else:
            lines += 1
        tail = node.tail
        if tail and not tail.isspace() and node is not elem:
            return None
    return lines


def _format_element_fast(elem: Element, indent: int) -> list[str] | None:
    """``elem``'s lines from lxml's C serialiser, or None when they could differ from
    :func:`_format_element_python`'s (then the caller formats in Python).

    Why the result is the same when it is returned:

    * Only elements, and no mixed content (``_layout_lines``): the Python formatter ignores
      the texts and tails of elements with children (they are whitespace, ``str.isspace``)
      and gives every element its own line(s).  ``etree.indent`` on a copy (the caller's
      tree, which other threads may be reading, is left alone) replaces exactly those texts
      and tails (it tests ``str.isspace`` too) by a newline and two spaces a level, counted
      from ``indent``; leaves keep their text.
    * libxml2 then writes each tag as the Python formatter does, but with " for ': names
      verbatim unless namespaced (then the output has "xmlns", or "xml:" for the XML
      namespace, which the Python formatter prints without prefix); attribute values with
      < > & " escaped as &lt; &gt; &amp; &quot; (tab, newline and CR as &#..;, caught by
      ``_ODD_REFERENCE``); texts with < > & escaped (CR as &#13;).  What is left: ' (the
      Python formatter writes &apos;, lxml leaves it raw), " in a text (``_QUOTE_IN_TEXT``),
      and an empty text (<x></x>, "></"; the Python formatter writes <x/>).  Without these
      every " in the output is an attribute delimiter.
    * The output's lines are then ``_layout_lines`` plus one per newline inside a text
      (attribute values have theirs escaped).  The Python formatter keeps such a text in one
      line, continuation unindented, so their number must be zero.
    """
    if indent < 0 or indent % 2:
        return None
    expected = _layout_lines(elem)
    if expected is None:
        return None
    dup = elem.__copy__()  # type: ignore[attr-defined]  # a deep copy (not in lxml-stubs)
    etree.indent(dup, space="  ", level=indent // 2)
    text: str = etree.tostring(dup, encoding="unicode", with_tail=False)
    if "'" in text or "></" in text or ("xml" in text and ("xmlns" in text or "xml:" in text)):
        return None
    if ("&" in text and _ODD_REFERENCE.search(text)) or _QUOTE_IN_TEXT.search(text):
        return None
    lines = text.replace('"', "'").split("\n")
    if len(lines) != expected:
        return None
    if indent:
        lines[0] = " " * indent + lines[0]
    return lines


#: Whether some text node sits beside elements (indentation, or mixed content): then libxml2's
#: pretty printer writes that element's content verbatim instead of laying it out.
_TEXT_BESIDE_ELEMENTS: Any = etree.XPath("boolean(.//text()[../*])")
#: An empty text (<x></x>; the Python formatter writes <x/>) or a " in a text (see above).
_EMPTY_OR_QUOTED_TEXT = re.compile(r'>(?:<|[^<]*")')
_NAMESPACED = re.compile(r"xml(?:ns|:)")
#: libxml2 indents at most 30 levels (MAX_INDENT, 60 columns): deeper lines would be short.
_DEEPEST_INDENT = "\n" + " " * 60


def format_tree(elem: Element) -> str | None:
    """``elem``'s libvirt-style text (lines joined by newlines, with a final newline), written
    by lxml's C pretty printer straight from the tree, or None when that could differ from
    :func:`format_element` (then the caller uses it).

    Why the result is the same when it is returned:

    * No text node beside an element (``_TEXT_BESIDE_ELEMENTS``): the only texts are those of
      leaves.  libxml2 then lays out every element with children as the Python formatter does
      (its own line, children two spaces deeper, the end tag on a line of its own), and writes
      leaves as ``<x .../>`` or ``<x ...>text</x>``.  The Python formatter ignores blank text
      beside elements, so trees normalised without it (``post_parse`` of the domain model)
      take this path, and others do not.
    * Comments, processing instructions, CDATA (``<!``, ``<?``): the Python formatter skips
      them; not taken.  Namespaces (``xmlns``, ``xml:``): it writes them differently; not taken.
    * The quoting, as in :func:`_format_element_fast`: lxml writes every attribute in "
      quotes with < > & " escaped (tab, newline and CR as &#..;: ``_ODD_REFERENCE``) and texts
      with < > & escaped.  A " in a text or an empty text (``<x></x>``) is not taken, so every
      " in the output is an attribute delimiter and every ' is a character of a value, which
      libvirt writes as &apos;.
    """
    if _TEXT_BESIDE_ELEMENTS(elem):
        return None
    text: str = etree.tostring(elem, encoding="unicode", pretty_print=True, with_tail=False)
    if ("!" in text and "<!" in text) or ("?" in text and "<?" in text) or _DEEPEST_INDENT in text:
        return None
    if ("&" in text and _ODD_REFERENCE.search(text)) or _EMPTY_OR_QUOTED_TEXT.search(text):
        return None
    if _NAMESPACED.search(text):
        return None
    if "'" in text:
        text = text.replace("'", "&apos;")
    return text.replace('"', "'")


def format_element(elem: Element, indent: int = 0, out: list[str] | None = None) -> list[str]:
    """Append libvirt-style lines for ``elem`` to ``out`` (which is returned).

    lxml's C serialiser writes the common case (see :func:`_format_element_fast`); whatever
    it would write differently is formatted by :func:`_format_element_python`.
    """
    lines = _format_element_fast(elem, indent) if len(elem) else None
    if lines is None:
        return _format_element_python(elem, indent, out)
    if out is None:
        return lines
    out.extend(lines)
    return out


def sub(parent: Element, tag: str, attrib: dict[str, str] | None = None, text: str | None = None,
        index: int | None = None) -> Element:
    """Make a child element (at ``index`` when given) with ordered attributes and text."""
    if index is None:
        # made in place: an Element made apart is a document of its own, moved in by append
        child = etree.SubElement(parent, tag, attrib) if attrib else etree.SubElement(parent, tag)
    else:
        child = etree.Element(tag, attrib) if attrib else etree.Element(tag)
        parent.insert(index, child)
    if text is not None:
        child.text = text
    return child


def ensure(parent: Element, tag: str) -> Element:
    """The first ``tag`` child of ``parent``, made when absent."""
    found = parent.find(tag)
    return found if found is not None else sub(parent, tag)


class XMLDocument:
    """Base of the XML models: an lxml tree kept whole (so nothing unknown is lost) plus typed
    accessors defined by each subclass.  ``from_string`` parses and checks; ``to_string``
    formats as libvirt does."""

    ROOT: ClassVar[str] = ""
    ERROR_DOMAIN: ClassVar[ErrorDomain] = ErrorDomain.XML
    #: libvirt's RelaxNG grammar for the document (``domain`` is ``domain.rng``): what
    #: ``from_string(..., validate=True)`` checks the input against before ``post_parse``.
    SCHEMA: ClassVar[str] = ""

    __slots__ = ("root",)

    def __init__(self, root: Element) -> None:
        self.root = root

    @classmethod
    def from_string(cls, text: str | bytes, **options: Any) -> Self:
        doc = cls(parse_xml(text, root=cls.ROOT, domain=cls.ERROR_DOMAIN))
        if options.get("validate") and cls.SCHEMA:
            # only when asked: loading the schema module and validating cost time
            from virt.xml._schema import validate

            validate(doc.root, cls.SCHEMA)
        doc.post_parse(**options)
        return doc

    def post_parse(self, **options: Any) -> None:
        """Check and normalise after parsing (libvirt's post-parse and validate steps).  The
        ``validate`` option (RelaxNG, see ``SCHEMA``) is handled by :meth:`from_string`."""

    def copy(self) -> Self:
        return type(self)(copy.deepcopy(self.root))

    def to_string(self, **options: Any) -> str:
        return "\n".join(format_element(self.root)) + "\n"

    def __str__(self) -> str:
        return self.to_string()
