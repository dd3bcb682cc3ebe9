"""The asyncio twin: calls gathered on one remote connection overlap; errors and refusals are
the synchronous API's; local URIs work through the executor."""

from __future__ import annotations

import asyncio

import pytest
import virt
from remote_testlib import Sshd
from virt import ErrorNumber, VirtError
from virt_remote import aio


def test_gathered_calls_over_ssh(sshd: Sshd) -> None:
    async def main() -> None:
        async with await aio.open(sshd.uri()) as conn:
            assert await conn.type() == "TEST"
            peer = conn.sync.driver.peer  # type: ignore[attr-defined]
            before = peer.requests
            found = await asyncio.gather(*(conn.lookup_domain("test") for _ in range(200)))
            assert {d.name for d in found} == {"test"} and peer.requests - before == 200
            info = await conn.domain_info(found[0])
            assert info.state == virt.DomainState.RUNNING
            pairs = await conn.list_domains_info()
            assert [d.name for d, _ in pairs] == ["test"]
            with pytest.raises(VirtError) as error:
                await conn.lookup_domain("nope")
            assert error.value.code == ErrorNumber.NO_DOMAIN
            with pytest.raises(VirtError) as error:
                await conn.call("virt_domain_open_console", uuid=found[0].uuid, dev_name=None, flags=0)
            assert error.value.code == ErrorNumber.NO_SUPPORT

    asyncio.run(main())


def test_read_only_refusal(sshd: Sshd) -> None:
    async def main() -> None:
        async with await aio.open(sshd.uri(), readonly=True) as conn:
            dom = await conn.lookup_domain("test")
            with pytest.raises(VirtError) as error:
                await conn.call("virt_domain_suspend", uuid=dom.uuid)
            assert error.value.code == ErrorNumber.OPERATION_DENIED

    asyncio.run(main())


def test_lost_connection_fails_pending_futures(sshd: Sshd) -> None:
    async def main() -> None:
        async with await aio.open(sshd.uri()) as conn:
            peer = conn.sync.driver.peer  # type: ignore[attr-defined]
            calls = [asyncio.ensure_future(conn.lookup_domain("test")) for _ in range(50)]
            peer.fail(virt.VirtError(ErrorNumber.SYSTEM_ERROR, "gone"))
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
            assert all(isinstance(r, (VirtError, virt.Domain)) for r in results)
            with pytest.raises(VirtError):
                await conn.lookup_domain("test")

    asyncio.run(main())


def test_local_uri_uses_the_executor() -> None:
    async def main() -> None:
        async with await aio.open("test:///default") as conn:
            doms = await asyncio.gather(*(conn.lookup_domain("test") for _ in range(10)))
            assert {d.name for d in doms} == {"test"}

    asyncio.run(main())
