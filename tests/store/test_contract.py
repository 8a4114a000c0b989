"""The Store contract, over every backend, through its interface only: tasks from create to
finish, leases, pages, idempotency keys, users and keys, the webhook outbox, copy jobs."""

from __future__ import annotations

from typing import Any

import pytest

from relay.domain import Outcome
from relay.store import HealthChange, NewDelivery, NewTask, Store


def new(video_id: str, *, owner: str = "alice", at: float = 1000.0, **extra: Any) -> NewTask:
    values: dict[str, Any] = {
        "id": video_id,
        "owner": owner,
        "channel": "demo",
        "provider": "demo",
        "model": "sora-2",
        "upstream_model": "sora-2",
        "request": {"prompt": "p", "images": [{"role": None, "url": "https://x.test/a.png"}]},
        "prompt": "p",
        "seconds": "4",
        "size": "720x1280",
        "remixed_from": None,
        "created_at": at,
        "lease_owner": "submitter",
        "lease_until": at + 60,
    }
    values.update(extra)
    return NewTask(**values)


async def submitted(store: Store, video_id: str, *, due: float = 10.0, **extra: Any) -> None:
    await store.create_task(new(video_id, **extra))
    task = await store.record_submitted(
        video_id,
        upstream_id=f"up-{video_id}",
        upstream_state={"family": "t2v", "n": [1, 2]},
        seconds="5",
        size="1280x720",
        status="queued",
        progress=0,
        now=due - 5,
        next_poll_at=due,
        interval=5.0,
    )
    assert task is not None


async def test_a_new_task_is_queued_under_the_submit_lease(store: Store):
    await store.create_task(new("v1"))
    task = await store.get_task("v1")
    assert task is not None
    assert (task.status, task.progress, task.upstream_id) == ("queued", 0, None)
    assert task.request["images"][0]["url"] == "https://x.test/a.png"
    assert task.upstream_state == {} and task.created_at == 1000
    assert (task.lease_owner, task.lease_until) == ("submitter", 1060.0)
    assert task.active


async def test_record_submitted_ends_the_submit_lease(store: Store):
    await submitted(store, "v1", due=10.0)
    task = await store.get_task("v1")
    assert task is not None
    assert task.upstream_id == "up-v1" and task.upstream_state == {"family": "t2v", "n": [1, 2]}
    assert (task.seconds, task.size, task.submitted_at) == ("5", "1280x720", 5.0)
    assert (task.next_poll_at, task.poll_interval, task.lease_owner) == (10.0, 5.0, None)
    assert task.ref().upstream_id == "up-v1"


async def test_move_to_channel(store: Store):
    await store.create_task(new("v1"))
    await store.move_to_channel("v1", channel="other", provider="kling", upstream_model="k-1")
    task = await store.get_task("v1")
    assert task is not None
    assert (task.channel, task.provider, task.upstream_model) == ("other", "kling", "k-1")


async def test_owner_filter_in_the_query(store: Store):
    await store.create_task(new("v1", owner="alice"))
    assert await store.get_task("v1", "alice") is not None
    assert await store.get_task("v1", "bob") is None
    assert await store.get_task("v1") is not None  # admin: no owner filter
    assert await store.get_task("nope") is None


async def test_list_order_and_cursor(store: Store):
    # three in one second, one later; newest first, ties by creation sequence
    for i, at in enumerate([1000.0, 1000.0, 1000.0, 2000.0]):
        await store.create_task(new(f"v{i}", at=at))
    await store.create_task(new("theirs", owner="bob", at=1500.0))
    page = await store.list_tasks(owner="alice", after=None, limit=10, descending=True)
    assert [t.id for t in page] == ["v3", "v2", "v1", "v0"]
    rest = await store.list_tasks(owner="alice", after=page[1], limit=10, descending=True)
    assert [t.id for t in rest] == ["v1", "v0"]
    asc = await store.list_tasks(owner="alice", after=None, limit=10, descending=False)
    assert [t.id for t in asc] == ["v0", "v1", "v2", "v3"]
    after_v1 = await store.list_tasks(owner="alice", after=asc[1], limit=10, descending=False)
    assert [t.id for t in after_v1] == ["v2", "v3"]
    everyone = await store.list_tasks(owner=None, after=None, limit=2, descending=True)
    assert [t.id for t in everyone] == ["v3", "theirs"]


