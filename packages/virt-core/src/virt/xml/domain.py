"""Domain XML (``<domain>``): libvirt's generic parse / post-parse / validate, as a lossless tree.

:class:`DomainDocument` keeps the whole lxml tree (see :class:`~virt.xml._base.XMLDocument`).
``post_parse`` checks the definition the way libvirt's driver-neutral code does
(``virDomainDefParseXML`` + ``virDomainDefPostParse`` + ``virDomainDefValidate``) and rewrites the
tree into libvirt's canonical form: element and attribute order, defaults (``<clock>``,
lifecycle actions, ``<boot dev='hd'/>``, graphics listens, chardev source modes, video RAM...),
memory in KiB, implicit controllers and drive addresses, generated UUID and MAC addresses.
``to_string`` is then a plain walk of the tree, so ``format(parse(x))`` is a fixed point and costs
one tree walk.  Elements libvirt does not know are kept in place.

Behaviour was checked against libvirt 9.0 (the conformance corpus and its test driver); see
``tests/conformance/test_conf_domain.py``.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final, Self, TypeVar, cast

import attrs
from lxml import etree

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element, XMLDocument, format_element, format_tree, sub
from virt.xml._util import (
    new_uuid,
    only_first,
    pretty_lines,
    refuse_dot_name,
    set_attrs,
    sort_children,
    text_of,
)

__all__ = ["OS_TYPES", "VIRT_TYPES", "DiskInfo", "DomainDocument", "InterfaceInfo"]

_D: Final = ErrorDomain.DOMAIN
_E = ErrorNumber

#: ``<domain type=...>`` values libvirt 9.0 accepts (virDomainVirtType).
VIRT_TYPES: Final = frozenset({
    "none", "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware", "hyperv", "hvf",
    "vbox", "phyp", "parallels", "bhyve", "vz",
})
#: ``<os><type>`` values (virDomainOSType).
OS_TYPES: Final = frozenset({"hvm", "xen", "linux", "exe", "uml", "xenpvh"})
_ARCHES: Final = frozenset({
    "none", "alpha", "armv6l", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32",
    "loongarch64", "m68k", "microblaze", "microblazeel", "mips", "mipsel", "mips64",
    "mips64el", "openrisc", "parisc", "parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb",
    "riscv32", "riscv64", "s390", "s390x", "sh4", "sh4eb", "sparc", "sparc64", "unicore32",
    "x86_64", "xtensa", "xtensaeb",
})

# ---------------------------------------------------------------------------------------------
# errors and small parsers
# ---------------------------------------------------------------------------------------------


def _fail(detail: str, code: ErrorNumber = _E.XML_ERROR, domain: ErrorDomain = _D) -> VirtError:
    return VirtError(code, detail, domain=domain)


def _bad_attr(elem: Element, name: str, value: str, suffix: str = "") -> VirtError:
    """virXMLProp*'s message for an invalid attribute value."""
    return VirtError(
        _E.XML_ERROR,
        f"Invalid value for attribute '{name}' in element '{elem.tag}': '{value}'.{suffix}",
        domain=ErrorDomain.XML,
    )


def _missing_attr(elem: Element, name: str) -> VirtError:
    return VirtError(
        _E.XML_ERROR, f"Missing required attribute '{name}' in element '{elem.tag}'", domain=ErrorDomain.XML
    )


_UINT_SUFFIX = " Expected non-negative integer value"
_INT_SUFFIX = " Expected integer value"
_DIGITS = re.compile(r"^[ \t\n\r\f\v]*\+?[0-9]+$")
_SDIGITS = re.compile(r"^[ \t\n\r\f\v]*[-+]?[0-9]+$")


def _to_uint(text: str | None, limit: int = 0xFFFFFFFF) -> int | None:
    """virStrToLong_uip: a whole-string non-negative integer (leading blanks ok), else None."""
    if text is None or not _DIGITS.match(text):
        return None
    value = int(text)
    return value if value <= limit else None


def _to_int(text: str | None, bits: int = 32) -> int | None:
    if text is None or not _SDIGITS.match(text):
        return None
    value = int(text)
    lim = 1 << (bits - 1)
    return value if -lim <= value < lim else None


def _uint_attr(elem: Element, name: str, *, required: bool = False, limit: int = 0xFFFFFFFF) -> int | None:
    raw = elem.get(name)
    if raw is None:
        if required:
            raise _missing_attr(elem, name)
        return None
    value = _to_uint(raw, limit)
    if value is None:
        raise _bad_attr(elem, name, raw, _UINT_SUFFIX)
    return value


def _enum_attr(elem: Element, name: str, allowed: Iterable[str], *, required: bool = False) -> str | None:
    raw = elem.get(name)
    if raw is None:
        if required:
            raise _missing_attr(elem, name)
        return None
    if raw not in allowed:
        raise _bad_attr(elem, name, raw)
    return raw


_YESNO: Final = ("yes", "no")
_ONOFF: Final = ("on", "off")


# --- scaled integers ---------------------------------------------------------------------------

_POWERS: Final = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_ULLONG_MAX: Final = (1 << 64) - 1
#: VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, the largest memory size libvirt stores (KiB).
_MEM_UNLIMITED: Final = (1 << 53) - 1


def _scale(value: int, unit: str | None, default: int = 1024) -> int:
    """virScaleInteger: ``value`` times the multiplier of ``unit``."""
    if not unit:
        mult = default
    else:
        low = unit.lower()
        if low in ("b", "byte", "bytes"):
            mult = 1
        else:
            power = _POWERS.get(low[0])
            rest = low[1:]
            if power is None or rest not in ("", "ib", "b"):
                raise VirtError(_E.INVALID_ARG, f"unknown suffix '{unit}'")
            mult = (1000 if rest == "b" else 1024) ** power
    result = value * mult
    if result > _ULLONG_MAX:
        raise VirtError(_E.OVERFLOW, f"value too large: {value}{unit or ''}")
    return result


_PRETTY_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _pretty_size(value: int) -> tuple[int, str]:
    """virFormatIntPretty: the largest binary unit dividing ``value`` bytes exactly."""
    i = 0
    while i < len(_PRETTY_UNITS) - 1 and value and value % 1024 == 0:
        value //= 1024
        i += 1
    return value, _PRETTY_UNITS[i]


def _kib_of(elem: Element, xpath: str, *, text: str | None = None, unit_attr: str = "unit") -> int:
    """Parse a scaled size (element text or ``text``) into KiB, rounding up (virDomainParseMemory)."""
    raw = text_of(elem) if text is None else text
    value = _to_uint((raw or "").strip(), _ULLONG_MAX) if raw is not None else None
    if value is None:
        raise VirtError(
            _E.XML_ERROR, f"Invalid value '{raw or ''}' for element or attribute '{xpath}'", domain=ErrorDomain.XML
        )
    nbytes = _scale(value, elem.get(unit_attr))
    kib = -(-nbytes // 1024)
    if kib > _MEM_UNLIMITED and elem.tag not in ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee"):
        raise VirtError(_E.OVERFLOW, f"size {kib} in <{elem.tag}> must be less than {_MEM_UNLIMITED}")
    return kib


# --- bitmaps ----------------------------------------------------------------------------------

#: the largest bit a bitmap may set (libvirt grows bitmaps on demand; we cap to stay cheap).
_MAX_BIT: Final = 65535
_BITMAP_TOKEN = re.compile(r"^\s*(\^?)(\d+)(?:-(\d+))?\s*$")


def _parse_bitmap(text: str) -> set[int]:
    """virBitmapParse: ``'0-3,^2,8'`` -> {0, 1, 3, 8}."""
    result: set[int] = set()
    negated: set[int] = set()
    for token in text.split(","):
        m = _BITMAP_TOKEN.match(token)
        if m is None:
            raise VirtError(_E.INVALID_ARG, f"Failed to parse bitmap '{text}'")
        neg, start_s, end_s = m.groups()
        start = int(start_s)
        end = int(end_s) if end_s is not None else start
        if (neg and end_s is not None) or end < start or end > _MAX_BIT:
            raise VirtError(_E.INVALID_ARG, f"Failed to parse bitmap '{text}'")
        (negated if neg else result).update(range(start, end + 1))
    return result - negated


def _format_bitmap(bits: Iterable[int]) -> str:
    """virBitmapFormat: {0, 1, 3, 8} -> ``'0-1,3,8'``."""
    out: list[str] = []
    start = prev = -2
    for bit in sorted(bits):
        if bit == prev + 1:
            prev = bit
            continue
        if start >= 0:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = bit
    if start >= 0:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _canon_bitmap(raw: str, attr: str) -> str:
    """A bitmap attribute in libvirt's canonical form; an empty set is refused."""
    text = _format_bitmap(_parse_bitmap(raw))
    if not text:
        raise _fail(f"Invalid value of '{attr}': {raw}", _E.CONFIG_UNSUPPORTED)
    return text


def _bitmap_attr(elem: Element, name: str) -> set[int] | None:
    raw = elem.get(name)
    return None if raw is None else _parse_bitmap(raw)


# --- UUID / MAC -------------------------------------------------------------------------------

_HEX: Final = frozenset("0123456789abcdefABCDEF")


_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _parse_uuid(text: str) -> str | None:
    """virUUIDParse: 32 hex digits, '-' or ' ' allowed between byte pairs, surrounding blanks."""
    if _CANONICAL_UUID.fullmatch(text):
        return text  # already what the scan below would return
    s = text.lstrip()
    digits: list[str] = []
    i, n = 0, len(s)
    while len(digits) < 16:
        if i >= n:
            return None
        c = s[i]
        if c in "- ":
            i += 1
            continue
        if i + 1 >= n or c not in _HEX or s[i + 1] not in _HEX:
            return None
        digits.append(s[i : i + 2].lower())
        i += 2
    if s[i:].strip():
        return None
    h = "".join(digits)
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


_MAC_RE = re.compile(r"^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):"
                     r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})$")


def _parse_mac(text: str) -> str | None:
    m = _MAC_RE.match(text)
    if m is None:
        return None
    return ":".join(f"{int(g, 16):02x}" for g in m.groups())


# --- tree shaping -----------------------------------------------------------------------------


#: ``iterchildren`` filter for elements only (no comments or processing instructions).
_ELEMENTS: Any = etree.Element
_ATTR_RANKS: dict[tuple[str, ...], dict[str, int]] = {}


def _reorder_attrs(elem: Element, order: Sequence[str]) -> None:
    """The attributes named in ``order`` first, in that order, then the others as found."""
    keys = cast("list[str]", elem.keys())
    if len(keys) < 2:
        return
    key = tuple(order)
    rank = _ATTR_RANKS.get(key)
    if rank is None:
        rank = _ATTR_RANKS[key] = _rank_map(key)
    unnamed = len(key)
    ranks = [rank.get(k, unnamed) for k in keys]
    if ranks == sorted(ranks):
        return  # already so (the common case)
    set_attrs(elem, [(k, elem.get(k)) for k in order])


def _rank_map(order: Sequence[str]) -> dict[str, int]:
    return {tag: i for i, tag in enumerate(order)}


def _keep_open(elem: Element, depth: int) -> None:
    """Make a childless element print as ``<x>``, newline, ``</x>`` as libvirt does for the few
    elements it always opens (``<devices>``, ``<redirdev>``)."""
    if len([c for c in elem if isinstance(c.tag, str)]) == 0:
        elem.text = "\n" + "  " * depth
    elif elem.text is not None and not elem.text.strip():
        elem.text = None


def _drop(elem: Element) -> None:
    parent = elem.getparent()
    if parent is not None:
        parent.remove(elem)


def _replace_text(elem: Element, text: str) -> None:
    """Make ``text`` the whole content of ``elem`` (children of mixed content go)."""
    for c in list(elem):
        elem.remove(c)
    elem.text = text


def _first(parent: Element, tag: str) -> Element | None:
    """``parent.find(tag)`` for a plain tag name without ElementPath's parsing and generators
    (which find itself ends in): half the cost, and the normaliser looks up ~100 children."""
    return next(parent.iterchildren(tag), None)


def _iter_path(parent: Element, tags: Sequence[str]) -> Iterator[Element]:
    """``parent.iterfind("a/b/c")`` for plain tag names (``tags`` = a, b, c): the same
    iterchildren walk that ElementPath does, without parsing the path."""
    if len(tags) == 1:
        yield from parent.iterchildren(tags[0])
        return
    rest = tags[1:]
    for child in parent.iterchildren(tags[0]):
        yield from _iter_path(child, rest)


def _find_path(parent: Element, tags: Sequence[str]) -> Element | None:
    """``parent.find("a/b/c")`` for plain tag names (see :func:`_iter_path`)."""
    return next(_iter_path(parent, tags), None)


def _set_text_child(parent: Element, tag: str, text: str) -> Element:
    child = _first(parent, tag)
    if child is None:
        child = sub(parent, tag)
    elif len(child):
        for c in list(child):
            child.remove(c)
    child.text = text
    return child


_TEXT_TAGS: Final = frozenset({"name", "title", "description"})


def _strip_blank_text(root: Element) -> None:
    """Blank text in an element without children is indentation libvirt does not keep
    (``<controller ...>\n    </controller>`` prints as ``<controller .../>``).

    Blank text beside elements (an element's text before its first child, the tails of its
    children) is layout as well: the formatter ignores it and writes its own.  It goes too,
    unless the element also has text that is not blank (mixed content, which the formatter
    writes verbatim, blanks included), so that the tree serialises canonically as it is
    (``_base.format_tree``: ``to_string`` without a copy or a re-indent)."""
    beside: list[Element] = []  # elements with children, whose text is blank
    tails: list[Element] = []  # elements with a blank tail
    mixed: set[Element] = set()  # elements with children and text that is not blank
    text = root.text
    if text is not None:
        if text.strip():
            mixed.add(root)
        else:
            beside.append(root)
    for child in root:
        tail = child.tail
        if tail is not None:
            if tail.strip():
                mixed.add(root)
            else:
                tails.append(child)
        if child.tag == "metadata":
            continue
        for el in child.iter():
            text = el.text
            if len(el) == 0:
                if text is not None and not text.strip() and el.tag not in _TEXT_TAGS:
                    el.text = None
            elif text is not None:
                if text.strip():
                    mixed.add(el)
                else:
                    beside.append(el)
            if el is not child:
                tail = el.tail
                if tail is not None:
                    if tail.strip():
                        mixed.add(el.getparent())  # type: ignore[arg-type]
                    else:
                        tails.append(el)
    for el in beside:
        if el not in mixed:
            el.text = None
    for el in tails:
        if not mixed or el.getparent() not in mixed:
            el.tail = None


def _to_uint0(text: str | None, limit: int = 0xFFFFFFFF) -> int | None:
    """virStrToLong_uip with base 0: ``0x1f`` hex, ``017`` octal, else decimal."""
    if text is None:
        return None
    t = text.strip()
    try:
        if t[:2] in ("0x", "0X"):
            value = int(t[2:], 16)
        elif len(t) > 1 and t[0] == "0":
            value = int(t[1:], 8)
        else:
            if not t.isdigit():
                return None
            value = int(t)
    except ValueError:
        return None
    return value if 0 <= value <= limit else None


_ADDRESS_TYPES: Final = frozenset({
    "none", "pci", "drive", "virtio-serial", "ccid", "usb", "spapr-vio", "virtio-s390", "ccw",
    "virtio-mmio", "isa", "dimm", "unassigned",
})


def _addr_num(addr: Element, name: str, limit: int, what: str) -> int:
    raw = addr.get(name)
    if raw is None:
        return 0
    value = _to_uint0(raw, 0xFFFFFFFFFFFFFFFF)
    if value is None:
        raise _bad_attr(addr, name, raw, _UINT_SUFFIX)
    if value > limit:
        raise VirtError(_E.XML_ERROR, f"Invalid {what} address {name}='0x{value:x}', must be <= 0x{limit:X}")
    return value


def _pci_attrs(addr: Element) -> list[tuple[str, str | None]]:
    domain = _addr_num(addr, "domain", 0xFFFF, "PCI")
    bus = _addr_num(addr, "bus", 0xFF, "PCI")
    slot = _addr_num(addr, "slot", 0x1F, "PCI")
    function = _addr_num(addr, "function", 7, "PCI")
    multi = _enum_attr(addr, "multifunction", ("on", "off", "default"))
    return [("domain", f"0x{domain:04x}"), ("bus", f"0x{bus:02x}"), ("slot", f"0x{slot:02x}"),
            ("function", f"0x{function:x}"), ("multifunction", None if multi == "default" else multi)]


