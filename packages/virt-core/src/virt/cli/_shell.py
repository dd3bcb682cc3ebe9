"""The interactive shell: ``virt`` with no command, like virsh's."""

from __future__ import annotations

import sys

from virt.cli._framework import CommandError, Context, parse_line, run_commands

__all__ = ["interactive"]

BANNER = """Welcome to virt, the virtualization interactive terminal.

Type:  'help' for help with commands
       'quit' to quit

"""


def interactive(ctx: Context, tty: bool) -> int:
    if tty:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        ctx.out.write(BANNER)
    ok = True
    while True:
        try:
            line = input("virt # ") if tty else sys.stdin.readline()
        except EOFError:
            if tty:
                ctx.out.write("\n")
            break
        except KeyboardInterrupt:
            ctx.out.write("\n")
            continue
        if not tty and line == "":
            break
        try:
            commands = parse_line(line)
        except CommandError as exc:
            ctx.err.write(f"error: {exc}\n")
            ok = False
            continue
        if not commands:
            continue
        ok = run_commands(ctx, commands)
        if commands[-1][0] in ("quit", "exit"):
            break
    return 0 if ok else 1
