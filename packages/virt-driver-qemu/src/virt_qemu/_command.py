"""Domain XML → QEMU command line.

A pure translation: :func:`build_command` reads a normalised ``<domain>`` element and returns
the argv (plus what the driver needs to know afterwards: chardevs, VNC port, disk and NIC ids,
PCI addresses, nvram, VNC password).  It starts nothing and touches no file.

Shape of the output follows libvirt's QEMU driver for QEMU 7.2: ``-blockdev`` pairs
(``libvirt-N-storage`` / ``libvirt-N-format``), ``-device``/``-netdev`` in JSON, libvirt's
device aliases (``virtio-disk0``, ``sata0-0-1``, ``net0``, ``serial0``, ``video0``,
``balloon0``...), PCI slots assigned here, in libvirt's order, so a device's guest address does
not depend on QEMU's own placement order.

The driver adds ``-S``, ``-name``, ``-uuid``, ``-no-user-config``, ``-nodefaults`` and the
monitors; everything else comes from here.

What is understood (anything else — an unknown element, attribute or value — raises
:class:`VirtError` ``CONFIG_UNSUPPORTED`` naming it; nothing is dropped silently):

``<domain type='kvm'|'qemu'>``
    ``-accel kvm`` / ``-accel tcg``; ``kvm`` without KVM is refused.
``name uuid title description metadata seclabel[type=none]``
    accepted, nothing to emit (name/uuid: the driver).
``memory[unit,dumpCore] currentMemory maxMemory[slots]``
    ``-m size=Nk[,slots=,maxmem=]``; the balloon target is a run-time matter.
``memoryBacking``: ``source[memfd|anonymous] access[shared|private] allocation[immediate,threads]
locked nosharepages``
    a ``pc.ram`` backend object, ``-overcommit mem-lock=on``, ``mem-merge=off``.
``vcpu[current,placement=static] cpu[mode,match,check]: model feature[require|force|disable] topology``
    ``-smp``; ``-cpu`` qemu64 by default (as libvirt on x86), ``host`` for host-passthrough
    (KVM only), ``host``/``max`` for host-model under KVM/TCG, ``max`` for maximum.
``iothreads iothreadids``
    ``-object iothread``; used by virtio disks and virtio-scsi controllers (``<driver iothread>``).
``os``: ``type[arch=x86_64, machine=pc|q35|pc-i440fx-*|pc-q35-*]=hvm boot[hd|cdrom|network] bootmenu
kernel initrd cmdline loader[rom|pflash, readonly, stateless] nvram[template]``
    ``-machine``, ``-boot``, bootindex on the first device of each class, ``-kernel``...,
    ``-bios`` or pflash blockdevs.
``features``: ``acpi apic pae vmport smm``
    ``acpi=off`` when ``<acpi/>`` is absent.
``clock[offset=utc|localtime|absolute]: timer[rtc|pit|hpet]``; ``pm``; ``on_poweroff on_reboot on_crash``
    ``-rtc``, ``-global``, ``-action`` (only what QEMU can express).
devices: ``emulator``; ``disk[file|block; disk|cdrom; virtio|sata|scsi|ide]`` with ``driver[type,
cache,io,discard,detect_zeroes,iothread] readonly shareable serial boot address alias backingStore(empty)``;
``controller``: ``pci`` (pci-root, pcie-root, pcie-root-port, pci-bridge), ``usb`` (piix3-uhci,
qemu-xhci, nec-xhci, none), ``ide`` (pc), ``sata``, ``scsi`` (virtio-scsi, lsilogic), ``virtio-serial``;
``interface[user|bridge|network]`` (rtl8139/e1000/e1000e/virtio; taps come from the driver);
``serial parallel console channel[virtio]`` (pty, file, unix, tcp, null; ``log``);
``input`` (ps2 built in; usb and virtio mouse/keyboard/tablet); ``graphics[vnc]``;
``video`` (cirrus, vga, bochs, qxl, virtio, none); ``audio[none]``; ``memballoon[virtio|none]``;
``rng[virtio]`` (random: /dev/urandom, /dev/random, /dev/hwrng; builtin); ``panic[isa|pvpanic]``;
``watchdog[i6300esb|ib700]``; ``qemu:commandline/qemu:arg`` (appended verbatim).

Deliberate choices:

* ``<controller type='scsi'>`` without a model means virtio-scsi (libvirt would pick lsilogic);
* an ``<interface>`` without ``<model>`` is an ``rtl8139``, as in libvirt;
* VNC listens on 127.0.0.1 unless the XML names another address; with ``autoport`` and no
  ``vnc_port`` from the driver, QEMU picks the first free display (``vnc_port`` is then None
  and the driver asks ``query-vnc``); a VNC ``passwd`` is never put in argv
  (:attr:`CommandLine.vnc_password`, for QMP ``set_password``);
* lifecycle: ``on_poweroff`` destroy → QEMU exits, preserve → ``shutdown=pause``; ``on_reboot``
  destroy → ``reboot=shutdown``; ``on_crash`` destroy → QEMU's default panic action (a shutdown; ``panic=exit-failure``
  when shutdowns pause), preserve → ``panic=pause``; restart/rename-restart/coredump-* are refused;
* ``<memballoon><stats period>`` is returned in :attr:`CommandLine.balloon_stats_period`
  (QEMU takes it at run time, through ``qom-set``).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs
from lxml import etree
from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = ["Chardev", "CommandLine", "build_command", "QEMU_NS"]

QEMU_NS: Final = "http://libvirt.org/schemas/domain/qemu/1.0"


@attrs.frozen
class Chardev:
    """A chardev the driver must know about after start.

    A ``<console>`` whose target is a serial port shares the serial's chardev: it is listed
    twice, once with ``device='serialN'`` and once with ``device='consoleN'``, same alias.
    """

    alias: str  # "charserial0", "charconsole1", "charchannel0"
    kind: str  # "pty" | "file" | "unix" | "null" | "tcp"
    device: str  # libvirt device alias it backs: "serial0", "console0", "channel0"
    path: str | None  # file / unix path; a pty's path is only known after start (query-chardev)


@attrs.frozen
class CommandLine:
    argv: tuple[str, ...]  # starts with the emulator path
    chardevs: tuple[Chardev, ...]
    vnc_port: int | None  # TCP port of the VNC server when known before start
    needs_taps: tuple[int, ...] = ()  # indexes (among <interface>s) of NICs that need a tap fd
    disks: tuple[tuple[str, str], ...] = ()  # (target dev, qdev id), e.g. ("vda", "virtio-disk0")
    disk_nodes: tuple[tuple[str, str], ...] = ()  # (target dev, top node-name), e.g. ("vda", "libvirt-2-format")
    nics: tuple[tuple[str, str], ...] = ()  # (mac, netdev id), e.g. ("52:54:00:..", "hostnet0")
    pci_addresses: tuple[tuple[str, str], ...] = ()  # (qdev id, "0000:00:03.0") as assigned here
    balloon_stats_period: int | None = None  # <memballoon><stats period>, to set through QMP
    #: UEFI variable store (path, template): the driver creates ``path`` from ``template`` when it is missing
    nvram: tuple[str, str | None] | None = None
    #: VNC password (``passwd``): argv only says ``password=on``; the driver must run QMP
    #: ``set_password`` (protocol vnc) before ``cont`` — until then nobody can log in.
    vnc_password: str | None = attrs.field(default=None, repr=False)


# --------------------------------------------------------------------------------------------
# errors and small helpers


def _unsupported(what: str) -> VirtError:
    return VirtError(
        ErrorNumber.CONFIG_UNSUPPORTED, f"{what} is not supported by this QEMU driver", domain=ErrorDomain.QEMU
    )


def _invalid(detail: str) -> VirtError:
    return VirtError(ErrorNumber.CONFIG_UNSUPPORTED, detail, domain=ErrorDomain.QEMU)


def _tag(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return "?"
    if tag.startswith("{" + QEMU_NS + "}"):
        return "qemu:" + tag.split("}", 1)[1]
    return tag


def _children(el: etree._Element) -> list[etree._Element]:
    """Element children only (no comments or processing instructions)."""
    return [c for c in el if isinstance(c.tag, str)]


def _check(
    el: etree._Element, where: str, attributes: Iterable[str] = (), children: Iterable[str] = ()
) -> None:
    """Refuse any attribute or child element of ``el`` not listed."""
    allowed_attrs = set(attributes)
    for raw in el.attrib:
        name = raw if isinstance(raw, str) else raw.decode()
        if name not in allowed_attrs:
            raise _unsupported(f"attribute '{name}' of {where}")
    allowed_children = set(children)
    for child in _children(el):
        if _tag(child) not in allowed_children:
            raise _unsupported(f"element <{_tag(child)}> in {where}")


def _one(el: etree._Element, tag: str) -> etree._Element | None:
    found = [c for c in _children(el) if _tag(c) == tag]
    if len(found) > 1:
        raise _unsupported(f"more than one <{tag}> in <{_tag(el)}>")
    return found[0] if found else None


def _choice(value: str | None, allowed: Iterable[str], what: str) -> str:
    if value is None or value not in set(allowed):
        raise _unsupported(f"{what} '{value}'")
    return value


def _int(value: str | None, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if value is None:
        raise _invalid(f"missing {what}")
    text = value.strip()
    try:
        number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise _invalid(f"invalid {what} '{value}'") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise _invalid(f"{what} '{value}' is out of range")
    return number


def _yes_no(value: str | None, what: str, *, yes: str = "yes", no: str = "no") -> bool:
    if value == yes:
        return True
    if value == no:
        return False
    raise _unsupported(f"{what} '{value}'")


def _esc(value: str) -> str:
    """QEMU's option-value quoting: a comma is written twice."""
    return value.replace(",", ",,")