def _normalise_address(addr: Element) -> None:
    """virDomainDeviceInfoParseAddress + virDomainDeviceInfoFormat for a device's <address>."""
    atype = addr.get("type")
    if atype is None:
        raise _missing_attr(addr, "type")
    if atype not in _ADDRESS_TYPES:
        raise _fail(f"unknown address type '{atype}'", _E.CONFIG_UNSUPPORTED)

    def num(name: str, fmt: str = "{}", default: int | None = 0) -> str | None:
        raw = addr.get(name)
        if raw is None:
            return None if default is None else fmt.format(default)
        value = _to_uint0(raw, 0xFFFFFFFFFFFFFFFF)
        if value is None:
            raise _bad_attr(addr, name, raw, _UINT_SUFFIX)
        return fmt.format(value)

    pairs: list[tuple[str, str | None]] = [("type", atype)]
    if atype == "pci":
        pci = _pci_attrs(addr)
        if any(v not in ("0x0000", "0x00", "0x0") for _, v in pci[:4]):
            pairs += pci
        zpci = _first(addr, "zpci")
        if zpci is not None:
            uid = _to_uint0(zpci.get("uid"), 0xFFFF)
            fid = _to_uint0(zpci.get("fid"))
            set_attrs(zpci, (("uid", None if uid is None else f"0x{uid:04x}"),
                              ("fid", f"0x{fid or 0:08x}")), keep_unknown=False)
    elif atype == "drive":
        pairs += [("controller", num("controller")), ("bus", num("bus")), ("target", num("target")),
                  ("unit", num("unit"))]
    elif atype == "virtio-serial":
        pairs += [("controller", num("controller")), ("bus", num("bus")), ("port", num("port"))]
    elif atype == "ccid":
        pairs += [("controller", num("controller")), ("slot", num("slot"))]
    elif atype == "usb":
        pairs += [("bus", num("bus")), ("port", addr.get("port"))]
    elif atype == "spapr-vio":
        pairs += [("reg", num("reg", "0x{:08x}", None))]
    elif atype == "ccw":
        pairs += [("cssid", num("cssid", "0x{:x}")), ("ssid", num("ssid", "0x{:x}")),
                  ("devno", num("devno", "0x{:04x}"))]
    elif atype == "isa":
        iobase = _to_uint0(addr.get("iobase"))
        irq = _to_uint0(addr.get("irq"))
        pairs += [("iobase", f"0x{iobase:x}" if iobase else None), ("irq", f"0x{irq:x}" if irq else None)]
    elif atype == "dimm":
        base = _to_uint0(addr.get("base"), 0xFFFFFFFFFFFFFFFF)
        pairs += [("slot", num("slot")), ("base", f"0x{base:x}" if base else None)]
    set_attrs(addr, pairs, keep_unknown=False)


_INFO_TAGS: Final = {"boot": 1, "alias": 2, "master": 3, "acpi": 4, "rom": 5, "address": 6}


def _sort_device_info(dev: Element) -> None:
    """The device info (boot, alias, master, acpi, rom, address) goes last, in that order."""
    children = list(dev.iterchildren(_ELEMENTS))
    get = _INFO_TAGS.get
    keys = [get(c.tag, 0) for c in children]
    if keys == sorted(keys):
        return
    for i in sorted(range(len(children)), key=lambda i: (keys[i], i)):
        dev.append(children[i])


# ---------------------------------------------------------------------------------------------
# element orders (virDomainDefFormatInternal)
# ---------------------------------------------------------------------------------------------

_TOP_ORDER: Final = (
    "name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
    "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
    "iothreadids", "defaultiothread", "cputune", "numatune", "resource", "sysinfo", "bootloader",
    "bootloader_args", "os", "idmap", "features", "cpu", "clock", "on_poweroff", "on_reboot",
    "on_crash", "on_lockfailure", "pm", "perf", "devices", "seclabel", "keywrap",
    "launchSecurity",
)
_TOP_RANK: Final = _rank_map(_TOP_ORDER)
_TOP_MULTI: Final = frozenset({"seclabel"})

_DEVICE_ORDER: Final = (
    "emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard", "serial",
    "parallel", "console", "channel", "input", "tpm", "graphics", "sound", "audio", "video",
    "hostdev", "redirdev", "redirfilter", "hub", "watchdog", "memballoon", "rng", "nvram",
    "panic", "shmem", "memory", "iommu", "vsock", "crypto",
)
_DEVICE_RANK: Final = _rank_map(_DEVICE_ORDER)

_OS_RANK: Final = _rank_map((
    "type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "shim", "dtb", "root", "acpi",
    "boot", "bootmenu", "bios", "smbios", "init", "initarg", "initenv", "initdir", "inituser",
    "initgroup",
))

#: virDomainFeature: libvirt prints <features> children in this (enum) order.
_FEATURES_RANK: Final = _rank_map((
    "acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm", "pvspinlock", "capabilities",
    "pmu", "vmport", "gic", "smm", "ioapic", "hpt", "vmcoreinfo", "htm", "nested-hv", "msrs",
    "ccf-assist", "xen", "cfpc", "sbbc", "ibs", "tcg", "async-teardown",
))
_BLKIOTUNE_RANK: Final = _rank_map(("weight", "device"))
_BLKIO_DEVICE_RANK: Final = _rank_map((
    "path", "weight", "read_iops_sec", "write_iops_sec", "read_bytes_sec", "write_bytes_sec",
))
_LOADER_ATTRS: Final = ("readonly", "secure", "type", "stateless")

_BACKING_MEM_RANK: Final = _rank_map((
    "hugepages", "nosharepages", "locked", "source", "access", "allocation", "discard",
))
_CPU_RANK: Final = _rank_map(("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa"))

_CPUTUNE_ORDER: Final = (
    "shares", "period", "quota", "global_period", "global_quota", "emulator_period",
    "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
    "iothreadpin", "emulatorsched", "vcpusched", "iothreadsched", "cachetune", "memorytune",
)
_CPUTUNE_RANK: Final = _rank_map(_CPUTUNE_ORDER)

# children of a character device: source(s), protocol, log, target, then the device info
_CHR_RANK: Final = _rank_map((
    "source", "protocol", "log", "target", "boot", "alias", "master", "acpi", "rom", "address",
))

_LIFECYCLE: Final = (
    ("on_poweroff", "destroy", ("destroy", "restart", "rename-restart", "preserve")),
    ("on_reboot", "restart", ("destroy", "restart", "rename-restart", "preserve")),
    ("on_crash", "destroy",
     ("destroy", "restart", "rename-restart", "preserve", "coredump-destroy", "coredump-restart")),
)
_LOCKFAILURE: Final = ("default", "poweroff", "restart", "pause", "ignore")
_CLOCK_OFFSETS: Final = ("utc", "localtime", "variable", "timezone", "absolute")

_CHR_TYPES: Final = frozenset({
    "null", "vc", "pty", "dev", "file", "pipe", "stdio", "udp", "tcp", "unix", "spicevmc",
    "spiceport", "nmdm", "qemu-vdagent", "dbus",
})
_CHR_DEVICES: Final = ("serial", "parallel", "console", "channel")
_SCHED_POLICIES: Final = ("batch", "idle", "fifo", "rr")
_GRAPHICS_TYPES: Final = ("sdl", "vnc", "rdp", "desktop", "spice", "egl-headless", "dbus")
_LISTEN_TYPES: Final = ("none", "address", "network", "socket")
_CACHE_TYPES: Final = ("both", "code", "data")

# disk buses as ordered/assigned by virDomainDiskDefAssignAddress
_DISK_PREFIX_BUS: Final = (("xvd", "xen"), ("ubd", "uml"), ("hd", "ide"), ("fd", "fdc"), ("sd", "scsi"),
                           ("vd", "virtio"))
_DISK_NAME_RE = re.compile(r"^(fd|hd|vd|sd|xvd|ubd)([a-z]+)([0-9]*)$")
_DRIVE_UNITS: Final = {"ide": (4, 2, 2), "fdc": (2, 1, 2), "scsi": (7, 1, 7), "sata": (6, 1, 6)}
_VNET_PREFIXES: Final = ("vnet", "macvtap", "macvlan")
_DISK_RANK: Final = _rank_map((
    "driver", "auth", "source", "backingStore", "backenddomain", "geometry", "blockio", "mirror",
    "target", "iotune", "readonly", "shareable", "transient", "serial", "wwn", "vendor", "product",
    "encryption", "boot", "alias", "master", "acpi", "rom", "address",
))
_DISK_DRIVER_ATTRS: Final = (
    "name", "type", "cache", "error_policy", "rerror_policy", "io", "ioeventfd", "event_idx",
    "copy_on_read", "discard", "iothread", "detect_zeroes", "queues", "queue_size", "iommu", "ats",
    "packed", "page_per_vq",
)
_BACKING_RANK: Final = _rank_map(("format", "source", "backingStore"))
_NET_DISK_PORTS: Final = {
    "nbd": 10809, "iscsi": 3260, "sheepdog": 7000, "gluster": 24007, "http": 80, "https": 443,
    "ftp": 21, "ftps": 990, "tftp": 69, "ssh": 22, "vxhs": 9999,
}
_NET_MODELS: Final = {m.lower(): m for m in (
    "virtio", "virtio-transitional", "virtio-non-transitional", "e1000", "e1000e", "rtl8139",
    "netfront", "usb-net", "spapr-vlan", "lan9118", "smc91c111", "vlance", "vmxnet", "vmxnet2",
    "vmxnet3", "Am79C970A", "Am79C973", "82540EM", "82545EM", "82543GC",
)}
_NET_HOSTDEV_RANK: Final = _rank_map((
    "mac", "driver", "source", "vlan", "virtualport", "bandwidth", "ip", "route", "script",
    "downscript", "backenddomain", "target", "guest", "model", "backend", "filterref", "tune",
    "teaming", "link", "mtu", "coalesce", "port", "boot", "alias", "master", "acpi", "rom",
    "address",
))
_NET_RANK: Final = _rank_map((
    "mac", "source", "vlan", "virtualport", "bandwidth", "ip", "route", "script", "downscript",
    "backenddomain", "target", "guest", "model", "driver", "backend", "filterref", "tune",
    "teaming", "link", "mtu", "coalesce", "port", "boot", "alias", "master", "acpi", "rom",
    "address",
))

# video (virDomainVideoDefaultRAM)
_VIDEO_TYPES: Final = frozenset({
    "default", "vga", "cirrus", "vmvga", "xen", "vbox", "qxl", "parallels", "virtio", "gop", "none",
    "bochs", "ramfb",
})


def _disk_index(name: str | None) -> int:
    """virDiskNameToIndex: ``sda`` -> 0, ``hdc`` -> 2, ``vdaa`` -> 26; -1 when not a disk name."""
    if name is None:
        return -1
    m = _DISK_NAME_RE.match(name)
    if m is None:
        return -1
    idx = 0
    for ch in m.group(2):
        idx = idx * 26 + (ord(ch) - ord("a") + 1)
    return idx - 1


def _video_default_ram(video_type: str, virt_type: str) -> int:
    if video_type in ("vga", "cirrus", "vmvga", "bochs"):
        if virt_type == "vbox":
            return 8 * 1024
        if virt_type == "vmware":
            return 4 * 1024
        return 16 * 1024
    if video_type == "xen":
        return 4 * 1024
    if video_type == "qxl":
        return 64 * 1024
    if video_type == "vbox":
        return 8 * 1024
    return 0


def _pow2_ceil(value: int) -> int:
    return 1 << (value - 1).bit_length() if value > 0 else 0


# ---------------------------------------------------------------------------------------------
# public records
# ---------------------------------------------------------------------------------------------


@attrs.frozen
class DiskInfo:
    """One ``<disk>``: ``source`` is its file / dev / dir / name (volume: ``pool/volume``)."""

    type: str | None
    device: str
    source: str | None
    target: str | None
    bus: str | None
    driver_type: str | None
    readonly: bool


@attrs.frozen
class InterfaceInfo:
    """One ``<interface>``: ``source`` is the network / bridge / dev / ... it attaches to."""

    type: str | None
    source: str | None
    target_dev: str | None
    model: str | None
    mac: str | None


_SOURCE_KEYS: Final = ("file", "dev", "dir", "name", "network", "bridge", "path", "volume", "pool")


def _disk_source(disk: Element) -> str | None:
    src = _first(disk, "source")
    if src is None:
        return None
    if disk.get("type") == "volume" and src.get("volume") is not None:
        pool = src.get("pool")
        return f"{pool}/{src.get('volume')}" if pool else src.get("volume")
    for key in ("file", "dev", "dir", "name", "path"):
        value = src.get(key)
        if value is not None:
            return value
    return None


# ---------------------------------------------------------------------------------------------
# the normaliser: one pass over the tree per post_parse
# ---------------------------------------------------------------------------------------------


