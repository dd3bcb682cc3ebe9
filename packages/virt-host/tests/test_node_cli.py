"""The virsh node commands end to end: the ``virt`` command on ``qemu:///embed?root=...``, its
driver found through its entry point, the host-node provider through virt-host's (in this
process, entry points loaded afresh; ``nodeinfo`` also as a separate process)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from virt.cli import main
from virt.testing import isolated_plugins

pytestmark = pytest.mark.skipif(importlib.util.find_spec("virt_qemu") is None,
                                reason="needs virt-driver-qemu installed")

_VIRT = str(Path(sys.executable).with_name("virt"))


class Run(NamedTuple):
    stdout: str
    stderr: str


Virt = Callable[..., Run]


@pytest.fixture
def qemu_uri(tmp_path: Path) -> str:
    return f"qemu:///embed?root={tmp_path / 'qemu'}"


@pytest.fixture
def virt_cmd(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], qemu_uri: str) -> Iterator[Virt]:
    """``virt_cmd(word, ..., ok=True)``: the CLI in this process, every plugin from its entry point."""
    monkeypatch.delenv("VIRT_DISABLE_PLUGIN_AUTOLOAD", raising=False)

    def run(*words: str, ok: bool = True) -> Run:
        code = main(["-c", qemu_uri, *words])
        out, err = capsys.readouterr()
        assert (code == 0) == ok, (words, out, err)
        return Run(out, err)

    with isolated_plugins():
        yield run


def test_nodeinfo_in_its_own_process(qemu_uri: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRT_DISABLE_PLUGIN_AUTOLOAD"}
    done = subprocess.run([_VIRT, "-c", qemu_uri, "nodeinfo"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    fields = dict(re.findall(r"^([^:]+):\s+(.*)$", out, re.M))
    assert fields["CPU model"] == os.uname().machine
    assert int(fields["CPU(s)"]) <= (os.cpu_count() or 0)
    assert fields["Memory size"].endswith(" KiB")
    product = (int(fields["NUMA cell(s)"]) * int(fields["CPU socket(s)"]) * int(fields["Core(s) per socket"])
               * int(fields["Thread(s) per core"]))
    assert product >= int(fields["CPU(s)"])


def test_memory_and_cpu_stats(virt_cmd: Virt) -> None:
    out = virt_cmd("nodememstats").stdout
    assert [line.split(":")[0].strip() for line in out.splitlines() if line] == ["total", "free", "buffers",
                                                                                  "cached"]
    total = int(out.splitlines()[0].split()[2])
    with open("/proc/meminfo") as fh:
        assert total == int(fh.readline().split()[1])
    if Path("/sys/devices/system/node/node0").is_dir():
        cell = virt_cmd("nodememstats", "--cell", "0").stdout
        assert [line.split(":")[0].strip() for line in cell.splitlines() if line] == ["total", "free"]
        err = virt_cmd("nodememstats", "--cell", "4096", ok=False).stderr
        assert "cellNum in virHostMemGetStats must be less than or equal to" in err
    out = virt_cmd("nodecpustats").stdout
    assert [line.split(":")[0] for line in out.splitlines() if line] == ["user", "system", "idle", "iowait"]
    virt_cmd("nodecpustats", "--cpu", "0")
    err = virt_cmd("nodecpustats", "--cpu", "4096", ok=False).stderr
    assert "Invalid cpuNum" in err
    percent = virt_cmd("nodecpustats", "--percent").stdout  # two readings a second apart
    labels = [line.split(":")[0] for line in percent.splitlines() if line]
    assert labels == ["usage", "user", "system", "idle", "iowait"]
    values = [float(line.split()[1].rstrip("%")) for line in percent.splitlines() if line]
    assert all(0 <= v <= 100.05 for v in values)


def test_freecell(virt_cmd: Virt) -> None:
    out = virt_cmd("freecell").stdout
    assert re.fullmatch(r"Total: \d+ KiB\n\n?", out)
    out = virt_cmd("freecell", "--cellno", "0").stdout
    assert re.fullmatch(r"0: \d+ KiB\n\n?", out)
    out = virt_cmd("freecell", "--all").stdout
    assert "Total:" in out


def test_nodedev_commands(virt_cmd: Virt) -> None:
    tree = virt_cmd("nodedev-list", "--tree").stdout
    assert tree.splitlines()[0] == "computer"
    flat = virt_cmd("nodedev-list").stdout.split()
    assert "computer" in flat
    for name in flat:
        assert name in tree
    pci = virt_cmd("nodedev-list", "--cap", "pci").stdout.split()
    assert pci == sorted(n for n in flat if n.startswith("pci_"))
    net = virt_cmd("nodedev-list", "--cap", "net").stdout.split()
    assert net and all(n.startswith("net_") for n in net)
    xml = virt_cmd("nodedev-dumpxml", net[0]).stdout
    assert f"<name>{net[0]}</name>" in xml and "<capability type='net'>" in xml
    err = virt_cmd("nodedev-dumpxml", "pci_9999_99_99_9", ok=False).stderr
    assert "no node device with matching name 'pci_9999_99_99_9'" in err


def test_iface_commands(virt_cmd: Virt) -> None:
    listing = virt_cmd("iface-list", "--all").stdout
    from test_node_iface import listed_interfaces

    names = listed_interfaces()
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    assert sorted(row[0] for row in rows) == names
    assert all(row[1] in ("active", "inactive") for row in rows)
    xml = virt_cmd("iface-dumpxml", names[0]).stdout
    assert f"name='{names[0]}'" in xml
    err = virt_cmd("iface-dumpxml", "nosuchif0", ok=False).stderr
    assert "couldn't find interface named 'nosuchif0'" in err


def test_sysinfo(virt_cmd: Virt) -> None:
    has_dmi = Path("/sys/class/dmi/id").is_dir() or Path("/sys/firmware/dmi/tables/DMI").exists()
    done = virt_cmd("sysinfo", ok=has_dmi)
    if has_dmi:
        assert done.stdout.startswith("<sysinfo type='smbios'>")
    else:
        assert "Host SMBIOS information is not available" in done.stderr
