"""The host's SMBIOS information: ``virConnectGetSysinfo``'s ``<sysinfo type='smbios'>`` and the
``computer`` node device's identity.

libvirt runs ``dmidecode`` and keeps some of what it prints.  This reads the same SMBIOS table
directly (``/sys/firmware/dmi/tables/DMI``, readable by root only) and prints each value as
dmidecode does; without it, the kernel's ``/sys/class/dmi/id`` files give the BIOS, system,
board and chassis strings (their serial numbers and the UUID again only to root: what cannot be
read is left out).  Structures read: BIOS (0), system (1), base board (2), chassis (3),
processor (4), OEM strings (11), memory device (17).
"""

from __future__ import annotations

import struct

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import escape

from virt_host._sysfs import SysRoot

__all__ = ["SmbiosStructure", "dmi_identity", "parse_smbios", "sysinfo_xml"]

_DMI_ID = "/sys/class/dmi/id"
_TABLES = "/sys/firmware/dmi/tables"

_PROCESSOR_TYPES = {1: "Other", 2: "Unknown", 3: "Central Processor", 4: "Math Processor", 5: "DSP Processor",
                    6: "Video Processor"}
# SMBIOS processor families (the common ones; others are left out)
_PROCESSOR_FAMILIES = {
    0x01: "Other", 0x02: "Unknown", 0x03: "8086", 0x04: "80286", 0x05: "80386", 0x06: "80486", 0x0B: "Pentium",
    0x0C: "Pentium Pro", 0x0D: "Pentium II", 0x0E: "Pentium MMX", 0x0F: "Celeron", 0x10: "Pentium II Xeon",
    0x11: "Pentium III", 0x12: "M1", 0x13: "M2", 0x14: "Celeron M", 0x15: "Pentium 4 HT", 0x18: "Duron",
    0x19: "K5", 0x1A: "K6", 0x1B: "K6-2", 0x1C: "K6-3", 0x1D: "Athlon", 0x1F: "K6-2+", 0x28: "Core Duo",
    0x29: "Core Duo Mobile", 0x2A: "Core Solo Mobile", 0x2B: "Atom", 0x2C: "Core M", 0x2D: "Core m3",
    0x2E: "Core m5", 0x2F: "Core m7", 0x38: "Turion II Ultra Dual-Core Mobile M", 0x39: "Turion II Dual-Core Mobile M",
    0x3A: "Athlon II Dual-Core M", 0x3B: "Opteron 6100", 0x3C: "Opteron 4100", 0x3D: "Opteron 6200",
    0x3E: "Opteron 4200", 0x3F: "FX", 0x46: "C-Series", 0x47: "E-Series", 0x48: "A-Series", 0x49: "G-Series",
    0x4A: "Z-Series", 0x4B: "R-Series", 0x4C: "Opteron 4300", 0x4D: "Opteron 6300", 0x4E: "Opteron 3300",
    0x4F: "FirePro", 0x6B: "Zen", 0x83: "Athlon 64", 0x84: "Opteron", 0x85: "Sempron", 0x86: "Turion 64",
    0x87: "Dual-Core Opteron", 0x88: "Athlon 64 X2", 0x89: "Turion 64 X2", 0x8A: "Quad-Core Opteron",
    0x8B: "Third-Generation Opteron", 0x8C: "Phenom FX", 0x8D: "Phenom X4", 0x8E: "Phenom X2", 0x8F: "Athlon X2",
    0xA1: "Quad-Core Xeon 3200", 0xA2: "Dual-Core Xeon 3000", 0xA3: "Quad-Core Xeon 5300",
    0xA4: "Dual-Core Xeon 5100", 0xA5: "Dual-Core Xeon 5000", 0xA6: "Dual-Core Xeon LV",
    0xA7: "Dual-Core Xeon ULV", 0xA8: "Dual-Core Xeon 7100", 0xA9: "Quad-Core Xeon 5400",
    0xAA: "Quad-Core Xeon", 0xAB: "Dual-Core Xeon 5200", 0xAC: "Dual-Core Xeon 7200", 0xAD: "Quad-Core Xeon 7300",
    0xAE: "Quad-Core Xeon 7400", 0xAF: "Multi-Core Xeon 7400", 0xB0: "Pentium III Xeon",
    0xB1: "Pentium III Speedstep", 0xB2: "Pentium 4", 0xB3: "Xeon", 0xB5: "Xeon MP", 0xB6: "Athlon XP",
    0xB7: "Athlon MP", 0xB8: "Itanium 2", 0xB9: "Pentium M", 0xBA: "Celeron D", 0xBB: "Pentium D",
    0xBC: "Pentium EE", 0xBD: "Core Solo", 0xBF: "Core 2 Duo", 0xC0: "Core 2 Solo", 0xC1: "Core 2 Extreme",
    0xC2: "Core 2 Quad", 0xC3: "Core 2 Extreme Mobile", 0xC4: "Core 2 Duo Mobile", 0xC5: "Core 2 Solo Mobile",
    0xC6: "Core i7", 0xC7: "Dual-Core Celeron", 0xCD: "Core i5", 0xCE: "Core i3", 0xCF: "Core i9",
    0xE6: "Embedded Opteron Quad-Core", 0xE7: "Phenom Triple-Core", 0xE8: "Turion Ultra Dual-Core Mobile",
    0xE9: "Turion Dual-Core Mobile", 0xEA: "Athlon Dual-Core", 0xEB: "Sempron SI", 0xEC: "Phenom II",
    0xED: "Athlon II", 0xEE: "Six-Core Opteron", 0xEF: "Sempron M", 0x100: "ARMv7", 0x101: "ARMv8",
    0x102: "ARMv9", 0x200: "RISC-V RV32", 0x201: "RISC-V RV64", 0x202: "RISC-V RV128",
}
_FORM_FACTORS = ("Other", "Unknown", "SIMM", "SIP", "Chip", "DIP", "ZIP", "Proprietary Card", "DIMM", "TSOP",
                 "Row Of Chips", "RIMM", "SODIMM", "SRIMM", "FB-DIMM", "Die")
