"""One background asyncio loop per process, for asyncssh (the pattern of virt_qemu's loop)."""

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
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(ready.set)
                new.run_forever()

            threading.Thread(target=serve, name="virt-remote-loop", daemon=True).start()
            ready.wait()
            _loop, _pid = new, os.getpid()
        return _loop


def run(coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """Run ``coro`` on the background loop and wait for its result (re-raising its error)."""
    loop = get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("virt_remote: a synchronous call was made from the remote loop's own thread")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
