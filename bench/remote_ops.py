"""virt-remote over SSH, side by side with libvirt's remote client over the same sshd.

    .venv/bin/python bench/remote_ops.py [--n 1000] [--rounds 3] [--threads 32] [--json out.json]

Starts its own OpenSSH sshd on 127.0.0.1 (private config, host key and client key in a
temporary directory; Debian's openssh-server needed; as root it logs in as root, otherwise
as the user running it) and measures ``test+ssh://USER@127.0.0.1:PORT/default`` with the
helper of this venv.  In the same run, through the same sshd, it measures libvirt 9.0
(Debian's ``libvirtd`` and ``python3-libvirt`` under ``/usr/bin/python3``,
``bench/libvirt_remote_ops.py``): a private ``libvirtd`` started for the run (its own config
file, sockets and pid file in the scratch directory, no TCP, no driver modules so it serves
only ``test:///``, inside a private mount namespace whose ``/run/libvirt`` is an empty tmpfs,
so the machine's is never touched), reached as ``test+ssh://...?socket=SCRATCH/libvirt-sock``:
libvirt's client runs ``ssh`` and the far side ``nc -U`` to that socket, as libvirt does for
any ``socket=``.  libvirt's client is one long-lived process measured step by step, each step
alternated with virt's same step, so that both sides see the same moments of a noisy machine.
Both ssh clients (libvirt's and ``client=openssh``) read one private
ssh_config (the scratch known_hosts, strict checking): libvirt's ``ssh`` is a two-line
``exec ssh -F CONFIG "$@"`` script first on its ``PATH``, which costs it about a millisecond.

* ``open_ms``: a new SSH connection and a new helper that imports virt and opens the driver
  (``mode=direct``, the default), in a process that has opened one before (asyncssh imported),
  against libvirt's ``libvirt.open`` in a process that has opened one before;
  ``open_daemon_ms``: the same whose helper only relays to a ``virtd`` already running on the
  far side (``mode=daemon``), which is how libvirt's far side works (``nc`` to a running
  daemon); ``open_pooled_ms``: one more connection to a host this process already reaches.
* ``first_open_ms``: a fresh process's ``import virt; virt.open(uri)`` (so asyncssh's import
  too) against ``import libvirt; libvirt.open(uri)``, interpreter start excluded; with
  bytecode cached as for an installed package (``cli_startup.bench_env``: a shell's
  ``PYTHONDONTWRITEBYTECODE=1`` made every start compile the remote modules, ~25 ms), after
  one untimed start that writes the cache.
* ``lookup_us``, ``info_us``: one call's round trip, sequential (asyncssh, the default);
  ``lookup_ratio_paired``, ``info_ratio_paired``: the median over the rounds of virt's time
  divided by libvirt's, measured just before it (on this machine the best-of ratio swings
  20-30% between runs; a pair shares the machine's moment);
  ``open_openssh_ms``, ``lookup_openssh_us``, ``info_openssh_us``: the same with
  ``client=openssh``, where OpenSSH's ``ssh`` carries the channel as in libvirt's ``+ssh``;
  ``lookup_unix_us`` (``unix_ratio_paired``): the round trip of a local client of a daemon,
  ``test+unix://`` to the ``virtd`` above, against libvirt's ``test+unix://`` to its private
  ``libvirtd``, no SSH on either side.
* ``sequential_ms`` / ``concurrent_ms``: N lookups one after the other, then the same N issued
  from ``--threads`` threads on one connection through ``ThreadPoolExecutor.map`` (a future,
  a queue item and a condition per call: a third of the client's CPU here); ``speedup`` is
  their ratio (target >= 3); ``threads_ms`` / ``speedup_threads``: the same N from
  ``--threads`` plain threads, each calling its share in a loop, released together by a
  barrier (the library's cost without the executor's); ``concurrent_async_ms`` /
  ``speedup_async``: the same N gathered at once through the asyncio twin
  (``virt_remote.aio``) on one connection.  libvirt's threaded figures are made the same ways.
* ``vol_*_mibs``: a 64 MiB volume uploaded and downloaded over ``qemu+ssh`` (a dir pool of
  virt-host), as streams of the protocol and as chunked calls, alternated; virt only.
* ``list_info_ms``: N domains with their info through ``Connection.list_domains_info`` and the
  round trips it took (target: 1), against ``list_loop_ms`` (list, then info per domain);
  libvirt's: ``getAllDomainStats(STATE)`` (its one round trip) and its own loop.

Without root (the mount namespace), ``libvirtd`` or ``python3-libvirt``, the libvirt column
says why and shows the figures the issue quoted (2026-11-21): ``qemu+ssh`` open 197-278 ms,
about 200 us per call, ``test+ssh`` lookupByName 173 us.  The machine is shared and noisy:
each figure is the best of the rounds, and the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "packages" / "virt-remote" / "tests"))
sys.path.insert(0, str(HERE))
from cli_startup import bench_env  # noqa: E402
from libvirt_remote_ops import threaded  # noqa: E402 - stdlib only, shared with libvirt's side

LIBVIRT_PYTHON = "/usr/bin/python3"
LIBVIRTD = "/usr/sbin/libvirtd"
QUOTED = {"open_ms": 197.0, "open_ms_high": 278.0, "lookup_us": 173.0, "info_us": 200.0,
          "measured": "figures quoted by the issue (2026-11-21)"}

_COLD = ("import json, sys, time\nstart = time.perf_counter()\nimport virt\nimported = time.perf_counter()\n"
         "conn = virt.open(sys.argv[1])\nopened = time.perf_counter()\nconn.lookup_domain('test')\nconn.close()\n"
         "print(json.dumps({'import_ms': (imported - start) * 1000, 'open_ms': (opened - imported) * 1000,\n"
         "                  'first_open_ms': (opened - start) * 1000}))\n")


def _best(samples: list[float]) -> float:
    return min(samples) if samples else float("nan")


def _per_call_us(call: Callable[[], object], n: int) -> float:
    """``n`` calls one after the other, in microseconds each."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def _pair(lv: LibvirtSide | None, step: str, ours: float, pairs: list[float]) -> None:
    """Keep ``ours`` over libvirt's last ``step``, measured just before it."""
    if lv and lv.samples.get(step):
        pairs.append(ours / lv.samples[step][-1])


