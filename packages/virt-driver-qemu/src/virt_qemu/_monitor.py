"""QMP through ``qemu.qmp``: short command sessions, and the long-lived event watcher.

Each running guest has two QMP monitors, both unix sockets created by the driver before QEMU
starts (so connecting never waits for a socket file to appear):

* the **command monitor** (``UUID8.mon``): any process opens a session, runs its commands under
  the domain's lock, and closes it, so processes take turns;
* the **event monitor** (``UUID8.evt``): one process at a time holds it and turns QMP events
  (``SHUTDOWN``, ``STOP``, ``RESUME``, ``GUEST_PANICKED``) into status changes and lifecycle
  events.  QEMU accepts one client per monitor; another process's connection waits in the
  socket's backlog and takes over when the holder goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError, Runstate
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._state_files import short_socket_path

__all__ = ["WAIT_RUNSTATE_LEAVES", "MonitorGone", "command", "session", "watch"]

#: A pseudo-command a handler may return: wait until QEMU's run state is no longer
#: ``args["status"]`` (``system_reset`` is only a request; ``cont`` fails until it is done).
WAIT_RUNSTATE_LEAVES = "virt-wait-runstate-leaves"

# qemu.qmp logs every disconnect at warning level; the driver reports what matters itself.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class MonitorGone(Exception):
    """The QEMU behind a monitor went away (exited, or never got as far as the greeting)."""


def _qmp_error(cmd: str, exc: ExecuteError) -> VirtError:
    desc = getattr(exc.error, "desc", None) or str(exc)
    return VirtError(ErrorNumber.INTERNAL_ERROR, f"unable to execute QEMU command '{cmd}': {desc}",
                     domain=ErrorDomain.QEMU)


class Session:
    """A connected QMP client whose failures are ``VirtError``/``MonitorGone``."""

    def __init__(self, client: QMPClient) -> None:
        self.client = client

    async def execute(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        try:
            return await self.client.execute(cmd, args)
        except ExecuteError as exc:
            raise _qmp_error(cmd, exc) from None
        except (QMPError, OSError, EOFError) as exc:
            raise MonitorGone(str(exc)) from None

    def send_fd(self, fd: int) -> None:
        self.client.send_fd_scm(fd)


async def _connect(path: Path, name: str, timeout: float | None) -> QMPClient:
    client = QMPClient(name)
    try:
        await asyncio.wait_for(client.connect(short_socket_path(path)), timeout)
    except (TimeoutError, ConnectError, QMPError, OSError, EOFError) as exc:
        with contextlib.suppress(Exception):
            await client.disconnect()
        raise MonitorGone(str(exc)) from None
    return client


@contextlib.asynccontextmanager
async def session(path: Path, timeout: float | None = 30.0) -> AsyncIterator[Session]:
    """A command session on the monitor at ``path`` (connect, negotiate, ..., disconnect)."""
    client = await _connect(path, "virt", timeout)
    try:
        yield Session(client)
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


async def command(path: Path, cmd: str, args: dict[str, Any] | None = None) -> Any:
    async with session(path) as qmp:
        return await qmp.execute(cmd, args)


async def watch(path: Path, pidfd: int,
                on_event: Callable[[str, dict[str, Any], Callable[[], dict[str, Any] | None]], Any],
                on_exit: Callable[[], Any]) -> None:
    """Hold the event monitor at ``path`` until the QEMU behind ``pidfd`` exits.

    ``on_event(name, data, query_status)`` runs in a worker thread (it may take the domain's
    lock; ``query_status()`` asks QEMU its run state now, as events may be stale by the time
    the lock is free) and returns QMP commands to send back on this monitor (the fake reboot);
    ``on_exit()`` runs once QEMU
    has exited, after every event it sent has been handled.
    """
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(pidfd, exited.set)
    client: QMPClient | None = None
    busy = False

    async def pump() -> None:
        nonlocal client, busy
        try:
            client = await _connect(path, "virt-events", None)
        except MonitorGone:
            return
        async for event in client.events:
            busy = True
            name = str(event.get("event", ""))
            raw = event.get("data")
            data: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
            replies = await loop.run_in_executor(None, on_event, name, data, query_status)
            for cmd, args in replies or ():
                with contextlib.suppress(ExecuteError, QMPError, OSError, EOFError):
                    if cmd == WAIT_RUNSTATE_LEAVES:
                        await _wait_runstate_leaves(client, str((args or {})["status"]))
                    else:
                        await client.execute(cmd, args)
            busy = False

    def query_status() -> dict[str, Any] | None:
        """QEMU's run state now (called from the handler's thread, under the domain lock)."""
        if client is None:
            return None
        try:
            result = asyncio.run_coroutine_threadsafe(client.execute("query-status"), loop).result(5)
        except Exception:  # noqa: BLE001 - QEMU gone or the monitor closed: no answer
            return None
        return dict(result) if isinstance(result, dict) else None

    async def drain() -> None:
        # the reader sees EOF once it has queued everything QEMU wrote before exiting
        while client is not None and client.runstate == Runstate.RUNNING:
            await asyncio.sleep(0.002)
        while client is not None and (busy or not client.events.empty()):
            await asyncio.sleep(0.002)

    task = asyncio.ensure_future(pump())
    try:
        await exited.wait()
        # QEMU is gone: let the events it sent before exiting be handled, then stop.
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(drain(), 0.5)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
    await loop.run_in_executor(None, on_exit)


async def _wait_runstate_leaves(client: QMPClient, status: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        now = await client.execute("query-status")
        if not isinstance(now, dict) or now.get("status") != status:
            return
        await asyncio.sleep(0.002)
