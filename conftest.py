"""Repository-wide pytest rules.

Hypothesis runs derandomized in CI (``CI`` set) and randomized elsewhere.

With ``VIRT_REQUIRE_ALL=1`` (CI sets it) a skipped test fails instead, unless its reason
contains ``[optional]``: in CI nothing may be skipped for want of a package, a tool or the
corpus, but a driver may still legitimately lack an optional feature.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings

# CI must be reproducible: the same examples every run, and no deadline on a shared 2-core
# machine.  Developers keep hypothesis's random exploration, which is how bugs are found.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


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