async def test_claim_due_leases_each_task_once(store: Store):
    await submitted(store, "due", due=10.0)
    await submitted(store, "later", due=99.0)
    await store.create_task(new("unsubmitted"))  # no upstream id yet
    first = await store.claim_due(now=20.0, lease_owner="a", lease_s=30, limit=10)
    assert [t.id for t in first] == ["due"]
    assert first[0].lease_owner == "a" and first[0].lease_until == 50.0
    # a second process sees nothing while the lease holds, and gets it once it ran out
    assert await store.claim_due(now=21.0, lease_owner="b", lease_s=30, limit=10) == []
    taken = await store.claim_due(now=51.0, lease_owner="b", lease_s=30, limit=10)
    assert [t.id for t in taken] == ["due"]


async def test_a_poll_with_a_lost_lease_does_nothing(store: Store):
    await submitted(store, "v", due=0.0)
    await store.claim_due(now=1.0, lease_owner="a", lease_s=30, limit=1)
    news: dict[str, Any] = {
        "status": "in_progress",
        "progress": 50,
        "upstream_state": {"family": "t2v", "url": "u"},
        "seconds": None,
        "size": "1920x1080",
        "now": 2.0,
        "next_poll_at": 9.0,
        "interval": 7.0,
    }
    assert not await store.record_poll("v", "b", **news)
    assert await store.record_poll("v", "a", **news)
    task = await store.get_task("v")
    assert task is not None
    assert (task.status, task.progress, task.size, task.seconds) == (
        "in_progress",
        50,
        "1920x1080",
        "5",
    )
    assert task.upstream_state == {"family": "t2v", "url": "u"}
    assert (task.next_poll_at, task.poll_interval, task.lease_owner) == (9.0, 7.0, None)
    assert not await store.record_poll("v", "a", **news)  # the lease ended with the news


async def test_reschedule_counts_errors_and_a_poll_resets_them(store: Store):
    await submitted(store, "v", due=0.0)
    await store.claim_due(now=1.0, lease_owner="a", lease_s=30, limit=1)
    assert not await store.reschedule("v", "b", next_poll_at=5.0, interval=4.0, poll_errors=1)
    assert await store.reschedule("v", "a", next_poll_at=5.0, interval=4.0, poll_errors=1)
    task = await store.get_task("v")
    assert task is not None and (task.poll_errors, task.next_poll_at) == (1, 5.0)
    await store.claim_due(now=6.0, lease_owner="a", lease_s=30, limit=1)
    await store.record_poll(
        "v",
        "a",
        status="queued",
        progress=0,
        upstream_state=None,
        seconds=None,
        size=None,
        now=6.0,
        next_poll_at=12.0,
        interval=6.0,
    )
    task = await store.get_task("v")
    assert task is not None and task.poll_errors == 0
    assert task.upstream_state == {"family": "t2v", "n": [1, 2]}  # no news: kept


async def test_finish_happens_once_with_its_events_and_copies(store: Store):
    await submitted(store, "v")
    events = [NewDelivery("evt_1", "https://a.test/h", '{"id": "evt_1"}')]
    done = await store.finish(
        "v",
        None,
        Outcome("completed", expires_at=99.0),
        now=50.0,
        deliveries=events,
        copies=["video", "thumbnail"],
    )
    assert done is not None
    assert (done.status, done.progress, done.completed_at, done.expires_at) == (
        "completed",
        100,
        50.0,
        99.0,
    )
    assert not done.active and done.next_poll_at is None
    again = await store.finish("v", None, Outcome.failed("x", "y"), now=51.0, deliveries=events)
    assert again is None
    claimed = await store.claim_deliveries(now=60.0, lease_owner="w", lease_s=10, limit=10)
    assert [(d.event_id, d.url, d.body) for d in claimed] == [
        ("evt_1", "https://a.test/h", '{"id": "evt_1"}')
    ]
    copies = await store.claim_copies(now=60.0, lease_owner="c", lease_s=10, limit=10)
    assert sorted(c.variant for c in copies) == ["thumbnail", "video"]


