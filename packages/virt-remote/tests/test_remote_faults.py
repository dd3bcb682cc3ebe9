"""Faults: the far side killed mid-call, sshd stopped, the helper stalled (SIGSTOP).  The
client gets a clear error within the keepalive bound (interval x count), never hangs, and
the next open works."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import virt
from remote_testlib import DOMAIN_XML, FAR_SIDE_GREETED, HELPER, Keys, Sshd, Virtd, descendants, far_pid, helper_pids
from virt import ErrorNumber, VirtError
from virt_remote import _wire, _writer
from virt_remote._daemon import Daemon
from virt_remote._server import Service


@pytest.fixture
def own_sshd(keys: Keys) -> Iterator[Sshd]:
    server = Sshd(keys).start()
    try:
        yield server
    finally:
        server.stop()


def _helper_of(sshd: Sshd) -> int:
    assert sshd.proc is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [pid for pid in descendants(sshd.proc.pid) if pid in helper_pids()]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no helper runs under this sshd")


def _stop(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until the kernel reports it stopped."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "T":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


def _fails_within(call: object, bound: float) -> VirtError:
    start = time.monotonic()
    with pytest.raises(VirtError) as info:
        call()  # type: ignore[operator]
    elapsed = time.monotonic() - start
    assert elapsed < bound, f"the error took {elapsed:.1f}s, over the bound of {bound}s"
    return info.value


def test_stalled_helper_is_noticed_within_the_keepalive_bound(own_sshd: Sshd) -> None:
    conn = virt.open(own_sshd.uri(keepalive_interval=0.5, keepalive_count=3))
    dom = conn.lookup_domain("test")
    helper = _helper_of(own_sshd)
    _stop(helper)
    try:
        error = _fails_within(dom.info, 0.5 * 3 + 1.5)
        assert error.code == ErrorNumber.SYSTEM_ERROR
        assert "keepalive" in error.message
        error = _fails_within(dom.info, 0.5)  # and at once afterwards
    finally:
        os.kill(helper, signal.SIGKILL)  # SIGKILL ends a stopped process too
    conn.close()
    with virt.open(own_sshd.uri()) as again:
        assert again.lookup_domain("test").name == "test"


def test_helper_killed_mid_call(own_sshd: Sshd) -> None:
    conn = virt.open(own_sshd.uri(keepalive_interval=30))
    dom = conn.lookup_domain("test")
    helper = _helper_of(own_sshd)
    _stop(helper)  # so that the call is surely in flight when it dies
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            dom.info()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    assert not outcome, "the call should be waiting for the stopped helper"
    start = time.monotonic()
    os.kill(helper, signal.SIGKILL)
    thread.join(10)
    assert not thread.is_alive(), "the call hangs after the far side died"
    assert time.monotonic() - start < 5, "not noticed at once (keepalive is 30 s here)"
    error = outcome[0]
    assert isinstance(error, VirtError) and error.code == ErrorNumber.SYSTEM_ERROR
    assert "lost" in error.message
    conn.close()
    with virt.open(own_sshd.uri()) as again:
        assert again.type() == "TEST"


def test_sshd_stopped(keys: Keys) -> None:
    server = Sshd(keys).start()
    port = server.port
    conn = virt.open(server.uri(keepalive_interval=0.5, keepalive_count=3))
    dom = conn.lookup_domain("test")
    server.stop()  # the listener and its session processes, with the helper
    error = _fails_within(dom.info, 0.5 * 3 + 1.5)
    assert error.code == ErrorNumber.SYSTEM_ERROR
    error = _fails_within(lambda: virt.open(server.uri()), 5)
    assert error.code == ErrorNumber.SYSTEM_ERROR and "Connection refused" in error.message
    conn.close()
    again = Sshd(keys, port).start()
    try:
        with virt.open(again.uri()) as conn2:
            assert conn2.lookup_domain("test").name == "test"
    finally:
        again.stop()


def test_daemon_killed_and_restarted(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "sock"
    daemon = Virtd(path).start()
    uri = f"test+unix:///default?socket={path}&keepalive_interval=0.5&keepalive_count=3"
    conn = virt.open(uri)
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait()
    error = _fails_within(conn.type, 3)
    assert error.code == ErrorNumber.SYSTEM_ERROR
    conn.close()
    daemon = Virtd(path).start()  # a stale socket file is replaced
    try:
        with virt.open(uri) as again:
            assert again.type() == "TEST"
    finally:
        daemon.stop()


def test_closing_every_connection_ends_the_helper(own_sshd: Sshd) -> None:
    conn = virt.open(own_sshd.uri())
    helper = _helper_of(own_sshd)
    second = virt.open(own_sshd.uri())
    assert _helper_of(own_sshd) == helper, "two connections to one host share one SSH connection and helper"
    conn.close()
    assert second.type() == "TEST"
    second.close()
    deadline = time.monotonic() + 10
    while helper in helper_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert helper not in helper_pids(), "the helper outlived its last connection"


def test_helper_drops_a_stalled_client(own_sshd: Sshd) -> None:
    """The keepalive works both ways: the helper ends when its client stops answering."""
    import subprocess
    import sys

    uri = own_sshd.uri(keepalive_interval=0.5, keepalive_count=3)
    script = f"import sys, time, virt\nc = virt.open({uri!r})\nprint('ready', flush=True)\ntime.sleep(120)\n"
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        helper = _helper_of(own_sshd)
        os.kill(client.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 0.5 * 3 + 5
        while helper in helper_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert helper not in helper_pids(), "the helper still runs for a client that stopped answering"
    finally:
        client.kill()  # SIGKILL ends a stopped process too
        client.wait(10)
        if client.stdout is not None:
            client.stdout.close()


def test_stalled_helper_over_openssh_client(own_sshd: Sshd) -> None:
    conn = virt.open(own_sshd.uri(client="openssh", keepalive_interval=0.5, keepalive_count=3))
    dom = conn.lookup_domain("test")
    helper = _helper_of(own_sshd)
    _stop(helper)
    try:
        error = _fails_within(dom.info, 0.5 * 3 + 1.5)
        assert error.code == ErrorNumber.SYSTEM_ERROR and "keepalive" in error.message
    finally:
        os.kill(helper, signal.SIGKILL)
    conn.close()
    with virt.open(own_sshd.uri(client="openssh")) as again:
        assert again.type() == "TEST"


#: a call bigger than every buffer on its way (pipes, sockets, the SSH channel's window)
BIG_DOMAIN = ("<domain type='test'><name>big</name><description>" + "x" * (8 << 20)
              + "</description><memory>1024</memory><os><type>hvm</type></os></domain>")


@pytest.mark.parametrize("transport", ["ssh", "openssh", "ext", "unix"])
def test_a_far_side_stalled_during_a_big_call_is_noticed_within_the_keepalive_bound(
        transport: str, own_sshd: Sshd, tmp_path: Path) -> None:
    """The far side stops while a call of 8 MiB is on its way: the caller waits in its write,
    and the keepalive's pings queue behind it or wait for room, yet the keepalive notices
    within interval x count.  Before, over SSH, a ping waited for a window the stalled far
    side never opened again, and the call hung for ever; over pipes the caller's error waited
    2 s more, for a clean exit of the helper."""
    keepalive = "keepalive_interval=0.5&keepalive_count=3"
    daemon = None
    if transport == "unix":
        daemon = Virtd(tmp_path / "sock").start()
        conn = virt.open(f"test+unix:///default?socket={tmp_path / 'sock'}&{keepalive}")
        assert daemon.proc is not None
        far = daemon.proc.pid
    elif transport == "ext":
        conn = virt.open(f"test+ext:///default?command={HELPER}&{keepalive}")
        far = far_pid(conn)
    else:
        client = "openssh" if transport == "openssh" else "asyncssh"
        conn = virt.open(own_sshd.uri(client=client, keepalive_interval=0.5, keepalive_count=3))
        far = _helper_of(own_sshd)
    try:
        conn.lookup_domain("test")
        _stop(far)
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                conn.define_domain(BIG_DOMAIN)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        start = time.monotonic()
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(0.5 * 3 + 10)
        assert not caller.is_alive(), "the call hangs: the keepalive did not notice the stalled far side"
        elapsed = time.monotonic() - start
        assert elapsed < 0.5 * 3 + 1.5, f"the error took {elapsed:.1f}s, over the bound"
        error = outcome[0]
        assert isinstance(error, VirtError) and error.code == ErrorNumber.SYSTEM_ERROR
        assert "keepalive" in error.message
    finally:
        try:
            os.kill(far, signal.SIGKILL)
        except ProcessLookupError:
            pass
        conn.close()
        if daemon is not None:
            daemon.stop()


def test_the_far_side_drops_a_client_that_stopped_reading_with_its_buffer_full() -> None:
    """The keepalive works both ways whatever the buffers: a client that stopped reading while
    the far side's send buffer is full is dropped within interval x count.  The ping that
    cannot leave goes to the writer thread; before, the pinger itself waited in the write, for
    ever, and the far side served the stalled client as long as it lived."""
    ours, theirs = socket.socketpair()
    try:
        for size in (65536, 4096, 256, 16, 1):  # full, as a client that stopped reading leaves it
            while True:
                try:
                    theirs.send(b"\0" * size, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
        service = Service(theirs.recv, theirs.sendall, keepalive_interval=0.3, keepalive_count=3, name="stalled",
                          fileno=theirs.fileno(), send_fileno=theirs.fileno())
        server = threading.Thread(target=service.serve, daemon=True)
        start = time.monotonic()
        server.start()
        server.join(0.3 * 3 + 10)
        assert not server.is_alive(), "the far side still serves a client that stopped reading"
        # the bound, and the 2 s its end gives a write under way to finish
        assert time.monotonic() - start < 0.3 * 3 + 2 + 1.5
    finally:
        ours.close()  # ends the writer thread's write (and the serving thread's wait, if any)
        theirs.close()


def _by_hand(sock: socket.socket, message: list[object]) -> object:
    """Send one request of the protocol on ``sock`` and read its answer."""
    sock.sendall(_wire.encode_frame(message))
    head = sock.recv(4, socket.MSG_WAITALL)
    body = sock.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
    answer = _wire.from_wire(body)
    assert answer[0] == "ok", answer
    return answer[2]


def test_a_client_that_stopped_reading_does_not_hold_up_the_daemons_other_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver's events reach every subscriber from the thread that emits them, which serves
    the call that caused them.  Before, once the socket of a subscribed client that stopped
    reading was full (139 domains in), that thread waited in its write, and every other client
    of the shared daemon with it: until the keepalive dropped the stalled client, or for ever
    without one.  Now its events wait in its writer; past the writer's bound, it is dropped."""
    monkeypatch.setattr(_writer, "QUEUE_MAX", 64 * 1024)
    path = str(tmp_path / "virtd.sock")
    daemon = Daemon(path, keepalive_interval=0)
    daemon.start()
    threading.Thread(target=daemon.serve_forever, daemon=True).start()
    stalled = socket.socket(socket.AF_UNIX)
    conn: virt.Connection | None = None
    try:
        stalled.connect(path)
        _by_hand(stalled, ["hello", 1, {"version": 1, "features": ["events"]}])
        session = _by_hand(stalled, ["open", 2, {"uri": "test:///default", "readonly": False}])
        _by_hand(stalled, ["sub", 3, session["session"], "virt_event_domain"])  # type: ignore[index]
        # ... and it reads nothing more
        conn = virt.open(f"test+unix:///default?socket={path}&keepalive_interval=0")
        deadline = time.monotonic() + 60
        for i in range(5000):
            done = threading.Event()

            def define_and_undefine(name: str = f"stall-{i}", done: threading.Event = done) -> None:
                conn.define_domain(DOMAIN_XML.format(name, "")).undefine()  # type: ignore[union-attr]
                done.set()

            threading.Thread(target=define_and_undefine, daemon=True).start()
            if not done.wait(10):
                pytest.fail(f"a call of another client hangs ({i} domains in)")
            if daemon.clients == 1 or time.monotonic() > deadline:
                break
        while daemon.clients > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.clients == 1, "the client that stopped reading was never dropped"
        assert conn.lookup_domain("test").name == "test"
        stalled.settimeout(10)
        while stalled.recv(1 << 20):  # what reached its socket, then the end
            pass
    finally:
        stalled.close()  # first: it releases a daemon thread blocked writing to it
        if conn is not None:
            conn.close()
        daemon.stop()