def _gathered(uri: str, n: int) -> float:
    """N lookups gathered at once through the asyncio twin (``virt_remote.aio``), in ms."""
    import asyncio

    from virt_remote import aio

    async def main() -> float:
        async with await aio.open(uri) as conn:
            await conn.lookup_domain("test")
            start = time.perf_counter()
            await asyncio.gather(*(conn.lookup_domain("test") for _ in range(n)))
            return (time.perf_counter() - start) * 1000

    return asyncio.run(main())


def _json_line(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[1]).name if len(argv) > 1 else argv[0]} failed: "
                           f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _libvirt_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (libvirtd in a private mount namespace)"
    if not os.path.exists(LIBVIRTD):
        return "needs Debian's libvirtd (apt-get install libvirt-daemon)"
    if shutil.which("unshare") is None or shutil.which("nc") is None:
        return "needs unshare (util-linux) and nc (netcat-openbsd)"
    if subprocess.run([LIBVIRT_PYTHON, "-c", "import libvirt"], capture_output=True).returncode != 0:
        return f"needs python3-libvirt under {LIBVIRT_PYTHON}"
    return None


@contextlib.contextmanager
def private_libvirtd(tmp: Path) -> Iterator[Path]:
    """libvirtd on a socket in ``tmp``: its own config and pid file, no TCP, no driver module
    (``LIBVIRT_DRIVER_DIR`` is an empty directory: it serves the built-in ``test:///`` only),
    in a mount namespace of its own where ``/run/libvirt`` is an empty tmpfs."""
    from remote_testlib import die_with_parent

    run_dir, no_drivers = tmp / "libvirt-run", tmp / "libvirt-no-drivers"
    run_dir.mkdir()
    no_drivers.mkdir()
    conf, log = tmp / "libvirtd.conf", tmp / "libvirtd.log"
    conf.write_text(f'unix_sock_dir = "{run_dir}"\nlisten_tls = 0\nlisten_tcp = 0\nauth_unix_rw = "none"\n'
                    f'auth_unix_ro = "none"\nlog_outputs = "3:file:{log}"\n')
    hide = "/run/libvirt" if os.path.isdir("/run/libvirt") else "/run"
    script = (f"mount -t tmpfs virt-bench {hide} && "
              f"exec {LIBVIRTD} -f {conf} -p {tmp / 'libvirtd.pid'}")
    env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(no_drivers))
    proc = subprocess.Popen([*die_with_parent(), "unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "libvirtd.err", "wb"))  # noqa: SIM115 - the child owns it
    sock = run_dir / "libvirt-sock"
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not start: {(tmp / 'libvirtd.err').read_text()[-300:]}")
            time.sleep(0.02)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ssh_setup(tmp: Path, keys: Any) -> tuple[Path, dict[str, str]]:
    """A private ssh_config (the scratch known_hosts, strict) and an environment whose ``ssh``
    reads it, for libvirt's client (which runs ``ssh`` from ``PATH``)."""
    config = tmp / "ssh_config"
    config.write_text(f"UserKnownHostsFile {keys.known_hosts}\nGlobalKnownHostsFile /dev/null\n"
                      "StrictHostKeyChecking yes\nBatchMode yes\n")
    bindir = tmp / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh") or "/usr/bin/ssh"} -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return config, dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")


class LibvirtSide:
    """libvirt's client in a process of its own (``libvirt_remote_ops.py``), measured step by
    step in alternation with virt's, through ``sshd``; ``error`` says why when it cannot run."""

    def __init__(self, sshd: Any, tmp: Path, n: int, threads: int) -> None:
        from remote_testlib import USER

        self.samples: dict[str, list[float]] = {}
        self.error = _libvirt_missing()
        self.proc: subprocess.Popen[str] | None = None
        self._stack = contextlib.ExitStack()
        if self.error:
            return
        _config, self.env = _ssh_setup(tmp, sshd.keys)
        self.script = str(HERE / "libvirt_remote_ops.py")
        try:
            sock = self._stack.enter_context(private_libvirtd(tmp))
            self.uri = (f"test+ssh://{USER}@127.0.0.1:{sshd.port}/default?socket={sock}"
                        f"&keyfile={sshd.keys.client_key}")
            self.proc = subprocess.Popen([LIBVIRT_PYTHON, self.script, self.uri, str(n), str(threads)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=open(tmp / "libvirt-client.err", "w"),  # noqa: SIM115
                                         text=True, env=self.env)
            self._stack.callback(self._stop)
            self._answer()
        except (RuntimeError, OSError, ValueError) as exc:
            err = tmp / "libvirt-client.err"
            self.error = f"{exc}: {err.read_text()[-300:] if err.exists() else ''}"
            self.close()

    def _answer(self) -> dict[str, float]:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("libvirt's client ended")
        answer = dict(json.loads(line))
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def step(self, name: str) -> None:
        if self.error or self.proc is None:
            return
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(name + "\n")
            self.proc.stdin.flush()
            self.samples.setdefault(name, []).append(self._answer()[name])
        except (RuntimeError, OSError, ValueError) as exc:
            self.error = f"libvirt's client failed at {name}: {exc}"
            self.close()

    def cold(self) -> None:
        if self.error:
            return
        try:
            answer = _json_line([LIBVIRT_PYTHON, self.script, "--cold", self.uri], self.env)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            self.error = str(exc)
            self.close()
            return
        for key in ("first_open_ms", "import_ms"):
            self.samples.setdefault(key, []).append(answer[key])

    def _stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self._stack.close()

    def figures(self, n: int) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        out: dict[str, Any] = {k: _best(v) for k, v in self.samples.items()}
        out["lookup_us"] = out["sequential_ms"] * 1000 / n
        out["speedup"] = out["sequential_ms"] / out["concurrent_ms"]
        out["speedup_threads"] = out["sequential_ms"] / out["threads_ms"]
        out["measured"] = "libvirt 9.0 (Debian), this run, same sshd, steps alternated with virt's"
        return out


def run(n: int = 1000, rounds: int = 3, threads: int = 32, with_libvirt: bool = True) -> dict[str, Any]:
    """Every figure of the module docstring, as a dict (``available`` False when sshd cannot run)."""
    import virt
    from remote_testlib import SSHD, Keys, Sshd

    if not os.path.exists(SSHD):
        return {"available": False, "error": "needs OpenSSH's sshd (apt-get install openssh-server)"}
    out: dict[str, Any] = {"available": True, "n": n, "rounds": rounds, "threads": threads,
                           "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="virt-remote-bench-") as tmp_name:
        tmp = Path(tmp_name)
        keys = Keys(tmp / "keys")
        sshd = Sshd(keys).start()
        daemon_sock = tmp / "virtd-sock"
        daemon = subprocess.Popen([sys.executable, "-m", "virt_remote._daemon", "--socket", str(daemon_sock)],
                                  stdin=subprocess.DEVNULL)
        lv: LibvirtSide | None = None
        try:
            lv = LibvirtSide(sshd, tmp, n, threads) if with_libvirt else None
            config = tmp / "ssh_config"
            if not config.exists():
                _ssh_setup(tmp, keys)
            os.environ["VIRT_SSH_CONFIG"] = str(config)  # client=openssh reads the same ssh_config
            uri = sshd.uri()
            colds = []
            cold_env = bench_env()  # .pyc written and read, whatever PYTHONDONTWRITEBYTECODE says
            for _ in range(rounds + 1):  # the first writes the .pyc files: not timed
                if lv and colds:
                    lv.cold()
                colds.append(_json_line([sys.executable, "-c", _COLD, uri], env=cold_env))
            colds = colds[1:]
            out["first_open_ms"] = _best([c["first_open_ms"] for c in colds])
            out["import_ms"] = _best([c["import_ms"] for c in colds])
            virt.open(uri).close()  # asyncssh imported once per process, as a long-lived client does
            while not daemon_sock.exists():
                time.sleep(0.01)
            daemon_uri = sshd.uri(mode="daemon", socket=daemon_sock)
            virt.open(daemon_uri).close()  # the daemon's first open of the test driver: not ours to time
            opens, opens_daemon, pooled = [], [], []
            for _ in range(rounds):
                if lv:
                    lv.step("open_ms")
                start = time.perf_counter()
                conn = virt.open(uri)
                opens.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                virt.open(uri).close()
                pooled.append((time.perf_counter() - start) * 1000)
                conn.close()
                if lv:
                    lv.step("open_ms")
                start = time.perf_counter()
                conn = virt.open(daemon_uri)
                opens_daemon.append((time.perf_counter() - start) * 1000)
                conn.close()
            ossh_uri = sshd.uri(client="openssh")
            ossh_opens, ossh_lookups, ossh_infos = [], [], []
            for _ in range(rounds):
                if lv:
                    lv.step("open_ms")
                start = time.perf_counter()
                conn = virt.open(ossh_uri)
                ossh_opens.append((time.perf_counter() - start) * 1000)
                dom = conn.lookup_domain("test")
                if lv:
                    lv.step("sequential_ms")
                ossh_lookups.append(_per_call_us(partial(conn.lookup_domain, "test"), n))
                if lv:
                    lv.step("info_us")
                ossh_infos.append(_per_call_us(dom.info, n))
                conn.close()
            # a local client of a daemon (libvirt's: of the same libvirtd, over its own socket)
            unix_conn = virt.open(f"test+unix:///default?socket={daemon_sock}")
            unix_lookups: list[float] = []
            paired_unix: list[float] = []
            try:
                unix_conn.lookup_domain("test")
                for _ in range(rounds):
                    if lv:
                        lv.step("unix_lookup_us")
                    unix_lookups.append(_per_call_us(partial(unix_conn.lookup_domain, "test"), n))
                    _pair(lv, "unix_lookup_us", unix_lookups[-1], paired_unix)
            finally:
                unix_conn.close()
            out["lookup_unix_us"] = _best(unix_lookups)
            if paired_unix:
                out["unix_ratio_paired"] = statistics.median(paired_unix)
            out["open_openssh_ms"] = _best(ossh_opens)
            out["lookup_openssh_us"] = _best(ossh_lookups)
            out["info_openssh_us"] = _best(ossh_infos)
            out["open_ms"] = _best(opens)
            out["open_daemon_ms"] = _best(opens_daemon)
            out["open_pooled_ms"] = _best(pooled)

            conn = virt.open(uri)
            try:
                dom = conn.lookup_domain("test")
                lookups, infos, seqs, concs, shares = [], [], [], [], []
                # virt's round trip over libvirt's measured just before it, round by round
                paired_lookup: list[float] = []
                paired_info: list[float] = []
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(lambda _i: conn.lookup_domain("test"), range(threads * 4)))  # warm the threads
                    for _ in range(rounds):
                        if lv:
                            lv.step("sequential_ms")
                        lookups.append(_per_call_us(partial(conn.lookup_domain, "test"), n))
                        seqs.append(lookups[-1] * n / 1000)
                        _pair(lv, "sequential_ms", seqs[-1], paired_lookup)
                        if lv:
                            lv.step("info_us")
                        infos.append(_per_call_us(dom.info, n))
                        _pair(lv, "info_us", infos[-1], paired_info)
                        if lv:
                            lv.step("concurrent_ms")
                        start = time.perf_counter()
                        list(pool.map(lambda _i: conn.lookup_domain("test"), range(n)))
                        concs.append((time.perf_counter() - start) * 1000)
                        if lv:
                            lv.step("threads_ms")
                        shares.append(threaded(lambda: conn.lookup_domain("test"), n, threads))
                gathered = []
                for _ in range(rounds):
                    if lv:
                        lv.step("concurrent_ms")
                    gathered.append(_gathered(uri, n))
                out["concurrent_async_ms"] = _best(gathered)
                out["lookup_us"] = _best(lookups)
                out["info_us"] = _best(infos)
                out["lookup_us_median"] = statistics.median(lookups)
                if paired_lookup and paired_info:
                    out["lookup_ratio_paired"] = statistics.median(paired_lookup)
                    out["info_ratio_paired"] = statistics.median(paired_info)
                    out["ratio_pairs"] = len(paired_lookup)
                out["sequential_ms"] = _best(seqs)
                out["concurrent_ms"] = _best(concs)
                out["speedup"] = out["sequential_ms"] / out["concurrent_ms"]
                out["threads_ms"] = _best(shares)
                out["speedup_threads"] = out["sequential_ms"] / out["threads_ms"]
                out["speedup_async"] = out["sequential_ms"] / out["concurrent_async_ms"]

                xml = ("<domain type='test'><name>bench-{0}</name><memory>131072</memory>"
                       "<os><type>hvm</type></os></domain>")
                made = [conn.define_domain(xml.format(i)) for i in range(n)]
                if lv:
                    lv.step("define")
                batched, loops, trips = [], [], []
                peer = conn.driver.peer  # type: ignore[attr-defined]
                for _ in range(rounds):
                    if lv:
                        lv.step("list_info_ms")
                    before = peer.requests
                    start = time.perf_counter()
                    listed = conn.list_domains_info()
                    batched.append((time.perf_counter() - start) * 1000)
                    trips.append(peer.requests - before)
                    if lv:
                        lv.step("list_loop_ms")
                    start = time.perf_counter()
                    looped = [(d, d.info()) for d in conn.list_domains()]
                    loops.append((time.perf_counter() - start) * 1000)
                    assert len(listed) == len(looped) >= n
                out["list_info_ms"] = _best(batched)
                out["list_info_round_trips"] = max(trips)
                out["list_loop_ms"] = _best(loops)
                for d in made:
                    d.undefine()
                if lv:
                    lv.step("undefine")
            finally:
                conn.close()
            out["libvirt"] = lv.figures(n) if lv else {"error": "--no-libvirt"}
            out.update(_volumes(sshd, tmp, rounds))
        finally:
            if lv:
                lv.close()
            daemon.terminate()
            daemon.wait()
            sshd.stop()
    out["load_after"] = os.getloadavg()[0]
    return out


def _volumes(sshd: Any, tmp: Path, rounds: int, size: int = 64 << 20) -> dict[str, Any]:
    """Volume upload and download over ``qemu+ssh`` (a dir pool of virt-host), as streams of
    the protocol and, alternated with them, as chunked calls (what a far side without the
    ``volume-streams`` feature gets), in MiB/s, best of the rounds; virt only (libvirt's test
    driver keeps no volume content, and the bench's private libvirtd loads no storage driver)."""
    try:
        import virt_host  # noqa: F401
        import virt_qemu  # noqa: F401
    except ImportError as exc:
        return {"volumes_error": f"needs virt-host and the QEMU driver ({exc})"}
    import virt

    root = tmp / "vol-embed"
    root.mkdir()
    source, target = tmp / "vol-in.bin", tmp / "vol-out.bin"
    source.write_bytes(os.urandom(size))
    speeds: dict[str, list[float]] = {}
    with virt.open(sshd.uri("qemu", "/embed", root=root)) as conn:
        pool = conn.define_storage_pool(f"<pool type='dir'><name>bench</name><target><path>{root / 'images'}"
                                        "</path></target></pool>")
        pool.build()
        pool.start()
        vol = pool.create_volume(f"<volume><name>bench.raw</name><capacity>{size}</capacity>"
                                 "<target><format type='raw'/></target></volume>")
        peer = conn.driver.peer  # type: ignore[attr-defined]
        features = peer.features
        try:
            for _ in range(rounds):
                for mode in ("stream", "chunked"):
                    peer.features = features if mode == "stream" else features - {"volume-streams"}
                    for step, run in (("upload", lambda: vol.upload(str(source))),
                                      ("download", lambda: vol.download(str(target)))):
                        start = time.perf_counter()
                        run()
                        speeds.setdefault(f"vol_{step}_{mode}_mibs", []).append(
                            size / (time.perf_counter() - start) / 2**20)
        finally:
            peer.features = features
            vol.delete()
            pool.destroy()
            pool.undefine()
    if target.read_bytes() != source.read_bytes():
        raise RuntimeError("the volume's content came back different")
    return {key: max(values) for key, values in speeds.items()} | {"vol_size_mib": size >> 20}


def report(result: dict[str, Any]) -> str:
    if not result.get("available"):
        return f"virt-remote bench not run: {result.get('error')}"
    lib = result["libvirt"]
    real = "error" not in lib
    if not real:
        lib = {**QUOTED, "error": lib["error"]}

    def ratio(ours: float, key: str, fmt: str, unit: str) -> tuple[str, str]:
        if key not in lib:
            return "-", ""
        theirs = lib[key]
        shown = f"{theirs:{fmt}} {unit}"
        if key == "open_ms" and not real:
            shown = f"{lib['open_ms']:.0f}-{lib['open_ms_high']:.0f} {unit}"
        return shown, f"{ours / theirs:.2f}x"

    n, th = result["n"], result["threads"]
    rows: list[tuple[str, float, str, str, str]] = [
        ("open, new SSH + helper (direct)", result["open_ms"], ".0f", "ms", "open_ms"),
        ("open, new SSH + relay to virtd", result["open_daemon_ms"], ".0f", "ms", "open_ms"),
        ("open, SSH connection shared", result["open_pooled_ms"], ".1f", "ms", ""),
        ("first open of a process (with imports)", result["first_open_ms"], ".0f", "ms", "first_open_ms"),
        ("  of which the import of virt / libvirt", result["import_ms"], ".0f", "ms", "import_ms"),
        ("lookup by name (round trip)", result["lookup_us"], ".0f", "us", "lookup_us"),
        ("get info (round trip)", result["info_us"], ".0f", "us", "info_us"),
        ("open, OpenSSH's ssh + helper (client=openssh)", result["open_openssh_ms"], ".0f", "ms", "open_ms"),
        ("lookup by name, client=openssh", result["lookup_openssh_us"], ".0f", "us", "lookup_us"),
        ("get info, client=openssh", result["info_openssh_us"], ".0f", "us", "info_us"),
        ("lookup by name, local daemon (+unix)", result["lookup_unix_us"], ".0f", "us", "unix_lookup_us"),
        (f"{n} lookups sequential", result["sequential_ms"], ".0f", "ms", "sequential_ms"),
        (f"{n} lookups from {th} threads (pool.map)", result["concurrent_ms"], ".0f", "ms", "concurrent_ms"),
        (f"{n} lookups from {th} threads (a share each)", result["threads_ms"], ".0f", "ms", "threads_ms"),
        (f"{n} lookups gathered (asyncio twin)", result["concurrent_async_ms"], ".0f", "ms", "concurrent_ms"),
        (f"{n} domains with info, batched", result["list_info_ms"], ".0f", "ms", "list_info_ms"),
        (f"{n} domains with info, one call each", result["list_loop_ms"], ".0f", "ms", "list_loop_ms"),
    ]
    table = []
    for label, ours, fmt, unit, key in rows:
        theirs, times = ratio(ours, key, fmt, unit) if key else ("-", "")
        table.append((label, f"{ours:{fmt}} {unit}", theirs, times))
    width = max(len(r[0]) for r in table)
    where = lib["measured"] if real else f"{lib['measured']}; not measured here: {lib['error']}"
    lines = [f"virt-remote vs libvirt over one OpenSSH sshd on 127.0.0.1 (load {result['load']:.1f} before, "
             f"{result['load_after']:.1f} after); libvirt: {where}",
             f"{'':{width}}  {'virt':>10}  {'libvirt':>10}  virt/libvirt"]
    lines += [f"{a:{width}}  {b:>10}  {c:>10}  {d}" for a, b, c, d in table]
    speed = (f"threads (pool.map): virt {result['speedup']:.1f}x"
             + (f", libvirt {lib['speedup']:.1f}x" if real else "")
             + f"; threads (a share each): virt {result['speedup_threads']:.1f}x"
             + (f", libvirt {lib['speedup_threads']:.1f}x" if real else "")
             + f"; asyncio twin {result['speedup_async']:.1f}x")
    lines.append(f"concurrent speedup over sequential (target >= 3x) -- {speed}")
    if "lookup_ratio_paired" in result:
        lines.append(f"round trip, virt / libvirt measured just before, median of {result['ratio_pairs']} rounds: "
                     f"lookup {result['lookup_ratio_paired']:.2f}x, info {result['info_ratio_paired']:.2f}x"
                     + (f", local daemon lookup {result['unix_ratio_paired']:.2f}x" if "unix_ratio_paired" in result
                        else ""))
    lines.append(f"batched listing: {result['list_info_round_trips']} round trip(s)")
    if "volumes_error" in result:
        lines.append(f"volume upload/download not measured: {result['volumes_error']}")
    elif "vol_upload_stream_mibs" in result:
        lines.append(f"volume upload / download over qemu+ssh ({result['vol_size_mib']} MiB, MiB/s): as streams "
                     f"{result['vol_upload_stream_mibs']:.0f} / {result['vol_download_stream_mibs']:.0f}, as "
                     f"chunked calls {result['vol_upload_chunked_mibs']:.0f} / "
                     f"{result['vol_download_chunked_mibs']:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--no-libvirt", action="store_true", help="virt's figures only")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    result = run(args.n, args.rounds, args.threads, not args.no_libvirt)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
