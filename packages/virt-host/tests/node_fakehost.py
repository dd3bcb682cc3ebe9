"""A made-up host under a directory, for the node provider's tests: two NUMA nodes of one
socket each (2 cores × 2 threads), a PCI bridge with a NIC behind it, a SATA controller with a
disk and a CD-ROM, a bridge interface, DMI files and a small PCI ID database."""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["FakeHost", "build_fake_host"]


class FakeHost:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str | bytes) -> None:
        path = self.root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    def mkdir(self, rel: str) -> None:
        (self.root / rel.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def link(self, rel: str, target: str) -> None:
        """``rel`` -> ``target`` (both host paths), as a relative symlink."""
        path = self.root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        real_target = self.root / target.lstrip("/")
        os.symlink(os.path.relpath(real_target, path.parent), path)


PCI_IDS = """\
# a tiny pci.ids
8086  Intel Corporation
\t10c9  82576 Gigabit Network Connection
\t\t8086 a03c  Ethernet Server Adapter
\t244e  82801 PCI Bridge
\t2922  82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]
1af4  Red Hat, Inc.
C 00  Unclassified device
\t00  Non-VGA unclassified device
"""


def _pcie_config(port: int, link_cap: int, link_sta: int, header: int = 0) -> bytes:
    config = bytearray(256)
    struct.pack_into("<HH", config, 0, 0x8086, 0x10C9)
    struct.pack_into("<H", config, 0x06, 0x10)  # status: has a capability list
    config[0x0E] = header
    config[0x34] = 0x40
    config[0x40], config[0x41] = 0x01, 0x50  # power management, next 0x50
    config[0x50], config[0x51] = 0x10, 0x00  # PCI Express, last
    struct.pack_into("<H", config, 0x52, 0x0002)  # version 2, endpoint
    struct.pack_into("<I", config, 0x50 + 0x0C, link_cap | (port << 24))
    struct.pack_into("<H", config, 0x50 + 0x12, link_sta)
    return bytes(config)


def build_fake_host(root: Path) -> FakeHost:
    h = FakeHost(root)
    # -- CPUs: 2 nodes × 1 socket × 2 cores × 2 threads
    h.write("/sys/devices/system/cpu/present", "0-7\n")
    h.write("/sys/devices/system/cpu/online", "0-7\n")
    for cpu in range(8):
        node, core, thread = cpu // 4, (cpu // 2) % 2, cpu % 2
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        if cpu:
            h.write(f"{base}/online", "1\n")
        h.write(f"{base}/topology/physical_package_id", f"{node}\n")
        h.write(f"{base}/topology/core_id", f"{core}\n")
        siblings = 0b11 << (cpu - thread)
        h.write(f"{base}/topology/thread_siblings", f"{siblings:08x}\n")
        h.link(f"/sys/devices/system/node/node{node}/cpu{cpu}", base)
    for node, (total, free) in enumerate(((8388608, 1048576), (8388608, 2097152))):
        h.write(f"/sys/devices/system/node/node{node}/meminfo",
                f"Node {node} MemTotal:       {total} kB\nNode {node} MemFree:        {free} kB\n"
                f"Node {node} MemUsed:        {total - free} kB\n")
    h.write("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2394.454\n\n"
                             "processor\t: 1\ncpu MHz\t\t: 1200.000\n")
    h.write("/proc/meminfo", "MemTotal:       16777216 kB\nMemFree:         3145728 kB\n"
                             "MemAvailable:    8000000 kB\nBuffers:          123456 kB\nCached:          2345678 kB\n"
                             "SwapCached:            0 kB\n")
    h.write("/proc/stat", "cpu  100 20 30 400 50 6 7 0 0 0\ncpu0 10 2 3 40 5 0 1 0 0 0\n"
                          "cpu1 90 18 27 360 45 6 6 0 0 0\nintr 12345\n")
    # -- DMI
    for name, value in (("sys_vendor", "LENOVO"), ("product_name", "20BE0061MC"),
                        ("product_version", "ThinkPad T440p"), ("product_uuid", "12345678-1234-1234-9596-A088B277D677"),
                        ("bios_vendor", "LENOVO"), ("bios_version", "GLET90WW (2.44 )"),
                        ("bios_date", "09/13/2017"), ("board_vendor", "LENOVO"), ("board_name", "20BE0061MC")):
        h.write(f"/sys/class/dmi/id/{name}", value + "\n")
    h.write("/usr/share/misc/pci.ids", PCI_IDS)
    # -- PCI: a bridge, a NIC behind it, a SATA controller
    bridge = "/sys/devices/pci0000:00/0000:00:1c.0"
    nic = f"{bridge}/0000:02:00.0"
    sata = "/sys/devices/pci0000:00/0000:00:1f.2"
    for path, vendor, device, klass, config in (
        (bridge, 0x8086, 0x244E, 0x060400, _pcie_config(1, 0x3 | (4 << 4), 0x3 | (4 << 4), header=1)),
        (nic, 0x8086, 0x10C9, 0x020000, _pcie_config(0, 0x2 | (4 << 4), 0x1 | (1 << 4))),
        (sata, 0x8086, 0x2922, 0x010601, bytes(64)),
    ):
        h.write(f"{path}/vendor", f"0x{vendor:04x}\n")
        h.write(f"{path}/device", f"0x{device:04x}\n")
        h.write(f"{path}/class", f"0x{klass:06x}\n")
        h.write(f"{path}/numa_node", "-1\n" if path == sata else "0\n")
        h.write(f"{path}/config", config)
        h.link(f"/sys/bus/pci/devices/{os.path.basename(path)}", path)
    h.write(f"{nic}/sriov_totalvfs", "7\n")
    h.mkdir("/sys/bus/pci/drivers/igb")
    h.link(f"{nic}/driver", "/sys/bus/pci/drivers/igb")
    h.mkdir("/sys/kernel/iommu_groups/12/devices")
    h.link("/sys/kernel/iommu_groups/12/devices/0000:02:00.0", nic)
    h.link(f"{nic}/iommu_group", "/sys/kernel/iommu_groups/12")
    # -- network: eth0 on the NIC, br0 (virtual) with eth0 as its port
    eth0 = f"{nic}/net/eth0"
    h.write(f"{eth0}/address", "00:1b:21:aa:bb:cc\n")
    h.write(f"{eth0}/operstate", "up\n")
    h.write(f"{eth0}/speed", "1000\n")
    h.write(f"{eth0}/mtu", "1500\n")
    h.write(f"{eth0}/uevent", "INTERFACE=eth0\nIFINDEX=2\n")
    h.link("/sys/class/net/eth0", eth0)
    br0 = "/sys/devices/virtual/net/br0"
    h.write(f"{br0}/address", "52:54:00:12:34:56\n")
    h.write(f"{br0}/operstate", "down\n")
    h.write(f"{br0}/speed", "-1\n")
    h.write(f"{br0}/mtu", "1500\n")
    h.write(f"{br0}/uevent", "DEVTYPE=bridge\nINTERFACE=br0\nIFINDEX=3\n")
    h.write(f"{br0}/bridge/stp_state", "1\n")
    h.write(f"{br0}/bridge/forward_delay", "1500\n")
    h.link(f"{br0}/brif/eth0", f"{eth0}/brport")
    h.write(f"{eth0}/brport/state", "3\n")
    h.link("/sys/class/net/br0", br0)
    # -- SCSI: host0 on the SATA controller, a disk and a CD-ROM
    host0 = f"{sata}/ata1/host0"
    h.write(f"{host0}/uevent", "DEVTYPE=scsi_host\n")
    h.write(f"{host0}/scsi_host/host0/unique_id", "1\n")
    h.link("/sys/bus/scsi/devices/host0", host0)
    for target, lun_dir, block, dev, kind, udev in (
        ("target0:0:0", "0:0:0:0", "sda", "8:0", 0,
         "E:ID_TYPE=disk\nE:ID_BUS=ata\nE:ID_SERIAL=ST1000DM003_Z1D5K0XX\nS:disk/by-id/ata-ST1000DM003_Z1D5K0XX\n"),
        ("target0:0:1", "0:0:1:0", "sr0", "11:0", 5,
         "E:ID_TYPE=cd\nE:ID_CDROM=1\nE:ID_CDROM_MEDIA=1\nE:ID_FS_LABEL=Debian 12\nE:ID_BUS=ata\n"
         "E:ID_SERIAL=HL-DT-ST_DVD\n"),
    ):
        tpath = f"{host0}/{target}"
        dpath = f"{tpath}/{lun_dir}"
        h.write(f"{tpath}/uevent", "DEVTYPE=scsi_target\n")
        h.write(f"{dpath}/uevent", "DEVTYPE=scsi_device\n")
        h.write(f"{dpath}/type", f"{kind}\n")
        h.write(f"{dpath}/model", "ST1000DM003-1CH1\n" if kind == 0 else "DVDRAM GT80N\n")
        h.write(f"{dpath}/vendor", "ATA     \n")
        h.mkdir("/sys/bus/scsi/drivers/sd")
        h.link(f"{dpath}/driver", "/sys/bus/scsi/drivers/sd")
        h.link(f"/sys/bus/scsi/devices/{target}", tpath)
        h.link(f"/sys/bus/scsi/devices/{lun_dir}", dpath)
        bpath = f"{dpath}/block/{block}"
        h.write(f"{bpath}/dev", dev + "\n")
        h.write(f"{bpath}/size", "1953525168\n" if kind == 0 else "7634944\n")
        h.write(f"{bpath}/queue/logical_block_size", "512\n" if kind == 0 else "2048\n")
        h.write(f"{bpath}/removable", "0\n" if kind == 0 else "1\n")
        h.link(f"{bpath}/device", dpath)
        h.link(f"/sys/block/{block}", bpath)
        h.write(f"/run/udev/data/b{dev}", udev)
    # -- USB: a controller, its root hub (and the hub's interface), a receiver
    xhci = "/sys/devices/pci0000:00/0000:00:14.0"
    for rel, value in (("vendor", "0x8086"), ("device", "0x8c31"), ("class", "0x0c0330"), ("numa_node", "-1")):
        h.write(f"{xhci}/{rel}", value + "\n")
    h.link("/sys/bus/pci/devices/0000:00:14.0", xhci)
    usb_devices: list[tuple[str, str, int, int, str, str, dict[str, str]]] = [
        ("usb1", "usb1", 1, 1, "1d6b", "0002",
         {"manufacturer": "Linux 6.1.0 xhci-hcd", "product": "xHCI Host Controller"}),
        ("1-1", "usb1/1-1", 1, 2, "046d", "c52b", {"product": "USB Receiver"}),
    ]
    for sysname, rel, busnum, devnum, vendor_id, product_id, extra in usb_devices:
        path = f"{xhci}/{rel}"
        h.write(f"{path}/uevent", f"DEVTYPE=usb_device\nDEVNAME=bus/usb/{busnum:03d}/{devnum:03d}\nMAJOR=189\n"
                                  f"MINOR={devnum - 1}\n")
        for name, value in (("busnum", str(busnum)), ("devnum", str(devnum)), ("idVendor", vendor_id),
                            ("idProduct", product_id), *extra.items()):
            h.write(f"{path}/{name}", value + "\n")
        h.link(f"/sys/bus/usb/devices/{sysname}", path)
    h.write("/run/udev/data/c189:1", "E:ID_VENDOR_FROM_DATABASE=Logitech, Inc.\n"
                                     "E:ID_MODEL_FROM_DATABASE=Unifying Receiver\n")
    hub_if = f"{xhci}/usb1/1-0:1.0"
    h.write(f"{hub_if}/uevent", "DEVTYPE=usb_interface\n")
    for name, value in (("bInterfaceNumber", "00"), ("bInterfaceClass", "09"), ("bInterfaceSubClass", "00"),
                        ("bInterfaceProtocol", "0c")):
        h.write(f"{hub_if}/{name}", value + "\n")
    h.link("/sys/bus/usb/devices/1-0:1.0", hub_if)
    # -- a GPU with mediated device types, its DRM nodes (and a connector, which is no device)
    gpu = "/sys/devices/pci0000:00/0000:00:02.0"
    for rel, value in (("vendor", "0x8086"), ("device", "0x3e92"), ("class", "0x030000"), ("numa_node", "-1"),
                       ("mdev_supported_types/i915-GVTg_V5_4/name", "GVTg_V5_4"),
                       ("mdev_supported_types/i915-GVTg_V5_4/device_api", "vfio-pci"),
                       ("mdev_supported_types/i915-GVTg_V5_4/available_instances", "2")):
        h.write(f"{gpu}/{rel}", value + "\n")
    h.link("/sys/bus/pci/devices/0000:00:02.0", gpu)
    for drm in ("card0", "renderD128", "card0-HDMI-A-1"):
        h.mkdir(f"{gpu}/drm/{drm}")
        h.link(f"/sys/class/drm/{drm}", f"{gpu}/drm/{drm}")
    # a loop device: not a node device
    loop = "/sys/devices/virtual/block/loop0"
    h.write(f"{loop}/dev", "7:0\n")
    h.write(f"{loop}/size", "0\n")
    h.link("/sys/block/loop0", loop)
    return h
