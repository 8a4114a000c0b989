"""The refresh policy (tasks.Videos.refresh) and the background loop (poller.Poller)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from relay.config import Config
from relay.domain import Principal, Size, Task, TaskRef, VideoRequest
from relay.events import Events, TaskFinished
from relay.policy import AUTH_FAILURES_BEFORE_FAIL
from relay.providers.base import PollRules, Provider, Submitted, TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    QuotaExceeded,
    RateLimited,
    TaskNotFound,
    TransientError,
    Unavailable,
)
from relay.runtime import Runtime, build_parts
from relay.store.sqlite import SqliteStore
from relay.tasks import Context, Videos
from relay.tasks.refresh import next_progress
from relay.upstream import Http
from relay.workers.poller import Poller
from tests.conftest import Relay, auth
from tests.storetools import insert_task, update_task

ALICE = Principal("alice", "user", "static:alice")


class Scripted(Provider[Any]):
    """Each poll takes the next outcome from a shared script (an Update or an exception)."""

    name = "pollscript"
    credentials = ()
    needs_network = False
    typical_run_s = 100.0
    script: ClassVar[deque[Any]] = deque()
    polls: ClassVar[int] = 0
    gate: ClassVar[asyncio.Event | None] = None
    in_poll: ClassVar[int] = 0
    most_in_poll: ClassVar[int] = 0

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        return Submitted(
            upstream_id="u-1", seconds=str(request.duration), size=str(request.dimensions)
        )

    async def poll(self, task: TaskRef) -> Update:
        cls = type(self)
        cls.polls += 1
        cls.in_poll += 1
        cls.most_in_poll = max(cls.most_in_poll, cls.in_poll)
        try:
            if cls.gate is not None:
                await cls.gate.wait()
            outcome = cls.script.popleft() if cls.script else Update(status="in_progress")
            if isinstance(outcome, Exception):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        finally:
            cls.in_poll -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def scripted(providers: dict[str, type[Provider[Any]]]) -> None:
    providers["pollscript"] = Scripted
    Scripted.script = deque()
    Scripted.polls = Scripted.in_poll = Scripted.most_in_poll = 0
    Scripted.gate = None


@pytest.fixture
def poll_config(make_config: Callable[..., Config]) -> Config:
    return make_config(
        polling={"interval_s": 2, "max_interval_s": 10, "timeout_h": 1, "concurrency": 2},
        channels=[{"name": "p", "provider": "pollscript", "models": ["sora-2"]}],
    )


class Service:
    """The use cases (creates) and the lifecycle (polls) over one store, as the app wires them."""

    def __init__(self, videos: Videos) -> None:
        self.videos = videos
        self.events = videos.ctx.events
        self.store = videos.ctx.store
        self.create = videos.create
        self.refresh = videos.lifecycle.refresh
        self.fail_overdue = videos.lifecycle.fail_overdue
        self.fail_stale_submissions = videos.lifecycle.fail_stale_submissions


@pytest.fixture
async def service(
    poll_config: Config, tmp_path: Path, providers: dict[str, type[Provider[Any]]]
) -> AsyncIterator[tuple[Service, Clock]]:
    store = await SqliteStore.open(tmp_path / "svc.db")
    http = Http(allow_private_networks=True)
    clock = Clock()
    events = Events()
    parts = build_parts(
        poll_config, providers=providers, store=store, http=http, events=events, clock=clock
    )
    ctx = Context(store=store, runtime=Runtime(parts), events=events, clock=clock, instance="me")
    yield Service(Videos(ctx)), clock
    await http.close()
    await store.close()


def request(prompt: str = "p") -> VideoRequest:
    return VideoRequest(prompt=prompt, model="sora-2", seconds=4, size=Size(720, 1280))


async def running(videos: Service) -> Task:
    row, _ = await videos.create(ALICE, request())
    return row


async def poll_once(videos: Service, clock: Clock) -> Task:
    """Advance to the task's due time, lease it like the poller does, refresh it."""
    row = (await videos.store.list_tasks(owner=None, after=None, limit=1, descending=True))[0]
    clock.now = max(clock.now, row.next_poll_at or clock.now)
    claimed = await videos.store.claim_due(now=clock.now, lease_owner="me", lease_s=60, limit=1)
    assert claimed, "nothing was due"
    await videos.refresh(claimed[0], "me")
    fresh = await videos.store.get_task(row.id)
    assert fresh is not None
    return fresh


