"""What the remote connection adds to the generic proxy: batched listing in one round trip,
events from another process through the daemon, bytes and large chunks, threads sharing one
connection, and hooks the far side does not implement."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import virt
from remote_testlib import HELPER, Sshd
from virt import DomainEvent, DomainEventType, ErrorNumber, VirtError

XML = "<domain type='test'><name>{0}</name><memory>131072</memory><os><type>hvm</type></os></domain>"


def test_list_domains_info_is_one_round_trip(sshd: Sshd) -> None:
    with virt.open(sshd.uri()) as conn:
        made = [conn.define_domain(XML.format(f"batch-{i}")) for i in range(50)]
        try:
            peer = conn.driver.peer  # type: ignore[attr-defined]
            before = peer.requests
            listed = conn.list_domains_info()
            assert peer.requests - before == 1
            by_name = {d.name: info for d, info in listed}
            assert all(f"batch-{i}" in by_name for i in range(50))
            assert by_name["test"].state == virt.DomainState.RUNNING
            assert [d.name for d, _ in conn.list_domains_info(active=True)] == ["test"]
        finally:
            for dom in made:
                dom.undefine()


def test_list_domains_info_locally_matches() -> None:
    with virt.open("test:///default") as conn:
        listed = conn.list_domains_info()
        assert [(d.name, info.state, info.memory) for d, info in listed] == [
            (d.name, d.info().state, d.info().memory) for d in conn.list_domains()]


def test_threads_share_one_connection(sshd: Sshd) -> None:
    with virt.open(sshd.uri()) as conn:
        names = [f"thread-{i}" for i in range(40)]
        with ThreadPoolExecutor(16) as pool:
            doms = list(pool.map(lambda n: conn.define_domain(XML.format(n)), names))
            assert sorted(d.name for d in pool.map(lambda n: conn.lookup_domain(n), names)) == sorted(names)
            list(pool.map(lambda d: d.undefine(), doms))
        assert not any(d.name.startswith("thread-") for d in conn.list_domains())


def test_errors_keep_code_domain_and_message(sshd: Sshd) -> None:
    with virt.open(sshd.uri()) as remote, virt.open("test:///default") as local:
        for call in (lambda c: c.lookup_domain("nope"), lambda c: c.lookup_domain("test").start(),
                     lambda c: c.define_domain("<domain")):
            with pytest.raises(VirtError) as far:
                call(remote)
            with pytest.raises(VirtError) as near:
                call(local)
            assert (far.value.code, far.value.domain, far.value.message) == (
                near.value.code, near.value.domain, near.value.message)


def test_unimplemented_hook_is_no_support_naming_libvirt(sshd: Sshd) -> None:
    with virt.open(sshd.uri()) as conn:
        assert not conn.supports("virt_domain_open_console")  # the test driver has no consoles
        with pytest.raises(VirtError) as info:
            conn.lookup_domain("test").console_path()
        assert info.value.code == ErrorNumber.NO_SUPPORT
        assert info.value.message.endswith("virDomainOpenConsole")


def test_uri_and_identity(sshd: Sshd) -> None:
    uri = sshd.uri()
    with virt.open(uri) as conn:
        assert conn.uri == uri
        assert conn.type() == "TEST"
        assert conn.is_secure() and conn.is_encrypted()
        assert conn.driver.far_uri == "test:///default"  # type: ignore[attr-defined]


def test_events_cross_processes_through_the_daemon(virtd_socket: str) -> None:
    uri = f"test+unix:///default?socket={virtd_socket}"
    with virt.open(uri) as watcher, virt.open(f"test+ext:///default?command={HELPER}") as _other:
        seen: list[DomainEvent] = []
        got = threading.Event()

        def callback(conn: virt.Connection, event: DomainEvent) -> None:
            seen.append(event)
            if event.event == DomainEventType.UNDEFINED:
                got.set()

        watcher.subscribe(callback, DomainEvent)
        # A second process shares the daemon's driver: its changes reach our subscriber.
        import subprocess
        import sys

        script = (f"import virt\nc = virt.open({uri!r})\nd = c.define_domain({XML.format('from-afar')!r})\n"
                  "d.start()\nd.destroy()\nd.undefine()\nc.close()\n")
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert got.wait(10), f"events seen: {seen}"
        mine = [e.event for e in seen if e.name == "from-afar"]
        assert mine == [DomainEventType.DEFINED, DomainEventType.STARTED, DomainEventType.STOPPED,
                        DomainEventType.UNDEFINED]


def test_callback_may_call_the_api(sshd: Sshd) -> None:
    with virt.open(sshd.uri()) as conn:
        states: list[virt.DomainState] = []
        done = threading.Event()

        def callback(c: virt.Connection, event: DomainEvent) -> None:
            if event.name == "reentrant":
                states.append(c.lookup_domain_by_uuid(event.uuid).state()[0])
                done.set()

        conn.subscribe(callback, DomainEvent)
        dom = conn.define_domain(XML.format("reentrant"))
        assert done.wait(10)
        assert states == [virt.DomainState.SHUTOFF]
        dom.undefine()


def test_unix_daemon_is_started_on_demand(tmp_path: object) -> None:
    from pathlib import Path

    from remote_testlib import pid_of_socket_daemon

    path = Path(str(tmp_path)) / "run" / "virtd-sock"
    assert not path.exists()
    start = time.monotonic()
    try:
        with virt.open(f"test+unix:///default?socket={path}") as conn:
            assert conn.type() == "TEST"
            assert path.exists()
            with virt.open(f"test+unix:///default?socket={path}", readonly=True) as ro:
                assert ro.lookup_domain("test").name == "test"
        assert time.monotonic() - start < 30
    finally:
        pid = pid_of_socket_daemon(str(path))
        if pid is not None:
            import os
            import signal

            os.kill(pid, signal.SIGTERM)


def test_session_socket_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import virt_remote_helper

    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    assert virt_remote_helper.session_socket() == "/run/user/1234/virt/virtd-sock"
    assert virt_remote_helper.system_socket() == "/run/virt/virtd-sock"


def test_system_socket_is_not_autostarted(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import virt_remote_helper

    monkeypatch.setattr(virt_remote_helper, "SYSTEM_SOCKET", f"{tmp_path}/none/virtd-sock")
    with pytest.raises(VirtError) as info:
        virt.open("test+unix:///system")
    assert info.value.code == ErrorNumber.SYSTEM_ERROR
    assert "Failed to connect socket" in info.value.message


def test_tls_transport_is_refused_clearly() -> None:
    with pytest.raises(VirtError) as info:
        virt.open("test://somehost/default")
    assert info.value.code == ErrorNumber.NO_CONNECT and "tls" in info.value.message


def test_ssh_relay_mode_shares_the_far_daemon(sshd: Sshd, virtd_socket: str) -> None:
    """``mode=daemon``: the helper only relays to the far side's virtd, so an SSH client and a
    local client of that daemon see one driver."""
    with virt.open(sshd.uri(mode="daemon", socket=virtd_socket)) as far, \
            virt.open(f"test+unix:///default?socket={virtd_socket}") as near:
        dom = far.define_domain(XML.format("relayed"))
        try:
            assert near.lookup_domain("relayed").uuid == dom.uuid
        finally:
            dom.undefine()


def test_ssh_relay_mode_starts_the_far_daemon(sshd: Sshd, tmp_path: object) -> None:
    import os
    import signal
    from pathlib import Path

    from remote_testlib import pid_of_socket_daemon

    path = Path(str(tmp_path)) / "far" / "virtd-sock"
    try:
        with virt.open(sshd.uri(mode="daemon", socket=path)) as conn:
            assert conn.type() == "TEST"
        assert path.exists()
    finally:
        pid = pid_of_socket_daemon(str(path))
        if pid is not None:
            os.kill(pid, signal.SIGTERM)


def test_session_uri_starts_the_session_daemon(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """``driver+unix:///session``: the user's daemon under $XDG_RUNTIME_DIR, started on demand
    (root's as anyone's); ``name=`` says what it opens."""
    import os
    import signal
    from pathlib import Path

    from remote_testlib import pid_of_socket_daemon

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = Path(str(tmp_path)) / "virt" / "virtd-sock"
    try:
        with virt.open("test+unix:///session?name=test:///default") as conn:
            assert conn.type() == "TEST"
            assert conn.driver.far_uri == "test:///default"  # type: ignore[attr-defined]
        assert path.exists()
    finally:
        pid = pid_of_socket_daemon(str(path))
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