async def test_a_failure_keeps_its_progress_and_message(store: Store):
    await submitted(store, "v", due=0.0)
    await store.claim_due(now=1.0, lease_owner="a", lease_s=30, limit=1)
    outcome = Outcome.failed("moderation_blocked", "blocked")
    assert await store.finish("v", "b", outcome, now=2.0) is None  # not the lease holder
    done = await store.finish("v", "a", outcome, now=2.0, progress=40)
    assert done is not None
    assert (done.status, done.progress, done.error_code, done.error_message) == (
        "failed",
        40,
        "moderation_blocked",
        "blocked",
    )
    assert done.expires_at is None


async def test_next_due_skips_leased_tasks(store: Store):
    await submitted(store, "v", due=5.0)
    await submitted(store, "w", due=9.0)
    assert await store.next_due(now=1.0) == 5.0
    await store.claim_due(now=6.0, lease_owner="a", lease_s=30, limit=1)
    assert await store.next_due(now=7.0) == 9.0  # "v" is leased: the next free one
    assert await store.next_due(now=40.0) == 5.0  # its lease ran out
    await store.release_leases("a")
    assert await store.next_due(now=7.0) == 5.0


async def test_stale_submissions_and_overdue(store: Store):
    await store.create_task(new("cut", lease_until=5.0))
    await store.create_task(new("in-flight", lease_until=100.0))
    await submitted(store, "submitted", at=10.0)
    assert [t.id for t in await store.stale_submissions(now=50.0)] == ["cut"]
    assert [t.id for t in await store.overdue(created_before=20.0)] == ["submitted"]


async def test_active_counts_by_channel(store: Store):
    await submitted(store, "a", channel="one")
    await store.create_task(new("b", channel="one"))
    await submitted(store, "c", channel="two")
    await store.finish("c", None, Outcome("completed"), now=1.0)
    assert await store.count_active_by_channel() == {"one": 2}


async def test_counts_by_status(store: Store):
    assert not any((await store.count_by_status()).values())
    await store.create_task(new("q"))
    await submitted(store, "r")
    assert [t.id for t in await store.claim_due(now=10.0, lease_owner="p", lease_s=30, limit=5)]
    assert await store.record_poll(
        "r",
        "p",
        status="in_progress",
        progress=5,
        upstream_state=None,
        seconds=None,
        size=None,
        now=10.0,
        next_poll_at=20.0,
        interval=5.0,
    )
    for video_id, status in (("c1", "completed"), ("c2", "completed"), ("f", "failed")):
        await submitted(store, video_id)
        outcome = Outcome(status) if status == "completed" else Outcome.failed("x", "y")
        await store.finish(video_id, None, outcome, now=1.0)
    await store.delete_task("c2")
    counts = await store.count_by_status()
    assert {k: v for k, v in counts.items() if v} == {
        "queued": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 1,
    }


async def test_idempotency_keys(store: Store):
    assert await store.claim_idempotency_key("alice", "k", "h1", "v1", 100.0, 50)
    assert not await store.claim_idempotency_key("alice", "k", "h2", "v2", 110.0, 50)
    assert await store.find_idempotency_key("alice", "k", newer_than=60.0) == ("h1", "v1")
    assert await store.claim_idempotency_key("bob", "k", "h3", "v3", 110.0, 50)  # per user
    # past its lifetime the key is free again
    assert await store.claim_idempotency_key("alice", "k", "h4", "v4", 200.0, 50)
    assert await store.find_idempotency_key("alice", "k", newer_than=150.0) == ("h4", "v4")
    await store.forget_idempotency_key("alice", "k")
    assert await store.find_idempotency_key("alice", "k", newer_than=0.0) is None
    await store.purge_idempotency_keys(older_than=1000.0)
    assert await store.find_idempotency_key("bob", "k", newer_than=0.0) is None


async def test_delete_task_frees_its_key_and_copies(store: Store):
    await submitted(store, "v1")
    await store.finish("v1", None, Outcome("completed"), now=1.0, copies=["video"])
    await store.claim_idempotency_key("alice", "k", "h", "v1", 1.0, 50)
    assert await store.delete_task("v1")
    assert not await store.delete_task("v1")
    assert await store.get_task("v1") is None
    assert await store.find_idempotency_key("alice", "k", newer_than=0.0) is None
    assert await store.claim_copies(now=10.0, lease_owner="c", lease_s=10, limit=10) == []


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
    await store.ensure_user("dave", "user", 6.0)
    assert [u.name for u in await store.list_users()] == ["carol", "dave"]


