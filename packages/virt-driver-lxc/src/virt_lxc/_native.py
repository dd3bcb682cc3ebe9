"""Native formats: an LXC tools configuration (``lxc-tools``) to domain XML; capabilities.

``domxml-from-native lxc-tools FILE`` reads the ``key = value`` lines of an ``lxc.conf(5)``
file, in both the LXC 2 key names (``lxc.network.type``, ``lxc.rootfs``, ``lxc.utsname``) and
the LXC 3 ones (``lxc.net.0.type``, ``lxc.rootfs.path``, ``lxc.uts.name``), and builds the
domain libvirt's LXC driver builds from it: the root and ``lxc.mount.entry`` bind mounts as
``<filesystem type='mount'>``, tmpfs entries as ``<filesystem type='ram'>``, ``lxc.tty``
consoles, networks as interfaces or host devices, ``lxc.id_map`` as ``<idmap>``, the
``lxc.cgroup.*`` memory, cpu, cpuset and blkio settings as tunables, ``lxc.cap.drop`` as
capabilities turned off.  An ``lxc.mount`` fstab file is refused, as libvirt refuses it.
"""

from __future__ import annotations

import os
import re
import uuid as uuidlib
from typing import Any

from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.domain import DomainDocument

__all__ = ["capabilities_xml", "domain_xml_from_native"]

_D = ErrorDomain.LXC
_Element = Any

# libvirt's virDomainProcessCapsFeature order
_CAPS = ("audit_control", "audit_write", "block_suspend", "chown", "dac_override", "dac_read_search", "fowner",
         "fsetid", "ipc_lock", "ipc_owner", "kill", "lease", "linux_immutable", "mac_admin", "mac_override",
         "mknod", "net_admin", "net_bind_service", "net_broadcast", "net_raw", "setgid", "setfcap", "setpcap",
         "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_module", "sys_nice", "sys_pacct", "sys_ptrace",
         "sys_rawio", "sys_resource", "sys_time", "sys_tty_config", "syslog", "wake_alarm")

# LXC 3 names -> LXC 2 names
_V3 = {"lxc.rootfs.path": "lxc.rootfs", "lxc.uts.name": "lxc.utsname", "lxc.idmap": "lxc.id_map",
       "lxc.tty.max": "lxc.tty", "lxc.apparmor.profile": "lxc.aa_profile", "lxc.mount.fstab": "lxc.mount"}
_NET_V3 = re.compile(r"^lxc\.net\.(\d+)\.(.+)$")
_ARCH = {"x86": "i686", "i686": "i686", "i386": "i686", "i586": "i686", "x86_64": "x86_64", "amd64": "x86_64",
         "arm64": "aarch64", "aarch64": "aarch64", "armhf": "armv7l", "armel": "armv6l", "ppc64le": "ppc64le",
         "s390x": "s390x"}


def _error(message: str, code: ErrorNumber = ErrorNumber.INTERNAL_ERROR) -> VirtError:
    return VirtError(code, message, domain=_D)


def parse_config(text: str) -> list[tuple[str, str]]:
    """The ``key = value`` entries in order (comments and blank lines dropped), LXC 3 network
    keys folded into LXC 2 ones with a network index: ``lxc.network.N.KEY``."""
    entries: list[tuple[str, str]] = []
    v2_net = -1
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise _error(f"lxc config line {number} has no '=': {line}", ErrorNumber.CONF_SYNTAX)
        key, value = key.strip(), value.strip()
        key = _V3.get(key, key)
        match = _NET_V3.match(key)
        if match:
            index, sub = int(match.group(1)), match.group(2)
            sub = {"ipv4.address": "ipv4", "ipv6.address": "ipv6"}.get(sub, sub)
            key = f"lxc.network.{index}.{sub}"
        elif key.startswith("lxc.network."):
            sub = key[len("lxc.network."):]
            if sub == "type":
                v2_net += 1
            key = f"lxc.network.{max(v2_net, 0)}.{sub}"
        entries.append((key, value))
    return entries


