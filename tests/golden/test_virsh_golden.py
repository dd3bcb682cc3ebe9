"""The CLI against what virsh 9.0 printed for the same commands on test:///default.

Each case runs ``virt -c test:///default "<command>"`` in-process on a fresh default node and
compares stdout, stderr and the exit code with ``testdriver/golden/virsh.json``: byte for
byte for deterministic cases, line by line in shape (labels, line count) for the ones that
depend on the clock or the host.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virt.testing import run_cli
from virt_corpus import conformance_dir

_DIR = conformance_dir()
_CASES: list[dict[str, Any]] = []
if _DIR is not None:
    _CASES = json.loads((_DIR / "testdriver/golden/virsh.json").read_text())["default"]




_NUMBER = re.compile(r"\d+(\.\d+)?")


def _shape(text: str) -> list[str]:
    return [_NUMBER.sub("N", line) for line in text.splitlines()]


@pytest.mark.parametrize("case", _CASES, ids=[c["command"] for c in _CASES])
def test_virsh_case(case: dict[str, Any]) -> None:
    rc, out, err = run_cli("--plain", "-c", "test:///default", case["command"])
    assert rc == case["rc"], err
    if case["clock_or_host_dependent"] or case["nondeterministic"]:
        if case["command"].startswith(("hostname", "domhostname")):
            assert out.count("\n") == case["stdout"].count("\n")
        else:
            assert _shape(out) == _shape(case["stdout"])
        assert _shape(err) == _shape(case["stderr"])
    else:
        assert out == case["stdout"]
        assert err == case["stderr"]
