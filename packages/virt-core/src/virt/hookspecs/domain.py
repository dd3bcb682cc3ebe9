"""Domain hooks: define, lifecycle, monitoring and tuning of virtual machines and containers.

A domain is named in every hook by its ``uuid`` (lowercase, dashed): names can change, UUIDs
cannot.  Implementations raise ``VirtError(NO_DOMAIN)`` for an unknown UUID and a
``VirtError`` for an operation in the wrong state: ``OPERATION_INVALID`` as a rule, though
libvirt's own test driver (and so ours) reports ``INTERNAL_ERROR`` for starting a running
domain and for suspend, resume and shutdown in the wrong state; callers should test the
exception type, not that code.
"""

from __future__ import annotations

from virt._markers import operation
from virt._records import (
    BlockInfo,
    BlockStats,
    DomainInfo,
    DomainInterface,
    DomainRef,
    InterfaceStats,
    SecurityLabel,
    VcpuInfo,
)

ParamValue = int | float | str | bool

# -- define and look up -------------------------------------------------------------------


@operation("virDomainDefineXMLFlags", mutating=True)
def virt_domain_define_xml(xml: str, flags: int) -> DomainRef:
    """Make a domain persistent from its XML, or replace the persistent config of one.

    :param xml: the ``<domain>`` XML.
    :param flags: ``VIR_DOMAIN_DEFINE_VALIDATE`` (1) checks against the RNG schema.
    :returns: the domain.
    :raises VirtError: ``XML_ERROR`` for bad XML; ``OPERATION_FAILED`` when the name or UUID
        belongs to another domain.

    .. versionadded:: 0.1
    """


@operation("virDomainCreateXML", mutating=True)
def virt_domain_create_xml(xml: str, flags: int) -> DomainRef:
    """Start a transient domain from XML (it disappears when it stops).

    :param xml: the ``<domain>`` XML.
    :param flags: ``VIR_DOMAIN_START_PAUSED`` (1), ``VIR_DOMAIN_START_VALIDATE`` (16).
    :returns: the running domain.

    .. versionadded:: 0.1
    """


@operation("virDomainUndefineFlags", mutating=True)
def virt_domain_undefine(uuid: str, flags: int) -> None:
    """Remove the persistent config; a running domain goes on, as a transient one.

    :param uuid: the domain.
    :param flags: ``VIR_DOMAIN_UNDEFINE_MANAGED_SAVE`` (1), ``_SNAPSHOTS_METADATA`` (2), ``_NVRAM`` (4).

    .. versionadded:: 0.1
    """


@operation("virDomainLookupByName")
def virt_domain_lookup_by_name(name: str) -> DomainRef:
    """:param name: the domain name.
    :returns: the domain.
    :raises VirtError: ``NO_DOMAIN`` ("no domain with matching name 'x'").

    .. versionadded:: 0.1
    """


@operation("virDomainLookupByUUID")
def virt_domain_lookup_by_uuid(uuid: str) -> DomainRef:
    """:param uuid: the domain UUID, lowercase and dashed.
    :returns: the domain.
    :raises VirtError: ``NO_DOMAIN`` ("no domain with matching uuid 'x'").

    .. versionadded:: 0.1
    """


@operation("virDomainLookupByID")
def virt_domain_lookup_by_id(id: int) -> DomainRef:
    """:param id: the id of a running domain.
    :returns: the domain.
    :raises VirtError: ``NO_DOMAIN`` ("no domain with matching id N").

    .. versionadded:: 0.1
    """


@operation("virConnectListAllDomains")
def virt_domain_list(flags: int) -> list[DomainRef]:
    """:param flags: libvirt's ``VIR_CONNECT_LIST_DOMAINS_*`` filter bits (0 = all).
    :returns: the matching domains: running ones by id, then inactive ones by name.

    .. versionadded:: 0.1
    """


# -- lifecycle ----------------------------------------------------------------------------


