"""Events reach subscribers, and nothing is done for them before anyone subscribes."""

from __future__ import annotations

import virt
from virt.plugin import listening


def test_nothing_listens_until_someone_subscribes() -> None:
    with virt.open("test:///default") as conn:
        assert not listening(conn.hook, "virt_event_domain")
        seen: list[virt.DomainEvent] = []
        sub = conn.subscribe(lambda _conn, event: seen.append(event), virt.DomainEvent)
        assert listening(conn.hook, "virt_event_domain")
        dom = conn.lookup_domain("test")
        dom.suspend()
        dom.resume()
        assert [e.event for e in seen] == [virt.DomainEventType.SUSPENDED, virt.DomainEventType.RESUMED]
        conn.unsubscribe(sub)
        dom.suspend()
        dom.resume()
        assert len(seen) == 2


def test_a_subscriber_on_one_connection_sees_changes_made_on_another() -> None:
    with virt.open("test:///default") as watcher, virt.open("test:///default") as actor:
        seen: list[virt.DomainEvent] = []
        watcher.subscribe(lambda _conn, event: seen.append(event), "lifecycle")
        actor.lookup_domain("test").suspend()
        actor.lookup_domain("test").resume()
        assert [e.name for e in seen] == ["test", "test"]
