"""libvirt 9.0's xl/xm conversion cases (xlconfigtest, xmconfigtest), byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from xentest_corpus import ABSENT, case_id, cases, read

from virt_xen.xlconfig import domain_xml_from_native, domain_xml_to_native

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
