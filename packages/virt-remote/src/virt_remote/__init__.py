"""virt's remote plugin: every hook of the driver contract, proxied to another node.

URIs with a transport or a host come here: ``test+ssh://user@host:port/default`` runs
``virt-remote-helper`` on the far side over an SSH exec channel (asyncssh), ``qemu+unix:///session``
talks to a local ``virtd`` (started on demand), ``test+ext:///default?command=...`` runs a
command and talks over its pipes.  The wire protocol is described in ``docs/remote-protocol.md``.

Importing this module is cheap: asyncssh and the protocol load when a remote URI is opened.
"""

from __future__ import annotations

from collections.abc import Iterable

from virt.plugin import DriverSpec, OpenRequest, hookimpl

__all__ = ["virt_register_drivers"]


def _open(request: OpenRequest) -> object:
    from virt_remote._client import open_remote

    return open_remote(request)


@hookimpl
def virt_register_drivers() -> Iterable[DriverSpec]:
    return [DriverSpec(scheme="remote", open=_open, remote=True,
                       description="any driver on another node, over SSH or a local daemon's unix socket")]
