"""Connection-level hooks: identity and description of the driver behind a connection.

Every operation hook is firstresult: the first plugin (the driver, then accepted providers)
that implements it answers.  Arguments are plain data only.
"""

from __future__ import annotations

from virt._markers import hookspec, operation


@hookspec
def virt_connect_close() -> None:
    """The connection is closing: release what was opened for it.

    Not firstresult: every plugin of the connection is told.

    .. versionadded:: 0.1
    """


@operation("virConnectGetType")
def virt_connect_get_type() -> str:
    """:returns: the hypervisor name as libvirt reports it (``"TEST"``, ``"QEMU"``).

    .. versionadded:: 0.1
    """


@operation("virConnectGetVersion")
def virt_connect_get_version() -> int:
    """:returns: the hypervisor version as ``major * 1000000 + minor * 1000 + micro``.

    .. versionadded:: 0.1
    """


@operation("virConnectGetHostname")
def virt_connect_get_hostname() -> str:
    """:returns: the node's host name.

    .. versionadded:: 0.1
    """


@operation("virConnectGetURI")
def virt_connect_get_uri() -> str:
    """:returns: the canonical URI of the connection (``"test:///default"``).

    .. versionadded:: 0.1
    """


@operation("virConnectGetCapabilities")
def virt_connect_get_capabilities() -> str:
    """:returns: the capabilities XML (``<capabilities>``) of the node and its hypervisor.

    .. versionadded:: 0.1
    """


@operation("virConnectGetDomainCapabilities")
def virt_connect_get_domain_capabilities(emulator: str | None, arch: str | None, machine: str | None,
                                         virttype: str | None, flags: int) -> str:
    """:param emulator: path of the emulator binary, or None for the default.
    :param arch: guest architecture, or None.
    :param machine: machine type, or None.
    :param virttype: domain type (``kvm``, ``qemu``), or None.
    :param flags: reserved, 0.
    :returns: the ``<domainCapabilities>`` XML.

    .. versionadded:: 0.1
    """


@operation("virConnectGetSysinfo")
def virt_connect_get_sysinfo(flags: int) -> str:
    """:param flags: reserved, 0.
    :returns: the host's ``<sysinfo>`` XML.

    .. versionadded:: 0.1
    """


@operation("virConnectGetMaxVcpus")
def virt_connect_get_max_vcpus(type: str | None) -> int:
    """:param type: the domain type asked about, or None for the driver's default.
    :returns: the largest vCPU count a guest may have.

    .. versionadded:: 0.1
    """


@operation("virConnectGetCPUModelNames")
def virt_connect_get_cpu_model_names(arch: str, flags: int) -> list[str]:
    """:param arch: the CPU architecture (``x86_64``, ``i686``).
    :param flags: reserved, 0.
    :returns: the CPU model names known for ``arch``.

    .. versionadded:: 0.1
    """


@operation("virConnectIsSecure")
def virt_connect_is_secure() -> bool:
    """:returns: whether the connection is safe from eavesdropping (local or encrypted).

    .. versionadded:: 0.1
    """


@operation("virConnectIsEncrypted")
def virt_connect_is_encrypted() -> bool:
    """:returns: whether the connection's transport is encrypted.

    .. versionadded:: 0.1
    """


@operation("virConnectDomainXMLToNative")
def virt_connect_domain_xml_to_native(native_format: str, xml: str, flags: int) -> str:
    """Convert a domain XML into a native configuration of the hypervisor.

    :param native_format: the native format, e.g. ``"xen-xl"``, ``"xen-xm"`` (Xen's),
        ``"qemu-argv"`` (QEMU's command line).
    :param xml: the domain XML.
    :param flags: reserved, 0.
    :returns: the configuration in ``native_format``.
    :raises VirtError: ``INVALID_ARG`` for a format the driver does not know;
        ``CONFIG_UNSUPPORTED`` for what the format cannot express.

    .. versionadded:: 0.2
    """


@operation("virConnectDomainXMLFromNative")
def virt_connect_domain_xml_from_native(native_format: str, config: str, flags: int) -> str:
    """Convert a native configuration of the hypervisor into a domain XML.

    :param native_format: the native format, e.g. ``"xen-xl"``, ``"xen-xm"``, ``"lxc-tools"``.
    :param config: the configuration text.
    :param flags: reserved, 0.
    :returns: the domain XML, formatted as an inactive, secure definition.
    :raises VirtError: ``INVALID_ARG`` for a format the driver does not know; ``CONF_SYNTAX``
        for a configuration that does not parse.

    .. versionadded:: 0.2
    """
