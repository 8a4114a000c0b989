"""PostgreSQL going away and coming back (a restart, a network cut): requests answer 503
`storage_unavailable` with Retry-After while it is gone, nothing crashes or logs a traceback, the
relay says so once and once more when it is back, and serves again without a restart; relays
listening to each other listen again. A server of its own, since this test stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relay.config import Config
from relay.store import open_store
from tests.conftest import Relay, auth
from tests.store.pgcluster import Cluster, find_bindir, missing


@pytest.fixture
def own_cluster(pg_cluster: Cluster) -> Iterator[Cluster]:
    assert missing() is None  # pg_cluster skipped (or failed in CI) otherwise
    bindir = find_bindir()
    assert bindir is not None
    cluster = Cluster(bindir)
    cluster.start()
    cluster.create_database("relay")
    yield cluster
    cluster.stop()


async def until(check: Callable[[], Any], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "not within the time"
        await asyncio.sleep(0.1)


async def test_a_database_restart_is_a_503_then_served_again(
    own_cluster: Cluster,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    relay: Relay = await start_relay(make_config(store={"url": own_cluster.url("relay")}))
    video = await relay.create()
    await relay.wait(video["id"])

    await asyncio.to_thread(own_cluster.halt)
    for _ in range(3):
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        body = await resp.json()
        assert resp.status == 503, body
        assert body["error"]["code"] == "storage_unavailable"
        assert resp.headers["Retry-After"] == "5"
    resp = await relay.client.get(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 503
    assert (await relay.client.get("/healthz")).status == 503
    relay.poller.wake()  # a worker's turn meets the outage: "try again", not a crash
    await asyncio.sleep(0.3)

    await asyncio.to_thread(own_cluster.resume)

    async def served() -> bool:
        resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        return resp.status == 200

    await until(served)
    assert (await relay.get(video["id"]))["status"] == "completed"
    lines = [r for r in logs.records if r.name == "relay.store"]
    gone = [r for r in lines if "database unreachable" in r.getMessage()]
    assert len([r for r in gone if r.levelname == "ERROR"]) == 1
    assert any("database reachable again" in r.getMessage() for r in lines)
    assert not [r for r in logs.records if r.exc_info], "no traceback"


async def test_relays_listen_again_after_a_restart(own_cluster: Cluster):
    url = own_cluster.url("relay")
    one, other = await open_store(url), await open_store(url)
    try:
        heard: list[str] = []
        await other.listen(heard.append)
        await asyncio.to_thread(own_cluster.halt)
        await asyncio.to_thread(own_cluster.resume)

        async def hears() -> bool:
            try:
                await one._pool.execute("SELECT pg_notify('relay', 'due')")  # type: ignore[attr-defined]
            except Exception:  # the pool finds its connections dead one by one
                return False
            await asyncio.sleep(0.2)
            return "due" in heard

        await until(hears)
    finally:
        await one.close()
        await other.close()
