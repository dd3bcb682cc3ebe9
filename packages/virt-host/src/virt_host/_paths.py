"""Where the host storage of a connection keeps its files, per URI.

| URI | pool configs (and ``autostart/``) | runtime state of running pools |
|---|---|---|
| ``SCHEME:///system`` | ``/etc/virt/storage`` | ``/run/virt/storage`` |
| ``SCHEME:///session`` | ``$XDG_CONFIG_HOME/virt/storage`` | ``$XDG_RUNTIME_DIR/virt/storage`` |
| ``SCHEME:///embed?root=DIR`` | ``DIR/etc/storage`` | ``DIR/run/storage`` |

Every driver and every process opening a URI of the same root sees the same pools: the files
are the state.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._uri import URI

__all__ = ["StorageLayout", "layout_for"]


@attrs.frozen
class StorageLayout:
    """The directories of one storage root.  ``key`` identifies the root in a process."""

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

    def state_file(self, name: str) -> Path:
        return self.run / f"{name}.xml"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def layout_for(uri: URI) -> StorageLayout | None:
    """The storage root of ``uri``; None for a URI path that has none (the provider then
    stays out of the connection and the driver answers alone)."""
    path = uri.path.rstrip("/") or uri.path
    if path == "/system":
        return StorageLayout("system", Path("/etc/virt/storage"), Path("/run/virt/storage"))
    if path == "/session":
        config = _xdg("XDG_CONFIG_HOME", ".config") / "virt" / "storage"
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        run = (Path(runtime) / "virt" / "storage" if runtime and os.path.isabs(runtime)
               else _xdg("XDG_CACHE_HOME", ".cache") / "virt" / "storage" / "run")
        return StorageLayout(f"session:{config}", config, run)
    if path == "/embed":
        root = uri.param("root")
        if not root or not os.path.isabs(root):
            raise VirtError(ErrorNumber.INVALID_ARG, f"{uri.driver}:///embed needs an absolute 'root' parameter, "
                            f"e.g. {uri.driver}:///embed?root=/var/tmp/virt", domain=ErrorDomain.STORAGE)
        top = Path(os.path.normpath(root))
        return StorageLayout(f"embed:{top}", top / "etc" / "storage", top / "run" / "storage")
    return None
