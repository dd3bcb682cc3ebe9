"""xl.cfg / xm configuration -> domain XML, as libvirt's ``xenParseXL``/``xenParseXM``.

The configuration is read into an lxml ``<domain type='xen'>`` tree, libxl's post-parse
defaults are added (``_postparse``), and the core's :class:`~virt.xml.domain.DomainDocument`
normalises and formats it like libvirt's generic code (``INACTIVE|SECURE``).
"""

from __future__ import annotations

import re
import uuid as _uuid
from collections.abc import Callable
from typing import Final

from lxml import etree
from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber

from virt_xen._conf import ConfValue, Signed, XenConf, parse_conf
from virt_xen._xldisk import parse_xl_disk

__all__ = ["LIBXL_FIRMWARE_DIR", "XEN_NAMESPACE", "native_to_tree"]

Element = etree._Element

#: where libxl's firmware lives (libvirt builds ``bios = "ovmf"`` into ``DIR/ovmf.bin``)
LIBXL_FIRMWARE_DIR: Final = "/usr/lib/xen/boot"
#: the default HVM loader of libvirt's Xen capabilities
HVMLOADER: Final = "/usr/lib/xen/boot/hvmloader"
XEN_NAMESPACE: Final = "http://libvirt.org/schemas/domain/xen/1.0"
MIN_XEN_GUEST_SIZE: Final = 64  # MiB
_CONF_NAME: Final = "memory conf"

_LIFECYCLE: Final = frozenset({"destroy", "restart", "rename-restart", "preserve", "coredump-destroy",
                               "coredump-restart"})
_CHR_TYPES: Final = frozenset({"null", "vc", "pty", "dev", "file", "pipe", "stdio", "udp", "tcp", "unix",
                               "spicevmc", "spiceport", "nmdm", "qemu-vdagent", "dbus"})
