"""<metadata> children are kept as written: formatting them again changes nothing."""

from __future__ import annotations

import pytest
from virt.xml.domain import DomainDocument
from virt.xml.network import NetworkDocument

META = '<metadata><app:note xmlns:app="http://example.org/">line one\nline two</app:note>' \
       '<app2:blank xmlns:app2="http://example.com/">\n</app2:blank></metadata>'


@pytest.mark.parametrize("make", [
    lambda: DomainDocument.from_string(f"<domain type='test'><name>m</name><memory>1024</memory>"
                                       f"<os><type>hvm</type></os>{META}</domain>"),
    lambda: NetworkDocument.from_string(f"<network><name>m</name>{META}</network>"),
], ids=["domain", "network"])
def test_metadata_text_survives_round_trips(make) -> None:  # type: ignore[no-untyped-def]
    doc = make()
    out = doc.to_string()
    assert "line one\nline two</app:note>" in out, "newlines inside text are not indented"
    assert type(doc).from_string(out).to_string() == out