@operation("virDomainCreateWithFlags", mutating=True)
def virt_domain_create(uuid: str, flags: int) -> None:
    """Start a defined domain (resuming its managed save image when there is one).

    :param uuid: the domain.
    :param flags: ``VIR_DOMAIN_START_PAUSED`` (1), ``_AUTODESTROY`` (2), ``_BYPASS_CACHE`` (4),
        ``_FORCE_BOOT`` (8: discard the managed save image).
    :raises VirtError: when it is already running (see the module's note on codes).

    .. versionadded:: 0.1
    """


@operation("virDomainShutdownFlags", mutating=True)
def virt_domain_shutdown(uuid: str, flags: int) -> None:
    """Ask the guest to power off (ACPI, agent, ...); returns before it has.

    :param uuid: the domain.
    :param flags: ``VIR_DOMAIN_SHUTDOWN_*`` method bits, 0 for the driver's choice.

    .. versionadded:: 0.1
    """


@operation("virDomainReboot", mutating=True)
def virt_domain_reboot(uuid: str, flags: int) -> None:
    """Ask the guest to reboot.

    :param uuid: the domain.
    :param flags: ``VIR_DOMAIN_REBOOT_*`` method bits, 0 for the driver's choice.

    .. versionadded:: 0.1
    """


@operation("virDomainReset", mutating=True)
def virt_domain_reset(uuid: str, flags: int) -> None:
    """Reset the guest at once, as the reset button does.

    :param uuid: the domain.
    :param flags: reserved, 0.

    .. versionadded:: 0.1
    """


@operation("virDomainDestroyFlags", mutating=True)
def virt_domain_destroy(uuid: str, flags: int) -> None:
    """Stop the domain now (a transient one disappears).

    :param uuid: the domain.
    :param flags: ``VIR_DOMAIN_DESTROY_GRACEFUL`` (1): no forced kill.

    .. versionadded:: 0.1
    """


@operation("virDomainSuspend", mutating=True)
def virt_domain_suspend(uuid: str) -> None:
    """Pause every vCPU.

    :param uuid: the domain.

    .. versionadded:: 0.1
    """


@operation("virDomainResume", mutating=True)
def virt_domain_resume(uuid: str) -> None:
    """Resume a paused domain.

    :param uuid: the domain.

    .. versionadded:: 0.1
    """


@operation("virDomainSaveFlags", mutating=True)
def virt_domain_save(uuid: str, path: str, xml: str | None, flags: int) -> None:
    """Save the running domain's memory to ``path`` and stop it.

    :param uuid: the domain.
    :param path: the file to write, on the node.
    :param xml: a replacement config stored in the image, or None.
    :param flags: ``VIR_DOMAIN_SAVE_BYPASS_CACHE`` (1), ``_RUNNING`` (2), ``_PAUSED`` (4).

    .. versionadded:: 0.1
    """


@operation("virDomainRestoreFlags", mutating=True)
def virt_domain_restore(path: str, xml: str | None, flags: int) -> DomainRef:
    """Start a domain from a file written by :func:`virt_domain_save`.

    :param path: the image on the node.
    :param xml: a replacement config, or None.
    :param flags: as for save.
    :returns: the restored domain.

    .. versionadded:: 0.1
    """


@operation("virDomainManagedSave", mutating=True)
def virt_domain_managed_save(uuid: str, flags: int) -> None:
    """Save the domain to an image the driver keeps; the next start resumes from it.

    :param uuid: the domain (persistent and running).
    :param flags: as for save.

    .. versionadded:: 0.1
    """


@operation("virDomainHasManagedSaveImage")
def virt_domain_has_managed_save_image(uuid: str, flags: int) -> bool:
    """:param uuid: the domain.
    :param flags: reserved, 0.
    :returns: whether a managed save image exists.

    .. versionadded:: 0.1
    """


@operation("virDomainManagedSaveRemove", mutating=True)
def virt_domain_managed_save_remove(uuid: str, flags: int) -> None:
    """Discard the managed save image.

    :param uuid: the domain.
    :param flags: reserved, 0.

    .. versionadded:: 0.1
    """


# -- state and config ---------------------------------------------------------------------


@operation("virDomainGetInfo")
def virt_domain_get_info(uuid: str) -> DomainInfo:
    """:param uuid: the domain.
    :returns: state, max and current memory (KiB), vCPUs and CPU time (ns).

    .. versionadded:: 0.1
    """


