"""Plug a rebooting container's interfaces again: ``python -m virt_lxc._replug URI LIVE_XML PID``.

A reboot makes the container a fresh network namespace, and no driver is in the loop: the
controller (which imports nothing of ``virt``, to stay small and quick to start) holds the new
init before its ``execve`` and runs this, once per reboot, with the full interpreter.  It does
what the driver does on a start: each of :data:`virt_lxc._driver.interface_hooks` with the
container's live definition (the MACs the start used) and the held init's pid
(``virt_host.network.plug_veth``: a new veth pair into the same bridge).  Exit status 0 when
every interface is plugged and the live definition names the new host ends (``<target
dev='vethN'/>``, written atomically: a replug's names may differ from the last boot's);
otherwise the error goes to stderr (the controller's log) and the reboot fails, as a start
would.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: python -m virt_lxc._replug URI LIVE_XML INIT_PID", file=sys.stderr)
        return 2
    uri, live_xml, pid = argv[0], argv[1], int(argv[2])
    from collections.abc import Sequence
    from pathlib import Path

    from virt._errors import VirtError
    from virt._state_files import atomic_write

    from virt_lxc._container import name_interfaces
    from virt_lxc._driver import interface_hooks
    from virt_lxc._store import parse_definition

    try:
        with open(live_xml, "rb") as src:
            doc = parse_definition(src.read(), live=True)
        hosts: Sequence[str] | None = None
        for attach in interface_hooks:
            hosts = attach(uri, doc, pid) or hosts
        if hosts:
            name_interfaces(doc, hosts)
            atomic_write(Path(live_xml), doc.to_string(secure=True), durable=False)
    except (VirtError, OSError, ValueError) as exc:
        print(f"cannot plug the interfaces of the rebooting container: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
