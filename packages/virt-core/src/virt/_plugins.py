"""The process-wide plugin manager and the per-connection managers built from it.

Loading is lazy: opening ``qemu:///system`` imports the entry point named ``qemu`` and nothing
else from the ``virt.drivers`` group, so a CLI start does not import every installed driver.
Environment:

``VIRT_DISABLE_PLUGIN_AUTOLOAD``
    when set (non-empty), no entry point is loaded; only the built-in test driver and plugins
    registered with :func:`register_plugin` are known.
``VIRT_TRACE``
    when set, every hook call of every connection is written to stderr (pluggy's tracing).
``VIRT_NO_ENTRY_POINT_CACHE``
    when set, entry points are read from the installed distributions on every start instead
    of from the cache (see :func:`_entry_points`).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FunctionType, MemberDescriptorType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import PROJECT, hookimpl
from virt._spectable import SPECS as _SPECS
from virt._uri import URI
from virt.plugin import DRIVER_GROUP, PLUGIN_GROUP, ConnectionPlugin, DriverSpec, OpenRequest

if TYPE_CHECKING:  # pluggy itself is imported only where a manager is built (virt._pm)
    import pluggy

__all__ = [
    "LIBVIRT_API",
    "MUTATING_HOOKS",
    "PluginProblem",
    "build_connection_manager",
    "find_driver",
    "known_drivers",
    "plugin_manager",
    "problems",
    "register_plugin",
    "reset",
]

BUILTIN_DRIVERS = {"test": "virt.drivers.test"}

# What the core needs of the operation hook specs, generated from virt.hookspecs (whose import
# costs more than opening test:///default): a connection whose driver is its only plugin never
# imports the spec modules (see _open_lazily).
#: hook name -> the libvirt function it stands for, for NO_SUPPORT messages.
LIBVIRT_API: dict[str, str] = {n: row[0] for n, row in _SPECS.items()}
#: hooks a read-only connection refuses.
MUTATING_HOOKS: frozenset[str] = frozenset(n for n, row in _SPECS.items() if row[1])


class PluginProblem(Warning):
    """A plugin failed to load or register; it was skipped."""


class _Registry:
    """Everything the process knows about plugins; :func:`reset` starts a new one."""

    __slots__ = ("conn_plugins", "drivers", "entry_points", "loaded_groups", "plugins", "pm", "problems")

    def __init__(self) -> None:
        # the registration plugins, by name, in the order they were registered
        self.plugins: list[tuple[str, object]] = []
        self.pm: pluggy.PluginManager | None = None  # built from ``plugins`` when asked for
        self.drivers: dict[str, DriverSpec] | None = None  # by scheme, derived from pm
        self.conn_plugins: list[ConnectionPlugin] | None = None  # derived from pm
        self.entry_points: dict[str, list[_EntryPoint]] | None = None
        self.loaded_groups: set[str] = set()
        self.problems: list[str] = []


_lock = threading.RLock()
_state = _Registry()


def _autoload() -> bool:
    return not os.environ.get("VIRT_DISABLE_PLUGIN_AUTOLOAD")


#: the registration hooks (virt.hookspecs.registration), none of which takes an argument
REGISTRATION_HOOKS = ("virt_register_drivers", "virt_register_connection_plugins")


def plugin_manager() -> pluggy.PluginManager:
    """The registration plugins in a pluggy manager of the registration hooks (built when
    first asked for: the core itself calls the registration hooks without one)."""
    with _lock:
        if _state.pm is None:
            import pluggy

            from virt.hookspecs import registration

            pm = pluggy.PluginManager(PROJECT)
            pm.add_hookspecs(registration)
            for name, plugin in _state.plugins:
                pm.register(plugin, name=name)
            _state.pm = pm
        return _state.pm


def reset() -> None:
    """Forget every registered plugin, loaded entry point and reported problem (for tests
    that install plugins, and embedders that need a clean slate)."""
    global _state
    with _lock:
        _state = _Registry()


@contextmanager
def isolated() -> Iterator[None]:
    """A fresh plugin state for the block, then the previous one back (see
    :func:`virt.testing.isolated_plugins`)."""
    global _state
    with _lock:
        saved, _state = _state, _Registry()
    try:
        yield
    finally:
        with _lock:
            _state = saved


def problems() -> list[str]:
    """What went wrong loading plugins so far (each was skipped), for ``virt drivers``."""
    return list(_state.problems)


def _report(message: str) -> None:
    _state.problems.append(message)
    import warnings

    warnings.warn(message, PluginProblem, stacklevel=3)


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object or module by hand (embedding, tests, autoload off).

    It is checked as pluggy's ``register`` and ``check_pending`` would check it: every
    function marked with :data:`~virt.plugin.hookimpl` must implement a registration hook
    and take none of the arguments it does not have; a plugin that fails is reported
    (:class:`PluginProblem`) and skipped."""
    with _lock:
        key = name if name is not None else str(id(plugin))
        if any(p is plugin or n == key for n, p in _state.plugins):
            return
        try:
            problem = _registration_problem(plugin, key)
        except Exception as exc:  # noqa: BLE001 - a third party's bug must not break us
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None and _state.pm is not None:
            try:
                _state.pm.register(plugin, name=key)
            except Exception as exc:  # noqa: BLE001
                problem = str(exc)
        if problem is not None:
            _report(f"plugin {name or plugin!r} could not be registered: {problem}")
            return
        _state.plugins.append((key, plugin))
        _state.drivers = None
        _state.conn_plugins = None


