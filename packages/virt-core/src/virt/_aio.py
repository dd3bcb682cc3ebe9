"""One background asyncio loop per process, shared by every driver and plugin that needs one
(the QEMU driver's QMP connections and exit watchers, the remote plugin's SSH channels).

The public API is synchronous, like libvirt-python's.  A call that needs QMP submits a coroutine
to this loop and waits for its result; QMP events and process exits are handled on the loop's
thread, which is also where subscribers' callbacks run (as libvirt runs them in its event loop).
The thread is a daemon: it never keeps a program alive, and guests do not depend on it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["get_loop", "run"]

_T = TypeVar("_T")
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0
_guard = threading.Lock()


def get_loop() -> asyncio.AbstractEventLoop:
    """The process's loop, started on first use (and again in a forked child)."""
    global _loop, _pid
    loop = _loop
    if loop is not None and _pid == os.getpid():
        return loop
    with _guard:
        if _loop is None or _pid != os.getpid():
            new = asyncio.new_event_loop()
            new.set_exception_handler(_quiet)
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(ready.set)
                new.run_forever()

            threading.Thread(target=serve, name="virt-loop", daemon=True).start()
            ready.wait()
            _loop, _pid = new, os.getpid()
        return _loop


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A monitor whose QEMU exited ends with EOF inside qemu.qmp's own tasks; that is how a
    guest goes away, not an error to print.  Anything else goes to asyncio's default."""
    if isinstance(context.get("exception"), EOFError | ConnectionResetError | BrokenPipeError):
        return
    loop.default_exception_handler(context)


def run(coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """Run ``coro`` on the background loop and wait for its result (re-raising its error)."""
    loop = get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("virt: a synchronous call was made from the background loop's own thread")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