_MEMORY_TYPES = ("Other", "Unknown", "DRAM", "EDRAM", "VRAM", "SRAM", "RAM", "ROM", "Flash", "EEPROM", "FEPROM",
                 "EPROM", "CDRAM", "3DRAM", "SDRAM", "SGRAM", "RDRAM", "DDR", "DDR2", "DDR2 FB-DIMM", "Reserved",
                 "Reserved", "Reserved", "DDR3", "FBD2", "DDR4", "LPDDR", "LPDDR2", "LPDDR3", "LPDDR4",
                 "Logical non-volatile device", "HBM", "HBM2", "DDR5", "LPDDR5", "HBM3")
_TYPE_DETAILS = ("Other", "Unknown", "Fast-paged", "Static Column", "Pseudo-static", "RAMBus", "Synchronous",
                 "CMOS", "EDO", "Window DRAM", "Cache DRAM", "Non-Volatile", "Registered (Buffered)",
                 "Unbuffered (Unregistered)", "LRDIMM")
_CPU_STATUS = {0: "Unknown", 1: "Enabled", 2: "Disabled By User", 3: "Disabled By BIOS", 4: "Idle", 7: "Other"}


class SmbiosStructure:
    """One SMBIOS structure: its type, formatted area and strings."""

    __slots__ = ("data", "strings", "type")

    def __init__(self, type: int, data: bytes, strings: list[bytes]) -> None:
        self.type = type
        self.data = data
        self.strings = strings

    def byte(self, offset: int) -> int | None:
        return self.data[offset] if offset < len(self.data) else None

    def word(self, offset: int) -> int | None:
        return int(struct.unpack_from("<H", self.data, offset)[0]) if offset + 2 <= len(self.data) else None

    def dword(self, offset: int) -> int | None:
        return int(struct.unpack_from("<I", self.data, offset)[0]) if offset + 4 <= len(self.data) else None

    def string(self, offset: int) -> str | None:
        """The string a byte at ``offset`` points to, as dmidecode prints it; None when the
        structure is too short to have the field."""
        index = self.byte(offset)
        if index is None:
            return None
        if index == 0:
            return "Not Specified"
        if index > len(self.strings):
            return "<BAD INDEX>"
        raw = self.strings[index - 1]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in raw).strip()
        return text


