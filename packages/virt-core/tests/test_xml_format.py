"""``format_element`` (lxml's C serialiser when it can reproduce libvirt's format exactly)
and ``format_tree`` (its pretty printer, straight from a tree without layout text) against the
reference pure-Python formatter ``_format_element_python``: the same lines for every tree —
the conformance corpus (whole documents and every sub-tree, at the indent it would be printed
at) and random trees (names, namespaces, attribute values and text drawn from
``'"<>&``, tabs, newlines, carriage returns and other unicode, mixed content, comments).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from virt import VirtError
from virt.xml._base import (
    Element,
    _format_element_fast,
    _format_element_python,
    format_element,
    format_tree,
    parse_xml,
)

CORPUS = Path("/work/shared/conformance")


def _same(elem: Element, indent: int = 0) -> None:
    expected = _format_element_python(elem, indent)
    assert format_element(elem, indent) == expected
    out = ["kept"]
    assert format_element(elem, indent, out) is out
    assert out == ["kept", *expected]
    if indent == 0:
        text = format_tree(elem)
        assert text is None or text == "\n".join(expected) + "\n"
        for tree in (elem, _without_layout(elem)):
            text = format_tree(tree)
            assert text is None or text == "\n".join(expected) + "\n"


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _without_layout(elem: Element) -> Element:
    """A copy of ``elem`` without blank text beside elements, except in mixed content (what the
    domain model's ``post_parse`` leaves): the same for the Python formatter."""
    dup = copy.deepcopy(elem)
    dup.tail = None
    for node in dup.iter():
        if len(node) and _blank(node.text) and all(_blank(c.tail) for c in node):
            node.text = None
            for child in node:
                child.tail = None
    return dup


# -- the corpus ------------------------------------------------------------------------------


def _corpus_trees() -> Iterator[tuple[Path, Element]]:
    for path in sorted(CORPUS.rglob("*.xml")):
        try:
            root = parse_xml(path.read_bytes())
        except VirtError:
            continue
        yield path, root


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no conformance corpus")
def test_corpus_documents_format_identically() -> None:
    files = fast = tree_fast = 0
    mismatches: list[str] = []
    for path, root in _corpus_trees():
        files += 1
        before = etree.tostring(root)
        if _format_element_fast(root, 0) is not None:
            fast += 1
        for indent in (0, 2):
            if format_element(root, indent) != _format_element_python(root, indent):
                mismatches.append(f"{path} (indent {indent})")
        expected = "\n".join(_format_element_python(root)) + "\n"
        for tree in (root, _without_layout(root)):
            text = format_tree(tree)
            if text is not None and text != expected:
                mismatches.append(f"{path} (format_tree)")
            tree_fast += tree is not root and text is not None
        assert etree.tostring(root) == before, f"formatting changed the tree of {path}"
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:5]}"
    assert files > 3000
    # the fast paths must be the common case, or this test proves nothing about them
    assert fast > files * 0.8, (fast, files)
    assert tree_fast > files * 0.8, (tree_fast, files)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no conformance corpus")
def test_corpus_subtrees_format_identically() -> None:
    """Models format sub-trees (``<devices>`` children, metadata...) at their own indent,
    with namespaces declared on an ancestor."""
    elements = 0
    mismatches: list[str] = []
    for path, root in _corpus_trees():
        for elem in root.iter():
            if elem is root or not isinstance(elem.tag, str):
                continue
            depth = sum(1 for _ in elem.iterancestors())
            elements += 1
            if format_element(elem, 2 * depth) != _format_element_python(elem, 2 * depth):
                mismatches.append(f"{path}: {root.getroottree().getpath(elem)}")
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:5]}"
    assert elements > 50000