@operation("virDomainGetState")
def virt_domain_get_state(uuid: str, flags: int) -> tuple[int, int]:
    """:param uuid: the domain.
    :param flags: reserved, 0.
    :returns: ``(state, reason)`` as libvirt numbers them (:class:`virt.DomainState`).

    .. versionadded:: 0.1
    """


@operation("virDomainGetXMLDesc")
def virt_domain_get_xml(uuid: str, flags: int) -> str:
    """:param uuid: the domain.
    :param flags: ``VIR_DOMAIN_XML_SECURE`` (1), ``_INACTIVE`` (2), ``_UPDATE_CPU`` (4),
        ``_MIGRATABLE`` (8).
    :returns: the ``<domain>`` XML.

    .. versionadded:: 0.1
    """


@operation("virDomainGetSecurityLabel")
def virt_domain_get_security_label(uuid: str) -> SecurityLabel:
    """:param uuid: the domain.
    :returns: its security label and whether it is enforced; an empty label when the domain
        is inactive or unconfined.

    .. versionadded:: 0.1
    """


@operation("virDomainGetOSType")
def virt_domain_get_os_type(uuid: str) -> str:
    """:param uuid: the domain.
    :returns: the OS type (``hvm``, ``linux``, ``exe``).

    .. versionadded:: 0.1
    """


@operation("virDomainGetID")
def virt_domain_get_id(uuid: str) -> int:
    """:param uuid: the domain.
    :returns: its id while running, -1 otherwise.

    .. versionadded:: 0.1
    """


@operation("virDomainIsActive")
def virt_domain_is_active(uuid: str) -> bool:
    """:param uuid: the domain.
    :returns: whether it is running (or paused).

    .. versionadded:: 0.1
    """


@operation("virDomainIsPersistent")
def virt_domain_is_persistent(uuid: str) -> bool:
    """:param uuid: the domain.
    :returns: whether it has a persistent config.

    .. versionadded:: 0.1
    """


@operation("virDomainGetAutostart")
def virt_domain_get_autostart(uuid: str) -> bool:
    """:param uuid: the domain.
    :returns: whether it starts with the node.

    .. versionadded:: 0.1
    """


@operation("virDomainSetAutostart", mutating=True)
def virt_domain_set_autostart(uuid: str, autostart: bool) -> None:
    """:param uuid: the domain (persistent).
    :param autostart: start it with the node.

    .. versionadded:: 0.1
    """


@operation("virDomainSetMemoryFlags", mutating=True)
def virt_domain_set_memory(uuid: str, memory: int, flags: int) -> None:
    """Change the current memory (balloon), or the maximum with ``VIR_DOMAIN_MEM_MAXIMUM``.

    :param uuid: the domain.
    :param memory: KiB.
    :param flags: ``VIR_DOMAIN_AFFECT_LIVE`` (1), ``_CONFIG`` (2), ``VIR_DOMAIN_MEM_MAXIMUM`` (4).

    .. versionadded:: 0.1
    """


@operation("virDomainSetVcpusFlags", mutating=True)
def virt_domain_set_vcpus(uuid: str, nvcpus: int, flags: int) -> None:
    """:param uuid: the domain.
    :param nvcpus: the vCPU count.
    :param flags: ``VIR_DOMAIN_AFFECT_LIVE`` (1), ``_CONFIG`` (2), ``VIR_DOMAIN_VCPU_MAXIMUM`` (4),
        ``_GUEST`` (8), ``_HOTPLUGGABLE`` (16).

    .. versionadded:: 0.1
    """


@operation("virDomainGetVcpusFlags")
def virt_domain_get_vcpus_flags(uuid: str, flags: int) -> int:
    """:param uuid: the domain.
    :param flags: as for :func:`virt_domain_set_vcpus`.
    :returns: the vCPU count asked for.

    .. versionadded:: 0.1
    """