def parse_smbios(table: bytes) -> list[SmbiosStructure]:
    """The structures of a raw SMBIOS table (up to the end-of-table structure)."""
    out: list[SmbiosStructure] = []
    pos = 0
    while pos + 4 <= len(table):
        kind, length = table[pos], table[pos + 1]
        if length < 4 or pos + length > len(table):
            break
        data = table[pos:pos + length]
        end = table.find(b"\0\0", pos + length)
        if end < 0:
            break
        strings = [s for s in table[pos + length:end].split(b"\0")] if end > pos + length else []
        out.append(SmbiosStructure(kind, data, strings))
        pos = end + 2
        if kind == 127:
            break
    return out


def _smbios_version(host: SysRoot) -> tuple[int, int]:
    entry = host.read_bytes(f"{_TABLES}/smbios_entry_point", 32) or b""
    if entry.startswith(b"_SM3_") and len(entry) > 8:
        return entry[7], entry[8]
    if entry.startswith(b"_SM_") and len(entry) > 7:
        return entry[6], entry[7]
    return 3, 0


def _uuid(raw: bytes, version: tuple[int, int]) -> str:
    if raw == b"\xff" * 16:
        return "Not Present"
    if raw == b"\0" * 16:
        return "Not Settable"
    if version >= (2, 6):
        # since SMBIOS 2.6 the first three fields are little-endian
        raw = raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
    text = raw.hex().upper()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _size(value: int, unit: str = "MB") -> str:
    units = ("bytes", "kB", "MB", "GB", "TB", "PB")
    index = units.index(unit)
    while value and value % 1024 == 0 and index < len(units) - 1:
        value //= 1024
        index += 1
    return f"{value} {units[index]}"


def _signature(s: SmbiosStructure, family: int | None, manufacturer: str | None) -> str | None:
    eax = s.dword(0x08)
    if eax is None or family is None:
        return None
    maker = (manufacturer or "").lower()
    amd = "amd" in maker or "hygon" in maker or family in range(0x18, 0x20) or family in range(0x38, 0x50) \
        or family in range(0x66, 0x6C) or family in range(0x83, 0x90) or family in (0xB6, 0xB7) \
        or family in range(0xE4, 0xF0)
    intel = "intel" in maker or family in range(0x0B, 0x16) or family in range(0x28, 0x30) \
        or family in range(0xA1, 0xB4) or family in (0xB5,) or family in range(0xB9, 0xC8) \
        or family in range(0xCD, 0xD0) or family in range(0xD2, 0xDC) or family in range(0xDD, 0xE1)
    base_family, base_model, stepping = (eax >> 8) & 0xF, (eax >> 4) & 0xF, eax & 0xF
    if amd:
        fam = base_family + ((eax >> 20) & 0xFF) if base_family == 0xF else base_family
        model = base_model + ((eax >> 12) & 0xF0) if base_family == 0xF else base_model
        return f"Family {fam}, Model {model}, Stepping {stepping}"
    if intel:
        return (f"Type {(eax >> 12) & 0x3}, Family {((eax >> 20) & 0xFF) + base_family}, "
                f"Model {((eax >> 12) & 0xF0) + base_model}, Stepping {stepping}")
    return None


def _entries(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(key, value) for key, value in pairs if value is not None and value != ""]


