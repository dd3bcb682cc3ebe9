"""The tunable setters through virt-remote's generic proxy: new hooks travel as name + kwargs
with no change to virt-remote.  The far side is ``virt-remote-helper`` started as a child over
the ``ext`` transport (the same server code as over SSH, without the keys)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import virt
from virt import VirtError

_HELPER = Path(sys.executable).with_name("virt-remote-helper")


@pytest.fixture
def remote_uri() -> str:
    if not _HELPER.exists():
        pytest.skip("virt-remote is not installed in this environment")
    return f"test+ext:///default?command={_HELPER}"


def test_setters_over_the_remote_proxy(remote_uri: str) -> None:
    with virt.open(remote_uri) as conn:
        assert type(conn.driver).__module__.startswith("virt_remote")
        dom = conn.lookup_domain("test")
        dom.set_memory_parameters({"hard_limit": 100, "soft_limit": 50})
        dom.set_blkio_parameters({"weight": 300, "device_weight": "/dev/sda,10"})
        dom.set_numa_parameters({"numa_nodeset": "0-3,^2"})
        dom.set_scheduler_parameters({"weight": 10})
        dom.set_time(5, 6)
        assert dom.memory_parameters()["hard_limit"] == 100
        assert dom.blkio_parameters()["device_weight"] == "/dev/sda,10"
        assert dom.numa_parameters() == {"numa_mode": 0, "numa_nodeset": "0-1,3"}
        assert dom.time() == (5, 6)
        xml = dom.xml()
        assert "<hard_limit unit='KiB'>100</hard_limit>" in xml
        assert "<memory mode='strict' nodeset='0-1,3'/>" in xml
        with pytest.raises(VirtError) as caught:
            dom.set_memory_parameters({"min_guarantee": 1})
        assert caught.value.code == virt.ErrorNumber.ARGUMENT_UNSUPPORTED
        assert caught.value.message == "argument unsupported: parameter 'min_guarantee' not supported"


def test_setters_over_the_remote_proxy_read_only(remote_uri: str) -> None:
    with virt.open(remote_uri, readonly=True) as conn:
        with pytest.raises(VirtError) as caught:
            conn.lookup_domain("test").set_time(1)
        assert caught.value.code == virt.ErrorNumber.OPERATION_DENIED