def _marked(plugin: object) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(attribute name, function, hookimpl options) of every marked function of ``plugin``,
    found as pluggy finds them (statically: no property is run)."""
    if isinstance(plugin, ModuleType):
        items: Iterable[tuple[str, object]] = list(vars(plugin).items())
    elif isinstance(plugin, type):
        items = [(attr, _class_attribute(plugin, attr)) for attr in dir(plugin)]
    else:
        own = getattr(plugin, "__dict__", {})
        items = [(attr, own[attr] if attr in own else _class_attribute(type(plugin), attr)) for attr in dir(plugin)]
    for attr, value in items:
        opts = _marker_opts(value, PROJECT + "_impl")
        if opts is None:
            continue
        function = getattr(plugin, attr)
        yield attr, function, opts


def _registration_problem(plugin: object, name: str) -> str | None:
    """Why pluggy would refuse ``plugin`` as a registration plugin (None when it would not)."""
    for attr, function, opts in _marked(plugin):
        hook = opts.get("specname") or attr
        if hook not in REGISTRATION_HOOKS:
            if opts.get("optionalhook"):
                continue
            return f"unknown hook {hook!r} in plugin {plugin!r}"
        if opts.get("wrapper") or opts.get("hookwrapper"):
            return f"plugin {name!r}: a registration hook ({hook!r}) cannot be a wrapper"
        code = getattr(function, "__code__", None)
        if code is None:
            return f"plugin {name!r}: {hook!r} is not a function"
        bound = 1 if isinstance(function, MethodType) else 0
        params = code.co_varnames[bound:code.co_argcount + code.co_kwonlyargcount]
        if params:
            return (f"Plugin {name!r} for hook {hook!r}: argument(s) {set(params)} are declared in the hookimpl "
                    f"but can not be found in the hookspec")
    return None


def _registration_impls(hook: str) -> list[tuple[str, Callable[[], Any]]]:
    """(plugin name, function) of every implementation of registration hook ``hook``, in
    the order pluggy lists them: trylast ones, the others, tryfirst ones, each in the order
    their plugins were registered."""
    found: list[tuple[int, str, Callable[[], Any]]] = []
    for name, plugin in _state.plugins:
        for attr, function, opts in _marked(plugin):
            if (opts.get("specname") or attr) == hook:
                found.append((2 if opts.get("tryfirst") else 0 if opts.get("trylast") else 1, name, function))
    found.sort(key=lambda item: item[0])
    return [(name, function) for _, name, function in found]


class _EntryPoint(NamedTuple):
    group: str
    name: str
    value: str
    dist: str

    def load(self) -> Any:
        module_name, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


_GROUPS = (DRIVER_GROUP, PLUGIN_GROUP)


def _cache_file(paths: str) -> str:
    """The cache file of one interpreter and ``sys.path``: one file each, rewritten when the
    stamp inside it no longer matches (so the directory does not fill up)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # a tuple of ints hashes the same in every process (str hashes are salted per process),
    # and needs no zlib import at each start
    name = f"{hash(tuple(paths.encode())) & 0xFFFFFFFFFFFFFFFF:016x}"
    return os.path.join(base, "virt", f"entry-points-{name}.txt")


