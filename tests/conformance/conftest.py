"""Prints the conformance table (area, cases, passed) after the run, and validates every
area against the corpus' own copy of libvirt 9.0's schemas.

Each ``test_conf_*.py`` module names its area in a module-level ``AREA`` string (and may
override it per test with a ``conformance_area`` marker); every test is one case.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from virt_corpus import conformance_dir

_results: dict[str, list[int]] = defaultdict(lambda: [0, 0])


@pytest.fixture(scope="session", autouse=True)
def _libvirt_9_schemas() -> Iterator[None]:
    """The vectors come from libvirt 9.0: validate against its schemas, shipped with them,
    unless ``VIRT_SCHEMA_DIR`` names others."""
    with pytest.MonkeyPatch.context() as mp:
        corpus = conformance_dir()
        if not os.environ.get("VIRT_SCHEMA_DIR") and corpus is not None:
            mp.setenv("VIRT_SCHEMA_DIR", str(corpus / "schemas"))
        yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance_area(name): the corpus area a case belongs to")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    marker = item.get_closest_marker("conformance_area")
    area = marker.args[0] if marker else getattr(item.module, "AREA", None)
    if area is None:
        return
    counts = _results[area]
    counts[0] += 1
    counts[1] += report.outcome == "passed"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    rows = sorted(_results.items())
    width = max(len("area"), *(len(a) for a, _ in rows))
    tr = terminalreporter
    tr.section("conformance")
    tr.write_line(f"{'area':<{width}}  {'cases':>5}  {'passed':>6}")
    for area, (cases, passed) in rows:
        tr.write_line(f"{area:<{width}}  {cases:>5}  {passed:>6}")
    total = sum(c for c, _ in _results.values()), sum(p for _, p in _results.values())
    tr.write_line(f"{'total':<{width}}  {total[0]:>5}  {total[1]:>6}")
