"""libvirt's own QEMU driver, for the side-by-side figures of ``bench/qemu_ops.py``.

Runs under Debian's ``/usr/bin/python3`` with ``python3-libvirt`` and the QEMU driver module
(``libvirt-daemon-driver-qemu``), in libvirt's *embedded* mode (``qemu:///embed?root=DIR``:
the driver runs inside this process, no libvirtd).  ``qemu_ops.py`` starts it inside a private
mount namespace where ``/etc/passwd`` and ``/etc/group`` know the ``libvirt-qemu`` user that
Debian's build names as its default, and writes ``DIR/etc/qemu.conf`` so that QEMU runs as root
with no security driver and no virtlogd.  Stdlib + libvirt only.

    python3 bench/libvirt_qemu_ops.py ROOT KERNEL INITRD CMDLINE ROUNDS   # prints one JSON line
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import uuid

import libvirt  # type: ignore[import-not-found]


def _bare_xml(name: str) -> str:
    return (f"<domain type='qemu'><name>{name}</name><uuid>{uuid.uuid4()}</uuid>"
            "<memory unit='MiB'>128</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features></domain>")


def _guest_xml(name: str, kernel: str, initrd: str, cmdline: str, serial: str) -> str:
    return f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernel}</kernel><initrd>{initrd}</initrd>
  <cmdline>{cmdline}</cmdline></os><features><acpi/></features>
  <devices><serial type='file'><source path='{serial}'/><target port='0'/></serial>
  <memballoon model='none'/></devices></domain>"""


def _wait_text(path: str, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as src:
                if text in src.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{text!r} not in {path}")


def main(argv: list[str]) -> int:
    root, kernel, initrd, cmdline, rounds_text = argv[1:6]
    rounds = int(rounds_text)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc", "qemu.conf"), "w") as conf:
        conf.write('user = "root"\ngroup = "root"\nsecurity_driver = "none"\nnamespaces = []\n'
                   'cgroup_controllers = []\nstdio_handler = "file"\nremember_owner = 0\n')
    libvirt.virEventRegisterDefaultImpl()

    def loop() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, daemon=True).start()
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open(f"qemu:///embed?root={root}")
    out: dict[str, float] = {}
    conn.createXML(_bare_xml("warmup"), 0).destroy()
    creates, destroys = [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        dom = conn.createXML(_bare_xml(f"bench-{i}"), 0)
        t1 = time.perf_counter()
        dom.destroy()
        t2 = time.perf_counter()
        creates.append((t1 - t0) * 1000)
        destroys.append((t2 - t1) * 1000)
    out["create_to_running_ms"] = statistics.median(creates)
    out["destroy_ms"] = statistics.median(destroys)

    stopped = threading.Event()

    def on_event(_c: object, _d: object, event: int, _detail: int, _opaque: object) -> None:
        if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            stopped.set()

    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
    shutdowns = []
    for i in range(rounds):
        serial = os.path.join(root, f"serial-{i}.log")
        dom = conn.createXML(_guest_xml(f"acpi-{i}", kernel, initrd, cmdline, serial), 0)
        _wait_text(serial, "VIRT-TINYGUEST-READY", 60)
        time.sleep(0.05)
        stopped.clear()
        t0 = time.perf_counter()
        dom.shutdown()
        stopped.wait(30)
        shutdowns.append((time.perf_counter() - t0) * 1000)
    out["acpi_shutdown_ms"] = statistics.median(shutdowns)

    parallel = []
    for r in range(max(1, rounds // 2)):
        doms: list[object] = [None] * 10

        def start(k: int, r: int = r, doms: list[object] = doms) -> None:
            doms[k] = conn.createXML(_bare_xml(f"par-{r}-{k}"), 0)

        threads = [threading.Thread(target=start, args=(k,)) for k in range(10)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        parallel.append((time.perf_counter() - t0) * 1000)
        for dom in doms:
            if dom is not None:
                dom.destroy()  # type: ignore[attr-defined]
    out["ten_at_once_ms"] = statistics.median(parallel)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
