"""What the ``virt`` CLI imports and does when it starts (bench/README.md, "CLI cold start").

The CLI imports only the module of the command it runs, found in the generated table
``virt/cli/_index.py``; these tests keep that table in step with the registrations and check
that a plain ``list --all`` leaves the other command modules, and rich, alone.
"""

from __future__ import annotations

import gc
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_index", REPO / "tools" / "gen_cli_index.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_index_is_fresh() -> None:
    gen = _generator()
    assert gen.INDEX.read_text(encoding="utf-8") == gen.generated(), (
        "virt/cli/_index.py is stale: run python tools/gen_cli_index.py")


def test_every_indexed_command_is_found() -> None:
    from virt.cli._framework import find_command
    from virt.cli._index import MODULE_OF

    for name, module in MODULE_OF.items():
        cmd = find_command(name)
        assert cmd is not None, name
        assert cmd.handler.__module__ == f"virt.cli.commands.{module}"
    assert find_command("no-such-command") is None


def _modules_after(*argv: str) -> tuple[str, set[str]]:
    """Run the CLI in a fresh interpreter; its stdout and the modules it imported."""
    code = ("import sys, io, json\n"
            "from virt.cli import main\n"
            "out = io.StringIO(); real = sys.stdout; sys.stdout = out\n"
            f"rc = main({list(argv)!r})\n"
            "sys.stdout = real\n"
            "print(json.dumps([rc, out.getvalue(), sorted(sys.modules)]))\n")
    env = dict(os.environ, VIRT_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rc, out, modules = json.loads(proc.stdout.splitlines()[-1])
    assert rc == 0, proc.stderr
    return out, set(modules)


def test_list_imports_only_its_command_module() -> None:
    out, modules = _modules_after("-c", "test:///default", "list", "--all")
    assert " 1    test   running" in out
    assert "virt.cli.commands.domain" in modules
    for other in ("storage", "network", "snapshot", "host"):
        assert f"virt.cli.commands.{other}" not in modules
    assert not {m for m in modules if m == "rich" or m.startswith("rich.")}
    # no XML parsing (test:///default is made from a table) and no hook spec module
    assert "lxml" not in modules and "lxml.etree" not in modules
    assert not {m for m in modules if m.startswith("virt.hookspecs.") and m != "virt.hookspecs.registration"}


def test_list_makes_only_the_records_it_returns() -> None:
    """Each record class costs ~0.3 ms to make (attrs compiles its methods): a plain
    ``list --all`` makes DomainRef (the listing), no more (the default node's NodeInfo is made
    when first read), and the plugin module's registration classes are not attrs classes."""
    code = ("import io, sys\n"
            "from virt.cli import main\n"
            "real = sys.stdout; sys.stdout = io.StringIO(); main(['-c', 'test:///default', 'list', '--all'])\n"
            "sys.stdout = real\n"
            "import virt._records as R\n"
            "print(sorted(n for n in R._PENDING if n in vars(R)))\n")
    env = dict(os.environ, VIRT_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.strip() == "['DomainRef']"


def test_help_loads_every_command() -> None:
    from virt.cli._index import MODULE_OF

    out, _ = _modules_after("help")
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ")}
    from virt.cli._framework import COMMANDS, load_all_commands

    load_all_commands()
    assert listed == {key for key, cmd in COMMANDS.items() if key == cmd.name}
    assert set(MODULE_OF) == set(COMMANDS)


def test_main_with_argv_leaves_the_collector_alone() -> None:
    from virt.cli import main

    real = sys.stdout
    sys.stdout = io.StringIO()
    try:
        assert main(["-c", "test:///default", "list", "--all"]) == 0
    finally:
        sys.stdout = real
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_entry_point_cache_round_trip(tmp_path: Path) -> None:
    from virt import _plugins

    data = {"virt.drivers": [_plugins._EntryPoint("virt.drivers", "test", "virt.drivers.test", "virt-core 0.1")],
            "virt.plugins": [_plugins._EntryPoint("virt.plugins", "host", "virt_host:x.y", "virt-host 0.1")]}
    path = str(tmp_path / "virt" / "entry-points-x.txt")
    _plugins._write_cache(path, "stamp\twith tabs", data)
    assert _plugins._read_cache(path, "stamp\twith tabs") == data
    assert _plugins._read_cache(path, "another stamp") is None  # a new stamp means a new scan
    Path(path).write_text(Path(path).read_text()[:-1])  # truncated: not trusted
    assert _plugins._read_cache(path, "stamp\twith tabs") is None


def test_entry_point_cache_is_one_file_per_path(tmp_path: Path) -> None:
    """A changed stamp rewrites the configuration's file instead of adding one."""
    code = ("import sys; from virt import _plugins\n"
            "print(len(_plugins._entry_points('virt.drivers')) > 0)\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    env.pop("VIRT_NO_ENTRY_POINT_CACHE", None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for i in range(3):
        (cwd / f"f{i}").write_text("")  # the working directory ('' on sys.path) changes
        proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.stdout.strip() == "True", proc.stderr
    assert len(list((tmp_path / "virt").iterdir())) == 1


def test_own_process_prints_what_main_argv_prints() -> None:
    """The console-script path (collector paused, then frozen; the process ended by main()
    itself, after its exit handlers) changes nothing visible."""
    from virt.cli import main

    argv = ["--plain", "-c", "test:///default", "list --all; domstate test; nodeinfo; dominfo nosuch"]
    code = ("import atexit, gc, sys\n"
            "from virt.cli import main\n"
            f"sys.argv = ['virt', *{argv!r}]\n"
            "atexit.register(lambda: sys.stderr.write(f'\\nexit handler ran {gc.isenabled()}'))\n"
            "main()\n"
            "sys.stderr.write('main returned')\n")
    env = dict(os.environ, VIRT_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    err, _, tail = proc.stderr.rpartition("\n")
    out, errs = io.StringIO(), io.StringIO()
    real = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, errs
    try:
        expected_rc = main(argv)
    finally:
        sys.stdout, sys.stderr = real
    assert (proc.returncode, proc.stdout, err) == (expected_rc, out.getvalue(), errs.getvalue())
    assert tail == "exit handler ran True"  # handlers run; collecting again once the connection was open
