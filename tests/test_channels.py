"""The channel table's policy: candidates, tiers, weights, cooldowns, credentials, capacity;
and failover between two real channels as a client sees it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.channels import COOLDOWN_FIRST_S, COOLDOWN_MAX_S, Channel, ChannelTable
from relay.config import ChannelConfig, Config
from relay.providers.demo import DemoProvider
from tests.conftest import Relay, auth
from tests.fakes.vidu import ViduFake


def channel(name: str, priority: int = 0, weight: int = 1, **kw: Any) -> Channel:
    cfg = ChannelConfig(
        name=name, provider="demo", models=("m",), priority=priority, weight=weight, **kw
    )
    return Channel(cfg, DemoProvider(cfg, None))


def table(*channels: Channel, seed: int = 1) -> ChannelTable:
    return ChannelTable(channels, rng=random.Random(seed))


def test_tiers_first_then_weights():
    t = table(channel("low"), channel("high-a", 10), channel("high-b", 10))
    for seed in range(20):
        t._rng.seed(seed)
        names = [c.name for c in t.order(list(t), 0).channels]
        assert set(names[:2]) == {"high-a", "high-b"} and names[2] == "low"


def test_weighted_share_inside_a_tier():
    t = table(channel("a", weight=3), channel("b", weight=1), seed=7)
    firsts = Counter(t.order(list(t), 0).channels[0].name for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80  # 3 : 1


def test_cooldown_doubles_and_honours_retry_after():
    a = channel("a")
    t = table(a, channel("b"))
    assert t.cool_down(a, 100.0, None, "503") == COOLDOWN_FIRST_S
    assert t.cool_down(a, 100.0, None, "503") == COOLDOWN_FIRST_S * 2
    assert t.cool_down(a, 100.0, 120.0, "429") == 120.0  # Retry-After wins when longer
    for _ in range(20):
        t.cool_down(a, 100.0, None, "503")
    assert a.failures > 10 and a.cooldown_until <= 100.0 + max(COOLDOWN_MAX_S, 120.0)
    selection = t.order(list(t), 101.0)
    assert [c.name for c in selection.channels] == ["b"] and selection.cooling == [a]
    t.succeeded(a)
    assert a.failures == 0 and a.available(101.0)


def test_refused_credentials_take_a_channel_out_until_reload():
    a = channel("a")
    t = table(a)
    t.refuse_auth(a, "401")
    assert t.order([a], 10**9).channels == []
    fresh = table(channel("a"))  # a reload builds a new table
    assert [c.name for c in fresh.order(list(fresh), 0).channels] == ["a"]


def test_full_channels_are_skipped():
    a, b = channel("a", max_in_flight=1), channel("b", max_in_flight=0)
    t = table(a, b)
    a.in_flight = 1
    b.in_flight = 1000  # 0 means no cap
    selection = t.order(list(t), 0)
    assert [c.name for c in selection.channels] == ["b"] and selection.full == [a]
    t.set_in_flight({"a": 0})
    assert a.in_flight == 0 and b.in_flight == 0


def test_candidates_and_models():
    t = table(
        channel("a"),
        Channel(
            cfg := ChannelConfig(name="off", provider="demo", models=("m", "x"), enabled=False),
            DemoProvider(cfg, None),
        ),
    )
    assert t.models() == ["m"]
    assert t.knows("x") and not t.serving("x")
    assert [c.name for c in t.serving("m")] == ["a"]


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
    ("status", "reason", "retry_after"),
    [
        (500, "InternalServiceFailure", None),
        (503, "SystemThrottling", None),
        (429, "TooManyRequests", "30"),
    ],
)
async def test_failover_on_outage_and_rate_limit(
    two: Relay, vidu: ViduFake, status: int, reason: str, retry_after: str | None
):
    vidu.fail_next_submit(status, reason, "try later", retry_after)
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.failures == 1
    assert first.cooldown_until > two.clock()
    if retry_after:
        assert first.cooldown_until >= two.clock() + 29
    creates_before = len(vidu.creates())
    again = await two.create()  # while it cools down, the first channel is not tried
    assert len(vidu.creates()) == creates_before
    row = await two.store.get_task(again["id"])
    assert row is not None and row.channel == "second"
    assert (await two.wait(video["id"]))["status"] == "completed"


async def test_failover_on_refused_credentials(two: Relay, vidu: ViduFake, logs: Any):
    vidu.fail_next_submit(401, "Unauthorized", "unauthorized")
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.auth_refused
    await two.create()
    await two.create()
    assert len(vidu.creates()) == 1  # out until the config is reloaded
    assert sum("out until the config is reloaded" in r.message for r in logs.records) == 1


async def test_rejected_request_is_not_failed_over(two: Relay, vidu: ViduFake):
    resp = await two.client.post("/v1/videos", json={"prompt": "forbidden #reject"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    first = two.runtime.channels.get("first")
    assert first is not None and first.failures == 0
    assert (await (await two.client.get("/v1/videos", headers=auth())).json())["data"] == []


async def test_every_channel_failing_is_502_and_then_503(
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
        vidu.fail_next_submit(500, "InternalServiceFailure", "down")
        other.fail_next_submit(503, "SystemThrottling", "busy")
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == "upstream_error"
        assert len(vidu.creates()) == len(other.creates()) == 1
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        assert resp.status == 503  # both cool down now
        assert (await resp.json())["error"]["code"] == "no_available_channel"
    finally:
        await other.close()


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
