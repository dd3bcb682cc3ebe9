"""The documentation keeps up with the code: every hook, with its exact signature, is in
``docs/hooks.md``, and the generated reference is not stale.

When one of these fails, regenerate with ``python tools/gen_hook_docs.py`` (and say in the
hook spec's docstring what changed, with ``versionadded``/``versionchanged``).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
HOOKS_MD = DOCS / "hooks.md"
HOW_TO_FIX = "run `python tools/gen_hook_docs.py` to regenerate docs/hooks.md"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_hook_docs", REPO / "tools" / "gen_hook_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_hook_docs", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _spec_modules() -> list[ModuleType]:
    from virt.hookspecs import OPERATION_MODULES, registration

    return [registration, *OPERATION_MODULES]


def _hooks() -> dict[str, Any]:
    """Every hook pluggy knows from the spec modules: the names are what pluggy registers, not
    what the generator walks, so a spec the generator misses is caught here."""
    pm = pluggy.PluginManager("virt")
    for module in _spec_modules():
        pm.add_hookspecs(module)
    names = [name for name in dir(pm.hook) if name.startswith("virt_")]
    specs: dict[str, Any] = {}
    for module in _spec_modules():
        specs.update({n: getattr(module, n) for n in names if hasattr(module, n)})
    assert sorted(specs) == sorted(names)
    return specs


def _signature(fn: Any) -> str:
    """``name(args) -> result`` from :func:`inspect.signature`, with string annotations bare."""

    class Bare:
        def __init__(self, text: str) -> None:
            self.text = text

        def __repr__(self) -> str:
            return self.text

    def bare(annotation: Any) -> Any:
        return Bare(annotation) if isinstance(annotation, str) else annotation

    sig = inspect.signature(fn)
    sig = sig.replace(parameters=[p.replace(annotation=bare(p.annotation)) for p in sig.parameters.values()],
                      return_annotation=bare(sig.return_annotation))
    return f"{fn.__name__}{sig}"


@pytest.fixture(scope="module")
def hooks_md() -> str:
    assert HOOKS_MD.exists(), f"docs/hooks.md is missing: {HOW_TO_FIX}"
    return HOOKS_MD.read_text(encoding="utf-8")


def test_every_hook_is_documented(hooks_md: str) -> None:
    documented = set(re.findall(r"^### (virt_\w+)$", hooks_md, re.MULTILINE))
    missing = sorted(set(_hooks()) - documented)
    assert not missing, f"hooks missing from docs/hooks.md: {', '.join(missing)}; {HOW_TO_FIX}"


def test_no_documented_hook_is_gone(hooks_md: str) -> None:
    documented = set(re.findall(r"^### (virt_\w+)$", hooks_md, re.MULTILINE))
    gone = sorted(documented - set(_hooks()))
    assert not gone, f"docs/hooks.md documents hooks that no longer exist: {', '.join(gone)}; {HOW_TO_FIX}"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_hook_signature_is_documented_exactly(name: str, hooks_md: str) -> None:
    signature = _signature(_hooks()[name])
    assert f"\n{signature}\n" in hooks_md, (
        f"docs/hooks.md lacks the exact signature `{signature}`; {HOW_TO_FIX}"
    )


def test_libvirt_api_and_flags_are_documented(hooks_md: str) -> None:
    for name, fn in _hooks().items():
        api = getattr(fn, "virt_libvirt_api", None)
        section = hooks_md.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
        firstresult = "yes" if fn.virt_spec["firstresult"] else "no"
        assert f"firstresult: **{firstresult}**" in section, f"{name}: firstresult is stale; {HOW_TO_FIX}"
        if api is not None:
            assert f"`{api}`" in section, f"{name}: libvirt API {api} is not documented; {HOW_TO_FIX}"
            mutating = "yes" if fn.virt_mutating else "no"
            assert f"mutating: **{mutating}**" in section, f"{name}: mutating is stale; {HOW_TO_FIX}"


def test_hook_reference_is_not_stale(hooks_md: str) -> None:
    assert hooks_md == gen.render_hooks(), f"docs/hooks.md is stale (docstrings or flags changed); {HOW_TO_FIX}"


def test_every_hook_spec_is_documented_in_its_docstring() -> None:
    """pytest's rule for hook specs: a docstring that says what the hook is for."""
    undocumented = sorted(name for name, fn in _hooks().items() if not (fn.__doc__ or "").strip())
    assert not undocumented, f"hook specs without a docstring: {', '.join(undocumented)}"


def test_versionadded_on_every_hook() -> None:
    lacking = sorted(name for name, fn in _hooks().items() if ".. versionadded::" not in (fn.__doc__ or ""))
    assert not lacking, f"hook specs without `.. versionadded::`: {', '.join(lacking)}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_resolve(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = target.split("#", 1)[0]
        if not (DOCS / path).exists():
            broken.append(target)
    assert not broken, f"docs/{page} links to missing files: {', '.join(broken)}"


def test_cli_page_has_the_generated_command_section() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert gen.CLI_BEGIN in text and gen.CLI_END in text, (
        "docs/cli.md lost the generated command list markers; restore them and run "
        "`python tools/gen_hook_docs.py`"
    )
