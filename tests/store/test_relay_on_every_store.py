"""The relay itself on every store backend, through HTTP: create (with an Idempotency-Key),
poll, complete, one signed webhook, content from upstream and then from the stored copy with
Range, the list, delete. On PostgreSQL the relay's [store] url is a fresh test database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.providers.base import Provider
from relay.store.postgres import PostgresStore
from relay.store.sqlite import SqliteStore
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.scripted import ScriptedProvider

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw=="


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(orjson.loads(await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received
    await server.close()


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.02)):
        if result := await check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_a_video_from_create_to_delete(
    store_url: str,
    make_config: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    providers: dict[str, type[Provider[Any]]],
    cdn: FakeUpstream,
    hooks: tuple[TestServer, list[dict[str, Any]]],
):
    hook_server, received = hooks
    providers["scripted"] = ScriptedProvider
    config = make_config(
        store={"url": store_url, "pool_size": 4},
        storage={"keep_videos": True},
        webhooks=[{"url": str(hook_server.make_url("/hook")), "secret": SECRET}],
        channels=[
            {
                "name": "s",
                "provider": "scripted",
                "models": ["sora-2"],
                "options": {"cdn_url": cdn.cdn_url()},
            }
        ],
    )
    relay: Relay = await start_relay(config)
    expected = PostgresStore if store_url.startswith("postgresql://") else SqliteStore
    assert isinstance(relay.store, expected)

    headers = {**auth(), "Idempotency-Key": "smoke-1"}
    body = {"prompt": "a paper airplane over a lake", "model": "sora-2"}
    first = await relay.client.post("/v1/videos", json=body, headers=headers)
    again = await relay.client.post("/v1/videos", json=body, headers=headers)
    video = await first.json()
    assert first.status == 200 and (await again.json())["id"] == video["id"]
    video_id = video["id"]

    done = await relay.wait(video_id)
    assert done["status"] == "completed" and done["progress"] == 100
    url = f"/v1/videos/{video_id}/content"
    resp = await relay.client.get(url, headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO

    async def stored() -> bool:
        return await relay.store.stored_copy(video_id, "video") is not None

    await until(stored)
    before = cdn.cdn_stats.requests
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=-100"})
    assert resp.status == 206 and await resp.read() == VIDEO[-100:]
    assert cdn.cdn_stats.requests == before  # served from the stored copy

    async def delivered() -> bool:
        return bool(received) and await relay.store.next_delivery_at() is None

    await until(delivered)
    assert [(e["type"], e["data"]["id"]) for e in received] == [("video.completed", video_id)]

    listing = await relay.client.get("/v1/videos", headers=auth())
    assert [v["id"] for v in (await listing.json())["data"]] == [video_id]
    resp = await relay.client.delete(f"/v1/videos/{video_id}", headers=auth())
    assert resp.status == 200
    resp = await relay.client.get(f"/v1/videos/{video_id}", headers=auth())
    assert resp.status == 404
    assert await relay.store.count_active_by_channel() == {}