@operation("virDomainGetVcpus")
def virt_domain_get_vcpus(uuid: str) -> list[VcpuInfo]:
    """:param uuid: the running domain.
    :returns: per vCPU: state, CPU time, host CPU and affinity.

    .. versionadded:: 0.1
    """


@operation("virDomainSetMetadata", mutating=True)
def virt_domain_set_metadata(uuid: str, type: int, metadata: str | None, key: str | None,
                             uri: str | None, flags: int) -> None:
    """Set the title, description or a custom ``<metadata>`` element.

    :param uuid: the domain.
    :param type: ``VIR_DOMAIN_METADATA_DESCRIPTION`` (0), ``_TITLE`` (1), ``_ELEMENT`` (2).
    :param metadata: the new text or XML; None removes it.
    :param key: the namespace prefix, for ``_ELEMENT``.
    :param uri: the namespace URI, for ``_ELEMENT``.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.

    .. versionadded:: 0.1
    """


@operation("virDomainGetMetadata")
def virt_domain_get_metadata(uuid: str, type: int, uri: str | None, flags: int) -> str:
    """:param uuid: the domain.
    :param type: as for :func:`virt_domain_set_metadata`.
    :param uri: the namespace URI, for ``_ELEMENT``.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :returns: the text or XML.
    :raises VirtError: ``NO_DOMAIN_METADATA`` when unset.

    .. versionadded:: 0.1
    """


@operation("virDomainRename", mutating=True)
def virt_domain_rename(uuid: str, new_name: str, flags: int) -> None:
    """:param uuid: the (inactive) domain.
    :param new_name: its new name.
    :param flags: reserved, 0.

    .. versionadded:: 0.1
    """


# -- monitoring ---------------------------------------------------------------------------


@operation("virDomainGetSchedulerType")
def virt_domain_get_scheduler_type(uuid: str) -> tuple[str, int]:
    """:param uuid: the domain.
    :returns: the scheduler's name and its number of parameters.

    .. versionadded:: 0.1
    """


@operation("virDomainGetSchedulerParametersFlags")
def virt_domain_get_scheduler_parameters(uuid: str, flags: int) -> dict[str, ParamValue]:
    """:param uuid: the domain.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :returns: the scheduler parameters by name.

    .. versionadded:: 0.1
    """


@operation("virDomainGetMemoryParameters")
def virt_domain_get_memory_parameters(uuid: str, flags: int) -> dict[str, ParamValue]:
    """:param uuid: the domain.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :returns: ``hard_limit``, ``soft_limit``, ``swap_hard_limit`` (KiB; unlimited is
        9007199254740991).

    .. versionadded:: 0.1
    """


@operation("virDomainGetBlkioParameters")
def virt_domain_get_blkio_parameters(uuid: str, flags: int) -> dict[str, ParamValue]:
    """:param uuid: the domain.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :returns: ``weight``, ``device_weight``, ... as libvirt names them.

    .. versionadded:: 0.1
    """


@operation("virDomainGetNumaParameters")
def virt_domain_get_numa_parameters(uuid: str, flags: int) -> dict[str, ParamValue]:
    """:param uuid: the domain.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :returns: ``numa_mode`` (int) and ``numa_nodeset`` (str).

    .. versionadded:: 0.1
    """


@operation("virDomainSetSchedulerParametersFlags", mutating=True)
def virt_domain_set_scheduler_parameters(uuid: str, params: dict[str, ParamValue], flags: int) -> None:
    """Change scheduler parameters (``virsh schedinfo --set``).

    :param uuid: the domain.
    :param params: typed parameters by name, among those
        :func:`virt_domain_get_scheduler_parameters` reports (``weight``, ``cap``,
        ``cpu_shares``...); an ``int`` stands for libvirt's integer types, a ``str`` for
        ``VIR_TYPED_PARAM_STRING``.
    :param flags: ``VIR_DOMAIN_AFFECT_*``.
    :raises VirtError: ``ARGUMENT_UNSUPPORTED`` for a parameter the driver does not know,
        ``INVALID_ARG`` for a value of the wrong type or out of range.

    .. versionadded:: 0.2
    """


