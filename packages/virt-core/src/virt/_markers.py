"""The pluggy markers of the ``virt`` project: drivers and plugins decorate with these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec", "operation"]

PROJECT = "virt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

F = TypeVar("F", bound=Callable[..., Any])


def operation(libvirt_api: str, *, mutating: bool = False) -> Callable[[F], F]:
    """Mark an operation hook spec (always firstresult: one provider answers).

    :param libvirt_api: the libvirt C function this hook stands for; it names the call in
        ``NO_SUPPORT`` errors exactly as libvirt does ("... not supported by the connection
        driver: virDomainCreate").
    :param mutating: the hook changes state, so read-only connections refuse it (on the
        server side too: the remote daemon opens its local connection read-only).
    """

    def mark(fn: F) -> F:
        fn = hookspec(firstresult=True)(fn)
        fn.virt_libvirt_api = libvirt_api  # type: ignore[attr-defined]
        fn.virt_mutating = mutating  # type: ignore[attr-defined]
        return fn

    return mark