class _Normalizer:
    """Carries the state of one post-parse (the parsed vcpu count, os type, ...)."""

    def __init__(self, root: Element, *, inactive: bool, default_arch: str, video_type: str,
                 mac_prefix: str, first_parse: bool = False, console_target: str = "serial") -> None:
        self.root = root
        self.console_target = console_target
        self.inactive = inactive
        self.first_parse = first_parse
        self.default_arch = default_arch
        self.video_type = video_type
        self.mac_prefix = mac_prefix
        self.virt_type = ""
        self.os_type = ""
        self.max_vcpus = 1
        self.iothread_ids: list[int] = []
        self._top_index: dict[str, Element] | None = None

    # -- the root's children --------------------------------------------------------------------

    def _top(self, tag: str) -> Element | None:
        """``_first(self.root, tag)`` from an index of the root's children, built on first use
        (after ``_dedupe_top``).  The steps keep it current: they add children to the root only
        with ``_sub_top``/``_set_top_text``, and an element removed since is noticed here (it
        has no parent any more)."""
        index = self._top_index
        if index is None:
            index = self._top_index = {}
            for child in self.root:
                index.setdefault(child.tag, child)
        el = index.get(tag)
        if el is not None and el.getparent() is not self.root:
            el = _first(self.root, tag)
            if el is None:
                del index[tag]
            else:
                index[tag] = el
        return el

    def _sub_top(self, tag: str, attrib: dict[str, str] | None = None) -> Element:
        el = sub(self.root, tag, attrib)
        if self._top_index is not None and self._top(tag) is None:
            self._top_index[tag] = el
        return el

    def _set_top_text(self, tag: str, text: str) -> Element:
        child = self._top(tag)
        if child is None:
            child = self._sub_top(tag)
        elif len(child):
            for c in list(child):
                child.remove(c)
        child.text = text
        return child

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> None:
        root = self.root
        self._root_attrs()
        self._dedupe_top()
        self._identity()
        self._memory()
        self._vcpus()
        self._iothreads()
        self._os()
        self._cputune()
        self._cpu()
        self._misc()
        self._lifecycle()
        devices = self._top("devices")
        if devices is None:
            devices = self._sub_top("devices")
        _DeviceNormalizer(self, devices).run()
        self._boot_order(devices)
        sort_children(root, _TOP_RANK, ns_rank=len(_TOP_ORDER))
        _strip_blank_text(root)
        _keep_open(devices, 1)
        for redir in devices.iterchildren("redirdev"):
            _keep_open(redir, 2)
        # drop namespace declarations nothing uses any more (metadata children keep theirs)
        etree.cleanup_namespaces(root)

    def default_video(self) -> str:
        """The video model of a ``<video>`` without one (PPC64 guests get VGA, as in libvirt)."""
        os_type = _find_path(self.root, ("os", "type"))
        arch = os_type.get("arch") if os_type is not None else None
        if self.video_type == "cirrus" and arch in ("ppc64", "ppc64le"):
            return "vga"
        return self.video_type

    # -- features, memory backing, numatune ----------------------------------------------------

    def _misc(self) -> None:
        root = self.root
        features = self._top("features")
        if features is not None:
            sort_children(features, _FEATURES_RANK)
        blkiotune = self._top("blkiotune")
        if blkiotune is not None:
            self._blkiotune(blkiotune)
        hyperv = _find_path(root, ("features", "hyperv"))
        if hyperv is not None and hyperv.get("mode") is None:
            hyperv.set("mode", "custom")
            _reorder_attrs(hyperv, ("mode",))
        backing = self._top("memoryBacking")
        if backing is not None:
            sort_children(backing, _BACKING_MEM_RANK)
        numatune = self._top("numatune")
        if numatune is not None:
            mem = _first(numatune, "memory")
            if mem is not None:
                nodeset = mem.get("nodeset")
                vcpu = self._top("vcpu")
                if mem.get("placement") is None and nodeset is None and vcpu is not None \
                        and vcpu.get("placement") == "auto":
                    mem.set("placement", "auto")
                if mem.get("placement") == "auto":
                    nodeset = None
                elif nodeset is not None:
                    nodeset = _canon_bitmap(nodeset, "nodeset")
                set_attrs(mem, (("mode", mem.get("mode") or "strict"), ("placement", mem.get("placement")),
                                 ("nodeset", nodeset)))
            nodes: dict[int, Element] = {}
            for node in list(numatune.iterchildren("memnode")):
                cid = _uint_attr(node, "cellid", required=True)
                assert cid is not None
                raw = node.get("nodeset")
                if raw is not None:
                    node.set("nodeset", _canon_bitmap(raw, "nodeset"))
                numatune.remove(node)
                nodes[cid] = node
            for cid in sorted(nodes):
                numatune.append(nodes[cid])
            sort_children(numatune, _rank_map(("memory", "memnode")))
        os_el = self._top("os")
        if os_el is not None:
            menu = _first(os_el, "bootmenu")
            if menu is not None and menu.get("enable") == "no" and "timeout" in menu.attrib:
                del menu.attrib["timeout"]
            elif menu is not None and menu.get("timeout") is not None:
                timeout = _to_uint(menu.get("timeout"))
                if timeout is None or timeout > 65535:
                    raise _fail("invalid value for boot menu timeout, must be in range [0,65535]",
                                _E.CONFIG_UNSUPPORTED)
        models: set[str] = set()
        for label in list(root.iterchildren("seclabel")):
            model = label.get("model")
            if model is None:
                continue
            if model in models:
                raise _fail(f"seclabel for model {model} is already provided", _E.XML_DETAIL)
            models.add(model)
        for tpm in _iter_path(root, ("devices", "tpm")):
            if _first(tpm, "backend") is None:
                raise _fail("missing TPM device backend")
        cpu = self._top("cpu")
        if cpu is not None and not cpu.attrib and not any(isinstance(c.tag, str) for c in cpu):
            root.remove(cpu)
        hole = _find_path(root, ("devices", "controller", "pcihole64"))
        if hole is not None:
            _replace_text(hole, str(_kib_of(hole, "./pcihole64")))
            set_attrs(hole, (("unit", "KiB"),), keep_unknown=False)
        page = _find_path(root, ("features", "hpt", "maxpagesize"))
        if page is not None:
            _replace_text(page, str(_kib_of(page, "./features/hpt/maxpagesize")))
            set_attrs(page, (("unit", "KiB"),), keep_unknown=False)
        if self.inactive:
            for label in list(root.iterchildren("seclabel")):
                for image in list(label.iterchildren("imagelabel")):
                    label.remove(image)
                if label.get("type") == "dynamic":
                    for lab in list(label.iterchildren("label")):
                        label.remove(lab)
        maxphys = _find_path(root, ("cpu", "maxphysaddr"))
        if maxphys is not None:
            _reorder_attrs(maxphys, ("mode", "bits"))

    def _blkiotune(self, tune: Element) -> None:
        """virDomainDefFormatBlkiotune: a weight first, then the devices in their order, each
        with its path and non-zero values in a fixed order; nothing left, no element."""
        for el in list(tune):
            if el.tag == "weight" and _to_uint((text_of(el) or "").strip()) == 0:
                tune.remove(el)
            elif el.tag == "device":
                for value in list(el):
                    if value.tag != "path" and _to_uint((text_of(value) or "").strip()) == 0:
                        el.remove(value)
                sort_children(el, _BLKIO_DEVICE_RANK)
                if all(c.tag == "path" for c in el):
                    tune.remove(el)
        sort_children(tune, _BLKIOTUNE_RANK)
        if len(tune) == 0:
            self.root.remove(tune)

    # -- <domain> ---------------------------------------------------------------------------

    def _root_attrs(self) -> None:
        root = self.root
        virt_type = root.get("type")
        if virt_type is None:
            raise _fail("missing domain type attribute", _E.INTERNAL_ERROR)
        if virt_type not in VIRT_TYPES:
            raise _fail(f"invalid domain type {virt_type}", _E.CONFIG_UNSUPPORTED)
        self.virt_type = virt_type
        dom_id = root.get("id")
        if dom_id is not None:
            value = _to_int(dom_id)
            if value is None:
                raise _bad_attr(root, "id", dom_id, _INT_SUFFIX)
            if self.inactive or value < 0:
                del root.attrib["id"]
        _reorder_attrs(root, ("type", "id"))

    def _dedupe_top(self) -> None:
        seen: set[str] = set()
        for child in list(self.root):
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag in _TOP_RANK and tag not in _TOP_MULTI:
                if tag in seen:
                    self.root.remove(child)
                seen.add(tag)

    def _identity(self) -> None:
        root = self.root
        name_el = self._top("name")
        name = text_of(name_el)
        if name is None:
            raise VirtError(_E.NO_NAME, None, domain=_D)
        if "/" in name:
            raise _fail(f"name {name} cannot contain '/'")
        refuse_dot_name(name, "domain", _D)
        assert name_el is not None
        if len(name_el):
            self._set_top_text("name", name)

        # a missing or empty <uuid>, and an empty <genid>, get a generated one
        for tag in ("uuid", "genid"):
            el = self._top(tag)
            if el is None and tag == "genid":
                continue
            raw = text_of(el)
            parsed = new_uuid() if raw is None else _parse_uuid(raw)
            if parsed is None:
                raise _fail(f"malformed {tag} element", _E.INTERNAL_ERROR)
            self._set_top_text(tag, parsed)

        for tag in ("title", "description"):
            el = self._top(tag)
            if el is None:
                continue
            value = text_of(el)
            if value is None:
                root.remove(el)
                continue
            if tag == "title" and "\n" in value:
                raise _fail("Domain title can't contain newlines")
            if len(el):
                self._set_top_text(tag, value)
            el.attrib.clear()

        meta = self._top("metadata")
        if meta is not None:
            _sanitize_metadata(meta)

    # -- memory -----------------------------------------------------------------------------

    def _memory(self) -> None:
        root = self.root
        mem_el = self._top("memory")
        total = _kib_of(mem_el, "./memory[1]") if mem_el is not None else 0
        if mem_el is not None:
            dump = _enum_attr(mem_el, "dumpCore", _ONOFF)
            self._set_top_text("memory", str(total))
            set_attrs(mem_el, (("dumpCore", dump), ("unit", "KiB")), keep_unknown=False)

        max_el = self._top("maxMemory")
        if max_el is not None:
            max_kib = _kib_of(max_el, "./maxMemory[1]")
            slots = _uint_attr(max_el, "slots")
            self._set_top_text("maxMemory", str(max_kib))
            set_attrs(max_el, (("slots", None if slots is None else str(slots)), ("unit", "KiB")),
                       keep_unknown=False)

        numa_total = 0
        for cell in _iter_path(root, ("cpu", "numa", "cell")):
            raw = cell.get("memory")
            if raw is None:
                raise _missing_attr(cell, "memory")
            kib = _kib_of(cell, "./@memory", text=raw)
            numa_total += kib
            cell.set("memory", str(kib))
            cell.set("unit", "KiB")
            _reorder_attrs(cell, ("id", "cpus", "memory", "unit", "discard", "memAccess"))
        hotplug = 0
        for size in _iter_path(root, ("devices", "memory", "target", "size")):
            kib = _kib_of(size, "./target/size")
            _replace_text(size, str(kib))
            set_attrs(size, (("unit", "KiB"),), keep_unknown=False)
            hotplug += kib
        # virDomainDefPostParseMemory: the NUMA cells give the initial memory only when
        # <memory> is missing; memory modules come on top of it
        if total == 0 and numa_total:
            total = numa_total + hotplug
            if mem_el is None:
                mem_el = self._sub_top("memory", {"unit": "KiB"})
            _replace_text(mem_el, str(total))
        elif hotplug > total:
            raise _fail("Total size of memory devices exceeds the total memory size")
        if total - hotplug <= 0:
            raise _fail("Memory size must be specified via <memory> or in the <numa> configuration")
        if max_el is not None:
            if max_el.get("slots") is None or max_el.text == "0":
                raise _fail("both maximum memory size and memory slot count must be specified",
                            _E.CONFIG_UNSUPPORTED)
            if int(max_el.text or "0") < total:
                raise _fail("maximum memory size must be equal or greater than the actual memory size",
                            _E.CONFIG_UNSUPPORTED)

        cur_el = self._top("currentMemory")
        current = _kib_of(cur_el, "./currentMemory[1]") if cur_el is not None else 0
        if current == 0 or current > total:
            current = total
        if cur_el is None:
            cur_el = self._sub_top("currentMemory")
        self._set_top_text("currentMemory", str(current))
        set_attrs(cur_el, (("unit", "KiB"),), keep_unknown=False)

        memtune = self._top("memtune")
        if memtune is not None:
            for tag in ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee"):
                el = only_first(memtune, tag)
                if el is not None:
                    kib = _kib_of(el, f"./memtune/{tag}[1]")
                    if kib >= _MEM_UNLIMITED:
                        memtune.remove(el)  # "unlimited" is the same as not set
                        continue
                    _replace_text(el, str(kib))
                    set_attrs(el, (("unit", "KiB"),), keep_unknown=False)
            sort_children(memtune, _rank_map(("hard_limit", "soft_limit", "min_guarantee", "swap_hard_limit")))
            if len(memtune) == 0:
                root.remove(memtune)
        backing = self._top("memoryBacking")
        if backing is not None:
            for page in _iter_path(backing, ("hugepages", "page")):
                raw = page.get("size")
                if raw is None:
                    raise _missing_attr(page, "size")
                page.set("size", str(_kib_of(page, "./@size", text=raw)))
                page.set("unit", "KiB")
                _reorder_attrs(page, ("size", "unit", "nodeset"))

    # -- vcpus ------------------------------------------------------------------------------

    def _vcpus(self) -> None:
        root = self.root
        vcpu = self._top("vcpu")
        if vcpu is None:
            vcpu = self._sub_top("vcpu")
            vcpu.text = "1"
        raw = text_of(vcpu)
        max_vcpus = _to_uint(raw.strip()) if raw is not None else 1
        if max_vcpus is None:
            raise _fail("maximum vcpus count must be an integer")
        current = _uint_attr(vcpu, "current")
        if current is None or current == 0:
            current = max_vcpus
        if max_vcpus < current:
            raise _fail("maximum vCPU count must not be less than current vCPU count", _E.CONFIG_UNSUPPORTED)
        if max_vcpus == 0:
            raise _fail("CPU IDs in <numa> exceed the <vcpu> count", _E.INTERNAL_ERROR)
        self.max_vcpus = max_vcpus
        placement = _enum_attr(vcpu, "placement", ("static", "auto"))
        numa_mem = _find_path(root, ("numatune", "memory"))
        if placement is None:
            placement = "auto" if numa_mem is not None and numa_mem.get("placement") == "auto" else "static"
        cpuset = vcpu.get("cpuset")
        if placement == "static" and cpuset is not None:
            cpuset = _canon_bitmap(cpuset, "cpuset")
        else:
            cpuset = None
        self._set_top_text("vcpu", str(max_vcpus))
        set_attrs(vcpu, (("placement", placement), ("cpuset", cpuset),
                          ("current", str(current) if current != max_vcpus else None)),
                   keep_unknown=False)
        if placement == "auto" and numa_mem is None:
            numatune = self._top("numatune")
            if numatune is None:
                numatune = self._sub_top("numatune")
            sub(numatune, "memory", {"mode": "strict", "placement": "auto"}, index=0)

    def _iothreads(self) -> None:
        root = self.root
        count_el = self._top("iothreads")
        count = 0
        if count_el is not None:
            raw = text_of(count_el)
            value = _to_uint(raw.strip()) if raw is not None else None
            if value is None:
                raise _fail("invalid iothreads count")
            count = value
        ids_el = self._top("iothreadids")
        ids: list[int] = []
        if ids_el is not None:
            for th in list(ids_el.iterchildren("iothread")):
                tid = _uint_attr(th, "id", required=True)
                assert tid is not None
                if tid == 0:
                    raise _fail("invalid iothread 'id' value '0'", _E.XML_ERROR)
                if tid in ids:
                    raise _fail(f"Duplicate iothread id '{tid}' found")
                ids.append(tid)
        if count < len(ids):
            count = len(ids)
        if ids_el is not None or count:
            used = set(ids)
            nxt = 1
            if ids_el is not None:
                while len(ids) < count:
                    while nxt in used:
                        nxt += 1
                    used.add(nxt)
                    ids.append(nxt)
                    sub(ids_el, "iothread", {"id": str(nxt)})
            else:
                ids = list(range(1, count + 1))
        self.iothread_ids = ids
        if count_el is not None or count:
            if count == 0:
                if count_el is not None:
                    root.remove(count_el)
            else:
                if count_el is None:
                    count_el = self._sub_top("iothreads")
                self._set_top_text("iothreads", str(count))
                count_el.attrib.clear()

    # -- <os> -------------------------------------------------------------------------------

    def _os(self) -> None:
        os_el = self._top("os")
        type_el = _first(os_el, "type") if os_el is not None else None
        os_type = text_of(type_el)
        if os_el is None or type_el is None or os_type is None:
            raise _fail("an os <type> must be specified")
        if os_type not in OS_TYPES:
            raise _fail(f"unknown OS type '{os_type}'", _E.CONFIG_UNSUPPORTED)
        self.os_type = os_type
        arch = type_el.get("arch")
        if arch is None:
            arch = self.default_arch
        elif arch not in _ARCHES:
            raise _fail(f"Unknown architecture {arch}", _E.CONFIG_UNSUPPORTED)
        set_attrs(type_el, (("arch", arch), ("machine", type_el.get("machine"))))
        for boot in list(os_el.iterchildren("boot")):
            _enum_attr(boot, "dev", ("fd", "cdrom", "hd", "network"), required=True)
        loader = _first(os_el, "loader")
        if loader is not None:
            # a firmware image given by path is a ROM unless it says otherwise (without firmware
            # autoselection, where libvirt refuses any type; we leave it unset as before)
            if loader.get("type") is None and text_of(loader) is not None and os_el.get("firmware") is None:
                loader.set("type", "rom")
            _reorder_attrs(loader, _LOADER_ATTRS)
        sort_children(os_el, _OS_RANK)

    def _boot_order(self, devices: Element) -> None:
        """virDomainDefBootOrderPostParse: no <boot dev> and no per-device boot -> boot from disk."""
        if self.os_type != "hvm" or self._top("bootloader") is not None:
            return
        os_el = self._top("os")
        assert os_el is not None
        has_os_boot = _first(os_el, "boot") is not None
        has_dev_boot = any(True for _ in devices.iterfind("*/boot")) or any(
            True for _ in _iter_path(devices, ("interface", "boot"))
        )
        if has_os_boot and has_dev_boot:
            raise _fail("per-device boot elements cannot be used together with os/boot elements",
                        _E.CONFIG_UNSUPPORTED)
        if not has_os_boot and not has_dev_boot:
            sub(os_el, "boot", {"dev": "hd"})
            sort_children(os_el, _OS_RANK)

    # -- <cpu> -----------------------------------------------------------------------------------

    def _cpu(self) -> None:
        """virCPUDefParseXML + virCPUDefFormat for the guest CPU (and its NUMA cells)."""
        cpu = self._top("cpu")
        if cpu is None:
            return
        mode = _enum_attr(cpu, "mode", ("custom", "host-model", "host-passthrough", "maximum")) or "custom"
        match = _enum_attr(cpu, "match", ("minimum", "exact", "strict"))
        check = _enum_attr(cpu, "check", ("none", "partial", "full"))
        migratable = _enum_attr(cpu, "migratable", _ONOFF)
        model = only_first(cpu, "model")
        model_name = text_of(model)
        if model is not None:
            fallback = _enum_attr(model, "fallback", ("allow", "forbid"))
            vendor_id = model.get("vendor_id")
            if model_name is None and vendor_id is None:
                cpu.remove(model)
                model = None
            else:
                if model_name is not None and mode == "custom" and fallback is None:
                    fallback = "allow"
                set_attrs(model, (("fallback", fallback), ("vendor_id", vendor_id)), keep_unknown=False)
        if model_name is not None and mode == "custom" and match is None:
            match = "exact"
        show_mode = mode != "custom" or model_name is not None
        set_attrs(cpu, (("mode", mode if show_mode else None),
                         ("match", match if model_name is not None and mode == "custom" else None),
                         ("check", check), ("migratable", migratable)), keep_unknown=False)
        topo = only_first(cpu, "topology")
        if topo is not None:
            values: list[tuple[str, str | None]] = []
            for key in ("sockets", "dies", "cores", "threads"):
                value = _uint_attr(topo, key, required=key != "dies")
                if key == "dies" and value is None:
                    value = 1
                values.append((key, str(value)))
            set_attrs(topo, values, keep_unknown=False)
        for feat in list(cpu.iterchildren("feature")):
            policy = _enum_attr(feat, "policy", ("force", "require", "optional", "disable", "forbid"))
            name = feat.get("name")
            if name is None:
                raise _missing_attr(feat, "name")
            set_attrs(feat, (("policy", policy or "require"), ("name", name)), keep_unknown=False)
        numa = _first(cpu, "numa")
        if numa is not None:
            cells = list(numa.iterchildren("cell"))
            by_id: dict[int, Element] = {}
            for i, cell in enumerate(cells):
                _enum_attr(cell, "memAccess", ("shared", "private"))
                _enum_attr(cell, "discard", _YESNO)
                cid = _uint_attr(cell, "id")
                if cid is None:
                    cid = i
                    cell.set("id", str(cid))
                    _reorder_attrs(cell, ("id", "cpus", "memory", "unit", "discard", "memAccess"))
                if cid >= len(cells):
                    raise _fail("Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous ranges "
                                "or ranges not starting from 0 are not allowed", _E.XML_ERROR)
                if cid in by_id:
                    raise _fail(f"Duplicate NUMA cell info for cell id '{cid}'")
                raw = cell.get("cpus")
                if raw is not None:
                    cell.set("cpus", _canon_bitmap(raw, "cpus"))
                by_id[cid] = cell
            for cid in sorted(by_id):
                numa.append(by_id[cid])
            self._numa_distances(by_id)
        sort_children(cpu, _CPU_RANK)

    @staticmethod
    def _numa_distances(cells: dict[int, Element]) -> None:
        """virDomainNumaDefNodeDistanceParseXML: distances are symmetric and a cell's own is 10;
        once one is given, every cell lists them all."""
        dist: dict[tuple[int, int], int] = {}
        for cid, cell in cells.items():
            for sib in _iter_path(cell, ("distances", "sibling")):
                sid = _uint_attr(sib, "id", required=True)
                value = _uint_attr(sib, "value", required=True)
                assert sid is not None and value is not None
                if sid not in cells:
                    raise _fail(f"'sibling_id' attribute {sid} for <sibling> element must be a valid NUMA cell")
                if value < 10 or value > 255:
                    raise _fail(f"'value' attribute {value} for <sibling> element must be in range [10, 255]",
                                _E.CONFIG_UNSUPPORTED)
                dist[(cid, sid)] = value
        if not dist:
            return
        for (a, b), value in list(dist.items()):
            dist.setdefault((b, a), value)
        for cid, cell in cells.items():
            dist.setdefault((cid, cid), 10)
            distances = _first(cell, "distances")
            if distances is None:
                distances = sub(cell, "distances")
            for old in list(distances):
                distances.remove(old)
            for sid in sorted(cells):
                if (cid, sid) in dist:
                    sub(distances, "sibling", {"id": str(sid), "value": str(dist[(cid, sid)])})

    # -- <cputune> ------------------------------------------------------------------------------

    def _cputune(self) -> None:
        root = self.root
        tune = self._top("cputune")
        if tune is None:
            return
        _check_range(tune, "shares", 2, 262144)
        for tag in ("global_period", "period", "emulator_period", "iothread_period"):
            _check_range(tune, tag, 1000, 1000000)
        for tag in ("global_quota", "quota", "emulator_quota", "iothread_quota"):
            _check_range(tune, tag, 1000, 17592186044415, signed=True)

        # <vcpupin>: one per vcpu, sorted by vcpu, pins of missing vcpus ignored
        pins: dict[int, Element] = {}
        for pin in list(tune.iterchildren("vcpupin")):
            vcpu_id = _uint_attr(pin, "vcpu", required=True)
            assert vcpu_id is not None
            raw = pin.get("cpuset")
            if raw is None:
                raise _missing_attr(pin, "cpuset")
            cpuset = _canon_bitmap(raw, "cpuset")
            tune.remove(pin)
            if vcpu_id >= self.max_vcpus:
                continue
            if vcpu_id in pins:
                raise _fail(f"duplicate vcpupin for vcpu '{vcpu_id}'", _E.INTERNAL_ERROR)
            set_attrs(pin, (("vcpu", str(vcpu_id)), ("cpuset", cpuset)), keep_unknown=False)
            pins[vcpu_id] = pin
        for vcpu_id in sorted(pins):
            tune.append(pins[vcpu_id])

        emu = only_first(tune, "emulatorpin")
        if emu is not None:
            raw = emu.get("cpuset")
            if raw is None:
                raise _missing_attr(emu, "cpuset")
            set_attrs(emu, (("cpuset", _canon_bitmap(raw, "cpuset")),), keep_unknown=False)

        iopins: dict[int, Element] = {}
        for pin in list(tune.iterchildren("iothreadpin")):
            tid = _uint_attr(pin, "iothread", required=True)
            assert tid is not None
            raw = pin.get("cpuset")
            if raw is None:
                raise _missing_attr(pin, "cpuset")
            if tid not in self.iothread_ids:
                raise _fail(f"Cannot find 'iothread' : {tid}", _E.CONFIG_UNSUPPORTED)
            if tid in iopins:
                raise _fail(f"Duplicate iothreadpin for same iothread '{tid}'", _E.INTERNAL_ERROR)
            set_attrs(pin, (("iothread", str(tid)), ("cpuset", _canon_bitmap(raw, "cpuset"))),
                       keep_unknown=False)
            tune.remove(pin)
            iopins[tid] = pin
        for tid in self.iothread_ids:
            if tid in iopins:
                tune.append(iopins[tid])

        self._thread_sched(tune, "vcpusched", "vcpus", range(self.max_vcpus), "vCPU")
        self._thread_sched(tune, "iothreadsched", "iothreads", self.iothread_ids, "iothread")
        _Resctrl(self, tune).run()
        sort_children(tune, _CPUTUNE_RANK)
        if not any(isinstance(c.tag, str) for c in tune):
            root.remove(tune)

    def _thread_sched(self, tune: Element, tag: str, attr: str, ids: Sequence[int], what: str) -> None:
        """Split ``<vcpusched vcpus='0-2'>`` into one element per thread, in thread order."""
        found = tune.findall(tag)
        if not found:
            return
        per_id: dict[int, tuple[str, str | None]] = {}
        valid = set(ids)
        for el in found:
            raw = el.get(attr)
            if raw is None:
                raise _missing_attr(el, attr)
            bits = _parse_bitmap(raw)
            if not bits:
                raise _fail(f"Invalid value of '{attr}': {raw}", _E.XML_ERROR)
            policy = _enum_attr(el, "scheduler", _SCHED_POLICIES, required=True)
            assert policy is not None
            priority: str | None = None
            if policy in ("fifo", "rr"):
                pr = el.get("priority")
                if pr is None:
                    raise _missing_attr(el, "priority")
                value = _to_int(pr)
                if value is None:
                    raise _bad_attr(el, "priority", pr, _INT_SUFFIX)
                priority = str(value)
            for i in sorted(bits):
                if i not in valid:
                    if what == "vCPU":
                        raise _fail(f"vCPU '{i}' is not present in domain definition", _E.CONFIG_UNSUPPORTED)
                    raise _fail(f"Cannot find 'iothread' : {i}", _E.CONFIG_UNSUPPORTED)
                if i in per_id:
                    raise _fail(f"{tag} attributes '{attr}' must not overlap", _E.XML_DETAIL)
                per_id[i] = (policy, priority)
            tune.remove(el)
        for i in ids:
            if i in per_id:
                policy, priority = per_id[i]
                attrib = {attr: str(i), "scheduler": policy}
                if priority is not None:
                    attrib["priority"] = priority
                sub(tune, tag, attrib)

    # -- lifecycle ---------------------------------------------------------------------------

    def _lifecycle(self) -> None:
        root = self.root
        for tag, default, allowed in _LIFECYCLE:
            el = self._top(tag)
            value = text_of(el)
            if value is None:
                if el is None:
                    el = self._sub_top(tag)
                el.text = default
            elif value not in allowed:
                raise _fail(f"unknown {tag} action: {value}", _E.CONFIG_UNSUPPORTED)
        lock = self._top("on_lockfailure")
        if lock is not None:
            value = text_of(lock)
            if value is None:
                root.remove(lock)
            elif value not in _LOCKFAILURE:
                raise _fail(f"unknown on_lockfailure action: {value}", _E.CONFIG_UNSUPPORTED)
        clock = self._top("clock")
        if clock is None:
            clock = self._sub_top("clock", {"offset": "utc"})
        offset = clock.get("offset")
        if offset is None:
            clock.set("offset", "utc")
            _reorder_attrs(clock, ("offset",))
        elif offset not in _CLOCK_OFFSETS:
            raise _fail(f"unknown clock offset '{offset}'", _E.CONFIG_UNSUPPORTED)


