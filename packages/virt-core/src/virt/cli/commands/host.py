"""Connection and help commands: ``uri``, ``hostname``, ``version``, ``connect``, ``help``,
``quit``, ``drivers``."""

from __future__ import annotations

from typing import Any

from virt.cli._framework import CommandError, Context, Opt, command, find_command, load_all_commands


@command("uri", help="print the hypervisor canonical URI")
def cmd_uri(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(ctx.conn.uri)


@command("hostname", help="print the hypervisor hostname")
def cmd_hostname(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.print(ctx.conn.hostname())


@command("version", Opt("daemon", "bool", "report daemon version too"), help="show version")
def cmd_version(ctx: Context, opts: dict[str, Any]) -> None:
    from virt import LIBVIRT_COMPAT_VERSION

    conn = ctx.conn
    lib = _version_text(LIBVIRT_COMPAT_VERSION)
    ctx.print(f"Compiled against library: libvirt {lib}")
    ctx.print(f"Using library: libvirt {lib}")
    hv_type = conn.type()
    ctx.print(f"Using API: {hv_type} {lib}")
    ctx.print(f"Running hypervisor: {hv_type} {_version_text(conn.version())}")


def _version_text(number: int) -> str:
    return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"


@command("connect", Opt("name", positional=True, help="hypervisor connection URI"),
         Opt("readonly", "bool", "read-only connection"), needs_connection=False,
         help="(re)connect to hypervisor")
def cmd_connect(ctx: Context, opts: dict[str, Any]) -> None:
    ctx.reconnect(opts["name"] or ctx.uri, bool(opts["readonly"]))
    _ = ctx.conn


@command("quit", needs_connection=False, help="quit this interactive terminal", aliases=("exit",))
def cmd_quit(ctx: Context, opts: dict[str, Any]) -> None:
    pass


@command("drivers", needs_connection=False, json=True, group="virt",
         help="list installed drivers and plugin problems")
def cmd_drivers(ctx: Context, opts: dict[str, Any]) -> None:
    from virt import _plugins

    drivers = _plugins.known_drivers()
    rows = [[scheme, spec.description] for scheme, spec in sorted(drivers.items())]
    ctx.table(["Scheme", "Description"], rows)
    for problem in _plugins.problems():
        ctx.err.write(f"warning: {problem}\n")


@command("help", Opt("command", positional=True, help="command name"), needs_connection=False,
         help="print help")
def print_help(ctx: Context, opts: dict[str, Any] | None) -> None:
    name = (opts or {}).get("command")
    if name:
        cmd = find_command(name)
        if cmd is None:
            raise CommandError(f"command or command group '{name}' doesn't exist")
        ctx.print("  NAME")
        ctx.print(f"    {cmd.name} - {cmd.help}")
        if cmd.opts:
            ctx.print("")
            ctx.print("  OPTIONS")
            for opt in cmd.opts:
                arg = "" if opt.kind == "bool" else f" <{opt.kind}>"
                label = f"[--{opt.name}]{arg}" if opt.positional else f"--{opt.name}{arg}"
                ctx.print(f"    {label:<24} {opt.help}")
        return
    groups: dict[str, list[str]] = {}
    commands = load_all_commands()
    for key, cmd in commands.items():
        if key == cmd.name:
            groups.setdefault(cmd.group, []).append(key)
    for group in sorted(groups):
        ctx.print(f" {group} (help keyword '{group.split()[0].lower()}'):")
        for key in sorted(groups[group]):
            ctx.print(f"    {key:<20} {commands[key].help}")
        ctx.print("")