def _scan_entry_points() -> dict[str, list[_EntryPoint]]:
    from importlib.metadata import entry_points

    found: dict[str, list[_EntryPoint]] = {group: [] for group in _GROUPS}
    for group in _GROUPS:
        for ep in entry_points(group=group):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
            found[group].append(_EntryPoint(group, ep.name, ep.value, dist))
    return found


# The cache file: this line, the stamp, then one entry point a line, its fields separated by
# tabs (entry point names, values and distribution names cannot hold a tab or a newline).
_CACHE_FORMAT = "virt entry points 2"


def _entry_points(group: str) -> list[_EntryPoint]:
    """The entry points of ``group``.

    Reading them means importing ``importlib.metadata`` and opening every installed
    distribution's metadata, which costs more than the rest of a CLI start.  So the result is
    cached in ``$XDG_CACHE_HOME/virt/``, one file per interpreter and ``sys.path``, stamped
    with the modification times of its directories: installing or removing a distribution
    changes the directory it lives in, and with it the stamp.
    """
    if _state.entry_points is None:
        paths = "\n".join([sys.executable, *sys.path])
        stamp = [sys.executable]
        for entry in sys.path:
            try:
                stamp.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
            except OSError:
                stamp.append(f"{entry}:-")
        key = "\t".join(stamp)
        path = _cache_file(paths)
        use_cache = not os.environ.get("VIRT_NO_ENTRY_POINT_CACHE")
        data = _read_cache(path, key) if use_cache else None
        if data is None:
            data = _scan_entry_points()
            if use_cache:
                _write_cache(path, key, data)
        _state.entry_points = data
    return list(_state.entry_points.get(group, ()))


def _read_cache(path: str, key: str) -> dict[str, list[_EntryPoint]] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, ValueError):
        return None
    if len(lines) < 3 or lines[0] != _CACHE_FORMAT or lines[1] != key or lines[-1] != "":
        return None
    data: dict[str, list[_EntryPoint]] = {group: [] for group in _GROUPS}
    for line in lines[2:-1]:
        fields = line.split("\t")
        if len(fields) != 4 or fields[0] not in data:
            return None
        data[fields[0]].append(_EntryPoint(*fields))
    return data


def _write_cache(path: str, key: str, data: dict[str, list[_EntryPoint]]) -> None:
    lines = [_CACHE_FORMAT, key]
    for eps in data.values():
        for ep in eps:
            if any(c in field for field in ep for c in "\t\n"):
                return  # not representable: such an entry point is read afresh each time
            lines.append("\t".join(ep))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the scan


def _load_entry_point(ep: _EntryPoint) -> None:
    source = f"{ep.group}:{ep.name} = {ep.value} (from {ep.dist})"
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is reported and skipped
        _report(f"plugin {source} failed to load: {type(exc).__name__}: {exc}")
        return
    register_plugin(plugin, name=f"{ep.group}:{ep.name}")


def _load_builtin(scheme: str) -> None:
    module = BUILTIN_DRIVERS.get(scheme)
    if module is not None:
        register_plugin(importlib.import_module(module), name=f"{DRIVER_GROUP}:{scheme}")


