"""The plugin machinery: finding drivers, what happens when none or two answer, switches in the
environment, and the rules every hook spec follows."""

from __future__ import annotations

import enum
import sys
import textwrap
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import virt
from virt import ErrorNumber, VirtError
from virt._plugins import LIBVIRT_API, MUTATING_HOOKS, PluginProblem, known_drivers, problems, register_plugin
from virt.hookspecs import OPERATION_MODULES, operation_specs, registration
from virt.plugin import DriverSpec, OpenRequest, hookimpl
from virt.testing import isolated_plugins


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from no loaded plugin and reads entry points afresh."""
    monkeypatch.setenv("VIRT_NO_ENTRY_POINT_CACHE", "1")
    for name in ("VIRT_DISABLE_PLUGIN_AUTOLOAD", "VIRT_TRACE"):
        monkeypatch.delenv(name, raising=False)
    with isolated_plugins():
        yield


class BareConnection:
    """A connection object that implements one hook and nothing else."""

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "BARE"


class DriverPlugin:
    """A registration plugin serving ``scheme`` with connections made by ``make``."""

    def __init__(self, scheme: str, make: Callable[[OpenRequest], object] = lambda request: BareConnection(),
                 description: str = "") -> None:
        self.spec = DriverSpec(scheme=scheme, open=make, description=description)

    @hookimpl
    def virt_register_drivers(self) -> list[DriverSpec]:
        return [self.spec]


def _distribution(site: Path, name: str, drivers: dict[str, str], source: str) -> None:
    """Install ``name`` into ``site`` as pip would: a dist-info with entry points and a module
    per driver (``{scheme}`` in ``source`` is replaced by each one's scheme)."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    entries = "".join(f"{scheme} = {module}\n" for scheme, module in drivers.items())
    (info / "entry_points.txt").write_text(f"[virt.drivers]\n{entries}")
    for scheme, module in drivers.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source).replace("{scheme}", scheme))


