"""The pluggy managers, imported only when a connection or the registry needs pluggy itself
(see :mod:`virt._plugins`: a connection whose driver is its only plugin never does)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FunctionType, MemberDescriptorType, MethodType, ModuleType
from typing import Any, ClassVar, cast

import pluggy
from pluggy import HookimplOpts, HookspecOpts

from virt._plugins import _HOOKABLE, _MISSING, _class_attribute, _marker_opts

__all__ = ["ConnectionManager", "PluginValidationError", "tracer"]

PluginValidationError = pluggy.PluginValidationError


def tracer(pm: pluggy.PluginManager) -> Callable[[], None]:
    pm.trace.root.setwriter(sys.stderr.write)
    return pm.enable_tracing()


class ConnectionManager(pluggy.PluginManager):
    """A connection's plugin manager: pluggy's, with hook discovery memoised and cheaper.

    Adding the spec modules and registering an object make pluggy inspect every attribute
    statically (``inspect.getattr_static``), and the spec modules, the driver and the
    dispatcher have hundreds: that was most of the cost of opening a connection.  The markers
    sit on module functions and on the class's functions, so the answer for (module, name)
    and for (class, name) does not change, and it is found by reading the module's or the
    classes' ``__dict__``, as getattr_static would.  Names an instance shadows in its own
    ``__dict__``, slots, anything that is not a plain function, staticmethod, classmethod or
    bound method, and modules and classes registered as plugins, are left to pluggy.
    """

    _opts_by_class: ClassVar[dict[tuple[type, str], HookimplOpts | None]] = {}
    _spec_opts: ClassVar[dict[tuple[object, str], HookspecOpts | None]] = {}

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> HookspecOpts | None:
        key = (module_or_class, name)
        try:
            opts = self._spec_opts[key]
        except KeyError:
            value = (module_or_class.__dict__.get(name, _MISSING)
                     if isinstance(module_or_class, ModuleType) and not name.startswith("__") else _MISSING)
            if type(value) is FunctionType:
                opts = cast("HookspecOpts | None", _marker_opts(value, self.project_name + "_spec"))
            else:
                opts = super().parse_hookspec_opts(module_or_class, name)
            self._spec_opts[key] = opts
        return None if opts is None else cast(HookspecOpts, dict(opts))

    def parse_hookimpl_opts(self, plugin: object, name: str) -> HookimplOpts | None:
        if isinstance(plugin, (ModuleType, type)) or name in getattr(plugin, "__dict__", ()):
            return super().parse_hookimpl_opts(plugin, name)
        key = (type(plugin), name)
        try:
            opts = self._opts_by_class[key]
        except KeyError:
            value = _class_attribute(type(plugin), name)
            if isinstance(value, _HOOKABLE):
                opts = cast("HookimplOpts | None", _marker_opts(value, self.project_name + "_impl"))
            elif isinstance(value, MethodType):
                opts = cast("HookimplOpts | None", _marker_opts(value.__func__, self.project_name + "_impl"))
            elif value is _MISSING or isinstance(value, MemberDescriptorType):
                opts = super().parse_hookimpl_opts(plugin, name)
            else:
                opts = None  # a property, a constant, ...: pluggy skips these too
            self._opts_by_class[key] = opts
        # pluggy normalises (mutates) the options it is given: hand out a copy.
        return None if opts is None else cast(HookimplOpts, dict(opts))
