"""Host capabilities and domain capabilities of ``xen:///system``, shaped as libvirt's libxl driver's."""

from __future__ import annotations

from xml.sax.saxutils import escape

from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber

__all__ = ["capabilities_xml", "domain_capabilities_xml"]

#: the device model libvirt's libxl driver names in domain capabilities (Debian's qemu-xen path)
EMULATOR = "/usr/bin/qemu-system-x86_64"
#: libxl's firmware for xenfv guests (``LIBXL_FIRMWARE_DIR``)
HVM_LOADERS = ("/usr/lib/xen/boot/hvmloader", "/usr/lib/xen/boot/ovmf.bin")
MAX_VCPUS = {"xenpv": 512, "xenfv": 128}

_DEVICES = """  <devices>
    <disk supported='yes'>
      <enum name='diskDevice'>
        <value>disk</value>
        <value>cdrom</value>
      </enum>
      <enum name='bus'>
        <value>ide</value>
        <value>scsi</value>
        <value>xen</value>
      </enum>
      <enum name='model'/>
    </disk>
    <graphics supported='yes'>
      <enum name='type'>
        <value>sdl</value>
        <value>vnc</value>
        <value>spice</value>
      </enum>
    </graphics>
    <video supported='yes'>
      <enum name='modelType'>
        <value>vga</value>
        <value>cirrus</value>
        <value>xen</value>
      </enum>
    </video>
    <hostdev supported='yes'>
      <enum name='mode'>
        <value>subsystem</value>
      </enum>
      <enum name='startupPolicy'>
        <value>default</value>
        <value>mandatory</value>
        <value>requisite</value>
        <value>optional</value>
      </enum>
      <enum name='subsysType'>
        <value>usb</value>
        <value>pci</value>
      </enum>
      <enum name='capsType'/>
      <enum name='pciBackend'>
        <value>xen</value>
      </enum>
    </hostdev>
  </devices>
  <features>
    <gic supported='no'/>
    <vmcoreinfo supported='no'/>
    <genid supported='no'/>
    <sev supported='no'/>
    <sgx supported='no'/>
  </features>
</domainCapabilities>
"""


def domain_capabilities_xml(emulator: str | None, arch: str | None, machine: str | None,
                            virttype: str | None, *, hvm: bool = True) -> str:
    """``virConnectGetDomainCapabilities`` for ``xenpv`` (the default) or ``xenfv``."""
    if virttype not in (None, "", "xen"):
        raise VirtError(ErrorNumber.INVALID_ARG, f"unknown virttype: {virttype}", domain=ErrorDomain.LIBXL)
    if arch not in (None, "", "x86_64"):
        raise VirtError(ErrorNumber.INVALID_ARG, f"architecture '{arch}' is not supported by this Xen host",
                        domain=ErrorDomain.LIBXL)
    machine = machine or "xenpv"
    if machine not in MAX_VCPUS or (machine == "xenfv" and not hvm):
        raise VirtError(ErrorNumber.INVALID_ARG, f"the machine '{machine}' is not supported by emulator "
                        f"'{emulator or EMULATOR}'", domain=ErrorDomain.LIBXL)
    if emulator not in (None, "", EMULATOR):
        raise VirtError(ErrorNumber.INVALID_ARG, f"emulator '{emulator}' does not match the default "
                        f"'{EMULATOR}'", domain=ErrorDomain.LIBXL)
    lines = ["<domainCapabilities>", f"  <path>{EMULATOR}</path>", "  <domain>xen</domain>",
             f"  <machine>{machine}</machine>", "  <arch>x86_64</arch>", f"  <vcpu max='{MAX_VCPUS[machine]}'/>",
             "  <iothreads supported='no'/>", "  <os supported='yes'>"]
    if machine == "xenpv":
        lines.append("    <loader supported='no'/>")
    else:
        lines.append("    <loader supported='yes'>")
        lines += [f"      <value>{p}</value>" for p in HVM_LOADERS]
        lines += ["      <enum name='type'>", "        <value>rom</value>", "        <value>pflash</value>",
                  "      </enum>", "      <enum name='readonly'>", "        <value>yes</value>", "      </enum>",
                  "    </loader>"]
    lines += ["  </os>", "  <cpu>"]
    lines += [f"    <mode name='{m}' supported='no'/>" for m in ("host-passthrough", "maximum", "host-model", "custom")]
    lines.append("  </cpu>")
    return "\n".join(lines) + "\n" + _DEVICES


def capabilities_xml(info: dict[str, str], host_uuid: str = "") -> str:
    """``virConnectGetCapabilities``: the host, and the xen guests (PV always, HVM when Xen can)."""
    ncpus = int(info.get("nr_cpus", "1") or 1)
    cores = int(info.get("cores_per_socket", "1") or 1)
    threads = int(info.get("threads_per_core", "1") or 1)
    nodes = int(info.get("nr_nodes", "1") or 1)
    sockets = max(1, ncpus // max(1, cores * threads * nodes))
    mem_kib = int(info.get("total_memory", "0") or 0) * 1024
    hvm = "hvm" in info.get("virt_caps", "").split()
    out = ["<capabilities>", "", "  <host>"]
    if host_uuid:
        out.append(f"    <uuid>{escape(host_uuid)}</uuid>")
    out += ["    <cpu>", "      <arch>x86_64</arch>",
            f"      <topology sockets='{sockets}' dies='1' cores='{cores}' threads='{threads}'/>",
            "    </cpu>", "    <power_management/>", "    <iommu support='no'/>", "    <migration_features>",
            "      <live/>", "    </migration_features>", "    <topology>", f"      <cells num='{nodes}'>"]
    per_node = ncpus // nodes if nodes else ncpus
    for node in range(nodes):
        out += [f"        <cell id='{node}'>", f"          <memory unit='KiB'>{mem_kib // nodes}</memory>",
                f"          <cpus num='{per_node}'>"]
        for cpu in range(node * per_node, (node + 1) * per_node):
            out.append(f"            <cpu id='{cpu}' socket_id='0' die_id='0' core_id='{cpu}' siblings='{cpu}'/>")
        out += ["          </cpus>", "        </cell>"]
    out += ["      </cells>", "    </topology>", "  </host>", ""]
    guests = [("xen", "xenpv")] + ([("hvm", "xenfv")] if hvm else [])
    for os_type, machine in guests:
        out += ["  <guest>", f"    <os_type>{os_type}</os_type>", "    <arch name='x86_64'>",
                "      <wordsize>64</wordsize>", f"      <emulator>{EMULATOR}</emulator>",
                f"      <machine>{machine}</machine>", "      <domain type='xen'/>", "    </arch>"]
        if os_type == "hvm":
            out += ["    <features>", "      <acpi default='on' toggle='yes'/>",
                    "      <apic default='on' toggle='no'/>", "      <hap default='on' toggle='yes'/>",
                    "    </features>"]
        out += ["  </guest>", ""]
    out.append("</capabilities>")
    return "\n".join(out) + "\n"