def _from_table(host: SysRoot, table: bytes) -> dict[str, list[list[tuple[str, str]]]]:
    """Section name -> the entries of each of its structures, as libvirt keeps them."""
    version = _smbios_version(host)
    out: dict[str, list[list[tuple[str, str]]]] = {}

    def add(section: str, entries: list[tuple[str, str]]) -> None:
        if entries:
            out.setdefault(section, []).append(entries)

    for s in parse_smbios(table):
        if s.type == 0:
            major, minor = s.byte(0x14), s.byte(0x15)
            release = f"{major}.{minor}" if major is not None and minor is not None and 0xFF not in (major, minor) \
                else None
            add("bios", _entries([("vendor", s.string(0x04)), ("version", s.string(0x05)),
                                  ("date", s.string(0x08)), ("release", release)]))
        elif s.type == 1:
            raw_uuid = s.data[0x08:0x18] if len(s.data) >= 0x18 else None
            add("system", _entries([
                ("manufacturer", s.string(0x04)), ("product", s.string(0x05)), ("version", s.string(0x06)),
                ("serial", s.string(0x07)), ("uuid", _uuid(raw_uuid, version) if raw_uuid else None),
                ("sku", s.string(0x19)), ("family", s.string(0x1A)),
            ]))
        elif s.type == 2:
            add("baseBoard", _entries([
                ("manufacturer", s.string(0x04)), ("product", s.string(0x05)), ("version", s.string(0x06)),
                ("serial", s.string(0x07)), ("asset", s.string(0x08)), ("location", s.string(0x0A)),
            ]))
        elif s.type == 3:
            count, length = s.byte(0x13), s.byte(0x14)
            sku = s.string(0x15 + count * length) if count is not None and length is not None else None
            add("chassis", _entries([
                ("manufacturer", s.string(0x04)), ("version", s.string(0x06)), ("serial", s.string(0x07)),
                ("asset", s.string(0x08)), ("sku", sku),
            ]))
        elif s.type == 4:
            kind = s.byte(0x05)
            family = s.byte(0x06)
            if family == 0xFE:
                family = s.word(0x28)
            manufacturer = s.string(0x07)
            clock, max_speed, status = s.word(0x12), s.word(0x14), s.byte(0x18)
            status_text = None
            if status is not None:
                status_text = (f"Populated, {_CPU_STATUS.get(status & 7, '<OUT OF SPEC>')}" if status & 0x40
                               else "Unpopulated")
            add("processor", _entries([
                ("socket_destination", s.string(0x04)),
                ("type", _PROCESSOR_TYPES.get(kind, "<OUT OF SPEC>") if kind is not None else None),
                ("family", _PROCESSOR_FAMILIES.get(family) if family is not None else None),
                ("manufacturer", manufacturer),
                ("signature", _signature(s, family, manufacturer)),
                ("version", s.string(0x10)),
                ("external_clock", (f"{clock} MHz" if clock else "Unknown") if clock is not None else None),
                ("max_speed", (f"{max_speed} MHz" if max_speed else "Unknown") if max_speed is not None else None),
                ("status", status_text),
                ("serial_number", s.string(0x20)), ("part_number", s.string(0x22)),
            ]))
        elif s.type == 11:
            count = s.byte(0x04) or 0
            strings = ["".join(chr(b) if 32 <= b < 127 else "." for b in raw) for raw in s.strings[:count]]
            add("oemStrings", [("", text) for text in strings])
        elif s.type == 17:
            size = s.word(0x0C)
            if size is None or size == 0:
                continue  # "No Module Installed": libvirt skips the slot
            if size == 0xFFFF:
                size_text = "Unknown"
            elif size == 0x7FFF:
                extended = s.dword(0x1C)
                size_text = _size(extended & 0x7FFFFFFF) if extended is not None else "Unknown"
            else:
                size_text = _size(size & 0x7FFF, "kB" if size & 0x8000 else "MB")
            form, mtype, detail, speed = s.byte(0x0E), s.byte(0x12), s.word(0x13), s.word(0x15)
            detail_text = None
            if detail is not None:
                names = [name for bit, name in enumerate(_TYPE_DETAILS, start=1) if detail & (1 << bit)]
                detail_text = " ".join(names) if names else "None"
            add("memory_device", _entries([
                ("size", size_text),
                ("form_factor", _FORM_FACTORS[form - 1] if form and form <= len(_FORM_FACTORS) else None),
                ("locator", s.string(0x10)), ("bank_locator", s.string(0x11)),
                ("type", _MEMORY_TYPES[mtype - 1] if mtype and mtype <= len(_MEMORY_TYPES) else None),
                ("type_detail", detail_text),
                ("speed", (f"{speed} MT/s" if speed else "Unknown") if speed is not None else None),
                ("manufacturer", s.string(0x17)), ("serial_number", s.string(0x18)),
                ("part_number", s.string(0x1A)),
            ]))
    return out