def _load_driver_entry_points(scheme: str | None) -> None:
    """Load the ``virt.drivers`` entries named ``scheme`` (all when None)."""
    key = f"{DRIVER_GROUP}:{scheme or '*'}"
    if key in _state.loaded_groups:
        return
    _state.loaded_groups.add(key)
    if not _autoload():
        if scheme is None:
            for name in BUILTIN_DRIVERS:
                _load_builtin(name)
        else:
            _load_builtin(scheme)
        return
    selected = _entry_points(DRIVER_GROUP)
    found = False
    for ep in selected:
        if scheme is None or ep.name == scheme:
            found = True
            _load_entry_point(ep)
    if not found and scheme is not None:
        _load_builtin(scheme)  # an uninstalled (source-tree) virt-core still has its test driver


def _collect_drivers() -> dict[str, DriverSpec]:
    if _state.drivers is None:
        drivers: dict[str, DriverSpec] = {}
        owners: dict[str, str] = {}
        # in registration order: the first loaded wins
        for plugin_name, register in _registration_impls("virt_register_drivers"):
            try:
                specs = list(register() or ())
            except Exception as exc:  # noqa: BLE001
                _report(f"plugin {plugin_name} failed in virt_register_drivers: {exc}")
                continue
            for spec in specs:
                if not isinstance(spec, DriverSpec):
                    _report(f"plugin {plugin_name} returned {spec!r}, not a DriverSpec")
                    continue
                if spec.scheme in drivers:
                    _report(f"URI scheme '{spec.scheme}' is claimed twice: by plugin {owners[spec.scheme]} and "
                            f"by plugin {plugin_name}; the first loaded ({owners[spec.scheme]}) is used")
                    continue
                drivers[spec.scheme] = spec
                owners[spec.scheme] = plugin_name
        _state.drivers = drivers
    return _state.drivers


def known_drivers() -> dict[str, DriverSpec]:
    """Every installed driver, by scheme (loads every driver entry point)."""
    with _lock:
        _load_driver_entry_points(None)
        return dict(_collect_drivers())


def find_driver(uri: URI) -> DriverSpec:
    """The driver that takes ``uri``: the remote one for URIs with a transport or host."""
    with _lock:
        scheme = "remote" if uri.is_remote else uri.driver
        _load_driver_entry_points(scheme)
        spec = _collect_drivers().get(scheme)
        if spec is None:
            hint = ("install virt-remote for remote URIs" if scheme == "remote"
                    else f"install the virt driver for '{uri.driver}' (e.g. virt-driver-{uri.driver})")
            raise VirtError(ErrorNumber.NO_CONNECT, f"{uri}: {hint}", domain=ErrorDomain.NONE)
        return spec


def _connection_plugins() -> list[ConnectionPlugin]:
    if PLUGIN_GROUP not in _state.loaded_groups:
        _state.loaded_groups.add(PLUGIN_GROUP)
        if _autoload():
            for ep in _entry_points(PLUGIN_GROUP):
                _load_entry_point(ep)
    if _state.conn_plugins is None:
        found: list[ConnectionPlugin] = []
        for plugin_name, register_plugins in _registration_impls("virt_register_connection_plugins"):
            try:
                found.extend(register_plugins() or ())
            except Exception as exc:  # noqa: BLE001
                _report(f"plugin {plugin_name} failed in virt_register_connection_plugins: {exc}")
        _state.conn_plugins = found
    return _state.conn_plugins


def _marker_opts(holder: object, attrname: str) -> dict[str, Any] | None:
    """The options a hook marker left on ``holder`` (or on the function it wraps), as pluggy
    reads them."""
    opts = getattr(holder, attrname, None)
    if opts is None:
        func = getattr(holder, "__func__", None)
        opts = None if func is None else getattr(func, attrname, None)
    return opts if isinstance(opts, dict) else None


_MISSING = object()
_HOOKABLE = (FunctionType, staticmethod, classmethod)