# --- progress ----------------------------------------------------------------------------


def test_progress_rules():
    assert next_progress(0, "queued", None, 50, 100) == 0
    assert next_progress(0, "in_progress", None, 0, 100) == 1  # at least 1 once running
    assert next_progress(0, "in_progress", None, 50, 100) == 50
    assert next_progress(0, "in_progress", None, 500, 100) == 95  # time alone stops at 95
    assert next_progress(60, "in_progress", 40, 0, 100) == 60  # never down
    assert next_progress(60, "in_progress", 100, 0, 100) == 99  # 100 only when completed
    assert next_progress(60, "completed", None, 0, 100) == 100
    assert next_progress(60, "failed", None, 0, 100) == 60


async def test_time_based_progress_then_completion(service: tuple[Service, Clock]):
    videos, clock = service
    row = await running(videos)
    assert row.status == "queued" and row.next_poll_at is not None
    clock.now = row.submitted_at + 30  # type: ignore[operator]
    Scripted.script.append(Update(status="in_progress"))
    row = await poll_once(videos, clock)
    assert row.status == "in_progress" and row.progress == 30
    Scripted.script.append(Update(status="in_progress", progress=10))  # lower: ignored
    row = await poll_once(videos, clock)
    assert row.progress == 30
    Scripted.script.append(Update(status=None))  # an unknown native status: keep the old one
    row = await poll_once(videos, clock)
    assert row.status == "in_progress"
    Scripted.script.append(Update(status="completed", seconds="5", size="1280x720"))
    row = await poll_once(videos, clock)
    assert (row.status, row.progress, row.seconds, row.size) == ("completed", 100, "5", "1280x720")
    assert row.completed_at == clock.now and row.next_poll_at is None and row.lease_owner is None


async def test_backoff_grows_to_the_cap(service: tuple[Service, Clock]):
    videos, clock = service
    row = await running(videos)
    intervals = []
    for _ in range(8):
        row = await poll_once(videos, clock)
        intervals.append(row.poll_interval)
    assert intervals[0] == 3.0  # 2 s first, then x1.5
    assert intervals == sorted(intervals)
    assert intervals[-1] == 10.0  # max_interval_s


