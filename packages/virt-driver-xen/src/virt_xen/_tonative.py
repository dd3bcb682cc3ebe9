"""Domain XML -> xl.cfg / xm configuration, as libvirt's ``xenFormatXL``/``xenFormatXM``.

The input is a domain tree the core has normalised (``DomainDocument``, inactive); the
settings are written in libvirt's order, each ``set`` of a name already present replacing
its value where it stands (``virConfSetValue``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lxml import etree
from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber

from virt_xen._conf import ConfValue, XenConf
from virt_xen._fromnative import CPU_FEATURE_NAMES, XEN_NAMESPACE

__all__ = ["BridgeOf", "tree_to_native"]

#: the bridge device of a virtual network, by name (``virNetworkGetBridgeName``); raises
#: ``VirtError(NO_NETWORK)`` for an unknown network
BridgeOf = Callable[[str], str]

Element = etree._Element

DEFAULT_VIF_SCRIPT: Final = "vif-bridge"
_TO_LIBXL: Final = dict(CPU_FEATURE_NAMES)
_BOOT_CHARS: Final = {"fd": "a", "cdrom": "d", "network": "n"}


def _unsupported(detail: str) -> VirtError:
    return VirtError(ErrorNumber.CONFIG_UNSUPPORTED, detail, domain=ErrorDomain.XEN)


def _internal(detail: str) -> VirtError:
    return VirtError(ErrorNumber.INTERNAL_ERROR, detail, domain=ErrorDomain.XEN)


def _escape_sexpr(text: str) -> str:
    """``virBufferEscapeSexpr``: a backslash before ``\\`` and ``'``."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _int_any(text: str | None) -> int:
    """A number written in decimal or with a ``0x`` prefix."""
    try:
        return int(text, 0) if text is not None else 0
    except ValueError:
        return 0


def _kib_text(el: Element | None) -> int:
    return _int(el.text if el is not None else None)