DRIVER_MODULE = """
    from virt.plugin import DriverSpec, hookimpl


    class Connection:
        @hookimpl
        def virt_connect_get_type(self):
            return "{scheme}".upper()


    @hookimpl
    def virt_register_drivers():
        return [DriverSpec(scheme="{scheme}", open=lambda request: Connection())]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A site directory on sys.path and a suffix that makes its module names unique."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, suffix
    for name in [m for m in sys.modules if m.endswith(suffix)]:
        del sys.modules[name]


# -- NO_SUPPORT ------------------------------------------------------------------------------


def test_hook_nobody_implements_is_no_support_naming_the_libvirt_function() -> None:
    register_plugin(DriverPlugin("bare"))
    with virt.open("bare:///") as conn:
        assert conn.type() == "BARE"
        assert not conn.supports("virt_node_get_memory_stats")
        with pytest.raises(VirtError) as info:
            conn.node_memory_stats()
    assert info.value.code == ErrorNumber.NO_SUPPORT
    assert info.value.message == "this function is not supported by the connection driver: virNodeGetMemoryStats"
    assert str(info.value) == info.value.message


_OPERATIONS = sorted(n for n, f in operation_specs().items() if getattr(f, "virt_spec", {}).get("firstresult"))


@pytest.mark.parametrize("hook", [h for h in _OPERATIONS if h != "virt_connect_get_type"])
def test_every_operation_hook_is_no_support_when_unimplemented(hook: str) -> None:
    api = LIBVIRT_API[hook]
    assert api.startswith("vir") and not api.startswith("virt_"), f"{hook} does not name its libvirt function"
    register_plugin(DriverPlugin("bare"))
    spec = operation_specs()[hook]
    code = spec.__code__  # type: ignore[attr-defined]
    with virt.open("bare:///") as conn, pytest.raises(VirtError) as info:
        conn._call(hook, **dict.fromkeys(code.co_varnames[: code.co_argcount]))
    assert info.value.code == ErrorNumber.NO_SUPPORT
    assert info.value.message == f"this function is not supported by the connection driver: {api}"


# -- read-only -------------------------------------------------------------------------------


class DefiningConnection(BareConnection):
    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> virt.DomainRef:
        return virt.DomainRef("d", str(uuid.UUID(int=1)))


def test_read_only_connection_refuses_mutating_hooks() -> None:
    register_plugin(DriverPlugin("ro", lambda request: DefiningConnection()))
    with virt.open("ro:///", readonly=True) as conn:
        assert conn.type() == "BARE"  # reading works
        with pytest.raises(VirtError) as info:
            conn.define_domain("<domain/>")
    assert info.value.code == ErrorNumber.OPERATION_DENIED
    assert "virDomainDefineXMLFlags" in info.value.message
    assert "virt_domain_define_xml" in MUTATING_HOOKS


def test_read_only_refusal_comes_before_no_support() -> None:
    register_plugin(DriverPlugin("bare"))
    with virt.open("bare:///", readonly=True) as conn, pytest.raises(VirtError) as info:
        conn.define_domain("<domain/>")
    assert info.value.code == ErrorNumber.OPERATION_DENIED


# -- finding drivers -------------------------------------------------------------------------


def test_unknown_scheme_is_no_connect() -> None:
    with pytest.raises(VirtError) as info:
        virt.open("nosuchdriver:///system")
    assert info.value.code == ErrorNumber.NO_CONNECT
    assert "virt-driver-nosuchdriver" in info.value.message, "the error says what to install"


def test_autoload_disabled_knows_only_the_test_driver_and_registered_plugins(
        site: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    path, suffix = site
    _distribution(path, "installed_driver", {"installed": f"installed_{suffix}"}, DRIVER_MODULE)
    monkeypatch.setenv("VIRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    register_plugin(DriverPlugin("byhand"))
    assert set(known_drivers()) == {"test", "byhand"}
    assert f"installed_{suffix}" not in sys.modules, "an entry point was imported with autoload off"
    with pytest.raises(VirtError) as info:
        virt.open("installed:///")
    assert info.value.code == ErrorNumber.NO_CONNECT
    with virt.open("byhand:///") as conn:
        assert conn.type() == "BARE"


def test_installed_driver_is_found_through_its_entry_point(site: tuple[Path, str]) -> None:
    path, suffix = site
    _distribution(path, "installed_driver", {"installed": f"installed_{suffix}"}, DRIVER_MODULE)
    with virt.open("installed:///") as conn:
        assert conn.type() == "INSTALLED"


def test_opening_a_uri_imports_only_the_driver_it_names(site: tuple[Path, str]) -> None:
    path, suffix = site
    _distribution(path, "two_drivers", {"first": f"first_{suffix}", "second": f"second_{suffix}"}, DRIVER_MODULE)
    with virt.open("first:///") as conn:
        assert conn.type() == "FIRST"
    assert f"first_{suffix}" in sys.modules
    assert f"second_{suffix}" not in sys.modules, "entry points are loaded lazily, by scheme"
    assert {"first", "second"} <= set(known_drivers())
    assert f"second_{suffix}" in sys.modules


def test_duplicate_scheme_is_reported() -> None:
    register_plugin(DriverPlugin("dup", description="one"), name="plugin-one")
    register_plugin(DriverPlugin("dup", description="two"), name="plugin-two")
    with pytest.warns(PluginProblem, match="'dup' is claimed twice"):
        drivers = known_drivers()
    assert drivers["dup"].description in ("one", "two")
    assert any("'dup' is claimed twice" in p for p in problems())


def test_duplicate_scheme_first_loaded_wins_and_both_are_named() -> None:
    register_plugin(DriverPlugin("dup", description="one"), name="plugin-one")
    register_plugin(DriverPlugin("dup", description="two"), name="plugin-two")
    with pytest.warns(PluginProblem) as record:
        drivers = known_drivers()
    assert drivers["dup"].description == "one", "virt_register_drivers: 'the first loaded wins'"
    message = str(record[0].message)
    assert "plugin-one" in message and "plugin-two" in message


def test_plugin_that_cannot_be_registered_is_reported() -> None:
    class Wrong:
        @hookimpl
        def virt_register_drivers(self, unexpected: int) -> list[DriverSpec]:
            return []

    with pytest.warns(PluginProblem, match="could not be registered"):
        register_plugin(Wrong(), name="wrong")
    assert "test" in known_drivers()


# -- check_pending and hook validation ------------------------------------------------------


class MisspeltConnection(BareConnection):
    @hookimpl
    def virt_domian_create(self, uuid: str, flags: int) -> None:
        """``domian``: implements no hook at all."""


def test_check_pending_catches_a_misspelt_hook() -> None:
    register_plugin(DriverPlugin("typo", lambda request: MisspeltConnection()))
    with pytest.raises(VirtError) as info:
        virt.open("typo:///")
    assert info.value.code == ErrorNumber.INTERNAL_ERROR
    assert "virt_domian_create" in info.value.message


class WrongArgumentConnection(BareConnection):
    @hookimpl
    def virt_domain_create(self, uid: str, flags: int) -> None:
        """``uid`` is not an argument of the spec."""


def test_hook_with_unknown_argument_is_a_virt_error() -> None:
    register_plugin(DriverPlugin("badargs", lambda request: WrongArgumentConnection()))
    with pytest.raises(VirtError) as info:
        virt.open("badargs:///")
    assert "uid" in info.value.message


def test_misspelt_registration_hook_is_reported() -> None:
    class Misspelt:
        @hookimpl
        def virt_register_driver(self) -> list[DriverSpec]:
            return [DriverSpec(scheme="never", open=lambda request: BareConnection())]

    with pytest.warns(PluginProblem, match="virt_register_driver"):
        register_plugin(Misspelt(), name="misspelt")
        known_drivers()


# -- VIRT_TRACE ------------------------------------------------------------------------------


def test_virt_trace_writes_hook_calls_to_stderr(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    register_plugin(DriverPlugin("bare"))
    monkeypatch.setenv("VIRT_TRACE", "1")
    with virt.open("bare:///") as conn:
        conn.type()
    err = capsys.readouterr().err
    assert "virt_connect_get_type" in err
    assert "BARE" in err, "the trace shows what the hook returned"


def test_no_trace_without_virt_trace(capsys: pytest.CaptureFixture[str]) -> None:
    register_plugin(DriverPlugin("bare"))
    with virt.open("bare:///") as conn:
        conn.type()
    assert "virt_connect_get_type" not in capsys.readouterr().err


# -- hook arguments are plain data ------------------------------------------------------------


@attrs.frozen
class _FrozenProbe:
    pass


_LEAVES = (str, int, float, bool, bytes, type(None))


def _plain(tp: Any, where: str, seen: set[type]) -> list[str]:
    """Why ``tp`` is not plain data (empty when it is)."""
    origin = typing.get_origin(tp)
    if tp in _LEAVES:
        return []
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return []
    if isinstance(tp, type) and attrs.has(tp):
        if tp.__setattr__ is not _FrozenProbe.__setattr__:
            return [f"{where}: {tp.__name__} is an attrs class but not frozen"]
        if tp in seen:
            return []
        seen.add(tp)
        attrs.resolve_types(tp)
        return [p for f in attrs.fields(tp) for p in _plain(f.type, f"{where} -> {tp.__name__}.{f.name}", seen)]
    if origin in (typing.Union, types.UnionType):
        return [p for arg in typing.get_args(tp) for p in _plain(arg, where, seen)]
    if origin in (tuple, list, dict):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if not args:
            return [f"{where}: bare {origin.__name__} without item types"]
        return [p for arg in args for p in _plain(arg, where, seen)]
    return [f"{where}: {tp!r} is not plain data"]


@pytest.mark.parametrize("hook", sorted(operation_specs()))
def test_hook_arguments_and_results_are_plain_data(hook: str) -> None:
    spec = operation_specs()[hook]
    hints = typing.get_type_hints(spec)
    code = spec.__code__  # type: ignore[attr-defined]
    params = code.co_varnames[: code.co_argcount]
    missing = [p for p in params if p not in hints]
    assert not missing, f"{hook}: parameters without a type annotation: {missing}"
    assert "return" in hints, f"{hook}: no return annotation"
    problems_found = [p for name, tp in hints.items() for p in _plain(tp, f"{hook}({name})", set())]
    assert not problems_found, "\n".join(problems_found)


def test_registration_hooks_take_no_arguments() -> None:
    for name, fn in vars(registration).items():
        if name.startswith("virt_") and callable(fn):
            assert fn.__code__.co_argcount == 0, f"{name} takes arguments"


def test_every_operation_module_is_on_connection_managers() -> None:
    names = {name for module in OPERATION_MODULES for name in vars(module) if name.startswith("virt_")}
    assert names == set(operation_specs())


def test_spec_table_is_fresh() -> None:
    """virt._spectable (what the core knows of the specs without importing them) is generated
    from virt.hookspecs: a spec added or changed there without regenerating fails here."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "tools" / "gen_spec_table.py"
    spec = importlib.util.spec_from_file_location("gen_spec_table", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.TABLE.read_text(encoding="utf-8") == gen.generated(), (
        "virt/_spectable.py is stale: run python tools/gen_spec_table.py")


def test_a_lone_driver_connection_never_imports_the_spec_modules() -> None:
    """Opening test:///default and calling its hooks binds them directly: the spec modules
    and pluggy (and their import cost) stay out of the process."""
    import subprocess

    code = ("import sys, virt\n"
            "with virt.open('test:///default') as c:\n"
            "    [d.info() for d in c.list_domains()]\n"
            "print(sorted(m for m in sys.modules if m.startswith('virt.hookspecs.')), 'pluggy' in sys.modules)\n")
    env = {"VIRT_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[] False"  # nor pluggy: the driver's methods are bound directly


def test_a_lone_drivers_hooks_are_bound_on_first_use() -> None:
    """Opening binds none of the driver's hundred-odd methods (that was most of the cost of an
    open); supports(), calls and the close hook see them all the same."""
    from virt._plugins import DirectHooks

    with virt.open("test:///default") as conn:
        table = conn._impl
        assert isinstance(table, DirectHooks)
        assert dict.__len__(table) == 0
        assert conn.supports("virt_domain_suspend") and not conn.supports("virt_no_such_hook")
        assert [d.name for d in conn.list_domains()] == ["test"]
        assert dict.__contains__(table, "virt_domain_list") and not dict.__contains__(table, "virt_domain_suspend")
        assert "virt_domain_list_info" in table.names()  # the core's defaults are there too


@pytest.mark.parametrize("options", [
    {}, {"tryfirst": True}, {"trylast": True}, {"optionalhook": True}, {"specname": "virt_domain_create"},
    {"wrapper": True}, {"hookwrapper": True},
])
def test_our_hookimpl_marks_as_pluggys_does(options: dict[str, Any]) -> None:
    """virt's hookimpl is pluggy-free (a CLI start never imports pluggy), so it must leave
    exactly the mark pluggy's HookimplMarker leaves."""
    import pluggy
    from virt._markers import HookimplMarker

    def one() -> None: ...

    def two() -> None: ...

    pluggy.HookimplMarker("virt")(**options)(one) if options else pluggy.HookimplMarker("virt")(one)
    HookimplMarker("virt")(**options)(two) if options else HookimplMarker("virt")(two)
    assert two.virt_impl == one.virt_impl  # type: ignore[attr-defined]


def test_registration_hooks_are_the_registration_specs() -> None:
    from virt._plugins import REGISTRATION_HOOKS

    specs = {name: fn for name, fn in vars(registration).items() if name.startswith("virt_")}
    assert set(REGISTRATION_HOOKS) == set(specs)
    assert all(fn.__code__.co_argcount == 0 for fn in specs.values())  # the registry calls them bare


def test_plugin_manager_is_built_with_every_registered_plugin() -> None:
    register_plugin(DriverPlugin("early"), name="early-plugin")
    pm = virt._plugins.plugin_manager()
    register_plugin(DriverPlugin("late"), name="late-plugin")
    assert pm.get_plugin("early-plugin") is not None and pm.get_plugin("late-plugin") is not None
    assert {"early", "late"} <= set(known_drivers())


def test_asking_whether_anyone_listens_builds_no_manager() -> None:
    """A driver asks virt.plugin.listening before each event; on a lone driver's connection
    nobody can listen until someone subscribes (which builds the manager)."""
    events: list[Any] = []
    with virt.open("test:///default") as conn:
        dom = conn.lookup_domain("test")
        dom.suspend()
        dom.resume()
        assert not conn._pm.materialized
        conn.subscribe(lambda _c, event: events.append(event))
        assert conn._pm.materialized
        dom.suspend()
        dom.resume()
    assert [e.event.name for e in events] == ["SUSPENDED", "RESUMED"]


LIST_INACTIVE = 2  # virConnectListAllDomains' VIR_CONNECT_LIST_DOMAINS_INACTIVE


class ListingConnection:
    """Answers virt_domain_list_info itself (as the remote driver does), except for inactive
    domains, which it leaves to the core's default (from virt_domain_list)."""

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "LISTING"

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[Any]:
        return []

    @hookimpl
    def virt_domain_list_info(self, flags: int) -> list[Any] | None:
        return None if flags & LIST_INACTIVE else ["mine"]


def test_a_driver_answering_a_core_default_hook_keeps_the_lazy_manager() -> None:
    """The driver and the core's defaults both implement an operation hook (firstresult): it
    is asked of the driver first, then of the default when the driver answers None, as pluggy
    would, without building pluggy's manager for it."""
    register_plugin(DriverPlugin("listing", lambda request: ListingConnection()))
    with virt.open("listing:///") as conn:
        assert conn._call("virt_domain_list_info", flags=0) == ["mine"]
        assert not conn._pm.materialized
        assert conn._call("virt_domain_list_info", flags=LIST_INACTIVE) == []  # the default's
    with virt.open("listing:///") as conn:  # and the same through pluggy, once built
        conn._pm.manager()
        assert conn._pm.hook.virt_domain_list_info(flags=0) == ["mine"]
        assert conn._pm.hook.virt_domain_list_info(flags=LIST_INACTIVE) == []


def test_an_ordered_overlap_is_left_to_pluggy() -> None:
    from virt._plugins import CoreDefaults, _direct_hooks

    class Last:
        @hookimpl(trylast=True)
        def virt_domain_list_info(self, flags: int) -> list[Any]:
            return ["last"]

    assert _direct_hooks([CoreDefaults(None), ListingConnection()]) is not None
    assert _direct_hooks([CoreDefaults(None), Last()]) is None
