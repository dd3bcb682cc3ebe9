"""The ``xen`` driver: ``xen:///system``, Xen through its xl toolstack (libvirt's libxl driver).

This first part serves the native-configuration conversions (``xen-xl``, ``xen-xm``); guest
management through ``xl`` comes with the next parts of the driver.  Opening needs a running
Xen: this host must be Xen's control domain (dom0), as libvirt's libxl driver requires
(``/proc/xen/capabilities`` says ``control_d``).  Elsewhere the open fails with
``NO_CONNECT`` saying that Xen is not running; the conversions themselves need no Xen (see
:mod:`virt_xen.xlconfig`), and the CLI uses them offline on any connection.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Final

from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber
from virt._markers import hookimpl
from virt.plugin import OpenRequest

from virt_xen import xlconfig

__all__ = ["XenConnection", "xen_running"]

#: what libvirt's libxl driver reads to decide whether this host runs Xen's control domain
XEN_CAPABILITIES: Final = Path("/proc/xen/capabilities")


def xen_running(capabilities: Path | None = None) -> bool:
    """Whether this host is a running Xen's control domain (dom0)."""
    if capabilities is None:
        capabilities = XEN_CAPABILITIES
    try:
        return "control_d" in capabilities.read_text()
    except OSError:
        return False


def _xen_version() -> int:
    """Xen's version from sysfs (``/sys/hypervisor/version/{major,minor,extra}``), or 0."""
    base = Path("/sys/hypervisor/version")
    try:
        major = int((base / "major").read_text().strip())
        minor = int((base / "minor").read_text().strip())
        extra = (base / "extra").read_text().strip().lstrip(".")
        micro = int("".join(c for c in extra.split("-")[0] if c.isdigit()) or 0)
    except (OSError, ValueError):
        return 0
    return major * 1_000_000 + minor * 1_000 + micro


class XenConnection:
    """The connection object of ``xen:///system``."""

    def __init__(self, request: OpenRequest) -> None:
        self.request = request

    @classmethod
    def open(cls, request: OpenRequest, capabilities: Path | None = None) -> XenConnection:
        if capabilities is None:
            capabilities = XEN_CAPABILITIES
        uri = request.uri
        if uri.path not in ("/system", ""):
            raise VirtError(ErrorNumber.INTERNAL_ERROR,
                            f"unexpected Xen URI path '{uri.path}', try xen:///system", domain=ErrorDomain.LIBXL)
        if not xen_running(capabilities):
            where = "/proc/xen is missing" if not os.path.isdir(capabilities.parent) else (
                f"{capabilities} does not say control_d")
            raise VirtError(ErrorNumber.NO_CONNECT,
                            f"xen:///system: Xen is not running ({where}: this host is not a Xen dom0)",
                            domain=ErrorDomain.LIBXL)
        return cls(request)

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "Xen"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        return _xen_version()

    @hookimpl
    def virt_connect_get_hostname(self) -> str:
        return socket.gethostname()

    @hookimpl
    def virt_connect_get_uri(self) -> str:
        return "xen:///system"

    def _bridge_of(self, name: str) -> str:
        """A virtual network's bridge, from the network provider of this connection."""
        hook = self.request.hook
        ref = hook.virt_network_lookup_by_name(name=name) if hook is not None else None
        if ref is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{name}'",
                            domain=ErrorDomain.NETWORK)
        if not hook.virt_network_is_active(uuid=ref.uuid):
            return ""
        return str(hook.virt_network_get_bridge_name(uuid=ref.uuid) or "")

    @hookimpl
    def virt_connect_domain_xml_to_native(self, native_format: str, xml: str, flags: int) -> str:
        return xlconfig.domain_xml_to_native(native_format, xml, flags, bridge_of=self._bridge_of)

    @hookimpl
    def virt_connect_domain_xml_from_native(self, native_format: str, config: str, flags: int) -> str:
        return xlconfig.domain_xml_from_native(native_format, config, flags)
