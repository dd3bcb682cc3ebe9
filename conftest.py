"""Repository-wide pytest rules.

With ``VIRT_REQUIRE_ALL=1`` (CI sets it) a skipped test fails instead, unless its reason
contains ``[optional]``: in CI nothing may be skipped for want of a package, a tool or the
corpus, but a driver may still legitimately lack an optional feature.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("VIRT_REQUIRE_ALL") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if "[optional]" in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (VIRT_REQUIRE_ALL=1), which must provide everything: {reason}"
