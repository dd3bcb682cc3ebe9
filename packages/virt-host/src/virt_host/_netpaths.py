"""Where the host networks of a connection keep their files, per URI.

| URI | network configs (and ``autostart/``) | runtime state of running networks |
|---|---|---|
| ``SCHEME:///system`` | ``/etc/virt/network`` | ``/run/virt/network`` |
| ``SCHEME:///session`` | ``$XDG_CONFIG_HOME/virt/network`` | ``$XDG_RUNTIME_DIR/virt/network`` |
| ``SCHEME:///embed?root=DIR`` | ``DIR/etc/network`` | ``DIR/run/network`` |

In the runtime directory, for a running network ``NAME``: ``NAME.xml`` (the live definition:
the network runs when it exists and its bridge does), ``NAME.state.json`` (what starting it
made: bridge, nftables table, dnsmasq pid), ``NAME.conf``, ``NAME.hostsfile``,
``NAME.addnhosts`` (dnsmasq's configuration), ``NAME.pid`` (dnsmasq's pid file),
``NAME.ports/TAP`` (the guests' taps plugged by :func:`virt_host.network.plug_tap`) and
``NAME.leases`` (dnsmasq's own lease file, which ``net-dhcp-leases`` reads; kept until the
network is undefined, as libvirt keeps its ``NAME.status``).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._uri import URI

__all__ = ["NetworkLayout", "network_layout_for"]


@attrs.frozen
class NetworkLayout:
    """The directories of one network root.  ``key`` identifies the root in a process."""

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

    def live_file(self, name: str) -> Path:
        return self.run / f"{name}.xml"

    def run_file(self, name: str, suffix: str) -> Path:
        """``NAME.<suffix>`` in the runtime directory (``state.json``, ``conf``, ``pid``...)."""
        return self.run / f"{name}.{suffix}"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def network_layout_for(uri: URI) -> NetworkLayout | None:
    """The network root of ``uri``; None for a URI path that has none."""
    path = uri.path.rstrip("/") or uri.path
    if path == "/system":
        return NetworkLayout("system", Path("/etc/virt/network"), Path("/run/virt/network"))
    if path == "/session":
        config = _xdg("XDG_CONFIG_HOME", ".config") / "virt" / "network"
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        run = (Path(runtime) / "virt" / "network" if runtime and os.path.isabs(runtime)
               else _xdg("XDG_CACHE_HOME", ".cache") / "virt" / "network" / "run")
        return NetworkLayout(f"session:{config}", config, run)
    if path == "/embed":
        root = uri.param("root")
        if not root or not os.path.isabs(root):
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri.driver}:///embed needs an absolute 'root' parameter, "
                            f"e.g. {uri.driver}:///embed?root=/var/tmp/virt", domain=ErrorDomain.NETWORK)
        top = Path(os.path.normpath(root))
        return NetworkLayout(f"embed:{top}", top / "etc" / "network", top / "run" / "network")
    return None