async def test_upstream_poll_hint_is_a_floor(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    Scripted.script.append(Update(status="in_progress", poll_after_s=8))
    row = await poll_once(videos, clock)
    assert row.next_poll_at == clock.now + 8


async def test_rate_limit_and_outage_leave_the_task_running(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    Scripted.script.append(RateLimited("slow down", retry_after=30))
    row = await poll_once(videos, clock)
    assert row.status == "queued" and row.next_poll_at == clock.now + 30
    Scripted.script.append(Unavailable("503"))
    row = await poll_once(videos, clock)
    assert row.status == "queued" and row.error_code is None
    Scripted.script.append(Update(status="completed"))
    row = await poll_once(videos, clock)
    assert row.status == "completed"


async def test_repeated_auth_failures_fail_the_task(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    for _ in range(AUTH_FAILURES_BEFORE_FAIL - 1):
        Scripted.script.append(AuthFailed("key refused"))
        row = await poll_once(videos, clock)
        assert row.status == "queued"
    Scripted.script.append(AuthFailed("key refused"))
    row = await poll_once(videos, clock)
    assert (row.status, row.error_code) == ("failed", "upstream_auth_failed")


async def test_auth_failure_count_resets_after_a_good_poll(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    for _ in range(AUTH_FAILURES_BEFORE_FAIL - 1):
        Scripted.script.append(AuthFailed("key refused"))
        await poll_once(videos, clock)
    Scripted.script.append(Update(status="in_progress"))
    row = await poll_once(videos, clock)
    assert row.poll_errors == 0
    Scripted.script.append(AuthFailed("key refused"))
    row = await poll_once(videos, clock)
    assert row.status == "in_progress"


async def test_unknown_upstream_id_fails_as_expired(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    Scripted.script.append(TaskNotFound("task not found"))
    row = await poll_once(videos, clock)
    assert (row.status, row.error_code) == ("failed", "task_expired")


async def test_failure_keeps_progress_and_message_is_scrubbed(service: tuple[Service, Clock]):
    videos, clock = service
    row = await running(videos)
    clock.now = row.submitted_at + 40  # type: ignore[operator]
    Scripted.script.append(Update(status="in_progress"))
    await poll_once(videos, clock)
    Scripted.script.append(
        Update(status="failed", error=TaskError("generation_failed", "see https://cdn.x/y?sig=1"))
    )
    row = await poll_once(videos, clock)
    assert row.status == "failed" and row.progress == 40
    assert row.error_message == "see <url>"


async def test_terminal_transition_and_its_listeners_run_once(service: tuple[Service, Clock]):
    videos, _ = service
    row = await running(videos)
    seen: list[str] = []
    videos.events.subscribe(TaskFinished, lambda finished: seen.append(finished.status))
    claimed = await videos.store.claim_due(
        now=row.next_poll_at or 0, lease_owner="me", lease_s=60, limit=1
    )
    Scripted.script.extend([Update(status="completed"), Update(status="failed")])
    await asyncio.gather(videos.refresh(claimed[0], "me"), videos.refresh(claimed[0], "me"))
    assert seen == ["completed"]
    final = await videos.store.get_task(row.id)
    assert final is not None and final.status == "completed"


async def test_overall_timeout(service: tuple[Service, Clock]):
    videos, clock = service
    row = await running(videos)
    clock.now += 3601
    assert await videos.fail_overdue() == 1
    final = await videos.store.get_task(row.id)
    assert final is not None
    assert (final.status, final.error_code) == ("failed", "upstream_timeout")
    assert await videos.fail_overdue() == 0


async def test_cut_off_submit_is_failed_not_resubmitted(service: tuple[Service, Clock]):
    videos, clock = service
    await insert_task(
        videos.store,
        {
            "id": "video_cut",
            "owner": "alice",
            "channel": "p",
            "provider": "pollscript",
            "model": "sora-2",
            "upstream_model": "sora-2",
            "request": {},
            "prompt": "p",
            "seconds": "4",
            "size": "720x1280",
            "status": "queued",
            "created_at": int(clock.now),
            "updated_at": clock.now,
            "lease_owner": "dead",
            "lease_until": clock.now + 30,
        },
    )
    assert await videos.fail_stale_submissions() == 0  # its submitter may still be at work
    clock.now += 31
    assert await videos.fail_stale_submissions() == 1
    row = await videos.store.get_task("video_cut")
    assert row is not None and row.status == "failed" and row.error_code == "upstream_error"
    assert "not submitted again" in (row.error_message or "")
    assert Scripted.polls == 0


async def test_removed_channel_is_not_failed(service: tuple[Service, Clock], tmp_path: Path):
    videos, clock = service
    row = await running(videos)
    await update_task(videos.store, row.id, {"channel": "gone"})
    row = await poll_once(videos, clock)
    assert row.status == "queued" and row.poll_interval == 10.0


# --- the loop ------------------------------------------------------------------------------


async def test_loop_bounds_concurrency_and_releases_leases(
    start_relay: Callable[[Config], Any], poll_config: Config
):
    Scripted.gate = asyncio.Event()
    relay: Relay = await start_relay(poll_config)
    ids = [(await relay.create())["id"] for _ in range(5)]
    for row_id in ids:  # make all five due now
        await update_task(relay.store, row_id, {"next_poll_at": 0.0})
    relay.poller.wake()
    for _ in range(100):
        if Scripted.in_poll == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert Scripted.most_in_poll == 2  # polling.concurrency
    Scripted.gate.set()
    await relay.poller.stop()
    leased = [r for r in [await relay.store.get_task(i) for i in ids] if r and r.lease_owner]
    assert leased == []


async def test_two_pollers_on_one_database_never_poll_a_task_twice(
    start_relay: Callable[[Config], Any], poll_config: Config
):
    relay: Relay = await start_relay(poll_config)
    await relay.poller.stop()
    ids = [(await relay.create())["id"] for _ in range(6)]
    for row_id in ids:
        await update_task(relay.store, row_id, {"next_poll_at": 0.0})
    Scripted.gate = asyncio.Event()
    ctx = relay.videos.ctx
    other = Videos(Context(ctx.store, ctx.runtime, ctx.events, ctx.clock, instance="other"))
    first = Poller(relay.lifecycle, relay.store, relay.runtime, instance="me", clock=relay.clock)
    second = Poller(
        other.lifecycle, relay.store, relay.runtime, instance="other", clock=relay.clock
    )
    await asyncio.gather(first.round(), second.round())
    await asyncio.sleep(0.05)
    assert Scripted.in_poll == 4  # two each (concurrency 2), four distinct tasks
    leases = [
        (r.id, r.lease_owner)
        for r in [await relay.store.get_task(i) for i in ids]
        if r and r.lease_owner
    ]
    assert len(leases) == 4 and len({i for i, _ in leases}) == 4
    Scripted.gate.set()
    await first.stop()
    await second.stop()


async def test_status_stays_on_the_wire_vocabulary(relay: Relay):
    video = await relay.create()
    seen = set()
    while True:
        body = await relay.get(video["id"])
        seen.add(body["status"])
        if body["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.01)
    assert seen <= {"queued", "in_progress", "completed"}
    resp = await relay.client.get(f"/v1/videos/{video['id']}", headers=auth())
    assert "openai-poll-after-ms" not in resp.headers  # finished: no poll hint


# --- the rules an adapter declares, and the channel effects of a poll -----------------------


async def test_an_error_streak_fails_the_task_where_the_adapter_says_so(
    service: tuple[Service, Clock], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(Scripted, "poll_rules", PollRules(fail_after_errors=3))
    videos, clock = service
    await running(videos)
    Scripted.script.extend([Unavailable("gateway 502")] * 5)  # outages never count
    for _ in range(5):
        assert (await poll_once(videos, clock)).status == "queued"
    Scripted.script.extend([TransientError("1001: timeout")] * 2)
    for _ in range(2):
        row = await poll_once(videos, clock)
        assert row.status == "queued"
    assert row.poll_errors == 2
    Scripted.script.append(TransientError("1001: timeout"))
    row = await poll_once(videos, clock)
    assert (row.status, row.error_code) == ("failed", "upstream_error")
    assert row.error_message == "1001: timeout (3 polls in a row)"


async def test_a_transient_streak_never_fails_without_the_rule(service: tuple[Service, Clock]):
    videos, clock = service
    await running(videos)
    Scripted.script.extend([TransientError("1001: timeout")] * 8)
    for _ in range(8):
        assert (await poll_once(videos, clock)).status == "queued"


async def test_an_unknown_id_right_after_submit_is_waited_for(
    service: tuple[Service, Clock], monkeypatch: pytest.MonkeyPatch
):
    rules = PollRules(not_found_window_s=30, not_found_backoff=(2.0, 3.0))
    monkeypatch.setattr(Scripted, "poll_rules", rules)
    videos, clock = service
    row = await running(videos)
    clock.now = row.submitted_at + 1  # type: ignore[operator]
    waits = []
    for _ in range(2):
        Scripted.script.append(TaskNotFound("task_not_exist"))
        row = await poll_once(videos, clock)
        assert row.status == "queued"
        waits.append(round((row.next_poll_at or 0) - clock.now, 3))
    assert waits == [2.0, 3.0]
    Scripted.script.append(TaskNotFound("task_not_exist"))
    row = await poll_once(videos, clock)  # the backoff is used up: gone
    assert (row.status, row.error_code) == ("failed", "task_expired")


async def test_an_unknown_id_after_the_window_is_gone_at_once(
    service: tuple[Service, Clock], monkeypatch: pytest.MonkeyPatch
):
    rules = PollRules(not_found_window_s=30, not_found_backoff=(2.0, 3.0))
    monkeypatch.setattr(Scripted, "poll_rules", rules)
    videos, clock = service
    row = await running(videos)
    clock.now = row.submitted_at + 31  # type: ignore[operator]
    Scripted.script.append(TaskNotFound("task_not_exist"))
    row = await poll_once(videos, clock)
    assert (row.status, row.error_code) == ("failed", "task_expired")


async def test_refused_credentials_and_quota_at_poll_take_the_channel_out(
    service: tuple[Service, Clock],
):
    videos, clock = service
    await running(videos)
    channel = videos.videos.ctx.runtime.channels.get("p")
    assert channel is not None
    Scripted.script.append(QuotaExceeded("no balance"))
    row = await poll_once(videos, clock)
    assert row.status == "queued" and channel.health.state == "quota"
    Scripted.script.append(AuthFailed("key refused"))
    row = await poll_once(videos, clock)
    assert row.status == "queued" and channel.health.state == "credentials"


class CountingStore:
    """The two calls a poller round makes, counted; `due` is handed out by the claims."""

    def __init__(self, due: list[str]) -> None:
        self.due = [SimpleNamespace(id=task_id) for task_id in due]
        self.claims = 0
        self.lookups = 0

    async def claim_due(self, **kwargs: Any) -> list[Any]:
        self.claims += 1
        taken, self.due = self.due[: kwargs["limit"]], self.due[kwargs["limit"] :]
        return taken

    async def next_due(self, now: float) -> float | None:
        self.lookups += 1
        return now + 60.0

    async def release_leases(self, lease_owner: str) -> None:
        pass


async def run_bare_poller(store: CountingStore, concurrency: int) -> None:
    """A poller over `store` whose refreshes end at once, for 0.2 s (idle_s is 1 s)."""

    async def refresh(*args: Any) -> None:
        pass

    polling = SimpleNamespace(concurrency=concurrency, interval_s=5.0)
    runtime = SimpleNamespace(config=SimpleNamespace(polling=polling), channels=[])
    lifecycle = SimpleNamespace(refresh=refresh)
    poller = Poller(lifecycle, store, runtime, instance="me", clock=time.time)  # type: ignore[arg-type]
    poller._last_sweep = time.time()  # no sweep in these 0.2 s
    poller.start()
    await asyncio.sleep(0.2)
    await poller.stop()


async def test_a_finished_refresh_with_slots_to_spare_costs_the_store_nothing():
    """The round that claimed the task found fewer due than it had room for, so nothing else is
    due before what next_due said: the refresh ending adds no claim and no lookup (on
    PostgreSQL two transactions less per poll; bench/scaleout.py)."""
    store = CountingStore(["t1"])
    await run_bare_poller(store, concurrency=4)
    assert (store.claims, store.lookups) == (1, 1)


async def test_a_finished_refresh_wakes_a_loop_that_was_out_of_slots():
    store = CountingStore(["t1", "t2"])
    await run_bare_poller(store, concurrency=1)
    assert store.due == [] and store.claims >= 2  # t2 claimed at once, not after idle_s