def test_known_fallbacks_and_fast_cases() -> None:
    cases = [
        "<a x='it&apos;s'/>",                       # ' in an attribute: &apos;
        "<a>it's</a>",                              # ' in text: &apos;
        '<a>say "hi"</a>',                          # " in text: &quot;
        "<a x='1&#10;2&#9;3'/>",                    # newline and tab kept raw in attributes
        "<a>x<b/>y</a>",                            # mixed content on one line
        "<a>x<b/></a>",
        "<a><b/>y</a>",
        "<a><b/>y<c/></a>",
        "<a><b/>y\n<c/></a>",                      # as many lines as the layout
        "<a>x\n<b/><c/></a>",
        "<a>\u00a0<b/></a>",                        # unicode whitespace: layout for libvirt
        "<a><b>one\ntwo</b></a>",                   # a newline inside text stays in one line
        "<a><b>\n    </b></a>",                     # an element kept open
        "<a>1&#13;2</a>",
        "<a xmlns:q='urn:q'><q:b q:c='d'/></a>",    # namespaces
        "<a xmlns='urn:d'><b/></a>",
        "<a xmlns:q='urn:q'><q:b><c/></q:b><d><e/></d></a>",   # inherited by a sub-tree
        "<a xml:lang='en'/>",
        "<a x='&lt;&gt;&amp;&quot;'>&lt;&gt;&amp;</a>",
        "<a>\n\n  <b  x = '1' >t</b>\t<c/>\n</a>",
        "<a><b/><c><d>\u00e9\U0001d11e</d></c></a>",
    ]
    for text in cases + [f"<r>{case}</r>" for case in cases] + [f"<r><s/>{case}</r>" for case in cases]:
        root = parse_xml(text)
        for indent in (0, 1, 2, 6, -2):
            _same(root, indent)
            for elem in root.iter():
                _same(elem, indent)
    empty = etree.Element("a")
    empty.text = ""
    _same(empty)
    with_comment = etree.fromstring("<a><b/><!--c--><d/></a>")
    _same(with_comment, 2)
    _same(etree.fromstring("<a><!--c-->x</a>"))                # no element child: <a/>
    empty = etree.fromstring("<r><s/></r>")
    empty[0].text = ""
    _same(empty)
    with_pi = etree.fromstring("<a><?p q?><b/></a>")
    _same(with_pi)
    cdata = etree.Element("a")
    cdata.text = etree.CDATA("x<y")
    _same(cdata)
    assert _format_element_fast(parse_xml("<a><b x='1'>t</b></a>"), 2) == [
        "  <a>", "    <b x='1'>t</b>", "  </a>",
    ]
    assert format_tree(parse_xml("<a><b x='it&apos;s'>t</b></a>")) == "<a>\n  <b x='it&apos;s'>t</b>\n</a>\n"
    assert format_tree(parse_xml("<a>\n  <b/>\n</a>")) is None  # layout text: the Python formatter's job
    # libxml2 indents 30 levels at most
    deep = parse_xml("<a>" * 40 + "</a>" * 40)
    _same(deep)
    assert format_tree(deep) is None
    shallow = parse_xml("<a>" * 30 + "</a>" * 30)
    _same(shallow)
    assert format_tree(shallow) is not None


# -- random trees ----------------------------------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "disk", "x-y", "n.1", "_u", "\u00e9l", "\u4e2d"])
_NAMESPACES = st.sampled_from([None, None, None, None, ("q", "urn:q"), ("r", "urn:r"),
                               (None, "urn:default"), ("q", "urn:other")])
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_KEYS = st.sampled_from(["k", "v", "dev", "{urn:q}k", "{urn:r}z", f"{_XML_NS}lang"])
_SPECIAL = "'\"<>&\n\t\r ]\u00a0\u2003\u0085\u2028\u00e9\U0001d11e;#x/="
_CHARS = st.one_of(
    st.sampled_from(_SPECIAL),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
)
_TEXT = st.one_of(
    st.none(),
    st.just(""),
    st.text(st.sampled_from(" \n\t\r"), max_size=6),          # layout
    st.text(_CHARS, max_size=12),
)
# what the fast path takes: no ' anywhere, no " in text, no newline in a leaf's text
_PLAIN_VALUE = st.text(st.sampled_from("ab9 <>&\"./:=-_\u00e9\U0001d11e"), max_size=8)
_PLAIN_TEXT = st.one_of(st.none(), st.text(st.sampled_from(" \n\t\r"), max_size=5),
                        st.text(st.sampled_from("ab9 <>&./:=-_\u00e9"), min_size=1, max_size=8))


def _put(elem: Element, attr: str, value: str | None) -> None:
    try:
        setattr(elem, attr, value)
    except ValueError:  # a character lxml refuses
        assume(False)


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> Element:
    """A random element with every kind of name, namespace, value, text and child."""
    name = draw(_NAMES)
    ns = draw(_NAMESPACES)
    if ns is None:
        elem = etree.Element(name)
    else:
        prefix, uri = ns
        elem = etree.Element(f"{{{uri}}}{name}", nsmap={prefix: uri})
    for key in draw(st.lists(_KEYS, max_size=3, unique=True)):
        try:
            elem.set(key, draw(st.text(_CHARS, max_size=10)))
        except ValueError:
            assume(False)
    _put(elem, "text", draw(_TEXT))
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.integers(0, 20))
            if kind == 1:
                child = etree.Comment(draw(st.sampled_from(["c", " note "])))
            elif kind == 2:
                child = etree.ProcessingInstruction("pi", "x")
            else:
                child = draw(_trees(depth + 1))
            elem.append(child)
            _put(child, "tail", draw(_TEXT))
    return elem


