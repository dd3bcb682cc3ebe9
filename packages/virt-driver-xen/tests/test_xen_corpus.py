"""libvirt 9.0's xl/xm conversion cases (xlconfigtest, xmconfigtest), byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from virt import VirtError
from virt._errcodes import ErrorNumber
from virt_xen.xlconfig import domain_xml_from_native, domain_xml_to_native
from xentest_corpus import ABSENT, FORMAT_OF, XEN_DIR, case_id, cases, read

XML_TO_CFG = cases("xml_to_cfg")
CFG_TO_XML = cases("cfg_to_xml")


@pytest.mark.skipif(not XML_TO_CFG, reason=ABSENT)
@pytest.mark.parametrize("item", XML_TO_CFG, ids=[case_id(i) for i in XML_TO_CFG])
def test_xml_to_cfg(item: tuple[str, str, dict[str, Any]]) -> None:
    _, fmt, case = item
    assert domain_xml_to_native(fmt, read(case["xml"])) == read(case["cfg"])


@pytest.mark.skipif(not CFG_TO_XML, reason=ABSENT)
@pytest.mark.parametrize("item", CFG_TO_XML, ids=[case_id(i) for i in CFG_TO_XML])
def test_cfg_to_xml(item: tuple[str, str, dict[str, Any]]) -> None:
    _, fmt, case = item
    assert domain_xml_from_native(fmt, read(case["cfg"])) == read(case["xml"])


@pytest.mark.skipif(not CFG_TO_XML, reason=ABSENT)
@pytest.mark.parametrize("item", CFG_TO_XML, ids=[case_id(i) for i in CFG_TO_XML])
def test_cfg_round_trip_is_stable(item: tuple[str, str, dict[str, Any]]) -> None:
    """cfg -> XML -> cfg -> XML gives the XML of the first conversion again."""
    _, fmt, case = item
    xml = domain_xml_from_native(fmt, read(case["cfg"]))
    assert domain_xml_from_native(fmt, domain_xml_to_native(fmt, xml)) == xml


def test_counts() -> None:
    if not XML_TO_CFG:
        pytest.skip(ABSENT)
    by = {(d, direction): sum(1 for f, _, _ in cases(direction) if f == d)
          for d in ("xl", "xm") for direction in ("xml_to_cfg", "cfg_to_xml")}
    assert by == {("xl", "xml_to_cfg"): 39, ("xl", "cfg_to_xml"): 45, ("xm", "xml_to_cfg"): 32,
                  ("xm", "cfg_to_xml"): 36}


ALL_XML = sorted(p.relative_to(XEN_DIR).as_posix() for d in ("xl", "xm") for p in (XEN_DIR / d).glob("*.xml"))


@pytest.mark.skipif(not ALL_XML, reason=ABSENT)
@pytest.mark.parametrize("rel", ALL_XML)
def test_xml_round_trip_is_stable(rel: str) -> None:
    """XML -> cfg -> XML: the second XML converts to the same configuration and back to itself."""
    fmt = FORMAT_OF[rel.split("/")[0]]
    try:
        cfg = domain_xml_to_native(fmt, read(rel))
    except VirtError as exc:  # what the format cannot say is refused cleanly
        assert exc.code in (ErrorNumber.CONFIG_UNSUPPORTED, ErrorNumber.NO_NETWORK)
        return
    xml = domain_xml_from_native(fmt, cfg)
    assert domain_xml_to_native(fmt, xml) == cfg
    assert domain_xml_from_native(fmt, domain_xml_to_native(fmt, xml)) == xml