_SOUND_MODELS: Final = ("sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "ich7")
#: libxl's CPUID feature names that differ from libvirt's (libvirt name, libxl name)
CPU_FEATURE_NAMES: Final = (
    ("cx16", "cmpxchg16"), ("cid", "cntxid"), ("ds_cpl", "dscpl"), ("pclmuldq", "pclmulqdq"), ("pni", "sse3"),
    ("ht", "htt"), ("pn", "psn"), ("clflush", "clfsh"), ("sep", "sysenter"), ("cx8", "cmpxchg8"),
    ("nodeid_msr", "nodeid"), ("cr8legacy", "altmovcr8"), ("lahf_lm", "lahfsahf"), ("cmp_legacy", "cmplegacy"),
    ("fxsr_opt", "ffxsr"), ("pdpe1gb", "page1gb"), ("spec-ctrl", "ibrsb"),
)
_FROM_LIBXL: Final = {xl: lv for lv, xl in CPU_FEATURE_NAMES}
_RATE_RE: Final = re.compile(r"^([0-9]+)([GMK]?)([Bb])/s$")


def _err(code: ErrorNumber, detail: str) -> VirtError:
    return VirtError(code, detail, domain=ErrorDomain.XEN)


def _internal(detail: str) -> VirtError:
    return _err(ErrorNumber.INTERNAL_ERROR, detail)


def _strtol(text: str, base: int = 10) -> int | None:
    """``virStrToLong_*``: the whole text is a number (leading blanks and a sign allowed)."""
    s = text.lstrip(" \t\n\v\f\r")
    if base == 16 and s[:2].lower() == "0x":
        s = s[2:]
    try:
        if not s or not re.fullmatch(r"[+-]?[0-9a-fA-F]+" if base == 16 else r"[+-]?[0-9]+", s):
            return None
        return int(s, base)
    except ValueError:
        return None


class _Conf:
    """libvirt's ``xenConfigGet*`` helpers over a parsed configuration."""

    def __init__(self, conf: XenConf) -> None:
        self.conf = conf

    def value(self, name: str) -> ConfValue | None:
        return self.conf.get(name)

    def has(self, name: str) -> bool:
        return name in self.conf

    def bool(self, name: str, default: int) -> int:
        val = self.conf.get(name)
        if val is None:
            return default
        if isinstance(val, int) and not isinstance(val, Signed):
            return 1 if val else 0
        if isinstance(val, str):
            return 1 if val == "1" else 0
        raise _internal(f"config value {name} was malformed")

    def ulong(self, name: str, default: int) -> int:
        val = self.conf.get(name)
        if val is None:
            return default
        if isinstance(val, int) and not isinstance(val, Signed):
            return int(val)
        if isinstance(val, str):
            num = _strtol(val)
            if num is None or num < 0 or num > 0xFFFFFFFFFFFFFFFF:
                raise _internal(f"config value {name} was malformed")
            return num
        raise _internal(f"config value {name} was malformed")

    def string(self, name: str, default: str | None = None) -> str | None:
        val = self.conf.get(name)
        if val is None:
            return default
        if not isinstance(val, str):
            raise _internal(f"{_CONF_NAME}: expected a string for '{name}' parameter")
        return val

    def required(self, name: str) -> str:
        val = self.string(name)
        if val is None:
            raise _internal(f"config value {name} was missing")
        return val

    def string_list(self, name: str) -> list[str] | None:
        """``virConfGetValueStringList`` as libvirt's Xen code uses it: a value that is not a
        list counts as absent, a list holding something else than strings is an error."""
        val = self.conf.get(name)
        if not isinstance(val, list):
            return None
        if any(not isinstance(v, str) for v in val):
            raise _err(ErrorNumber.CONF_SYNTAX, f"{_CONF_NAME}: expected a string list for '{name}' parameter")
        return [v for v in val if isinstance(v, str)]


def _sub(parent: Element, tag: str, attrib: dict[str, str] | None = None, text: str | None = None) -> Element:
    el = etree.SubElement(parent, tag, attrib or {})
    if text is not None:
        el.text = text
    return el


class _Builder:
    """Builds the domain tree from a configuration, one libvirt parse step per method."""

    def __init__(self, conf: XenConf, fmt: str) -> None:
        self.c = _Conf(conf)
        self.fmt = fmt
        self.xl = fmt == "xen-xl"
        self.root = etree.Element("domain", {"type": "xen"})
        self.os_type = "xen"
        self.hvm = False
        self.features: dict[str, Element] = {}
        self.xen_features: list[Element] = []
        self.timers: list[Element] = []
        self.clock: Element | None = None
        self.cpu: Element | None = None
        self.max_vcpus = 1
        self.vcpus = 1
        self.cpuset: str | None = None
        # devices by kind, in libvirt's formatting order
        self.emulator: str | None = None
        self.disks: list[Element] = []
        self.controllers: list[Element] = []
        self.nets: list[Element] = []
        self.serials: list[Element] = []
        self.parallels: list[Element] = []
        self.consoles: list[Element] = []
        self.channels: list[Element] = []
        self.inputs: list[Element] = []
        self.graphics: list[Element] = []
        self.sounds: list[Element] = []
        self.hostdevs: list[Element] = []
        self.numa_cells: list[Element] = []
        self.os_children: list[Element] = []
        self.bootloader: str | None = None
        self.bootloader_args: str | None = None
        self.dm_args: list[str] = []
        self.lifecycle: dict[str, str] = {}
        self.name = ""
        self.uuid = ""
        self.memory = 0
        self.cur_memory = 0

    # -- common (xen_common.c) -----------------------------------------------------------------

    def general(self) -> None:
        self.name = self.c.required("name")
        raw = self.c.value("uuid")
        if raw is None:
            self.uuid = str(_uuid.uuid4())
        else:
            text = self.c.string("uuid") or ""
            if not text:
                raise _err(ErrorNumber.CONF_SYNTAX, "uuid can't be empty")
            parsed = _parse_uuid(text)
            if parsed is None:
                raise _err(ErrorNumber.CONF_SYNTAX, f"{text} not parseable")
            self.uuid = parsed
        kind = self.c.string("type")
        if kind is not None:
            if kind == "pv":
                self.os_type = "xen"
            elif kind == "pvh":
                self.os_type = "xenpvh"
            elif kind == "hvm":
                self.os_type = "hvm"
            else:
                raise _err(ErrorNumber.CONFIG_UNSUPPORTED, f"type {kind} is not supported")
        elif self.c.string("builder", "linux") == "hvm":
            self.os_type = "hvm"
        self.hvm = self.os_type == "hvm"

    def memory_(self) -> None:
        cur = self.c.ulong("memory", MIN_XEN_GUEST_SIZE * 2)
        total = self.c.ulong("maxmem", cur)
        self.cur_memory = cur * 1024
        self.memory = total * 1024

    def events(self) -> None:
        for key, default in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "restart")):
            value = self.c.string(key, default) or default
            if value not in _LIFECYCLE:
                raise _internal(f"unexpected value {value} for {key}")
            self.lifecycle[key] = value

    def cpu_(self) -> None:
        count = self.c.ulong("vcpus", 1)
        if count < 1 or count > 4096:
            raise _err(ErrorNumber.CONFIG_UNSUPPORTED, f"invalid number of vCPUs: {count}")
        self.vcpus = self.max_vcpus = count
        if self.c.value("maxvcpus") is not None:
            top = self.c.ulong("maxvcpus", 0)
            if top < 1 or top > 4096:
                raise _err(ErrorNumber.CONFIG_UNSUPPORTED, f"invalid maximum number of vCPUs: {top}")
            self.max_vcpus = top
            self.vcpus = min(self.vcpus, top)
        cpus = self.c.string("cpus")
        if cpus is not None:
            _check_bitmap(cpus, 4096)
            self.cpuset = cpus

    def _feature(self, name: str, attrib: dict[str, str] | None = None) -> None:
        self.features[name] = etree.Element(name, attrib or {})

    def hypervisor_features(self) -> None:
        tsc = self.c.string("tsc_mode")
        if tsc is not None:
            mode = {"always_emulate": "emulate", "native": "native", "native_paravirt": "paravirt"}.get(tsc, "auto")
            self.timers.append(etree.Element("timer", {"name": "tsc", "present": "yes", "mode": mode}))
        passthrough = self.c.string("passthrough")
        if passthrough is not None:
            if passthrough == "disabled":
                self.xen_features.append(etree.Element("passthrough", {"state": "off"}))
            elif passthrough == "enabled":
                self.xen_features.append(etree.Element("passthrough", {"state": "on"}))
            elif passthrough in ("sync_pt", "share_pt"):
                self.xen_features.append(etree.Element("passthrough", {"state": "on", "mode": passthrough}))
            else:
                raise _err(ErrorNumber.CONF_SYNTAX, f"Invalid passthrough mode {passthrough}")
        if self.hvm:
            if self.c.bool("pae", 1):
                self._feature("pae")
            if self.c.bool("acpi", 1):
                self._feature("acpi")
            if self.c.bool("apic", 1):
                self._feature("apic")
            if not self.c.bool("hap", 1):
                self._feature("hap", {"state": "off"})
            if self.c.bool("viridian", 0):
                self._feature("viridian")
            hpet = self.c.bool("hpet", -1)
            if hpet != -1:
                self.timers.append(etree.Element("timer", {"name": "hpet", "present": "yes" if hpet else "no"}))
        elif self.c.bool("e820_host", 0):
            self.xen_features.insert(0, etree.Element("e820_host", {"state": "on"}))

    def time_offset(self) -> None:
        local = self.c.bool("localtime", 0)
        if self.hvm:
            offset = self.c.ulong("rtc_timeoffset", 0)
            adjustment = offset & 0xFFFFFFFF
            if adjustment >= 1 << 31:
                adjustment -= 1 << 32
            self.clock = etree.Element("clock", {"offset": "variable", "adjustment": str(adjustment),
                                                 "basis": "localtime" if local else "utc"})
        else:
            self.clock = etree.Element("clock", {"offset": "localtime" if local else "utc", "adjustment": "reset"})

    def vifs(self) -> None:
        value = self.c.value("vif")
        if not isinstance(value, list):
            return
        typename = "vif" if self.xl else "netfront"
        for entry in value:
            if isinstance(entry, str):
                self.nets.append(_parse_vif(entry, typename))

    def pci(self) -> None:
        entries = self.c.string_list("pci")
        for entry in entries or ():
            self.hostdevs.append(_parse_pci(entry))

    def sound(self) -> None:
        if not self.hvm:
            return
        text = self.c.string("soundhw")
        if text is None:
            return
        models = ["sb16", "es1370"] if text == "all" else text.split(",")
        for model in models:
            if model not in _SOUND_MODELS:
                raise _err(ErrorNumber.CONFIG_UNSUPPORTED, f"unknown sound model '{model}'")
            self.sounds.append(etree.Element("sound", {"model": model}))

    def vfb(self) -> None:
        if self.hvm:
            if self.c.bool("vnc", 0):
                attrs = {"type": "vnc"}
                autoport = self.c.bool("vncunused", 1)
                attrs["autoport"] = "yes" if autoport else "no"
                if not autoport:
                    attrs["port"] = str(self.c.ulong("vncdisplay", 0) + 5900)
                listen = self.c.string("vnclisten")
                passwd = self.c.string("vncpasswd")
                keymap = self.c.string("keymap")
                if passwd is not None:
                    attrs["passwd"] = passwd
                if keymap is not None:
                    attrs["keymap"] = keymap
                gr = etree.Element("graphics", attrs)
                _listen(gr, listen)
                self.graphics = [gr]
            elif self.c.bool("sdl", 0):
                attrs = {"type": "sdl"}
                display = self.c.string("display")
                xauth = self.c.string("xauthority")
                if display is not None:
                    attrs["display"] = display
                if xauth is not None:
                    attrs["xauth"] = xauth
                self.graphics = [etree.Element("graphics", attrs)]
        if not self.hvm and not self.graphics:
            vfbs = self.c.string_list("vfb")
            if vfbs:
                self.graphics = [_parse_vfb(vfbs[0])]

    def chardevs(self) -> None:
        if self.hvm:
            parallel = self.c.string("parallel")
            if parallel is not None and parallel != "none":
                chr_ = _parse_chr(parallel, "parallel")
                _sub(chr_, "target", {"port": "0"})
                self.parallels.append(chr_)
            serials = self.c.string_list("serial")
            if serials is not None:
                if not self.xl:
                    raise _err(ErrorNumber.CONFIG_UNSUPPORTED, "Multiple serial devices are not supported by xen-xm")
                for port, entry in enumerate(serials):
                    if entry == "none":
                        continue
                    chr_ = _parse_chr(entry, "serial")
                    _sub(chr_, "target", {"port": str(port)})
                    self.serials.append(chr_)
            else:
                serial = self.c.string("serial")
                if serial is not None and serial != "none":
                    chr_ = _parse_chr(serial, "serial")
                    _sub(chr_, "target", {"port": "0"})
                    self.serials.append(chr_)
        else:
            console = etree.Element("console", {"type": "pty"})
            _sub(console, "target", {"type": "xen", "port": "0"})
            self.consoles.append(console)

    def common(self) -> None:
        self.general()
        self.memory_()
        self.events()
        self.cpu_()
        self.hypervisor_features()
        self.time_offset()
        self.emulator = self.c.string("device_model_override")
        self.vifs()
        self.pci()
        self.sound()
        self.vfb()
        self.chardevs()

    # -- xl (xen_xl.c) ---------------------------------------------------------------------------

    def _cmdline(self) -> str | None:
        cmdline = self.c.string("cmdline")
        root = self.c.string("root")
        extra = self.c.string("extra")
        if cmdline is not None:
            return cmdline
        if root is not None and extra is not None:
            return f"root={root} {extra}"
        if root is not None:
            return f"root={root}"
        return extra

    def _os_text(self, tag: str, text: str | None) -> None:
        if text:  # an empty string reads back from XML as nothing: leave it out
            el = etree.Element(tag)
            el.text = text
            self.os_children.append(el)

    def _boot(self) -> None:
        boot = self.c.string("boot", "c") or "c"
        for ch in boot[:4]:
            dev = {"a": "fd", "d": "cdrom", "n": "network"}.get(ch, "hd")
            self.os_children.append(etree.Element("boot", {"dev": dev}))

    def _ensure_cpu(self) -> Element:
        if self.cpu is None:
            self.cpu = etree.Element("cpu", {"mode": "host-passthrough"})
        return self.cpu

    def xl_os(self) -> None:
        if self.hvm:
            bios = self.c.string("bios")
            if bios == "ovmf":
                loader = etree.Element("loader", {"readonly": "yes", "type": "pflash"})
                loader.text = f"{LIBXL_FIRMWARE_DIR}/ovmf.bin"
            else:
                loader = etree.Element("loader", {"type": "rom"})
                loader.text = HVMLOADER
            self.os_children.append(loader)
            self._os_text("kernel", self.c.string("kernel"))
            self._os_text("initrd", self.c.string("ramdisk"))
            self._os_text("cmdline", self._cmdline())
            slic = self.c.string("acpi_firmware")
            if slic is not None:
                acpi = etree.Element("acpi")
                _sub(acpi, "table", {"type": "slic"}, slic)
                self.os_children.append(acpi)
            self._boot()
            nested = self.c.bool("nestedhvm", -1)
            if nested != -1:
                cpu = self._ensure_cpu()
                if nested == 0:
                    _sub(cpu, "feature", {"policy": "disable", "name": "vmx"})
        else:
            self.bootloader = self.c.string("bootloader")
            self.bootloader_args = self.c.string("bootargs")
            self._os_text("kernel", self.c.string("kernel"))
            self._os_text("initrd", self.c.string("ramdisk"))
            self._os_text("cmdline", self._cmdline())

    def vnuma(self) -> None:
        value = self.c.value("vnuma")
        if not isinstance(value, list):
            return
        nr_nodes = 0
        for node in value:
            if not isinstance(node, list):
                break
            nr_nodes += 1
        total_vcpus = 0
        cells: list[Element] = []
        for index, node in enumerate(value):
            pnode = -1
            cpus: str | None = None
            size = 0
            distances: list[int] | None = None
            if isinstance(node, list):
                for item in node:
                    if not isinstance(item, str):
                        break
                    cut = item.rfind("=")
                    if cut < 0:
                        raise _internal(f"vnuma vnode invalid format '{item}'")
                    data = item[cut + 1:]
                    if not data:
                        continue
                    if item.startswith("pnode"):
                        cellid = _strtol(data)
                        if cellid is None or cellid < 0 or cellid >= nr_nodes:
                            raise _err(ErrorNumber.CONFIG_UNSUPPORTED,
                                       f"vnuma vnode {index} contains invalid pnode value '{data}'")
                        pnode = cellid
                    elif item.startswith("size"):
                        kib = _strtol(data)
                        if kib is None or kib < 0:
                            raise _err(ErrorNumber.CONF_SYNTAX, f"invalid vnuma size '{data}'")
                        size = kib
                    elif item.startswith("vcpus"):
                        bits = _check_bitmap(data, 4096)
                        cpus = data
                        total_vcpus += len(bits)
                    elif item.startswith("vdistances"):
                        tokens = data.split(",")
                        if len(tokens) != nr_nodes:
                            raise _err(ErrorNumber.CONFIG_UNSUPPORTED,
                                       f"vnuma pnode {pnode} configured '{item}' (count {len(tokens)}) "
                                       f"doesn't fit the number of specified vnodes {nr_nodes}")
                        distances = []
                        for token in tokens:
                            num = _strtol(token)
                            if num is None or num < 0 or num > 255:
                                raise _err(ErrorNumber.CONF_SYNTAX, f"invalid vnuma distance '{token}'")
                            distances.append(num)
                    else:
                        raise _err(ErrorNumber.CONF_SYNTAX, f"Invalid vnuma configuration for vnode {index}")
            if pnode < 0 or cpus is None or size == 0:
                raise _err(ErrorNumber.CONF_SYNTAX, f"Incomplete vnuma configuration for vnode {index}")
            cell = etree.Element("cell", {"id": str(index), "cpus": _format_bitmap(_check_bitmap(cpus, 4096)),
                                          "memory": str(size * 1024 * 1024 // 1024), "unit": "KiB"})
            if distances is not None:
                dist = _sub(cell, "distances")
                for j, d in enumerate(distances):
                    _sub(dist, "sibling", {"id": str(j), "value": str(d)})
            cells.append(cell)
        if self.max_vcpus < total_vcpus:
            raise _err(ErrorNumber.CONFIG_UNSUPPORTED,
                       f"vnuma configuration contains {total_vcpus} vcpus, which is greater than "
                       f"{self.max_vcpus} maxvcpus")
        self.numa_cells = cells
        self.cpu = etree.Element("cpu")

    def xenbus_limits(self) -> None:
        ctrl = etree.Element("controller", {"type": "xenbus"})
        channels = self.c.ulong("max_event_channels", 0)
        if channels > 0:
            ctrl.set("maxEventChannels", str(channels & 0xFFFFFFFF))
        frames = self.c.ulong("max_grant_frames", 0)
        if frames > 0:
            ctrl.set("maxGrantFrames", str(frames & 0xFFFFFFFF))
        self.controllers.append(ctrl)

    def cpuid(self) -> None:
        text = self.c.string("cpuid")
        if text is None:
            return
        cpu = self._ensure_cpu()
        pairs = text.split(",")
        if pairs[0] != "host":
            raise _err(ErrorNumber.CONF_SYNTAX,
                       f"cpuid starting with {pairs[0]} is not supported, only libxl format is")
        for pair in pairs[1:]:
            name, eq, value = pair.partition("=")
            if not eq:
                raise _err(ErrorNumber.CONF_SYNTAX, f"Invalid libxl cpuid key=value element: {pair}")
            policy = {"1": "force", "0": "disable", "x": "optional", "k": "optional", "s": "optional"}.get(value)
            if policy is None:
                raise _err(ErrorNumber.CONF_SYNTAX, f"Invalid libxl cpuid value: {pair}")
            name = _FROM_LIBXL.get(name, name)
            if not name or any(f.get("name") == name for f in cpu.iterchildren("feature")):
                raise _err(ErrorNumber.CONF_SYNTAX, f"Invalid libxl cpuid key=value element: {pair}")
            _sub(cpu, "feature", {"policy": policy, "name": name})

    def xl_disks(self) -> None:
        value = self.c.value("disk")
        if not isinstance(value, list):
            return
        for spec in value:
            if not isinstance(spec, str):
                continue
            d = parse_xl_disk(spec)
            if d.cdrom:
                disk = etree.Element("disk", {"type": "file", "device": "cdrom"})
                _sub(disk, "driver", {"name": "qemu", "type": "raw"})
                if d.target:
                    _sub(disk, "source", {"file": d.target})
            else:
                fmt = {None: "raw", "raw": "raw", "empty": "raw"}.get(d.format, d.format or "raw")
                if d.backend == "standalone":
                    raise _err(ErrorNumber.CONFIG_UNSUPPORTED, "disk backend not supported: standalone")
                driver, dtype = {"tap": ("tap", "file"), "phy": ("phy", "block")}.get(d.backend or "",
                                                                                        ("qemu", "file"))
                target = d.target
                if target is not None and target.startswith("rbd:"):
                    disk = etree.Element("disk", {"type": "network", "device": "disk"})
                    _sub(disk, "driver", {"name": driver, "type": fmt})
                    disk.append(_parse_rbd(target.replace("\\\\", "\\")))
                else:
                    disk = etree.Element("disk", {"type": dtype, "device": "disk"})
                    _sub(disk, "driver", {"name": driver, "type": fmt})
                    if target:
                        _sub(disk, "source", {"dev" if dtype == "block" else "file": target})
            vdev = d.vdev or ""
            if vdev.startswith("xvd") or not self.hvm:
                bus = "xen"
            elif vdev.startswith("sd"):
                bus = "scsi"
            else:
                bus = "ide"
            _sub(disk, "target", {"dev": vdev, "bus": bus})
            if not d.readwrite:
                _sub(disk, "readonly")
            self.disks.append(disk)

    def spice(self) -> None:
        if not self.hvm or not self.c.bool("spice", 0):
            return
        host = self.c.string("spicehost")
        tls = self.c.ulong("spicetls_port", 0)
        port = self.c.ulong("spiceport", 0)
        attrs = {"type": "spice"}
        if not tls and not port:
            attrs["autoport"] = "yes"
        else:
            attrs["port"] = str(port & 0x7FFFFFFF)
            attrs["tlsPort"] = str(tls & 0x7FFFFFFF)
            attrs["autoport"] = "no"
        if not self.c.bool("spicedisable_ticketing", 0):
            attrs["passwd"] = self.c.required("spicepasswd")
        gr = etree.Element("graphics", attrs)
        _listen(gr, host)
        _sub(gr, "mouse", {"mode": "client" if self.c.bool("spiceagent_mouse", 0) else "server"})
        _sub(gr, "clipboard", {"copypaste": "yes" if self.c.bool("spice_clipboard_sharing", 0) else "no"})
        self.graphics = [gr]

    def xl_inputs(self) -> None:
        if not self.hvm:
            return
        value = self.c.value("usbdevice")
        items = value if isinstance(value, list) else ([] if value is None else [value])
        for item in items:
            if not isinstance(item, str):
                raise _internal("config value usbdevice was malformed")
            self._usb_input(item)

    def _usb_input(self, item: str) -> None:
        kind = {"tablet": "tablet", "mouse": "mouse", "keyboard": "keyboard"}.get(item)
        if kind is not None:
            self.inputs.append(etree.Element("input", {"type": kind, "bus": "usb"}))

    def usbdevs(self) -> None:
        value = self.c.value("usbdev")
        if not isinstance(value, list):
            return
        for entry in value:
            if not isinstance(entry, str):
                continue
            opts = _keyvals(entry)
            if opts is None:
                continue
            bus = _strtol(opts.get("hostbus", "0"), 16)
            dev = _strtol(opts.get("hostaddr", "0"), 16)
            if bus is None or dev is None:
                continue
            hostdev = etree.Element("hostdev", {"mode": "subsystem", "type": "usb", "managed": "no"})
            src = _sub(hostdev, "source")
            _sub(src, "address", {"bus": str(bus), "device": str(dev)})
            self.hostdevs.append(hostdev)

    def usbctrls(self) -> None:
        value = self.c.value("usbctrl")
        if not isinstance(value, list):
            return
        for entry in value:
            if not isinstance(entry, str):
                continue
            opts = _keyvals(entry)
            if opts is None or ("type" in opts and not opts["type"].startswith("qusb")):
                continue
            version = _strtol(opts.get("version", "2"), 16)
            ports = _strtol(opts.get("ports", "8"), 16)
            if version is None or ports is None:
                continue
            self.controllers.append(etree.Element("controller", {
                "type": "usb", "model": "qusb1" if version == 1 else "qusb2", "ports": str(ports)}))

    def xl_channels(self) -> None:
        value = self.c.value("channel")
        if not isinstance(value, list):
            return
        for entry in value:
            if not isinstance(entry, str):
                continue
            conn: str | None = None
            name: str | None = None
            path: str | None = None
            skip = False
            for key, val in _split_keys(entry):
                if val is None:
                    skip = True
                    break
                if key.startswith("connection"):
                    conn = val
                elif key.startswith("name") and name is None:
                    name = val
                elif key.startswith("path") and path is None:
                    path = val
            if skip:
                continue
            if conn is not None and conn.startswith("socket"):
                chan = etree.Element("channel", {"type": "unix"})
                src = _sub(chan, "source", {"mode": "bind"})
                if path is not None:
                    src.set("path", path)
            elif conn is not None and conn.startswith("pty"):
                chan = etree.Element("channel", {"type": "pty"})
            else:
                raise _internal(f"unsupported channel connection '{conn or ''}'")
            target = _sub(chan, "target", {"type": "xen"})
            if name is not None:
                target.set("name", name)
            self.channels.append(chan)

    def namespace(self) -> None:
        value = self.c.value("device_model_args")
        if isinstance(value, list):
            self.dm_args = [v for v in value if isinstance(v, str)]

    def parse_xl(self) -> None:
        self.common()
        self.xl_os()
        self.vnuma()
        self.xenbus_limits()
        self.cpuid()
        self.xl_disks()
        self.spice()
        self.xl_inputs()
        self.usbdevs()
        self.usbctrls()
        self.xl_channels()
        self.namespace()

    # -- xm (xen_xm.c) ---------------------------------------------------------------------------

    def xm_os(self) -> None:
        if self.hvm:
            loader = etree.Element("loader", {"type": "rom"})
            loader.text = self.c.required("kernel")
            self.os_children.append(loader)
            self._boot()
        else:
            self.bootloader = self.c.string("bootloader")
            self.bootloader_args = self.c.string("bootargs")
            self._os_text("kernel", self.c.string("kernel"))
            self._os_text("initrd", self.c.string("ramdisk"))
            extra = self.c.string("extra")
            root = self.c.string("root")
            if root is not None and extra is not None:
                self._os_text("cmdline", f"root={root} {extra}")
            elif root is not None:
                self._os_text("cmdline", f"root={root}")
            else:
                self._os_text("cmdline", extra)

    def xm_disks(self) -> None:
        value = self.c.value("disk")
        if value is None:
            return
        entries = self.c.string_list("disk")
        if entries is None:
            raise _internal(f"{_CONF_NAME}: expected a string list for 'disk' parameter")
        for entry in entries:
            disk = _parse_xm_disk(entry, self.hvm)
            if disk is not None:
                self.disks.append(disk)

    def xm_inputs(self) -> None:
        if self.hvm:
            item = self.c.string("usbdevice")
            if item is not None:
                self._usb_input(item)

    def parse_xm(self) -> None:
        self.common()
        self.xm_os()
        self.xm_disks()
        self.xm_inputs()

    # -- libxl's post-parse, then the tree -------------------------------------------------------

    def postparse(self) -> None:
        if not self.hvm and not self.consoles:
            console = etree.Element("console", {"type": "pty"})
            _sub(console, "target", {"type": "xen", "port": "0"})
            self.consoles.append(console)
        bus = "ps2" if self.hvm else "xen"
        for kind in ("mouse", "keyboard"):
            if not any(i.get("type") == kind and i.get("bus") == bus for i in self.inputs):
                self.inputs.append(etree.Element("input", {"type": kind, "bus": bus}))
        if self.hvm:
            self.features.setdefault("pae", etree.Element("pae"))
            if self.numa_cells:
                self.features.setdefault("acpi", etree.Element("acpi"))
        if not any(c.get("type") == "xenbus" for c in self.controllers):
            self.controllers.insert(0, etree.Element("controller", {"type": "xenbus"}))
        for dev in self.hostdevs:
            if dev.get("type") == "pci":
                dev.insert(0, etree.Element("driver", {"name": "xen"}))

    def video(self) -> Element | None:
        if not self.graphics:
            return None
        if not self.hvm:
            vtype, vram = "xen", 4096
        else:
            vtype, vram = "cirrus", 8192
        video = etree.Element("video")
        _sub(video, "model", {"type": vtype, "vram": str(vram), "heads": "1", "primary": "yes"})
        return video

    def tree(self) -> Element:
        if self.dm_args:
            self.root = etree.Element("domain", {"type": "xen"}, nsmap={"xen": XEN_NAMESPACE})
        root = self.root
        _sub(root, "name", None, self.name)
        _sub(root, "uuid", None, self.uuid)
        _sub(root, "memory", {"unit": "KiB"}, str(self.memory))
        _sub(root, "currentMemory", {"unit": "KiB"}, str(min(self.cur_memory, self.memory) or self.memory))
        vcpu = _sub(root, "vcpu", {"placement": "static"}, str(self.max_vcpus))
        if self.cpuset is not None:
            vcpu.set("cpuset", self.cpuset)
        if self.vcpus != self.max_vcpus:
            vcpu.set("current", str(self.vcpus))
        if self.bootloader:
            _sub(root, "bootloader", None, self.bootloader)
        if self.bootloader_args:
            _sub(root, "bootloader_args", None, self.bootloader_args)
        os_ = _sub(root, "os")
        machine = {"hvm": "xenfv", "xen": "xenpv", "xenpvh": "xenpvh"}[self.os_type]
        _sub(os_, "type", {"arch": "x86_64", "machine": machine}, "linux" if self.os_type == "xen" else self.os_type)
        for child in self.os_children:
            os_.append(child)
        if self.features or self.xen_features:
            features = _sub(root, "features")
            for name in ("acpi", "apic", "pae", "hap", "viridian"):
                if name in self.features:
                    features.append(self.features[name])
            if self.xen_features:
                xen = _sub(features, "xen")
                for el in self.xen_features:
                    xen.append(el)
        if self.cpu is not None:
            if self.numa_cells:
                numa = _sub(self.cpu, "numa")
                for cell in self.numa_cells:
                    numa.append(cell)
            root.append(self.cpu)
        assert self.clock is not None
        for timer in self.timers:
            self.clock.append(timer)
        root.append(self.clock)
        for key in ("on_poweroff", "on_reboot", "on_crash"):
            _sub(root, key, None, self.lifecycle[key])
        devices = _sub(root, "devices")
        if self.emulator:
            _sub(devices, "emulator", None, self.emulator)
        video = self.video()
        for group in (self.disks, self.controllers, self.nets, self.serials, self.parallels, self.consoles,
                      self.channels, self.inputs, self.graphics, self.sounds, [video] if video is not None else [],
                      self.hostdevs):
            for el in group:
                devices.append(el)
        _sub(devices, "memballoon", {"model": "xen"})
        if self.dm_args:
            cmd = etree.SubElement(root, f"{{{XEN_NAMESPACE}}}commandline")
            for arg in self.dm_args:
                etree.SubElement(cmd, f"{{{XEN_NAMESPACE}}}arg", {"value": arg})
        return root


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------


def _parse_uuid(text: str) -> str | None:
    """libvirt's ``virUUIDParse``: 32 hex digits, dashes and blanks between them ignored."""
    s = text.strip(" \t\n")
    digits = []
    for ch in s:
        if ch in "- ":
            continue
        if ch not in "0123456789abcdefABCDEF":
            return None
        digits.append(ch.lower())
    if len(digits) != 32:
        return None
    h = "".join(digits)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _check_bitmap(text: str, limit: int) -> set[int]:
    """libvirt's ``virBitmapParse``: ``0-3,^2,5``; anything else is CONF_SYNTAX."""
    bits: set[int] = set()
    ok = bool(text.strip())
    for part in text.split(","):
        part = part.strip()
        neg = part.startswith("^")
        if neg:
            part = part[1:]
        lo_s, dash, hi_s = part.partition("-")
        lo = _strtol(lo_s) if lo_s.strip().isdigit() else None
        hi = (_strtol(hi_s) if hi_s.strip().isdigit() else None) if dash else lo
        if lo is None or hi is None or lo > hi or hi >= limit or (neg and dash):
            ok = False
            break
        if neg:
            bits.discard(lo)
        else:
            bits.update(range(lo, hi + 1))
    if not ok:
        raise _err(ErrorNumber.INVALID_ARG, f"Failed to parse bitmap '{text}'")
    return bits


def _format_bitmap(bits: set[int]) -> str:
    out: list[str] = []
    ordered = sorted(bits)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _listen(gr: Element, address: str | None) -> None:
    attrs = {"type": "address"}
    if address is not None:
        attrs["address"] = address
    _sub(gr, "listen", attrs)


def _split_keys(entry: str) -> list[tuple[str, str | None]]:
    """``key=value,key=value`` with libvirt's leniency: blanks and repeated commas between
    items are skipped; an item without ``=`` is ``(item, None)``."""
    out: list[tuple[str, str | None]] = []
    rest: str | None = entry
    while rest is not None:
        item, sep, after = rest.partition(",")
        key, eq, value = item.partition("=")
        out.append((key, value if eq else None))
        if not eq:
            break
        rest = after.lstrip(", \t") if sep else None
        if rest == "" and sep:
            rest = None
    return out


def _keyvals(entry: str) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for key, value in _split_keys(entry):
        if value is None:
            return None
        out.setdefault(key, value)
    return out


_MAC_RE: Final = re.compile(r"^([0-9a-fA-F]{1,2})([:-][0-9a-fA-F]{1,2}){5}$")


def _parse_vif(entry: str, typename: str) -> Element:
    keys: dict[str, str] = {}
    for item in entry.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise _internal(f"malformed vif entry '{entry}'")
        key = key.lstrip(" \t\n")
        for name in ("mac", "bridge", "script", "model", "type", "vifname", "ip", "rate"):
            if key.startswith(name):
                keys[name] = value
                break
    mac = keys.get("mac")
    bridge = keys.get("bridge")
    script = keys.get("script")
    if bridge is not None or script in ("vif-bridge", "vif-vnic"):
        net = etree.Element("interface", {"type": "bridge"})
    else:
        net = etree.Element("interface", {"type": "ethernet"})
    if mac is not None:
        if not _MAC_RE.match(mac):
            raise _internal(f"malformed mac address '{mac}'")
        parts = re.split(r"[:-]", mac)
        _sub(net, "mac", {"address": ":".join(p.lower().zfill(2) for p in parts)})
    if net.get("type") == "bridge" and bridge is not None:
        _vif_bridge(net, bridge)
    for ip in (keys["ip"].split(" ") if "ip" in keys else []):
        if not _valid_ip(ip):
            raise _err(ErrorNumber.INVALID_ARG, f"Invalid IP address '{ip}'")
        _sub(net, "ip", {"address": ip, "family": "ipv6" if ":" in ip else "ipv4"})
    if script:
        _sub(net, "script", {"path": script})
    vifname = keys.get("vifname")
    if vifname:
        _sub(net, "target", {"dev": vifname})
    model = keys.get("model")
    if model is not None:
        if not model or not re.fullmatch(r"[a-zA-Z0-9_\-.]+", model):
            raise _err(ErrorNumber.INVALID_ARG, f"Model name contains invalid characters: {model}")
        _sub(net, "model", {"type": model})
    elif keys.get("type") == typename:
        _sub(net, "model", {"type": "netfront"})
    rate = keys.get("rate")
    if rate is not None:
        kbytes = _parse_rate(rate)
        bw = _sub(net, "bandwidth")
        _sub(bw, "outbound", {"average": str(kbytes)})
    return net


def _valid_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _vif_bridge(net: Element, bridge: str) -> None:
    if "." in bridge:
        name, _, tag = bridge.partition(".")
        num = _strtol(tag)
        if num is None or num < 0 or num > 4095:
            raise _internal(f"invalid vlan tag '{tag}'")
        _sub(net, "source", {"bridge": name})
        vlan = _sub(net, "vlan")
        _sub(vlan, "tag", {"id": str(num)})
        _sub(net, "virtualport", {"type": "openvswitch"})
    elif ":" in bridge:
        name, *tags = bridge.split(":")
        _sub(net, "source", {"bridge": name})
        vlan = _sub(net, "vlan", {"trunk": "yes"})
        for tag in tags:
            num = _strtol(tag)
            if num is None or num < 0 or num > 4095:
                raise _internal(f"invalid vlan tag '{tag}'")
            _sub(vlan, "tag", {"id": str(num)})
        _sub(net, "virtualport", {"type": "openvswitch"})
    else:
        _sub(net, "source", {"bridge": bridge})


def _parse_rate(rate: str) -> int:
    text = rate.split("@", 1)[0]
    m = _RATE_RE.match(text)
    if m is None:
        raise _internal(f"Invalid rate '{rate}' specified")
    value = int(m.group(1))
    if m.group(2) == "G":
        value *= 1024 * 1024
    elif m.group(2) == "M":
        value *= 1024
    if m.group(3) == "b":
        value //= 8
    if value > 0xFFFFFFFFFFFFFFFF:
        raise _internal(f"Failed to parse rate '{rate}'")
    return value


def _parse_pci(entry: str) -> Element:
    tokens = entry.split(":", 2)
    idx = 0
    domain = 0
    if len(tokens) == 3:
        dom = _strtol(tokens[0], 16)
        if dom is None:
            raise _internal(f"Malformed PCI address {entry}")
        domain = dom
        idx = 1
    if len(tokens) < 2:
        raise _internal(f"Malformed PCI address {entry}")
    bus = _strtol(tokens[idx], 16)
    rest = tokens[idx + 1]
    slot_s, dot, func_opts = rest.partition(".")
    if not dot:
        raise _internal(f"Malformed PCI address {rest}")
    slot = _strtol(slot_s, 16)
    func_s, comma, options = func_opts.partition(",")
    func = _strtol(func_s, 16)
    if bus is None or slot is None or func is None:
        raise _internal(f"Malformed PCI address {entry}")
    if not (0 <= domain <= 0xFFFF and 0 <= bus <= 0xFF and 0 <= slot <= 0x1F and 0 <= func <= 7):
        raise _err(ErrorNumber.CONFIG_UNSUPPORTED, f"PCI address {entry} is out of range")
    filtering: str | None = None
    if comma:
        for opt in options.split(","):
            if not opt:
                continue
            key, eq, val = opt.partition("=")
            if not eq:
                raise _internal(f"Malformed PCI options {options}")
            if key == "permissive":
                num = _strtol(val)
                if num is None:
                    raise _internal(f"Malformed PCI options {options}")
                filtering = "no" if num else "yes"
    hostdev = etree.Element("hostdev", {"mode": "subsystem", "type": "pci", "managed": "no"})
    src = _sub(hostdev, "source")
    if filtering is not None:
        src.set("writeFiltering", filtering)
    _sub(src, "address", {"domain": f"0x{domain:04x}", "bus": f"0x{bus:02x}", "slot": f"0x{slot:02x}",
                          "function": f"0x{func:x}"})
    return hostdev


def _parse_vfb(entry: str) -> Element:
    sdl = "type=sdl" in entry
    attrs: dict[str, str] = {"type": "sdl" if sdl else "vnc"}
    listen: str | None = None
    autoport = False
    port = 0
    for key, value in _split_keys(entry):
        if value is None:
            break
        item = f"{key}={value}"
        if not sdl:
            if item.startswith("vncunused="):
                autoport = autoport or value == "1"
            elif item.startswith("vnclisten="):
                listen = value
            elif item.startswith("vncpasswd="):
                attrs["passwd"] = value
            elif item.startswith("keymap="):
                attrs["keymap"] = value
            elif item.startswith("vncdisplay="):
                num = _strtol(value)
                if num is None or not -(1 << 31) <= num < (1 << 31) - 5900:
                    raise _internal(f"invalid vncdisplay value '{value}'")
                port = num + 5900
        else:
            if item.startswith("display="):
                attrs["display"] = value
            elif item.startswith("xauthority="):
                attrs["xauth"] = value
    if not sdl:
        if autoport:
            attrs["autoport"] = "yes"
        else:
            attrs["port"] = str(port)
            attrs["autoport"] = "no"
    gr = etree.Element("graphics", attrs)
    if not sdl:
        _listen(gr, listen)
    return gr


def _parse_chr(value: str, kind: str) -> Element:
    """libvirt's ``xenParseSxprChar`` as a ``<serial>``/``<parallel>`` element (no target)."""
    if value.startswith("/"):
        el = etree.Element(kind, {"type": "dev"})
        _sub(el, "source", {"path": value})
        return el
    prefix, colon, rest = value.partition(":")
    data = rest if colon else value
    if prefix.startswith("telnet"):
        ctype, protocol = "tcp", "telnet"
    else:
        if prefix not in _CHR_TYPES:
            raise _internal(f"unknown chr device type '{prefix}'")
        ctype, protocol = prefix, "raw"
    el = etree.Element(kind, {"type": ctype})
    if ctype in ("file", "pipe"):
        _sub(el, "source", {"path": data})
    elif ctype == "tcp":
        cut = data.find(":")
        if cut < 0:
            raise _internal("malformed char device string")
        host = data[:cut] or None
        after = data[cut + 1:]
        comma = after.find(",")
        service = after[:comma] if comma >= 0 else after
        listen = comma >= 0 and ",server" in after[comma:]
        attrs = {"mode": "bind" if listen else "connect"}
        if host is not None:
            attrs["host"] = host
        attrs["service"] = service
        _sub(el, "source", attrs)
        _sub(el, "protocol", {"type": protocol})
    elif ctype == "udp":
        cut = data.find(":")
        if cut < 0:
            raise _internal("malformed char device string")
        connect_host = data[:cut] or None
        after = data[cut + 1:]
        at = after.find("@")
        bind_host: str | None = None
        bind_service: str | None = None
        if at >= 0:
            connect_service = after[:at]
            bind = after[at + 1:]
            colon2 = bind.find(":")
            if colon2 < 0:
                raise _internal("malformed char device string")
            bind_host = bind[:colon2] or None
            bind_service = bind[colon2 + 1:]
        else:
            connect_service = after
        if bind_host is not None or bind_service is not None:
            attrs = {"mode": "bind"}
            if bind_host is not None:
                attrs["host"] = bind_host
            if bind_service is not None:
                attrs["service"] = bind_service
            _sub(el, "source", attrs)
        attrs = {"mode": "connect"}
        if connect_host is not None:
            attrs["host"] = connect_host
        attrs["service"] = connect_service
        _sub(el, "source", attrs)
    elif ctype == "unix":
        comma = data.find(",")
        path = data[:comma] if comma >= 0 else data
        listen = comma >= 0 and ",server" in data[comma:]
        _sub(el, "source", {"mode": "bind" if listen else "connect", "path": path})
    elif ctype == "dev":
        _sub(el, "source", {"path": data})
    return el


def _unescape_rbd(text: str) -> str:
    return text.replace("\\:", ":").replace("\\;", ";").replace("\\\\", "\\")


def _split_unescaped(text: str, seps: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch in seps:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _rbd_host(text: str) -> tuple[str, str | None]:
    """``name[\\:port]`` or ``[ipv6]\\:port`` of an RBD ``mon_host`` list."""
    text = text.replace("\\:", ":")
    if text.startswith("["):
        close = text.find("]")
        if close > 0:
            port = text[close + 1:]
            return text[1:close], (port[1:] if port.startswith(":") and port[1:] else None)
    name, colon, port = text.rpartition(":")
    if not colon:
        return text, None
    return name, port or None


def _parse_rbd(target: str) -> Element:
    """``virStorageSourceParseRBDColonString``: ``rbd:pool/image[@snap]:key=value:...``."""
    body = target[len("rbd:"):]
    parts = _split_unescaped(body, ":")
    name = _unescape_rbd(parts[0])
    src = etree.Element("source", {"protocol": "rbd"})
    snap = None
    if "@" in name:
        name, _, snap = name.partition("@")
    src.set("name", name)
    hosts: list[tuple[str, str | None]] = []
    config: str | None = None
    auth_id: str | None = None
    for opt in parts[1:]:
        key, eq, value = opt.partition("=")
        if not eq:
            continue
        if key == "mon_host":
            for host in value.replace("\\;", ";").split(";"):
                if host:
                    hosts.append(_rbd_host(host))
        elif key == "conf":
            config = _unescape_rbd(value)
        elif key == "id":
            auth_id = _unescape_rbd(value)
    for hname, port in hosts:
        attrs = {"name": hname}
        if port is not None:
            attrs["port"] = port
        _sub(src, "host", attrs)
    if snap is not None:
        _sub(src, "snapshot", {"name": snap})
    if config is not None:
        _sub(src, "config", {"file": config})
    if auth_id is not None:
        _sub(src, "auth", {"username": auth_id})
    return src


def _parse_xm_disk(entry: str, hvm: bool) -> Element | None:
    """libvirt's ``xenParseXMDisk``: ``[driver:[subtype:]]SOURCE,DEV[:cdrom],MODE``; an entry it
    cannot read is skipped (None), as libvirt does."""
    src, comma, head = entry.partition(",")
    if not comma:
        return None
    if head.startswith("ioemu:"):
        head = head[6:]
    dst, comma, mode = head.partition(",")
    if not comma:
        return None
    driver: str | None = None
    fmt: str | None = None
    source: str | None = src or None
    if source is not None:
        prefix, colon, rest = source.partition(":")
        if colon:
            driver = prefix
            source = rest
        if driver in ("tap", "tap2"):
            sub, colon, rest = source.partition(":")
            if not colon:
                return None
            if sub == "aio":
                fmt = "raw"
            elif sub in ("raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop",
                         "cow", "qcow", "qcow2", "qed", "vmdk"):
                fmt = sub
            else:
                raise _internal(f"Unknown driver type {source}")
            source = rest
    if driver is None:
        driver = "phy"
    dtype = "block" if driver == "phy" else "file"
    device = "disk"
    if ":" in dst:
        dst, _, suffix = dst.partition(":")
        if suffix == "cdrom":
            device = "cdrom"
    if dst.startswith("xvd") or not hvm:
        bus = "xen"
    elif dst.startswith("sd"):
        bus = "scsi"
    else:
        bus = "ide"
    if not dst:
        return None
    disk = etree.Element("disk", {"type": dtype, "device": device})
    _sub(disk, "driver", {"name": driver, "type": fmt or "raw"})
    if source is not None:
        _sub(disk, "source", {"dev" if dtype == "block" else "file": source})
    _sub(disk, "target", {"dev": dst, "bus": bus})
    if mode in ("r", "ro"):
        _sub(disk, "readonly")
    elif mode in ("w!", "!"):
        _sub(disk, "shareable")
    return disk


def native_to_tree(fmt: str, config: str) -> Element:
    """Parse an ``xen-xl``/``xen-xm`` configuration into an (unnormalised) domain tree."""
    conf = parse_conf(config)
    builder = _Builder(conf, fmt)
    parse: Callable[[], None] = builder.parse_xl if fmt == "xen-xl" else builder.parse_xm
    parse()
    builder.postparse()
    return builder.tree()
