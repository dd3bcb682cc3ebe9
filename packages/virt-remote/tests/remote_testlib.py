"""Helpers of virt-remote's tests: keys, a private OpenSSH sshd on 127.0.0.1, an in-process
asyncssh server, and the helper's path.  Nothing here reads /etc/ssh or ~/.ssh."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HELPER = str(Path(sys.executable).with_name("virt-remote-helper"))
USER = pwd.getpwuid(os.geteuid()).pw_name
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _skip(why: str) -> None:
    """pytest's skip in the tests; the benchmark (whose venv has no pytest) stops with ``why``."""
    try:
        import pytest
    except ImportError:
        raise RuntimeError(why) from None
    pytest.skip(why)


def die_with_parent() -> list[str]:
    """A command prefix that makes the child get SIGTERM when the test process dies, even if
    killed, so a run that is cut short leaves no server behind (util-linux's setpriv)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Keys:
    """A host key, a client key (and a wrong one), authorized_keys and known_hosts, in ``where``."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        where.mkdir(parents=True, exist_ok=True)
        self.host_key = where / "host_ed25519"
        self.client_key = where / "client_ed25519"
        self.other_key = where / "other_ed25519"
        self.other_host_key = where / "otherhost_ed25519"
        if shutil.which("ssh-keygen") is None:
            _skip("ssh-keygen is not installed (apt-get install openssh-client)")
        for key in (self.host_key, self.client_key, self.other_key, self.other_host_key):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name, "-f", str(key)],
                               check=True)
        self.authorized_keys = where / "authorized_keys"
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = where / "known_hosts"
        self.wrong_known_hosts = where / "wrong_known_hosts"

    def trust(self, port: int) -> None:
        """Add 127.0.0.1:port to known_hosts (and, with the wrong key, to wrong_known_hosts):
        every server of a run has its line, as in a real known_hosts."""
        for path, key in ((self.known_hosts, self.host_key), (self.wrong_known_hosts, self.other_host_key)):
            entry = " ".join(Path(f"{key}.pub").read_text().split()[:2])
            line = f"[127.0.0.1]:{port} {entry}\n"
            existing = path.read_text() if path.exists() else ""
            if line not in existing:
                path.write_text(existing + line)


class Sshd:
    """Debian's OpenSSH sshd, private config, on 127.0.0.1:port, in the foreground (-D)."""

    def __init__(self, keys: Keys, port: int | None = None) -> None:
        self.keys = keys
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = keys.dir / f"sshd_config-{self.port}"
        self.log = keys.dir / f"sshd-{self.port}.log"

    def start(self) -> Sshd:
        if not os.path.exists(SSHD):
            _skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        # As root, sshd serves root; as anyone else, it can only serve the user who runs it.
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.keys.host_key}\n"
            f"AuthorizedKeysFile {self.keys.authorized_keys}\nPidFile none\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nMaxStartups 100\nMaxSessions 100\nLogLevel ERROR\nUseDNS no\n"
            "PermitUserEnvironment no\nAcceptEnv no\n")
        self.keys.trust(self.port)
        log = open(self.log, "ab")  # noqa: SIM115 - sshd owns it while it runs
        self.proc = subprocess.Popen([*die_with_parent(), SSHD, "-D", "-e", "-f", str(self.config)], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        try:
            wait_port(self.port)
        except OSError:
            self.stop()
            raise RuntimeError(f"sshd did not start: {self.log.read_text()}") from None
        return self

    def stop(self) -> None:
        """Stop the listener and every session process and helper it started."""
        if self.proc is None:
            return
        children = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)

    def helpers(self) -> list[int]:
        """The helpers running under this sshd now."""
        return [pid for pid in descendants(self.proc.pid) if pid in helper_pids()] if self.proc else []

    def uri(self, driver: str = "test", path: str = "/default", **params: Any) -> str:
        query = {"keyfile": str(self.keys.client_key), "known_hosts": str(self.keys.known_hosts),
                 "command": HELPER, **{k: str(v) for k, v in params.items()}}
        text = "&".join(f"{k}={v}" for k, v in query.items() if v != "")
        return f"{driver}+ssh://{USER}@127.0.0.1:{self.port}{path}?{text}"


