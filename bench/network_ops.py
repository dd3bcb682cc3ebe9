"""Host virtual networks (virt-host): start until dnsmasq answers, and stop.

    python bench/network_ops.py [--rounds 5] [--json out.json]

Runs in a network namespace of its own (:func:`virt_host.netns.run_isolated`: new network,
mount and PID namespaces; needs root), on ``hosttest:///embed`` in a temporary root, with a
NAT network with DHCP and a static DNS host.  Per round (milliseconds, median over the
rounds after the first, which is reported apart as ``cold``: it pays for importing pyroute2):

* ``define``: ``conn.define_network``;
* ``start``: ``net.start()`` (bridge, addresses, nftables table, dnsmasq daemonised);
* ``start_to_dns``: from calling ``start()`` until a DNS query over UDP to the bridge address
  for the static host is answered;
* ``stop``: ``net.destroy()`` (dnsmasq gone, table and bridge removed);
* ``undefine``.

``by_hand`` does the same work without virt (pyroute2 bridge + ``nft -f`` of the same table +
``dnsmasq`` on the same configuration, then the same teardown): ``ratio`` is virt / by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "packages" / "virt-host" / "tests"))

NET = ("<network><name>bench</name><forward mode='nat'/><bridge name='virbr9'/>"
       "<dns><host ip='192.168.150.9'><hostname>static9</hostname></host></dns>"
       "<ip address='192.168.150.1' prefix='24'><dhcp><range start='192.168.150.100' end='192.168.150.200'/>"
       "<host mac='52:54:00:00:00:09' name='g9' ip='192.168.150.9'/></dhcp></ip></network>")


def _ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _wait_dns(query: Callable[[str, str], list[str]]) -> None:
    deadline = time.monotonic() + 10
    while query("192.168.150.1", "static9") != ["192.168.150.9"]:
        if time.monotonic() > deadline:
            raise TimeoutError("dnsmasq did not answer")
        time.sleep(0.001)


def _virt_round(conn: Any, dns_query: Callable[[str, str], list[str]]) -> dict[str, float]:
    row: dict[str, float] = {}
    holder: dict[str, Any] = {}
    row["define"] = _ms(lambda: holder.setdefault("net", conn.define_network(NET)))
    net = holder["net"]
    t0 = time.perf_counter()
    net.start()
    row["start"] = (time.perf_counter() - t0) * 1000
    _wait_dns(dns_query)
    row["start_to_dns"] = (time.perf_counter() - t0) * 1000
    row["stop"] = _ms(net.destroy)
    row["undefine"] = _ms(net.undefine)
    return row


def _by_hand_round(top: Path, dns_query: Callable[[str, str], list[str]]) -> dict[str, float]:
    """The same bridge, table and dnsmasq, made directly (the files virt wrote serve as input)."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped,unused-ignore]

    conf, ruleset = top / "hand.conf", top / "hand.nft"
    t0 = time.perf_counter()
    with IPRoute() as ipr:
        ipr.link("add", ifname="virbr9", kind="bridge", br_forward_delay=0, br_stp_state=1)
        index = ipr.link_lookup(ifname="virbr9")[0]
        ipr.addr("add", index=index, address="192.168.150.1", prefixlen=24, broadcast="192.168.150.255")
        ipr.link("set", index=index, state="up")
    subprocess.run(["nft", "-f", str(ruleset)], check=True)
    subprocess.run(["dnsmasq", f"--conf-file={conf}"], check=True)
    start = (time.perf_counter() - t0) * 1000
    _wait_dns(dns_query)
    to_dns = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    pid = int((top / "hand.pid").read_text())
    fd = os.pidfd_open(pid)
    os.kill(pid, 15)
    import select

    select.select([fd], [], [], 5)
    os.close(fd)
    subprocess.run(["nft", "delete", "table", "inet", "virt_virbr9"], check=True)
    with IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname="virbr9")[0])
    stop = (time.perf_counter() - t1) * 1000
    return {"start": start, "start_to_dns": to_dns, "stop": stop}


def _prepare_by_hand(top: Path, run: Path) -> None:
    """dnsmasq configuration and nft table as virt made them, with their own file names."""
    text = (run / "bench.conf").read_text()
    for suffix in ("pid", "hostsfile", "addnhosts", "leases"):
        text = text.replace(str(run / f"bench.{suffix}"), str(top / f"hand.{suffix}"))
        if suffix in ("hostsfile", "addnhosts"):
            (top / f"hand.{suffix}").write_text((run / f"bench.{suffix}").read_text())
    (top / "hand.conf").write_text(text)
    table = subprocess.run(["nft", "list", "table", "inet", "virt_virbr9"], capture_output=True, text=True,
                           check=True).stdout
    (top / "hand.nft").write_text(table)


def _scenario(rounds: int) -> dict[str, Any]:
    import hosttest_driver  # type: ignore[import-not-found,unused-ignore]
    import virt
    from nettest_lib import dns_query  # type: ignore[import-not-found,unused-ignore]
    from virt.testing import isolated_plugins

    os.environ["VIRT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    out: dict[str, Any] = {"rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="virt-bench-net-") as tmp, isolated_plugins():
        top = Path(tmp)
        hosttest_driver.register()
        with virt.open(f"hosttest:///embed?root={top / 'root'}") as conn:
            rows = [_virt_round(conn, dns_query) for _ in range(rounds + 1)]
            # the configuration virt writes, for the by-hand side
            net = conn.define_network(NET)
            net.start()
            _prepare_by_hand(top, top / "root" / "run" / "network")
            net.destroy()
            net.undefine()
        hand = [_by_hand_round(top, dns_query) for _ in range(rounds)]
    out["cold"] = rows[0]
    out["virt"] = {key: statistics.median(r[key] for r in rows[1:]) for key in rows[0]}
    out["by_hand"] = {key: statistics.median(r[key] for r in hand) for key in hand[0]}
    out["ratio"] = {key: out["virt"][key] / out["by_hand"][key] for key in out["by_hand"]}
    return out


def run(rounds: int = 5) -> dict[str, Any]:
    """The figures (see the module), measured in a network namespace of their own."""
    from virt_host.netns import run_isolated

    result: dict[str, Any] = run_isolated(_scenario, rounds)
    return result


def render(result: dict[str, Any]) -> str:
    lines = [f"network (median of {result['rounds']} rounds)   virt ms   by hand ms   ratio   cold ms"]
    for key in ("define", "start", "start_to_dns", "stop", "undefine"):
        virt_ms = result["virt"][key]
        hand = result["by_hand"].get(key)
        hand_s = f"{hand:>13.1f}{result['ratio'][key]:>8.2f}x" if hand is not None else f"{'-':>13}{'-':>9}"
        lines.append(f"{key:<32}{virt_ms:>8.1f}{hand_s}{result['cold'][key]:>10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("network_ops: needs root (network namespaces); skipped", file=sys.stderr)
        return 0
    result = run(args.rounds)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