def _size_kib(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kKmMgGtT]?)[iI]?[bB]?", text.strip())
    if not match:
        raise _error(f"failed to parse size '{text}'", ErrorNumber.CONFIG_UNSUPPORTED)
    value = int(match.group(1))
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(value * 1024 ** power // 1024)


def _bitmap(text: str) -> str:
    """``1,2,5-7`` as libvirt formats a bitmap: ``1-2,5-7``."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.update(range(int(low), int(high) + 1))
        elif part:
            cpus.add(int(part))
    out, ordered = [], sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _sub(parent: _Element, tag: str, text: str | None = None, **attrs: str) -> _Element:
    el = etree.SubElement(parent, tag)
    for key, value in attrs.items():
        el.set(key.rstrip("_"), value)
    if text is not None:
        el.text = text
    return el


def _ips_and_routes(parent: _Element, net: dict[str, list[str]]) -> None:
    for family in ("ipv4", "ipv6"):
        for addr in net.get(family, []):
            address, _, prefix = addr.partition("/")
            attrs = {"address": address, "family": family}
            if prefix:
                attrs["prefix"] = prefix
            _sub(parent, "ip", **attrs)
    for family, anywhere in (("ipv4", "0.0.0.0"), ("ipv6", "::")):
        for gateway in net.get(f"{family}.gateway", []):
            _sub(parent, "route", family=family, address=anywhere, gateway=gateway)


def domain_xml_from_native(config: str, emulator: str) -> str:
    """The domain XML libvirt's LXC driver makes of the LXC configuration ``config``."""
    entries = parse_config(config)
    values: dict[str, list[str]] = {}
    for key, value in entries:
        values.setdefault(key, []).append(value)

    def one(key: str) -> str | None:
        got = values.get(key)
        return got[-1] if got else None

    if "lxc.mount" in values:
        raise _error("lxc.mount found, use lxc.mount.entry lines instead", ErrorNumber.CONFIG_UNSUPPORTED)
    name = one("lxc.utsname")
    if not name:
        raise _error("missing lxc.utsname property", ErrorNumber.CONFIG_UNSUPPORTED)
    rootfs = one("lxc.rootfs")
    if not rootfs:
        raise _error("missing lxc.rootfs property", ErrorNumber.CONFIG_UNSUPPORTED)

    dom = etree.Element("domain", type="lxc")
    _sub(dom, "name", name)
    _sub(dom, "uuid", str(uuidlib.uuid4()))
    memory_kib = 65536
    memtune = etree.Element("memtune")
    limit = one("lxc.cgroup.memory.limit_in_bytes")
    if limit is not None:
        memory_kib = int(limit) // 1024
        _sub(memtune, "hard_limit", str(memory_kib), unit="KiB")
    soft = one("lxc.cgroup.memory.soft_limit_in_bytes")
    if soft is not None:
        _sub(memtune, "soft_limit", str(int(soft) // 1024), unit="KiB")
    swap = one("lxc.cgroup.memory.memsw.limit_in_bytes")
    if swap is not None:
        _sub(memtune, "swap_hard_limit", str(int(swap) // 1024), unit="KiB")
    _sub(dom, "memory", str(memory_kib), unit="KiB")
    _sub(dom, "currentMemory", str(memory_kib), unit="KiB")
    if len(memtune):
        dom.append(memtune)
    blkio = _blkiotune(values)
    if blkio is not None:
        dom.append(blkio)
    vcpu = _sub(dom, "vcpu", "1", placement="static")
    cpus = one("lxc.cgroup.cpuset.cpus")
    if cpus:
        vcpu.set("cpuset", _bitmap(cpus))
    cputune = etree.Element("cputune")
    for key, tag in (("shares", "shares"), ("cfs_period_us", "period"), ("cfs_quota_us", "quota")):
        tune = one(f"lxc.cgroup.cpu.{key}")
        if tune is not None:
            _sub(cputune, tag, tune)
    if len(cputune):
        dom.append(cputune)
    mems = one("lxc.cgroup.cpuset.mems")
    if mems:
        numatune = _sub(dom, "numatune")
        _sub(numatune, "memory", mode="strict", nodeset=_bitmap(mems))
    os_el = _sub(dom, "os")
    type_el = _sub(os_el, "type", "exe")
    arch = one("lxc.arch")
    if arch:
        if arch not in _ARCH:
            raise _error(f"unknown architecture '{arch}'", ErrorNumber.CONFIG_UNSUPPORTED)
        type_el.set("arch", _ARCH[arch])
    _sub(os_el, "init", "/sbin/init")
    idmaps = values.get("lxc.id_map", [])
    if idmaps:
        idmap = _sub(dom, "idmap")
        rows: dict[str, list[tuple[str, str, str]]] = {"u": [], "g": []}
        for line in idmaps:
            parts = line.split()
            if len(parts) != 4 or parts[0] not in rows:
                raise _error(f"invalid lxc.id_map: '{line}'", ErrorNumber.CONFIG_UNSUPPORTED)
            kind, target, start, count = parts  # libvirt reads them in this order
            rows[kind].append((start, target, count))
        for kind, tag in (("u", "uid"), ("g", "gid")):
            for start, target, count in rows[kind]:
                _sub(idmap, tag, start=start, target=target, count=count)

    networks = _networks(entries)
    features = _sub(dom, "features")
    if not networks or all(net.get("type", [""])[-1] == "empty" for net in networks):
        _sub(features, "privnet")
    caps = _sub(features, "capabilities", policy="allow")
    dropped = {c for line in values.get("lxc.cap.drop", []) for c in line.split()}
    for cap in _CAPS:
        if cap in dropped:
            _sub(caps, cap, state="off")
    unknown = dropped - set(_CAPS)
    if unknown:
        raise _error(f"unknown capability '{sorted(unknown)[0]}' in lxc.cap.drop", ErrorNumber.CONFIG_UNSUPPORTED)
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    _sub(devices, "emulator", emulator)
    root = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
    _sub(root, "source", dir=rootfs)
    _sub(root, "target", dir="/")
    for entry in values.get("lxc.mount.entry", []):
        _mount_entry(devices, entry)
    for net in networks:
        _network(devices, net)
    ttys = int(one("lxc.tty") or 0)
    for port in range(ttys):
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="lxc", port=str(port))
    text = etree.tostring(dom, encoding="unicode")
    doc = DomainDocument.from_string(text, inactive=True, default_arch="")
    type_node = doc.root.find("os/type")
    if type_node is not None and not type_node.get("arch"):
        del type_node.attrib["arch"]
    return doc.to_string(secure=True, inactive=True)


def _blkiotune(values: dict[str, list[str]]) -> _Element | None:
    weight = values.get("lxc.cgroup.blkio.weight")
    devices: dict[str, dict[str, str]] = {}
    for key, tag in (("device_weight", "weight"), ("throttle.read_bps_device", "read_bytes_sec"),
                     ("throttle.write_bps_device", "write_bytes_sec"), ("throttle.read_iops_device", "read_iops_sec"),
                     ("throttle.write_iops_device", "write_iops_sec")):
        for line in values.get(f"lxc.cgroup.blkio.{key}", []):
            parts = line.split()
            if len(parts) != 2:
                raise _error(f"invalid lxc.cgroup.blkio.{key}: '{line}'", ErrorNumber.CONFIG_UNSUPPORTED)
            devices.setdefault(f"/dev/block/{parts[0]}", {})[tag] = parts[1]
    if not weight and not devices:
        return None
    blkio = etree.Element("blkiotune")
    if weight:
        _sub(blkio, "weight", weight[-1])
    for path, tunes in devices.items():
        device = _sub(blkio, "device")
        _sub(device, "path", path)
        for tag in ("weight", "read_iops_sec", "write_iops_sec", "read_bytes_sec", "write_bytes_sec"):
            if tag in tunes:
                _sub(device, tag, tunes[tag])
    return blkio


def _mount_entry(devices: _Element, entry: str) -> None:
    parts = entry.split()
    if len(parts) < 4:
        raise _error(f"invalid lxc.mount.entry: '{entry}'", ErrorNumber.CONFIG_UNSUPPORTED)
    source, target, fstype, options = parts[:4]
    opts = options.split(",")
    if fstype in ("proc", "sysfs"):
        return  # the driver mounts those itself
    dest = "/" + target.lstrip("/")
    if fstype == "tmpfs":
        size = next((o[5:] for o in opts if o.startswith("size=")), None)
        fs = _sub(devices, "filesystem", type="ram", accessmode="passthrough")
        _sub(fs, "source", usage=str(_size_kib(size) if size else 0), units="KiB")
        _sub(fs, "target", dir=dest)
        return
    if "bind" not in opts and "rbind" not in opts:
        fs = _sub(devices, "filesystem", type="block", accessmode="passthrough")
        _sub(fs, "source", dev=source)
    else:
        fs = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
        _sub(fs, "source", dir=source)
    _sub(fs, "target", dir=dest)
    if "ro" in opts:
        _sub(fs, "readonly")


def _networks(entries: list[tuple[str, str]]) -> list[dict[str, list[str]]]:
    nets: dict[int, dict[str, list[str]]] = {}
    for key, value in entries:
        if not key.startswith("lxc.network."):
            continue
        index_text, _, sub = key[len("lxc.network."):].partition(".")
        nets.setdefault(int(index_text), {}).setdefault(sub, []).append(value)
    return [nets[i] for i in sorted(nets) if nets[i].get("type")]


def _network(devices: _Element, net: dict[str, list[str]]) -> None:
    def one(key: str) -> str | None:
        got = net.get(key)
        return got[-1] if got else None

    kind = one("type")
    link, mac, up = one("link"), one("hwaddr"), one("flags") == "up"
    if kind in ("none", "empty"):
        return
    if kind == "veth":
        nic = _sub(devices, "interface", type="bridge" if link else "ethernet")
        if mac:
            _sub(nic, "mac", address=mac)
        if link:
            _sub(nic, "source", bridge=link)
        _ips_and_routes(nic, net)
        name = one("name")
        if name:
            _sub(nic, "guest", dev=name)
        if up:
            _sub(nic, "link", state="up")
    elif kind == "macvlan":
        nic = _sub(devices, "interface", type="direct")
        if mac:
            _sub(nic, "mac", address=mac)
        _sub(nic, "source", dev=link or "", mode=one("macvlan.mode") or "private")
        if up:
            _sub(nic, "link", state="up")
    elif kind in ("phys", "vlan"):
        dev = link or ""
        if kind == "vlan":
            vid = one("vlan.id")
            if vid is None:
                raise _error("missing vlan.id for a vlan network", ErrorNumber.CONFIG_UNSUPPORTED)
            dev = f"{dev}.{vid}"
        hostdev = _sub(devices, "hostdev", mode="capabilities", type="net")
        source = _sub(hostdev, "source")
        _sub(source, "interface", dev)
        if kind == "phys":
            _ips_and_routes(hostdev, net)
    else:
        raise _error(f"unsupported lxc network type '{kind}'", ErrorNumber.CONFIG_UNSUPPORTED)


def capabilities_xml() -> str:
    """The host and guest capabilities of the LXC driver (``virsh -c lxc:/// capabilities``)."""
    arch = os.uname().machine
    arch = _ARCH.get(arch, arch)
    words = 64 if arch in ("x86_64", "aarch64", "ppc64le", "s390x") else 32
    from virt_lxc._driver import EMULATOR

    host_uuid = ""
    try:
        with open("/etc/machine-id") as src:
            text = src.read().strip()
        host_uuid = str(uuidlib.UUID(text))
    except (OSError, ValueError):
        pass
    lines = ["<capabilities>", "", "  <host>"]
    if host_uuid:
        lines.append(f"    <uuid>{host_uuid}</uuid>")
    lines += ["    <cpu>", f"      <arch>{arch}</arch>", "    </cpu>", "  </host>", "", "  <guest>",
              "    <os_type>exe</os_type>", f"    <arch name='{arch}'>", f"      <wordsize>{words}</wordsize>",
              f"      <emulator>{EMULATOR}</emulator>", "      <domain type='lxc'/>", "    </arch>", "  </guest>", "",
              "</capabilities>", ""]
    return "\n".join(lines)
