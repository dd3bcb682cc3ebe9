"""``virt``: the command-line tool, virsh's commands and output on virt's drivers.

    virt [-c URI] [-r] [-q] [--json] [--rich|--plain] [COMMAND [ARGS...] [; COMMAND ...]]

With no command it reads commands interactively (or from stdin when it is not a terminal).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import argparse

__all__ = ["main"]

# The command modules register their commands when imported.  A run imports only the modules
# of the commands it runs (virt.cli._index says which); ``help`` imports them all.


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="virt", add_help=False,
        description="Manage virtual machines, networks and storage (virsh's commands).",
    )
    parser.add_argument("-c", "--connect", metavar="URI", help="hypervisor connection URI")
    parser.add_argument("-r", "--readonly", action="store_true", help="connect read-only")
    parser.add_argument("-q", "--quiet", action="store_true", help="quiet mode")
    parser.add_argument("-h", "--help", action="store_true", help="this help")
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    parser.add_argument("--json", action="store_true", help="JSON output for listing and info commands")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--rich", dest="rich", action="store_true", default=None, help="rich tables")
    style.add_argument("--plain", dest="rich", action="store_false", help="virsh's plain output")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


_FLAGS = {"-r": "readonly", "--readonly": "readonly", "-q": "quiet", "--quiet": "quiet",
          "-h": "help", "--help": "help", "-v": "version", "--version": "version", "--json": "json"}


def _parse_simple(words: Sequence[str]) -> SimpleNamespace | None:
    """What :func:`_parser` makes of ``words`` when they hold only the plain forms of the
    global options (``-c URI``, ``--connect=URI``, ``-r``, ``--plain``, ...) before the
    command; None for anything else, which argparse then parses (and reports) itself.

    argparse costs a few milliseconds to import and set up (it imports shutil, gettext and
    locale), which is more than a whole ``virsh`` command spends before its first syscall.
    """
    args: dict[str, Any] = {"connect": None, "readonly": False, "quiet": False, "help": False,
                            "version": False, "json": False, "rich": None, "command": []}
    seen: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            args["command"] = list(words[i:])
            break
        if word in _FLAGS or word in ("--rich", "--plain"):
            if word in seen:
                return None
            seen.add(word)
            if word in _FLAGS:
                args[_FLAGS[word]] = True
            elif args["rich"] is not None:
                return None  # --rich with --plain: argparse's error
            else:
                args["rich"] = word == "--rich"
        elif word in ("-c", "--connect"):
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return None
            args["connect"] = words[i + 1]
            i += 1
        elif word.startswith("--connect=") and not word[10:].startswith("-"):
            args["connect"] = word[10:]
        else:
            return None
        i += 1
    return SimpleNamespace(**args)


def _own_process() -> None:
    """The collector settings of a CLI process of our own (the console script).

    Starting imports a few hundred modules and classes, and the cyclic collector would
    traverse them again and again while nothing they make is garbage: it is paused until the
    first connection is open or the first command has run (:meth:`Context.resume_gc`), and the
    survivors are frozen out of later collections.  At exit, the final collections would
    traverse them all once more only to free memory the kernel takes back anyway; freezing
    them first (the last atexit handler) skips that.  Callers of ``main(argv)`` in their own
    process (tests, embedders) keep their collector as it is.
    """
    import atexit
    import gc

    if gc.isenabled():
        gc.disable()
        from virt.cli import _framework

        _framework.gc_paused = True
    atexit.register(gc.freeze)


def _leave(rc: int) -> NoReturn:
    """The end of a CLI process of our own: flush, run the exit handlers, and leave without
    the interpreter's teardown of a few hundred modules (a few milliseconds of every run,
    for memory the kernel takes back anyway)."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            rc = rc or 1
    run = getattr(atexit, "_run_exitfuncs", None)
    if run is None:  # not CPython: let the interpreter end as usual
        sys.exit(rc)
    run()
    os._exit(rc)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``virt`` command.  Without ``argv`` (the console script) it reads ``sys.argv``
    and ends the process itself; with it, it returns the exit status."""
    if argv is None:
        _own_process()
        _leave(_main(None))
    return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    from virt.cli._framework import CommandError, Context, parse_argv, run_commands, stdout_is_tty

    words = list(sys.argv[1:] if argv is None else argv)
    args = _parse_simple(words) or _parser().parse_args(words)
    if args.version:
        from virt import __version__

        print(__version__)
        return 0
    rich_mode = args.rich if args.rich is not None else stdout_is_tty()
    ctx = Context(args.connect, args.readonly, sys.stdout, sys.stderr, quiet=args.quiet,
                  json_mode=args.json, rich_mode=bool(rich_mode))
    try:
        if args.help:
            from virt.cli.commands.host import print_help

            print_help(ctx, {})
            return 0
        if not args.command:
            from virt.cli._shell import interactive

            ctx.resume_gc()
            return interactive(ctx, tty=stdout_is_tty() and sys.stdin.isatty())
        try:
            commands = parse_argv(args.command)
        except CommandError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        ok = run_commands(ctx, commands)
        return 0 if ok else 1
    except BrokenPipeError:
        return 1
    finally:
        ctx.resume_gc()  # when no command got as far as running (the collector is paused)
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - closing must not turn success into a traceback
            pass
