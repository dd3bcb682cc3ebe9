"""Where the host networks and storage of a connection keep their files, per URI.

| URI | configs (and ``autostart/``) | runtime state |
|---|---|---|
| ``SCHEME:///system`` | ``/etc/virt/AREA`` | ``/run/virt/AREA`` |
| ``SCHEME:///session`` | ``$XDG_CONFIG_HOME/virt/AREA`` | ``$XDG_RUNTIME_DIR/virt/AREA`` |
| ``SCHEME:///embed?root=DIR`` | ``DIR/etc/AREA`` | ``DIR/run/AREA`` |

AREA is ``network`` or ``storage``.  Every driver and every process opening a URI of the same
root sees the same networks and pools: the files are the state.

Storage: for a running pool ``NAME``, ``NAME.xml`` in the runtime directory is its state.

Networks: in the runtime directory, for a running network ``NAME``: ``NAME.xml`` (the live
definition: the network runs when it exists and its bridge does), ``NAME.state.json`` (what
starting it made: bridge, nftables table, dnsmasq pid), ``NAME.conf``, ``NAME.hostsfile``,
``NAME.addnhosts`` (dnsmasq's configuration), ``NAME.pid`` (dnsmasq's pid file),
``NAME.ports/TAP`` (the guests' taps plugged by :func:`virt_host.network.plug_tap`) and
``NAME.leases`` (dnsmasq's own lease file, which ``net-dhcp-leases`` reads; kept until the
network is undefined, as libvirt keeps its ``NAME.status``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._uri import URI

__all__ = ["HostLayout", "NetworkLayout", "StorageLayout", "layout_for", "network_layout_for"]


@attrs.frozen
class HostLayout:
    """The directories of one root of an area.  ``key`` identifies the root in a process."""

    key: str
    config: Path
    run: Path

    @property
    def autostart(self) -> Path:
        return self.config / "autostart"

    @property
    def lock_file(self) -> Path:
        return self.run / ".lock"

    def config_file(self, name: str) -> Path:
        return self.config / f"{name}.xml"

    def autostart_link(self, name: str) -> Path:
        return self.autostart / f"{name}.xml"

    def run_file(self, name: str, suffix: str) -> Path:
        """``NAME.<suffix>`` in the runtime directory (``xml``, ``state.json``, ``conf``...)."""
        return self.run / f"{name}.{suffix}"


@attrs.frozen
class StorageLayout(HostLayout):
    def state_file(self, name: str) -> Path:
        return self.run_file(name, "xml")


@attrs.frozen
class NetworkLayout(HostLayout):
    def live_file(self, name: str) -> Path:
        return self.run_file(name, "xml")


L = TypeVar("L", bound=HostLayout)


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def _root_for(uri: URI, kind: type[L], area: str, error_domain: ErrorDomain) -> L | None:
    """The ``area`` root of ``uri``; None for a URI path that has none (the provider then stays
    out of the connection and the driver answers alone)."""
    path = uri.path.rstrip("/") or uri.path
    if path == "/system":
        return kind("system", Path("/etc/virt") / area, Path("/run/virt") / area)
    if path == "/session":
        config = _xdg("XDG_CONFIG_HOME", ".config") / "virt" / area
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        run = (Path(runtime) / "virt" / area if runtime and os.path.isabs(runtime)
               else _xdg("XDG_CACHE_HOME", ".cache") / "virt" / area / "run")
        return kind(f"session:{config}", config, run)
    if path == "/embed":
        root = uri.param("root")
        if not root or not os.path.isabs(root):
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri.driver}:///embed needs an absolute 'root' parameter, "
                            f"e.g. {uri.driver}:///embed?root=/var/tmp/virt", domain=error_domain)
        top = Path(os.path.normpath(root))
        return kind(f"embed:{top}", top / "etc" / area, top / "run" / area)
    return None


def layout_for(uri: URI) -> StorageLayout | None:
    """The storage root of ``uri``, or None."""
    return _root_for(uri, StorageLayout, "storage", ErrorDomain.STORAGE)


def network_layout_for(uri: URI) -> NetworkLayout | None:
    """The network root of ``uri``, or None."""
    return _root_for(uri, NetworkLayout, "network", ErrorDomain.NETWORK)