def _class_attribute(cls: type, name: str) -> object:
    """``name`` as ``inspect.getattr_static`` finds it on an instance of ``cls`` whose own
    ``__dict__`` lacks it: the first class of the MRO that defines it."""
    for klass in cls.__mro__:
        namespace = klass.__dict__
        if name in namespace:
            return namespace[name]
    return _MISSING


class CoreDefaults:
    """Hooks the core answers for every driver from the driver's other hooks.  Registered
    first on each connection, so a driver's (or provider's) own implementation answers before
    it; a remote server exports these too, so a batched call crosses the wire once."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    @hookimpl
    def virt_domain_list_info(self, flags: int) -> list[tuple[Any, Any]]:
        refs = self.hook.virt_domain_list(flags=flags)
        if refs is None:
            raise VirtError(ErrorNumber.NO_SUPPORT, LIBVIRT_API["virt_domain_list"], domain=ErrorDomain.DOM)
        out: list[tuple[Any, Any]] = []
        for ref in refs:
            try:
                info = self.hook.virt_domain_get_info(uuid=ref.uuid)
            except VirtError as exc:
                if exc.code == ErrorNumber.NO_DOMAIN:
                    continue  # vanished meanwhile
                raise
            if info is None:
                raise VirtError(ErrorNumber.NO_SUPPORT, LIBVIRT_API["virt_domain_get_info"], domain=ErrorDomain.DOM)
            out.append((ref, info))
        return out


class _LazyConnectionManager:
    """The plugin manager of a connection whose only plugin is its driver, built by pluggy
    when something first needs it.

    Adding the spec modules and registering a driver's hundred-odd implementations costs a
    few milliseconds, more than the rest of ``virt.open("test:///default")``, and importing
    pluggy a few more; a connection that only calls operation hooks never needs either:
    :func:`implemented_hooks` binds them to the driver's methods directly (``direct``), as
    it would from pluggy's registrations.  Anything else read of this object is the real
    manager's, built then, exactly as :func:`build_connection_manager` would have built it.
    """

    __slots__ = ("_build", "_real", "direct")

    def __init__(self, build: Callable[[pluggy.PluginManager], None], direct: DirectHooks) -> None:
        self._build = build
        self._real: pluggy.PluginManager | None = None
        self.direct = direct

    @property
    def materialized(self) -> bool:
        return self._real is not None

    def manager(self) -> pluggy.PluginManager:
        """The real (pluggy) manager, built on the first call."""
        with _lock:
            if self._real is None:
                from virt._pm import ConnectionManager

                pm = ConnectionManager(PROJECT)
                self._build(pm)
                self._real = pm
            return self._real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.manager(), name)

    def __repr__(self) -> str:
        return f"<lazy {self._real!r}>" if self._real is not None else "<lazy plugin manager (not built yet)>"


def real_manager(pm: Any) -> pluggy.PluginManager:
    """The pluggy manager behind a connection's manager (built now if it was not yet)."""
    return pm.manager() if isinstance(pm, _LazyConnectionManager) else pm


class _LazyRelay:
    """The hook relay a driver of a lazily built connection is opened with: each attribute is
    the manager's (built on the first read)."""

    __slots__ = ("_pm",)

    def __init__(self, pm: _LazyConnectionManager) -> None:
        self._pm = pm

    def __getattr__(self, name: str) -> Any:
        real = self._pm._real
        return getattr((real if real is not None else self._pm.manager()).hook, name)

    def listening(self, event_hook: str) -> bool:
        """:func:`virt.plugin.listening` without building the manager: subscribers join it,
        so while it is not built nobody listens."""
        real = self._pm._real
        return real is not None and bool(getattr(real.hook, event_hook).get_hookimpls())

    def __repr__(self) -> str:
        return f"<hook relay of {self._pm!r}>" if self._pm.materialized else "<hook relay (not built yet)>"


#: per class: hook name -> (attribute, argnames, spec argnames) when every implementation
#: the class has can be called directly (see _direct_plan), else None.
_DIRECT_PLANS: dict[type, dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] | None] = {}


