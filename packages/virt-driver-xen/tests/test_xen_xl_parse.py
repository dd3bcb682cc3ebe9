"""The backend's reading of xl's outputs, captured from the Xen test lab (Xen 4.17, tests/xenlab.py)."""

from __future__ import annotations

from pathlib import Path

from virt_xen import _caps
from virt_xen._xl import cpu_set, parse_info, parse_list, parse_list_long, parse_vcpu_list

OUT = Path(__file__).parent / "xl-outputs"
DOMCAPS = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "capabilities" / "domaincaps"


def read(name: str) -> str:
    return (OUT / name).read_text()


def test_list_verbose() -> None:
    dom0, demo = parse_list(read("list-v.txt"))
    assert (dom0.name, dom0.domid, dom0.mem_mib, dom0.vcpus, dom0.flags) == ("Domain-0", 0, 512, 1, "r-----")
    assert dom0.uuid == "00000000-0000-0000-0000-000000000000" and dom0.reason is None
    assert (demo.name, demo.domid, demo.mem_mib, demo.uuid) == ("demo", 1, 128, "42e13953-2a33-455d-8736-585bca8f07d5")
    assert demo.cpu_seconds == 0.3 and not demo.paused and not demo.shutdown


def test_list_paused_and_shut_down() -> None:
    assert parse_list(read("list-v-paused.txt"))[1].paused
    shut = parse_list(read("list-v-shutdown.txt"))[1]
    assert shut.shutdown and shut.reason == 0 and shut.name == "demo3"


def test_list_plain_has_no_uuid() -> None:
    doms = parse_list(read("list.txt"))
    assert [d.name for d in doms] == ["Domain-0", "demo"] and all(d.uuid == "" for d in doms)


def test_list_name_with_spaces() -> None:
    line = "my guest                                     7   256     2     -b----       1.5 " \
           "6c8a7052-2c91-4638-8530-9144b67d1ecb        -                -\n"
    (dom,) = parse_list(line)
    assert (dom.name, dom.domid, dom.vcpus, dom.flags) == ("my guest", 7, 2, "-b----")


def test_list_long() -> None:
    doms = parse_list_long(read("list-l.txt"))
    assert [d["domid"] for d in doms] == [0, 4]
    cfg = doms[1]["config"]
    assert cfg["c_info"]["uuid"] == "6c8a7052-2c91-4638-8530-9144b67d1ecb"
    assert cfg["b_info"]["max_memkb"] == 131072 and cfg["on_poweroff"] == "preserve"
    assert parse_list_long("") == []


def test_info() -> None:
    info = parse_info(read("info.txt"))
    assert info["xen_version"] == "4.17.7" and info["nr_cpus"] == "1" and info["total_memory"] == "1023"
    assert info["virt_caps"].split() == ["pv", "hvm", "gnttab-v1", "gnttab-v2"]
    assert info["xen_commandline"].startswith("console=com1")
    # -n adds tables that are not key : value lines
    assert parse_info(read("info-n.txt"))["xen_scheduler"] == "credit2"


def test_vcpu_list() -> None:
    dom0, demo = parse_vcpu_list(read("vcpu-list.txt"))
    assert (dom0.name, dom0.domid, dom0.vcpu, dom0.cpu, dom0.state, dom0.affinity) == ("Domain-0", 0, 0, 0, "r--",
                                                                                         "all")
    assert (demo.domid, demo.cpu_seconds) == (1, 3.2)
    assert cpu_set("all", 2) == (True, True) and cpu_set("0,2-3", 4) == (True, False, True, True)


def test_domain_capabilities_match_libvirt() -> None:
    for machine in ("xenpv", "xenfv"):
        expected = DOMCAPS / f"libxl-{machine}.xml"
        if expected.exists():
            assert _caps.domain_capabilities_xml(None, "x86_64", machine, "xen") == expected.read_text()


def test_capabilities_from_info() -> None:
    caps = _caps.capabilities_xml(parse_info(read("info.txt")))
    assert "<machine>xenpv</machine>" in caps and "<machine>xenfv</machine>" in caps
    assert "<memory unit='KiB'>1047552</memory>" in caps