def _check_range(tune: Element, tag: str, low: int, high: int, signed: bool = False) -> None:
    el = only_first(tune, tag)
    if el is None:
        return
    raw = text_of(el)
    value = _to_int(raw, 64) if signed else _to_uint(raw, _ULLONG_MAX)
    if value is None:
        raise _fail(f"invalid value for cputune {tag}")
    if value <= 0 and (signed or tag == "shares"):
        return
    if not low <= value <= high:
        raise _fail(f"Value of cputune '{tag}' must be in range [{low}, {high}]", _E.CONFIG_UNSUPPORTED)


def _sanitize_metadata(meta: Element) -> None:
    """virXMLNodeSanitizeNamespaces: per namespace keep the first child element; children
    without a namespace go."""
    meta.attrib.clear()
    seen: set[str] = set()
    for child in list(meta):
        tag = child.tag
        ns = etree.QName(child).namespace if isinstance(tag, str) else None
        if not ns or ns in seen:
            meta.remove(child)
            continue
        seen.add(ns)
    meta.text = None
    for child in meta:
        child.tail = None


# ---------------------------------------------------------------------------------------------
# resource control: <cachetune> / <memorytune>
# ---------------------------------------------------------------------------------------------


class _Resctrl:
    """Parse and canonicalise cachetune / memorytune the way virDomainCachetuneDefParse and
    virDomainMemorytuneDefParse do (allocations merged per vcpu set)."""

    def __init__(self, norm: _Normalizer, tune: Element) -> None:
        self.norm = norm
        self.tune = tune
        self.groups: list[frozenset[int]] = []  # the resctrl groups, in creation order
        self.memorytunes: list[tuple[int, Element]] = []

    def _vcpus(self, el: Element) -> frozenset[int] | None:
        raw = el.get("vcpus")
        if raw is None:
            raise _missing_attr(el, "vcpus")
        bits = _parse_bitmap(raw)
        bits = {b for b in bits if b < self.norm.max_vcpus}
        if not bits:
            return None
        return frozenset(bits)

    def _match(self, vcpus: frozenset[int]) -> int | None:
        for i, group in enumerate(self.groups):
            if group == vcpus:
                return i
            if group & vcpus:
                raise _fail("Overlapping vcpus in resctrls")
        return None

    def _monitors(self, el: Element, vcpus: frozenset[int], cache: bool) -> list[Element]:
        mons: list[Element] = []
        seen: list[frozenset[int]] = []
        for mon in list(el.iterchildren("monitor")):
            raw = mon.get("vcpus")
            if raw is None:
                raise _missing_attr(mon, "vcpus")
            bits = frozenset(_parse_bitmap(raw))
            level: int | None = None
            if cache:
                level = _uint_attr(mon, "level", required=True)
                if level != 3:
                    raise _fail(f"Invalid monitor cache level '{level}'")
            if not bits <= vcpus:
                raise _fail("Monitor vcpus conflicts with allocation", _E.INVALID_ARG)
            if bits in seen:
                raise _fail("Identical vcpus found in same type monitors", _E.INVALID_ARG)
            seen.append(bits)
            attrs_: list[tuple[str, str | None]] = [("level", str(level) if cache else None),
                                                     ("vcpus", _format_bitmap(bits))]
            set_attrs(mon, attrs_, keep_unknown=False)
            mons.append(mon)
        return mons

    def _head(self, el: Element, vcpus: frozenset[int]) -> None:
        tid = None if self.norm.inactive else el.get("id")
        set_attrs(el, (("vcpus", _format_bitmap(vcpus)), ("id", tid)), keep_unknown=False)

    def run(self) -> None:
        tune = self.tune
        for el in list(tune.iterchildren("cachetune")):
            vcpus = self._vcpus(el)
            if vcpus is None:
                tune.remove(el)
                continue
            if self._match(vcpus) is not None:
                raise _fail("Identical vcpus in cachetunes found")
            caches: dict[tuple[int, int, int], Element] = {}
            for cache in list(el.iterchildren("cache")):
                cid = _uint_attr(cache, "id", required=True)
                level = _uint_attr(cache, "level", required=True)
                ctype = _enum_attr(cache, "type", _CACHE_TYPES, required=True)
                raw = cache.get("size")
                if raw is None:
                    raise _missing_attr(cache, "size")
                size_v = _to_uint(raw, _ULLONG_MAX)
                if size_v is None:
                    raise _bad_attr(cache, "size", raw, _UINT_SUFFIX)
                nbytes = _scale(size_v, cache.get("unit"), 1)
                assert cid is not None and level is not None and ctype is not None
                t = _CACHE_TYPES.index(ctype)
                both = (level, 0, cid) in caches
                clash = (level, t, cid) in caches or (t == 0 and (
                    (level, 1, cid) in caches or (level, 2, cid) in caches)) or (t != 0 and both)
                if clash:
                    raise _fail(f"Colliding cache allocations for cache level '{level}' id '{cid}', type '{ctype}'",
                                domain=ErrorDomain.RESCTRL)
                size, unit = _pretty_size(nbytes)
                set_attrs(cache, (("id", str(cid)), ("level", str(level)), ("type", ctype),
                                   ("size", str(size)), ("unit", unit)), keep_unknown=False)
                caches[(level, t, cid)] = cache
            mons = self._monitors(el, vcpus, cache=True)
            for child in list(el):
                el.remove(child)
            for key in sorted(caches):
                el.append(caches[key])
            for mon in mons:
                el.append(mon)
            self._head(el, vcpus)
            self.groups.append(vcpus)
        for el in list(tune.iterchildren("memorytune")):
            vcpus = self._vcpus(el)
            if vcpus is None:
                tune.remove(el)
                continue
            index = self._match(vcpus)
            if index is None:
                self.groups.append(vcpus)
                index = len(self.groups) - 1
            nodes: dict[int, Element] = {}
            for node in list(el.iterchildren("node")):
                nid = _uint_attr(node, "id", required=True)
                bw = _uint_attr(node, "bandwidth", required=True)
                assert nid is not None and bw is not None
                if nid in nodes:
                    raise _fail(f"Memory Bandwidth already defined for node {nid}", domain=ErrorDomain.RESCTRL)
                set_attrs(node, (("id", str(nid)), ("bandwidth", str(bw))), keep_unknown=False)
                nodes[nid] = node
            mons = self._monitors(el, vcpus, cache=False)
            for child in list(el):
                el.remove(child)
            for nid in sorted(nodes):
                el.append(nodes[nid])
            for mon in mons:
                el.append(mon)
            self._head(el, vcpus)
            tune.remove(el)
            self.memorytunes.append((index, el))
        for _, el in sorted(self.memorytunes, key=lambda t: t[0]):
            tune.append(el)


