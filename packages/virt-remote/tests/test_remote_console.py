"""Consoles over the wire: ``Domain.open_console()`` gives a stream whether the domain is here
(its pty) or on the far side (the server relays its pty as a stream of the protocol, with a
send window).  The far side here is the in-process asyncssh server, whose helper runs in this
process, so a tiny driver registered here serves a real pty."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import virt
from remote_testlib import InProcessServer
from virt import ErrorNumber, VirtError
from virt._plugins import register_plugin
from virt.plugin import DriverSpec, OpenRequest, hookimpl
from virt.testing import isolated_plugins

UUID = "11111111-2222-3333-4444-555555555555"


class PtyDriver:
    """Domains whose console is a pty whose other end the test holds."""

    ptys: dict[str, tuple[int, str]] = {}

    def __init__(self, request: OpenRequest) -> None:
        self.request = request

    @hookimpl
    def virt_connect_get_type(self) -> str:
        return "PTYTEST"

    @hookimpl
    def virt_domain_open_console(self, uuid: str, dev_name: str | None, flags: int) -> str:
        if uuid not in self.ptys:
            raise VirtError(ErrorNumber.NO_DOMAIN, f"no domain with matching uuid '{uuid}'")
        return self.ptys[uuid][1]


class Registration:
    @hookimpl
    def virt_register_drivers(self) -> Iterable[DriverSpec]:
        return [DriverSpec(scheme="ptytest", open=PtyDriver)]


@pytest.fixture
def pty() -> Iterator[int]:
    master, slave = os.openpty()
    PtyDriver.ptys[UUID] = (master, os.ttyname(slave))
    try:
        yield master
    finally:
        PtyDriver.ptys.pop(UUID, None)
        os.close(master)
        os.close(slave)


@pytest.fixture
def plugins() -> Iterator[None]:
    with isolated_plugins():
        register_plugin(Registration(), name="ptytest")
        yield


def _read_exactly(stream: Any, count: int, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count and time.monotonic() < deadline:
        data += stream.read(count - len(data), timeout=0.5)
    return data


def _master_read(fd: int, count: int, timeout: float = 10.0) -> bytes:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            data += os.read(fd, count - len(data))
    return data


def test_local_console_is_the_pty(plugins: None, pty: int) -> None:
    with virt.open("ptytest:///x") as conn:
        dom = virt.Domain(conn, "d", UUID)
        with dom.open_console() as stream:
            os.write(pty, b"hello from the guest")
            assert _read_exactly(stream, 20) == b"hello from the guest"
            stream.write(b"typed")
            assert _master_read(pty, 5) == b"typed"


def test_remote_console_is_a_stream(plugins: None, pty: int, asyncssh_server: InProcessServer) -> None:
    with virt.open(asyncssh_server.uri("ptytest", "/x")) as conn:
        assert conn.type() == "PTYTEST"
        dom = virt.Domain(conn, "d", UUID)
        stream = dom.open_console()
        try:
            os.write(pty, b"login: ")
            assert _read_exactly(stream, 7) == b"login: "
            stream.write(b"root\n")
            assert _master_read(pty, 5) == b"root\n"
            # Much more than the window, in order; the reader paces the far side.
            blob = bytes(range(256)) * 2048  # 512 KiB
            import threading

            writer = threading.Thread(target=lambda: os.write(pty, blob) and None)
            os.set_blocking(pty, True)
            writer.start()
            time.sleep(0.5)
            buffered = len(stream._buf)  # type: ignore[attr-defined]
            assert buffered <= 256 * 1024 + 65536, f"{buffered} bytes buffered: the window does not hold"
            got = _read_exactly(stream, len(blob), timeout=30)
            writer.join(10)
            assert got == blob
        finally:
            stream.close()


def test_remote_console_errors(plugins: None, asyncssh_server: InProcessServer) -> None:
    with virt.open(asyncssh_server.uri("ptytest", "/x")) as conn:
        assert conn.supports("virt_domain_open_console")
        with pytest.raises(VirtError) as info:
            virt.Domain(conn, "d", UUID).console_path()  # a far side's pty path means nothing here
        assert info.value.code == ErrorNumber.OPERATION_UNSUPPORTED and "open_console()" in info.value.message
        with pytest.raises(VirtError) as info:
            virt.Domain(conn, "d", "99999999-2222-3333-4444-555555555555").open_console()
        assert info.value.code == ErrorNumber.NO_DOMAIN
    with virt.open(asyncssh_server.uri("ptytest", "/x"), readonly=True) as ro:
        with pytest.raises(VirtError) as info:
            virt.Domain(ro, "d", UUID).open_console()
        assert info.value.code == ErrorNumber.OPERATION_DENIED


def test_cli_console_relays_a_remote_stream(plugins: None, pty: int, asyncssh_server: InProcessServer) -> None:
    """``virt console`` over a remote URI: the terminal's keys reach the guest, its output the
    terminal, and ^] ends the session (virt.cli.commands.console.relay_stream)."""
    import threading
    import tty

    from virt.cli.commands.console import relay_stream

    term_master, term_slave = os.openpty()
    tty.setraw(term_slave)  # what relay_stream does too; before the first key, not racing it
    with virt.open(asyncssh_server.uri("ptytest", "/x")) as conn:
        dom = virt.Domain(conn, "d", UUID)
        stream = dom.open_console()
        session = threading.Thread(target=relay_stream, args=(stream, dom, term_slave, term_slave))
        session.start()
        try:
            os.write(term_master, b"ls\r")
            assert _master_read(pty, 3) == b"ls\r"
            os.write(pty, b"bin etc\r\n")
            assert _master_read(term_master, 9) == b"bin etc\r\n"
            os.write(term_master, b"\x1d")  # ^]
            session.join(10)
            assert not session.is_alive(), "^] did not end the console session"
        finally:
            os.close(term_master)
            os.close(term_slave)


def test_output_waiting_before_the_open_is_not_lost(plugins: None, pty: int,
                                                    asyncssh_server: InProcessServer) -> None:
    """What the guest wrote before the console was opened (a booting kernel's log) reaches the
    client: the far side starts relaying only once the answer naming the stream is queued, and
    the client keeps what arrives with that answer until the stream is registered (both can
    come in one read, handled before the calling thread runs again)."""
    os.write(pty, b"early bird\n")
    with virt.open(asyncssh_server.uri("ptytest", "/x")) as conn, virt.Domain(conn, "d", UUID).open_console() as s:
        assert _read_exactly(s, 11) == b"early bird\n"


def test_a_closed_console_reads_nothing_more(plugins: None, pty: int, asyncssh_server: InProcessServer) -> None:
    """After a console stream is closed, its relay on the far side reads nothing more from the
    pty: what the guest writes next reaches the console opened after it (a relay blocked in a
    read would have eaten it)."""
    with virt.open(asyncssh_server.uri("ptytest", "/x")) as conn:
        dom = virt.Domain(conn, "d", UUID)
        for turn in range(3):
            with dom.open_console() as first:
                os.write(pty, b"one\n")
                assert _read_exactly(first, 4) == b"one\n"
            time.sleep(0.2)  # the far side handles the close
            os.write(pty, f"two{turn}\n".encode())
            with dom.open_console() as second:
                assert _read_exactly(second, 5) == f"two{turn}\n".encode()