async def test_the_webhook_outbox(store: Store):
    await submitted(store, "v")
    events = [NewDelivery("evt_1", "https://a.test/h", "{}")]
    await store.finish("v", None, Outcome("completed"), now=10.0, deliveries=events)
    assert await store.next_delivery_at() == 10.0
    [first] = await store.claim_deliveries(now=10.0, lease_owner="w", lease_s=30, limit=5)
    assert await store.claim_deliveries(now=11.0, lease_owner="x", lease_s=30, limit=5) == []
    await store.retry_delivery(first.id, 20.0, "HTTP 500")
    assert await store.next_delivery_at() == 20.0
    [again] = await store.claim_deliveries(now=20.0, lease_owner="w", lease_s=30, limit=5)
    assert again.attempts == 1
    await store.delivered(again.id)
    assert await store.next_delivery_at() is None


async def test_copy_jobs_and_retention(store: Store):
    for name, at in (("old", 1.0), ("new", 2.0)):
        await submitted(store, name)
        await store.finish(
            name, None, Outcome("completed", expires_at=500.0), now=at, copies=["video"]
        )
    assert await store.next_copy_at() == 1.0
    jobs = await store.claim_copies(now=5.0, lease_owner="c", lease_s=60, limit=1)
    assert [j.task_id for j in jobs] == ["old"]
    await store.retry_copy("old", "video", 50.0, "timeout")
    jobs = await store.claim_copies(now=60.0, lease_owner="c", lease_s=60, limit=5)
    assert sorted(j.task_id for j in jobs) == ["new", "old"]
    for name, at, size in (("old", 60.0, 300), ("new", 70.0, 200)):
        assert await store.copy_stored(
            name,
            "video",
            path=f"videos/{name}/video.mp4",
            content_type="video/mp4",
            size=size,
            now=at,
        )
    task = await store.get_task("old")
    assert task is not None and task.expires_at is None  # the relay holds it now
    stored = await store.stored_copy("old", "video")
    assert stored is not None and (stored.bytes, stored.attempts) == (300, 1)
    assert await store.stored_bytes() == 500
    oldest = await store.stored_copies_oldest_first(10)
    assert [c.task_id for c in oldest] == ["old", "new"]
    await store.forget_copy(oldest[0], 99.0)
    task = await store.get_task("old")
    assert task is not None and task.expires_at == 99.0
    assert await store.stored_copy("old", "video") is None
    assert await store.stored_bytes() == 200
    await store.delete_task("new")
    assert not await store.copy_stored(
        "new", "video", path="x", content_type="video/mp4", size=1, now=80.0
    )


async def test_copy_leases_are_released_and_jobs_dropped(store: Store):
    await submitted(store, "v")
    await store.finish("v", None, Outcome("completed"), now=1.0, copies=["video"])
    await store.claim_copies(now=2.0, lease_owner="c", lease_s=600, limit=5)
    assert await store.claim_copies(now=3.0, lease_owner="d", lease_s=600, limit=5) == []
    await store.release_copy_leases("c")
    [job] = await store.claim_copies(now=3.0, lease_owner="d", lease_s=600, limit=5)
    await store.drop_copy(job.task_id, job.variant)
    assert await store.next_copy_at() is None


async def test_a_copy_lease_is_renewed_only_by_its_holder(store: Store):
    await submitted(store, "v")
    await store.finish("v", None, Outcome("completed"), now=1.0, copies=["video"])
    await store.claim_copies(now=2.0, lease_owner="c", lease_s=60, limit=5)
    assert await store.renew_copy_lease("v", "video", "c", 200.0)
    assert await store.claim_copies(now=100.0, lease_owner="d", lease_s=60, limit=5) == []
    assert not await store.renew_copy_lease("v", "video", "d", 300.0)
    [job] = await store.claim_copies(now=201.0, lease_owner="d", lease_s=60, limit=5)
    assert not await store.renew_copy_lease("v", "video", "c", 400.0)  # taken over: not its own
    assert job.task_id == "v"