def _plain_argnames(fn: FunctionType, skip: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(every positional parameter, those without a default) after the first ``skip``; None for
    ``*args``, ``**kwargs`` or keyword-only parameters."""
    code = fn.__code__
    if code.co_flags & 0x0C or code.co_kwonlyargcount:  # CO_VARARGS | CO_VARKEYWORDS
        return None
    params = code.co_varnames[skip:code.co_argcount]
    required = params[:len(params) - len(fn.__defaults__ or ())]
    return params, required


def _direct_plan(cls: type) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] | None:
    """How to call the hook implementations of ``cls``'s instances without pluggy, or None
    when one of them is anything but what pluggy would accept without a word: a plain method
    (no wrapper, no ``specname``) of a known operation or event hook whose parameters are all
    the spec's (pluggy's own check is looser), on a spec that is not historic or deprecated."""
    plan: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    ordered: set[str] = set()
    for name in dir(cls):
        value = _class_attribute(cls, name)
        if value is _MISSING or isinstance(value, MemberDescriptorType):
            if name.startswith(PROJECT):
                return None
            continue
        if isinstance(value, (staticmethod, classmethod, MethodType)):
            if _marker_opts(value, PROJECT + "_impl") is not None:
                return None
            continue
        if type(value) is not FunctionType:
            continue
        opts = _marker_opts(value, PROJECT + "_impl")
        if opts is None:
            continue
        if opts.get("wrapper") or opts.get("hookwrapper") or opts.get("specname") or name not in _SPECS:
            return None
        _api, _mutating, spec_params, n_required, plain = _SPECS[name]
        impl_names = _plain_argnames(value, 1)
        if not plain or impl_names is None or not set(impl_names[0]) <= set(spec_params):
            return None
        plan[name] = (name, impl_names[1], spec_params[:n_required])
        if opts.get("tryfirst") or opts.get("trylast"):
            ordered.add(name)
    _ORDERED[cls] = frozenset(ordered)
    return plan


class DirectHooks(dict[str, Any]):
    """hook name -> callable(**kwargs) of a lone driver's connection, bound on first use.

    Binding the hundred-odd implementations of a driver at every open was most of the cost
    of opening ``test:///default``; a connection calls a few of them.  ``in``, ``get`` and
    ``[]`` see every implemented hook, bound or not (``[]`` of a hook nobody implements is a
    KeyError, as for a dict)."""

    __slots__ = ("_sources",)

    def __init__(self, sources: list[tuple[object, dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]]]) -> None:
        super().__init__()
        self._sources = sources  # (plugin, its class's plan), in the order pluggy would ask

    def __missing__(self, hook: str) -> Any:
        found = []
        for plugin, plan in self._sources:
            entry = plan.get(hook)
            if entry is not None:
                attr, argnames, spec_argnames = entry
                found.append(_bind(getattr(plugin, attr), argnames, spec_argnames))
        if not found:
            raise KeyError(hook)
        bound = self[hook] = found[0] if len(found) == 1 else _first_answer(found)
        return bound

    def __contains__(self, hook: object) -> bool:
        return dict.__contains__(self, hook) or any(hook in plan for _, plan in self._sources)

    def get(self, hook: str, default: Any = None) -> Any:
        try:
            return self[hook]
        except KeyError:
            return default

    def names(self) -> set[str]:
        return {hook for _, plan in self._sources for hook in plan}


def _first_answer(impls: list[Any]) -> Any:
    """Several implementations of one operation hook (firstresult), asked as pluggy would ask
    them: in order, until one answers something else than None."""

    def first(**kwargs: Any) -> Any:
        for impl in impls:
            result = impl(**kwargs)
            if result is not None:
                return result
        return None

    return first


#: per class: the hooks its implementations order (tryfirst, trylast), filled by _direct_plan
_ORDERED: dict[type, frozenset[str]] = {}
#: per tuple of plugin classes: whether the hooks two of them implement can be asked in turn
#: without pluggy (only operation hooks, which are firstresult, and none of them ordered)
_CHAINED: dict[tuple[type, ...], bool] = {}


def _direct_hooks(plugins: list[object]) -> DirectHooks | None:
    """hook name -> callable for ``plugins`` (the core's defaults, then the driver), as
    :func:`implemented_hooks` would bind them after pluggy registered them; None when pluggy
    must do it (an implementation :func:`_direct_plan` refuses, a hook two of them implement
    unless it is an operation hook that neither orders, a hook-named attribute on an
    instance).  A hook two implement is asked of each in turn, the driver first, as pluggy
    does for a firstresult hook: so a driver that answers ``virt_domain_list_info`` itself (the
    remote one) keeps the lazy manager too."""
    sources = []
    for plugin in plugins:
        if isinstance(plugin, (ModuleType, type)):
            return None
        if any(key.startswith(PROJECT) for key in getattr(plugin, "__dict__", ())):
            return None
        cls = type(plugin)
        try:
            plan = _DIRECT_PLANS[cls]
        except KeyError:
            plan = _DIRECT_PLANS[cls] = _direct_plan(cls)
        if plan is None:
            return None
        sources.append((plugin, plan))
    key = tuple(type(plugin) for plugin, _ in sources)
    chained = _CHAINED.get(key)
    if chained is None:
        seen: set[str] = set()
        shared: set[str] = set()
        for _, plan in sources:
            shared.update(seen.intersection(plan))
            seen.update(plan)
        ordered = set().union(*(_ORDERED.get(cls, frozenset()) for cls in key))
        chained = _CHAINED[key] = all(_SPECS[hook][0] != hook for hook in shared) and not shared & ordered
    if not chained:
        return None
    # pluggy asks the newest registration first: the driver, then the core's defaults
    return DirectHooks(sources[::-1])


def _add_core(pm: pluggy.PluginManager) -> None:
    """The operation hook specs and the core's defaults, the first things of every
    connection's manager."""
    from virt.hookspecs import OPERATION_MODULES

    for module in OPERATION_MODULES:
        pm.add_hookspecs(module)
    pm.register(CoreDefaults(pm.hook), name="virt:defaults")


def _open_driver(spec: DriverSpec, request: OpenRequest) -> object:
    """``spec.open(request)``; a driver's bug is an INTERNAL_ERROR naming it, not a traceback."""
    try:
        return spec.open(request)
    except VirtError:
        raise
    except Exception as exc:
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"driver '{spec.scheme}' failed to open {request.uri}: "
                        f"{type(exc).__name__}: {exc}") from exc


