"""An asyncio twin of :class:`virt.Connection`, for embedding in event loops.

::

    import asyncio
    from virt_remote import aio

    async def main() -> None:
        async with await aio.open("test+ssh://root@host/default") as conn:
            names = ["a", "b", "c"]
            domains = await asyncio.gather(*(conn.lookup_domain(n) for n in names))
            infos = await conn.list_domains_info()

On a remote connection each call is one request on the connection's channel, its answer
awaited in the caller's loop: a thousand calls gathered at once leave in a few writes and
cost no thread each.  On a local connection the twin runs the synchronous call in the loop's
default executor, so the same code works for every URI.

Handles (:class:`virt.Domain`...) are the synchronous API's: the twin returns them, and
``await conn.call(hook, **kwargs)`` reaches any hook of the contract by name.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import virt
from virt import _plugins

__all__ = ["AsyncConnection", "open"]


class AsyncConnection:
    """The asyncio twin of one open :class:`virt.Connection` (see the module)."""

    def __init__(self, conn: virt.Connection) -> None:
        self.sync = conn
        driver = conn.driver
        self._peer = getattr(driver, "peer", None)
        self._session: int | None = getattr(driver, "_session", None)

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` as the synchronous connection would, refusals included."""
        conn = self.sync
        if not conn.supports(hook) or (conn.readonly and hook in _plugins.MUTATING_HOOKS) or not conn.is_alive():
            raise conn._refusal(hook)
        peer = self._peer
        forwarded = peer is not None and hook in type(conn.driver).__dict__
        if forwarded:
            from virt_remote import _wire
            from virt_remote._wire import ProtocolError

            try:
                wire_args = {k: _wire.to_wire(v) for k, v in kwargs.items()}
            except ProtocolError as exc:
                raise virt.VirtError(virt.ErrorNumber.INVALID_ARG, f"{hook}: {exc}") from None
            return await peer.request_async("call", self._session, hook, wire_args)  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(conn._call, hook, **kwargs))

    # -- twins of the synchronous methods most used in loops --------------------------------

    async def type(self) -> str:
        return str(await self.call("virt_connect_get_type"))

    async def lookup_domain(self, name: str) -> virt.Domain:
        ref = await self.call("virt_domain_lookup_by_name", name=name)
        return virt.Domain(self.sync, ref.name, ref.uuid)

    async def lookup_domain_by_uuid(self, uuid: str) -> virt.Domain:
        ref = await self.call("virt_domain_lookup_by_uuid", uuid=uuid)
        return virt.Domain(self.sync, ref.name, ref.uuid)

    async def list_domains(self, flags: int = 0) -> list[virt.Domain]:
        return [virt.Domain(self.sync, r.name, r.uuid) for r in await self.call("virt_domain_list", flags=flags)]

    async def list_domains_info(self, flags: int = 0) -> list[tuple[virt.Domain, virt.DomainInfo]]:
        pairs = await self.call("virt_domain_list_info", flags=flags)
        return [(virt.Domain(self.sync, ref.name, ref.uuid), info) for ref, info in pairs]

    async def domain_info(self, domain: virt.Domain) -> virt.DomainInfo:
        result: virt.DomainInfo = await self.call("virt_domain_get_info", uuid=domain.uuid)
        return result

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sync.close)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open(uri: str | None = None, readonly: bool = False) -> AsyncConnection:  # noqa: A001 - virt.open's twin
    """Open a connection without blocking the loop (the open runs in the default executor)."""
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(None, functools.partial(virt.open, uri, readonly))
    return AsyncConnection(conn)
