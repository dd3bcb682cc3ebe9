"""The pluggy markers of the ``virt`` project: drivers and plugins decorate with these.

``hookimpl`` marks a function exactly as ``pluggy.HookimplMarker("virt")`` does (the options
dict in its ``virt_impl`` attribute, which any pluggy manager reads), without importing
pluggy: a driver's module decorates a hundred methods on import, and a connection whose
driver is its only plugin never builds a pluggy manager (see ``virt._plugins``), so a CLI
start need not import pluggy at all.  ``tests/test_plugins.py`` checks that the marks are
pluggy's.  ``hookspec`` is pluggy's own ``HookspecMarker``, made when first named (only the
spec modules use it, and they are imported with pluggy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    import pluggy

    hookspec: pluggy.HookspecMarker

__all__ = ["PROJECT", "HookimplMarker", "hookimpl", "hookspec", "operation"]

PROJECT = "virt"

F = TypeVar("F", bound=Callable[..., Any])


class HookimplMarker:
    """``pluggy.HookimplMarker``'s decorator: the same options, set the same way."""

    __slots__ = ("project_name",)

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name

    @overload
    def __call__(self, function: F, hookwrapper: bool = ..., optionalhook: bool = ..., tryfirst: bool = ...,
                 trylast: bool = ..., specname: str | None = ..., wrapper: bool = ...) -> F: ...

    @overload
    def __call__(self, function: None = ..., hookwrapper: bool = ..., optionalhook: bool = ...,
                 tryfirst: bool = ..., trylast: bool = ..., specname: str | None = ...,
                 wrapper: bool = ...) -> Callable[[F], F]: ...

    def __call__(self, function: F | None = None, hookwrapper: bool = False, optionalhook: bool = False,
                 tryfirst: bool = False, trylast: bool = False, specname: str | None = None,
                 wrapper: bool = False) -> F | Callable[[F], F]:
        opts = {"wrapper": wrapper, "hookwrapper": hookwrapper, "optionalhook": optionalhook,
                "tryfirst": tryfirst, "trylast": trylast, "specname": specname}
        attribute = self.project_name + "_impl"

        def mark(func: F) -> F:
            setattr(func, attribute, dict(opts))
            return func

        return mark if function is None else mark(function)


hookimpl = HookimplMarker(PROJECT)


def __getattr__(name: str) -> Any:
    if name == "hookspec":
        import pluggy

        marker = globals()["hookspec"] = pluggy.HookspecMarker(PROJECT)
        return marker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def operation(libvirt_api: str, *, mutating: bool = False) -> Callable[[F], F]:
    """Mark an operation hook spec (always firstresult: one provider answers).

    :param libvirt_api: the libvirt C function this hook stands for; it names the call in
        ``NO_SUPPORT`` errors exactly as libvirt does ("... not supported by the connection
        driver: virDomainCreate").
    :param mutating: the hook changes state, so read-only connections refuse it (on the
        server side too: the remote daemon opens its local connection read-only).
    """

    def mark(fn: F) -> F:
        marker = globals().get("hookspec") or __getattr__("hookspec")  # made once, on first use
        fn = marker(firstresult=True)(fn)
        fn.virt_libvirt_api = libvirt_api  # type: ignore[attr-defined]
        fn.virt_mutating = mutating  # type: ignore[attr-defined]
        return fn

    return mark
