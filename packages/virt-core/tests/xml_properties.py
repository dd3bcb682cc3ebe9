"""Shared pieces of the XML documents' hypothesis properties: the conformance corpus, a strategy
that mutates seed documents, and the two checks every document type must pass (format is a
fixed point of parse; any input raises nothing but VirtError).

A plain module (not conftest, no ``__init__``), imported by its unique name: pytest's default
import mode puts this folder on sys.path for the test files beside it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st
from lxml import etree
from virt import VirtError

_REPO = Path(__file__).resolve().parents[3]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance")


class _Document(Protocol):
    def to_string(self) -> str: ...


D = TypeVar("D", bound=_Document)


def corpus(area: str, pattern: str) -> list[str]:
    """The texts of the corpus files under ``CORPUS/area`` matching ``pattern``, sorted by path;
    empty where the corpus (or that area) is absent."""
    base = CORPUS / area
    if not base.is_dir():
        return []
    return [p.read_text() for p in sorted(base.glob(pattern))]


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[str], values: Sequence[str], texts: Sequence[str] | None = None) -> str:
    """One of ``seeds`` after 1-5 random edits: drop an element, set an attribute to one of
    ``values``, drop an attribute, set an element's text to one of ``texts`` (``values`` by
    default), copy an element into another, or shuffle an element's children."""
    root = etree.fromstring(draw(st.sampled_from(seeds)).encode())
    text_values = values if texts is None else texts
    for _ in range(draw(st.integers(1, 5))):
        elems = [e for e in root.iter() if isinstance(e.tag, str)]
        elem = draw(st.sampled_from(elems))
        op = draw(st.integers(0, 5))
        if op == 0 and elem is not root:
            parent = elem.getparent()
            if parent is not None:
                parent.remove(elem)
        elif op == 1 and elem.attrib:
            elem.set(draw(st.sampled_from(sorted(elem.attrib))), draw(st.sampled_from(values)))
        elif op == 2 and elem.attrib:
            del elem.attrib[draw(st.sampled_from(sorted(elem.attrib)))]
        elif op == 3:
            elem.text = draw(st.sampled_from(text_values))
        elif op == 4:
            other = draw(st.sampled_from(elems))
            if other is not root and elem not in other.iter():
                elem.append(copy.deepcopy(other))
        else:
            elem[:] = draw(st.permutations(list(elem)))
    return etree.tostring(root, encoding="unicode")


def parse_fixed_point(parse: Callable[[str], D], xml: str) -> D | None:
    """``parse(xml)``, or None where it raises VirtError (any other exception propagates); where
    it parses, check that its formatted output parses and formats back to itself."""
    try:
        doc = parse(xml)
    except VirtError:
        return None
    out = doc.to_string()
    again = parse(out).to_string()
    assert again == out, f"format(parse(x)) is not a fixed point:\n--- first\n{out}\n--- again\n{again}"
    return doc


def raises_only_virterror(parsers: Iterable[Callable[[Any], object]], data: str | bytes) -> None:
    """Feed ``data`` to each parser: VirtError is fine, any other exception propagates."""
    for parse in parsers:
        try:
            parse(data)
        except VirtError:
            pass
