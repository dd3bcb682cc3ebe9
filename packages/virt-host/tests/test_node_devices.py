"""Node devices from sysfs: this host's through the public API, a made-up host's in detail;
every description valid against libvirt's ``nodedev.rng``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import virt
from lxml import etree
from node_fakehost import build_fake_host
from virt import ErrorNumber, VirtError
from virt.xml._schema import validate
from virt_host import _sysfs
from virt_host.node import NODEDEV_CAP_BITS, NodeProvider

# VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE / _INACTIVE
_ACTIVE, _INACTIVE = 1 << 31, 1 << 30


def _check_tree(names: list[str], parents: dict[str, str | None]) -> None:
    assert len(set(names)) == len(names), "device names are unique"
    assert names[0] == "computer" and parents["computer"] is None
    for name in names:
        seen = {name}
        parent = parents[name]
        while parent is not None:
            assert parent in parents, f"{name}'s parent {parent} is listed"
            assert parent not in seen
            seen.add(parent)
            parent = parents[parent]
        assert "computer" in seen


def _caps(xml: str) -> set[str]:
    root = etree.fromstring(xml.encode())
    out = {c.get("type") or "" for c in root.findall("capability")}
    for cap in root.findall("capability"):
        for sub in cap.findall("capability"):
            if sub.get("type") in ("mdev_types", "vpd", "fc_host"):
                out.add(sub.get("type") or "")
            if sub.get("type") == "vport_ops":
                out.add("vports")
    return out


def test_this_hosts_devices(conn: virt.Connection) -> None:
    devices = conn.list_node_devices()
    names = [d.name for d in devices]
    parents = {d.name: d.parent for d in devices}
    _check_tree(names, parents)
    pci = {p.name for p in Path("/sys/bus/pci/devices").iterdir()} if Path("/sys/bus/pci/devices").is_dir() else set()
    assert {n for n in names if n.startswith("pci_")} == {
        "pci_" + "".join(c if c.isalnum() else "_" for c in p) for p in pci}
    for ifname in os.listdir("/sys/class/net"):
        mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        assert "net_" + "".join(c if c.isalnum() else "_" for c in f"{ifname}_{mac}") in names
    for dev in devices:
        xml = dev.xml()
        root = etree.fromstring(xml.encode())
        validate(root, "nodedev")
        assert root.findtext("name") == dev.name
        assert root.findtext("parent") == dev.parent
        path = root.findtext("path")
        if dev.name != "computer":
            assert path is not None and os.path.exists(path)


def test_cap_filters(conn: virt.Connection) -> None:
    everything = {d.name: d for d in conn.list_node_devices()}
    for cap in ("pci", "net", "storage", "system", "usb_device", "scsi_host"):
        by_flag = {d.name for d in conn.list_node_devices(flags=NODEDEV_CAP_BITS[cap] | _ACTIVE)}
        by_cap = {d.name for d in conn.list_node_devices(cap=cap)}
        assert by_flag == by_cap
        assert by_cap == {name for name, d in everything.items() if cap in _caps(d.xml())}
    both = {d.name for d in conn.list_node_devices(flags=NODEDEV_CAP_BITS["pci"] | NODEDEV_CAP_BITS["net"])}
    assert both == {n for n in everything if n.startswith(("pci_", "net_"))}
    assert conn.list_node_devices(cap="system")[0].name == "computer"
    assert conn.list_node_devices(flags=_INACTIVE) == []  # host devices are all active
    assert len(conn.list_node_devices(flags=_ACTIVE | _INACTIVE)) == len(everything)
    with pytest.raises(VirtError) as err:
        conn.list_node_devices(flags=1 << 25)
    assert err.value.code == ErrorNumber.INVALID_ARG


def test_unknown_device(conn: virt.Connection) -> None:
    with pytest.raises(VirtError) as err:
        conn.lookup_node_device("pci_9999_99_99_9")
    assert err.value.code == ErrorNumber.NO_NODE_DEVICE
    assert "no node device with matching name 'pci_9999_99_99_9'" in str(err.value)
    with pytest.raises(VirtError) as err:
        NodeProvider().virt_nodedev_get_xml("nope", 0)
    assert err.value.code == ErrorNumber.NO_NODE_DEVICE
    assert str(err.value).endswith("no node device with matching name 'nope'")


# -- a made-up host -------------------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> NodeProvider:
    build_fake_host(tmp_path)
    return NodeProvider(str(tmp_path))


def _xml(provider: NodeProvider, name: str) -> etree._Element:
    root = etree.fromstring(provider.virt_nodedev_get_xml(name, 0).encode())
    validate(root, "nodedev")
    return root


def test_fake_tree(fake: NodeProvider) -> None:
    refs = fake.virt_nodedev_list(None, _ACTIVE)
    parents = {r.name: r.parent for r in refs}
    _check_tree([r.name for r in refs], parents)
    assert parents == {
        "computer": None,
        "pci_0000_00_1c_0": "computer",
        "pci_0000_02_00_0": "pci_0000_00_1c_0",
        "pci_0000_00_1f_2": "computer",
        "net_eth0_00_1b_21_aa_bb_cc": "pci_0000_02_00_0",
        "net_br0_52_54_00_12_34_56": "computer",
        "scsi_host0": "pci_0000_00_1f_2",
        "scsi_target0_0_0": "scsi_host0",
        "scsi_target0_0_1": "scsi_host0",
        "scsi_0_0_0_0": "scsi_target0_0_0",
        "scsi_0_0_1_0": "scsi_target0_0_1",
        "block_sda_ST1000DM003_Z1D5K0XX": "scsi_0_0_0_0",
        "block_sr0_HL_DT_ST_DVD": "scsi_0_0_1_0",
        "pci_0000_00_14_0": "computer",
        "usb_usb1": "pci_0000_00_14_0",
        "usb_1_0_1_0": "usb_usb1",
        "usb_1_1": "usb_usb1",
        "pci_0000_00_02_0": "computer",
        "drm_card0": "pci_0000_00_02_0",
        "drm_renderD128": "pci_0000_00_02_0",
    }  # neither the loop device nor the display connector are node devices
    names = [r.name for r in refs]
    for name, parent in parents.items():
        if parent is not None:
            assert names.index(parent) < names.index(name), "parents come first"
    assert {r.name for r in fake.virt_nodedev_list("storage", 0)} == {"block_sda_ST1000DM003_Z1D5K0XX",
                                                                      "block_sr0_HL_DT_ST_DVD"}
    assert {r.name for r in fake.virt_nodedev_list(None, NODEDEV_CAP_BITS["scsi_target"])} == {
        "scsi_target0_0_0", "scsi_target0_0_1"}
    assert fake.virt_nodedev_list("pci", NODEDEV_CAP_BITS["net"]) == []


def test_fake_pci(fake: NodeProvider) -> None:
    xml = fake.virt_nodedev_get_xml("pci_0000_02_00_0", 0)
    assert xml == """\
