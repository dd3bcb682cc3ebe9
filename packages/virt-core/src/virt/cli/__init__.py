"""``virt``: the command-line tool, virsh's commands and output on virt's drivers.

    virt [-c URI] [-r] [-q] [--json] [--rich|--plain] [COMMAND [ARGS...] [; COMMAND ...]]

With no command it reads commands interactively (or from stdin when it is not a terminal).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

# The command modules register their commands when imported.  A run imports only the modules
# of the commands it runs (virt.cli._index says which); ``help`` imports them all.


def _parser() -> argparse.ArgumentParser:
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


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        _own_process()
    from virt.cli._framework import CommandError, Context, parse_argv, run_commands, stdout_is_tty

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
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
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - closing must not turn success into a traceback
            pass
