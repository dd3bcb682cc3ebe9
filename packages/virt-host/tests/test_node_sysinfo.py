"""``sysinfo``: a made-up SMBIOS table printed as libvirt prints what dmidecode says of it, the
kernel's DMI files when the table cannot be read, and the error when there is no SMBIOS."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
import virt
from lxml import etree
from node_fakehost import build_fake_host
from virt import ErrorNumber, VirtError
from virt_host.node import NodeProvider


def _structure(kind: int, handle: int, body: bytes, strings: list[str]) -> bytes:
    data = bytes([kind, 4 + len(body)]) + struct.pack("<H", handle) + body
    tail = b"".join(s.encode() + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return data + tail


def _table() -> bytes:
    bios = _structure(0, 0, bytes([1, 2]) + struct.pack("<H", 0xE800) + bytes([3, 0x7F]) + bytes(8) + bytes(2)
                      + bytes([2, 61, 0xFF, 0xFF]), ["LENOVO", "G4ETA1WW (2.61 )", "05/07/2014"])
    raw_uuid = uuid.UUID("12345678-1234-5678-9abc-def012345678").bytes_le
    system = _structure(1, 1, bytes([1, 2, 3, 4]) + raw_uuid + bytes([6, 5, 6]),
                        ["LENOVO", "20BE0061MC", "ThinkPad T440p", "PB01234", "LENOVO_MT_20BE",
                         "Not Available"])
    board = _structure(2, 2, bytes([1, 2, 3, 4, 5, 0, 0]), ["LENOVO", "20BE0061MC", "0B98401 Pro", "L1HF",
                                                            "Not Available"])
    chassis = _structure(3, 3, bytes([1, 10, 0, 2, 0]) + bytes(8) + bytes(4) + bytes([0, 0, 0, 3]),
                         ["LENOVO", "PB01234", "Not Specified"])
    cpu_id = struct.pack("<II", 0x000306C3, 0xBFEBFBFF)
    processor = _structure(4, 4, bytes([1, 3, 0xCD, 2]) + cpu_id + bytes([3, 0]) + struct.pack("<HHH", 100, 2600,
                                                                                                 2600)
                           + bytes([0x41, 0]) + bytes(6) + bytes([0, 0, 0]),
                           ["SOCKET 0", "Intel(R) Corporation", "Intel(R) Core(TM) i5-4300M CPU @ 2.60GHz"])
    oem = _structure(11, 5, bytes([2]), ["vendor:bios", "vendor:extra"])
    dimm = _structure(17, 6, struct.pack("<HHHH", 0x1000, 0xFFFE, 64, 64) + struct.pack("<H", 4096)
                      + bytes([0x0D, 0, 1, 2, 0x18]) + struct.pack("<HH", 0x80, 1600) + bytes([3, 4, 0, 5]),
                      ["ChannelA-DIMM0", "BANK 0", "Samsung", "12345678", "M471B5173QH0-YK0"])
    empty_slot = _structure(17, 7, struct.pack("<HHHH", 0x1000, 0xFFFE, 64, 64) + struct.pack("<H", 0)
                            + bytes([0x0D, 0, 1, 2, 0x02]) + struct.pack("<HH", 0, 0) + bytes([0, 0, 0, 0]),
                            ["ChannelB-DIMM0", "BANK 2"])
    end = _structure(127, 8, b"", [])
    return bios + system + board + chassis + processor + oem + dimm + empty_slot + end


EXPECTED = """\
<sysinfo type='smbios'>
  <bios>
    <entry name='vendor'>LENOVO</entry>
    <entry name='version'>G4ETA1WW (2.61 )</entry>
    <entry name='date'>05/07/2014</entry>
    <entry name='release'>2.61</entry>
  </bios>
  <system>
    <entry name='manufacturer'>LENOVO</entry>
    <entry name='product'>20BE0061MC</entry>
    <entry name='version'>ThinkPad T440p</entry>
    <entry name='serial'>PB01234</entry>
    <entry name='uuid'>12345678-1234-5678-9ABC-DEF012345678</entry>
    <entry name='sku'>LENOVO_MT_20BE</entry>
    <entry name='family'>Not Available</entry>
  </system>
  <baseBoard>
    <entry name='manufacturer'>LENOVO</entry>
    <entry name='product'>20BE0061MC</entry>
    <entry name='version'>0B98401 Pro</entry>
    <entry name='serial'>L1HF</entry>
    <entry name='asset'>Not Available</entry>
    <entry name='location'>Not Specified</entry>
  </baseBoard>
  <chassis>
    <entry name='manufacturer'>LENOVO</entry>
    <entry name='version'>Not Specified</entry>
    <entry name='serial'>PB01234</entry>
    <entry name='asset'>Not Specified</entry>
    <entry name='sku'>Not Specified</entry>
  </chassis>
  <processor>
    <entry name='socket_destination'>SOCKET 0</entry>
    <entry name='type'>Central Processor</entry>
    <entry name='family'>Core i5</entry>
    <entry name='manufacturer'>Intel(R) Corporation</entry>
    <entry name='signature'>Type 0, Family 6, Model 60, Stepping 3</entry>
    <entry name='version'>Intel(R) Core(TM) i5-4300M CPU @ 2.60GHz</entry>
    <entry name='external_clock'>100 MHz</entry>
    <entry name='max_speed'>2600 MHz</entry>
    <entry name='status'>Populated, Enabled</entry>
    <entry name='serial_number'>Not Specified</entry>
    <entry name='part_number'>Not Specified</entry>
  </processor>
  <memory_device>
    <entry name='size'>4 GB</entry>
    <entry name='form_factor'>SODIMM</entry>
    <entry name='locator'>ChannelA-DIMM0</entry>
    <entry name='bank_locator'>BANK 0</entry>
    <entry name='type'>DDR3</entry>
    <entry name='type_detail'>Synchronous</entry>
    <entry name='speed'>1600 MT/s</entry>
    <entry name='manufacturer'>Samsung</entry>
    <entry name='serial_number'>12345678</entry>
    <entry name='part_number'>M471B5173QH0-YK0</entry>
  </memory_device>
  <oemStrings>
    <entry>vendor:bios</entry>
    <entry>vendor:extra</entry>
  </oemStrings>