<device>
  <name>pci_0000_02_00_0</name>
  <path>/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0</path>
  <parent>pci_0000_00_1c_0</parent>
  <driver>
    <name>igb</name>
  </driver>
  <capability type='pci'>
    <class>0x020000</class>
    <domain>0</domain>
    <bus>2</bus>
    <slot>0</slot>
    <function>0</function>
    <product id='0x10c9'>82576 Gigabit Network Connection</product>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <capability type='virt_functions' maxCount='7'/>
    <iommuGroup number='12'>
      <address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </iommuGroup>
    <numa node='0'/>
    <pci-express>
      <link validity='cap' port='0' speed='5' width='4'/>
      <link validity='sta' speed='2.5' width='1'/>
    </pci-express>
  </capability>
</device>
"""
    bridge = _xml(fake, "pci_0000_00_1c_0")
    assert bridge.find("capability/capability[@type='pci-bridge']") is not None
    sata = _xml(fake, "pci_0000_00_1f_2")
    assert sata.find("capability/numa") is None  # numa_node -1
    assert sata.find("capability/pci-express") is None  # no capability list


def test_fake_pci_express_from_sysfs(tmp_path: Path) -> None:
    """Without root the extended config space is cut at 64 bytes: the link comes from sysfs."""
    host = build_fake_host(tmp_path)
    sata = "/sys/devices/pci0000:00/0000:00:1f.2"
    host.write(f"{sata}/max_link_speed", "8.0 GT/s PCIe\n")
    host.write(f"{sata}/max_link_width", "4\n")
    host.write(f"{sata}/current_link_speed", "2.5 GT/s PCIe\n")
    host.write(f"{sata}/current_link_width", "1\n")
    links = _xml(NodeProvider(str(tmp_path)), "pci_0000_00_1f_2").findall("capability/pci-express/link")
    assert [dict(link.attrib) for link in links] == [{"validity": "cap", "speed": "8", "width": "4"},
                                                     {"validity": "sta", "speed": "2.5", "width": "1"}]


def test_fake_net_and_storage(fake: NodeProvider) -> None:
    net = _xml(fake, "net_eth0_00_1b_21_aa_bb_cc")
    assert net.findtext("capability/interface") == "eth0"
    assert net.findtext("capability/address") == "00:1b:21:aa:bb:cc"
    assert dict(net.find("capability/link").attrib) == {"speed": "1000", "state": "up"}  # type: ignore[union-attr]
    assert net.find("capability/capability").get("type") == "80203"  # type: ignore[union-attr]
    br = _xml(fake, "net_br0_52_54_00_12_34_56")
    assert dict(br.find("capability/link").attrib) == {"state": "down"}  # type: ignore[union-attr]
    assert fake.virt_nodedev_get_xml("block_sda_ST1000DM003_Z1D5K0XX", 0) == """\