def build_connection_manager(spec: DriverSpec, uri: URI, readonly: bool) -> tuple[pluggy.PluginManager, object]:
    """Build one connection's plugin manager: the core's defaults, providers, wrappers, then
    the driver's connection object (registered last so that pluggy, which calls the newest
    first, asks the driver before any provider).  The core's event dispatcher joins on the
    first subscribe.

    A connection with no provider and no wrapper (and no ``VIRT_TRACE``) gets a manager that
    pluggy builds only when first needed (:class:`_LazyConnectionManager`)."""
    with _lock:
        plugins = list(_connection_plugins()) if not spec.remote else []
    if not os.environ.get("VIRT_TRACE") and not any(
            cp.kind != "provider" or cp.area in spec.accepts for cp in plugins):
        lazy = _open_lazily(spec, uri, readonly)
        if lazy is not None:
            return lazy
    from virt._pm import ConnectionManager

    pm = ConnectionManager(PROJECT)
    _add_core(pm)
    request = OpenRequest(uri=uri, readonly=readonly, hook=pm.hook)
    wanted: list[tuple[str, object]] = []
    for cp in plugins:
        if cp.kind == "provider" and cp.area not in spec.accepts:
            continue
        try:
            obj = cp.factory(request, spec)
        except VirtError:
            raise
        except Exception as exc:  # noqa: BLE001
            _report(f"connection plugin {cp.name} failed for {uri}: {exc}")
            continue
        if obj is not None:
            wanted.append((cp.name, obj))
    for name, obj in wanted:
        pm.register(obj, name=name)
    driver = _open_driver(spec, request)
    _register_driver(pm, spec, driver)
    if os.environ.get("VIRT_TRACE"):
        from virt._pm import tracer

        tracer(pm)
    return pm, driver


