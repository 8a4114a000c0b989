"""The SQLite store: pragmas, migrations, leases, one-time transitions, pages, idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.store import MIGRATIONS, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "relay.db")
    yield s
    await s.close()


def task(video_id: str, *, owner: str = "alice", created_at: int = 1000, **extra: Any) -> dict:
    values = {
        "id": video_id,
        "owner": owner,
        "channel": "demo",
        "provider": "demo",
        "model": "sora-2",
        "upstream_model": "sora-2",
        "request": {"prompt": "p"},
        "prompt": "p",
        "seconds": "4",
        "size": "720x1280",
        "status": "queued",
        "created_at": created_at,
        "updated_at": float(created_at),
    }
    values.update(extra)
    return values


async def test_pragmas_for_durability(store: Store):
    assert await store.pragma("journal_mode") == "wal"
    assert await store.pragma("synchronous") == 2  # FULL
    assert await store.pragma("busy_timeout") == 5000
    assert await store.pragma("foreign_keys") == 1


async def test_migrations_are_recorded_and_run_once(tmp_path: Path):
    path = tmp_path / "relay.db"
    first = await Store.open(path)
    assert await first.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert await first.migrate() == []  # nothing left to apply
    await first.close()
    again = await Store.open(path)
    assert await again.applied_migrations() == [name for name, _ in MIGRATIONS]
    await again.close()


async def test_task_round_trip_keeps_json_columns(store: Store):
    await store.insert_task(task("v1", upstream_state={"a": [1, 2]}, request={"x": {"y": 1}}))
    row = await store.get_task("v1")
    assert row is not None
    assert row.upstream_state == {"a": [1, 2]}
    assert row.request == {"x": {"y": 1}}
    assert row.status == "queued" and row.progress == 0


async def test_owner_filter_in_the_query(store: Store):
    await store.insert_task(task("v1", owner="alice"))
    assert await store.get_task("v1", "alice") is not None
    assert await store.get_task("v1", "bob") is None
    assert await store.get_task("v1") is not None  # admin: no owner filter


async def test_list_order_and_cursor(store: Store):
    # three in one second, one later; newest first, ties by creation sequence
    for i, at in enumerate([1000, 1000, 1000, 2000]):
        await store.insert_task(task(f"v{i}", created_at=at))
    page = await store.list_tasks(owner="alice", after=None, limit=10, descending=True)
    assert [r.id for r in page] == ["v3", "v2", "v1", "v0"]
    cursor = page[1]
    rest = await store.list_tasks(owner="alice", after=cursor, limit=10, descending=True)
    assert [r.id for r in rest] == ["v1", "v0"]
    asc = await store.list_tasks(owner="alice", after=None, limit=10, descending=False)
    assert [r.id for r in asc] == ["v0", "v1", "v2", "v3"]
    after_v1 = await store.list_tasks(owner="alice", after=asc[1], limit=10, descending=False)
    assert [r.id for r in after_v1] == ["v2", "v3"]


async def test_claim_due_leases_each_task_once(store: Store):
    await store.insert_task(task("due", upstream_id="u1", next_poll_at=10.0))
    await store.insert_task(task("later", upstream_id="u2", next_poll_at=99.0))
    await store.insert_task(task("unsubmitted", next_poll_at=1.0))  # no upstream id yet
    await store.insert_task(task("done", upstream_id="u3", status="completed", next_poll_at=1.0))
    first = await store.claim_due(now=20.0, lease_owner="a", lease_s=30, limit=10)
    assert [r.id for r in first] == ["due"]
    assert first[0].lease_owner == "a" and first[0].lease_until == 50.0
    # a second process sees nothing while the lease holds, and gets it once it ran out
    assert await store.claim_due(now=21.0, lease_owner="b", lease_s=30, limit=10) == []
    taken = await store.claim_due(now=51.0, lease_owner="b", lease_s=30, limit=10)
    assert [r.id for r in taken] == ["due"]


async def test_update_with_a_lost_lease_does_nothing(store: Store):
    await store.insert_task(task("v", upstream_id="u", next_poll_at=0.0))
    await store.claim_due(now=1.0, lease_owner="a", lease_s=30, limit=1)
    assert not await store.update_task("v", {"progress": 50}, lease_owner="b")
    assert await store.update_task("v", {"progress": 50}, lease_owner="a")


async def test_terminal_transition_happens_once(store: Store):
    await store.insert_task(task("v", upstream_id="u"))
    finish = {"status": "completed", "progress": 100}
    assert await store.update_task("v", finish, only_active=True)
    assert not await store.update_task("v", {"status": "failed"}, only_active=True)
    row = await store.get_task("v")
    assert row is not None and row.status == "completed"


async def test_next_due_skips_leased_tasks(store: Store):
    await store.insert_task(task("v", upstream_id="u", next_poll_at=5.0))
    await store.insert_task(task("w", upstream_id="u2", next_poll_at=9.0))
    assert await store.next_due(now=1.0) == 5.0
    await store.claim_due(now=6.0, lease_owner="a", lease_s=30, limit=1)
    assert await store.next_due(now=7.0) == 9.0  # "v" is leased: the next free one
    assert await store.next_due(now=40.0) == 5.0  # its lease ran out
    await store.release_leases("a")
    assert await store.next_due(now=7.0) == 5.0


async def test_reads_see_committed_writes_at_once(store: Store):
    # lookups go through a second, read-only connection: it must see every committed write
    await store.insert_task(task("v"))
    assert (await store.get_task("v")) is not None
    await store.update_task("v", {"progress": 42})
    row = await store.get_task("v")
    assert row is not None and row.progress == 42
    changed = await store.update_and_get("v", {"progress": 43})
    assert changed is not None and changed.progress == 43


async def test_stale_submissions_and_overdue(store: Store):
    await store.insert_task(task("cut", lease_owner="x", lease_until=5.0))
    await store.insert_task(task("in-flight", lease_owner="y", lease_until=100.0))
    await store.insert_task(task("submitted", upstream_id="u", created_at=10))
    assert [r.id for r in await store.stale_submissions(now=50.0)] == ["cut"]
    assert [r.id for r in await store.overdue(created_before=20.0)] == ["submitted"]


async def test_active_counts_by_channel(store: Store):
    await store.insert_task(task("a", channel="one", status="in_progress"))
    await store.insert_task(task("b", channel="one"))
    await store.insert_task(task("c", channel="two", status="completed"))
    assert await store.count_active_by_channel() == {"one": 2}


async def test_idempotency_keys(store: Store):
    assert await store.claim_idempotency_key("alice", "k", "h1", "v1", 100.0, 50)
    assert not await store.claim_idempotency_key("alice", "k", "h2", "v2", 110.0, 50)
    assert await store.find_idempotency_key("alice", "k", newer_than=60.0) == ("h1", "v1")
    assert await store.claim_idempotency_key("bob", "k", "h3", "v3", 110.0, 50)  # per user
    # past its lifetime the key is free again
    assert await store.claim_idempotency_key("alice", "k", "h4", "v4", 200.0, 50)
    assert await store.find_idempotency_key("alice", "k", newer_than=150.0) == ("h4", "v4")


async def test_delete_task_frees_its_idempotency_key(store: Store):
    await store.insert_task(task("v1"))
    await store.claim_idempotency_key("alice", "k", "h", "v1", 1.0, 50)
    assert await store.delete_task("v1")
    assert await store.find_idempotency_key("alice", "k", newer_than=0.0) is None


async def test_users_and_keys(store: Store):
    user = await store.add_user("carol", "admin", 1.0)
    key_id = await store.add_key(user.id, "laptop", "sk-relay-abc", "d" * 64, 2.0)
    found = await store.find_key("d" * 64)
    assert found is not None and found.user == "carol" and found.role == "admin"
    assert await store.count_active_keys() == 1
    assert await store.revoke_key(key_id, 3.0)
    assert not await store.revoke_key(key_id, 4.0)
    assert await store.find_key("d" * 64) is None
    listed = await store.list_keys("carol")
    assert listed[0].revoked_at == 3 and listed[0].prefix == "sk-relay-abc"
    await store.ensure_user("carol", "user", 5.0)  # exists: unchanged
    carol = await store.get_user("carol")
    assert carol is not None and carol.role == "admin"
