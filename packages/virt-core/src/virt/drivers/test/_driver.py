"""The test driver's connection object: the connection-level hooks plus one mixin per area."""

from __future__ import annotations

import os
from typing import Any

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt.drivers.test import _state
from virt.drivers.test._domains import DomainOps
from virt.drivers.test._host import HostOps
from virt.drivers.test._loader import load_default, load_file
from virt.drivers.test._networks import NetworkOps
from virt.drivers.test._snapshots import SnapshotOps
from virt.drivers.test._storage import StorageOps
from virt.plugin import LocalConnection, OpenRequest

__all__ = ["TestConnection"]

DEFAULT_KEY = "default"


class TestConnection(DomainOps, SnapshotOps, NetworkOps, StorageOps, HostOps, LocalConnection):
    """One connection to a test node.  The node (``self.node``) may be shared."""

    def __init__(self, node: _state.NodeState, uri: str, shared_key: str | None, hook: Any) -> None:
        self.node = node
        self.uri = uri
        self._shared_key = shared_key
        self._hook = hook
        if hook is not None:
            with node.lock:
                node.listeners.append(hook)

    @classmethod
    def open(cls, request: OpenRequest) -> TestConnection:
        path = request.uri.path
        if path in ("/default", ""):
            if path == "":
                raise VirtError(ErrorNumber.INVALID_ARG, "testOpen: supply a path or use test:///default",
                                domain=ErrorDomain.TEST)
            node = _state.acquire(DEFAULT_KEY, load_default)
            return cls(node, "test:///default", DEFAULT_KEY, request.hook)
        if not os.path.isabs(path):
            raise VirtError(ErrorNumber.INVALID_ARG, f"testOpen: path '{path}' must be absolute",
                            domain=ErrorDomain.TEST)
        return cls(load_file(path), f"test://{path}", None, request.hook)

    @hookimpl
    def virt_connect_close(self) -> None:
        with self.node.lock:
            if self._hook in self.node.listeners:
                self.node.listeners.remove(self._hook)
        if self._shared_key is not None:
            _state.release(self._shared_key)
            self._shared_key = None

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "TEST"

    @hookimpl
    def virt_connect_get_version(self) -> int:
        return 2
