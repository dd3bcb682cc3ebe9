"""``virt``: the command-line tool, virsh's commands and output on virt's drivers.

    virt [-c URI] [-r] [-q] [--json] [--rich|--plain] [COMMAND [ARGS...] [; COMMAND ...]]

With no command it reads commands interactively (or from stdin when it is not a terminal).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Command modules, imported when the CLI runs (each registers its commands).
_COMMAND_MODULES = ("host", "node", "domain", "snapshot", "network", "storage", "nodedev")


def _load_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"virt.cli.commands.{name}")


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


def main(argv: Sequence[str] | None = None) -> int:
    from virt.cli._framework import CommandError, Context, parse_argv, run_commands, stdout_is_tty

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.version:
        from virt import __version__

        print(__version__)
        return 0
    _load_commands()
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
