"""The channel table: routes, tiers, weights, the breaker and its half-open probe, pauses for
rate limits, credentials and quota, in-flight slots; and failover between two real channels as a
client sees it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.config import ChannelConfig, Config
from relay.domain import Image, Size, VideoRequest
from relay.events import ChannelChanged, Events
from relay.policy import ChannelEffect
from relay.providers.base import Provider, Submitted
from relay.providers.demo import DemoProvider
from relay.routing import (
    PAUSE_FIRST_S,
    PAUSE_MAX_S,
    PROBE_EVERY_S,
    RATE_LIMIT_PAUSE_S,
    Channel,
    ChannelTable,
    Route,
    build_adapter,
)
from tests.conftest import Relay, auth
from tests.fakes.vidu import ViduFake

REQUEST = VideoRequest(prompt="p", model="m", seconds=4, size=Size(720, 1280))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def channel(name: str, priority: int = 0, weight: int = 1, **kw: Any) -> Channel:
    cfg = ChannelConfig(
        name=name, provider="demo", models=("m",), priority=priority, weight=weight, **kw
    )
    return Channel(cfg, build_adapter(cfg, DemoProvider, None))


def table(*channels: Channel, seed: int = 1, clock: Clock | None = None) -> ChannelTable:
    return ChannelTable(channels, rng=random.Random(seed), clock=clock or Clock())


def admitted(t: ChannelTable, routes: list[Route] | None = None) -> str | None:
    """The channel the next request may try, if any (its slot is taken)."""
    route = t.admit(routes if routes is not None else t.routes(REQUEST)).route
    return route.channel.name if route else None


def fail(t: ChannelTable, c: Channel, times: int = 1) -> None:
    for _ in range(times):
        t.record(c, ChannelEffect.FAILURE, error="Unavailable", why="503")


# --- routes ---------------------------------------------------------------------------------


def test_tiers_first_then_weights():
    t = table(channel("low"), channel("high-a", 10), channel("high-b", 10))
    for seed in range(20):
        t._rng.seed(seed)
        names = [r.channel.name for r in t.routes(REQUEST)]
        assert set(names[:2]) == {"high-a", "high-b"} and names[2] == "low"


def test_weighted_share_inside_a_tier():
    t = table(channel("a", weight=3), channel("b", weight=1), seed=7)
    firsts = Counter(t.routes(REQUEST)[0].channel.name for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80  # 3 : 1


def test_a_route_carries_the_upstream_model_of_the_job_shape():
    c = channel("a", model_map={"m": {"text": "t2v", "image": "i2v"}})
    t = table(c)
    assert [(r.upstream_model, r.shape) for r in t.routes(REQUEST)] == [("t2v", "text")]
    with_image = VideoRequest(prompt="p", model="m", images=(Image(url="https://x.test/a"),))
    assert [(r.upstream_model, r.shape) for r in t.routes(with_image)] == [("i2v", "image")]


def test_candidates_and_models():
    off = ChannelConfig(name="off", provider="demo", models=("m", "x"), enabled=False)
    t = table(channel("a"), Channel(off, build_adapter(off, DemoProvider, None)))
    assert t.models() == ["m"]
    assert t.knows("x") and not t.serving("x")
    assert [c.name for c in t.serving("m")] == ["a"]
    assert [r.channel.name for r in t.routes(REQUEST)] == ["a"]


# --- the breaker ----------------------------------------------------------------------------


def test_one_hiccup_does_not_black_out_a_channel():
    a = channel("a")
    t = table(a)
    fail(t, a, 2)
    assert a.health.state == "ready" and a.health.failures == 2
    assert admitted(t) == "a"
    t.record(a, ChannelEffect.ALIVE)
    assert a.health.failures == 0


def test_three_failures_in_a_row_open_the_breaker_then_one_probe_at_a_time():
    clock = Clock()
    a, b = channel("a"), channel("b")
    t = table(a, b, clock=clock)
    fail(t, a, 3)
    assert a.health.state == "cooling" and a.health.until == clock.now + PAUSE_FIRST_S
    assert [admitted(t) for _ in range(3)] == ["b", "b", "b"]  # a is skipped while b serves
    clock.now += PAUSE_FIRST_S
    first = t.admit([r for r in t.routes(REQUEST) if r.channel is a])
    assert first.route is not None and a.health.probing  # the pause is over: one probe
    assert t.admit([r for r in t.routes(REQUEST) if r.channel is a]).route is None
    fail(t, a)  # the probe failed: open again, for twice as long
    assert a.health.state == "cooling" and a.health.until == clock.now + 2 * PAUSE_FIRST_S
    assert not a.health.probing
    clock.now += 2 * PAUSE_FIRST_S
    assert t.admit([r for r in t.routes(REQUEST) if r.channel is a]).route is not None
    t.record(a, ChannelEffect.ALIVE)
    assert a.health.state == "ready" and a.health.openings == 0


def test_the_pause_doubles_up_to_its_cap_and_honours_retry_after():
    clock = Clock()
    a = channel("a")
    t = table(a, clock=clock)
    for _ in range(30):
        t.record(a, ChannelEffect.FAILURE, why="503")
    assert a.health.until == clock.now + PAUSE_MAX_S
    b = channel("b")
    t2 = table(b, clock=clock)
    fail(t2, b, 2)
    t2.record(b, ChannelEffect.FAILURE, retry_after=120.0, why="503 with Retry-After")
    assert b.health.until == clock.now + 120.0


def test_when_every_channel_cools_one_request_goes_to_the_first_back():
    clock = Clock()
    a, b = channel("a"), channel("b")
    t = table(a, b, clock=clock)
    fail(t, a, 3)
    clock.now += 1
    fail(t, b, 3)
    admission = t.admit(t.routes(REQUEST))
    assert admission.route is not None and admission.route.channel is a  # a is back first
    refused = t.admit(t.routes(REQUEST))  # the probe is in flight: nobody else
    assert refused.route is None and refused.back_at == a.health.until
    assert t.retry_after(refused) >= 1
    t.record(a, ChannelEffect.ALIVE)
    assert admitted(t) == "a"


def test_a_rate_limit_pauses_for_retry_after_or_five_seconds():
    clock = Clock()
    a, b = channel("a"), channel("b")
    t = table(a, b, clock=clock)
    t.record(a, ChannelEffect.PAUSE, retry_after=30.0, why="429")
    t.record(b, ChannelEffect.PAUSE, why="429")
    assert a.health.until == clock.now + 30 and b.health.until == clock.now + RATE_LIMIT_PAUSE_S
    assert admitted(t) is None  # a rate limit is not let through early
    clock.now += RATE_LIMIT_PAUSE_S
    assert admitted(t) == "b" and b.health.state == "ready"


@pytest.mark.parametrize(
    ("effect", "state"), [(ChannelEffect.REFUSED, "credentials"), (ChannelEffect.QUOTA, "quota")]
)
def test_refused_credentials_and_quota_are_probed_every_15_minutes(
    effect: ChannelEffect, state: str
):
    clock = Clock()
    a = channel("a")
    t = table(a, clock=clock)
    t.record(a, effect, why="401")
    assert a.health.state == state
    assert admitted(t) is None
    clock.now += PROBE_EVERY_S
    assert admitted(t) == "a" and admitted(t) is None  # one probe
    t.record(a, effect, why="401 again")
    assert admitted(t) is None and a.health.until == clock.now + PROBE_EVERY_S
    clock.now += PROBE_EVERY_S
    assert admitted(t) == "a"
    t.record(a, ChannelEffect.ALIVE)  # fixed or topped up: back without a reload
    assert a.health.state == "ready"
    fresh = table(channel("a"))  # and a reload builds a new table at once
    assert admitted(fresh) == "a"


def test_state_changes_are_events_once():
    events = Events()
    seen: list[tuple[str, str]] = []
    events.subscribe(ChannelChanged, lambda e: seen.append((e.channel, e.state)))
    clock = Clock()
    a = channel("a")
    t = ChannelTable([a], events=events, clock=clock)
    fail(t, a, 5)  # opens at the third; the others keep it open: no news
    t.record(a, ChannelEffect.REFUSED, why="401")
    t.record(a, ChannelEffect.REFUSED, why="401")
    t.record(a, ChannelEffect.ALIVE)
    assert seen == [("a", "cooling"), ("a", "credentials"), ("a", "ready")]


# --- in-flight slots ------------------------------------------------------------------------


def test_full_channels_are_skipped_and_slots_come_back():
    a, b = channel("a", max_in_flight=1), channel("b", max_in_flight=0)
    t = table(a, b)
    b.in_flight = 1000  # 0 means no cap
    routes = t.routes(REQUEST)
    a_first = [r for r in routes if r.channel is a] + [r for r in routes if r.channel is b]
    assert admitted(t, a_first) == "a" and a.in_flight == 1
    assert admitted(t, a_first) == "b"  # a is full now
    only_a = [r for r in routes if r.channel is a]
    refused = t.admit(only_a)
    assert refused.route is None and refused.full and refused.back_at is None
    t.release(a)
    assert admitted(t, only_a) == "a"
    t.set_in_flight({"a": 0})
    assert a.in_flight == 0 and b.in_flight == 0


# --- failover through the relay: a Vidu fake first, the demo second ---------------------------


@pytest.fixture
async def vidu() -> AsyncIterator[ViduFake]:
    fake = ViduFake()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def two(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    first = {**vidu.channel(vidu.base_url), "name": "first", "priority": 10}
    second = {
        "name": "second",
        "provider": "demo",
        "models": ["sora-2"],
        "options": {"finish_after_s": 0.2},
    }
    config = make_config(storage={"keep_videos": False}, channels=[first, second])
    return await start_relay(config)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "InternalServiceFailure"), (502, "BadGateway")]
)
async def test_failover_on_an_outage_keeps_the_channel_in_use(
    two: Relay, vidu: ViduFake, status: int, reason: str
):
    vidu.fail_next_submit(status, reason, "try later")
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 1
    assert first.health.state == "ready"  # one hiccup does not take it out
    creates_before = len(vidu.creates())
    again = await two.create()
    assert len(vidu.creates()) == creates_before + 1
    row = await two.store.get_task(again["id"])
    assert row is not None and row.channel == "first"
    assert first.health.failures == 0
    assert (await two.wait(video["id"]))["status"] == "completed"


async def test_failover_on_a_rate_limit_pauses_the_channel(two: Relay, vidu: ViduFake):
    vidu.fail_next_submit(429, "TooManyRequests", "try later", "30")
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == "rate_limited"
    assert first.health.until >= two.clock() + 29
    creates_before = len(vidu.creates())
    again = await two.create()  # while it is paused, the first channel is not tried
    assert len(vidu.creates()) == creates_before
    row = await two.store.get_task(again["id"])
    assert row is not None and row.channel == "second"


async def test_failover_on_refused_credentials(two: Relay, vidu: ViduFake, logs: Any):
    vidu.fail_next_submit(401, "Unauthorized", "unauthorized")
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == "credentials"
    await two.create()
    await two.create()
    assert len(vidu.creates()) == 1  # out until its probe is due, or a reload
    assert sum("refused its credentials" in r.message for r in logs.records) == 1


async def test_rejected_request_is_not_failed_over(two: Relay, vidu: ViduFake):
    resp = await two.client.post("/v1/videos", json={"prompt": "forbidden #reject"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0
    assert (await (await two.client.get("/v1/videos", headers=auth())).json())["data"] == []


async def test_every_channel_failing_is_502_and_then_one_probe(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    other = ViduFake()
    await other.start()
    try:
        config = make_config(
            storage={"keep_videos": False},
            channels=[
                {**vidu.channel(vidu.base_url), "name": "one"},
                {**other.channel(other.base_url), "name": "two"},
            ],
        )
        relay: Relay = await start_relay(config)
        for _ in range(3):
            vidu.fail_next_submit(500, "InternalServiceFailure", "down")
            other.fail_next_submit(502, "BadGateway", "busy")
            resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
            assert resp.status == 502
            assert (await resp.json())["error"]["code"] == "upstream_error"
        assert len(vidu.creates()) == len(other.creates()) == 3
        # both breakers are open: the next request probes only the channel back first
        vidu.fail_next_submit(500, "InternalServiceFailure", "down")
        other.fail_next_submit(502, "BadGateway", "busy")
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        assert resp.status == 502
        assert len(vidu.creates()) + len(other.creates()) == 7
    finally:
        await other.close()


async def test_every_channel_rate_limited_is_a_429_with_retry_after(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        storage={"keep_videos": False}, channels=[{**vidu.channel(vidu.base_url), "name": "one"}]
    )
    relay: Relay = await start_relay(config)
    vidu.fail_next_submit(429, "TooManyRequests", "slow down", "12")
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await resp.json()
    assert resp.status == 429, body
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert resp.headers["Retry-After"] == "12"
    assert (await (await relay.client.get("/v1/videos", headers=auth())).json())["data"] == []


async def test_max_in_flight(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {
                "name": "small",
                "provider": "demo",
                "models": ["sora-2"],
                "priority": 10,
                "max_in_flight": 1,
                "options": {"finish_after_s": 30},
            },
            {
                "name": "big",
                "provider": "demo",
                "models": ["sora-2"],
                "max_in_flight": 1,
                "options": {"finish_after_s": 30},
            },
        ]
    )
    relay: Relay = await start_relay(config)
    first = await relay.create()
    second = await relay.create()
    rows = [await relay.store.get_task(v["id"]) for v in (first, second)]
    assert [r.channel for r in rows if r] == ["small", "big"]  # the full channel is skipped
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.json()
    assert body["error"]["type"] == "rate_limit_error"


class Slow(DemoProvider):
    """The demo, whose submit waits at a gate: a burst of creates is in flight at once."""

    name = "slow"
    gate: asyncio.Event | None = None
    submits = 0

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        type(self).submits += 1
        assert self.gate is not None
        await self.gate.wait()
        return await super().submit(request, model)


async def test_max_in_flight_holds_under_a_burst(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    providers["slow"] = Slow
    Slow.gate, Slow.submits = asyncio.Event(), 0
    config = make_config(
        channels=[
            {
                "name": "capped",
                "provider": "slow",
                "models": ["sora-2"],
                "max_in_flight": 2,
                "options": {"finish_after_s": 30},
            }
        ]
    )
    relay: Relay = await start_relay(config)
    burst = [
        asyncio.create_task(relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth()))
        for _ in range(6)
    ]
    for _ in range(200):
        if Slow.submits == 2 and sum(t.done() for t in burst) == 4:
            break
        await asyncio.sleep(0.01)
    assert Slow.submits == 2  # the slot is taken before the upstream call
    Slow.gate.set()
    statuses = sorted([(await t).status for t in burst])
    assert statuses == [200, 200, 429, 429, 429, 429]
    channel = relay.runtime.channels.get("capped")
    assert channel is not None and channel.in_flight == 2


async def test_in_flight_is_recounted_from_the_store(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {
                "name": "capped",
                "provider": "demo",
                "models": ["sora-2"],
                "max_in_flight": 1,
                "options": {"finish_after_s": 30},
            }
        ]
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    channel = relay.runtime.channels.get("capped")
    assert channel is not None and channel.in_flight == 1
    # another process finishes the task (straight in the store, no event reaches this one)
    from relay.domain import Outcome

    await relay.store.finish(video["id"], None, Outcome("completed"), now=relay.clock())
    assert channel.in_flight == 1
    await relay.poller.sweep()
    assert channel.in_flight == 0
    assert (
        await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    ).status == 200


async def test_two_relays_on_one_store_share_a_channels_health(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(storage={"keep_videos": False}, channels=[vidu.channel(vidu.base_url)])
    one: Relay = await start_relay(config)
    two: Relay = await start_relay(config)  # the same data_dir: the same SQLite store
    vidu.fail_next_submit(401, "Unauthorized", "unauthorized")
    resp = await one.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert one.runtime.channels.get("vidu").health.state == "credentials"  # type: ignore[union-attr]
    await one.health.round()  # publishes the change
    await two.health.round()  # adopts it
    theirs = two.runtime.channels.get("vidu")
    assert theirs is not None and theirs.health.state == "credentials"
    creates = len(vidu.creates())
    resp = await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 503  # spared by the relay that never saw the 401 itself
    assert len(vidu.creates()) == creates
    one.runtime.channels.record(one.runtime.channels.get("vidu"), ChannelEffect.ALIVE)  # type: ignore[arg-type]
    await one.health.round()
    await two.health.round()
    assert theirs.health.state == "ready"
    assert (await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())).status == 200


async def test_a_relay_started_later_does_not_inherit_an_old_state(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(storage={"keep_videos": False}, channels=[vidu.channel(vidu.base_url)])
    one: Relay = await start_relay(config)
    vidu.fail_next_submit(401, "Unauthorized", "unauthorized")
    resp = await one.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    await one.health.round()  # published
    # the operator fixes the key and restarts: the new relay tries the channel again
    later: Relay = await start_relay(config)
    await later.health.round()
    mine = later.runtime.channels.get("vidu")
    assert mine is not None and mine.health.state == "ready"
    assert (
        await later.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    ).status == 200
