"""The door is really open: a driver installed as its own distribution works with no change to
the core, and a broken third-party plugin is reported and skipped without breaking the others.

``virt-example-driver`` (``tests/example-driver``) is installed by the nox ``tests`` session;
in a development venv: ``pip install -e tests/example-driver``.
"""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import virt
from virt import ErrorNumber, VirtError
from virt._plugins import PluginProblem, known_drivers, problems
from virt.testing import DriverConformance, isolated_plugins


def _example_installed() -> bool:
    return bool(importlib.metadata.entry_points(group="virt.drivers", name="example"))


needs_example = pytest.mark.skipif(
    not _example_installed(),
    reason="virt-example-driver is not installed (pip install tests/example-driver; nox -s tests does)",
)


@needs_example
class TestExampleDriver(DriverConformance):
    @pytest.fixture
    def uri(self) -> str:
        return "example:///"

    def test_found_through_its_entry_point(self) -> None:
        with isolated_plugins(), virt.open("example:///") as conn:
            assert conn.type() == "EXAMPLE"
            assert type(conn.driver).__module__.startswith("virt_example")
            assert "example" in known_drivers()

    def test_separate_paths_are_separate_nodes(self, domain: virt.Domain) -> None:
        with virt.open(f"example:///other-{uuid.uuid4().hex}") as other:
            assert other.list_domains() == []


# -- third-party plugins that fail ------------------------------------------------------------


def _distribution(site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Install a distribution the way pip leaves it: a dist-info directory and its modules."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = ["[virt.drivers]"] + [f"{scheme} = {target}" for scheme, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_DRIVER = """
    from virt.plugin import DriverSpec, hookimpl


    class Connection:
        @hookimpl
        def virt_connect_get_type(self):
            return "GOOD"


    @hookimpl
    def virt_register_drivers():
        return [DriverSpec(scheme="{scheme}", open=lambda request: Connection())]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A fresh site directory on ``sys.path``, a unique suffix for its module names, and a
    plugin state of its own."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("VIRT_NO_ENTRY_POINT_CACHE", "1")
    monkeypatch.delenv("VIRT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    with isolated_plugins():
        yield tmp_path, suffix
    for name in [m for m in sys.modules if m.endswith(suffix)]:
        del sys.modules[name]


def test_plugin_that_fails_to_import_is_reported_and_skipped(site: tuple[Path, str]) -> None:
    path, suffix = site
    _distribution(path, "broken-virt-driver", {"broken": f"broken_{suffix}"},
                  {f"broken_{suffix}": "raise RuntimeError('this plugin is broken')\n"})
    _distribution(path, "good-virt-driver", {"good": f"good_{suffix}"},
                  {f"good_{suffix}": GOOD_DRIVER.replace("{scheme}", "good")})

    with pytest.warns(PluginProblem, match=r"broken.*RuntimeError: this plugin is broken"):
        drivers = known_drivers()
    assert "broken" not in drivers
    assert {"good", "test"} <= set(drivers)
    assert any("broken-virt-driver" in p and "this plugin is broken" in p for p in problems()), problems()

    with virt.open("good:///") as conn:
        assert conn.type() == "GOOD"
    with pytest.warns(PluginProblem, match="broken"), pytest.raises(VirtError) as info:
        virt.open("broken:///")
    assert info.value.code == ErrorNumber.NO_CONNECT


def test_opening_the_broken_scheme_alone_warns_and_is_no_connect(site: tuple[Path, str]) -> None:
    path, suffix = site
    _distribution(path, "broken-virt-driver", {"broken": f"broken_{suffix}"},
                  {f"broken_{suffix}": "import no_such_module_anywhere\n"})
    with pytest.warns(PluginProblem, match="ModuleNotFoundError"), pytest.raises(VirtError) as info:
        virt.open("broken:///")
    assert info.value.code == ErrorNumber.NO_CONNECT


def test_plugin_whose_registration_raises_is_skipped(site: tuple[Path, str]) -> None:
    path, suffix = site
    failing = """
        from virt.plugin import hookimpl


        @hookimpl
        def virt_register_drivers():
            raise ValueError("cannot register")
    """
    _distribution(path, "failing-virt-driver", {"failing": f"failing_{suffix}"}, {f"failing_{suffix}": failing})
    _distribution(path, "good-virt-driver", {"good": f"good_{suffix}"},
                  {f"good_{suffix}": GOOD_DRIVER.replace("{scheme}", "good")})
    with pytest.warns(PluginProblem, match="cannot register"):
        drivers = known_drivers()
    assert "good" in drivers and "failing" not in drivers


@needs_example
def test_example_driver_still_works_next_to_a_broken_plugin(site: tuple[Path, str]) -> None:
    path, suffix = site
    _distribution(path, "broken-virt-driver", {"broken": f"broken_{suffix}"},
                  {f"broken_{suffix}": "raise ImportError('half installed')\n"})
    with pytest.warns(PluginProblem, match="half installed"):
        known_drivers()
    with virt.open("example:///") as conn:
        assert conn.type() == "EXAMPLE"