def helper_pids() -> list[int]:
    """The virt-remote-helper processes running now (children of sshds)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"virt-remote-helper") for part in cmdline[:2]):
            out.append(int(entry))
    return out


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    """Every process whose chain of parents holds ``root``."""
    parents = {int(e): _parent(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    out = []
    for pid in parents:
        seen, up = 0, parents.get(pid, 0)
        while up and seen < 64:
            if up == root:
                out.append(pid)
                break
            up, seen = parents.get(up, 0), seen + 1
    return out


# -- the in-process asyncssh server ----------------------------------------------------------


class InProcessServer:
    """An asyncssh SSH server on 127.0.0.1 in this process, on a loop of its own; each exec
    channel is served by a :class:`virt_remote._server.Service` on a socket pair."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="test-sshd")
        self.server: Any = None
        self.services: list[Any] = []
        self.commands: list[str] = []

    def start(self) -> InProcessServer:
        import asyncssh

        self.thread.start()
        self.keys.trust(self.port)

        async def listen() -> Any:
            return await asyncssh.listen("127.0.0.1", self.port, server_host_keys=[str(self.keys.host_key)],
                                         authorized_client_keys=str(self.keys.authorized_keys),
                                         process_factory=self._process, encoding=None)

        self.server = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10)
        return self

    async def _process(self, process: Any) -> None:
        from virt_remote._server import Service

        self.commands.append(process.command or "")
        ours, theirs = socket.socketpair()
        service = Service(theirs.recv, theirs.sendall, keepalive_interval=0, name="test", fileno=theirs.fileno())
        self.services.append(service)

        def serve() -> None:
            try:
                service.serve()
            finally:
                with contextlib.suppress(OSError):
                    theirs.shutdown(socket.SHUT_RDWR)
                theirs.close()

        threading.Thread(target=serve, daemon=True).start()
        reader, writer = await asyncio.open_connection(sock=ours)

        async def upstream() -> None:
            while True:
                data = await process.stdin.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        async def downstream() -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                process.stdout.write(data)
                await process.stdout.drain()

        up = asyncio.ensure_future(upstream())
        try:
            await downstream()
        finally:
            up.cancel()
            writer.close()
        # Not in the finally: a coroutine closed unfinished (its task collected with a
        # connection gone) must not await while it closes ("coroutine ignored GeneratorExit")
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        process.exit(0)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        async def cancel_tasks() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_tasks(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()

    def uri(self, driver: str = "test", path: str = "/default", **params: Any) -> str:
        query = {"keyfile": str(self.keys.client_key), "known_hosts": str(self.keys.known_hosts),
                 **{k: str(v) for k, v in params.items()}}
        text = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{driver}+ssh://{USER}@127.0.0.1:{self.port}{path}?{text}"


@contextlib.contextmanager
def no_leftover_connections() -> Iterator[None]:
    """Fail when a test leaves remote peers open (a leaked SSH connection or helper)."""
    from virt_remote import _client

    yield
    deadline = time.monotonic() + 5
    while _client._pool and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _client._pool, f"remote connections left open: {list(_client._pool)}"


class Virtd:
    """``virtd`` on a private socket, started by hand (``python -m virt_remote._daemon``)."""

    def __init__(self, socket_path: Path, *extra: str) -> None:
        self.socket = socket_path
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Virtd:
        self.proc = subprocess.Popen([*die_with_parent(), sys.executable, "-m", "virt_remote._daemon", "--socket",
                                      str(self.socket), *self.extra], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(self.socket))
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("virtd did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def pid_of_socket_daemon(sock_path: str) -> int | None:
    """The pid of the daemon listening on ``sock_path`` (its command line names the socket)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"virt_remote._daemon" in cmdline and sock_path.encode() in cmdline:
            return int(entry)
    return None


class RawClient:
    """Speaks the protocol by hand on a unix socket, to send what a real client never would."""

    def __init__(self, path: str) -> None:
        from virt_remote._server import FrameReader

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.reader = FrameReader(self.sock.recv)
        self.ids = 0

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: list[Any]) -> None:
        from virt_remote import _wire

        self.sock.sendall(_wire.encode_frame(message))

    def recv(self) -> list[Any] | None:
        """The next message other than a keepalive; None when the server hung up."""
        from virt_remote import _wire

        while True:
            try:
                body = self.reader.read()
            except OSError:
                return None
            if body is None:
                return None
            message = _wire.check_message(_wire.from_wire(body))
            if message[0] not in ("ping", "pong"):
                return message

    def request(self, kind: str, *args: Any) -> list[Any] | None:
        self.ids += 1
        self.send([kind, self.ids, *args])
        return self.recv()

    def hello(self) -> None:
        answer = self.request("hello", {"version": 1, "features": []})
        assert answer is not None and answer[0] == "ok", answer

    def open(self, uri: str = "test:///default", readonly: bool = False) -> int:
        answer = self.request("open", {"uri": uri, "readonly": readonly})
        assert answer is not None and answer[0] == "ok", answer
        return int(answer[2]["session"])

    def close(self) -> None:
        self.sock.close()


DOMAIN_XML = ("<domain type='test'><name>{}</name><memory>131072</memory><os><type>hvm</type></os>{}"
              "</domain>")


def lookups_from_threads(conn: Any, prefix: str, started: Any = None) -> None:
    """8 domains looked up 100 times each from 16 threads at once (4 rounds of the 8): every
    answer reaches its own caller, whoever read it.  ``started()`` is called once the domains
    are defined, just before the threads start."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"{prefix}{i}" for i in range(8)]
    for name in names:
        conn.define_domain(DOMAIN_XML.format(name, ""))
    try:

        def lookups(name: str) -> list[str]:
            return [conn.lookup_domain(name).name for _ in range(100)]

        if started is not None:
            started()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lookups, names * 4))
        assert results == [[name] * 100 for name in names * 4]
    finally:
        for name in names:
            conn.lookup_domain(name).undefine()


