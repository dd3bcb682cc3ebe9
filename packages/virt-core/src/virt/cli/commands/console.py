"""virt CLI: ``console`` (attach to a guest's serial console) and ``domstats``."""

from __future__ import annotations

import os
import sys
from typing import Any

from virt._errors import ErrorNumber, VirtError
from virt.cli._framework import CommandError, Context, Opt, command
from virt.cli.commands.domain import DOMAIN_OPT, lookup_domain

__all__ = ["relay", "relay_stream"]

#: ^] ends a console session, as in virsh.
ESCAPE = 0x1D
_CONSOLE_FORCE, _CONSOLE_SAFE = 1, 2

# virDomainStatsTypes by domstats option, and the --list-* filters (virConnectListAllDomains)
_GROUPS = {"state": 1, "cpu-total": 2, "balloon": 4, "vcpu": 8, "interface": 16, "block": 32, "perf": 64,
           "iothread": 128, "memory": 256, "dirtyrate": 512, "vm": 1024}
_LISTS = {"list-active": 1, "list-inactive": 2, "list-persistent": 4, "list-transient": 8, "list-running": 16,
          "list-paused": 32, "list-shutoff": 64, "list-other": 128}


def relay(pty_path: str, stdin_fd: int, stdout_fd: int) -> None:
    """Copy bytes both ways between the terminal and ``pty_path`` until ^] or the guest goes away.

    The terminal is put in raw mode for the session and restored after, whatever happens.
    """
    import select
    import termios
    import tty

    pty_fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    saved = termios.tcgetattr(stdin_fd)
    try:
        tty.setraw(pty_fd, termios.TCSANOW)
        tty.setraw(stdin_fd, termios.TCSANOW)
        while True:
            ready, _, _ = select.select([stdin_fd, pty_fd], [], [])
            if stdin_fd in ready:
                data = os.read(stdin_fd, 4096)
                if not data:
                    return
                cut = data.find(bytes([ESCAPE]))
                if cut >= 0:
                    if cut:
                        os.write(pty_fd, data[:cut])
                    return
                os.write(pty_fd, data)
            if pty_fd in ready:
                try:
                    data = os.read(pty_fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: QEMU closed the pty, the guest is gone
                    return
                if not data:
                    return
                os.write(stdout_fd, data)
    finally:
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        os.close(pty_fd)


@command("console", DOMAIN_OPT, Opt("devname", help="character device name"),
         Opt("force", "bool", "force console connection (disconnect already connected sessions)"),
         Opt("safe", "bool", "only connect if safe console handling is supported"),
         help="connect to the guest console", group="Domain Management")
def cmd_console(ctx: Context, opts: dict[str, Any]) -> None:
    dom = lookup_domain(ctx, opts["domain"])
    stdin = sys.stdin
    if stdin is None or not os.isatty(stdin.fileno()):
        raise CommandError("Cannot run interactive console without a controlling TTY")
    flags = (_CONSOLE_FORCE if opts["force"] else 0) | (_CONSOLE_SAFE if opts["safe"] else 0)
    try:
        stream = dom.open_console(opts["devname"], flags)
    except VirtError as exc:
        raise CommandError(str(exc.message)) from None
    ctx.print(f"Connected to domain '{dom.name}'")
    ctx.print("Escape character is ^] (Ctrl + ])")
    ctx.out.flush()
    try:
        path = getattr(stream, "path", None)
        if path is not None:  # a pty on this node: relay it directly
            stream.close()
            relay(path, stdin.fileno(), sys.stdout.fileno())
        else:  # a stream from a remote node
            relay_stream(stream, dom, stdin.fileno(), sys.stdout.fileno())
    except OSError as exc:
        raise CommandError(f"Unable to open console: {exc.strerror}") from None
    ctx.print("")


def relay_stream(stream: Any, dom: Any, stdin_fd: int, stdout_fd: int) -> None:
    """:func:`relay` for a console stream (``read(size, timeout)``/``write``/``close``): a
    thread copies the guest's output while this one copies the keyboard, until ^]."""
    import select
    import termios
    import threading
    import tty

    done = threading.Event()

    def pump() -> None:
        quiet = 0.0
        while not done.is_set():
            data = stream.read(65536, 0.25)
            if data:
                os.write(stdout_fd, data)
                quiet = 0.0
                continue
            quiet += 0.25
            if quiet >= 1.0:  # nothing for a second: is the guest still there?
                quiet = 0.0
                try:
                    if not dom.is_active():
                        done.set()
                except VirtError as exc:
                    if exc.code == ErrorNumber.NO_DOMAIN:
                        done.set()

    saved = termios.tcgetattr(stdin_fd)
    reader = threading.Thread(target=pump, name="virt-console", daemon=True)
    try:
        tty.setraw(stdin_fd, termios.TCSANOW)
        reader.start()
        while not done.is_set():
            if not select.select([stdin_fd], [], [], 0.25)[0]:
                continue
            data = os.read(stdin_fd, 4096)
            if not data:
                break
            cut = data.find(bytes([ESCAPE]))
            if cut >= 0:
                if cut:
                    stream.write(data[:cut])
                break
            stream.write(data)
    finally:
        done.set()
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        reader.join(1.0)
        stream.close()


@command("domstats", *(Opt(name, "bool", f"report domain {name} statistics") for name in _GROUPS),
         Opt("raw", "bool", "do not pretty-print the fields"),
         Opt("enforce", "bool", "enforce requested stats parameters"),
         Opt("backing", "bool", "add backing chain information to block stats"),
         Opt("nowait", "bool", "report only stats that are accessible instantly"),
         *(Opt(name, "bool", f"list only {name[5:]} domains") for name in _LISTS),
         Opt("domain", "argv", "list of domains to get stats for", positional=True),
         help="get statistics about one or multiple domains", group="Domain Monitoring", json=True)
def cmd_domstats(ctx: Context, opts: dict[str, Any]) -> None:
    stats = 0
    for name, bit in _GROUPS.items():
        if opts[name]:
            stats |= bit
    names = opts.get("domain") or []
    flags = 0
    for name, bit in _LISTS.items():
        if opts[name]:
            flags |= bit
    if names and flags:
        raise CommandError("domain list filtering options are not supported together with domain names")
    domains = [lookup_domain(ctx, name) for name in names] if names else ctx.conn.list_domains(flags=flags)
    results = []
    for dom in domains:
        try:
            results.append((dom, dom.stats(stats)))
        except VirtError as exc:
            raise CommandError("failed to get domain stats", exc) from None
    if ctx.want_json:
        ctx.emit_json([{"domain": dom.name, **values} for dom, values in results])
        return
    for index, (dom, values) in enumerate(results):
        if index:
            ctx.print("")
        ctx.print(f"Domain: '{dom.name}'")
        for key, value in values.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            ctx.print(f"  {key}={value}")