# (section, key, dmi/id file) where the kernel's files say the same as the table
_DMI_ID_FILES = (
    ("bios", "vendor", "bios_vendor"), ("bios", "version", "bios_version"), ("bios", "date", "bios_date"),
    ("bios", "release", "bios_release"),
    ("system", "manufacturer", "sys_vendor"), ("system", "product", "product_name"),
    ("system", "version", "product_version"), ("system", "serial", "product_serial"),
    ("system", "uuid", "product_uuid"), ("system", "sku", "product_sku"), ("system", "family", "product_family"),
    ("baseBoard", "manufacturer", "board_vendor"), ("baseBoard", "product", "board_name"),
    ("baseBoard", "version", "board_version"), ("baseBoard", "serial", "board_serial"),
    ("baseBoard", "asset", "board_asset_tag"),
    ("chassis", "manufacturer", "chassis_vendor"), ("chassis", "version", "chassis_version"),
    ("chassis", "serial", "chassis_serial"), ("chassis", "asset", "chassis_asset_tag"),
)


def _from_dmi_id(host: SysRoot) -> dict[str, list[list[tuple[str, str]]]]:
    out: dict[str, list[list[tuple[str, str]]]] = {}
    sections: dict[str, list[tuple[str, str]]] = {}
    for section, key, name in _DMI_ID_FILES:
        value = host.read(f"{_DMI_ID}/{name}")
        if value is None:
            continue
        if key == "uuid":
            value = value.upper()
        sections.setdefault(section, []).append((key, value))
    for section, entries in sections.items():
        out[section] = [entries]
    return out


def _sections(host: SysRoot) -> dict[str, list[list[tuple[str, str]]]]:
    table = host.read_bytes(f"{_TABLES}/DMI")
    if table:
        found = _from_table(host, table)
        if found:
            return found
    return _from_dmi_id(host)


_ORDER = ("bios", "system", "baseBoard", "chassis", "processor", "memory_device", "oemStrings")
_SINGLE = ("bios", "system", "chassis")


def sysinfo_xml(host: SysRoot) -> str:
    """``virConnectGetSysinfo``: the host's ``<sysinfo type='smbios'>``."""
    sections = _sections(host)
    if not sections:
        raise VirtError(ErrorNumber.CONFIG_UNSUPPORTED, "Host SMBIOS information is not available",
                        domain=ErrorDomain.SYSINFO)
    out = ["<sysinfo type='smbios'>"]
    for section in _ORDER:
        groups = sections.get(section)
        if not groups:
            continue
        if section in _SINGLE:
            groups = groups[:1]
        if section == "oemStrings":
            out.append("  <oemStrings>")
            out += [f"    <entry>{escape(value)}</entry>" for group in groups for _, value in group]
            out.append("  </oemStrings>")
            continue
        for group in groups:
            out.append(f"  <{section}>")
            out += [f"    <entry name='{key}'>{escape(value)}</entry>" for key, value in group]
            out.append(f"  </{section}>")
    out.append("</sysinfo>")
    return "\n".join(out) + "\n"


def dmi_identity(host: SysRoot) -> dict[str, str]:
    """What the ``computer`` node device shows, keyed by the dmi/id file names (``product_name``,
    ``sys_vendor``, ``product_version``, ``product_serial``, ``product_uuid``, ``bios_vendor``,
    ``bios_version``, ``bios_date``), from the kernel's files as libvirt's udev backend reads them."""
    out: dict[str, str] = {}
    for name in ("product_name", "sys_vendor", "product_version", "product_serial", "product_uuid",
                 "bios_vendor", "bios_version", "bios_date"):
        value = host.read(f"{_DMI_ID}/{name}")
        if value:
            out[name] = value
    if "product_uuid" not in out:
        table = host.read_bytes(f"{_TABLES}/DMI")
        if table:
            for s in parse_smbios(table):
                if s.type == 1 and len(s.data) >= 0x18:
                    text = _uuid(s.data[0x08:0x18], _smbios_version(host))
                    if "-" in text:
                        out["product_uuid"] = text.lower()
                    break
    return out
