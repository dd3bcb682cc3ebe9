"""libvirt's LXC vectors: lxc-tools configurations to domain XML (``domxml-from-native``),
and the LXC driver's XML round trips, byte for byte."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import virt
from virt import ErrorNumber, VirtError
from virt.xml.domain import DomainDocument
from virt_lxc._native import domain_xml_from_native

_REPO = Path(__file__).resolve().parents[3]
CORPUS = Path(os.environ.get("VIRT_CONFORMANCE_DIR") or _REPO.parent / "shared" / "conformance") / "lxc"
# libvirt's tests fix the emulator (their fake capabilities) and the UUID (a mocked random source)
TEST_EMULATOR = "/usr/libexec/libvirt_lxc"
_UUID = re.compile(r"<uuid>[0-9a-f-]{36}</uuid>")


def _cases(kind: str) -> list[Any]:
    if not CORPUS.is_dir():
        return [pytest.param(None, id="corpus-absent",
                             marks=pytest.mark.skip(reason="requires the conformance corpus (../shared/conformance)"))]
    cases = json.loads((CORPUS / "manifest.json").read_text())[kind]["cases"]
    return [pytest.param(c, id=f"{c['name']}-{c.get('lxc_config_format', 'xml')}") for c in cases]


@pytest.mark.parametrize("case", _cases("conf2xml"))
def test_conf2xml(case: dict[str, Any]) -> None:
    config = (CORPUS / case["input"]).read_text()
    if case["expect"] == "error":
        with pytest.raises(VirtError) as info:
            domain_xml_from_native(config, TEST_EMULATOR)
        assert info.value.code == ErrorNumber.CONFIG_UNSUPPORTED
        assert "lxc.mount" in info.value.message
        return
    out = domain_xml_from_native(config, TEST_EMULATOR)
    expected = (CORPUS / case["output"]).read_text()
    assert _UUID.sub("<uuid/>", out) == _UUID.sub("<uuid/>", expected)


@pytest.mark.parametrize("case", _cases("xml2xml"))
def test_xml2xml(case: dict[str, Any]) -> None:
    text = (CORPUS / case["input"]).read_bytes()
    out = DomainDocument.from_string(text).to_string(secure=True)
    assert out == (CORPUS / case["output"]).read_text()
    assert DomainDocument.from_string(out).to_string(secure=True) == out


def test_from_native_through_the_connection(uri: str) -> None:
    config = (CORPUS / "conf2xml" / "lxcconf2xml-nonetwork.config").read_text()
    with virt.open(uri) as conn:
        if not conn.supports("virt_connect_domain_xml_from_native"):
            pytest.skip("[optional] the core has no virt_connect_domain_xml_from_native hook yet")
        def convert(fmt: str) -> str:
            out: str = conn.domain_xml_from_native(fmt, config)
            return out

        xml = convert("lxc-tools")
        assert "<name>migrate_test</name>" in xml and "<privnet/>" in xml
        with pytest.raises(VirtError) as info:
            convert("xen-xl")
        assert info.value.code == ErrorNumber.INVALID_ARG


def test_capabilities(uri: str) -> None:
    with virt.open(uri) as conn:
        caps = conn.capabilities()
    assert "<os_type>exe</os_type>" in caps and "<domain type='lxc'/>" in caps