def _open_lazily(spec: DriverSpec, uri: URI, readonly: bool) -> tuple[pluggy.PluginManager, object] | None:
    """:func:`build_connection_manager` for a driver alone: its manager is built on first need,
    or now when its hooks cannot be bound without pluggy (then pluggy checks them as usual)."""

    opened: list[object] = []  # the driver, once its open() returned

    def build(pm: pluggy.PluginManager) -> None:
        _add_core(pm)
        if opened:
            _register_driver(pm, spec, opened[0])

    pm = _LazyConnectionManager(build, DirectHooks([]))
    relay = _LazyRelay(pm)
    driver = _open_driver(spec, OpenRequest(uri=uri, readonly=readonly, hook=relay))
    opened.append(driver)
    if pm.materialized:  # the driver called a hook while it opened: register it as usual
        _register_driver(pm.manager(), spec, driver)
        return pm, driver  # type: ignore[return-value]
    table = _direct_hooks([CoreDefaults(relay), driver])
    if table is None:
        pm.manager()  # built now, and pluggy checks the driver (or refuses it) here
    else:
        pm.direct = table
    return pm, driver  # type: ignore[return-value]


def _register_driver(pm: pluggy.PluginManager, spec: DriverSpec, driver: object) -> None:
    from virt._pm import PluginValidationError

    try:
        pm.register(driver, name=f"driver:{spec.scheme}")
        pm.check_pending()
    except PluginValidationError as exc:
        close = getattr(driver, "virt_connect_close", None)
        if callable(close):
            close()
        raise VirtError(ErrorNumber.INTERNAL_ERROR,
                        f"driver '{spec.scheme}' does not fit the hook specs: {exc}") from None


def close_connection(pm: pluggy.PluginManager) -> None:
    """Call ``virt_connect_close`` on a connection's plugins (without building a lazy
    manager that was never needed: its driver is then the only plugin)."""
    if isinstance(pm, _LazyConnectionManager) and not pm.materialized:
        close = pm.direct.get("virt_connect_close")
        if close is not None:
            close()
        return
    pm.hook.virt_connect_close()


def implemented_hooks(pm: pluggy.PluginManager) -> dict[str, Any]:
    """hook name -> callable(**kwargs), for every operation hook some plugin implements.

    A connection's plugins are fixed once it is open, so a hook with exactly one plain
    implementation (no wrapper, no tracing) is bound to that implementation directly:
    pluggy's multicall loop would only find the same answer more slowly.
    """
    if isinstance(pm, _LazyConnectionManager) and not pm.materialized:
        return pm.direct
    out: dict[str, Any] = {}
    direct = not os.environ.get("VIRT_TRACE")
    for name in _SPECS:
        caller = getattr(pm.hook, name, None)
        if caller is None:
            continue
        impls = caller.get_hookimpls()
        if not impls:
            continue
        if direct and len(impls) == 1 and not (impls[0].hookwrapper or impls[0].wrapper):
            out[name] = _bind(impls[0].function, tuple(impls[0].argnames), caller.spec.argnames)
        else:
            out[name] = caller
    return out


def _bind(fn: Callable[..., Any], argnames: tuple[str, ...], spec_argnames: tuple[str, ...]) -> Callable[..., Any]:
    if argnames == tuple(spec_argnames):
        return fn

    # The implementation takes fewer arguments than the spec (pluggy allows that).
    def call(**kwargs: Any) -> Any:
        return fn(*[kwargs[n] for n in argnames])

    return call
