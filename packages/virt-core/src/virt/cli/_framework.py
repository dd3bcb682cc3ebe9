"""The ``virt`` command framework: virsh's command syntax, option rules and output shapes.

A command is a function registered with :func:`command`; its options are declared like
virsh's (``--name value``, ``--name=value``, positional values filling required/data options
in order, ``--flag`` booleans).  Several commands run in one invocation separated by ``;``.
After each command a blank line is printed unless ``--quiet``, as virsh does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from virt._errors import VirtError

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "Context",
    "Opt",
    "command",
    "find_command",
    "load_all_commands",
    "parse_argv",
    "parse_line",
    "run_commands",
    "table_lines",
]

# Opt and Command are plain slotted classes, not attrs classes: creating an attrs class means
# compiling its generated methods, and these two are created on every start of the CLI.


class Opt:
    """One option of a command.

    :ivar kind: ``"bool"`` (a flag), ``"string"``, ``"int"``, or ``"argv"`` (every remaining
        positional word).
    :ivar positional: may be given without its ``--name`` (virsh's data/required options).
    :ivar required: the command fails with virsh's message when it is absent.
    """

    __slots__ = ("aliases", "help", "kind", "name", "positional", "required")

    name: str
    kind: str
    help: str
    required: bool
    positional: bool
    aliases: tuple[str, ...]

    def __init__(self, name: str, kind: str = "string", help: str = "", required: bool = False,
                 positional: bool = False, aliases: tuple[str, ...] = ()) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "kind", kind)
        set_(self, "help", help)
        set_(self, "required", required)
        set_(self, "positional", positional)
        set_(self, "aliases", aliases)

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.kind, self.help, self.required, self.positional, self.aliases)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Opt is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Opt(name={self.name!r}, kind={self.kind!r}, help={self.help!r}, required={self.required!r}, "
                f"positional={self.positional!r}, aliases={self.aliases!r})")


class Command:
    """A registered command: its handler, options and help (see :func:`command`)."""

    __slots__ = ("aliases", "group", "handler", "help", "json", "name", "needs_connection", "opts")

    name: str
    handler: Callable[[Context, dict[str, Any]], None]
    opts: tuple[Opt, ...]
    help: str
    group: str
    aliases: tuple[str, ...]
    needs_connection: bool
    json: bool  # accepts --json

    def __init__(self, name: str, handler: Callable[[Context, dict[str, Any]], None], opts: tuple[Opt, ...],
                 help: str, group: str, aliases: tuple[str, ...] = (), needs_connection: bool = True,
                 json: bool = False) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "handler", handler)
        set_(self, "opts", opts)
        set_(self, "help", help)
        set_(self, "group", group)
        set_(self, "aliases", aliases)
        set_(self, "needs_connection", needs_connection)
        set_(self, "json", json)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Command is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        return f"Command(name={self.name!r}, group={self.group!r}, opts={len(self.opts)})"


#: every command registered so far, by name and alias.  The CLI imports a command's module
#: only when it runs it (see :func:`find_command`); :func:`load_all_commands` imports them all.
COMMANDS: dict[str, Command] = {}
_JSON_OPT = Opt("json", "bool", "print machine-readable JSON")


Handler = Callable[["Context", dict[str, Any]], None]


def command(name: str, *opts: Opt, help: str = "", group: str = "Host and Hypervisor",
            aliases: tuple[str, ...] = (), needs_connection: bool = True,
            json: bool = False) -> Callable[[Handler], Handler]:
    """Register a command.  ``json=True`` adds ``--json`` (listing and info commands)."""

    def register(fn: Handler) -> Handler:
        all_opts = opts + ((_JSON_OPT,) if json else ())
        cmd = Command(name, fn, all_opts, help or (fn.__doc__ or "").strip().split("\n")[0], group,
                      aliases, needs_connection, json)
        COMMANDS[name] = cmd
        for alias in aliases:
            COMMANDS[alias] = cmd
        return fn

    return register


def find_command(name: str) -> Command | None:
    """The command called ``name`` (or aliased so), importing the one module that registers it."""
    cmd = COMMANDS.get(name)
    if cmd is None:
        from virt.cli._index import MODULE_OF

        module = MODULE_OF.get(name)
        if module is not None:
            import importlib

            importlib.import_module(f"virt.cli.commands.{module}")
            cmd = COMMANDS.get(name)
    return cmd


def load_all_commands() -> dict[str, Command]:
    """Import every command module (for ``help`` and the generated docs); returns COMMANDS."""
    import importlib

    from virt.cli._index import COMMAND_MODULES

    for module in COMMAND_MODULES:
        importlib.import_module(f"virt.cli.commands.{module}")
    return COMMANDS


#: whether :func:`virt.cli._own_process` paused the cyclic collector for the start.
gc_paused = False


class CommandError(Exception):
    """A command failed: virsh prints ``error: <message>`` and then, when there is one, the
    libvirt error behind it (``error: <cause.message>``)."""

    def __init__(self, message: str | None, cause: VirtError | None = None) -> None:
        super().__init__(message or (cause.message if cause else ""))
        self.text = message
        self.cause = cause


class Context:
    """What a command sees: the connection (opened on first use), output streams and modes."""

    def __init__(self, uri: str | None, readonly: bool, out: TextIO, err: TextIO,
                 quiet: bool = False, json_mode: bool = False, rich_mode: bool = False) -> None:
        self.uri = uri
        self.readonly = readonly
        self.out = out
        self.err = err
        self.quiet = quiet
        self.json_mode = json_mode
        self.rich_mode = rich_mode
        self._conn: Any = None
        self.want_json = False  # set per command from --json or the global flag

    @property
    def conn(self) -> Any:
        if self._conn is None:
            import virt

            try:
                self._conn = virt.open(self.uri, readonly=self.readonly)
            except VirtError as exc:
                raise CommandError("failed to connect to the hypervisor", exc) from None
            finally:
                self.resume_gc()
        return self._conn

    @staticmethod
    def resume_gc() -> None:
        """End the start: freeze what it made out of the collector's way, and collect again
        (see :func:`virt.cli._own_process`)."""
        global gc_paused
        if gc_paused:
            import gc

            gc_paused = False
            gc.freeze()
            gc.enable()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reconnect(self, uri: str | None, readonly: bool) -> None:
        self.close()
        self.uri = uri
        self.readonly = readonly

    # -- output ---------------------------------------------------------------------------

    def print(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)

    def extra(self, text: str) -> None:
        """virsh's ``vshPrintExtra``: informational text that ``--quiet`` hides."""
        if not self.quiet:
            self.out.write(text)

    def emit_json(self, data: Any) -> None:
        import json

        self.out.write(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]],
              records: list[dict[str, Any]] | None = None) -> None:
        """A listing: virsh's table, JSON (``records`` or rows keyed by header), or rich."""
        rows = [list(r) for r in rows]
        if self.want_json:
            if records is None:
                records = [dict(zip(headers, r, strict=False)) for r in rows]
            self.emit_json(records)
        elif self.rich_mode:
            _rich_table(self, headers, rows)
        else:
            for line in table_lines(headers, rows):
                self.out.write(line + "\n")

    def fields(self, pairs: Sequence[tuple[str, Any]], width: int = 15, record: dict[str, Any] | None = None) -> None:
        """An info block: ``Label:   value`` lines padded like virsh's, or JSON."""
        if self.want_json:
            self.emit_json(record if record is not None else {k: v for k, v in pairs})
            return
        for label, value in pairs:
            self.out.write(f"{label + ':':<{width}} {value}\n")