@operation("virDomainSetMemoryParameters", mutating=True)
def virt_domain_set_memory_parameters(uuid: str, params: dict[str, ParamValue], flags: int) -> None:
    """Change memory limits (``virsh memtune``), kept in the definition's ``<memtune>``.

    :param uuid: the domain.
    :param params: any of ``hard_limit``, ``soft_limit``, ``swap_hard_limit``,
        ``min_guarantee`` (KiB, ``int``; 9007199254740991 means unlimited).
    :param flags: ``VIR_DOMAIN_AFFECT_*`` (one of live and config).
    :raises VirtError: ``ARGUMENT_UNSUPPORTED`` for a parameter the driver does not know,
        ``INVALID_ARG`` for a bad value or a ``hard_limit`` above ``swap_hard_limit``.

    .. versionadded:: 0.2
    """


@operation("virDomainSetBlkioParameters", mutating=True)
def virt_domain_set_blkio_parameters(uuid: str, params: dict[str, ParamValue], flags: int) -> None:
    """Change block I/O tuning (``virsh blkiotune``), kept in the definition's ``<blkiotune>``.

    :param uuid: the domain.
    :param params: any of ``weight`` (``int``) and the per-device lists ``device_weight``,
        ``device_read_iops_sec``, ``device_write_iops_sec``, ``device_read_bytes_sec``,
        ``device_write_bytes_sec`` (``str``: ``"/dev/sda,100,/dev/sdb,200"``; a device's 0
        clears its value).
    :param flags: ``VIR_DOMAIN_AFFECT_*`` (one of live and config).
    :raises VirtError: ``ARGUMENT_UNSUPPORTED`` for a parameter the driver does not know,
        ``INVALID_ARG`` for a malformed device list.

    .. versionadded:: 0.2
    """


@operation("virDomainSetNumaParameters", mutating=True)
def virt_domain_set_numa_parameters(uuid: str, params: dict[str, ParamValue], flags: int) -> None:
    """Change NUMA memory tuning (``virsh numatune``), kept in the definition's ``<numatune>``.

    :param uuid: the domain.
    :param params: ``numa_mode`` (``int``: strict 0, preferred 1, interleave 2, restrictive
        3) and/or ``numa_nodeset`` (``str``, a node list such as ``"0-3,^2"``).
    :param flags: ``VIR_DOMAIN_AFFECT_*`` (one of live and config).
    :raises VirtError: ``INVALID_ARG`` for an unknown mode or a malformed node list,
        ``OPERATION_INVALID`` for a new mode on a running domain or an empty node set.

    .. versionadded:: 0.2
    """


@operation("virDomainMemoryStats")
def virt_domain_memory_stats(uuid: str, flags: int) -> dict[str, int]:
    """:param uuid: the running domain.
    :param flags: reserved, 0.
    :returns: libvirt's memory statistics by name (``actual``, ``rss``, ``unused``...), KiB.

    .. versionadded:: 0.1
    """


@operation("virDomainBlockStats")
def virt_domain_block_stats(uuid: str, disk: str) -> BlockStats:
    """:param uuid: the running domain.
    :param disk: a disk's target (``vda``) or source path.
    :returns: request and byte counters.

    .. versionadded:: 0.1
    """


@operation("virDomainInterfaceStats")
def virt_domain_interface_stats(uuid: str, device: str) -> InterfaceStats:
    """:param uuid: the running domain.
    :param device: an interface's target device name or MAC address.
    :returns: rx/tx counters.

    .. versionadded:: 0.1
    """


@operation("virDomainGetBlockInfo")
def virt_domain_get_block_info(uuid: str, disk: str, flags: int) -> BlockInfo:
    """:param uuid: the domain.
    :param disk: a disk's target or source path.
    :param flags: reserved, 0.
    :returns: capacity, allocation and physical size in bytes.

    .. versionadded:: 0.1
    """


@operation("virDomainInterfaceAddresses")
def virt_domain_interface_addresses(uuid: str, source: int, flags: int) -> list[DomainInterface]:
    """:param uuid: the running domain.
    :param source: ``VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE`` (0), ``_AGENT`` (1), ``_ARP`` (2).
    :param flags: reserved, 0.
    :returns: each interface with its addresses.

    .. versionadded:: 0.1
    """