def _div_up(value: int, by: int) -> int:
    return -(-value // by)


def _on(el: Element | None) -> bool:
    """A feature element that is there and not ``state='off'``."""
    return el is not None and el.get("state", "on") == "on"


class _Writer:
    def __init__(self, fmt: str, root: Element, bridge_of: BridgeOf | None = None) -> None:
        self.bridge_of = bridge_of
        self.fmt = fmt
        self.xl = fmt == "xen-xl"
        self.root = root
        self.conf = XenConf()
        os_type = root.find("os/type")
        self.os_type = (os_type.text or "") if os_type is not None else ""
        self.arch = os_type.get("arch", "x86_64") if os_type is not None else "x86_64"
        self.hvm = self.os_type == "hvm"
        devices = root.find("devices")
        self.devices: Element = devices if devices is not None else etree.Element("devices")
        self.features = root.find("features")
        self.numa_cells = root.findall("cpu/numa/cell")

    def set(self, name: str, value: ConfValue) -> None:
        self.conf.set(name, value)

    def text(self, path: str) -> str | None:
        el = self.root.find(path)
        return el.text if el is not None and el.text is not None else None

    def feature(self, name: str) -> Element | None:
        return self.features.find(name) if self.features is not None else None

    # -- common --------------------------------------------------------------------------------

    def general(self) -> None:
        self.set("name", self.text("name") or "")
        self.set("uuid", self.text("uuid") or "")

    def memory(self) -> None:
        self.set("maxmem", _div_up(_kib_text(self.root.find("memory")), 1024))
        self.set("memory", _div_up(_kib_text(self.root.find("currentMemory")), 1024))

    def cpu_allocation(self) -> None:
        vcpu = self.root.find("vcpu")
        maximum = _int(vcpu.text if vcpu is not None else None, 1)
        current = _int(vcpu.get("current") if vcpu is not None else None, maximum)
        if current < maximum:
            self.set("maxvcpus", maximum)
        self.set("vcpus", current)
        cpuset = vcpu.get("cpuset") if vcpu is not None else None
        if cpuset:
            self.set("cpus", cpuset)

    def hypervisor_features(self) -> None:
        xen = self.feature("xen")
        xen_on = xen is not None and xen.get("state", "on") == "on"
        if self.hvm:
            pae = _on(self.feature("pae")) or self.arch == "x86_64"
            acpi = _on(self.feature("acpi")) or (self.arch == "x86_64" and bool(self.numa_cells))
            self.set("pae", 1 if pae else 0)
            self.set("acpi", 1 if acpi else 0)
            self.set("apic", 1 if _on(self.feature("apic")) else 0)
            hap = self.feature("hap")
            if hap is not None and hap.get("state") == "off":
                self.set("hap", 0)
            self.set("viridian", 1 if _on(self.feature("viridian")) else 0)
        elif xen_on and xen is not None and _on(xen.find("e820_host")):
            self.set("e820_host", 1)
        if xen_on and xen is not None:
            passthrough = xen.find("passthrough")
            if _on(passthrough) and passthrough is not None:
                mode = passthrough.get("mode")
                self.set("passthrough", mode if mode in ("sync_pt", "share_pt") else "enabled")
        for timer in self.root.iterfind("clock/timer"):
            name = timer.get("name")
            if name == "tsc":
                mode = timer.get("mode")
                if mode == "native":
                    self.set("tsc_mode", "native")
                elif mode == "paravirt":
                    self.set("tsc_mode", "native_paravirt")
                elif mode == "emulate":
                    self.set("tsc_mode", "always_emulate")
                else:
                    self.set("tsc_mode", "default")
            elif name == "hpet" and self.hvm:
                self.set("hpet", 0 if timer.get("present") == "no" else 1)
            else:
                raise _unsupported(f"unsupported timer type (name) '{name}'")

    def time_offset(self) -> None:
        clock = self.root.find("clock")
        offset = clock.get("offset", "utc") if clock is not None else "utc"
        reset = clock is not None and clock.get("adjustment") == "reset"
        if self.hvm:
            if offset == "variable" and clock is not None:
                local = 1 if clock.get("basis") == "localtime" else 0
                adjustment = _int(clock.get("adjustment"))
            elif offset in ("utc", "localtime"):
                if reset:
                    raise _unsupported("unsupported clock adjustment='reset'")
                local = 1 if offset == "localtime" else 0
                adjustment = 0
            else:
                raise _unsupported(f"unsupported clock offset='{offset}'")
            self.set("rtc_timeoffset", adjustment)
        else:
            if offset not in ("utc", "localtime"):
                raise _unsupported(f"unsupported clock offset='{offset}'")
            local = 1 if offset == "localtime" else 0
        self.set("localtime", local)

    def events(self) -> None:
        for key in ("on_poweroff", "on_reboot", "on_crash"):
            default = "destroy" if key == "on_poweroff" else "restart"
            self.set(key, self.text(key) or default)

    def emulator(self) -> None:
        emulator = self.devices.find("emulator")
        if emulator is not None and emulator.text:
            self.set("device_model_override", emulator.text)

    @staticmethod
    def _listen_address(gr: Element) -> str | None:
        listen = gr.find("listen")
        if listen is not None:
            return listen.get("address")
        return gr.get("listen")

    def vfb(self) -> None:
        graphics = self.devices.findall("graphics")
        if len(graphics) != 1 or graphics[0].get("type") == "spice":
            return
        gr = graphics[0]
        sdl = gr.get("type") == "sdl"
        if self.hvm:
            if sdl:
                self.set("sdl", 1)
                self.set("vnc", 0)
                if gr.get("display") is not None:
                    self.set("display", gr.get("display") or "")
                if gr.get("xauth") is not None:
                    self.set("xauthority", gr.get("xauth") or "")
            else:
                autoport = gr.get("autoport") == "yes"
                self.set("sdl", 0)
                self.set("vnc", 1)
                self.set("vncunused", 1 if autoport else 0)
                if not autoport:
                    self.set("vncdisplay", _int(gr.get("port")) - 5900)
                address = self._listen_address(gr)
                if address:
                    self.set("vnclisten", address)
                if gr.get("passwd") is not None:
                    self.set("vncpasswd", gr.get("passwd") or "")
                if gr.get("keymap") is not None:
                    self.set("keymap", gr.get("keymap") or "")
            return
        if sdl:
            parts = ["type=sdl"]
            if gr.get("display") is not None:
                parts.append(f"display={gr.get('display')}")
            if gr.get("xauth") is not None:
                parts.append(f"xauthority={gr.get('xauth')}")
        else:
            autoport = gr.get("autoport") == "yes"
            parts = ["type=vnc", f"vncunused={1 if autoport else 0}"]
            if not autoport:
                parts.append(f"vncdisplay={_int(gr.get('port')) - 5900}")
            address = self._listen_address(gr)
            if address:
                parts.append(f"vnclisten={address}")
            if gr.get("passwd") is not None:
                parts.append(f"vncpasswd={gr.get('passwd')}")
            if gr.get("keymap") is not None:
                parts.append(f"keymap={gr.get('keymap')}")
        self.set("vfb", [",".join(parts)])

    def vif(self, net: Element) -> str:
        typename = "vif" if self.xl else "netfront"
        mac = net.find("mac")
        parts = [f"mac={mac.get('address') if mac is not None else ''}"]
        ntype = net.get("type")
        ips = [ip.get("address") or "" for ip in net.iterfind("ip")]
        script_el = net.find("script")
        script = script_el.get("path") if script_el is not None else None
        if ntype == "bridge":
            source = net.find("source")
            parts.append(f",bridge={source.get('bridge') if source is not None else ''}")
            vport = net.find("virtualport")
            if vport is not None and vport.get("type") == "openvswitch":
                if not script:
                    script = "vif-openvswitch"
                vlan = net.find("vlan")
                tags = [t.get("id") or "" for t in vlan.iterfind("tag")] if vlan is not None else []
                if tags and vlan is not None:
                    if vlan.get("trunk") == "yes":
                        parts.append("".join(f":{t}" for t in tags))
                    else:
                        parts.append(f".{tags[0]}")
            if ips:
                parts.append(f",ip={' '.join(ips)}")
            parts.append(f",script={script or DEFAULT_VIF_SCRIPT}")
        elif ntype == "ethernet":
            if script:
                parts.append(f",script={script}")
            if ips:
                parts.append(f",ip={' '.join(ips)}")
        elif ntype == "network":
            source = net.find("source")
            name = (source.get("network") if source is not None else None) or ""
            if self.bridge_of is None:  # offline: no networks to ask
                raise VirtError(ErrorNumber.NO_NETWORK, name, domain=ErrorDomain.XEN)
            try:
                bridge = self.bridge_of(name)
            except VirtError as exc:
                if exc.code == ErrorNumber.NO_NETWORK:
                    raise VirtError(ErrorNumber.NO_NETWORK, name, domain=ErrorDomain.XEN) from None
                raise
            if not bridge:
                raise _internal(f"network {name} is not active")
            parts.append(f",bridge={bridge},script={DEFAULT_VIF_SCRIPT}")
        else:
            raise _unsupported(f"Unsupported net type '{ntype}'")
        model_el = net.find("model")
        model = model_el.get("type") if model_el is not None else None
        if model:
            if self.hvm and model == "netfront":
                parts.append(f",type={typename}")
            else:
                parts.append(f",model={model}")
        target = net.find("target")
        if target is not None and target.get("dev"):
            parts.append(f",vifname={target.get('dev')}")
        outbound = net.find("bandwidth/outbound")
        if outbound is not None and _int(outbound.get("average")):
            parts.append(f",rate={_int(outbound.get('average'))}KB/s")
        return "".join(parts)

    def vifs(self) -> None:
        nets = [self.vif(net) for net in self.devices.iterfind("interface")]
        if nets:
            self.set("vif", list[ConfValue](nets))

    def pci(self) -> None:
        entries: list[ConfValue] = []
        for dev in self.devices.iterfind("hostdev"):
            if dev.get("mode", "subsystem") != "subsystem" or dev.get("type") != "pci":
                continue
            addr = dev.find("source/address")
            src = dev.find("source")
            filtering = src.get("writeFiltering") if src is not None else None
            permissive = {"yes": ",permissive=0", "no": ",permissive=1"}.get(filtering or "", "")

            domain, bus, slot, function = (_int_any(addr.get(n) if addr is not None else None)
                                           for n in ("domain", "bus", "slot", "function"))
            entries.append(f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}{permissive}")
        if entries:
            self.set("pci", entries)

    @staticmethod
    def chr(el: Element) -> str:
        ctype = el.get("type", "pty")
        sources = el.findall("source")
        src = sources[0] if sources else None
        if ctype in ("null", "stdio", "vc", "pty"):
            return ctype
        if ctype in ("file", "pipe"):
            return f"{ctype}:{_escape_sexpr(src.get('path', '') if src is not None else '')}"
        if ctype == "dev":
            return _escape_sexpr(src.get("path", "") if src is not None else "")
        if ctype == "tcp":
            protocol = el.find("protocol")
            telnet = protocol is not None and protocol.get("type") in ("telnet", "telnets")
            listen = src is not None and src.get("mode") == "bind"
            host = src.get("host", "") if src is not None else ""
            service = src.get("service", "") if src is not None else ""
            return f"{'telnet' if telnet else 'tcp'}:{host}:{service}{',server,nowait' if listen else ''}"
        if ctype == "udp":
            connect = next((s for s in sources if s.get("mode", "connect") == "connect"), None)
            bind = next((s for s in sources if s.get("mode") == "bind"), None)

            def attr(s: Element | None, name: str) -> str:
                return s.get(name, "") if s is not None else ""

            return (f"udp:{attr(connect, 'host')}:{attr(connect, 'service')}"
                    f"@{attr(bind, 'host')}:{attr(bind, 'service')}")
        if ctype == "unix":
            listen = src is not None and src.get("mode") == "bind"
            path = src.get("path", "") if src is not None else ""
            return f"unix:{_escape_sexpr(path)}{',server,nowait' if listen else ''}"
        raise _unsupported(f"unsupported chr device type '{ctype}'")

    def chardevs(self) -> None:
        if not self.hvm:
            return
        parallels = self.devices.findall("parallel")
        self.set("parallel", self.chr(parallels[0]) if parallels else "none")
        serials = self.devices.findall("serial")
        if not serials:
            self.set("serial", "none")
            return

        def port(el: Element) -> int:
            target = el.find("target")
            return _int(target.get("port") if target is not None else None)

        if len(serials) == 1 and port(serials[0]) == 0:
            self.set("serial", self.chr(serials[0]))
            return
        if not self.xl:
            raise _unsupported("Multiple serial devices are not supported by xen-xm")
        maxport = max(port(s) for s in serials)
        entries: list[ConfValue] = []
        for p in range(maxport + 1):
            chosen = next((s for s in serials if port(s) == p), None)
            entries.append(self.chr(chosen) if chosen is not None else "none")
        self.set("serial", entries)

    def sound(self) -> None:
        if not self.hvm:
            return
        models = [_escape_sexpr(s.get("model", "")) for s in self.devices.iterfind("sound")]
        if models:
            self.set("soundhw", ",".join(models))

    def common(self) -> None:
        self.general()
        self.memory()
        self.cpu_allocation()
        self.hypervisor_features()
        self.time_offset()
        self.events()
        self.emulator()
        self.vfb()
        self.vifs()
        self.pci()
        self.chardevs()
        self.sound()

    # -- xl ------------------------------------------------------------------------------------

    def boot(self) -> None:
        devs = [_BOOT_CHARS.get(b.get("dev", ""), "c") for b in self.root.iterfind("os/boot")]
        self.set("boot", "".join(devs[:4]) or "c")

    def xl_os(self) -> None:
        cpu = self.root.find("cpu")
        if self.hvm:
            self.set("builder", "hvm")
            loader = self.root.find("os/loader")
            if loader is not None and loader.get("type") == "pflash":
                self.set("bios", "ovmf")
            slic = self.root.find("os/acpi/table[@type='slic']")
            if slic is not None and slic.text:
                self.set("acpi_firmware", slic.text)
            for tag, key in (("kernel", "kernel"), ("initrd", "ramdisk"), ("cmdline", "cmdline")):
                value = self.text(f"os/{tag}")
                if value is not None:
                    self.set(key, value)
            self.boot()
            if cpu is not None and cpu.get("mode") == "host-passthrough":
                hw_virt = True
                for feature in cpu.iterfind("feature"):
                    if feature.get("policy") in ("disable", "forbid") and feature.get("name") in ("vmx", "svm"):
                        hw_virt = False
                self.set("nestedhvm", 1 if hw_virt else 0)
        else:
            if self.os_type == "xenpvh":
                self.set("type", "pvh")
            for path, key in (("bootloader", "bootloader"), ("bootloader_args", "bootargs"), ("os/kernel", "kernel"),
                              ("os/initrd", "ramdisk"), ("os/cmdline", "cmdline")):
                value = self.text(path)
                if value is not None:
                    self.set(key, value)

    def cpuid(self) -> None:
        cpu = self.root.find("cpu")
        if cpu is None or cpu.get("mode") != "host-passthrough":
            return
        pairs = ["host"]
        for feature in cpu.iterfind("feature"):
            name = _TO_LIBXL.get(feature.get("name", ""), feature.get("name", ""))
            if name in ("vmx", "svm"):
                continue
            policy = {"force": "1", "require": "1", "optional": "x", "disable": "0", "forbid": "0"}.get(
                feature.get("policy", "require"), "1")
            pairs.append(f"{name}={policy}")
        if len(pairs) > 1:
            self.set("cpuid", ",".join(pairs))

    def vnuma(self) -> None:
        cells = self.numa_cells
        if not cells:
            return
        count = len(cells)
        matrix: list[list[int]] = []
        for i, cell in enumerate(cells):
            row = [10 if i == j else 20 for j in range(count)]
            for sib in cell.iterfind("distances/sibling"):
                j = _int(sib.get("id"), -1)
                value = _int(sib.get("value"))
                if 0 <= j < count and value:
                    row[j] = value
            matrix.append(row)
        nodes: list[ConfValue] = []
        for i, cell in enumerate(cells):
            size = _int(cell.get("memory")) // 1024
            nodes.append([f"pnode={i}", f"size={size}", f"vcpus={cell.get('cpus', '')}",
                          "vdistances=" + ",".join(str(d) for d in matrix[i])])
        self.set("vnuma", nodes)

    def xenbus_limits(self) -> None:
        for ctrl in self.devices.iterfind("controller[@type='xenbus']"):
            channels = _int(ctrl.get("maxEventChannels"))
            if channels > 0:
                self.set("max_event_channels", channels)
            frames = _int(ctrl.get("maxGrantFrames"))
            if frames > 0:
                self.set("max_grant_frames", frames)

    @staticmethod
    def _disk_format(disk: Element) -> str:
        driver = disk.find("driver")
        return (driver.get("type") if driver is not None else None) or "raw"

    @staticmethod
    def _disk_driver(disk: Element) -> str | None:
        driver = disk.find("driver")
        return driver.get("name") if driver is not None else None

    def _disk_target(self, disk: Element) -> str | None:
        dtype = disk.get("type", "file")
        src = disk.find("source")
        if src is None:
            return None
        if dtype in ("file", "block", "dir"):
            return src.get("file") or src.get("dev") or src.get("dir")
        if dtype == "network":
            protocol = src.get("protocol", "")
            if protocol != "rbd":
                raise VirtError(ErrorNumber.NO_SUPPORT, f"Unsupported network block protocol '{protocol}'",
                                domain=ErrorDomain.XEN)
            name = src.get("name", "")
            volume, _, path = name.partition("/")
            if ":" in path:
                raise _unsupported(f"':' not allowed in RBD source volume name '{path}'")
            out = f"rbd:{volume}/{path}:auth_supported=none"
            hosts = src.findall("host")
            if hosts:
                items = []
                for host in hosts:
                    hname = host.get("name", "")
                    item = f"[{hname.replace(':', chr(92) + ':')}]" if ":" in hname else hname
                    if host.get("port"):
                        item += f"\\\\:{host.get('port')}"
                    items.append(item)
                out += ":mon_host=" + "\\\\;".join(items)
            return out
        raise _internal("unsupported storage type for this code path")

    def xl_disk(self, disk: Element) -> str:
        fmt = self._disk_format(disk)
        parts = ["format=" + {"vhd": "xvhd", "qcow": "qcow", "qcow2": "qcow2", "qed": "qed"}.get(fmt, "raw")]
        target = disk.find("target")
        parts.append(f",vdev={target.get('dev', '') if target is not None else ''}")
        readonly = disk.find("readonly") is not None
        shared = disk.find("shareable") is not None
        parts.append(",access=" + ("ro" if readonly else "!" if shared else "rw"))
        if disk.find("transient") is not None:
            raise _unsupported("transient disks not supported yet")
        driver = self._disk_driver(disk)
        if disk.get("type") == "network" and driver is None:
            driver = "qemu"
        if driver:
            backend = {"qemu": "qdisk", "file": "qdisk", "tap": "tap", "phy": "phy"}.get(driver, "")
            parts.append(f",backendtype={backend}")
        if disk.get("device") == "cdrom":
            parts.append(",devtype=cdrom")
        source = self._disk_target(disk)
        if source:
            parts.append(f",target={source}")
        return "".join(parts)

    def xl_disks(self) -> None:
        disks: list[ConfValue] = [self.xl_disk(d) for d in self.devices.iterfind("disk")
                                  if d.get("device") != "floppy"]
        if disks:
            self.set("disk", disks)

    def spice(self) -> None:
        graphics = self.devices.findall("graphics")
        if not self.hvm or not graphics or graphics[0].get("type") != "spice":
            return
        gr = graphics[0]
        self.set("sdl", 0)
        self.set("vnc", 0)
        self.set("spice", 1)
        address = self._listen_address(gr)
        if address:
            self.set("spicehost", address)
        self.set("spiceport", max(_int(gr.get("port")), 0) if gr.get("autoport") != "yes" else 0)
        self.set("spicetls_port", max(_int(gr.get("tlsPort")), 0) if gr.get("autoport") != "yes" else 0)
        if gr.get("passwd") is not None:
            self.set("spicedisable_ticketing", 0)
            self.set("spicepasswd", gr.get("passwd") or "")
        else:
            self.set("spicedisable_ticketing", 1)
        mouse = gr.find("mouse")
        mode = mouse.get("mode") if mouse is not None else None
        if mode == "server":
            self.set("spiceagent_mouse", 0)
        elif mode == "client":
            self.set("spiceagent_mouse", 1)
            self.set("spicevdagent", 1)
        clipboard = gr.find("clipboard")
        if clipboard is not None and clipboard.get("copypaste") == "yes":
            self.set("spice_clipboard_sharing", 1)
            self.set("spicevdagent", 1)

    def xl_inputs(self) -> None:
        if not self.hvm:
            return
        kinds: list[ConfValue] = []
        for inp in self.devices.iterfind("input"):
            if inp.get("bus") != "usb":
                continue
            self.set("usb", 1)
            kind = {"mouse": "mouse", "tablet": "tablet", "keyboard": "keyboard"}.get(inp.get("type", ""))
            if kind is not None:
                kinds.append(kind)
        if len(kinds) == 1:
            self.set("usbdevice", kinds[0])
        elif kinds:
            self.set("usbdevice", kinds)

    def usbdevs(self) -> None:
        entries: list[ConfValue] = []
        for dev in self.devices.iterfind("hostdev"):
            if dev.get("mode", "subsystem") != "subsystem" or dev.get("type") != "usb":
                continue
            addr = dev.find("source/address")
            bus = _int(addr.get("bus") if addr is not None else None)
            device = _int(addr.get("device") if addr is not None else None)
            entries.append(f"hostbus={bus:x},hostaddr={device:x}")
        if entries:
            self.set("usbdev", entries)

    def usbctrls(self) -> None:
        entries: list[ConfValue] = []
        for ctrl in self.devices.iterfind("controller[@type='usb']"):
            model = ctrl.get("model")
            text = ""
            if model is not None:
                if model == "qusb1":
                    text = "type=qusb,version=1,"
                elif model == "qusb2":
                    text = "type=qusb,version=2,"
                else:
                    raise _unsupported(f"USB controller model '{model}' is not supported by xl")
            ports = ctrl.get("ports")
            if ports is not None:
                text += f"ports={_int(ports):x}"
            entries.append(text)
        if entries:
            self.set("usbctrl", entries)

    def xl_channels(self) -> None:
        entries: list[ConfValue] = []
        for chan in self.devices.iterfind("channel"):
            target = chan.find("target")
            if target is None or target.get("type") != "xen":
                continue
            ctype = chan.get("type")
            if ctype == "pty":
                text = "connection=pty,"
            elif ctype == "unix":
                text = "connection=socket,"
                src = chan.find("source")
                if src is not None and src.get("path"):
                    text += f"path={src.get('path')},"
            else:
                raise _unsupported(f"channel type '{ctype}' is not supported by xl")
            entries.append(f"{text}name={target.get('name')}")
        if entries:
            self.set("channel", entries)

    def namespace(self) -> None:
        args: list[ConfValue] = [a.get("value", "") for a in
                                 self.root.iterfind(f"{{{XEN_NAMESPACE}}}commandline/{{{XEN_NAMESPACE}}}arg")]
        if args:
            self.set("device_model_args", args)

    def format_xl(self) -> None:
        self.common()
        self.xl_os()
        self.cpuid()
        self.vnuma()
        self.xenbus_limits()
        self.xl_disks()
        self.spice()
        self.xl_inputs()
        self.usbdevs()
        self.usbctrls()
        self.xl_channels()
        self.namespace()

    # -- xm ------------------------------------------------------------------------------------

    def xm_os(self) -> None:
        if self.hvm:
            self.set("builder", "hvm")
            loader = self.root.find("os/loader")
            if loader is not None and loader.text:
                self.set("kernel", loader.text)
            self.boot()
        else:
            for path, key in (("bootloader", "bootloader"), ("bootloader_args", "bootargs"), ("os/kernel", "kernel"),
                              ("os/initrd", "ramdisk"), ("os/cmdline", "extra")):
                value = self.text(path)
                if value is not None:
                    self.set(key, value)

    def xm_disk(self, disk: Element) -> str:
        src = self._disk_target(disk) if disk.get("type", "file") in ("file", "block", "dir") else None
        if disk.get("type") not in ("file", "block", "dir", None) and disk.find("source") is not None:
            raise _internal(f"unsupported disk type {disk.get('type')}")
        text = ""
        if src:
            driver = self._disk_driver(disk)
            fmt = self._disk_format(disk)
            if driver:
                text += f"{driver}:"
                if driver in ("tap", "tap2"):
                    text += f"{'aio' if fmt == 'raw' else fmt}:"
            text += src
        target = disk.find("target")
        text += f",{target.get('dev', '') if target is not None else ''}"
        if disk.get("device") == "cdrom":
            text += ":cdrom"
        if disk.find("readonly") is not None:
            text += ",r"
        elif disk.find("shareable") is not None:
            text += ",!"
        else:
            text += ",w"
        if disk.find("transient") is not None:
            raise _unsupported("transient disks not supported yet")
        return text

    def xm_disks(self) -> None:
        disks: list[ConfValue] = [self.xm_disk(d) for d in self.devices.iterfind("disk")
                                  if d.get("device") != "floppy"]
        if disks:
            self.set("disk", disks)

    def xm_inputs(self) -> None:
        if not self.hvm:
            return
        for inp in self.devices.iterfind("input"):
            if inp.get("bus") != "usb":
                continue
            self.set("usb", 1)
            kind = {"mouse": "mouse", "tablet": "tablet", "keyboard": "keyboard"}.get(inp.get("type", ""))
            if kind is None:
                continue
            self.set("usbdevice", kind)
            break

    def format_xm(self) -> None:
        self.common()
        self.xm_os()
        self.xm_disks()
        self.xm_inputs()


def tree_to_native(fmt: str, root: Element, bridge_of: BridgeOf | None = None) -> XenConf:
    """The configuration (``XenConf``) of a normalised domain tree; ``bridge_of`` names the
    bridges of ``<interface type='network'>`` (without it they are ``NO_NETWORK``)."""
    writer = _Writer(fmt, root, bridge_of)
    if fmt == "xen-xl":
        writer.format_xl()
    else:
        writer.format_xm()
    return writer.conf