<device>
  <name>block_sda_ST1000DM003_Z1D5K0XX</name>
  <path>/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda</path>
  <devnode type='dev'>/dev/sda</devnode>
  <devnode type='link'>/dev/disk/by-id/ata-ST1000DM003_Z1D5K0XX</devnode>
  <parent>scsi_0_0_0_0</parent>
  <capability type='storage'>
    <block>/dev/sda</block>
    <bus>ata</bus>
    <drive_type>disk</drive_type>
    <model>ST1000DM003-1CH1</model>
    <vendor>ATA</vendor>
    <serial>ST1000DM003_Z1D5K0XX</serial>
    <size>1000204886016</size>
    <logical_block_size>512</logical_block_size>
    <num_blocks>1953525168</num_blocks>
  </capability>
</device>
"""
    cd = _xml(fake, "block_sr0_HL_DT_ST_DVD")
    assert cd.findtext("capability/drive_type") == "cdrom"
    removable = cd.find("capability/capability[@type='removable']")
    assert removable is not None
    assert removable.findtext("media_available") == "1"
    assert removable.findtext("media_size") == str(7634944 * 512)
    assert removable.findtext("media_label") == "Debian 12"
    scsi = _xml(fake, "scsi_0_0_1_0")
    assert scsi.findtext("capability/type") == "cdrom" and scsi.findtext("driver/name") == "sd"
    assert _xml(fake, "scsi_host0").findtext("capability/unique_id") == "1"
    assert _xml(fake, "scsi_target0_0_1").findtext("capability/target") == "target0:0:1"


def test_fake_usb_and_drm(fake: NodeProvider) -> None:
    assert fake.virt_nodedev_get_xml("usb_1_1", 0) == """\
