"""A tiny local driver for the tests: ``hosttest:///embed?root=DIR``, whose connections
accept the host's storage, network and node providers.  It implements nothing else, so every storage call goes
through virt-host's provider and the public API."""

from __future__ import annotations

from collections.abc import Iterable

from virt import ErrorNumber, VirtError
from virt.plugin import DriverSpec, OpenRequest, hookimpl


class HostTestConnection:
    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "HOSTTEST"


def _open(request: OpenRequest) -> HostTestConnection:
    if request.uri.path.rstrip("/") not in ("/embed", "/session", "/system"):
        raise VirtError(ErrorNumber.INVALID_ARG, f"unexpected hosttest URI path '{request.uri.path}'")
    return HostTestConnection()


class HostTestPlugin:
    @hookimpl
    def virt_register_drivers(self) -> Iterable[DriverSpec]:
        accepts: frozenset[str] = frozenset({"storage", "network", "node"})
        # mypy reads the attrs converter (frozenset) of DriverSpec.accepts as generic
        return [DriverSpec(scheme="hosttest", open=_open, accepts=accepts,  # type: ignore[arg-type,unused-ignore]
                           description="virt-host tests")]


def register() -> None:
    """Register the driver and virt-host by hand (autoloading off)."""
    import virt_host
    from virt._plugins import register_plugin

    register_plugin(HostTestPlugin(), name="hosttest")
    register_plugin(virt_host, name="virt-host")
