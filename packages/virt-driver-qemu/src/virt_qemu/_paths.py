"""Where a ``qemu:///`` connection keeps its files, per URI.

* ``qemu:///system``: ``/etc/virt/qemu`` (definitions), ``/run/virt/qemu`` (status, sockets,
  locks), ``/var/log/virt/qemu``, ``/var/lib/virt/qemu/save`` (managed save images),
  ``/var/lib/virt/qemu/snapshot`` (snapshot metadata);
* ``qemu:///session``: ``$XDG_CONFIG_HOME/virt/qemu``, ``$XDG_RUNTIME_DIR/virt/qemu``,
  ``$XDG_CACHE_HOME/virt/qemu/log``, ``$XDG_DATA_HOME/virt/qemu/save``;
* ``qemu:///embed?root=DIR``: ``DIR/etc/qemu``, ``DIR/run/qemu``, ``DIR/log/qemu``,
  ``DIR/lib/qemu/save``, ``DIR/lib/qemu/snapshot``.

Every process that opens the same URI uses the same directories: that is how a new process
finds the guests an earlier one started.
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
    """The common layout (definitions, status, locks, logs) plus QEMU's own files."""

    save: Path

    def monitor_socket(self, uuid: str) -> Path:
        return self.run / f"{uuid[:8]}.mon"

    def event_socket(self, uuid: str) -> Path:
        return self.run / f"{uuid[:8]}.evt"

    def managed_save(self, name: str) -> Path:
        return self.save / f"{name}.save"

    @property
    def snapshots(self) -> Path:
        """Snapshot metadata, beside ``save`` (libvirt's ``/var/lib/libvirt/qemu/snapshot``)."""
        return self.save.parent / "snapshot"

    def snapshot_dir(self, name: str) -> Path:
        """``snapshot/NAME/``: one ``SNAPSHOT.xml`` per snapshot of domain ``name``."""
        return self.snapshots / name

    def directories(self) -> tuple[Path, ...]:
        return (*super().directories(), self.save)


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def layout_for(uri: URI) -> Layout:
    """The layout of ``uri``, or ``VirtError`` for a path this driver does not serve."""
    path = uri.path.rstrip("/") or uri.path
    if path == "/system":
        if os.geteuid() != 0:
            raise VirtError(ErrorNumber.OPERATION_DENIED, "qemu:///system needs root: use qemu:///session",
                            domain=ErrorDomain.QEMU,
                            message="operation forbidden: qemu:///system needs root; use qemu:///session")
        base = Layout("qemu:///system", Path("/etc/virt/qemu"), Path("/etc/virt/qemu/autostart"),
                      Path("/run/virt/qemu"), Path("/var/log/virt/qemu"), Path("/var/lib/virt/qemu/save"))
    elif path == "/session":
        config = _xdg("XDG_CONFIG_HOME", ".config") / "virt" / "qemu"
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        run = Path(runtime) / "virt" / "qemu" if runtime else _xdg("XDG_CACHE_HOME", ".cache") / "virt" / "qemu" / "run"
        cache = _xdg("XDG_CACHE_HOME", ".cache") / "virt" / "qemu"
        data = _xdg("XDG_DATA_HOME", ".local/share") / "virt" / "qemu"
        base = Layout("qemu:///session", config, config / "autostart", run, cache / "log", data / "save")
    elif path == "/embed":
        root = uri.param("root")
        if not root or not os.path.isabs(root):
            raise VirtError(ErrorNumber.INVALID_ARG, "qemu:///embed needs an absolute 'root' parameter, "
                            "e.g. qemu:///embed?root=/var/tmp/guests", domain=ErrorDomain.QEMU)
        top = Path(os.path.normpath(root))
        base = Layout(f"qemu:///embed?root={top}", top / "etc" / "qemu", top / "etc" / "qemu" / "autostart",
                      top / "run" / "qemu", top / "log" / "qemu", top / "lib" / "qemu" / "save")
    else:
        raise VirtError(ErrorNumber.INVALID_ARG, f"unexpected QEMU URI path '{uri.path}', "
                        "try qemu:///system, qemu:///session or qemu:///embed?root=DIR", domain=ErrorDomain.QEMU)
    return base
