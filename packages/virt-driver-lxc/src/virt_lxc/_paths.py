"""Where an ``lxc:///`` connection keeps its files, per URI.

* ``lxc:///`` and ``lxc:///system`` (root only): ``/etc/virt/lxc`` (definitions),
  ``/run/virt/lxc`` (status, controller sockets, locks), ``/var/log/virt/lxc``;
* ``lxc:///embed?root=DIR``: ``DIR/etc/lxc``, ``DIR/run/lxc``, ``DIR/log/lxc``; the
  filesystems such a container mounts must lie under ``DIR`` too.

Every process that opens the same URI uses the same directories: that is how a new process
finds the containers an earlier one started.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from virt import driverkit
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._uri import URI

__all__ = ["Layout", "layout_for"]


@attrs.frozen
class Layout(driverkit.Layout):
    """The common layout (definitions, status, locks, logs) plus the controllers' files."""

    confine: Path | None  # filesystem sources must lie below this (embed), or None

    def record_file(self, uuid: str) -> Path:
        """What the controller writes: the init's pid, the console, why the init exited."""
        return self.run / f"{uuid}.ctl.json"

    def control_socket(self, uuid: str) -> Path:
        return self.run / f"{uuid[:8]}.ctl"


def layout_for(uri: URI) -> Layout:
    """The layout of ``uri``, or ``VirtError`` for a path this driver does not serve."""
    path = uri.path.rstrip("/")
    if path in ("", "/system"):
        if os.geteuid() != 0:
            raise VirtError(ErrorNumber.OPERATION_DENIED, "lxc:///system needs root",
                            domain=ErrorDomain.LXC, message="operation forbidden: lxc:///system needs root")
        return Layout("lxc:///system", Path("/etc/virt/lxc"), Path("/etc/virt/lxc/autostart"),
                      Path("/run/virt/lxc"), Path("/var/log/virt/lxc"), None)
    if path == "/embed":
        root = uri.param("root")
        if not root or not os.path.isabs(root):
            raise VirtError(ErrorNumber.INVALID_ARG, "lxc:///embed needs an absolute 'root' parameter, "
                            "e.g. lxc:///embed?root=/var/tmp/containers", domain=ErrorDomain.LXC)
        top = Path(os.path.normpath(root))
        return Layout(f"lxc:///embed?root={top}", top / "etc" / "lxc", top / "etc" / "lxc" / "autostart",
                      top / "run" / "lxc", top / "log" / "lxc", top)
    raise VirtError(ErrorNumber.INVALID_ARG, f"unexpected LXC URI path '{uri.path}', "
                    "try lxc:/// or lxc:///embed?root=DIR", domain=ErrorDomain.LXC)