</sysinfo>
"""


def _validate_sysinfo(xml: str) -> None:
    """``<sysinfo>`` is part of the domain grammar: check it inside a minimal domain (the
    grammar has no ``<processor>`` nor ``<memory_device>``: only the host reports those)."""
    from virt.xml._schema import validate

    domain = etree.fromstring(b"<domain type='kvm'><name>x</name><memory>1024</memory>"
                              b"<os><type>hvm</type></os></domain>")
    sysinfo = etree.fromstring(xml.encode())
    for el in sysinfo.findall("processor") + sysinfo.findall("memory_device"):
        sysinfo.remove(el)
    domain.insert(2, sysinfo)
    validate(domain, "domain")


def test_smbios_table(tmp_path: Path) -> None:
    build_fake_host(tmp_path)
    tables = tmp_path / "sys/firmware/dmi/tables"
    tables.mkdir(parents=True)
    (tables / "DMI").write_bytes(_table())
    (tables / "smbios_entry_point").write_bytes(b"_SM_\x00\x1f\x02\x08" + bytes(23))
    xml = NodeProvider(str(tmp_path)).virt_connect_get_sysinfo(0)
    assert xml == EXPECTED
    _validate_sysinfo(xml)


def test_dmi_id_files_without_the_table(tmp_path: Path) -> None:
    build_fake_host(tmp_path)
    xml = NodeProvider(str(tmp_path)).virt_connect_get_sysinfo(0)
    assert xml == """\
<sysinfo type='smbios'>
  <bios>
    <entry name='vendor'>LENOVO</entry>
    <entry name='version'>GLET90WW (2.44 )</entry>
    <entry name='date'>09/13/2017</entry>
  </bios>
  <system>
    <entry name='manufacturer'>LENOVO</entry>
    <entry name='product'>20BE0061MC</entry>
    <entry name='version'>ThinkPad T440p</entry>
    <entry name='uuid'>12345678-1234-1234-9596-A088B277D677</entry>
  </system>
  <baseBoard>
    <entry name='manufacturer'>LENOVO</entry>
    <entry name='product'>20BE0061MC</entry>
  </baseBoard>
</sysinfo>
"""
    _validate_sysinfo(xml)


def test_no_smbios(tmp_path: Path) -> None:
    provider = NodeProvider(str(tmp_path))
    with pytest.raises(VirtError) as err:
        provider.virt_connect_get_sysinfo(0)
    assert err.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert "Host SMBIOS information is not available" in str(err.value)
    with pytest.raises(VirtError) as err:
        provider.virt_connect_get_sysinfo(1)
    assert err.value.code == ErrorNumber.INVALID_ARG


def test_this_hosts_sysinfo(conn: virt.Connection) -> None:
    if not Path("/sys/class/dmi/id").is_dir() and not Path("/sys/firmware/dmi/tables/DMI").exists():
        with pytest.raises(VirtError) as err:
            conn.sysinfo()
        assert err.value.code == ErrorNumber.CONFIG_UNSUPPORTED
        return
    xml = conn.sysinfo()
    _validate_sysinfo(xml)
    vendor = Path("/sys/class/dmi/id/bios_vendor")
    if vendor.exists():
        assert f"<entry name='vendor'>{vendor.read_text().strip()}</entry>" in xml