@contextlib.contextmanager
def many_domains(conn: Any, prefix: str, count: int = 400) -> Iterator[list[str]]:
    """``count`` domains with long names (their list is an answer of several reads), removed
    after."""
    names = [f"{prefix}{i:03d}-" + "x" * 40 for i in range(count)]
    for name in names:
        conn.define_domain(DOMAIN_XML.format(name, ""))
    try:
        yield names
    finally:
        for name in names:
            conn.lookup_domain(name).undefine()


def defined_elsewhere(conn: Any, other_uri: str, name: str) -> bool:
    """Subscribe ``conn`` to domain events, define and undefine ``name`` through another
    connection (``other_uri``), and tell whether ``conn`` heard of the definition in 10 s."""
    import virt

    got = threading.Event()

    def callback(_c: Any, event: Any) -> None:
        if event.name == name and event.event == virt.DomainEventType.DEFINED:
            got.set()

    conn.subscribe(callback, virt.DomainEvent)
    with virt.open(other_uri) as other:
        other.define_domain(DOMAIN_XML.format(name, "")).undefine()
    return got.wait(10)


# The start of a far side written by hand (a script run as ``command=``): it reads and
# writes frames on stdin and stdout and answers the handshake (no hooks); what it does next
# follows it.
FAR_SIDE_GREETED = r"""
import struct, sys
from virt_remote import _wire

inp, out = sys.stdin.buffer, sys.stdout.buffer
def read():
    (n,) = struct.unpack(">I", inp.read(4))
    return _wire.from_wire(inp.read(n))
def write(message):
    out.write(_wire.encode_frame(message))
    out.flush()

hello = read()
write(["ok", hello[1], {"version": 1, "features": []}])
opening = read()
write(["ok", opening[1], {"session": 1, "hooks": [], "readonly": False}])
"""


def far_pid(conn: Any) -> int:
    """The pid of an ``ext`` connection's child, from its peer's description."""
    import re

    found = re.search(r"\(pid (\d+)\)", conn.driver.peer.description)
    assert found is not None, conn.driver.peer.description
    return int(found.group(1))


def lost_while_calling(conn: Any, kill: Any) -> None:
    """Call ``conn`` in a loop while ``kill()`` runs 0.3 s in: a clear error (the link lost),
    within 10 s."""
    import pytest
    import virt

    threading.Timer(0.3, kill).start()
    start = time.monotonic()
    with pytest.raises(virt.VirtError) as caught:
        while time.monotonic() - start < 10:
            conn.lookup_domain("test")
    assert caught.value.code == virt.ErrorNumber.SYSTEM_ERROR
    assert "lost" in str(caught.value)
