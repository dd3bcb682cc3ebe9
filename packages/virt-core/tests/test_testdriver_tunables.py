"""Setting the domain tunables (memtune, blkiotune, numatune, schedinfo, domtime) on the test
driver, against what libvirt 9.0 does on test:///default.

``tunables_golden.json`` holds what libvirt printed, recorded once on Debian's libvirt 9.0 so
that these tests need no libvirt:

* ``api``: a sequence of set/get/XML calls on the domains ``test`` and ``off`` (defined first,
  see ``_OFF_XML``) and what python3-libvirt returned for each, the XML byte for byte.  Where
  python3-libvirt's own wrapper gets in the way (it reads the parameters with
  ``VIR_TYPED_PARAM_STRING_OKAY`` before it sets them, converts the types itself and refuses
  empty dicts) the entry is what the C API returns, called through ctypes.
* ``cli``: ``virsh -c test:///default "<commands>"`` (one connection, so one node, for every
  command of the line): exit code, stdout and stderr, byte for byte.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import virt
from virt import VirtError
from virt.flags import DOMAIN_TIME_SYNC
from virt.testing import run_cli

_GOLDEN = json.loads((Path(__file__).with_name("tunables_golden.json")).read_text(encoding="utf-8"))
_OFF_XML = """<domain type='test'><name>off</name><uuid>1353b1ec-718b-4f3b-9b66-7ea03c13a507</uuid>
<memory>1048576</memory><vcpu>2</vcpu>
<os><type>hvm</type></os></domain>"""
_SETTERS = {"mem": "set_memory_parameters", "blkio": "set_blkio_parameters", "numa": "set_numa_parameters",
            "sched": "set_scheduler_parameters"}
_GETTERS = {"gmem": "memory_parameters", "gblkio": "blkio_parameters", "gnuma": "numa_parameters"}


def _step(conn: virt.Connection, step: list[Any]) -> Any:
    name, op, *args = step
    dom = conn.lookup_domain(name)
    try:
        if op in _SETTERS:
            return getattr(dom, _SETTERS[op])(*args)
        if op in _GETTERS:
            return getattr(dom, _GETTERS[op])(*args)
        if op == "time":
            return dom.set_time(*args)
        if op == "gtime":
            return list(dom.time(*args))
        if op == "xml":
            return dom.xml(flags=args[0])
        return {"start": dom.start, "destroy": dom.destroy, "suspend": dom.suspend}[op]()
    except VirtError as exc:
        return {"error": [int(exc.code), int(exc.domain), exc.message]}


def test_api_sequence_matches_libvirt() -> None:
    with virt.open("test:///default") as conn:
        conn.define_domain(_OFF_XML)
        try:
            for record in _GOLDEN["api"]:
                assert _step(conn, record["step"]) == record["result"], record["step"]
        finally:
            conn.lookup_domain("off").undefine()


def test_set_time_now_and_sync() -> None:
    with virt.open("test:///default") as conn:
        dom = conn.lookup_domain("test")
        assert dom.time() == (627319920, 0)  # libvirt's test driver starts every guest clock here
        dom.set_time(int(time.time()))
        assert abs(dom.time()[0] - time.time()) < 5
        dom.set_time(0, 0, DOMAIN_TIME_SYNC)
        assert dom.time() == (0, 0)


def test_setters_are_mutating_hooks_refused_read_only() -> None:
    from virt._spectable import SPECS

    for hook, api in (("virt_domain_set_memory_parameters", "virDomainSetMemoryParameters"),
                      ("virt_domain_set_blkio_parameters", "virDomainSetBlkioParameters"),
                      ("virt_domain_set_numa_parameters", "virDomainSetNumaParameters"),
                      ("virt_domain_set_scheduler_parameters", "virDomainSetSchedulerParametersFlags"),
                      ("virt_domain_set_time", "virDomainSetTime")):
        assert SPECS[hook][:2] == (api, True)
    with virt.open("test:///default", readonly=True) as conn:
        dom = conn.lookup_domain("test")
        with pytest.raises(VirtError) as caught:
            dom.set_memory_parameters({"hard_limit": 1})
        assert caught.value.code == virt.ErrorNumber.OPERATION_DENIED
        with pytest.raises(VirtError):
            dom.set_time(1)
        assert dom.memory_parameters()["hard_limit"] == 9007199254740991


def test_tunables_survive_restart_in_the_config_only() -> None:
    with virt.open("test:///default") as conn:
        dom = conn.lookup_domain("test")
        dom.set_memory_parameters({"hard_limit": 1000})  # live
        dom.set_memory_parameters({"soft_limit": 500}, 2)  # config
        dom.destroy()
        dom.start()
        assert dom.memory_parameters() == {"hard_limit": 9007199254740991, "soft_limit": 500,
                                           "swap_hard_limit": 9007199254740991}




@pytest.mark.parametrize("case", _GOLDEN["cli"], ids=[c["line"] for c in _GOLDEN["cli"]])
def test_cli_matches_virsh(case: dict[str, Any]) -> None:
    rc, out, err = run_cli("--plain", "-c", "test:///default", case["line"])
    assert (rc, out, err) == (case["rc"], case["stdout"], case["stderr"])


def test_cli_domtime_now() -> None:
    rc, out, err = run_cli("--plain", "-c", "test:///default", "domtime test --now; domtime test")
    assert rc == 0, err
    assert out.startswith("\nTime: ")
    assert abs(int(out.split()[1]) - time.time()) < 5
