"""Generate the reference parts of ``docs/`` from the code, so they cannot drift from it.

* ``docs/hooks.md``: every hook spec of :mod:`virt.hookspecs`, area by area: its exact
  signature, whether it is firstresult, whether read-only connections refuse it, the libvirt
  function it stands for, and its docstring.
* ``docs/cli.md``: the list of ``virt`` commands between the ``BEGIN/END GENERATED`` markers,
  from :data:`virt.cli._framework.COMMANDS`.

Usage, from the repository root::

    python tools/gen_hook_docs.py           # rewrite the generated parts
    python tools/gen_hook_docs.py --check   # exit 1 when a generated part is stale

``tests/test_docs.py`` runs the same rendering and fails when ``docs/`` is out of date.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
HOOKS_MD = DOCS / "hooks.md"
CLI_MD = DOCS / "cli.md"
REGENERATE = "python tools/gen_hook_docs.py"

CLI_BEGIN = "<!-- BEGIN GENERATED: commands (tools/gen_hook_docs.py) -->"
CLI_END = "<!-- END GENERATED: commands -->"

# Area titles, in the order of the reference.
AREA_TITLES = {
    "registration": "Registration",
    "connection": "Connection",
    "node": "Node",
    "domain": "Domains",
    "snapshot": "Snapshots",
    "network": "Networks",
    "storage": "Storage",
    "events": "Events",
}


class _Source:
    """An annotation shown as written in the source.

    The hookspec modules use ``from __future__ import annotations``, so ``inspect.signature``
    holds strings and would print them quoted (``xml: 'str'``); this prints them bare.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _bare(annotation: Any) -> Any:
    return _Source(annotation) if isinstance(annotation, str) else annotation


def signature_text(fn: Callable[..., Any]) -> str:
    """``name(params) -> result`` as :func:`inspect.signature` renders it, annotations unquoted."""
    sig = inspect.signature(fn)
    params = [p.replace(annotation=_bare(p.annotation)) for p in sig.parameters.values()]
    sig = sig.replace(parameters=params, return_annotation=_bare(sig.return_annotation))
    return f"{fn.__name__}{sig}"


def hook_modules() -> list[tuple[str, ModuleType]]:
    """(area, module) for the registration hooks, then every operation module in order."""
    from virt.hookspecs import OPERATION_MODULES, registration

    modules = [registration, *OPERATION_MODULES]
    return [(m.__name__.rsplit(".", 1)[-1], m) for m in modules]


def hooks_of(module: ModuleType) -> list[Callable[..., Any]]:
    """The hook specs of ``module``, in source order."""
    return [fn for name, fn in vars(module).items()
            if name.startswith("virt_") and callable(fn) and hasattr(fn, "virt_spec")]


def all_hooks() -> Iterator[tuple[str, Callable[..., Any]]]:
    for area, module in hook_modules():
        for fn in hooks_of(module):
            yield area, fn


# -- docstrings: the reST subset the hookspecs use, as Markdown ----------------------------

_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|exc):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_FIELD = re.compile(r"^:(param|ivar|returns|raises)\s*([^:]*):\s*(.*)$")
_VERSION = re.compile(r"^\.\. (versionadded|versionchanged|deprecated):: (\S+)\s*(.*)$")


def _inline(text: str) -> str:
    def role(match: re.Match[str]) -> str:
        short, target = match.groups()
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"

    return _LITERAL.sub(r"`\1`", _ROLE.sub(role, text))


def docstring_markdown(doc: str | None) -> str:
    """Render a hookspec docstring: prose stays, ``:param:`` and friends become a list."""
    if not doc:
        return "*Undocumented.*"
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    for line in lines:
        field = _FIELD.match(line)
        version = _VERSION.match(line)
        if field:
            kind, name, text = field.groups()
            name = name.strip()
            label = {"param": f"`{name}`", "ivar": f"`{name}`", "returns": "returns",
                     "raises": f"raises `{name}`"}[kind]
            out.append(f"- **{label}**: {_inline(text)}")
        elif version:
            kind, ver, rest = version.groups()
            words = {"versionadded": "Added in", "versionchanged": "Changed in",
                     "deprecated": "Deprecated since"}[kind]
            out.append(f"*{words} version {ver}.*" + (f" {_inline(rest)}" if rest else ""))
        elif line.startswith((" ", "\t")) and out and out[-1].startswith("- **"):
            out[-1] += " " + _inline(line.strip())  # continuation of a field
        else:
            if out and out[-1].startswith("- **") and line.strip():
                out.append("")  # prose after a field list starts a new paragraph
            out.append(_inline(line))
    return "\n".join(out).strip()


# -- docs/hooks.md ---------------------------------------------------------------------------


def _flags(fn: Callable[..., Any]) -> tuple[str, str, str]:
    spec = getattr(fn, "virt_spec", {}) or {}
    firstresult = "yes" if spec.get("firstresult") else "no"
    api = getattr(fn, "virt_libvirt_api", None)
    mutating = "yes" if getattr(fn, "virt_mutating", False) else "no"
    return firstresult, mutating if api else "—", f"`{api}`" if api else "—"