@st.composite
def _plain_trees(draw: st.DrawFn, depth: int = 0) -> Element:
    """A random element of the kind the fast path formats: no namespaces, comments, ' ..."""
    elem = etree.Element(draw(st.sampled_from(["a", "b", "c", "\u00e9"])))
    for key in draw(st.lists(st.sampled_from(["k", "v", "dev"]), max_size=3, unique=True)):
        elem.set(key, draw(_PLAIN_VALUE))
    children = draw(st.integers(0, 3)) if depth < 3 else 0
    text = draw(_PLAIN_TEXT)
    if children and text and not text.isspace():
        text = None
    elif not children and text is not None:
        text = text.replace("\n", "").replace("\r", "") or None
    elem.text = text
    for _ in range(children):
        child = draw(_plain_trees(depth + 1))
        elem.append(child)
        child.tail = draw(st.one_of(st.none(), st.text(st.sampled_from(" \n\t\r"), max_size=5)))
    return elem


_QUIRKS = ["text", "tail", "text-newline", "tail-newline", "value", "xml:lang", "ns-attribute",
           "ns-child", "default-ns-child", "comment", "pi", "empty-text", "open-leaf", "cdata"]


@st.composite
def _plain_trees_with_one_quirk(draw: st.DrawFn) -> Element:
    """A plain tree with one thing libvirt's format and lxml's may disagree on, somewhere."""
    root = draw(_plain_trees())
    elements = list(root.iter())
    elem = draw(st.sampled_from(elements))
    quirk = draw(st.sampled_from(_QUIRKS))
    messy = st.one_of(
        st.sampled_from(["x\n", "\nx", 'say "hi"', "it's", "a\nb", "a\rb", "a\tb", "\u00a0", "\u2028", " ",
                         "\n  ", "a&b", "<&>", "]]>", "&#10;", "\U0001d11e"]),
        st.text(_CHARS, min_size=1, max_size=8),
    )
    if quirk == "text":
        _put(elem, "text", draw(messy))
    elif quirk == "tail":
        assume(elem is not root)
        _put(elem, "tail", draw(messy))
    elif quirk in ("text-newline", "tail-newline"):
        # as many newlines as the layout would have: only the text tells
        line = draw(st.sampled_from(["x\n", "\nx", "x\n  ", "a\nb"]))
        if quirk == "text-newline":
            assume(len(elem))
            elem.text = line
        else:
            elem = draw(st.sampled_from([e for e in elements if e.getnext() is not None] or [root]))
            assume(elem is not root)
            elem.tail = line
    elif quirk == "value":
        try:
            elem.set(draw(st.sampled_from(["k", "w"])), draw(messy))
        except ValueError:
            assume(False)
    elif quirk == "xml:lang":
        elem.set(f"{_XML_NS}lang", "en")
    elif quirk == "ns-attribute":
        elem.set("{urn:q}k", "1")
    elif quirk in ("ns-child", "default-ns-child"):
        prefix = "q" if quirk == "ns-child" else None
        etree.SubElement(elem, "{urn:q}n", nsmap={prefix: "urn:q"})
    elif quirk == "comment":
        elem.insert(draw(st.integers(0, len(elem))), etree.Comment("c"))
    elif quirk == "pi":
        elem.insert(draw(st.integers(0, len(elem))), etree.ProcessingInstruction("p", "q"))
    elif quirk == "empty-text":
        elem.text = ""
    elif quirk == "open-leaf":
        for child in list(elem):
            elem.remove(child)
        elem.text = "\n" + " " * draw(st.integers(0, 6))
    else:
        elem.text = etree.CDATA(draw(st.sampled_from(["x", "a<b", "]]"])))
    return root


def _check_tree(root: Element, indent: int) -> None:
    before = etree.tostring(root)
    _same(root, indent)
    for elem in root.iter():
        if isinstance(elem.tag, str):
            _same(elem, indent)
    # the same tree as a parser builds it (merged text nodes, declarations where written)
    reparsed = etree.fromstring(etree.tostring(root, encoding="utf-8"))
    _same(reparsed, indent)
    # and after libvirt-style reformatting, which is what the fast path mostly sees
    try:
        formatted = parse_xml("\n".join(_format_element_python(root)))
    except VirtError:
        pass
    else:
        _same(formatted, indent)
    assert etree.tostring(root) == before, "formatting changed the tree"


_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]
_SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=_HEALTH)


@_SETTINGS
@given(_trees(), st.sampled_from([0, 0, 1, 2, 4]))
def test_random_trees_format_identically(root: Element, indent: int) -> None:
    _check_tree(root, indent)


@settings(max_examples=2000, deadline=None, suppress_health_check=_HEALTH)
@given(_plain_trees_with_one_quirk(), st.sampled_from([0, 1, 2, 4, -2]))
def test_random_quirks_format_identically(root: Element, indent: int) -> None:
    _check_tree(root, indent)


@_SETTINGS
@given(_plain_trees(), st.sampled_from([0, 1, 2, 4, -2]))
def test_random_plain_trees_format_identically(root: Element, indent: int) -> None:
    _check_tree(root, indent)
    if len(root) and indent >= 0 and indent % 2 == 0:
        assert _format_element_fast(root, indent) is not None, "the fast path should take it"
    if indent == 0:
        assert format_tree(_without_layout(root)) is not None, "format_tree should take it"