# ---------------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------------


class _DeviceNormalizer:
    def __init__(self, norm: _Normalizer, devices: Element) -> None:
        self.norm = norm
        self.devices = devices
        self.inactive = norm.inactive

    def run(self) -> None:
        devices = self.devices
        by_tag: dict[str, list[Element]] = {}
        for child in devices:
            if isinstance(child.tag, str):
                by_tag.setdefault(child.tag, []).append(child)
        get = by_tag.get
        emulators = get("emulator", [])
        for extra in emulators[1:]:
            devices.remove(extra)
        for dev in devices:
            if not isinstance(dev.tag, str) or dev.tag == "emulator":
                continue
            for addr in list(dev.iterchildren("address")):
                _normalise_address(addr)
            if self.inactive:
                for alias in list(dev.iterchildren("alias")):
                    if not (alias.get("name") or "").startswith("ua-"):
                        dev.remove(alias)
        for hostdev in get("hostdev", []):
            self._hostdev(hostdev)
        disks = self._disks(get("disk", []))
        for net in get("interface", []):
            self._interface(net)
        for fs in get("filesystem", []):
            self._filesystem(fs)
        for card in get("smartcard", []):
            self._smartcard(card)
        for redir in get("redirdev", []):
            self._redirdev(redir)
        for rng in get("rng", []):
            self._rng(rng)
        serials = get("serial", [])
        parallels = get("parallel", [])
        consoles = get("console", [])
        channels = get("channel", [])
        for kind, elems in (("serial", serials), ("parallel", parallels), ("console", consoles),
                            ("channel", channels)):
            # libvirt numbers the consoles by their index, which it is not idempotent with:
            # the serial alias it puts first (see _console_compat) shifts the others on a
            # second pass.  After an explicit serial alias we keep the ports already written,
            # so that formatting our own output again is a fixed point.
            keep_ports = False
            if kind == "console" and elems and self.norm.os_type == "hvm":
                t0 = elems[0].find("target")
                keep_ports = t0 is not None and t0.get("type") == "serial"
            for i, chr_el in enumerate(elems):
                self._chardev(chr_el, kind, elems[:i], i, keep_ports)
        serials, consoles = self._console_compat(serials, consoles)
        for wd in get("watchdog", []):
            if wd.get("action") is None:
                wd.set("action", "reset")
        for rng in get("rng", []):
            backend = _first(rng, "backend")
            if backend is not None and backend.get("model") == "random" and not text_of(backend):
                _replace_text(backend, "/dev/random")
        for rfilter in get("redirfilter", []):
            for usbdev in list(rfilter.iterchildren("usbdev")):
                for key in ("class", "vendor", "product", "version"):
                    if usbdev.get(key) == "-1":
                        del usbdev.attrib[key]
        for vsock in get("vsock", []):
            driver = _first(vsock, "driver")
            if driver is not None:
                vsock.append(driver)
        for chan in get("channel", []):
            if chan.get("type") == "qemu-vdagent":
                for src in list(chan.iterchildren("source")):
                    sort_children(src, _rank_map(("clipboard", "mouse")))
        for shmem in get("shmem", []):
            if _first(shmem, "model") is None:
                sub(shmem, "model", {"type": "ivshmem"}, index=0)
        graphics = get("graphics", [])
        for gr in graphics:
            self._graphics(gr)
        videos = get("video", [])
        if graphics and not videos:
            video = sub(devices, "video")
            sub(video, "model", {"type": self.norm.default_video()})
            videos = [video]
        self._videos(videos)
        controllers = self._controllers(get("controller", []), disks, channels, consoles,
                                        get("smartcard", []))
        # final device order: by kind, then disks / controllers in their sorted order
        for el in disks:
            devices.append(el)
        for el in controllers:
            devices.append(el)
        sort_children(devices, _DEVICE_RANK)
        for dev in devices:
            if isinstance(dev.tag, str) and len(dev) > 1 and dev.tag != "vsock":
                _sort_device_info(dev)

    # -- disks ------------------------------------------------------------------------------

    def _disks(self, disks: list[Element]) -> list[Element]:
        """Defaults, duplicate-target check and drive addresses; returns the disks in libvirt's
        order (virDomainDiskInsert: sorted by bus and drive index as parsed)."""
        ordered: list[tuple[str | None, int, Element]] = []
        targets: dict[str, Element] = {}
        for disk in disks:
            device = disk.get("device") or "disk"
            if disk.get("type") is None:
                disk.set("type", "file")
            disk.set("device", device)
            _reorder_attrs(disk, ("type", "device", "model", "rawio", "sgio", "snapshot"))
            target = _first(disk, "target")
            dev = target.get("dev") if target is not None else None
            source = _disk_source(disk)
            if target is None or not dev:
                raise VirtError(_E.NO_TARGET, source if source else "(null)", domain=_D)
            if source is None and device not in ("cdrom", "floppy") and disk.get("type") in ("file", "block", "dir"):
                raise VirtError(_E.NO_SOURCE, dev, domain=_D)
            if device == "cdrom" and _first(disk, "readonly") is None:
                ro = etree.Element("readonly")
                anchor = _first(disk, "target")
                assert anchor is not None
                index = list(disk).index(anchor) + 1
                while index < len(disk) and disk[index].tag in ("iotune",):
                    index += 1
                disk.insert(index, ro)
            self._disk_details(disk, target)
            _insert_disk(ordered, target.get("bus"), _disk_index(dev), disk)
        result: list[Element] = []
        for _, _, disk in ordered:
            target = _first(disk, "target")
            assert target is not None
            dev = target.get("dev")
            assert dev is not None
            if dev in targets:
                other = targets[dev]
                raise _fail(f"target '{dev}' duplicated for disk sources '{_disk_source(other)}' "
                            f"and '{_disk_source(disk)}'")
            targets[dev] = disk
            bus = target.get("bus")
            if bus is None:
                bus = "ide"
                for prefix, pbus in _DISK_PREFIX_BUS:
                    if dev.startswith(prefix):
                        bus = pbus
                        break
                if disk.get("device") == "floppy":
                    bus = "fdc"
                target.set("bus", bus)
                _reorder_attrs(target, ("dev", "bus", "tray", "removable", "rotation_rate"))
            addr_el = _first(disk, "address")
            if bus in _DRIVE_UNITS and addr_el is not None and addr_el.get("type") != "drive":
                raise _fail(f"Invalid address type '{addr_el.get('type')}' for the disk '{dev}' with the bus type "
                            f"'{bus}'", _E.CONFIG_UNSUPPORTED)
            if disk.get("device") == "lun" and disk.get("type") not in ("block", "network", "volume"):
                raise _fail("disk device='lun' is only valid for block type disk source", _E.CONFIG_UNSUPPORTED)
            if bus in _DRIVE_UNITS and _first(disk, "address") is None:
                idx = _disk_index(dev)
                if idx < 0:
                    raise _fail(f"Unknown disk name '{dev}' and no address specified")
                per_ctrl, _, units = _DRIVE_UNITS[bus]
                if bus == "ide":
                    ctrl, dbus, unit = idx // 4, (idx % 4) // 2, idx % 2
                elif bus == "fdc":
                    ctrl, dbus, unit = idx // 2, 0, idx % 2
                else:
                    ctrl, dbus, unit = idx // per_ctrl, 0, idx % units
                addr = etree.Element("address")
                for k, v in (("type", "drive"), ("controller", str(ctrl)), ("bus", str(dbus)),
                             ("target", "0"), ("unit", str(unit))):
                    addr.set(k, v)
                _insert_device_info(disk, addr)
            result.append(disk)
        drive_addrs: dict[tuple[str | None, str, str, str, str], str] = {}
        for disk in result:
            target = _first(disk, "target")
            addr_el = _first(disk, "address")
            if target is None or addr_el is None or addr_el.get("type") != "drive":
                continue
            akey = (target.get("bus"), addr_el.get("controller", "0"), addr_el.get("bus", "0"),
                    addr_el.get("target", "0"), addr_el.get("unit", "0"))
            if akey in drive_addrs:
                raise _fail(f"Found duplicate drive address for disk with target name '{target.get('dev')}' "
                            f"controller='{akey[1]}' bus='{akey[2]}' target='{akey[3]}' unit='{akey[4]}'",
                            _E.CONFIG_UNSUPPORTED)
            drive_addrs[akey] = target.get("dev") or ""
        # libvirt inserts disks by the bus written in the XML, before defaulting it, so a second
        # pass can reorder them.  Inserting libvirt's order again by the final bus keeps its
        # order wherever it is stable, and makes ours a fixed point -- unless the caller wants
        # the order of that one first parse (first_parse=True).
        if self.norm.first_parse:
            return result
        final: list[tuple[str | None, int, Element]] = []
        for disk in result:
            target = _first(disk, "target")
            assert target is not None
            _insert_disk(final, target.get("bus"), _disk_index(target.get("dev")), disk)
        return [d for _, _, d in final]

    def _disk_details(self, disk: Element, target: Element) -> None:
        if disk.get("type") == "vhostuser" and disk.get("snapshot") is None:
            disk.set("snapshot", "no")
            _reorder_attrs(disk, ("type", "device", "model", "rawio", "sgio", "snapshot"))
        tray = target.get("tray")
        if tray == "closed":
            del target.attrib["tray"]
        _reorder_attrs(target, ("dev", "bus", "tray", "removable", "rotation_rate"))
        vol = _first(disk, "source")
        if vol is not None and disk.get("type") == "volume":
            _reorder_attrs(vol, ("pool", "volume", "mode"))
        if _first(disk, "source") is None and disk.get("device") in ("cdrom", "floppy"):
            disk.set("type", "file")
        if self.inactive:
            for mirror in list(disk.iterchildren("mirror")):
                disk.remove(mirror)
        driver = _first(disk, "driver")
        if driver is not None:
            _reorder_attrs(driver, _DISK_DRIVER_ATTRS)
        # .//metadata_cache/max_size, without ElementPath
        for size in [s for cache in disk.iter("metadata_cache") for s in cache.iterchildren("max_size")]:
            raw = text_of(size)
            value = _to_uint((raw or "").strip(), _ULLONG_MAX) if raw is not None else None
            if value is None:
                raise _fail(f"Invalid value '{raw}' for element or attribute './max_size'")
            _replace_text(size, str(_scale(value, size.get("unit"), 1)))
            set_attrs(size, (("unit", "bytes"),), keep_unknown=False)
        for store in [disk, *disk.iter("backingStore")]:
            src = _first(store, "source")
            if src is not None:
                if self.inactive and "index" in src.attrib:
                    del src.attrib["index"]
                if self.inactive:
                    for label in list(src.iterchildren("seclabel")):
                        if label.get("labelskip") == "yes":
                            src.remove(label)
                if src.get("protocol") == "iscsi":
                    name = src.get("name")
                    if name is not None and "/" not in name:
                        src.set("name", name + "/0")
                self._net_hosts(src, store.get("type") if store is not disk else disk.get("type"))
            if store is not disk:
                if self.inactive and "index" in store.attrib:
                    del store.attrib["index"]
                sort_children(store, _BACKING_RANK)
        sort_children(disk, _DISK_RANK)

    @staticmethod
    def _net_hosts(src: Element, dtype: str | None) -> None:
        """virStorageSourceNetworkDefaultPort: the protocol's port for TCP hosts without one."""
        if dtype != "network":
            return
        port = _NET_DISK_PORTS.get(src.get("protocol") or "")
        if port is None:
            return
        for host in list(src.iterchildren("host")):
            if host.get("port") is None and host.get("transport") in (None, "tcp") and host.get("name"):
                host.set("port", str(port))
                _reorder_attrs(host, ("transport", "name", "port", "socket"))

    # -- controllers ------------------------------------------------------------------------

    def _controllers(self, controllers: list[Element], disks: list[Element], channels: list[Element],
                     consoles: list[Element], smartcards: list[Element]) -> list[Element]:
        ordered: list[Element] = []
        for ctrl in controllers:
            ctype = ctrl.get("type")
            if ctype is None:
                raise _missing_attr(ctrl, "type")
            raw = ctrl.get("index")
            if raw is not None and _to_uint(raw) is None:
                raise _bad_attr(ctrl, "index", raw, _UINT_SUFFIX)
            _insert_controller(ordered, ctrl)
        # automatic indexes (virDomainAssignControllerIndexes): the lowest unused one of the
        # type, except that a USB2 controller joins the group of the USB2 controller before it
        # (in document order) unless that group already has one of its model
        for ctrl in ordered:
            if ctrl.get("index") is not None:
                continue
            ctype = ctrl.get("type")
            idx = -1
            if ctype == "usb" and ctrl.get("model") in _USB2_MODELS:
                doc_pos = controllers.index(ctrl)
                prev = controllers[doc_pos - 1] if doc_pos > 0 else None
                if prev is not None and prev.get("type") == "usb" and prev.get("model") in _USB2_MODELS \
                        and prev.get("index") is not None:
                    group = [c for c in ordered if c.get("type") == "usb" and c.get("index") == prev.get("index")]
                    if all(c.get("model") != ctrl.get("model") for c in group):
                        idx = int(prev.get("index", "0"))
            if idx < 0:
                used = {int(c.get("index", "-1")) for c in ordered if c.get("type") == ctype}
                idx = 0
                while idx in used:
                    idx += 1
            ctrl.set("index", str(idx))
            _reorder_attrs(ctrl, ("type", "index", "model", "ports", "vectors"))
        for ctrl in ordered:
            _reorder_attrs(ctrl, ("type", "index", "model", "ports", "vectors"))
        for ctrl in ordered:
            start = _USB_COMPANION_PORTS.get(ctrl.get("model") or "")
            if ctrl.get("type") == "usb" and start is not None and _first(ctrl, "master") is None:
                master = etree.Element("master")
                master.set("startport", str(start))
                ctrl.append(master)

        added: list[Element] = []

        def maybe_add(ctype: str, idx: int) -> None:
            for c in ordered:
                if c.get("type") == ctype and c.get("index") == str(idx):
                    return
            new = etree.Element("controller")
            new.set("type", ctype)
            new.set("index", str(idx))
            ordered.append(new)
            added.append(new)

        for ctype, bus in (("scsi", "scsi"), ("fdc", "fdc"), ("ide", "ide"), ("sata", "sata")):
            top = -1
            for disk in disks:
                target = _first(disk, "target")
                addr = _first(disk, "address")
                if target is None or target.get("bus") != bus or addr is None or addr.get("type") != "drive":
                    continue
                value = _to_uint(addr.get("controller", "0"))
                top = max(top, value if value is not None else 0)
            for i in range(top + 1):
                maybe_add(ctype, i)
        for chr_el in channels + consoles:
            target = _first(chr_el, "target")
            if target is None or target.get("type") != "virtio":
                continue
            addr = _first(chr_el, "address")
            idx = 0
            if addr is not None and addr.get("type") == "virtio-serial":
                idx = _to_uint(addr.get("controller", "0")) or 0
            maybe_add("virtio-serial", idx)
        for card in smartcards:
            addr = _first(card, "address")
            idx = 0
            if addr is not None and addr.get("type") == "ccid":
                idx = _to_uint(addr.get("controller", "0")) or 0
            elif addr is None:
                top = -1
                for other in smartcards:
                    oaddr = _first(other, "address")
                    if oaddr is not None and oaddr.get("type") == "ccid" and oaddr.get("controller", "0") == "0":
                        slot = _to_uint(oaddr.get("slot", "0"))
                        top = max(top, slot if slot is not None else 0)
                addr = etree.Element("address")
                for k, v in (("type", "ccid"), ("controller", "0"), ("slot", str(top + 1))):
                    addr.set(k, v)
                _insert_device_info(card, addr)
            maybe_add("ccid", idx)
        seen_ctrl: set[tuple[str, str]] = set()
        for ctrl in ordered:
            key = (ctrl.get("type") or "", ctrl.get("index") or "0")
            usb2 = key[0] == "usb" and (ctrl.get("model") in _USB2_MODELS or _first(ctrl, "master") is not None)
            if key in seen_ctrl and not usb2:
                raise _fail(f"Multiple '{key[0]}' controllers with index '{key[1]}'")
            seen_ctrl.add(key)
        usb_off = any(c.get("type") == "usb" and c.get("model") == "none" for c in ordered)
        if usb_off:
            if sum(1 for c in ordered if c.get("type") == "usb") > 1:
                raise _fail("Can't add another USB controller: USB is disabled for this domain", _E.XML_DETAIL)
            devices = self.devices
            if devices.find("hub[@type='usb']") is not None:
                raise _fail("Can't add USB hub: USB is disabled for this domain", _E.CONFIG_UNSUPPORTED)
            if devices.find("input[@bus='usb']") is not None:
                raise _fail("Can't add USB input device. USB bus is disabled", _E.CONFIG_UNSUPPORTED)
            if devices.find("redirdev[@bus='usb']") is not None:
                raise _fail("cannot add redirected USB device: USB is disabled for this domain",
                            _E.CONFIG_UNSUPPORTED)
        # libvirt inserts controllers by index while parsing (before automatic indexes are
        # assigned) and appends the implicit ones; it is not idempotent with either.  Insert
        # everything again with the final indexes, in document order then implicit order, so
        # that formatting our own output again gives the same order.
        final: list[Element] = []
        for ctrl in [*controllers, *added]:
            _insert_controller(final, ctrl)
        return final

    # -- host devices -----------------------------------------------------------------------

    def _hostdev(self, hostdev: Element) -> None:
        mode = _enum_attr(hostdev, "mode", ("subsystem", "capabilities"))
        if mode is None:
            mode = "subsystem"
            hostdev.set("mode", mode)
        if mode == "subsystem":
            managed = hostdev.get("managed")
            hostdev.set("managed", "yes" if managed == "yes" else "no")
            _reorder_attrs(hostdev, ("mode", "type", "managed", "sgio", "rawio", "model", "display", "ramfb"))
            if hostdev.get("type") == "pci":
                for addr in _iter_path(hostdev, ("source", "address")):
                    set_attrs(addr, _pci_attrs(addr), keep_unknown=False)

    # -- interfaces -------------------------------------------------------------------------

    def _interface(self, net: Element) -> None:
        ntype = _enum_attr(net, "type", (
            "user", "ethernet", "vhostuser", "server", "client", "mcast", "network", "bridge",
            "internal", "direct", "hostdev", "udp", "vdpa", "null", "vds",
        ))
        if ntype is None:
            net.set("type", "user")
            _reorder_attrs(net, ("type",))
            ntype = "user"
        # the children by tag, once: nothing below adds or moves one it then looks up
        kids: dict[str, list[Element]] = {}
        for child in net:
            kids.setdefault(child.tag, []).append(child)
        none: list[Element | None] = [None]
        source = (kids.get("source") or none)[0]
        if ntype == "network" and (source is None or source.get("network") is None):
            raise _fail("interface type='network' requires a 'source' element" if source is None
                        else "No <source> 'network' attribute specified with <interface type='network'/>")
        if ntype == "bridge" and (source is None or source.get("bridge") is None):
            raise _fail("interface type='bridge' requires a 'source' element" if source is None
                        else "No <source> 'bridge' attribute specified with <interface type='bridge'/>")
        mac_el = (kids.get("mac") or none)[0]
        raw = mac_el.get("address") if mac_el is not None else None
        if raw is None:
            mac = self.norm.mac_prefix + ":" + ":".join(f"{b:02x}" for b in os.urandom(3))
            if mac_el is None:
                mac_el = sub(net, "mac", index=0)
            mac_el.set("address", mac)
            _reorder_attrs(mac_el, ("address", "type", "check"))
        else:
            parsed_mac = _parse_mac(raw)
            if parsed_mac is None:
                raise _fail(f"unable to parse mac address '{raw}'")
            mac = parsed_mac
            if int(mac[:2], 16) & 1:
                raise _fail(f"expected unicast mac address, found multicast '{raw}'")
            assert mac_el is not None
            mac_el.set("address", mac)
        target = (kids.get("target") or none)[0]
        if target is not None and self.inactive:
            dev = target.get("dev")
            if dev is not None and dev.startswith(_VNET_PREFIXES) and target.get("managed") != "no":
                net.remove(target)
        for vport in kids.get("virtualport", ()):
            vtype = vport.get("type")
            key = {"openvswitch": "interfaceid", "802.1Qbg": "instanceid", "midonet": "interfaceid"}.get(vtype or "")
            if key is None:
                continue
            params = _first(vport, "parameters")
            if params is None:
                params = sub(vport, "parameters")
            if params.get(key) is None:
                params.set(key, new_uuid())
        model = (kids.get("model") or none)[0]
        if model is not None:
            mtype = model.get("type")
            if mtype is not None:
                canon = _NET_MODELS.get(mtype.lower())
                if canon is not None and canon != mtype:
                    model.set("type", canon)
        driver = (kids.get("driver") or none)[0]
        if driver is not None:
            for key in ("queues", "rx_queue_size", "tx_queue_size"):
                _uint_attr(driver, key)
        coalesce = (kids.get("coalesce") or none)[0]
        if coalesce is not None:
            frames = _find_path(coalesce, ("rx", "frames"))
            value = _uint_attr(frames, "max") if frames is not None else None
            if not value:
                net.remove(coalesce)
        if self.inactive and source is not None and "portid" in source.attrib:
            del source.attrib["portid"]
        for ip in kids.get("ip", ()):
            address = ip.get("address")
            if address is not None and ip.get("family") is None:
                ip.set("family", "ipv6" if ":" in address else "ipv4")
                _reorder_attrs(ip, ("address", "family", "prefix", "peer"))
        sort_children(net, _NET_HOSTDEV_RANK if ntype == "hostdev" else _NET_RANK)

    def _filesystem(self, fs: Element) -> None:
        ftype = fs.get("type") or "mount"
        if fs.get("type") is None:
            fs.set("type", "mount")
        if fs.get("accessmode") is None:
            driver = _first(fs, "driver")
            if driver is None or driver.get("type") != "virtiofs":
                fs.set("accessmode", "passthrough")
        _reorder_attrs(fs, ("type", "accessmode", "model", "multidevs", "fmode", "dmode"))
        if ftype == "ram":
            src = _first(fs, "source")
            raw = src.get("usage") if src is not None else None
            if src is not None and raw is not None:
                value = _to_uint(raw, _ULLONG_MAX)
                if value is None:
                    raise _fail(f"cannot parse filesystem source usage '{raw}'")
                kib = -(-_scale(value, src.get("units")) // 1024)
                set_attrs(src, (("usage", str(kib)), ("units", "KiB")))

    # -- smartcard / redirdev / rng: chardev sources ----------------------------------------

    def _smartcard(self, card: Element) -> None:
        if card.get("mode") == "passthrough":
            self._chr_source(card, card.get("type") or "pty", "smartcard", None)

    def _redirdev(self, redir: Element) -> None:
        self._chr_source(redir, redir.get("type") or "pty", "redirdev", None)

    def _rng(self, rng: Element) -> None:
        backend = _first(rng, "backend")
        if backend is not None and backend.get("model") == "egd":
            self._chr_source(backend, backend.get("type") or "pty", "rng", None)

    # -- character devices ------------------------------------------------------------------

    def _chardev(self, el: Element, kind: str, earlier: list[Element], index: int, keep_port: bool = False) -> None:
        ctype = el.get("type") or "pty"
        if el.get("type") is None:
            el.set("type", ctype)
        target = _first(el, "target")
        ttype = target.get("type") if target is not None else None
        if kind == "channel":
            if ttype is None:
                raise _fail("target type must be specified for channel device")
            if ttype not in ("guestfwd", "virtio", "xen"):
                raise _fail(f"unknown target type '{ttype}' specified for character device")
            assert target is not None
            if ttype == "guestfwd":
                if target.get("address") is None or target.get("port") is None:
                    raise _fail("guestfwd channel does not define a target address" if target.get("address") is None
                                else "guestfwd channel does not define a target port")
                _reorder_attrs(target, ("type", "address", "port"))
            else:
                if self.inactive and "state" in target.attrib:
                    del target.attrib["state"]
                _reorder_attrs(target, ("type", "name", "state"))
        elif kind in ("serial", "parallel"):
            if target is None:
                target = sub(el, "target")
            port = target.get("port")
            if port is None or _to_int(port) in (None, -1):
                top = -1
                for other in earlier:
                    ot = _first(other, "target")
                    value = _to_int(ot.get("port")) if ot is not None else None
                    if value is not None and value > top:
                        top = value
                target.set("port", str(top + 1))
            _reorder_attrs(target, ("type", "port"))
        else:  # console
            if target is None:
                target = sub(el, "target")
            if ttype is None:  # the driver's default (virDomainDeviceDefPostParse), then serial
                target.set("type", self.norm.console_target)
            if target.get("type") != "serial":
                if not keep_port or _to_uint(target.get("port")) is None:
                    target.set("port", str(index))
            elif target.get("port") is None:
                target.set("port", "0")
            _reorder_attrs(target, ("type", "port"))
        if self.inactive and ctype == "pty" and "tty" in el.attrib:
            del el.attrib["tty"]
        self._chr_source(el, ctype, kind, ttype)
        sort_children(el, _CHR_RANK)

    def _chr_source(self, el: Element, ctype: str, kind: str, target_type: str | None) -> None:
        """virDomainChrSourceDefParseXML + validation + canonical form of the <source>s."""
        if ctype not in _CHR_TYPES:
            raise _fail(f"unknown type presented to host for character device: {ctype}")
        sources = list(el.iterchildren("source"))
        if ctype == "udp":
            if len(sources) > 2:
                raise _fail("only two source elements are allowed for character device")
        elif len(sources) > 1:
            raise _fail("only one source element is allowed for character device")
        protocol = list(el.iterchildren("protocol"))
        for p in protocol:
            el.remove(p)
        if ctype == "tcp":
            src = sources[0] if sources else None
            mode = self._mode(src)
            host = src.get("host") if src is not None else None
            service = src.get("service") if src is not None else None
            if not host:
                raise _fail("Missing source host attribute for char device", _E.INTERNAL_ERROR)
            if not service:
                raise _fail("Missing source service attribute for char device", _E.INTERNAL_ERROR)
            assert src is not None
            tls = _enum_attr(src, "tls", _YESNO)
            self._reconnect(src, mode)
            set_attrs(src, (("mode", mode), ("host", host), ("service", service), ("tls", tls)))
            ptype = protocol[0].get("type") if protocol else None
            if ptype is None:
                ptype = "raw"
            elif ptype not in ("raw", "telnet", "telnets", "tls"):
                raise _fail(f"Unknown protocol '{ptype}'")
            proto = etree.Element("protocol")
            proto.set("type", ptype)
            src.addnext(proto)
        elif ctype == "udp":
            bind: Element | None = None
            connect: Element | None = None
            for src in sources:
                mode = self._mode(src)
                if mode == "bind" and bind is None:
                    bind = src
                elif mode == "connect" and connect is None:
                    connect = src
                else:
                    el.remove(src)
                    continue
                set_attrs(src, (("mode", mode), ("host", src.get("host") or None),
                                 ("service", src.get("service") or None)))
            if connect is None or not connect.get("service"):
                raise _fail("Missing source service attribute for char device", _E.INTERNAL_ERROR)
            if bind is not None:
                if bind.get("host") is None and bind.get("service") is None:
                    el.remove(bind)
                else:
                    connect.addprevious(bind)
        elif ctype == "unix":
            src = sources[0] if sources else None
            path = src.get("path") if src is not None else None
            if not path:
                if not (kind == "channel" and target_type in ("virtio", "xen")):
                    raise _fail("Missing source path attribute for char device", _E.INTERNAL_ERROR)
                if src is not None:
                    el.remove(src)
                return
            assert src is not None
            mode = self._mode(src)
            self._reconnect(src, mode)
            set_attrs(src, (("mode", mode), ("path", path)))
        elif ctype in ("pty", "dev", "file", "pipe"):
            src = sources[0] if sources else None
            path = src.get("path") if src is not None else None
            if not path:
                if ctype != "pty":
                    raise _fail("Missing source path attribute for char device", _E.INTERNAL_ERROR)
                if src is not None and not len(src):
                    el.remove(src)
                return
            assert src is not None
            if ctype == "pty" and self.inactive:
                el.remove(src)
                return
            append = _enum_attr(src, "append", _ONOFF) if ctype == "file" else None
            set_attrs(src, (("path", path), ("append", append)), keep_unknown=False)
        elif ctype == "nmdm":
            src = sources[0] if sources else None
            if src is None or not src.get("master"):
                raise _fail("Missing master path attribute for nmdm device")
            if not src.get("slave"):
                raise _fail("Missing slave path attribute for nmdm device")
            set_attrs(src, (("master", src.get("master")), ("slave", src.get("slave"))), keep_unknown=False)
        elif ctype in ("spiceport", "dbus"):
            src = sources[0] if sources else None
            if src is not None:
                set_attrs(src, (("channel", src.get("channel")),), keep_unknown=False)
                if not src.attrib:
                    el.remove(src)
        elif ctype == "qemu-vdagent":
            pass
        else:  # null, vc, stdio, spicevmc carry no source
            for src in sources:
                el.remove(src)

    @staticmethod
    def _mode(src: Element | None) -> str:
        if src is None:
            return "connect"
        mode = src.get("mode")
        if mode is None:
            return "connect"
        if mode not in ("bind", "connect"):
            raise _fail(f"Unknown source mode '{mode}'")
        return mode

    @staticmethod
    def _reconnect(src: Element, mode: str) -> None:
        rec = _first(src, "reconnect")
        if rec is None:
            return
        enabled = _enum_attr(rec, "enabled", _YESNO, required=True)
        timeout: int | None = None
        if enabled == "yes":
            timeout = _uint_attr(rec, "timeout", required=True)
        set_attrs(rec, (("enabled", enabled), ("timeout", None if timeout is None else str(timeout))),
                   keep_unknown=False)
        if enabled == "yes" and mode != "connect":
            raise _fail("chardev reconnect is possible only for connect mode", _E.INTERNAL_ERROR)

    def _console_compat(self, serials: list[Element], consoles: list[Element]) -> tuple[list[Element], list[Element]]:
        """virDomainDefAddConsoleCompat: in an HVM guest the first console is an alias of the
        first serial port (a copy of it is formatted)."""
        for con in consoles[1:]:
            target = _first(con, "target")
            if target is not None and target.get("type") == "serial" and self.norm.os_type == "hvm":
                raise _fail("Only the first console can be a serial port", _E.CONFIG_UNSUPPORTED)
        if self.norm.os_type != "hvm":
            return serials, consoles
        devices = self.devices
        first = consoles[0] if consoles else None
        first_target = _first(first, "target") if first is not None else None
        first_serial = first is not None and first_target is not None and first_target.get("type") == "serial"
        if first is not None and first_serial:
            if not serials:
                # the console becomes the first serial port
                serial = copy.deepcopy(first)
                serial.tag = "serial"
                t = _first(serial, "target")
                assert t is not None
                t.attrib.clear()
                t.set("port", "0")
                serials = [serial]
                first.addprevious(serial)
            devices.remove(first)
            consoles = consoles[1:]
        elif not serials:
            return serials, consoles
        else:
            st = serials[0].find("target")
            if st is not None and st.get("type") not in (None, "isa-serial", "system-serial", "spapr-vio-serial",
                                                          "sclp-serial"):
                return serials, consoles
        stub = copy.deepcopy(serials[0])
        stub.tag = "console"
        stub.tail = None
        t = _first(stub, "target")
        port = t.get("port", "0") if t is not None else "0"
        if t is not None:
            for child in list(t):
                t.remove(child)
            t.attrib.clear()
            t.text = None
        else:
            t = sub(stub, "target")
        t.set("type", "serial")
        t.set("port", port)
        sort_children(stub, _CHR_RANK)
        if consoles:
            consoles[0].addprevious(stub)
        else:
            serials[-1].addnext(stub)
        return serials, [stub, *consoles]

    # -- graphics ---------------------------------------------------------------------------

    def _graphics(self, gr: Element) -> None:
        gtype = _enum_attr(gr, "type", _GRAPHICS_TYPES, required=True)
        assert gtype is not None
        listens: list[Element] = []
        if gtype in ("vnc", "spice", "rdp"):
            listens = self._listens(gr, gtype)
        first = listens[0] if listens else None
        ltype = first.get("type") if first is not None else None
        listen_attr: str | None = None
        if first is not None and first.get("address") and (
            ltype == "address" or (ltype == "network" and not self.inactive)
        ):
            listen_attr = first.get("address")
        get = gr.get
        if gtype == "vnc":
            port_s = get("port")
            port = 0
            autoport = False
            if port_s is not None:
                value = _to_int(port_s)
                if value is None:
                    raise _fail(f"cannot parse vnc port {port_s}", _E.INTERNAL_ERROR)
                port = value
                if port == -1:
                    port = 0
                    autoport = True
            else:
                autoport = True
            ap = get("autoport")
            if ap == "yes":
                autoport = True
                port = 0
            elif ap == "no":
                autoport = False
            websocket = get("websocket")
            if websocket is not None and _to_int(websocket) is None:
                raise _fail(f"cannot parse vnc WebSocket port {websocket}", _E.INTERNAL_ERROR)
            pairs: list[tuple[str, str | None]] = [("type", "vnc")]
            if ltype == "socket":
                sock = first.get("socket") if first is not None else None
                pairs.append(("socket", sock))
            elif ltype in ("address", "network"):
                if port:
                    pairs.append(("port", str(port)))
                elif autoport:
                    pairs.append(("port", "-1"))
                pairs.append(("autoport", "yes" if autoport else "no"))
                if websocket is not None and websocket != "0":
                    pairs.append(("websocket", websocket))
                pairs.append(("listen", listen_attr))
            pairs += [("keymap", get("keymap")), ("sharePolicy", get("sharePolicy")),
                      ("powerControl", get("powerControl"))]
            pairs += self._auth_attrs(gr)
            set_attrs(gr, pairs, keep_unknown=False)
        elif gtype == "spice":
            port, tls_port, autoport = self._spice_ports(gr)
            pairs = [("type", "spice")]
            if ltype in ("address", "network"):
                if port > 0:
                    pairs.append(("port", str(port)))
                if tls_port > 0:
                    pairs.append(("tlsPort", str(tls_port)))
                pairs.append(("autoport", "yes" if autoport else "no"))
                pairs.append(("listen", listen_attr))
            pairs += [("keymap", get("keymap"))]
            mode = get("defaultMode")
            if mode is not None and mode != "any":
                _enum_attr(gr, "defaultMode", ("any", "secure", "insecure"))
                pairs.append(("defaultMode", mode))
            pairs += self._auth_attrs(gr)
            set_attrs(gr, pairs, keep_unknown=False)
        elif gtype == "rdp":
            port = self._port(gr, "port", "rdp")
            autoport = port == -1 or get("autoport") == "yes"
            if autoport:
                port = 0
            pairs = [("type", "rdp")]
            if port > 0:
                pairs.append(("port", str(port)))
            if autoport:
                pairs.append(("autoport", "yes"))
            if get("replaceUser") == "yes":
                pairs.append(("replaceUser", "yes"))
            if get("multiUser") == "yes":
                pairs.append(("multiUser", "yes"))
            pairs.append(("listen", listen_attr))
            set_attrs(gr, pairs, keep_unknown=False)
        # the listens come first among the children
        for lst in reversed(listens):
            gr.insert(0, lst)

    def _spice_ports(self, gr: Element) -> tuple[int, int, bool]:
        port = self._port(gr, "port", "spice")
        tls_port = self._port(gr, "tlsPort", "spice")
        autoport = False
        if port == -1 or tls_port == -1:
            autoport = True
            port = max(port, 0)
            tls_port = max(tls_port, 0)
        if gr.get("autoport") == "yes":
            autoport = True
            port = tls_port = 0
        elif gr.get("autoport") == "no":
            autoport = False
        return port, tls_port, autoport

    @staticmethod
    def _port(gr: Element, name: str, what: str) -> int:
        raw = gr.get(name)
        if raw is None:
            return 0
        value = _to_int(raw)
        if value is None:
            raise _fail(f"cannot parse {what} {name} {raw}" if name != "port" else f"cannot parse {what} port {raw}",
                        _E.INTERNAL_ERROR)
        return value

    @staticmethod
    def _auth_attrs(gr: Element) -> list[tuple[str, str | None]]:
        passwd = gr.get("passwd")
        if passwd is None:
            return []
        return [("passwd", passwd), ("passwdValidTo", gr.get("passwdValidTo")), ("connected", gr.get("connected"))]

    def _listens(self, gr: Element, gtype: str) -> list[Element]:
        """virDomainGraphicsListensParseXML, with the back-compat listen/socket attributes."""
        listens = list(gr.iterchildren("listen"))
        listen_attr = gr.get("listen") or None
        socket_attr = gr.get("socket") if gtype == "vnc" else None
        for i, lst in enumerate(listens):
            ltype = _enum_attr(lst, "type", _LISTEN_TYPES, required=True)
            if ltype == "address":
                address = lst.get("address") or None
                if i == 0 and listen_attr is not None:
                    if address is None:
                        address = listen_attr
                    elif address != listen_attr:
                        raise _fail(f"graphics 'listen' attribute '{listen_attr}' must match 'address' attribute "
                                    f"of first listen element (found '{address}')", _E.CONFIG_UNSUPPORTED)
                set_attrs(lst, (("type", ltype), ("address", address)), keep_unknown=False)
            elif ltype == "network":
                network = lst.get("network")
                if not network:
                    raise _fail("'network' attribute is required for listen type 'network'")
                address = None if self.inactive else (lst.get("address") or None)
                set_attrs(lst, (("type", ltype), ("address", address), ("network", network)), keep_unknown=False)
            elif ltype == "socket":
                sock = lst.get("socket") or None
                if i == 0 and socket_attr is not None:
                    if sock is None:
                        sock = socket_attr
                    elif sock != socket_attr:
                        raise _fail(f"graphics 'socket' attribute '{socket_attr}' must match 'socket' attribute "
                                    f"of first listen element (found '{sock}')", _E.CONFIG_UNSUPPORTED)
                set_attrs(lst, (("type", ltype), ("socket", sock)), keep_unknown=False)
            else:
                set_attrs(lst, (("type", "none"),), keep_unknown=False)
        if socket_attr is not None:
            new = etree.Element("listen")
            new.set("type", "socket")
            new.set("socket", socket_attr)
        else:
            new = etree.Element("listen")
            new.set("type", "address")
            if listen_attr is not None:
                new.set("address", listen_attr)
        if not listens:
            if (gtype == "spice" and socket_attr is None and listen_attr is None
                    and self._spice_ports(gr) == (0, 0, False)):
                new = etree.Element("listen")
                new.set("type", "none")
            gr.insert(0, new)
            listens = [new]
        elif socket_attr is not None and listens[0].get("type") in ("address", "network"):
            gr.replace(listens[0], new)
            listens[0] = new
        return listens

    # -- video ------------------------------------------------------------------------------

    def _videos(self, videos: list[Element]) -> None:
        if not videos:
            return
        primary_idx: int | None = None
        for i, video in enumerate(videos):
            model = _first(video, "model")
            if model is not None and model.get("primary") == "yes":
                if primary_idx is not None:
                    raise _fail("Only one primary video device is supported", _E.CONFIG_UNSUPPORTED)
                primary_idx = i
        if primary_idx:
            video = videos.pop(primary_idx)
            videos.insert(0, video)
            videos[1].addprevious(video)
        for i, video in enumerate(videos):
            model = _first(video, "model")
            if model is None:
                model = etree.Element("model")
                driver = _first(video, "driver")
                if driver is not None:
                    driver.addnext(model)
                else:
                    video.insert(0, model)
            vtype = model.get("type") or self.norm.default_video()
            if vtype not in _VIDEO_TYPES:
                raise _bad_attr(model, "type", vtype)
            if vtype == "default":
                vtype = self.norm.default_video()
            if vtype == "none":
                if len(videos) > 1:
                    raise _fail("a 'none' video type must be the only video device defined for the domain",
                                _E.CONFIG_UNSUPPORTED)
                set_attrs(model, (("type", "none"),), keep_unknown=False)
                continue
            default = _video_default_ram(vtype, self.norm.virt_type)
            values: dict[str, str | None] = {}
            for key in ("ram", "vram", "vram64", "vgamem"):
                raw = model.get(key)
                value = _to_uint(raw) if raw is not None else None
                if raw is not None and value is None:
                    raise _fail(f"cannot parse video {key} '{raw}'")
                if key in ("ram", "vram") and value:
                    value = _pow2_ceil(value)
                if key == "vram" and not value:
                    value = default or None
                if key == "ram" and not value and vtype == "qxl":
                    value = default
                values[key] = str(value) if value else None
            heads_raw = model.get("heads")
            heads = _to_uint(heads_raw) if heads_raw is not None else 1
            if heads is None:
                raise _fail(f"cannot parse video heads '{heads_raw}'")
            set_attrs(model, (("type", vtype), ("ram", values["ram"]), ("vram", values["vram"]),
                               ("vram64", values["vram64"]), ("vgamem", values["vgamem"]),
                               ("heads", str(heads)), ("primary", "yes" if i == 0 else None)),
                       keep_unknown=False)


def _insert_disk(ordered: list[tuple[str | None, int, Element]], bus: str | None, idx: int, disk: Element) -> None:
    """virDomainDiskInsert: before the first disk on the same bus with a larger drive index,
    else after the last disk on that bus, else at the end."""
    insert_at = -1
    for i in range(len(ordered) - 1, -1, -1):
        obus, oidx, _ = ordered[i]
        if obus != bus:
            continue
        if oidx > idx:
            insert_at = i
        elif insert_at == -1:
            insert_at = i + 1
    if insert_at == -1:
        ordered.append((bus, idx, disk))
    else:
        ordered.insert(insert_at, (bus, idx, disk))


_USB2_MODELS: Final = frozenset({
    "piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3",
    "vt82c686b-uhci",
})
_USB_COMPANION_PORTS: Final = {"ich9-uhci1": 0, "ich9-uhci2": 2, "ich9-uhci3": 4}


def _insert_controller(ordered: list[Element], ctrl: Element) -> None:
    """virDomainControllerInsertPreAlloced: keep controllers of a type together, by index."""
    ctype = ctrl.get("type")
    raw = ctrl.get("index")
    new_idx = _to_uint(raw) if raw is not None else None
    new_master = _first(ctrl, "master") is not None
    insert_at = -1
    for i in range(len(ordered) - 1, -1, -1):
        cur = ordered[i]
        if cur.get("type") != ctype:
            continue
        if new_idx is None:
            insert_at = i + 1
            break
        cur_raw = cur.get("index")
        cur_idx = _to_uint(cur_raw) if cur_raw is not None else -1
        cur_idx = -1 if cur_idx is None else cur_idx
        if cur_idx > new_idx or (not new_master and _first(cur, "master") is not None and cur_idx == new_idx):
            insert_at = i
        elif insert_at == -1:
            insert_at = i + 1
    if insert_at == -1:
        ordered.append(ctrl)
    else:
        ordered.insert(insert_at, ctrl)


_INFO_RANK: Final = ("boot", "alias", "master", "acpi", "rom", "address")


def _insert_device_info(dev: Element, addr: Element) -> None:
    """Insert an ``<address>`` where virDomainDeviceInfoFormat prints it: after boot/alias/..."""
    rom = _first(dev, "rom")
    if rom is not None:
        rom.addprevious(addr)
    else:
        dev.append(addr)


# ---------------------------------------------------------------------------------------------
# formatting helpers
# ---------------------------------------------------------------------------------------------


def _format_metadata(meta: Element, indent: int, out: list[str]) -> None:
    """virXMLFormatMetadata: libxml2's pretty printer (double quotes), indented."""
    children = [c for c in meta if isinstance(c.tag, str)]
    pad = " " * indent
    if not children:
        out.append(f"{pad}<metadata/>")
        return
    out.append(f"{pad}<metadata>")
    for child in children:
        out.extend(pretty_lines(child, pad + "  "))
    out.append(f"{pad}</metadata>")


def format_domain_lines(root: Element, indent: int = 0, out: list[str] | None = None) -> list[str]:
    """format_element for a domain element (at ``indent``), with ``<metadata>`` printed the way
    libvirt does (libxml2's own serialiser); used for snapshots' embedded domains too."""
    if out is None:
        out = []
    # elements libvirt always prints open even when empty, indented for where they land
    hyperv = _find_path(root, ("features", "hyperv"))
    if hyperv is not None:
        _keep_open(hyperv, indent // 2 + 2)
    devices = _first(root, "devices")
    if devices is not None:
        _keep_open(devices, indent // 2 + 1)
        for redir in devices.iterchildren("redirdev"):
            _keep_open(redir, indent // 2 + 2)
    meta = _first(root, "metadata")
    if meta is None:
        format_element(root, indent, out)
        return out
    # the open tag of the root: format a shell with a text placeholder and cut before it
    head: list[str] = []
    shell = etree.Element(root.tag, nsmap=root.nsmap)  # type: ignore[arg-type]
    for k, v in root.attrib.items():
        shell.set(k, v)
    shell.text = "x"
    format_element(shell, indent, head)
    out.append(head[0][: head[0].rindex(">x<") + 1])
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child is meta:
            _format_metadata(child, indent + 2, out)
        else:
            format_element(child, indent + 2, out)
    out.append(f"{' ' * indent}</{root.tag}>")
    return out


#: Where ``format_domain_lines`` writes what the tree does not say: ``<metadata>`` (libxml2's
#: printer), and the elements it keeps open (``_keep_open``).  At the top level (indent 0) the
#: tree says the same when ``<devices>`` has children or exactly the text a parse gave it, and
#: features' ``<hyperv>`` and devices' ``<redirdev>`` (at depth 2) have children.  Other
#: elements of these names are left alone by ``format_domain_lines`` and only cost the fast
#: path.
_SPECIAL_LAYOUT = re.compile(
    r"<(?:metadata|devices(?!>\n(?:    <|  </devices>))|hyperv(?![^>]*>\n      <)"
    r"|redirdev(?![^>]*>\n      <))"
)


def _format_domain(root: Element) -> str:
    return "\n".join(format_domain_lines(root)) + "\n"


# ---------------------------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------------------------

_T = TypeVar("_T")


def _memo(compute: Callable[[DomainDocument], _T]) -> Callable[[DomainDocument], _T]:
    """An accessor computed from the tree once, then kept in ``_facts`` until an edit."""
    key = compute.__name__

    def get(doc: DomainDocument) -> _T:
        facts = doc._facts
        if key in facts:
            return cast("_T", facts[key])
        value = facts[key] = compute(doc)
        return value

    get.__name__ = key
    get.__doc__ = compute.__doc__
    return get


#: The accessors kept in ``DomainDocument._facts`` (see :func:`_memo`).
_FACTS = ("name", "uuid", "memory_kib", "current_memory_kib", "max_vcpus", "current_vcpus", "os_type",
          "info_facts")


class DomainDocument(XMLDocument):
    """A domain definition.

    ``from_string(text, inactive=False, validate=False, default_arch='x86_64',
    video_type='cirrus', mac_prefix='52:54:00', first_parse=False, console_target='serial')``
    parses and normalises like libvirt's generic code plus what a driver's post-parse
    defaults (``console_target``: the target type of a console that names none, ``lxc`` for
    the LXC driver); ``inactive=True`` is ``VIR_DOMAIN_DEF_PARSE_INACTIVE``
    (live-only data dropped), ``validate=True`` checks the input against ``domain.rng`` first.
    Formatting what a parse gives and parsing that again changes nothing (a fixed point),
    which libvirt's parse is not for disks: it orders them by the bus written in the XML, and
    its output by the final bus.  ``first_parse=True`` keeps the order of that first parse (a
    driver that keeps libvirt's original definition and a copy made through XML needs both).

    ``name``, ``uuid``, the memory sizes, the vCPU counts and ``os_type`` (``_FACTS``) are
    derived once, when parsing, kept by copies, and forgotten by the setters of those
    elements (``info()`` and list read them on every call).  Code that edits ``root`` directly
    must leave those elements alone.
    """

    ROOT: ClassVar[str] = "domain"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = ErrorDomain.DOMAIN
    SCHEMA: ClassVar[str] = "domain"

    __slots__ = ("_facts",)

    def __init__(self, root: Element) -> None:
        super().__init__(root)
        self._facts: dict[str, object] = {}

    def post_parse(self, **options: Any) -> None:
        self._facts.clear()
        try:
            _Normalizer(
                self.root,
                inactive=bool(options.get("inactive", False)),
                default_arch=str(options.get("default_arch", "x86_64")),
                video_type=str(options.get("video_type", "cirrus")),
                mac_prefix=str(options.get("mac_prefix", "52:54:00")),
                first_parse=bool(options.get("first_parse", False)),
                console_target=str(options.get("console_target", "serial")),
            ).run()
        except VirtError:
            raise
        except (ValueError, TypeError, AttributeError, IndexError, KeyError, AssertionError) as exc:
            # a shape of XML the normaliser did not foresee: still a clean, typed failure
            raise _fail(f"unable to parse domain definition: {exc}", _E.INTERNAL_ERROR) from None
        # Derive the facts now, while the tree is fresh in cache: a driver reads them on every
        # info() and list, and copies of this document (a running domain's) inherit them.
        for fact in _FACTS:
            getattr(self, fact)

    def copy(self) -> Self:
        twin = super().copy()
        twin._facts.update(self._facts)  # the same tree, so the same facts
        return twin

    # -- formatting -------------------------------------------------------------------------

    def to_string(self, **options: Any) -> str:
        """Format as libvirt does.  ``secure=False`` (the default, as in libvirt) leaves out
        passwords; ``inactive=True`` leaves out live-only data (id, generated names...)."""
        secure = bool(options.get("secure", False))
        inactive = bool(options.get("inactive", False))
        root = self.root
        if not inactive:
            text = format_tree(root)
            if text is not None and not _SPECIAL_LAYOUT.search(text) and (secure or " passwd='" not in text):
                return text
        needs_copy = inactive or (not secure and _has_secrets(root))
        if needs_copy:
            root = copy.deepcopy(root)
            if not secure:
                _strip_secrets(root)
            if inactive:
                _strip_live(root)
        return _format_domain(root)

    # -- accessors --------------------------------------------------------------------------

    @property
    def type(self) -> str:
        return self.root.get("type", "")

    @property
    @_memo
    def name(self) -> str:
        return text_of(_first(self.root, "name")) or ""

    @name.setter
    def name(self, value: str) -> None:
        if not value:
            raise VirtError(_E.INVALID_ARG, "domain name must not be empty", domain=_D)
        if "/" in value:
            raise _fail(f"name {value} cannot contain '/'")
        refuse_dot_name(value, "domain", _D)
        _set_text_child(self.root, "name", value)
        sort_children(self.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))
        self._facts.clear()

    @property
    @_memo
    def uuid(self) -> str:
        raw = text_of(_first(self.root, "uuid"))
        parsed = _parse_uuid(raw) if raw is not None else None
        return parsed or ""

    def _optional_text(self, tag: str) -> str | None:
        return text_of(_first(self.root, tag))

    def _set_optional_text(self, tag: str, value: str | None) -> None:
        el = _first(self.root, tag)
        if value is None or value == "":
            if el is not None:
                self.root.remove(el)
            return
        if tag == "title" and "\n" in value:
            raise _fail("Domain title can't contain newlines")
        _set_text_child(self.root, tag, value)
        sort_children(self.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))

    @property
    def title(self) -> str | None:
        return self._optional_text("title")

    @title.setter
    def title(self, value: str | None) -> None:
        self._set_optional_text("title", value)

    @property
    def description(self) -> str | None:
        return self._optional_text("description")

    @description.setter
    def description(self, value: str | None) -> None:
        self._set_optional_text("description", value)

    def set_metadata(self, kind: int, metadata: str | None, key: str | None, uri: str | None) -> None:
        """``virDomainSetMetadata`` on this document, the type already checked: 0 the
        description, 1 the title (None or "" removes either), 2 the ``<metadata>`` element of
        namespace ``uri``."""
        if kind == 1:
            self.title = metadata or None
        elif kind == 0:
            self.description = metadata or None
        else:
            self.set_metadata_element(metadata, key or "", uri or "")

    def set_metadata_element(self, metadata: str | None, key: str, uri: str) -> None:
        """``virDomainSetMetadata(VIR_DOMAIN_METADATA_ELEMENT)``: replace the ``<metadata>``
        child in namespace ``uri`` by ``metadata`` (an XML element, put in ``uri`` under the
        prefix ``key``); an empty or None ``metadata`` removes it."""
        from virt.xml._base import parse_xml

        root = self.root
        meta = root.find("metadata")
        if meta is not None:
            for child in list(meta):
                if isinstance(child.tag, str) and child.tag.startswith(f"{{{uri}}}"):
                    meta.remove(child)
        if not metadata:
            if meta is not None and not any(isinstance(c.tag, str) for c in meta):
                root.remove(meta)
            return
        element = _in_namespace(parse_xml(metadata, domain=ErrorDomain.DOMAIN), key, uri)
        if meta is None:
            meta = etree.Element("metadata")
            anchor = None
            for tag in ("description", "title", "uuid", "name"):
                anchor = root.find(tag)
                if anchor is not None:
                    break
            if anchor is not None:
                anchor.addnext(meta)
            else:
                root.insert(0, meta)
        meta.append(element)

    def get_metadata_element(self, uri: str) -> str | None:
        """``virDomainGetMetadata(VIR_DOMAIN_METADATA_ELEMENT)``: the ``<metadata>`` child in
        namespace ``uri``, without its namespace, or None."""
        meta = self.root.find("metadata")
        if meta is None:
            return None
        for child in meta:
            if isinstance(child.tag, str) and child.tag.startswith(f"{{{uri}}}"):
                return etree.tostring(_without_namespace(child), encoding="unicode", with_tail=False)
        return None

    def _int_child(self, tag: str, default: int = 0) -> int:
        el = _first(self.root, tag)
        raw = text_of(el)
        value = _to_uint(raw.strip(), _ULLONG_MAX) if raw is not None else None
        if value is None or el is None:
            return default
        unit = el.get("unit")
        if tag in ("vcpu",) or unit in (None, "KiB", "k", "K"):
            return value
        return -(-_scale(value, unit) // 1024)

    def _set_mem(self, tag: str, kib: int) -> None:
        if kib < 0:
            raise VirtError(_E.INVALID_ARG, f"invalid {tag} size {kib}", domain=_D)
        el = _first(self.root, tag)
        if el is None:
            el = sub(self.root, tag)
        _set_text_child(self.root, tag, str(kib))
        extra = [("dumpCore", el.get("dumpCore"))] if tag == "memory" else []
        set_attrs(el, [*extra, ("unit", "KiB")], keep_unknown=False)
        sort_children(self.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))
        self._facts.clear()

    @property
    @_memo
    def memory_kib(self) -> int:
        return self._int_child("memory")

    @memory_kib.setter
    def memory_kib(self, kib: int) -> None:
        self._set_mem("memory", kib)
        if self.current_memory_kib > kib:
            self._set_mem("currentMemory", kib)

    @property
    @_memo
    def current_memory_kib(self) -> int:
        return self._int_child("currentMemory", self.memory_kib)

    @current_memory_kib.setter
    def current_memory_kib(self, kib: int) -> None:
        self._set_mem("currentMemory", kib)

    @property
    @_memo
    def max_vcpus(self) -> int:
        return self._int_child("vcpu", 1)

    @max_vcpus.setter
    def max_vcpus(self, count: int) -> None:
        if count < 1:
            raise VirtError(_E.INVALID_ARG, f"invalid vcpu count {count}", domain=_D)
        current = self.current_vcpus
        vcpu = _first(self.root, "vcpu")
        if vcpu is None:
            vcpu = sub(self.root, "vcpu", {"placement": "static"})
        _set_text_child(self.root, "vcpu", str(count))
        self._set_current_attr(vcpu, min(current, count), count)
        sort_children(self.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))
        self._facts.clear()

    @property
    @_memo
    def current_vcpus(self) -> int:
        vcpu = _first(self.root, "vcpu")
        raw = vcpu.get("current") if vcpu is not None else None
        value = _to_uint(raw) if raw is not None else None
        return value if value else self.max_vcpus

    @current_vcpus.setter
    def current_vcpus(self, count: int) -> None:
        if count < 1 or count > self.max_vcpus:
            raise VirtError(_E.INVALID_ARG, f"requested vcpus is greater than max allowable vcpus for the domain: "
                            f"{count} > {self.max_vcpus}" if count > 0 else f"invalid vcpu count {count}", domain=_D)
        vcpu = _first(self.root, "vcpu")
        if vcpu is None:
            vcpu = sub(self.root, "vcpu", {"placement": "static"}, text=str(self.max_vcpus))
            sort_children(self.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))
        self._set_current_attr(vcpu, count, self.max_vcpus)
        self._facts.clear()

    @property
    @_memo
    def info_facts(self) -> tuple[int, int, int]:
        """``(memory_kib, current_memory_kib, current_vcpus)`` in one read: what a driver's
        ``info()`` reports on every call."""
        return self.memory_kib, self.current_memory_kib, self.current_vcpus

    @staticmethod
    def _set_current_attr(vcpu: Element, current: int, maximum: int) -> None:
        set_attrs(vcpu, (("placement", vcpu.get("placement") or "static"), ("cpuset", vcpu.get("cpuset")),
                          ("current", str(current) if current != maximum else None)))

    def _os_type_el(self) -> Element | None:
        return _find_path(self.root, ("os", "type"))

    @property
    @_memo
    def os_type(self) -> str:
        return text_of(self._os_type_el()) or ""

    @property
    def arch(self) -> str | None:
        el = self._os_type_el()
        return el.get("arch") if el is not None else None

    @property
    def machine(self) -> str | None:
        el = self._os_type_el()
        return el.get("machine") if el is not None else None

    @property
    def id(self) -> int:
        raw = self.root.get("id")
        value = _to_int(raw) if raw is not None else None
        return -1 if value is None else value

    def set_pty_path(self, chardev: Element, path: str) -> None:
        """Show where a pty character device of this document (``<console>``, ``<serial>``...)
        was opened, as libvirt's live XML does: ``<source path=...>`` first, and ``tty=`` on a
        console."""
        if chardev.tag == "console":
            chardev.set("tty", path)
        source = _first(chardev, "source")
        if source is None:
            source = sub(chardev, "source", index=0)
        source.set("path", path)

    def set_id(self, dom_id: int) -> None:
        """Set the live ``id`` attribute (``-1`` removes it)."""
        if dom_id < 0:
            self.root.attrib.pop("id", "")
        else:
            self.root.set("id", str(dom_id))
            _reorder_attrs(self.root, ("type", "id"))

    def disks(self) -> tuple[DiskInfo, ...]:
        out: list[DiskInfo] = []
        for disk in _iter_path(self.root, ("devices", "disk")):
            target = _first(disk, "target")
            driver = _first(disk, "driver")
            out.append(DiskInfo(
                type=disk.get("type"),
                device=disk.get("device") or "disk",
                source=_disk_source(disk),
                target=target.get("dev") if target is not None else None,
                bus=target.get("bus") if target is not None else None,
                driver_type=driver.get("type") if driver is not None else None,
                readonly=_first(disk, "readonly") is not None,
            ))
        return tuple(out)

    def interfaces(self) -> tuple[InterfaceInfo, ...]:
        out: list[InterfaceInfo] = []
        for net in _iter_path(self.root, ("devices", "interface")):
            source = _first(net, "source")
            src: str | None = None
            if source is not None:
                for key in _SOURCE_KEYS:
                    src = source.get(key)
                    if src is not None:
                        break
            target = _first(net, "target")
            model = _first(net, "model")
            mac = _first(net, "mac")
            out.append(InterfaceInfo(
                type=net.get("type"),
                source=src,
                target_dev=target.get("dev") if target is not None else None,
                model=model.get("type") if model is not None else None,
                mac=mac.get("address") if mac is not None else None,
            ))
        return tuple(out)

    def set_interface_target(self, index: int, dev: str | None) -> None:
        """Set (or with None remove) ``<target dev=...>`` of the ``index``-th interface."""
        nets = list(_iter_path(self.root, ("devices", "interface")))
        if not 0 <= index < len(nets):
            raise VirtError(_E.INVALID_ARG, f"no interface at index {index}", domain=_D)
        net = nets[index]
        target = _first(net, "target")
        if dev is None:
            if target is not None:
                net.remove(target)
            return
        if target is None:
            target = sub(net, "target")
            sort_children(net, _NET_HOSTDEV_RANK if net.get("type") == "hostdev" else _NET_RANK)
        target.set("dev", dev)
        _reorder_attrs(target, ("dev", "managed"))


