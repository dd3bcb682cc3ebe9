"""The benchmark harness (``bench/`` at the repo root) runs end to end with a tiny N.

No timing is asserted: this only proves that ``python bench/run.py`` works, so that
``nox -s bench`` does not rot.  The virt side must succeed on every op; the libvirt side and
virsh are used when installed and skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
LIBVIRT_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not (BENCH / "run.py").is_file(), reason="bench/ is not in this tree")

N = 4


@pytest.fixture(scope="module")
def workload():
    sys.path.insert(0, str(BENCH))
    try:
        import _workload
        import testdriver_ops

        yield _workload, testdriver_ops
    finally:
        sys.path.remove(str(BENCH))


def _has_libvirt() -> bool:
    if not os.access(LIBVIRT_PYTHON, os.X_OK):
        return False
    return subprocess.run([LIBVIRT_PYTHON, "-c", "import libvirt"], capture_output=True).returncode == 0


def test_domain_xml_is_distinct_and_well_formed(workload):
    _workload, _ = workload
    from lxml import etree

    docs = [etree.fromstring(_workload.domain_xml(i)) for i in range(3)]
    assert len({d.findtext("name") for d in docs}) == 3
    assert len({d.findtext("uuid") for d in docs}) == 3
    for d in docs:
        assert d.findtext("os/type") == "hvm"
        assert len(d.findall("devices/disk")) == 1
        assert len(d.findall("devices/interface")) == 1


def test_virt_side_in_process(workload):
    _workload, testdriver_ops = workload
    result = testdriver_ops.run(n=N, rounds=1, warmup=2)
    assert result["available"] and result["n"] == N
    errors = {op: e["error"] for op, e in result["ops"].items() if "error" in e}
    assert not errors, errors
    for op in _workload.OPS:
        assert result["ops"][op]["best"] >= 0


def test_virt_side_leaves_the_default_node_clean(workload):
    _, testdriver_ops = workload
    import virt

    testdriver_ops.run(n=N, rounds=1, warmup=0)
    with virt.open("test:///default") as conn:
        assert not [d.name for d in conn.list_domains() if d.name.startswith("bench-")]


@pytest.mark.skipif(not _has_libvirt(), reason="libvirt-python is not installed for /usr/bin/python3")
def test_libvirt_side_subprocess():
    proc = subprocess.run([LIBVIRT_PYTHON, str(BENCH / "libvirt_ops.py"), "--n", str(N), "--rounds", "1",
                           "--warmup", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["available"], result
    assert not [op for op, e in result["ops"].items() if "error" in e], result["ops"]


def test_run_py_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--n", str(N), "--rounds", "1", "--warmup", "0",
         "--cli-runs", "1", "--importtime-runs", "1", "--plain", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "targets:" in proc.stdout
    result = json.loads(out.read_text())
    rows = {r["op"]: r for r in result["ops"]["rows"]}
    assert set(rows) == {"define", "list", "lookup", "xml", "start", "info", "destroy", "undefine"}
    assert all(r["virt"] is not None for r in rows.values()), rows
    if _has_libvirt():
        assert all(r["ratio"] is not None for r in rows.values()), rows
        assert result["ops"]["geomean"] is not None
    else:
        assert "not available" in proc.stdout
    startup = result["cli"]["startup"]
    assert "errors" not in startup or "virt" not in startup["errors"], startup.get("errors")
    if shutil.which("virsh"):
        assert startup["ratio"] is not None
    assert result["cli"]["importtime"]["top_cumulative"]


def test_run_py_without_libvirt_prints_virt_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--n", "2", "--rounds", "1", "--warmup", "0", "--cli-runs", "0",
         "--plain", "--libvirt-python", str(tmp_path / "no-such-python")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "libvirt-python is not available" in proc.stdout