# A far side that answers the handshake, then floods us with pings (each owes a pong that
# carries its payload back) and never reads again.
NEVER_READING_FAR_SIDE = FAR_SIDE_GREETED + r"""
ping = _wire.encode_frame(["ping", "p" * 4000])
try:
    while True:
        out.write(ping * 16)
        out.flush()
except (BrokenPipeError, ConnectionResetError):
    pass
"""


@pytest.mark.parametrize("transport", ["ext", "ssh"])
def test_a_far_side_that_floods_pings_and_never_reads_is_dropped_at_the_bound(
    transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sshd: Sshd
) -> None:
    """Pongs that cannot leave wait (in the writer's queue, or asyncssh's buffer over SSH):
    past the writers' bound the far side is dropped with a clear error, instead of the pongs
    taking all memory.  Keepalive is off: only the bound can notice."""
    monkeypatch.setattr(_writer, "QUEUE_MAX", 256 * 1024)
    script = tmp_path / "never-reads"
    script.write_text(f"#!{sys.executable}\n" + NEVER_READING_FAR_SIDE)
    script.chmod(0o755)
    if transport == "ext":
        uri = f"test+ext:///default?command={script}&keepalive_interval=0"
    else:
        uri = sshd.uri(command=str(script), keepalive_interval=0)
    with virt.open(uri) as conn:
        peer = conn.driver.peer  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while peer.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if peer.lost is None:
            peer.fail(VirtError(ErrorNumber.SYSTEM_ERROR, "ended by the test"))  # else closing waits for it
            pytest.fail("still connected to a far side that reads nothing")
        with pytest.raises(VirtError) as caught:
            peer.request("close", 1)  # any request: the far side offers no hook
        assert caught.value.code == ErrorNumber.SYSTEM_ERROR
        assert "was lost: the far side stopped reading" in str(caught.value)