# --- secure / inactive formatting ---------------------------------------------------------------


def _has_secrets(root: Element) -> bool:
    return root.find("devices/graphics[@passwd]") is not None


def _strip_secrets(root: Element) -> None:
    for gr in root.iterfind("devices/graphics[@passwd]"):
        del gr.attrib["passwd"]


def _strip_live(root: Element) -> None:
    """What VIR_DOMAIN_DEF_FORMAT_INACTIVE leaves out (the same data an inactive parse drops)."""
    root.attrib.pop("id", "")
    for alias in root.iterfind("devices//alias"):
        name = alias.get("name") or ""
        parent = alias.getparent()
        if not name.startswith("ua-") and parent is not None:
            parent.remove(alias)
    for disk in _iter_path(root, ("devices", "disk")):
        for mirror in list(disk.iterchildren("mirror")):
            disk.remove(mirror)
        for src in disk.iter("source"):
            src.attrib.pop("index", "")
            for label in list(src.iterchildren("seclabel")):
                if label.get("labelskip") == "yes":
                    src.remove(label)
        for store in disk.iter("backingStore"):
            store.attrib.pop("index", "")
    for label in list(root.iterchildren("seclabel")):
        for image in list(label.iterchildren("imagelabel")):
            label.remove(image)
        if label.get("type") == "dynamic":
            for lab in list(label.iterchildren("label")):
                label.remove(lab)
    for chan_target in root.iterfind("devices/channel/target[@state]"):
        del chan_target.attrib["state"]
    for el in root.iterfind("cputune/*[@id]"):
        if el.tag in ("cachetune", "memorytune"):
            del el.attrib["id"]
    for net in _iter_path(root, ("devices", "interface")):
        target = _first(net, "target")
        if target is not None:
            dev = target.get("dev") or ""
            if dev.startswith(_VNET_PREFIXES) and target.get("managed") != "no":
                net.remove(target)
    for chr_el in root.iterfind("devices/*"):
        if chr_el.get("type") == "pty" and chr_el.tag in _CHR_DEVICES:
            chr_el.attrib.pop("tty", "")
            for src in list(chr_el.iterchildren("source")):
                chr_el.remove(src)
    for gr in _iter_path(root, ("devices", "graphics")):
        if gr.get("autoport") == "yes" and gr.get("port") not in (None, "-1"):
            gr.set("port", "-1")
        for lst in gr.findall("listen[@type='network']"):
            lst.attrib.pop("address", "")
        if gr.find("listen[@type='network']") is not None and gr.get("listen") is not None:
            first = _first(gr, "listen")
            if first is not None and first.get("type") == "network":
                del gr.attrib["listen"]


def _in_namespace(elem: Element, key: str, uri: str) -> Element:
    """``elem`` with every unqualified element moved into ``uri`` under prefix ``key``."""

    def convert(src: Element, parent: Element | None) -> Element:
        local = etree.QName(src).localname
        tag = f"{{{uri}}}{local}" if etree.QName(src).namespace is None else src.tag
        node = etree.SubElement(parent, tag) if parent is not None else etree.Element(tag, nsmap={key: uri})
        for name, value in src.attrib.items():
            node.set(name, value)
        node.text = src.text
        node.tail = src.tail if parent is not None else None
        for child in src:
            if isinstance(child.tag, str):
                convert(child, node)
        return node

    return convert(elem, None)


def _without_namespace(elem: Element) -> Element:
    """A copy of ``elem`` with every element's namespace dropped."""

    def convert(src: Element) -> Element:
        node = etree.Element(etree.QName(src).localname)
        for name, value in src.attrib.items():
            node.set(name, value)
        node.text = src.text
        for child in src:
            if isinstance(child.tag, str):
                sub_node = convert(child)
                sub_node.tail = child.tail
                node.append(sub_node)
        return node

    return convert(elem)