def _json_default(obj: Any) -> Any:
    import attrs  # the records are attrs classes, so it is already imported when one is here

    if attrs.has(type(obj)):
        return attrs.asdict(obj)
    if hasattr(obj, "name") and hasattr(obj, "value"):
        return obj.name.lower()
    return str(obj)


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """virsh's ``vshTable``: one leading space, three between columns, the last unpadded;
    the rule is two longer than a fully padded line."""
    widths = [_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = "" if i == len(cells) - 1 else " " * (widths[i] - _width(cell))
            parts.append(cell + pad)
        return " " + "   ".join(parts)

    rule = "-" * (1 + sum(widths) + 3 * (len(widths) - 1) + 2)
    return [line(headers), rule] + [line(r) for r in rows]


def _rich_table(ctx: Context, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, header_style="bold")
    for row in rows:
        table.add_row(*row)
    Console(file=ctx.out).print(table)


# -- parsing ------------------------------------------------------------------------------


def parse_line(text: str) -> list[list[str]]:
    """Split a command string into commands (``;`` or newline separated) of words."""
    import shlex

    lexer = shlex.shlex(text, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token == ";" or set(token) == {";"}:
                commands.append([])
            else:
                commands[-1].append(token)
    except ValueError as exc:
        raise CommandError(f"command line parse error: {exc}") from None
    return [c for c in commands if c]


def parse_argv(words: Sequence[str]) -> list[list[str]]:
    """Commands from argv: a lone ``;`` word separates them; a single word is a command line."""
    if len(words) == 1:
        return parse_line(words[0])
    commands: list[list[str]] = [[]]
    for word in words:
        if word == ";":
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def bind(cmd: Command, words: Sequence[str]) -> dict[str, Any]:
    """Match words to ``cmd``'s options with virsh's rules and messages."""
    values: dict[str, Any] = {}
    by_name: dict[str, Opt] = {}
    for opt in cmd.opts:
        by_name[opt.name] = opt
        for alias in opt.aliases:
            by_name[alias] = opt
    positional = [o for o in cmd.opts if o.positional]
    argv_slot: Opt | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and len(word) > 2:
            name, eq, inline = word[2:].partition("=")
            found = by_name.get(name)
            if found is None:
                raise CommandError(f"command '{cmd.name}' doesn't support option --{name}")
            opt = found
            if opt.name in values and opt.kind != "argv":  # an argv option collects every use
                raise CommandError(f"option --{opt.name} already seen")
            if opt.kind == "bool":
                if eq:
                    raise CommandError(f"invalid '=' after option --{name}")
                values[opt.name] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(words):
                        raise CommandError(f"expected syntax: --{name} <{opt.kind}>")
                    inline = words[i]
                if opt.kind == "argv":
                    values.setdefault(opt.name, []).append(inline)
                    if opt.positional:
                        argv_slot = opt  # data words join it from now on
                else:
                    values[opt.name] = _convert(cmd, opt, inline)
        elif argv_slot is not None:
            values[argv_slot.name].append(word)
        else:
            slot = next((o for o in positional if o.name not in values), None)
            if slot is None:
                raise CommandError(f"unexpected data '{word}'")
            if slot.kind == "argv":
                # virsh: every data word joins the list, and options may still follow
                values[slot.name] = [word]
                argv_slot = slot
            else:
                values[slot.name] = _convert(cmd, slot, word)
        i += 1
    for opt in cmd.opts:
        if opt.required and opt.name not in values:
            raise CommandError(f"command '{cmd.name}' requires <{opt.name}> option")
        if opt.kind == "bool":
            values.setdefault(opt.name, False)
        else:
            values.setdefault(opt.name, None)
    return values


def _convert(cmd: Command, opt: Opt, value: str) -> Any:
    """An option's value.  A malformed number is reported when the command runs, not while
    the line is parsed (virsh reads numbers in the command itself): it stands in the options
    as the CommandError that :func:`run_one` raises."""
    if opt.kind == "int":
        try:
            return int(value, 10)
        except ValueError:
            return CommandError(f"Numeric value '{value}' for <{opt.name}> option is malformed or out of range")
    return value


def run_commands(ctx: Context, commands: Sequence[Sequence[str]]) -> bool:
    """Run commands in order as virsh does; returns whether the last one succeeded.

    As virsh parses a whole command line before it runs any of it, an unknown command or a
    bad option stops everything, and nothing runs (nor is the blank line after a command
    printed)."""
    ok = True
    resolved = []
    for words in commands:
        cmd = find_command(words[0])
        if cmd is None:
            ctx.err.write(f"error: unknown command: '{words[0]}'\n")
            return False
        try:
            opts = bind(cmd, words[1:])
        except CommandError as exc:
            report(ctx, exc)
            return False
        resolved.append((cmd, opts))
    for cmd, opts in resolved:
        ok = run_one(ctx, cmd, opts)
        ctx.resume_gc()
        if cmd.name in ("quit", "exit"):
            break
        ctx.extra("\n")
    return ok


def report(ctx: Context, exc: CommandError) -> None:
    """A failed command's ``error:`` lines, as virsh prints them."""
    if exc.text:
        ctx.err.write(f"error: {exc.text}\n")
    if exc.cause is not None:
        ctx.err.write(f"error: {exc.cause.message}\n")


def run_one(ctx: Context, cmd: Command, opts: dict[str, Any]) -> bool:
    try:
        ctx.want_json = bool(opts.get("json")) or (ctx.json_mode and cmd.json)
        for value in opts.values():
            if type(value) is CommandError:
                raise value
        cmd.handler(ctx, opts)
        return True
    except CommandError as exc:
        report(ctx, exc)
        return False
    except VirtError as exc:
        ctx.err.write(f"error: {exc.message}\n")
        return False
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        ctx.err.write("error: interrupted\n")
        return False
    finally:
        ctx.want_json = False


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
