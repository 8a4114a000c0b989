"""The events seam: what a task's life emits, what an upstream call and a download emit, and a
subscriber that fails never fails the use case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.config import Config
from relay.events import (
    BytesStreamed,
    Events,
    PollRan,
    TaskCreated,
    TaskFinished,
    TaskSubmitted,
    UpstreamCall,
)
from tests.conftest import Relay, auth
from tests.fakes.vidu import ViduFake


def record(events: Events, *kinds: type[Any]) -> list[Any]:
    seen: list[Any] = []
    for kind in kinds:
        events.subscribe(kind, seen.append)
    return seen


async def test_a_task_emits_its_life_in_order(relay: Relay):
    seen = record(relay.videos.ctx.events, TaskCreated, TaskSubmitted, PollRan, TaskFinished)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    kinds = [type(e).__name__ for e in seen]
    assert kinds[:2] == ["TaskCreated", "TaskSubmitted"]
    assert kinds[-1] == "TaskFinished" and kinds.count("TaskFinished") == 1
    assert "PollRan" in kinds
    created, submitted, finished = seen[0], seen[1], seen[-1]
    assert created.task_id == submitted.task_id == finished.task_id == video["id"]
    assert (created.owner, created.model, created.channel) == ("alice", "sora-2", "demo")
    assert submitted.next_poll_at is not None
    assert (finished.status, finished.error_code) == ("completed", None)
    polls = [e for e in seen if isinstance(e, PollRan)]
    assert all(p.lag_s >= 0 and p.outcome == "ok" for p in polls)


async def test_a_download_emits_its_bytes(relay: Relay):
    seen = record(relay.videos.ctx.events, BytesStreamed)
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=0-99"}
    )
    assert resp.status == 206 and len(await resp.read()) == 100
    assert [(e.task_id, e.variant, e.source, e.bytes) for e in seen] == [
        (video["id"], "video", "local", 100)
    ]


async def test_upstream_calls_carry_outcome_and_duration(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    fake = ViduFake()
    await fake.start()
    try:
        relay: Relay = await start_relay(make_config(channels=[fake.channel(fake.base_url)]))
        seen = record(relay.videos.ctx.events, UpstreamCall)
        fake.fail_next_submit(500, "InternalServiceFailure", "down")
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        assert resp.status == 502
        video = await relay.create()
        await relay.wait(video["id"])
        first, second = seen[0], seen[1]
        assert (first.channel, first.provider, first.method) == ("vidu", "vidu", "POST")
        assert (first.status, first.outcome) == (500, "http_5xx")
        assert (second.status, second.outcome) == (200, "ok")
        assert all(e.duration_s >= 0 for e in seen)
    finally:
        await fake.close()


async def test_a_failing_subscriber_never_fails_the_use_case(relay: Relay, logs: Any):
    def broken(_: Any) -> None:
        raise RuntimeError("subscriber bug")

    relay.videos.ctx.events.subscribe(TaskCreated, broken)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert any("a subscriber of TaskCreated failed" in r.message for r in logs.records)