# --- what several relays share --------------------------------------------------------------


async def test_a_channel_is_full_for_every_relay_at_its_limit(store: Store):
    assert await store.create_task(new("a", channel="c"), limit=2)
    assert await store.create_task(new("b", channel="c"), limit=2)
    assert not await store.create_task(new("x", channel="c"), limit=2)  # full: nothing written
    assert await store.get_task("x") is None
    assert await store.create_task(new("y", channel="other"), limit=2)
    assert await store.create_task(new("z", channel="c"))  # no limit
    assert not await store.move_to_channel(
        "y", channel="c", provider="demo", upstream_model="m", limit=2
    )
    moved = await store.get_task("y")
    assert moved is not None and moved.channel == "other"  # stays where it was
    await store.record_submitted(
        "a",
        upstream_id="u",
        upstream_state={},
        seconds="4",
        size="1x1",
        status="queued",
        progress=0,
        now=1.0,
        next_poll_at=2.0,
        interval=1.0,
    )
    await store.finish("a", None, Outcome("completed"), now=3.0)
    assert await store.move_to_channel(
        "y", channel="c", provider="demo", upstream_model="m", limit=3
    )


async def test_concurrent_creates_never_pass_the_limit(store: Store):
    import asyncio

    results = await asyncio.gather(
        *(store.create_task(new(f"t{i}", channel="c"), limit=3) for i in range(12))
    )
    assert sum(results) == 3
    assert (await store.count_active_by_channel()) == {"c": 3}


async def test_health_changes_newest_wins(store: Store):
    old = HealthChange("c", "cooling", 50.0, "503", "relay-a", 10.0)
    new_ = HealthChange("c", "ready", None, "it answered again", "relay-b", 20.0)
    await store.publish_health(new_)
    await store.publish_health(old)  # older than what is there: ignored
    assert await store.health_changes(0.0) == [new_]
    assert await store.health_changes(20.0) == []
    other = HealthChange("d", "credentials", 900.0, "401", "relay-a", 30.0)
    await store.publish_health(other)
    assert await store.health_changes(15.0) == [new_, other]


async def test_rate_buckets_refill_and_give_back(store: Store):
    assert await store.take_token("k", 2, 0.0) == 0
    assert await store.take_token("k", 2, 0.0) == 0
    assert await store.take_token("k", 2, 1.0) == pytest.approx(29.0)  # 1 s brought 1/30
    assert await store.take_token("other", 2, 1.0) == 0  # per key
    await store.give_token("k", 2)  # a refused request returns its token
    assert await store.take_token("k", 2, 1.0) == 0
    assert await store.take_token("k", 2, 31.0) == 0  # a token came back with time


async def test_passwords_roles_and_the_disabled_flag(store: Store):
    erin = await store.add_user("erin", "user", 1.0, password_hash="scrypt$h1")
    assert erin.has_password and not erin.disabled
    assert await store.password_hash("erin") == "scrypt$h1"
    assert await store.password_hash("nobody") is None
    await store.ensure_user("keyonly", "user", 2.0)
    keyonly = await store.get_user("keyonly")
    assert keyonly is not None and not keyonly.has_password
    assert await store.password_hash("keyonly") is None
    assert await store.set_password("erin", "scrypt$h2")
    assert await store.password_hash("erin") == "scrypt$h2"
    assert await store.set_password("erin", None)
    user = await store.get_user("erin")
    assert user is not None and not user.has_password
    assert not await store.set_password("nobody", "x")
    assert await store.make_admin("erin")
    assert (await store.get_user("erin")).role == "admin"  # type: ignore[union-attr]
    assert await store.revoke_admin("erin")
    assert (await store.get_user("erin")).role == "user"  # type: ignore[union-attr]
    key_id = await store.add_key(erin.id, "k", "sk-relay-e", "e" * 64, 3.0)
    assert await store.disable_user("erin")
    listed = {u.name: u for u in await store.list_users()}
    assert listed["erin"].disabled and not listed["keyonly"].disabled
    assert await store.find_key("e" * 64) is None  # a disabled user's keys stop working
    assert await store.enable_user("erin")
    found = await store.find_key("e" * 64)
    assert found is not None and found.id == key_id
    assert not await store.disable_user("nobody") and not await store.make_admin("nobody")