<device>
  <name>usb_1_1</name>
  <path>/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1</path>
  <devnode type='dev'>/dev/bus/usb/001/002</devnode>
  <parent>usb_usb1</parent>
  <capability type='usb_device'>
    <bus>1</bus>
    <device>2</device>
    <product id='0xc52b'>Unifying Receiver</product>
    <vendor id='0x046d'>Logitech, Inc.</vendor>
  </capability>
</device>
"""
    hub = _xml(fake, "usb_usb1")
    assert hub.findtext("capability/product") == "xHCI Host Controller"  # no udev names: sysfs' strings
    assert hub.findtext("capability/vendor") == "Linux 6.1.0 xhci-hcd"
    interface = _xml(fake, "usb_1_0_1_0")
    assert [(el.tag, el.text) for el in interface.find("capability")] == [  # type: ignore[union-attr]
        ("number", "0"), ("class", "9"), ("subclass", "0"), ("protocol", "12")]
    card = _xml(fake, "drm_card0")
    assert card.findtext("devnode") == "/dev/dri/card0" and card.findtext("capability/type") == "primary"
    assert _xml(fake, "drm_renderD128").findtext("capability/type") == "render"
    gpu = _xml(fake, "pci_0000_00_02_0")
    mdev = gpu.find("capability/capability[@type='mdev_types']/type")
    assert mdev is not None and mdev.get("id") == "i915-GVTg_V5_4"
    assert [(el.tag, el.text) for el in mdev] == [("name", "GVTg_V5_4"), ("deviceAPI", "vfio-pci"),
                                                  ("availableInstances", "2")]
    assert [r.name for r in fake.virt_nodedev_list(None, NODEDEV_CAP_BITS["mdev_types"])] == ["pci_0000_00_02_0"]
    assert {r.name for r in fake.virt_nodedev_list("usb_device", 0)} == {"usb_usb1", "usb_1_1"}
    assert {r.name for r in fake.virt_nodedev_list("drm", 0)} == {"drm_card0", "drm_renderD128"}


def test_fake_computer(fake: NodeProvider, tmp_path: Path) -> None:
    computer = _xml(fake, "computer")
    assert computer.findtext("capability/product") == "20BE0061MC"
    assert computer.findtext("capability/hardware/vendor") == "LENOVO"
    assert computer.findtext("capability/hardware/uuid") == "12345678-1234-1234-9596-a088b277d677"
    assert computer.findtext("capability/firmware/release_date") == "09/13/2017"
    # no DMI at all: the machine id stands in for the UUID
    for entry in (tmp_path / "sys/class/dmi/id").iterdir():
        entry.unlink()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    computer = _xml(fake, "computer")
    assert computer.findtext("capability/hardware/uuid") == "01234567-89ab-cdef-0123-456789abcdef"
    assert computer.find("capability/product") is None


def test_udevless_disk_fallback(tmp_path: Path) -> None:
    """Without udev's database, a SCSI disk is still a disk (its SCSI type says so)."""
    build_fake_host(tmp_path)
    for entry in (tmp_path / "run/udev/data").iterdir():
        entry.unlink()
    names = {r.name for r in NodeProvider(str(tmp_path)).virt_nodedev_list("storage", 0)}
    assert names == {"block_sda", "block_sr0"}


def test_pci_ids_read_once(fake: NodeProvider) -> None:
    _sysfs._pci_ids.cache_clear()
    for _ in range(3):
        fake.virt_nodedev_get_xml("pci_0000_00_1f_2", 0)
    info = _sysfs._pci_ids.cache_info()
    assert info.misses == 1 and info.hits >= 2


def test_device_name() -> None:
    from virt_host._node_devices import device_name

    assert device_name("pci", "0000:00:1f.2") == "pci_0000_00_1f_2"
    assert device_name("net", "eth0", "52:54:00:ab:cd:ef") == "net_eth0_52_54_00_ab_cd_ef"
    assert device_name("block", "sda", "WDC WD10-EZEX") == "block_sda_WDC_WD10_EZEX"