def render_hooks() -> str:
    """The whole text of ``docs/hooks.md``."""
    areas = hook_modules()
    out = [
        f"<!-- Generated by tools/gen_hook_docs.py from virt.hookspecs; edit the hook specs, "
        f"then run `{REGENERATE}`. -->",
        "",
        "# Hook reference",
        "",
        "Every hook of the driver contract, generated from the hook specifications in",
        "`virt.hookspecs`. *Registration* hooks run once per process on the process-wide plugin",
        "manager and say what a plugin offers; every other area holds *operation* hooks, added to",
        "each connection's own plugin manager: a driver's connection object implements them",
        "(see [writing a driver](writing-a-driver.md)).",
        "",
        "For each hook:",
        "",
        "- **signature**: exactly as `inspect.signature` renders it (the spec modules use postponed",
        "  annotations, shown here unquoted). Drivers implement hooks with the same parameter",
        "  names; pluggy passes arguments by keyword, and an implementation may accept fewer",
        "  parameters than the spec (new ones are only ever added).",
        "- **firstresult**: the first implementation that returns something other than `None`",
        "  answers, and the rest are not called. Every operation hook is firstresult; the",
        "  registration, close and event hooks are not (every plugin is called).",
        "- **mutating**: read-only connections refuse the hook with `OPERATION_DENIED`.",
        "- **libvirt API**: the libvirt function the hook stands for; a connection where no plugin",
        "  implements the hook raises `VirtError(NO_SUPPORT)` naming it, as libvirt does:",
        "  *this function is not supported by the connection driver: virDomainCreateWithFlags*.",
        "",
        "| area | module | hooks |",
        "| --- | --- | --- |",
    ]
    for area, module in areas:
        title = AREA_TITLES.get(area, area.title())
        out.append(f"| [{title}](#{_anchor(title)}) | `{module.__name__}` | {len(hooks_of(module))} |")
    for area, module in areas:
        title = AREA_TITLES.get(area, area.title())
        out += ["", f"## {title}", "", f"Module `{module.__name__}`.", ""]
        out.append(docstring_markdown(module.__doc__))
        aliases = type_aliases(module)
        if aliases:
            out += ["", "Type aliases used below: " + "; ".join(f"`{n} = {v}`" for n, v in aliases) + "."]
        out += ["", "| hook | firstresult | mutating | libvirt API |", "| --- | --- | --- | --- |"]
        for fn in hooks_of(module):
            firstresult, mutating, api = _flags(fn)
            out.append(f"| [`{fn.__name__}`](#{fn.__name__}) | {firstresult} | {mutating} | {api} |")
        for fn in hooks_of(module):
            firstresult, mutating, api = _flags(fn)
            out += [
                "",
                f"### {fn.__name__}",
                "",
                "```python",
                signature_text(fn),
                "```",
                "",
                f"firstresult: **{firstresult}** · mutating: **{mutating}** · libvirt API: {api}",
                "",
                docstring_markdown(fn.__doc__),
            ]
    return "\n".join(out).rstrip() + "\n"


def type_aliases(module: ModuleType) -> list[tuple[str, str]]:
    """Module-level aliases such as ``ParamValue = int | float | str | bool``."""
    return [(name, repr(value)) for name, value in vars(module).items()
            if not name.startswith("_") and isinstance(value, types.UnionType)]


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


# -- docs/cli.md -----------------------------------------------------------------------------


def render_commands() -> str:
    """The generated section of ``docs/cli.md``: every command by group (markers included)."""
    from virt.cli._framework import load_all_commands

    groups: dict[str, list[Any]] = {}
    for key, cmd in load_all_commands().items():
        if key == cmd.name:
            groups.setdefault(cmd.group, []).append(cmd)
    out = [CLI_BEGIN, ""]
    if not groups:
        out.append("*No commands are registered yet.*")
    for group in sorted(groups):
        out += [f"### {group}", "", "| command | options | description |", "| --- | --- | --- |"]
        for cmd in sorted(groups[group], key=lambda c: c.name):
            name = f"`{cmd.name}`" + "".join(f" (`{a}`)" for a in cmd.aliases)
            opts = " ".join(_option_text(o) for o in cmd.opts) or "—"
            out.append(f"| {name} | {opts} | {cmd.help.replace('|', '/')} |")
        out.append("")
    out.append(CLI_END)
    return "\n".join(out)


def _option_text(opt: Any) -> str:
    value = "" if opt.kind == "bool" else f" <{opt.kind}>"
    text = f"--{opt.name}{value}"
    if opt.positional:
        text = f"[--{opt.name}]{value}"
    if not opt.required:
        text = f"[{text}]"
    return f"`{text}`"


def splice_commands(text: str, section: str) -> str:
    """``text`` with the generated section between the markers replaced by ``section``."""
    start = text.find(CLI_BEGIN)
    end = text.find(CLI_END)
    if start < 0 or end < start:
        raise ValueError(f"{CLI_MD} lacks the markers {CLI_BEGIN!r} ... {CLI_END!r}")
    return text[:start] + section + text[end + len(CLI_END):]


# -- main ------------------------------------------------------------------------------------


def generated() -> dict[Path, str]:
    """Each generated file and the text it should have."""
    files = {HOOKS_MD: render_hooks()}
    if CLI_MD.exists():
        files[CLI_MD] = splice_commands(CLI_MD.read_text(encoding="utf-8"), render_commands())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(REPO)) for p in stale)
        print(f"stale: {names}; run `{REGENERATE}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