async def test_sessions_live_until_they_expire_or_end(store: Store):
    frank = await store.add_user("frank", "admin", 1.0, password_hash="h")
    sid = await store.create_session(frank.id, "a" * 64, now=10.0, expires_at=100.0)
    found = await store.find_session("a" * 64, 50.0)
    assert found is not None
    assert (found.id, found.user, found.role, found.created_at, found.expires_at) == (
        sid,
        "frank",
        "admin",
        10.0,
        100.0,
    )
    by_id = await store.get_session(sid, 50.0)
    assert by_id == found
    assert await store.find_session("b" * 64, 50.0) is None
    assert await store.find_session("a" * 64, 100.0) is None  # expired
    assert await store.get_session(sid, 100.0) is None
    assert await store.purge_sessions(100.0) == 1
    again = await store.create_session(frank.id, "c" * 64, now=200.0, expires_at=300.0)
    assert again != sid  # ids are never reused
    assert await store.end_session(again)
    assert not await store.end_session(again)
    assert await store.find_session("c" * 64, 250.0) is None


async def test_taking_a_right_away_ends_the_users_sessions(store: Store):
    gail = await store.add_user("gail", "admin", 1.0, password_hash="h")
    hugo = await store.add_user("hugo", "user", 1.0, password_hash="h")
    other = await store.create_session(hugo.id, "h" * 64, now=1.0, expires_at=1e9)

    for take_away in (
        lambda: store.set_password("gail", "h2"),
        lambda: store.revoke_admin("gail"),
        lambda: store.disable_user("gail"),
    ):
        await store.enable_user("gail")
        await store.make_admin("gail")
        sid = await store.create_session(gail.id, "g" * 64, now=1.0, expires_at=1e9)
        assert await store.get_session(sid, 2.0) is not None
        assert await take_away()
        assert await store.get_session(sid, 2.0) is None
        assert await store.find_session("g" * 64, 2.0) is None
    # giving rights does not end anything; nor does another user's change
    await store.enable_user("gail")
    sid = await store.create_session(gail.id, "g" * 64, now=1.0, expires_at=1e9)
    assert await store.make_admin("gail") and await store.enable_user("gail")
    assert await store.get_session(sid, 2.0) is not None
    assert await store.get_session(other, 2.0) is not None
    # removing a user removes their sessions
    assert await store.remove_user("hugo")
    assert await store.get_session(other, 2.0) is None
    assert await store.get_user("hugo") is None
    assert not await store.remove_user("hugo")


async def test_list_searches_prompts_literally_and_without_case(store: Store):
    prompts = {
        "a": "A Paper Airplane over a lake",
        "b": "100% cotton_candy clouds",
        "c": "a path C:\\videos\\cat",
        "d": "1000 cotton candy clouds",
        "e": "plain",
    }
    for i, (vid, prompt) in enumerate(prompts.items()):
        await store.create_task(new(vid, prompt=prompt, at=1000.0 + i))
    await store.create_task(new("theirs", owner="bob", prompt="paper boat", at=2000.0))

    async def search(text: str, owner: str | None = "alice") -> list[str]:
        page = await store.list_tasks(
            owner=owner, after=None, limit=10, descending=True, prompt_contains=text
        )
        return [t.id for t in page]

    assert await search("paper airplane") == ["a"]
    assert await search("PAPER") == ["a"]
    assert await search("paper", owner=None) == ["theirs", "a"]
    assert await search("100%") == ["b"]
    assert await search("%") == ["b"]  # not a wildcard
    assert await search("cotton_candy") == ["b"]  # "_" is no single-character wildcard
    assert await search("\\videos\\") == ["c"]
    assert await search("nothing like it") == []
    assert await search("") == ["e", "d", "c", "b", "a"]  # empty: no filter
    first = await store.list_tasks(
        owner="alice", after=None, limit=1, descending=True, prompt_contains="cotton"
    )
    rest = await store.list_tasks(
        owner="alice", after=first[0], limit=10, descending=True, prompt_contains="cotton"
    )
    assert [t.id for t in first + rest] == ["d", "b"]