@operation("virDomainGetJobInfo")
def virt_domain_get_job_info(uuid: str) -> dict[str, int]:
    """:param uuid: the domain.
    :returns: the running job's type and progress counters.

    .. versionadded:: 0.1
    """


@operation("virDomainGetTime")
def virt_domain_get_time(uuid: str, flags: int) -> tuple[int, int]:
    """:param uuid: the running domain.
    :param flags: reserved, 0.
    :returns: the guest clock as ``(seconds, nanoseconds)`` since the epoch.

    .. versionadded:: 0.1
    """


@operation("virDomainSetTime", mutating=True)
def virt_domain_set_time(uuid: str, seconds: int, nseconds: int, flags: int) -> None:
    """Set the guest clock (``virsh domtime --time/--now/--sync``).

    :param uuid: the running domain.
    :param seconds: seconds since the epoch (ignored with ``VIR_DOMAIN_TIME_SYNC``).
    :param nseconds: nanoseconds, below 10**9.
    :param flags: ``VIR_DOMAIN_TIME_SYNC`` (1): resynchronise from the guest's RTC.
    :raises VirtError: ``OPERATION_INVALID`` when the domain is not running.

    .. versionadded:: 0.2
    """


@operation("virDomainGetHostname")
def virt_domain_get_hostname(uuid: str, flags: int) -> str:
    """:param uuid: the running domain.
    :param flags: ``VIR_DOMAIN_GET_HOSTNAME_LEASE`` (1), ``_AGENT`` (2), or 0.
    :returns: the guest's host name.

    .. versionadded:: 0.1
    """


# -- statistics and consoles ----------------------------------------------------------------


@operation("virDomainListGetStats")
def virt_domain_get_stats(uuid: str, stats: int, flags: int) -> dict[str, ParamValue]:
    """:param uuid: the domain.
    :param stats: a mask of libvirt's ``virDomainStatsTypes`` (``STATE`` 1, ``CPU_TOTAL`` 2,
        ``BALLOON`` 4, ``VCPU`` 8, ``INTERFACE`` 16, ``BLOCK`` 32...); 0 means every group the
        driver supports.
    :param flags: ``virConnectGetAllDomainStatsFlags`` that concern one domain (none yet), 0.
    :returns: libvirt's typed parameters by name, as ``virsh domstats`` prints them:
        ``state.state``, ``cpu.time``, ``balloon.current``, ``vcpu.0.time``, ``net.0.rx.bytes``,
        ``block.0.rd.reqs``... Groups a driver cannot report are left out, not zero-filled.

    .. versionadded:: 0.2
    """


@operation("virDomainOpenConsole", mutating=True)
def virt_domain_open_console(uuid: str, dev_name: str | None, flags: int) -> str:
    """:param uuid: the running domain.
    :param dev_name: a console or serial alias (``console0``, ``serial1``), or None for the
        first console.
    :param flags: ``VIR_DOMAIN_CONSOLE_FORCE`` (1), ``_SAFE`` (2).
    :returns: the host path of the character device behind the console (a pty), which the
        caller opens and relays; a remote proxy carries it as a stream of its own.
    :raises VirtError: ``OPERATION_INVALID`` when the domain is not running,
        ``OPERATION_FAILED`` when the console is not a pty.

    .. versionadded:: 0.2
    """


# -- batched calls --------------------------------------------------------------------------


@operation("virConnectListAllDomains")
def virt_domain_list_info(flags: int) -> list[tuple[DomainRef, DomainInfo]]:
    """Every domain that ``flags`` selects, each with its info, in one call.

    The core answers it for every driver from :func:`virt_domain_list` and
    :func:`virt_domain_get_info` (a domain that vanishes meanwhile is left out); a driver
    implements it only when it can do better.  Its point is the remote proxy: one round trip
    for what would otherwise be one per domain.

    :param flags: ``virConnectListAllDomains`` flags, as for :func:`virt_domain_list`.
    :returns: ``(domain, info)`` pairs.

    .. versionadded:: 0.2
    """
