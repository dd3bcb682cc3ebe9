"""``virt.flags``: libvirt's constants, generated from libvirt 9.0's API description.

The module is kept in step with ``libvirt-api.xml`` by ``tools/gen_flags.py`` and its values
are checked against libvirt-python's (``/usr/bin/python3 -c "import libvirt"``) when that is
installed.
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from virt import flags

REPO = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_flags", REPO / "tools" / "gen_flags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _classes() -> list[type[enum.Enum]]:
    return [v for v in vars(flags).values() if isinstance(v, type) and issubclass(v, enum.Enum)]


def _aliases() -> dict[str, int]:
    """The module-level libvirt names (without ``VIR_``) and their values."""
    return {k: v for k, v in vars(flags).items() if k.isupper() and isinstance(v, int)}


def test_module_is_fresh() -> None:
    gen = _generator()
    if not gen.API_XML.is_file():
        pytest.skip("requires the conformance corpus (../shared/conformance or $VIRT_CONFORMANCE_DIR)")
    assert gen.main(["--check"]) == 0, "virt/flags.py is stale: run python tools/gen_flags.py"


#: libvirt's constants as ``class.member`` -> value (libvirt-python's VIR_* of the same value)
SPOT_CHECKS = {
    "DomainModificationImpact.CURRENT": 0,
    "DomainModificationImpact.LIVE": 1,
    "DomainModificationImpact.CONFIG": 2,
    "DomainXMLFlags.SECURE": 1,
    "DomainXMLFlags.INACTIVE": 2,
    "ConnectListAllDomainsFlags.ACTIVE": 1,
    "ConnectListAllDomainsFlags.PERSISTENT": 4,
    "DomainState.SHUTOFF": 5,
    "DomainUndefineFlagsValues.NVRAM": 4,
    "DomainMigrateFlags.LIVE": 1,
    "DomainCoreDumpFlags.MEMORY_ONLY": 16,
    "StoragePoolState.INACCESSIBLE": 4,
    "ConnectListAllNodeDeviceFlags.ACTIVE": 1 << 31,
    "CPUCompareResult.ERROR": -1,
    "DomainBlockJobInfoFlags.BANDWIDTH_BYTES": 1,  # one member: the words naming the type go
    "DomainDefineFlags.VALIDATE": 1,
    "DomainVcpuFlags.LIVE": 1,  # VIR_DOMAIN_VCPU_LIVE = VIR_DOMAIN_AFFECT_LIVE
    "ConnectGetAllDomainStatsFlags.RUNNING": 16,  # = VIR_CONNECT_LIST_DOMAINS_RUNNING
    "NetworkUpdateCommand.ADD_LAST": 3,  # a command, not a sentinel
    "DomainMemoryStatTags.NR": 13,
}


@pytest.mark.parametrize(("name", "value"), SPOT_CHECKS.items())
def test_spot_checks(name: str, value: int) -> None:
    cls_name, member = name.split(".")
    assert int(getattr(getattr(flags, cls_name), member)) == value


def test_module_aliases() -> None:
    assert flags.DOMAIN_AFFECT_LIVE is flags.DomainModificationImpact.LIVE
    assert flags.CONNECT_LIST_DOMAINS_ACTIVE is flags.ConnectListAllDomainsFlags.ACTIVE
    assert flags.MIGRATE_LIVE is flags.DomainMigrateFlags.LIVE


def test_naming_rules() -> None:
    gen = _generator()

    def names(ctype: str, *cnames: str) -> list[str]:
        etype = gen.EnumType(ctype, tuple(gen.Member(c, i, False) for i, c in enumerate(cnames)))
        return list(gen.member_names(etype))

    assert names("virFooFlags", "VIR_FOO_A", "VIR_FOO_B_C") == ["A", "B_C"]
    # a name never starts with a digit, nor vanishes into the prefix
    assert names("virFooMode", "VIR_FOO_MODE_2D", "VIR_FOO_MODE_FLAT") == ["MODE_2D", "FLAT"]
    assert names("virFooMode", "VIR_FOO", "VIR_FOO_BAR") == ["FOO", "BAR"]
    # one member: the words that spell the type's name go
    assert names("virFooBarFlags", "VIR_FOO_BAR_BAZ_QUX") == ["BAZ_QUX"]
    assert names("virNWFilterDefineFlags", "VIR_NWFILTER_DEFINE_VALIDATE") == ["VALIDATE"]


def test_kinds_and_combinations() -> None:
    impact = flags.DomainModificationImpact
    assert issubclass(impact, enum.IntFlag)
    assert issubclass(flags.DomainState, enum.IntEnum) and not issubclass(flags.DomainState, enum.IntFlag)
    both = impact.LIVE | impact.CONFIG
    assert both == 3 and isinstance(both, impact) and isinstance(both, int)
    assert flags.DomainStatsTypes.STATE | flags.DomainStatsTypes.BALLOON == 5


def test_what_is_left_out() -> None:
    names = _aliases()
    assert not any(name.endswith("_LAST") and name != "NETWORK_UPDATE_COMMAND_ADD_LAST" for name in names)
    assert not any(name.startswith(("ERR_NO_", "FROM_")) for name in names)
    assert not hasattr(flags, "ErrorNumber") and not hasattr(flags, "ErrorDomain")


def test_every_member_has_its_libvirt_name() -> None:
    classes = _classes()
    assert len(classes) > 100
    aliases = _aliases()
    assert len(aliases) == sum(len(cls.__members__) for cls in classes)
    assert all(isinstance(v, enum.Enum) for v in aliases.values())


def test_domain_state_agrees_with_records() -> None:
    from virt._records import DomainState, PoolState, VolumeType

    for ours, theirs in ((flags.DomainState, DomainState), (flags.StoragePoolState, PoolState),
                         (flags.StorageVolType, VolumeType)):
        mine = {k: int(v) for k, v in ours.__members__.items()}
        assert {k: int(v) for k, v in theirs.__members__.items()}.items() <= mine.items()


def test_imports_only_enum() -> None:
    assert flags.__file__ is not None
    tree = ast.parse(Path(flags.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"enum"}
    assert not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))


def test_not_imported_by_import_virt() -> None:
    code = "import sys, virt; assert 'virt.flags' not in sys.modules; from virt import flags; print(flags.DOMAIN_NONE)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.strip() == "0"


_LIBVIRT_CONSTANTS = r"""
import json, libvirt
print(json.dumps({k[4:]: v for k, v in vars(libvirt).items()
                  if k.startswith("VIR_") and type(v) is int}))
"""


def test_values_match_libvirt_python() -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3")
    proc = subprocess.run([str(SYSTEM_PYTHON), "-c", _LIBVIRT_CONSTANTS], capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    if proc.returncode != 0:
        if "No module named 'libvirt'" in proc.stderr:
            pytest.skip("python3-libvirt is not installed")
        raise AssertionError(proc.stderr)
    theirs: dict[str, int] = json.loads(proc.stdout)
    ours = _aliases()
    common = sorted(set(ours) & set(theirs))
    assert len(common) >= 50, f"only {len(common)} names to compare"
    assert {k: int(ours[k]) for k in common} == {k: theirs[k] for k in common}
    # libvirt-python built for 9.0 knows every name generated from 9.0's API description
    missing = sorted(set(ours) - set(theirs))
    assert len(missing) <= len(ours) // 10, f"names libvirt-python lacks: {missing[:20]}"
