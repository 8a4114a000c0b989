"""GET /metrics: who may scrape it, and what a scrape shows after real traffic, on the demo and on
a fake Vidu (parsed with the Prometheus client's own parser)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.config import Config
from tests.conftest import ALICE, ROOT, Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.vidu import ViduFake

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(relay: Relay) -> tuple[Samples, str]:
    resp = await relay.client.get("/metrics", headers=auth(ROOT))
    text = await resp.text()
    assert resp.status == 200, text
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def download(relay: Relay, video_id: str, **headers: str) -> bytes:
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers={**auth(), **headers})
    assert resp.status in (200, 206)
    return await resp.read()


# --- who may scrape ---------------------------------------------------------------------------


async def test_an_admin_key_may_scrape_a_user_key_may_not(relay: Relay):
    assert (await relay.client.get("/metrics", headers=auth(ROOT))).status == 200
    resp = await relay.client.get("/metrics", headers=auth(ALICE))
    assert resp.status == 403
    assert (await resp.json())["error"]["type"] == "permission_error"
    resp = await relay.client.get("/metrics")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_api_key"
    assert (await relay.client.get("/metrics", headers=auth("sk-wrong"))).status == 401


async def test_loopback_needs_no_key_with_metrics_loopback(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    relay: Relay = await start_relay(make_config(server={"metrics_loopback": True}))
    resp = await relay.client.get("/metrics")  # the test client comes from 127.0.0.1
    assert resp.status == 200
    assert "relay_channel_state" in await resp.text()
    # a reverse proxy on this host passes remote clients on: they need a key
    proxied = await relay.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 401
    # a key sent is checked all the same
    assert (await relay.client.get("/metrics", headers=auth(ALICE))).status == 403


async def test_loopback_needs_a_key_by_default(relay: Relay):
    assert (await relay.client.get("/metrics")).status == 401


# --- what a scrape shows ------------------------------------------------------------------------


async def test_a_scrape_after_traffic_on_the_demo(relay: Relay):
    done = await relay.create()
    failed = await relay.create(prompt="a storm #fail")
    assert (await relay.wait(done["id"]))["status"] == "completed"
    assert (await relay.wait(failed["id"]))["status"] == "failed"
    body = await download(relay, done["id"])
    part = await download(relay, done["id"], Range="bytes=0-99")
    assert len(part) == 100
    missing = await relay.client.get("/v1/videos/video_nosuchid", headers=auth())
    assert missing.status == 404
    assert (await relay.client.get("/no/such/path", headers=auth())).status == 404
    delete = await relay.client.delete(f"/v1/videos/{failed['id']}", headers=auth())
    assert delete.status == 200

    m, text = await scrape(relay)
    # tasks in the store, by status (the failed one was deleted)
    assert series(m, "relay_tasks") == {
        frozenset({("status", "completed")}): 1.0,
        frozenset({("status", "failed")}): 0.0,
        frozenset({("status", "queued")}): 0.0,
        frozenset({("status", "in_progress")}): 0.0,
    }
    assert value(m, "relay_tasks_created_total", model="sora-2", channel="demo") == 2
    assert value(m, "relay_tasks_finished_total", channel="demo", status="completed", code="") == 1
    failed_code = "moderation_blocked"
    assert (
        value(m, "relay_tasks_finished_total", channel="demo", status="failed", code=failed_code)
        == 1
    )
    # the demo is an upstream too: every adapter operation is counted and timed
    upstream = "relay_upstream_requests_total"
    assert value(m, upstream, channel="demo", op="submit", outcome="ok") == 2
    assert value(m, upstream, channel="demo", op="content", outcome="ok") == 2
    assert value(m, upstream, channel="demo", op="delete", outcome="ok") == 1
    polls = value(m, upstream, channel="demo", op="poll", outcome="ok")
    assert polls >= 2
    duration = "relay_upstream_request_duration_seconds_count"
    assert value(m, duration, channel="demo", op="poll") == polls
    assert value(m, "relay_poll_lag_seconds_count") == polls
    assert value(m, "relay_poll_lag_seconds_bucket", le="+Inf") == polls
    # the demo's clip is a local file: "stored" bytes, both downloads in full
    assert value(m, "relay_content_bytes_total", source="stored") == len(body) + 100
    assert value(m, "relay_content_bytes_total", source="upstream") == 0
    assert value(m, "relay_content_streams") == 0
    assert value(m, "relay_stored_bytes") == 0
    assert value(m, "relay_webhook_deliveries_total", outcome="delivered") == 0
    # the channel
    states = series(m, "relay_channel_state")
    assert states[frozenset({("channel", "demo"), ("state", "ready")})] == 1
    assert sum(states.values()) == 1 and len(states) == 5
    assert value(m, "relay_channel_in_flight", channel="demo") == 0
    # HTTP, by route pattern: never a raw path or id
    http = "relay_http_requests_total"
    one = "/v1/videos/{video_id}"
    assert value(m, http, route="/v1/videos", method="POST", status="200") == 2
    assert value(m, http, route=one, method="GET", status="404") == 1
    assert value(m, http, route=one, method="GET", status="200") >= 2
    assert value(m, http, route=one, method="DELETE", status="200") == 1
    assert value(m, http, route=one + "/content", method="GET", status="200") == 1
    assert value(m, http, route=one + "/content", method="GET", status="206") == 1
    assert value(m, http, route="unmatched", method="GET", status="404") == 1
    assert value(m, "relay_http_request_duration_seconds_count", route="/v1/videos") == 2
    assert "video_nosuchid" not in text and done["id"] not in text and "/no/such" not in text
    # the client library's process collector
    assert m[("process_cpu_seconds_total", frozenset())] > 0
    assert value(m, "process_resident_memory_bytes") > 0


async def test_channel_states_full_and_disabled(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    channels = [
        {
            "name": "busy",
            "provider": "demo",
            "models": ["sora-2"],
            "max_in_flight": 1,
            "options": {"finish_after_s": 30},
        },
        {"name": "off", "provider": "demo", "models": ["sora-2"], "enabled": False},
    ]
    relay: Relay = await start_relay(make_config(channels=channels))
    await relay.create()
    m, _ = await scrape(relay)
    assert value(m, "relay_channel_state", channel="busy", state="full") == 1
    assert value(m, "relay_channel_state", channel="busy", state="ready") == 0
    assert value(m, "relay_channel_in_flight", channel="busy") == 1
    assert value(m, "relay_channel_state", channel="off", state="disabled") == 1
    assert value(m, "relay_tasks", status="in_progress") + value(m, "relay_tasks", status="queued")


async def test_each_app_has_its_own_registry(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    one: Relay = await start_relay(make_config())
    two: Relay = await start_relay(make_config())
    await one.create()
    m_one, _ = await scrape(one)
    m_two, _ = await scrape(two)
    assert value(
        m_one, "relay_http_requests_total", route="/v1/videos", method="POST", status="200"
    )
    assert ("relay_http_requests_total", frozenset()) not in m_two
    assert not series(m_two, "relay_tasks_created_total")


# --- on a fake upstream: outcome classes, failover, bytes from upstream, stored bytes -----------


@pytest.fixture
async def vidu() -> AsyncIterator[ViduFake]:
    fake = ViduFake()
    await fake.start()
    yield fake
    await fake.close()


def two_channels(fake: ViduFake, **extra: Any) -> list[dict[str, Any]]:
    first = {**fake.channel(fake.base_url), "name": "a", "priority": 10, **extra}
    second = {**fake.channel(fake.base_url), "name": "b", **extra}
    return [first, second]


async def test_a_scrape_after_traffic_on_a_fake_upstream(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    relay: Relay = await start_relay(make_config(channels=two_channels(vidu)))
    post = relay.client.post

    # on channel a: a poll that is rate limited, then the task completes; its bytes and delete
    vidu.fail_next_poll(429, "TooManyRequests", "slow down")
    first = await relay.create()
    assert (await relay.wait(first["id"]))["status"] == "completed"
    assert await download(relay, first["id"]) == VIDEO
    assert (await relay.client.delete(f"/v1/videos/{first['id']}", headers=auth())).status == 200
    # a refuses its credentials: out, and the task fails over to b
    vidu.fail_next_submit(401, "Unauthorized", "unauthorized")
    second = await relay.create()
    assert (await relay.wait(second["id"]))["status"] == "completed"
    # on b: the upstream forgets a task (not found), then an outage, then a rate limit
    third = await relay.create()
    vidu.forget_tasks()
    assert (await relay.wait(third["id"]))["error"]["code"] == "task_expired"
    vidu.fail_next_submit(500, "InternalServiceFailure", "down")
    assert (await post("/v1/videos", json={"prompt": "x"}, headers=auth())).status == 502
    vidu.fail_next_submit(400, "BadRequest", "the prompt is not allowed")
    assert (await post("/v1/videos", json={"prompt": "x"}, headers=auth())).status == 400
    vidu.fail_next_submit(429, "TooManyRequests", "slow down")
    assert (await post("/v1/videos", json={"prompt": "x"}, headers=auth())).status == 429

    m, _ = await scrape(relay)
    upstream = series(m, "relay_upstream_requests_total")

    def ops(channel: str, op: str) -> dict[str, float]:
        found = {}
        for labels, v in upstream.items():
            d = dict(labels)
            if d["channel"] == channel and d["op"] == op:
                found[d["outcome"]] = v
        return found

    assert ops("a", "submit") == {"ok": 1, "auth": 1}
    assert ops("a", "poll")["rate_limited"] == 1 and ops("a", "poll")["ok"] >= 2
    assert ops("a", "content") == {"ok": 1}
    assert ops("a", "delete") == {"ok": 1}
    assert ops("b", "submit") == {
        "ok": 2,
        "unavailable": 1,
        "rejected": 1,
        "rate_limited": 1,
    }
    assert ops("b", "poll")["not_found"] >= 1
    # created on the channel that accepted it, after the failover
    assert series(m, "relay_tasks_created_total") == {
        frozenset({("model", "sora-2"), ("channel", "a")}): 1,
        frozenset({("model", "sora-2"), ("channel", "b")}): 2,
    }
    finished = "relay_tasks_finished_total"
    assert value(m, finished, channel="a", status="completed", code="") == 1
    assert value(m, finished, channel="b", status="completed", code="") == 1
    assert value(m, finished, channel="b", status="failed", code="task_expired") == 1
    assert value(m, "relay_tasks", status="completed") == 1  # the first was deleted
    assert value(m, "relay_tasks", status="failed") == 1
    assert value(m, "relay_content_bytes_total", source="upstream") == len(VIDEO)
    assert value(m, "relay_channel_state", channel="a", state="auth_refused") == 1
    assert value(m, "relay_channel_state", channel="b", state="cooling") == 1
    assert value(m, "relay_channel_in_flight", channel="a") == 0
    assert value(m, "relay_channel_in_flight", channel="b") == 0
    count = "relay_upstream_request_duration_seconds_count"
    assert value(m, count, channel="b", op="submit") == 5


async def test_a_download_in_progress_is_a_content_stream(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    relay: Relay = await start_relay(make_config(channels=[vidu.channel(vidu.base_url)]))
    video = await relay.create()
    await relay.wait(video["id"])
    vidu.cdn.chunk, vidu.cdn.delay_s = 16 * 1024, 0.3
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200
    assert len(await resp.content.readexactly(1000)) == 1000
    m, _ = await scrape(relay)
    assert value(m, "relay_content_streams") == 1
    resp.close()  # the client leaves mid-body
    for _ in range(100):
        m, _ = await scrape(relay)
        if value(m, "relay_content_streams") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(m, "relay_content_streams") == 0


async def test_stored_copies_show_as_stored_bytes(
    vidu: ViduFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(channels=[vidu.channel(vidu.base_url)], storage={"keep_videos": True})
    relay: Relay = await start_relay(config)
    video = await relay.create()
    await relay.wait(video["id"])
    for _ in range(200):
        copies = [await relay.store.stored_copy(video["id"], v) for v in ("video", "thumbnail")]
        if all(copies):
            break
        await asyncio.sleep(0.02)
    stored = await relay.store.stored_bytes()
    assert stored > len(VIDEO)  # the video and its JPEG cover
    m, _ = await scrape(relay)
    assert value(m, "relay_stored_bytes") == stored
    body = await download(relay, video["id"])
    m, _ = await scrape(relay)
    assert value(m, "relay_content_bytes_total", source="stored") == len(body) == len(VIDEO)


async def test_a_local_download_is_one_stream_while_its_file_is_sent(relay: Relay):
    from relay.events import DownloadEnded, DownloadStarted
    from relay.metrics import METRICS

    seen: list[tuple[str, str, float]] = []
    gauge = relay.app[METRICS].streams
    events = relay.videos.ctx.events
    for kind in (DownloadStarted, DownloadEnded):
        events.subscribe(
            kind, lambda e: seen.append((type(e).__name__, e.source, gauge._value.get()))
        )
    video = await relay.create()
    await relay.wait(video["id"])
    head = await relay.client.head(f"/v1/videos/{video['id']}/content", headers=auth())
    assert head.status == 200 and seen == []  # headers only: no body went out
    await download(relay, video["id"])
    for _ in range(100):  # the server ends its side just after the client has every byte
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert seen == [("DownloadStarted", "local", 1.0), ("DownloadEnded", "local", 0.0)]


def test_process_metrics_survive_procsubset_pid(tmp_path: Path):
    """systemd's ProcSubset=pid hides /proc/stat; the process_* series stay, start time right."""
    import os
    import time

    from prometheus_client import CollectorRegistry, generate_latest

    from relay.metrics import BootTimeProcessCollector

    (tmp_path / "self").symlink_to(f"/proc/{os.getpid()}")  # /proc/self, and no /proc/stat
    registry = CollectorRegistry()
    BootTimeProcessCollector(registry=registry, proc=str(tmp_path))
    text = generate_latest(registry).decode()
    start = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("process_start_time_seconds ")
    )
    with open(f"/proc/{os.getpid()}/stat") as fh:
        ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as fh:
        btime = next(float(ln.split()[1]) for ln in fh if ln.startswith("btime "))
    assert abs(start - (btime + ticks / os.sysconf("SC_CLK_TCK"))) < 2
    assert start <= time.time()
    assert "process_resident_memory_bytes" in text