def _json(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


_UNITS: Final[dict[str, int]] = {
    "b": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}


def _kib(el: etree._Element, what: str) -> int:
    unit = (el.get("unit") or "KiB").lower()
    if unit not in _UNITS:
        raise _unsupported(f"unit '{el.get('unit')}' of <{what}>")
    value = _int(el.text, f"<{what}> value", minimum=0)
    return value * _UNITS[unit] // 1024


_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _name(value: str | None, what: str) -> str:
    if value is None or not _NAME_RE.match(value):
        raise _unsupported(f"{what} '{value}'")
    return value


def _disk_index(dev: str) -> int:
    """libvirt's virDiskNameToIndex: 'vda' → 0, 'sdb' → 1, 'hdaa' → 26."""
    match = re.match(r"^(?:fd|hd|vd|sd|xvd|ubd)([a-z]+)$", dev)
    if not match:
        raise _invalid(f"invalid disk target name '{dev}'")
    index = 0
    for ch in match.group(1):
        index = index * 26 + (ord(ch) - ord("a") + 1)
    return index - 1


# --------------------------------------------------------------------------------------------
# allow-lists

#: Children of <domain> that are understood (or harmless: name, uuid, metadata...).
_ALLOWED_TOP: Final = frozenset({
    "name", "uuid", "title", "description", "metadata", "memory", "currentMemory", "maxMemory",
    "vcpu", "os", "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "pm",
    "devices", "seclabel", "qemu:commandline", "iothreads", "iothreadids", "memoryBacking",
})

#: Children of <devices> that are understood.
_ALLOWED_DEVICES: Final = frozenset({
    "emulator", "disk", "controller", "interface", "serial", "parallel", "console", "channel", "input",
    "graphics", "video", "audio", "memballoon", "rng", "panic", "watchdog",
})

_DISK_FORMATS: Final = frozenset({"raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx"})
_NIC_MODELS: Final[dict[str, str]] = {
    "virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139",
}
_DEFAULT_NIC_MODEL: Final = "rtl8139"
_CACHE_MODES: Final[dict[str, tuple[bool, bool, bool]]] = {
    # mode: (cache.direct, cache.no-flush, device write-cache)
    "writeback": (False, False, True),
    "none": (True, False, True),
    "writethrough": (False, False, False),
    "directsync": (True, False, False),
    "unsafe": (False, True, True),
}
_RNG_SOURCES: Final = frozenset({"/dev/urandom", "/dev/random", "/dev/hwrng"})
_WATCHDOG_MODELS: Final[dict[str, str]] = {"i6300esb": "i6300esb", "ib700": "ib700"}
_WATCHDOG_ACTIONS: Final[dict[str, str]] = {
    "reset": "reset", "shutdown": "shutdown", "poweroff": "poweroff", "pause": "pause",
    "none": "none", "inject-nmi": "inject-nmi",
}


# --------------------------------------------------------------------------------------------
# PCI addresses


@attrs.frozen
class _PciAddr:
    bus: int
    slot: int
    function: int
    multifunction: bool = False

    def text(self) -> str:
        return f"0000:{self.bus:02x}:{self.slot:02x}.{self.function}"


class _Pci:
    """PCI buses and slots: explicit ``<address type='pci'>`` first, then the next free root slot.

    Bus 0 is the root (``pci.0`` on pc, ``pcie.0`` on q35); bus N is the PCI controller with
    index N (``pcie-root-port`` or ``pci-bridge``), named ``pci.N`` as libvirt names it.
    Automatic placement only uses the root bus.
    """

    def __init__(self, q35: bool) -> None:
        self.q35 = q35
        self.buses: dict[int, str] = {0: "pcie.0" if q35 else "pci.0"}  # index → qdev bus name
        self.single_slot: set[int] = set()  # buses with one slot (0): PCIe root ports
        if q35:  # host bridge; ICH9 LPC, SATA, SMBus
            self.used = {(0, 0, 0), (0, 0x1F, 0), (0, 0x1F, 2), (0, 0x1F, 3)}
        else:  # host bridge; PIIX3 ISA, IDE, PM (function 2 is for the USB controller)
            self.used = {(0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 1, 3)}
        self.assigned: list[tuple[str, str]] = []

    def add_bus(self, index: int, single_slot: bool) -> None:
        self.buses[index] = f"pci.{index}"
        if single_slot:
            self.single_slot.add(index)

    def reserve(self, addr: _PciAddr, what: str) -> None:
        key = (addr.bus, addr.slot, addr.function)
        if key in self.used:
            raise _invalid(f"PCI address {addr.text()} of {what} is already in use")
        self.used.add(key)

    def check_bus(self, addr: _PciAddr, what: str) -> None:
        if addr.bus not in self.buses:
            raise _invalid(f"PCI address {addr.text()} of {what} is on a bus that no PCI controller provides")
        if addr.bus in self.single_slot and addr.slot != 0:
            raise _invalid(f"PCI address {addr.text()} of {what}: a PCIe root port has only slot 0")
        if addr.bus == 0 and addr.slot == 0:
            raise _invalid(f"PCI address {addr.text()} of {what} is the host bridge's")

    def free_root_slot(self, preferred: int | None = None) -> int:
        free = [s for s in range(1, 32) if all((0, s, f) not in self.used for f in range(8))]
        if not free:
            raise _unsupported("more PCI devices than free slots on the root bus")
        return preferred if preferred in free else free[0]

    def place(self, props: dict[str, Any], qdev_id: str, explicit: _PciAddr | None) -> None:
        if explicit is None:
            explicit = _PciAddr(0, self.free_root_slot(), 0)
            self.used.add((0, explicit.slot, 0))
        else:
            self.check_bus(explicit, qdev_id)
        props["bus"] = self.buses[explicit.bus]
        props["addr"] = f"0x{explicit.slot:x}" + (f".0x{explicit.function:x}" if explicit.function else "")
        if explicit.multifunction:
            props["multifunction"] = True
        self.assigned.append((qdev_id, explicit.text()))


def _pci_address(dev: etree._Element | None, what: str) -> _PciAddr | None:
    addr = _one(dev, "address") if dev is not None else None
    if addr is None:
        return None
    if addr.get("type") != "pci":
        raise _unsupported(f"address type '{addr.get('type')}' for {what}")
    _check(addr, f"the <address> of {what}", ("type", "domain", "bus", "slot", "function", "multifunction"))
    if _int(addr.get("domain", "0"), "PCI domain") != 0:
        raise _unsupported(f"PCI domain '{addr.get('domain')}' for {what}")
    return _PciAddr(
        bus=_int(addr.get("bus", "0"), "PCI bus", maximum=255),
        slot=_int(addr.get("slot"), "PCI slot", maximum=31),
        function=_int(addr.get("function", "0"), "PCI function", maximum=7),
        multifunction=_yes_no(addr.get("multifunction", "off"), "multifunction", yes="on", no="off"),
    )


def _user_alias(dev: etree._Element, default: str) -> str:
    """A user alias (``<alias name='ua-...'/>``) becomes the qdev id, as in libvirt.

    Other aliases are run-time names from a live definition and are re-assigned here.
    """
    alias = _one(dev, "alias")
    if alias is None:
        return default
    _check(alias, "<alias>", ("name",))
    name = alias.get("name") or ""
    if name.startswith("ua-"):
        if not re.match(r"^ua-[A-Za-z0-9_.:-]+$", name):
            raise _invalid(f"invalid alias name '{name}'")
        return name
    return default


# --------------------------------------------------------------------------------------------
# the builder


class _Builder:
    def __init__(
        self,
        root: etree._Element,
        emulator: str,
        domain_dir: pathlib.Path,
        kvm: bool,
        taps: Mapping[int, int],
        vnc_port: int | None,
        incoming: str | None,
    ) -> None:
        self.root = root
        self.emulator = emulator
        self.domain_dir = domain_dir
        self.kvm_available = kvm
        self.taps = taps
        self.requested_vnc_port = vnc_port
        self.incoming = incoming

        self.argv: list[str] = [emulator]
        self.chardevs: list[Chardev] = []
        self.needs_taps: list[int] = []
        self.disks: list[tuple[str, str]] = []
        self.disk_nodes: list[tuple[str, str]] = []
        self.nics: list[tuple[str, str]] = []
        self.vnc_port: int | None = None
        self.balloon_stats_period: int | None = None
        self.nvram: tuple[str, str | None] | None = None
        self.vnc_password: str | None = None
        self.iothread_ids: set[int] = set()
        self.memory_object: dict[str, Any] | None = None  # the pc.ram backend, with <memoryBacking>
        self.mem_lock = False

        self.q35 = False
        self.use_kvm = False
        self.pci: _Pci = _Pci(False)
        self.bootindex: dict[int, int] = {}  # id(device element) → bootindex
        self.controllers: dict[tuple[str, int], etree._Element] = {}
        self.usb_model: str | None = None  # None: no USB controller wanted (yet)
        self.usb_explicit_none = False
        self.audio_id: str | None = None
        self.serial_ports: dict[int, etree._Element] = {}
        self.primary_video: tuple[int, int] | None = None  # (id of the <video>, slot)
        self.planned: dict[int, _PciAddr] = {}  # id(element) → root slot chosen in libvirt's order

    # -- helpers -----------------------------------------------------------------------------

    def add(self, *args: str) -> None:
        self.argv.extend(args)

    def device(self, props: dict[str, Any]) -> None:
        self.argv.extend(["-device", _json(props)])

    def place(self, props: dict[str, Any], qdev_id: str, el: etree._Element | None, what: str) -> None:
        """PCI bus/addr for a device: its own ``<address>``, else the slot planned for it."""
        explicit = _pci_address(el, what) if el is not None else None
        if explicit is None and el is not None:
            explicit = self.planned.get(id(el))
        self.pci.place(props, qdev_id, explicit)

    # -- top level ---------------------------------------------------------------------------

    def build(self) -> CommandLine:
        root = self.root
        if _tag(root) != "domain":
            raise _invalid(f"expected a <domain> element, got <{_tag(root)}>")
        _check(root, "<domain>", ("type", "id"), _ALLOWED_TOP)
        for tag in ("name", "uuid", "title", "description", "metadata", "memory", "currentMemory",
                    "maxMemory", "vcpu", "os", "features", "cpu", "clock", "on_poweroff", "on_reboot", "iothreads",
                    "iothreadids", "memoryBacking",
                    "on_crash", "pm", "devices"):
            _one(root, tag)

        virt_type = root.get("type")
        if virt_type == "kvm":
            if not self.kvm_available:
                raise VirtError(
                    ErrorNumber.CONFIG_UNSUPPORTED,
                    "domain type 'kvm' was requested but KVM is not available on this host",
                    domain=ErrorDomain.QEMU,
                )
            self.use_kvm = True
        elif virt_type != "qemu":
            raise _unsupported(f"domain type '{virt_type}'")

        seclabel = _one(root, "seclabel")
        if seclabel is not None:
            _check(seclabel, "<seclabel>", ("type", "model", "relabel"))
            if seclabel.get("type") != "none":
                raise _unsupported(f"security label type '{seclabel.get('type')}'")

        os_el = _one(root, "os")
        if os_el is None:
            raise _invalid("the domain has no <os> element")
        features = self._features()
        self._machine(os_el, features)
        self.add("-accel", "kvm" if self.use_kvm else "tcg")
        self._cpu()
        self._memory()
        self._vcpus()
        self._iothreads()
        self._os_boot(os_el)

        devices = _one(root, "devices")
        devs = _children(devices) if devices is not None else []
        if devices is not None:
            _check(devices, "<devices>", (), {_tag(c) for c in devs})  # children are checked below
        for dev in devs:
            if _tag(dev) not in _ALLOWED_DEVICES:
                raise _unsupported(f"device <{_tag(dev)}>")
        by_tag: dict[str, list[etree._Element]] = {}
        for dev in devs:
            by_tag.setdefault(_tag(dev), []).append(dev)
        emulators = by_tag.get("emulator", [])
        if len(emulators) > 1:
            raise _unsupported("more than one <emulator>")
        for em in emulators:
            _check(em, "<emulator>")

        graphics = by_tag.get("graphics", [])
        if not graphics:
            self.add("-display", "none")
        self._clock()
        self._lifecycle(by_tag.get("panic", []), by_tag.get("watchdog", []))
        self._pm()
        self._boot_order(os_el, devs)

        self._reserve_pci(devs)
        self._plan_pci(by_tag)
        self._controllers(by_tag.get("controller", []), devs)
        self._disks(by_tag.get("disk", []))
        self._interfaces(by_tag.get("interface", []))
        self._serials(by_tag.get("serial", []), by_tag.get("console", []))
        self._parallels(by_tag.get("parallel", []))
        self._consoles(by_tag.get("console", []))
        self._channels(by_tag.get("channel", []))
        self._inputs(by_tag.get("input", []))
        self._audio(by_tag.get("audio", []), bool(graphics))
        self._graphics(graphics)
        self._videos(by_tag.get("video", []))
        self._watchdogs(by_tag.get("watchdog", []))
        self._memballoon(by_tag.get("memballoon", []))
        self._rngs(by_tag.get("rng", []))
        self._panics(by_tag.get("panic", []))
        if self.incoming is not None:
            self.add("-incoming", self.incoming)
        self._qemu_commandline()

        return CommandLine(
            argv=tuple(self.argv),
            chardevs=tuple(self.chardevs),
            vnc_port=self.vnc_port,
            needs_taps=tuple(self.needs_taps),
            disks=tuple(self.disks),
            disk_nodes=tuple(self.disk_nodes),
            nics=tuple(self.nics),
            pci_addresses=tuple(self.pci.assigned),
            balloon_stats_period=self.balloon_stats_period,
            nvram=self.nvram,
            vnc_password=self.vnc_password,
        )

    # -- machine, features -------------------------------------------------------------------

    def _features(self) -> dict[str, etree._Element]:
        found: dict[str, etree._Element] = {}
        features = _one(self.root, "features")
        if features is None:
            return found
        _check(features, "<features>", children=("acpi", "apic", "pae", "vmport", "smm"))
        for feat in _children(features):
            name = _tag(feat)
            if name in found:
                raise _unsupported(f"more than one <{name}> in <features>")
            found[name] = feat
            if name in ("acpi", "apic", "pae"):
                _check(feat, f"<features><{name}>")
            else:
                _check(feat, f"<features><{name}>", ("state",))
                _choice(feat.get("state"), ("on", "off"), f"<{name}> state")
        return found

    def _machine(self, os_el: etree._Element, features: dict[str, etree._Element]) -> None:
        _check(os_el, "<os>", (), ("type", "boot", "bootmenu", "kernel", "initrd", "cmdline", "loader", "nvram"))
        type_el = _one(os_el, "type")
        if type_el is None or (type_el.text or "").strip() != "hvm":
            raise _unsupported(f"OS type '{(type_el.text or '').strip() if type_el is not None else None}'")
        _check(type_el, "<os><type>", ("arch", "machine"))
        arch = type_el.get("arch", "x86_64")
        if arch != "x86_64":
            raise _unsupported(f"architecture '{arch}'")
        machine = type_el.get("machine") or "pc"
        if machine == "q35" or machine.startswith("pc-q35-"):
            self.q35 = True
        elif not (machine == "pc" or machine.startswith("pc-i440fx-") or re.match(r"^pc-[01]\.\d+$", machine)):
            raise _unsupported(f"machine type '{machine}'")
        if not re.match(r"^[A-Za-z0-9_.-]+$", machine):
            raise _unsupported(f"machine type '{machine}'")
        self.pci = _Pci(self.q35)

        props = [machine, "usb=off"]
        if "vmport" in features:
            props.append("vmport=" + features["vmport"].get("state", "on"))
        if "smm" in features:
            props.append("smm=" + features["smm"].get("state", "on"))
        memory = _one(self.root, "memory")
        dump_core = memory.get("dumpCore") if memory is not None else None
        props.append("dump-guest-core=" + ("on" if dump_core == "on" else "off"))
        if dump_core not in (None, "on", "off"):
            raise _unsupported(f"dumpCore '{dump_core}'")
        props += self._firmware(os_el)
        props += self._memory_backing()
        if "acpi" not in features:
            props.append("acpi=off")
        hpet = self._hpet()
        if hpet is not None:
            props.append("hpet=" + ("on" if hpet else "off"))
        self.add("-machine", ",".join(props))

    def _firmware(self, os_el: etree._Element) -> list[str]:
        """``<loader>``/``<nvram>``: ``-bios`` for a ROM, pflash blockdevs (``-machine`` props) for UEFI."""
        loader = _one(os_el, "loader")
        nvram = _one(os_el, "nvram")
        if loader is None:
            if nvram is not None:
                raise _invalid("<nvram> without a <loader>")
            return []
        _check(loader, "<os><loader>", ("type", "readonly", "secure", "stateless"))
        path = (loader.text or "").strip()
        if not path.startswith("/"):
            raise _invalid(f"loader path '{path}' is not absolute")
        ltype = _choice(loader.get("type", "rom"), ("rom", "pflash"), "loader type")
        if loader.get("secure") not in (None, "no"):
            raise _unsupported(f"secure loader '{loader.get('secure')}'")
        stateless = _yes_no(loader.get("stateless", "no"), "loader stateless")
        if ltype == "rom":
            if nvram is not None or loader.get("readonly") not in (None, "yes") or stateless:
                raise _unsupported("<nvram>, readonly='no' or stateless with a ROM loader")
            self.add("-bios", path)
            return []
        readonly = _yes_no(loader.get("readonly", "no"), "loader readonly")
        flashes = [(path, readonly)]
        if nvram is not None:
            _check(nvram, "<os><nvram>", ("template",))
            if not readonly or stateless:
                raise _invalid("<nvram> needs a read-only, stateful pflash loader")
            vars_path = (nvram.text or "").strip()
            if not vars_path.startswith("/"):
                raise _unsupported("an <nvram> without an absolute path (the driver must choose one first)")
            template = nvram.get("template")
            if template is not None and not template.startswith("/"):
                raise _invalid(f"nvram template '{template}' is not absolute")
            self.nvram = (vars_path, template)
            flashes.append((vars_path, False))
        elif readonly and not stateless:
            raise _unsupported("a read-only pflash loader without an <nvram> path (or stateless='yes')")
        props = []
        for n, (flash, ro) in enumerate(flashes):
            storage, node = f"libvirt-pflash{n}-storage", f"libvirt-pflash{n}-format"
            self.add("-blockdev", _json({"driver": "file", "filename": flash, "node-name": storage,
                                         "auto-read-only": True, "discard": "unmap"}),
                     "-blockdev", _json({"node-name": node, "read-only": ro, "driver": "raw", "file": storage}))
            props.append(f"pflash{n}={node}")
        return props

    def _memory_backing(self) -> list[str]:
        """``<memoryBacking>``: memfd / shared / preallocated RAM through a ``pc.ram`` backend object."""
        backing = _one(self.root, "memoryBacking")
        if backing is None:
            return []
        _check(backing, "<memoryBacking>", (), ("source", "access", "locked", "nosharepages", "allocation"))
        qom: dict[str, Any] = {"qom-type": "memory-backend-ram", "id": "pc.ram"}
        props: list[str] = []
        for el in _children(backing):
            tag = _tag(el)
            if tag == "source":
                _check(el, "<memoryBacking><source>", ("type",))
                kind = _choice(el.get("type", "anonymous"), ("anonymous", "memfd"), "memory backing source type")
                if kind == "memfd":
                    qom["qom-type"] = "memory-backend-memfd"
                    qom["x-use-canonical-path-for-ramblock-id"] = False
            elif tag == "access":
                _check(el, "<memoryBacking><access>", ("mode",))
                qom["share"] = _choice(el.get("mode"), ("shared", "private"), "memory access mode") == "shared"
            elif tag == "allocation":
                _check(el, "<memoryBacking><allocation>", ("mode", "threads"))
                mode = _choice(el.get("mode", "ondemand"), ("immediate", "ondemand"), "memory allocation mode")
                if mode == "immediate":
                    qom["prealloc"] = True
                if el.get("threads") is not None:
                    if mode != "immediate":
                        raise _invalid("memory allocation threads need mode 'immediate'")
                    qom["prealloc-threads"] = _int(el.get("threads"), "memory allocation threads", minimum=1)
            else:
                _check(el, f"<memoryBacking><{tag}>")
                if tag == "locked":
                    self.mem_lock = True
                else:
                    props.append("mem-merge=off")
        self.memory_object = qom
        props.append("memory-backend=pc.ram")
        return props

    def _hpet(self) -> bool | None:
        clock = _one(self.root, "clock")
        if clock is None:
            return None
        for timer in _children(clock):
            if _tag(timer) == "timer" and timer.get("name") == "hpet":
                return _yes_no(timer.get("present", "yes"), "hpet timer present")
        return None

    # -- cpu, memory -------------------------------------------------------------------------

    def _cpu(self) -> None:
        cpu = _one(self.root, "cpu")
        if cpu is None:
            self.add("-cpu", "qemu64")
            return
        _check(cpu, "<cpu>", ("mode", "match", "check", "migratable"), ("model", "topology", "feature"))
        model_el = _one(cpu, "model")
        mode = cpu.get("mode") or "custom"
        _choice(mode, ("custom", "host-model", "host-passthrough", "maximum"), "CPU mode")
        if cpu.get("match") is not None:
            _choice(cpu.get("match"), ("exact", "minimum", "strict"), "CPU match")
        if cpu.get("check") is not None:
            _choice(cpu.get("check"), ("none", "partial", "full"), "CPU check")
        if cpu.get("migratable") not in (None, "on"):
            raise _unsupported(f"CPU migratable '{cpu.get('migratable')}'")
        if mode == "custom":
            if model_el is not None:
                _check(model_el, "<cpu><model>", ("fallback",))
                if model_el.get("fallback") is not None:
                    _choice(model_el.get("fallback"), ("allow", "forbid"), "CPU model fallback")
                name = _name((model_el.text or "").strip(), "CPU model")
            else:
                name = "qemu64"
        else:
            if model_el is not None:
                raise _unsupported(f"<model> with CPU mode '{mode}'")
            if mode == "host-passthrough":
                if not self.use_kvm:
                    raise _unsupported("CPU mode 'host-passthrough' without KVM")
                name = "host"
            elif mode == "host-model":
                name = "host" if self.use_kvm else "max"
            else:
                name = "max"
        parts = [name]
        for feat in _children(cpu):
            if _tag(feat) != "feature":
                continue
            _check(feat, "<cpu><feature>", ("policy", "name"))
            fname = _name(feat.get("name"), "CPU feature")
            policy = feat.get("policy", "require")
            if policy in ("require", "force"):
                parts.append(f"{fname}=on")
            elif policy == "disable":
                parts.append(f"{fname}=off")
            else:
                raise _unsupported(f"CPU feature policy '{policy}'")
        self.add("-cpu", ",".join(parts))

    def _memory(self) -> None:
        memory = _one(self.root, "memory")
        if memory is None:
            raise _invalid("the domain has no <memory>")
        _check(memory, "<memory>", ("unit", "dumpCore"))
        size = _kib(memory, "memory")
        if size <= 0:
            raise _invalid("memory size must be greater than zero")
        current = _one(self.root, "currentMemory")
        if current is not None:
            _check(current, "<currentMemory>", ("unit",))
            if _kib(current, "currentMemory") > size:
                raise _invalid("currentMemory is larger than memory")
        opts = f"size={size}k"
        max_el = _one(self.root, "maxMemory")
        if max_el is not None:
            _check(max_el, "<maxMemory>", ("unit", "slots"))
            maxmem = _kib(max_el, "maxMemory")
            slots = _int(max_el.get("slots", "0"), "maxMemory slots", maximum=255)
            if maxmem < size:
                raise _invalid("maxMemory is smaller than memory")
            opts += f",slots={slots},maxmem={maxmem}k"
        self.add("-m", opts)
        if self.memory_object is not None:
            if self.memory_object.get("share") and self.memory_object["qom-type"] == "memory-backend-ram":
                self.memory_object["qom-type"] = "memory-backend-memfd"  # anonymous memory cannot be shared
                self.memory_object["x-use-canonical-path-for-ramblock-id"] = False
            self.add("-object", _json(self.memory_object | {"size": size * 1024}))
        if self.mem_lock:
            self.add("-overcommit", "mem-lock=on")

    def _vcpus(self) -> None:
        vcpu = _one(self.root, "vcpu")
        if vcpu is not None:
            _check(vcpu, "<vcpu>", ("placement", "current"))
            if vcpu.get("placement", "static") != "static":
                raise _unsupported(f"vcpu placement '{vcpu.get('placement')}'")
            maximum = _int(vcpu.text, "vcpu count", minimum=1, maximum=4096)
            current = _int(vcpu.get("current", str(maximum)), "current vcpu count", minimum=1, maximum=maximum)
        else:
            maximum = current = 1
        sockets, dies, cores, threads = maximum, 1, 1, 1
        cpu = _one(self.root, "cpu")
        topo = _one(cpu, "topology") if cpu is not None else None
        if topo is not None:
            _check(topo, "<cpu><topology>", ("sockets", "dies", "cores", "threads"))
            sockets = _int(topo.get("sockets", "1"), "topology sockets", minimum=1)
            dies = _int(topo.get("dies", "1"), "topology dies", minimum=1)
            cores = _int(topo.get("cores", "1"), "topology cores", minimum=1)
            threads = _int(topo.get("threads", "1"), "topology threads", minimum=1)
            if sockets * dies * cores * threads != maximum:
                raise _invalid(
                    f"CPU topology {sockets}*{dies}*{cores}*{threads} does not match the maximum vcpu count {maximum}"
                )
        smp = str(current)
        if current != maximum:
            smp += f",maxcpus={maximum}"
        smp += f",sockets={sockets}"
        if dies != 1:
            smp += f",dies={dies}"
        smp += f",cores={cores},threads={threads}"
        self.add("-smp", smp)

    def _iothreads(self) -> None:
        count_el = _one(self.root, "iothreads")
        ids_el = _one(self.root, "iothreadids")
        count = 0
        if count_el is not None:
            _check(count_el, "<iothreads>")
            count = _int(count_el.text, "iothreads count", maximum=1024)
        ids: list[int] = []
        if ids_el is not None:
            _check(ids_el, "<iothreadids>", (), ("iothread",))
            for thread in _children(ids_el):
                _check(thread, "<iothreadids><iothread>", ("id",))
                ids.append(_int(thread.get("id"), "iothread id", minimum=1))
            if len(set(ids)) != len(ids):
                raise _invalid("an iothread id is listed twice")
        if len(ids) > count:
            raise _invalid("more <iothreadids> than <iothreads>")
        free = (n for n in range(1, 1 << 20) if n not in ids)
        ids += [next(free) for _ in range(count - len(ids))]
        self.iothread_ids = set(ids)
        for n in ids:
            self.add("-object", _json({"qom-type": "iothread", "id": f"iothread{n}"}))

    def _iothread(self, driver_el: etree._Element | None, what: str) -> str | None:
        """The iothread a virtio device's ``<driver iothread='N'/>`` names, checked."""
        value = driver_el.get("iothread") if driver_el is not None else None
        if value is None:
            return None
        n = _int(value, f"iothread of {what}", minimum=1)
        if n not in self.iothread_ids:
            raise _invalid(f"{what} uses iothread {n}, which the domain does not define")
        return f"iothread{n}"

    def _os_boot(self, os_el: etree._Element) -> None:
        for tag, opt in (("kernel", "-kernel"), ("initrd", "-initrd"), ("cmdline", "-append")):
            el = _one(os_el, tag)
            if el is not None:
                _check(el, f"<os><{tag}>")
                value = el.text or ""
                if tag != "cmdline" and not value.strip():
                    raise _invalid(f"empty <{tag}>")
                self.add(opt, value)
        if _one(os_el, "kernel") is None and (_one(os_el, "initrd") is not None):
            raise _invalid("<initrd> without <kernel>")

    # -- clock, lifecycle, power management ---------------------------------------------------

    def _clock(self) -> None:
        clock = _one(self.root, "clock")
        if clock is None:
            self.add("-rtc", "base=utc")
            return
        offset = clock.get("offset", "utc")
        if offset not in ("utc", "localtime", "absolute"):
            raise _unsupported(f"clock offset '{offset}'")
        _check(clock, "<clock>", ("offset", "adjustment", "start"), ("timer",))
        if offset in ("utc", "localtime"):
            if clock.get("adjustment") not in (None, "reset"):
                raise _unsupported(f"clock adjustment '{clock.get('adjustment')}'")
            if clock.get("start") is not None:
                raise _unsupported(f"attribute 'start' of <clock offset='{offset}'>")
            rtc = f"base={offset}"
        elif offset == "absolute":
            if clock.get("adjustment") is not None:
                raise _unsupported("clock adjustment with offset 'absolute'")
            start = _int(clock.get("start"), "clock start")
            when = datetime.datetime.fromtimestamp(start, datetime.UTC)
            rtc = "base=" + when.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            raise _unsupported(f"clock offset '{offset}'")
        seen: set[str] = set()
        for timer in _children(clock):
            name = _choice(timer.get("name"), ("rtc", "pit", "hpet"), "timer")
            _check(timer, "<clock><timer>", ("name", "present", "tickpolicy"))
            if name in seen:
                raise _unsupported(f"more than one '{name}' timer")
            seen.add(name)
            policy = timer.get("tickpolicy")
            if name == "hpet":
                if policy is not None:
                    raise _unsupported("tickpolicy on the hpet timer")
                continue  # in -machine
            if timer.get("present", "yes") != "yes":
                raise _unsupported(f"timer '{name}' present '{timer.get('present')}'")
            if name == "rtc":
                if policy == "catchup":
                    rtc += ",driftfix=slew"
                elif policy not in (None, "delay"):
                    raise _unsupported(f"rtc timer tickpolicy '{policy}'")
            elif policy == "delay":
                # as libvirt; it only matters under KVM (TCG's PIT has no such property, and an unused
                # -global is harmless)
                self.add("-global", "kvm-pit.lost_tick_policy=delay")
            elif policy is not None:
                raise _unsupported(f"pit timer tickpolicy '{policy}'")
        self.add("-rtc", rtc)

    def _lifecycle(self, panics: list[etree._Element], watchdogs: list[etree._Element]) -> None:
        def action(tag: str, default: str) -> str:
            el = _one(self.root, tag)
            if el is None:
                return default
            _check(el, f"<{tag}>")
            return (el.text or "").strip()

        poweroff = action("on_poweroff", "destroy")
        reboot = action("on_reboot", "restart")
        crash = action("on_crash", "destroy")
        opts: list[str] = []
        if poweroff not in ("destroy", "preserve"):
            raise _unsupported(f"on_poweroff action '{poweroff}'")
        if reboot not in ("destroy", "restart", "preserve"):
            raise _unsupported(f"on_reboot action '{reboot}'")
        # QEMU: a reboot is either a reset or handled as a shutdown; a shutdown either exits or pauses.
        if reboot == "destroy":
            if poweroff == "preserve":
                raise _unsupported("on_reboot 'destroy' together with on_poweroff 'preserve'")
            opts.append("reboot=shutdown")
        elif reboot == "preserve":
            if poweroff != "preserve":
                raise _unsupported("on_reboot 'preserve' unless on_poweroff is 'preserve' too")
            opts.append("reboot=shutdown")
        if poweroff == "preserve":
            opts.append("shutdown=pause")
        # A panic is QEMU's default 'shutdown' (SHUTDOWN event with reason guest-panic, then the
        # shutdown action): that is 'destroy' unless shutdowns pause, where only exit-failure is.
        if crash == "preserve":
            opts.append("panic=pause")
        elif crash == "destroy":
            if poweroff == "preserve":
                opts.append("panic=exit-failure")
        else:
            raise _unsupported(f"on_crash action '{crash}'")
        for wd in watchdogs[:1]:
            act = wd.get("action", "reset")
            if act not in _WATCHDOG_ACTIONS:
                raise _unsupported(f"watchdog action '{act}'")
            if act != "reset":
                opts.append("watchdog=" + _WATCHDOG_ACTIONS[act])
        if opts:
            self.add("-action", ",".join(opts))

    def _pm(self) -> None:
        pm = _one(self.root, "pm")
        if pm is None:
            return
        _check(pm, "<pm>", (), ("suspend-to-mem", "suspend-to-disk"))
        lpc = "ICH9-LPC" if self.q35 else "PIIX4_PM"
        for el in _children(pm):
            _check(el, f"<pm><{_tag(el)}>", ("enabled",))
            enabled = _yes_no(el.get("enabled"), f"<{_tag(el)}> enabled")
            state = "s3" if _tag(el) == "suspend-to-mem" else "s4"
            self.add("-global", f"{lpc}.disable_{state}={0 if enabled else 1}")

    # -- boot order --------------------------------------------------------------------------

    def _boot_order(self, os_el: etree._Element, devs: list[etree._Element]) -> None:
        per_device: dict[int, etree._Element] = {}
        for dev in devs:
            boot = _one(dev, "boot") if _tag(dev) in ("disk", "interface") else None
            if boot is None:
                continue
            _check(boot, f"<{_tag(dev)}><boot>", ("order", "loadparm"))
            if boot.get("loadparm") is not None:
                raise _unsupported("boot loadparm")
            order = _int(boot.get("order"), "boot order", minimum=1)
            if order in per_device:
                raise _invalid(f"boot order {order} is used by more than one device")
            per_device[order] = dev
            self.bootindex[id(dev)] = order
        boots = [b for b in _children(os_el) if _tag(b) == "boot"]
        if boots and per_device:
            raise _invalid("per-device boot elements cannot be used together with os/boot elements")
        menu = _one(os_el, "bootmenu")
        opts = []
        if menu is not None:
            _check(menu, "<os><bootmenu>", ("enable", "timeout"))
            enabled = _yes_no(menu.get("enable"), "bootmenu enable")
            opts.append("menu=" + ("on" if enabled else "off"))
            if menu.get("timeout") is not None:
                opts.append(f"splash-time={_int(menu.get('timeout'), 'bootmenu timeout', maximum=65535)}")
        opts.append("strict=on")
        self.add("-boot", ",".join(opts))

        def first(pred: Callable[[etree._Element], bool]) -> etree._Element | None:
            return next((d for d in devs if pred(d)), None)

        index = 0
        for boot in boots:
            _check(boot, "<os><boot>", ("dev",))
            kind = _choice(boot.get("dev"), ("hd", "cdrom", "network", "fd"), "boot device")
            if kind == "fd":
                raise _unsupported("boot device 'fd'")
            if kind == "hd":
                chosen = first(lambda d: _tag(d) == "disk" and d.get("device", "disk") == "disk")
            elif kind == "cdrom":
                chosen = first(lambda d: _tag(d) == "disk" and d.get("device") == "cdrom")
            else:
                chosen = first(lambda d: _tag(d) == "interface")
            if chosen is not None and id(chosen) not in self.bootindex:
                index += 1
                self.bootindex[id(chosen)] = index

    # -- controllers -------------------------------------------------------------------------

    def _reserve_pci(self, devs: list[etree._Element]) -> None:
        """Explicit PCI addresses are taken before anything is placed automatically.

        The built-in controllers (pc's IDE at 00:01.1, q35's SATA at 00:1f.2) may carry their
        fixed address.  The primary video card then gets slot 2 (pc) or 1 (q35), as in libvirt,
        when free.
        """
        builtin = {("ide", "0"): _PciAddr(0, 1, 1)} if not self.q35 else {("sata", "0"): _PciAddr(0, 0x1F, 2)}
        for dev in devs:
            if _tag(dev) == "emulator":
                continue
            addr = _one(dev, "address")
            if addr is None or addr.get("type") != "pci":
                continue
            explicit = _pci_address(dev, f"<{_tag(dev)}>")
            assert explicit is not None
            fixed = builtin.get((dev.get("type") or "", dev.get("index", "0"))) if _tag(dev) == "controller" else None
            if fixed is not None:
                if attrs.evolve(explicit, multifunction=False) != fixed:
                    raise _unsupported(f"the built-in {dev.get('type')} controller at {explicit.text()}")
                continue
            self.pci.reserve(explicit, f"<{_tag(dev)}>")
        videos = [d for d in devs if _tag(d) == "video"]
        for n, video in enumerate(videos):
            model = _one(video, "model")
            if model is None or model.get("type") == "none" or _one(video, "address") is not None:
                continue
            if model.get("primary") == "yes" or (n == 0 and len(videos) == 1):
                slot = self.pci.free_root_slot(1 if self.q35 else 2)
                self.pci.used.add((0, slot, 0))
                self.primary_video = (id(video), slot)
                break

    def _plan_pci(self, by_tag: dict[str, list[etree._Element]]) -> None:
        """Give root-bus slots to the PCI devices without an address, in the order libvirt does.

        libvirt assigns controllers first, then NICs, virtio disks, the balloon, RNGs, the
        watchdog, secondary video cards, virtio inputs...; doing the same keeps the guest's
        PCI layout identical to what libvirt would have given it.
        """
        wanted: list[etree._Element] = []
        for ctl in self._controller_order(by_tag.get("controller", [])):
            ctype = ctl.get("type")
            index = _int(ctl.get("index", "0"), "controller index", maximum=255)
            if ctype == "pci" and index == 0:
                continue
            if ctype == "usb" and (ctl.get("model") == "none" or
                                   self._usb_driver(ctl.get("model")) == "piix3-usb-uhci"):
                continue
            if ctype == "sata" and self.q35 and index == 0:
                continue
            if ctype in ("pci", "usb", "sata", "scsi", "virtio-serial"):
                wanted.append(ctl)
        wanted += by_tag.get("interface", [])
        for disk in by_tag.get("disk", []):
            target = _one(disk, "target")
            dev = target.get("dev") or "" if target is not None else ""
            if (target is not None and target.get("bus")) == "virtio" or (target is not None and
                                                                             not target.get("bus") and
                                                                             dev.startswith("vd")):
                wanted.append(disk)
        wanted += [m for m in by_tag.get("memballoon", []) if m.get("model") != "none"]
        wanted += by_tag.get("rng", [])
        wanted += [w for w in by_tag.get("watchdog", []) if w.get("model") == "i6300esb"]
        primary = self.primary_video[0] if self.primary_video is not None else None
        for video in by_tag.get("video", []):
            model = _one(video, "model")
            if id(video) != primary and model is not None and model.get("type") != "none":
                wanted.append(video)
        wanted += [i for i in by_tag.get("input", []) if i.get("bus") == "virtio"]
        for serial in by_tag.get("serial", []):
            target = _one(serial, "target")
            if target is not None and target.get("type") == "pci-serial":
                wanted.append(serial)
        wanted += [p for p in by_tag.get("panic", []) if p.get("model") == "pvpanic"]
        for el in wanted:
            if _one(el, "address") is None:
                slot = self.pci.free_root_slot()
                self.pci.used.add((0, slot, 0))
                self.planned[id(el)] = _PciAddr(0, slot, 0)

    @staticmethod
    def _controller_order(controllers: list[etree._Element]) -> list[etree._Element]:
        """Command-line order of controllers: PCI, USB, SCSI, SATA, virtio-serial; by index in each."""
        groups = ("pci", "usb", "scsi", "sata", "virtio-serial")

        def key(ctl: etree._Element) -> tuple[int, int]:
            ctype = ctl.get("type") or ""
            index = _int(ctl.get("index", "0"), "controller index", maximum=255)
            return (groups.index(ctype) if ctype in groups else len(groups), index)

        return sorted(controllers, key=key)

    def _controllers(self, controllers: list[etree._Element], devs: list[etree._Element]) -> None:
        for ctl in controllers:
            ctype = ctl.get("type") or ""
            if ctype == "pci":
                _check(ctl, "<controller type='pci'>", ("type", "index", "model"), ("address", "alias", "model",
                                                                                     "target"))
            else:
                _check(ctl, f"<controller type='{ctype}'>", ("type", "index", "model", "ports", "vectors"),
                       ("address", "alias", "driver") if ctype == "scsi" else ("address", "alias"))
            index = _int(ctl.get("index", "0"), "controller index", maximum=255 if ctype == "pci" else 31)
            key = (ctype, index)
            if key in self.controllers:
                raise _invalid(f"more than one {ctype} controller with index {index}")
            self.controllers[key] = ctl
            model = ctl.get("model")
            if ctype not in ("virtio-serial", "usb") and (ctl.get("ports") is not None or
                                                          ctl.get("vectors") is not None):
                raise _unsupported(f"ports/vectors on a {ctype} controller")
            if ctype == "usb" and ctl.get("vectors") is not None:
                raise _unsupported("vectors on a usb controller")
            if ctype == "pci":
                root = "pcie-root" if self.q35 else "pci-root"
                if index == 0:
                    if model != root or _children(ctl):
                        raise _unsupported(f"PCI controller model '{model}' (index 0)")
                    continue
                if model not in ("pcie-root-port" if self.q35 else "pci-bridge",):
                    raise _unsupported(f"PCI controller model '{model}'" + (" on a q35 machine" if self.q35 else ""))
                self.pci.add_bus(index, single_slot=model == "pcie-root-port")
            elif ctype == "usb":
                if index != 0:
                    raise _unsupported("more than one USB controller")
                if model == "none":
                    self.usb_explicit_none = True
                else:
                    self.usb_model = self._usb_driver(model)
            elif ctype == "ide":
                if self.q35 or index != 0 or model not in (None, "piix3"):
                    raise _unsupported(f"IDE controller {index}" + (" on a q35 machine" if self.q35 else ""))
            elif ctype == "sata":
                if model is not None:
                    raise _unsupported(f"SATA controller model '{model}'")
            elif ctype == "scsi":
                if model not in (None, "virtio-scsi", "lsilogic"):
                    raise _unsupported(f"SCSI controller model '{model}'")
            elif ctype == "virtio-serial":
                if model is not None:
                    raise _unsupported(f"virtio-serial controller model '{model}'")
            else:
                raise _unsupported(f"controller type '{ctype}'")
        # USB devices need a controller
        needs_usb = any(_tag(d) == "input" and d.get("bus") == "usb" for d in devs)
        if needs_usb:
            if self.usb_explicit_none:
                raise _invalid("USB input devices need a USB controller, but the USB controller model is 'none'")
            if self.usb_model is None:
                self.usb_model = self._usb_driver(None)
        usb_done = False
        for ctl in self._controller_order(controllers):
            ctype = ctl.get("type") or ""
            index = _int(ctl.get("index", "0"), "controller index", maximum=255)
            if ctype == "pci" and index > 0:
                self._pci_controller(index, ctl)
            elif ctype == "usb":
                self._usb_controller()
                usb_done = True
            elif ctype in ("scsi", "sata", "virtio-serial"):
                self._ensure_controller(ctype, index)
        if not usb_done:
            self._usb_controller()

    def _usb_controller(self) -> None:
        if self.usb_model is None:
            return
        props: dict[str, Any] = {"driver": self.usb_model, "id": "usb"}
        ctl_el = self.controllers.get(("usb", 0))
        if ctl_el is not None and ctl_el.get("ports") is not None:
            if self.usb_model not in ("qemu-xhci", "nec-usb-xhci"):
                raise _unsupported(f"ports on a USB controller of driver '{self.usb_model}'")
            ports = _int(ctl_el.get("ports"), "USB controller ports", minimum=1, maximum=15)
            props.update(p2=ports, p3=ports)
        props["id"] = "usb"
        if self.usb_model == "piix3-usb-uhci" and (ctl_el is None or _one(ctl_el, "address") is None):
            fixed = _PciAddr(0, 1, 2)  # function 2 of the PIIX3, as on real hardware
            self.pci.reserve(fixed, "the USB controller")
            self.pci.place(props, "usb", fixed)
        else:
            self.place(props, "usb", ctl_el, "the USB controller")
        self.device(props)

    def _pci_controller(self, index: int, ctl: etree._Element) -> None:
        model = ctl.get("model") or ""
        name_el = _one(ctl, "model")
        if name_el is not None:
            _check(name_el, "<controller><model>", ("name",))
            if name_el.get("name") != model:
                raise _unsupported(f"PCI controller model name '{name_el.get('name')}'")
        target = _one(ctl, "target")
        if target is not None:
            _check(target, "<controller type='pci'><target>",
                   ("chassis", "port") if model == "pcie-root-port" else ("chassisNr",))
        qdev = f"pci.{index}"
        props: dict[str, Any] = {"driver": model}
        if model == "pcie-root-port":
            explicit = _pci_address(ctl, f"PCI controller {index}") or self.planned.get(id(ctl))
            if explicit is None:  # pragma: no cover - planned
                raise _invalid(f"PCI controller {index} has no address")
            default_port = (explicit.slot << 3) + explicit.function
            port = target.get("port") if target is not None else None
            chassis = target.get("chassis") if target is not None else None
            props["port"] = _int(port, "root port number", maximum=255) if port is not None else default_port
            props["chassis"] = _int(chassis, "root port chassis", maximum=255) if chassis is not None else index
        else:
            explicit = _pci_address(ctl, f"PCI controller {index}") or self.planned.get(id(ctl))
            nr = target.get("chassisNr") if target is not None else None
            props["chassis_nr"] = _int(nr, "bridge chassisNr", minimum=1, maximum=255) if nr is not None else index
        if explicit is not None and explicit.bus >= index and explicit.bus != 0:
            raise _invalid(f"PCI controller {index} must sit on a bus with a lower index")
        props["id"] = qdev
        self.place(props, qdev, ctl, f"PCI controller {index}")
        if model == "pci-bridge":
            self.pci.used.add((index, 0, 0))  # the bridge's SHPC slot
        self.device(props)

    def _usb_driver(self, model: str | None) -> str:
        if model is None:
            return "qemu-xhci" if self.q35 else "piix3-usb-uhci"
        drivers = {"piix3-uhci": "piix3-usb-uhci", "qemu-xhci": "qemu-xhci", "nec-xhci": "nec-usb-xhci"}
        if model not in drivers:
            raise _unsupported(f"USB controller model '{model}'")
        return drivers[model]

    def _ensure_controller(self, ctype: str, index: int) -> None:
        """Emit the -device for a controller the first time a device needs it."""
        key = ("emitted-" + ctype, index)
        if key in self.controllers:
            return
        ctl = self.controllers.get((ctype, index))
        self.controllers[key] = ctl if ctl is not None else etree.Element("controller")
        if ctype == "sata":
            if self.q35 and index == 0:
                return  # the ICH9's own AHCI, buses ide.0 .. ide.5
            props: dict[str, Any] = {"driver": "ahci", "id": f"sata{index}"}
        elif ctype == "scsi":
            model = ctl.get("model") if ctl is not None else None
            props = {"driver": "lsi" if model == "lsilogic" else "virtio-scsi-pci", "id": f"scsi{index}"}
            drv = _one(ctl, "driver") if ctl is not None else None
            if drv is not None:
                if model == "lsilogic":
                    raise _unsupported("a <driver> on an lsilogic SCSI controller")
                _check(drv, "<controller type='scsi'><driver>", ("iothread", "queues"))
                iothread = self._iothread(drv, f"SCSI controller {index}")
                if drv.get("queues") is not None:
                    props["num_queues"] = _int(drv.get("queues"), "SCSI controller queues", minimum=1, maximum=1024)
                if iothread is not None:
                    props["iothread"] = iothread
        elif ctype == "virtio-serial":
            props = {"driver": "virtio-serial-pci", "id": f"virtio-serial{index}"}
            if ctl is not None and ctl.get("ports") is not None:
                props["max_ports"] = _int(ctl.get("ports"), "virtio-serial ports", minimum=1, maximum=31)
            if ctl is not None and ctl.get("vectors") is not None:
                props["vectors"] = _int(ctl.get("vectors"), "virtio-serial vectors", maximum=1024)
        else:  # pragma: no cover - callers only ask for the above
            raise _unsupported(f"controller type '{ctype}'")
        self.place(props, str(props["id"]), ctl, f"{ctype} controller {index}")
        self.device(props)

    # -- disks -------------------------------------------------------------------------------

    def _disks(self, disks: list[etree._Element]) -> None:
        def has_image(disk: etree._Element) -> bool:
            source = _one(disk, "source")
            return source is not None and bool(source.get("file") or source.get("dev"))

        node_number = sum(1 for d in disks if has_image(d))  # libvirt counts down: the last disk is libvirt-1
        seen_targets: set[str] = set()
        for disk in disks:
            _check(
                disk, "<disk>", ("type", "device"),
                ("driver", "source", "target", "readonly", "shareable", "serial", "boot", "address", "alias",
                 "backingStore"),
            )
            dtype = _choice(disk.get("type", "file"), ("file", "block"), "disk type")
            device = _choice(disk.get("device", "disk"), ("disk", "cdrom"), "disk device")
            target = _one(disk, "target")
            if target is None:
                raise _invalid("a <disk> has no <target>")
            _check(target, "<disk><target>", ("dev", "bus", "tray"))
            dev = target.get("dev") or ""
            idx = _disk_index(dev)
            if dev in seen_targets:
                raise _invalid(f"target '{dev}' is used by more than one disk")
            seen_targets.add(dev)
            default_bus = {"h": "ide", "s": "scsi", "v": "virtio", "f": "fdc", "x": "xen", "u": "uml"}[dev[0]]
            bus = target.get("bus") or default_bus
            if bus not in ("virtio", "sata", "scsi", "ide"):
                raise _unsupported(f"disk bus '{bus}'")
            if target.get("tray") not in (None, "closed"):
                raise _unsupported(f"disk tray '{target.get('tray')}'")
            readonly_el = _one(disk, "readonly")
            shareable_el = _one(disk, "shareable")
            for flag in (readonly_el, shareable_el):
                if flag is not None:
                    _check(flag, f"<disk><{_tag(flag)}>")
            readonly = readonly_el is not None or device == "cdrom"
            backing = _one(disk, "backingStore")
            if backing is not None:
                _check(backing, "<disk><backingStore>")  # only the empty one: "no backing image"

            # backend
            source = _one(disk, "source")
            node: str | None = None
            driver_el = _one(disk, "driver")
            fmt = "raw"
            cache: tuple[bool, bool, bool] | None = None
            storage_extra: dict[str, Any] = {}
            format_extra: dict[str, Any] = {}
            if driver_el is not None:
                _check(driver_el, "<disk><driver>", ("name", "type", "cache", "io", "discard", "detect_zeroes",
                                                     "iothread"))
                if driver_el.get("name", "qemu") != "qemu":
                    raise _unsupported(f"disk driver name '{driver_el.get('name')}'")
                fmt = driver_el.get("type") or "raw"
                if fmt not in _DISK_FORMATS:
                    raise _unsupported(f"disk format '{fmt}'")
                if driver_el.get("cache") not in (None, "default"):
                    cache = _CACHE_MODES[_choice(driver_el.get("cache"), _CACHE_MODES, "disk cache mode")]
                if driver_el.get("io") is not None:
                    storage_extra["aio"] = _choice(driver_el.get("io"), ("native", "threads", "io_uring"), "disk io")
                    if storage_extra["aio"] == "native" and (cache is None or not cache[0]):
                        raise _invalid("disk io 'native' needs cache mode 'none' or 'directsync'")
                if driver_el.get("discard") is not None:
                    format_extra["discard"] = _choice(driver_el.get("discard"), ("unmap", "ignore"), "disk discard")
                if driver_el.get("detect_zeroes") is not None:
                    format_extra["detect-zeroes"] = _choice(
                        driver_el.get("detect_zeroes"), ("off", "on", "unmap"), "disk detect_zeroes"
                    )
            if cache is None and shareable_el is not None and not readonly:
                cache = _CACHE_MODES["none"]  # as libvirt: no host page cache under a disk two guests write
            if source is not None:
                attr = "file" if dtype == "file" else "dev"
                _check(source, "<disk><source>", (attr, "index"))
                path = source.get(attr)
                if not path:
                    if device == "cdrom":
                        source = None
                    else:
                        raise _invalid(f"disk '{dev}' has no source {attr}")
            if source is None and device == "disk":
                raise _invalid(f"disk '{dev}' has no source")
            if source is not None:
                path = source.get("file" if dtype == "file" else "dev") or ""
                if not path.startswith("/"):
                    raise _invalid(f"disk source path '{path}' is not absolute")
                node = f"libvirt-{node_number}-format"
                storage = f"libvirt-{node_number}-storage"
                node_number -= 1
                if dtype == "file":
                    driver = "file"
                else:
                    # host_cdrom (tray and media handling) only for what is recognisably a CD-ROM drive
                    is_drive = re.match(r"^/dev/(cdrom\d*|sr\d+|scd\d+)$", path) is not None
                    driver = "host_cdrom" if device == "cdrom" and is_drive else "host_device"
                sprops: dict[str, Any] = {
                    "driver": driver, "filename": path, "node-name": storage,
                    "auto-read-only": True, "discard": "unmap",
                }
                sprops.update(storage_extra)
                fprops: dict[str, Any] = {"node-name": node, "read-only": readonly, "driver": fmt}
                fprops.update(format_extra)
                if cache is not None:
                    sprops["cache"] = {"direct": cache[0], "no-flush": cache[1]}
                    fprops["cache"] = {"direct": cache[0], "no-flush": cache[1]}
                fprops["file"] = storage
                if backing is not None and fmt != "raw":
                    fprops["backing"] = None
                self.add("-blockdev", _json(sprops), "-blockdev", _json(fprops))
            elif driver_el is not None and (cache is not None or storage_extra or format_extra):
                raise _unsupported(f"driver options on the empty cdrom '{dev}'")

            # frontend
            props: dict[str, Any]
            if bus == "virtio":
                if device == "cdrom":
                    raise _unsupported("disk bus 'virtio' for a cdrom")
                qdev = _user_alias(disk, f"virtio-disk{idx}")
                props = {"driver": "virtio-blk-pci"}
                iothread = self._iothread(driver_el, f"disk '{dev}'")
                if iothread is not None:
                    props["iothread"] = iothread
                self.place(props, qdev, disk, f"disk '{dev}'")
            else:
                if driver_el is not None and driver_el.get("iothread") is not None:
                    raise _unsupported(f"an iothread for disk bus '{bus}'")
                addr = self._drive_address(disk, bus, idx, dev)
                controller, dbus, dtarget, unit = addr
                if bus == "ide":
                    if self.q35:
                        raise _unsupported("disk bus 'ide' on a q35 machine")
                    if controller != 0 or dbus > 1 or unit > 1 or dtarget != 0:
                        raise _invalid(f"IDE address {controller}:{dbus}:{dtarget}:{unit} of disk '{dev}'")
                    if self.controllers.get(("ide", 0)) is None:
                        self.controllers[("ide", 0)] = etree.Element("controller")
                    qdev = _user_alias(disk, f"ide{controller}-{dbus}-{unit}")
                    props = {"driver": "ide-cd" if device == "cdrom" else "ide-hd", "bus": f"ide.{dbus}",
                             "unit": unit}
                elif bus == "sata":
                    if dbus != 0 or dtarget != 0 or unit > 5:
                        raise _invalid(f"SATA address {controller}:{dbus}:{dtarget}:{unit} of disk '{dev}'")
                    self._ensure_controller("sata", controller)
                    ahci = "ide" if (self.q35 and controller == 0) else f"sata{controller}"
                    qdev = _user_alias(disk, f"sata{controller}-{dbus}-{unit}")
                    props = {"driver": "ide-cd" if device == "cdrom" else "ide-hd", "bus": f"{ahci}.{unit}"}
                else:
                    self._ensure_controller("scsi", controller)
                    ctl = self.controllers.get(("scsi", controller))
                    driver = "scsi-cd" if device == "cdrom" else "scsi-hd"
                    if ctl is not None and ctl.get("model") == "lsilogic":
                        if dtarget != 0 or dbus != 0 or unit > 6:
                            raise _invalid(f"SCSI address {controller}:{dbus}:{dtarget}:{unit} of disk '{dev}'")
                        qdev = _user_alias(disk, f"scsi{controller}-{dbus}-{unit}")
                        props = {"driver": driver, "bus": f"scsi{controller}.0", "scsi-id": unit}
                    else:
                        if dtarget > 255 or unit > 16383 or dbus != 0:
                            raise _invalid(f"SCSI address {controller}:{dbus}:{dtarget}:{unit} of disk '{dev}'")
                        qdev = _user_alias(disk, f"scsi{controller}-{dbus}-{dtarget}-{unit}")
                        props = {"driver": driver, "bus": f"scsi{controller}.0", "channel": dbus,
                                 "scsi-id": dtarget, "lun": unit}
                    props["device_id"] = f"drive-{qdev}"  # the guest-visible SCSI identity stays stable
                if readonly and device == "disk" and bus in ("ide", "sata"):
                    raise _unsupported(f"a read-only disk on bus '{bus}'")
            if node is not None:
                props["drive"] = node
            props["id"] = qdev
            if id(disk) in self.bootindex:
                props["bootindex"] = self.bootindex[id(disk)]
            serial = _one(disk, "serial")
            if serial is not None:
                _check(serial, "<disk><serial>")
                text = (serial.text or "").strip()
                if not re.match(r"^[A-Za-z0-9_. +-]{1,36}$", text):
                    raise _invalid(f"invalid disk serial '{text}'")
                props["serial"] = text
            if shareable_el is not None:
                props["share-rw"] = True
            if cache is not None and node is not None:
                props["write-cache"] = "on" if cache[2] else "off"
            self.device(props)
            self.disks.append((dev, qdev))
            if node is not None:
                self.disk_nodes.append((dev, node))

    def _drive_address(self, disk: etree._Element, bus: str, idx: int, dev: str) -> tuple[int, int, int, int]:
        addr = _one(disk, "address")
        if addr is not None:
            if addr.get("type") != "drive":
                raise _unsupported(f"address type '{addr.get('type')}' for disk '{dev}'")
            _check(addr, f"the <address> of disk '{dev}'", ("type", "controller", "bus", "target", "unit"))
            return (
                _int(addr.get("controller", "0"), "drive controller", maximum=31),
                _int(addr.get("bus", "0"), "drive bus", maximum=255),
                _int(addr.get("target", "0"), "drive target", maximum=255),
                _int(addr.get("unit", "0"), "drive unit", maximum=16383),
            )
        if bus == "ide":
            return idx // 4, (idx % 4) // 2, 0, idx % 2
        if bus == "sata":
            return idx // 6, 0, 0, idx % 6
        return idx // 7, 0, 0, idx % 7

    # -- network -----------------------------------------------------------------------------

    def _interfaces(self, interfaces: list[etree._Element]) -> None:
        for index, nic in enumerate(interfaces):
            _check(nic, "<interface>", ("type",),
                   ("mac", "source", "target", "model", "boot", "address", "alias", "driver", "link"))
            ntype = nic.get("type")
            qdev = _user_alias(nic, f"net{index}")
            netdev = f"host{qdev}"
            if ntype == "user":
                if _one(nic, "source") is not None:
                    raise _unsupported("<source> on a user-mode interface")
                ndprops: dict[str, Any] = {"type": "user", "id": netdev}
            elif ntype in ("bridge", "network"):
                source = _one(nic, "source")
                attr = "bridge" if ntype == "bridge" else "network"
                if source is None or not source.get(attr):
                    raise _invalid(f"interface {index} of type '{ntype}' has no source {attr}")
                _check(source, f"<interface type='{ntype}'><source>", (attr, "portgroup") if ntype == "network"
                       else (attr,))
                if source.get("portgroup") is not None:
                    raise _unsupported("network portgroup")
                if index not in self.taps:
                    self.needs_taps.append(index)
                    ndprops = {"type": "tap", "fd": "", "id": netdev}
                else:
                    fd = self.taps[index]
                    if fd < 0:
                        raise _invalid(f"invalid tap file descriptor {fd}")
                    ndprops = {"type": "tap", "fd": str(fd), "id": netdev}
            else:
                raise _unsupported(f"interface type '{ntype}'")
            target = _one(nic, "target")
            if target is not None:
                _check(target, "<interface><target>", ("dev", "managed"))
                if ntype == "user":
                    raise _unsupported("<target> on a user-mode interface")
            link = _one(nic, "link")
            if link is not None:
                _check(link, "<interface><link>", ("state",))
                if link.get("state") not in ("up", None):
                    raise _unsupported(f"interface link state '{link.get('state')}'")
            drv = _one(nic, "driver")
            if drv is not None:
                _check(drv, "<interface><driver>", ("name",))
                if drv.get("name", "qemu") != "qemu":
                    raise _unsupported(f"interface driver '{drv.get('name')}'")
            mac_el = _one(nic, "mac")
            if mac_el is None:
                raise _invalid(f"interface {index} has no MAC address")
            _check(mac_el, "<interface><mac>", ("address",))
            mac = (mac_el.get("address") or "").lower()
            if not re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", mac):
                raise VirtError(ErrorNumber.INVALID_MAC, mac, domain=ErrorDomain.QEMU)
            model_el = _one(nic, "model")
            model = _DEFAULT_NIC_MODEL
            if model_el is not None:
                _check(model_el, "<interface><model>", ("type",))
                model = model_el.get("type") or _DEFAULT_NIC_MODEL
            if model not in _NIC_MODELS:
                raise _unsupported(f"interface model '{model}'")
            self.add("-netdev", _json(ndprops))
            props: dict[str, Any] = {"driver": _NIC_MODELS[model], "netdev": netdev, "id": qdev, "mac": mac}
            if id(nic) in self.bootindex:
                props["bootindex"] = self.bootindex[id(nic)]
            self.place(props, qdev, nic, f"interface {index}")
            self.device(props)
            self.nics.append((mac, netdev))

    # -- character devices -------------------------------------------------------------------

    def _chardev(
        self, el: etree._Element, alias: str, device: str, what: str, default_path: str | None = None
    ) -> None:
        """``-chardev`` for a serial/console/channel source; records a :class:`Chardev`."""
        ctype = el.get("type") or "pty"
        source = _one(el, "source")
        protocol = _one(el, "protocol")
        log = _one(el, "log")
        path: str | None = None
        if ctype in ("pty", "null"):
            if source is not None and ctype == "null":
                raise _unsupported(f"<source> on a null {what}")
            if source is not None:
                _check(source, f"the <source> of {what}", ("path",))  # a live pty path: ignored on start
            opts = f"{ctype},id={alias}"
            kind = ctype
        elif ctype == "file":
            if source is None or not source.get("path"):
                raise _invalid(f"{what} of type 'file' has no source path")
            _check(source, f"the <source> of {what}", ("path", "append"))
            path = source.get("path") or ""
            opts = f"file,id={alias},path={_esc(path)}"
            if source.get("append") is not None:
                opts += ",append=" + _choice(source.get("append"), ("on", "off"), "file append")
            kind = "file"
        elif ctype == "unix":
            if source is None:
                source = etree.Element("source")
            _check(source, f"the <source> of {what}", ("path", "mode"))
            mode = _choice(source.get("mode", "bind"), ("bind", "connect"), "unix socket mode")
            path = source.get("path")
            if not path:
                if mode != "bind" or default_path is None:
                    raise _invalid(f"{what} of type 'unix' has no source path")
                path = default_path
            opts = f"socket,id={alias},path={_esc(path)}"
            if mode == "bind":
                opts += ",server=on,wait=off"
            kind = "unix"
        elif ctype == "tcp":
            if source is None:
                raise _invalid(f"{what} of type 'tcp' has no source")
            _check(source, f"the <source> of {what}", ("mode", "host", "service"))
            mode = _choice(source.get("mode", "bind"), ("bind", "connect"), "tcp socket mode")
            host = source.get("host") or ("127.0.0.1" if mode == "bind" else "")
            port = _int(source.get("service"), f"tcp service of {what}", minimum=1, maximum=65535)
            if not host or "," in host:
                raise _invalid(f"invalid tcp host of {what}")
            opts = f"socket,id={alias},host={host},port={port}"
            if protocol is not None:
                _check(protocol, f"the <protocol> of {what}", ("type",))
                if _choice(protocol.get("type"), ("raw", "telnet"), "chardev protocol") == "telnet":
                    opts += ",telnet=on"
            if mode == "bind":
                opts += ",server=on,wait=off"
            kind = "tcp"
        else:
            raise _unsupported(f"{what} type '{ctype}'")
        if protocol is not None and ctype != "tcp":
            raise _unsupported(f"<protocol> on a {ctype} {what}")
        if log is not None:
            _check(log, f"the <log> of {what}", ("file", "append"))
            if not log.get("file"):
                raise _invalid(f"the <log> of {what} has no file")
            opts += f",logfile={_esc(log.get('file') or '')}"
            if log.get("append") is not None:
                opts += ",logappend=" + _choice(log.get("append"), ("on", "off"), "log append")
        self.add("-chardev", opts)
        self.chardevs.append(Chardev(alias=alias, kind=kind, device=device, path=path))

    def _serials(self, serials: list[etree._Element], consoles: list[etree._Element]) -> None:
        ports: set[int] = set()
        for n, serial in enumerate(serials):
            _check(serial, "<serial>", ("type",), ("source", "target", "protocol", "log", "alias", "address"))
            if _one(serial, "address") is not None:
                raise _unsupported("an <address> on a <serial>")
            target = _one(serial, "target")
            port = n
            driver = "isa-serial"
            if target is not None:
                _check(target, "<serial><target>", ("type", "port"), ("model",))
                port = _int(target.get("port", str(n)), "serial port", maximum=3)
                ttype = target.get("type", "isa-serial")
                model = _one(target, "model")
                model_name = ttype
                if model is not None:
                    _check(model, "<serial><target><model>", ("name",))
                    model_name = model.get("name") or ttype
                if ttype not in ("isa-serial", "pci-serial") or model_name != ttype:
                    raise _unsupported(f"serial target type '{ttype}' (model '{model_name}')")
                driver = ttype
            if port in ports:
                raise _invalid(f"serial port {port} is used twice")
            ports.add(port)
            self.serial_ports[port] = serial
            name = f"serial{port}"
            alias = "char" + _user_alias(serial, name)
            self._chardev(serial, alias, name, f"serial port {port}")
            props: dict[str, Any] = {"driver": driver, "chardev": alias, "id": _user_alias(serial, name)}
            if driver == "isa-serial":
                props["index"] = port
            else:
                self.place(props, str(props["id"]), serial, f"serial port {port}")
            self.device(props)

    def _parallels(self, parallels: list[etree._Element]) -> None:
        ports: set[int] = set()
        for n, par in enumerate(parallels):
            _check(par, "<parallel>", ("type",), ("source", "target", "protocol", "log", "alias"))
            target = _one(par, "target")
            port = n
            if target is not None:
                _check(target, "<parallel><target>", ("port",))
                port = _int(target.get("port", str(n)), "parallel port", maximum=2)
            if port in ports:
                raise _invalid(f"parallel port {port} is used twice")
            ports.add(port)
            name = f"parallel{port}"
            qdev = _user_alias(par, name)
            self._chardev(par, "char" + qdev, name, f"parallel port {port}")
            self.device({"driver": "isa-parallel", "chardev": "char" + qdev, "id": qdev})

    def _consoles(self, consoles: list[etree._Element]) -> None:
        for n, console in enumerate(consoles):
            _check(console, "<console>", ("type", "tty"), ("source", "target", "protocol", "log", "alias"))
            target = _one(console, "target")
            ttype = "serial"
            port = n
            if target is not None:
                _check(target, "<console><target>", ("type", "port"))
                ttype = target.get("type") or "serial"
                port = _int(target.get("port", str(n)), "console port", maximum=31)
            name = f"console{n}"
            if ttype == "serial":
                if n != 0:
                    raise _unsupported("a serial console other than the first console")
                serial = self.serial_ports.get(port)
                if serial is None:
                    raise _invalid(f"console {n} refers to serial port {port}, which is not defined")
                twin = next(c for c in self.chardevs if c.device == f"serial{port}")
                if (console.get("type") or "pty") != (serial.get("type") or "pty"):
                    raise _invalid(f"console {n} and serial port {port} have different types")
                self.chardevs.append(attrs.evolve(twin, device=name))
            elif ttype == "virtio":
                self._ensure_controller("virtio-serial", 0)
                alias = "char" + _user_alias(console, name)
                self._chardev(console, alias, name, f"console {n}")
                self.device({"driver": "virtconsole", "chardev": alias, "id": _user_alias(console, name)})
            else:
                raise _unsupported(f"console target type '{ttype}'")

    def _channels(self, channels: list[etree._Element]) -> None:
        used_ports: set[int] = set()
        for ch in channels:
            addr = _one(ch, "address")
            if addr is not None:
                _check(addr, "the <address> of a <channel>", ("type", "controller", "bus", "port"))
                if addr.get("type") != "virtio-serial" or addr.get("controller", "0") != "0" or \
                        addr.get("bus", "0") != "0":
                    raise _unsupported("a channel address other than virtio-serial controller 0 bus 0")
                port = _int(addr.get("port"), "virtio-serial port", minimum=1, maximum=30)
                if port in used_ports:
                    raise _invalid(f"virtio-serial port {port} is used twice")
                used_ports.add(port)
        next_port = 1
        for n, ch in enumerate(channels):
            _check(ch, "<channel>", ("type",), ("source", "target", "protocol", "log", "alias", "address"))
            target = _one(ch, "target")
            if target is None or target.get("type") != "virtio":
                raise _unsupported(f"channel target type '{target.get('type') if target is not None else None}'")
            _check(target, "<channel><target>", ("type", "name", "state"))
            tname = target.get("name")
            if not tname or not re.match(r"^[A-Za-z0-9_.-]+$", tname):
                raise _invalid(f"invalid channel target name '{tname}'")
            self._ensure_controller("virtio-serial", 0)
            addr = _one(ch, "address")
            if addr is not None:
                port = _int(addr.get("port"), "virtio-serial port", minimum=1, maximum=30)
            else:
                while next_port in used_ports:
                    next_port += 1
                port = next_port
                used_ports.add(port)
            name = f"channel{n}"
            qdev = _user_alias(ch, name)
            alias = "char" + qdev
            self._chardev(ch, alias, name, f"channel {n}", str(self.domain_dir / f"{tname}.sock"))
            self.device({"driver": "virtserialport", "bus": "virtio-serial0.0", "nr": port, "chardev": alias,
                         "id": qdev, "name": tname})

    # -- input, graphics, video, audio --------------------------------------------------------

    def _inputs(self, inputs: list[etree._Element]) -> None:
        usb_port = 0
        for n, inp in enumerate(inputs):
            itype = _choice(inp.get("type"), ("mouse", "keyboard", "tablet"), "input type")
            _check(inp, "<input>", ("type", "bus"), ("alias", "address"))
            bus = inp.get("bus") or "ps2"
            qdev = _user_alias(inp, f"input{n}")
            if bus == "ps2":
                if itype == "tablet":
                    raise _unsupported("a PS/2 tablet")
                if _one(inp, "address") is not None:
                    raise _unsupported("an <address> on a PS/2 input")
                continue  # the i8042 of pc and q35 provides them
            if bus == "usb":
                driver = {"mouse": "usb-mouse", "keyboard": "usb-kbd", "tablet": "usb-tablet"}[itype]
                addr = _one(inp, "address")
                usb_port += 1
                port = str(usb_port)
                if addr is not None:
                    _check(addr, "the <address> of an <input>", ("type", "bus", "port"))
                    if addr.get("type") != "usb" or addr.get("bus", "0") != "0":
                        raise _unsupported(f"address type '{addr.get('type')}' for a USB input")
                    port = addr.get("port") or port
                    if not re.match(r"^[1-9][0-9]*(\.[1-9][0-9]*)*$", port):
                        raise _invalid(f"invalid USB port '{port}'")
                self.device({"driver": driver, "id": qdev, "bus": "usb.0", "port": port})
            elif bus == "virtio":
                driver = {"mouse": "virtio-mouse-pci", "keyboard": "virtio-keyboard-pci",
                          "tablet": "virtio-tablet-pci"}[itype]
                props: dict[str, Any] = {"driver": driver, "id": qdev}
                self.place(props, qdev, inp, f"input {n}")
                self.device(props)
            else:
                raise _unsupported(f"input bus '{bus}'")

    def _audio(self, audios: list[etree._Element], graphics: bool) -> None:
        if len(audios) > 1:
            raise _unsupported("more than one <audio> backend")
        for audio in audios:
            _check(audio, "<audio>", ("type", "id"))
            if audio.get("type") != "none":
                raise _unsupported(f"audio type '{audio.get('type')}'")
            self.audio_id = f"audio{_int(audio.get('id', '1'), 'audio id', minimum=1)}"
        if graphics and self.audio_id is None:
            self.audio_id = "audio1"  # else QEMU would probe host sound systems for the VNC audio channel
        if self.audio_id is not None:
            self.add("-audiodev", _json({"id": self.audio_id, "driver": "none"}))

    def _graphics(self, graphics: list[etree._Element]) -> None:
        if len(graphics) > 1:
            raise _unsupported("more than one <graphics>")
        for gfx in graphics:
            gtype = gfx.get("type")
            if gtype != "vnc":
                raise _unsupported(f"graphics type '{gtype}'")
            _check(gfx, "<graphics type='vnc'>", ("type", "port", "autoport", "listen", "keymap", "socket", "passwd",
                                                  "sharePolicy", "websocket", "powerControl"), ("listen",))
            listens = [c for c in _children(gfx) if _tag(c) == "listen"]
            if len(listens) > 1:
                raise _unsupported("more than one VNC <listen>")
            address = gfx.get("listen")
            socket: str | None = gfx.get("socket")
            no_listen = False
            for listen in listens:
                _check(listen, "<graphics><listen>", ("type", "address", "network", "socket"))
                ltype = listen.get("type", "address")
                if ltype == "address":
                    if listen.get("address"):
                        if address is not None and address != listen.get("address"):
                            raise _invalid("graphics 'listen' attribute does not match the <listen> address")
                        address = listen.get("address")
                elif ltype == "socket":
                    socket = listen.get("socket") or gfx.get("socket") or str(self.domain_dir / "vnc.sock")
                elif ltype == "none":
                    no_listen = True
                else:
                    raise _unsupported(f"VNC listen type '{ltype}'")
            autoport = gfx.get("autoport")
            port_attr = gfx.get("port")
            if autoport is not None:
                _choice(autoport, ("yes", "no"), "VNC autoport")
            opts: str
            if no_listen:
                opts = "none"
            elif socket is not None:
                opts = "vnc=unix:" + _esc(socket)
            else:
                host = address or "127.0.0.1"
                if not re.match(r"^[0-9A-Za-z.:-]+$", host):
                    raise _invalid(f"invalid VNC listen address '{host}'")
                if ":" in host:
                    host = f"[{host}]"
                port = _int(port_attr, "VNC port", minimum=0, maximum=65535) if port_attr not in (None, "-1") \
                    else None
                if autoport == "yes" or port is None:
                    port = self.requested_vnc_port
                if port is None:
                    opts = f"{host}:0,to={65535 - 5900}"  # QEMU takes the first free display
                else:
                    if port < 5900:
                        raise _unsupported(f"VNC port {port} (below 5900)")
                    self.vnc_port = port
                    opts = f"{host}:{port - 5900}"
            share = gfx.get("sharePolicy")
            if share is not None:
                opts += ",share=" + _choice(share, ("allow-exclusive", "force-shared", "ignore"), "VNC sharePolicy")
            websocket = gfx.get("websocket")
            if websocket is not None:
                if websocket == "-1":
                    raise _unsupported("an automatically allocated VNC websocket port")
                opts += f",websocket={_int(websocket, 'VNC websocket port', minimum=1, maximum=65535)}"
            if gfx.get("powerControl") is not None and _yes_no(gfx.get("powerControl"), "VNC powerControl"):
                opts += ",power-control=on"
            if gfx.get("passwd") is not None:
                # never on the command line: the driver sets it with QMP set_password before the guest runs
                self.vnc_password = gfx.get("passwd")
                opts += ",password=on"
            keymap = gfx.get("keymap")
            if keymap is not None:
                if not re.match(r"^[a-z]{2}(-[a-z]+)?$", keymap):
                    raise _invalid(f"invalid VNC keymap '{keymap}'")
                self.add("-k", keymap)
            if self.audio_id is not None:
                opts += f",audiodev={self.audio_id}"
            self.add("-vnc", opts)

    def _videos(self, videos: list[etree._Element]) -> None:
        for n, video in enumerate(videos):
            _check(video, "<video>", (), ("model", "address", "alias"))
            model = _one(video, "model")
            if model is None:
                raise _invalid("a <video> has no <model>")
            _check(model, "<video><model>", ("type", "vram", "heads", "primary", "ram", "vgamem", "vram64"))
            vtype = model.get("type") or "cirrus"
            primary = model.get("primary") == "yes" or (n == 0 and len(videos) == 1)
            heads = _int(model.get("heads", "1"), "video heads", minimum=1, maximum=16)
            qdev = _user_alias(video, f"video{n}")
            if vtype == "none":
                if len(videos) > 1:
                    raise _invalid("video model 'none' together with other video devices")
                continue
            props: dict[str, Any]
            if vtype in ("cirrus", "vga", "bochs"):
                if not primary and vtype != "bochs":
                    raise _unsupported(f"video model '{vtype}' as a secondary display")
                if heads != 1:
                    raise _unsupported(f"{heads} heads on a '{vtype}' video device")
                for bad in ("ram", "vram64"):
                    if model.get(bad) is not None:
                        raise _unsupported(f"attribute '{bad}' for video model '{vtype}'")
                driver = {"cirrus": "cirrus-vga", "vga": "VGA", "bochs": "bochs-display"}[vtype]
                props = {"driver": driver, "id": qdev}
                if vtype == "vga" and model.get("vgamem") is not None:
                    props["vgamem_mb"] = _int(model.get("vgamem"), "video vgamem", minimum=1024) // 1024
                elif vtype == "bochs" and model.get("vram") is not None:
                    props["vgamem"] = _int(model.get("vram"), "video vram", minimum=1024) * 1024
                elif vtype == "cirrus" and model.get("vgamem") is not None:
                    raise _unsupported("attribute 'vgamem' for video model 'cirrus'")
                # cirrus' and VGA's vram is fixed by QEMU; the value libvirt fills in (16384) is informative
            elif vtype == "qxl":
                props = {"driver": "qxl-vga" if primary else "qxl", "id": qdev, "max_outputs": heads}
                if model.get("ram") is not None:
                    props["ram_size"] = _int(model.get("ram"), "qxl ram", minimum=1024) * 1024
                if model.get("vram") is not None:
                    props["vram_size"] = _int(model.get("vram"), "qxl vram", minimum=1024) * 1024
                props["vram64_size_mb"] = _int(model.get("vram64", "0"), "qxl vram64") // 1024
                props["vgamem_mb"] = _int(model.get("vgamem", "16384"), "qxl vgamem", minimum=1024) // 1024
            elif vtype == "virtio":
                for bad in ("ram", "vram64", "vgamem"):
                    if model.get(bad) is not None:
                        raise _unsupported(f"attribute '{bad}' for video model 'virtio'")
                props = {"driver": "virtio-vga" if primary else "virtio-gpu-pci", "id": qdev, "max_outputs": heads}
            else:
                raise _unsupported(f"video model '{vtype}'")
            if self.primary_video is not None and self.primary_video[0] == id(video):
                self.planned[id(video)] = _PciAddr(0, self.primary_video[1], 0)
            self.place(props, qdev, video, f"video {n}")
            self.device(props)

    # -- misc devices ------------------------------------------------------------------------

    def _watchdogs(self, watchdogs: list[etree._Element]) -> None:
        if len(watchdogs) > 1:
            raise _unsupported("more than one <watchdog>")
        for wd in watchdogs:
            _check(wd, "<watchdog>", ("model", "action"), ("address", "alias"))
            model = wd.get("model") or ""
            if model not in _WATCHDOG_MODELS:
                raise _unsupported(f"watchdog model '{model}'")
            qdev = _user_alias(wd, "watchdog0")
            props: dict[str, Any] = {"driver": _WATCHDOG_MODELS[model], "id": qdev}
            if model == "i6300esb":
                self.place(props, qdev, wd, "the watchdog")
            elif _one(wd, "address") is not None:
                raise _unsupported("an <address> on an ib700 watchdog")
            self.device(props)

    def _memballoon(self, balloons: list[etree._Element]) -> None:
        if len(balloons) > 1:
            raise _unsupported("more than one <memballoon>")
        for mb in balloons:
            _check(mb, "<memballoon>", ("model", "autodeflate", "freePageReporting"), ("stats", "address", "alias"))
            model = mb.get("model")
            if model == "none":
                if len(_children(mb)) or mb.get("autodeflate") or mb.get("freePageReporting"):
                    raise _unsupported("options on a memballoon of model 'none'")
                continue
            if model not in ("virtio", "virtio-transitional", "virtio-non-transitional"):
                raise _unsupported(f"memballoon model '{model}'")
            driver = {"virtio": "virtio-balloon-pci", "virtio-transitional": "virtio-balloon-pci-transitional",
                      "virtio-non-transitional": "virtio-balloon-pci-non-transitional"}[model]
            props: dict[str, Any] = {"driver": driver, "id": "balloon0"}
            if mb.get("autodeflate") is not None:
                props["deflate-on-oom"] = _yes_no(mb.get("autodeflate"), "memballoon autodeflate", yes="on", no="off")
            if mb.get("freePageReporting") is not None:
                props["free-page-reporting"] = _yes_no(
                    mb.get("freePageReporting"), "memballoon freePageReporting", yes="on", no="off"
                )
            stats = _one(mb, "stats")
            if stats is not None:
                _check(stats, "<memballoon><stats>", ("period",))
                self.balloon_stats_period = _int(stats.get("period"), "memballoon stats period", maximum=2**31 - 1)
            if _one(mb, "alias") is not None and _user_alias(mb, "balloon0") != "balloon0":
                raise _unsupported("a user alias on the memballoon")
            self.place(props, "balloon0", mb, "the memballoon")
            self.device(props)

    def _rngs(self, rngs: list[etree._Element]) -> None:
        for n, rng in enumerate(rngs):
            _check(rng, "<rng>", ("model",), ("backend", "rate", "address", "alias"))
            if rng.get("model") != "virtio":
                raise _unsupported(f"rng model '{rng.get('model')}'")
            backend = _one(rng, "backend")
            if backend is None:
                raise _invalid("an <rng> has no <backend>")
            bmodel = backend.get("model")
            if bmodel not in ("random", "builtin"):
                raise _unsupported(f"rng backend model '{bmodel}'")
            _check(backend, "<rng><backend>", ("model",))
            obj = f"objrng{n}"
            if bmodel == "random":
                source = (backend.text or "").strip() or "/dev/urandom"
                if source not in _RNG_SOURCES:
                    raise _unsupported(f"rng source '{source}'")
                self.add("-object", _json({"qom-type": "rng-random", "id": obj, "filename": source}))
            elif bmodel == "builtin":
                if (backend.text or "").strip():
                    raise _unsupported("a source for the builtin rng backend")
                self.add("-object", _json({"qom-type": "rng-builtin", "id": obj}))
            else:
                raise _unsupported(f"rng backend model '{bmodel}'")
            qdev = _user_alias(rng, f"rng{n}")
            props: dict[str, Any] = {"driver": "virtio-rng-pci", "rng": obj, "id": qdev}
            rate = _one(rng, "rate")
            if rate is not None:
                _check(rate, "<rng><rate>", ("bytes", "period"))
                props["max-bytes"] = _int(rate.get("bytes"), "rng rate bytes", minimum=1)
                props["period"] = _int(rate.get("period", "1000"), "rng rate period", minimum=1)
            self.place(props, qdev, rng, f"rng {n}")
            self.device(props)

    def _panics(self, panics: list[etree._Element]) -> None:
        if len(panics) > 1:
            raise _unsupported("more than one <panic>")
        for panic in panics:
            _check(panic, "<panic>", ("model",), ("address", "alias"))
            model = panic.get("model") or "isa"
            if model == "isa":
                props: dict[str, Any] = {"driver": "pvpanic"}
                addr = _one(panic, "address")
                if addr is not None:
                    _check(addr, "the <address> of the panic device", ("type", "iobase"))
                    if addr.get("type") != "isa":
                        raise _unsupported(f"address type '{addr.get('type')}' for the isa panic device")
                    props["ioport"] = _int(addr.get("iobase"), "panic iobase", maximum=0xFFFF)
                self.device(props)
            elif model == "pvpanic":
                props = {"driver": "pvpanic-pci", "id": "panic0"}
                self.place(props, "panic0", panic, "the panic device")
                self.device(props)
            else:
                raise _unsupported(f"panic model '{model}'")

    def _qemu_commandline(self) -> None:
        """libvirt's escape hatch: ``<qemu:commandline><qemu:arg value=.../>`` is appended as is."""
        for cmdline in _children(self.root):
            if _tag(cmdline) != "qemu:commandline":
                continue
            _check(cmdline, "<qemu:commandline>", (), ("qemu:arg",))
            for arg in _children(cmdline):
                _check(arg, "<qemu:arg>", ("value",))
                value = arg.get("value")
                if value is None:
                    raise _invalid("<qemu:arg> without a value")
                self.add(value)


def build_command(
    root: etree._Element,
    *,
    emulator: str,
    domain_dir: pathlib.Path,
    kvm: bool,
    taps: Mapping[int, int] = {},
    vnc_port: int | None = None,
    incoming: str | None = None,
) -> CommandLine:
    """Translate a normalised ``<domain>`` into QEMU's argv (see the module docstring).

    :param root: the ``<domain>`` element, as ``DomainDocument.from_string(..., inactive=True)`` gives it.
    :param emulator: path of ``qemu-system-x86_64``; ``argv[0]``.
    :param domain_dir: the domain's private run-time directory (default channel / VNC socket paths).
    :param kvm: whether ``/dev/kvm`` is usable; a ``type='kvm'`` domain is refused without it.
    :param taps: tap fds, by index of the ``<interface>`` (bridge / network types).  An interface
        of those types without one gets ``"fd":""`` and its index in :attr:`CommandLine.needs_taps`:
        that argv must not be run.
    :param vnc_port: the port the driver allocated for ``autoport`` VNC.
    :param incoming: ``-incoming`` value, for a migration or a restore.
    :raises VirtError: ``CONFIG_UNSUPPORTED`` for whatever is not understood.
    """
    return _Builder(root, emulator, domain_dir, kvm, taps, vnc_port, incoming).build()
