"""Shared fixtures: a config per test (its own data dir), a running relay, keys for three users."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay.app import create_app
from relay.config import Config, parse
from relay.providers import REGISTRY
from relay.providers.base import Provider
from relay.providers.normalize import deep_merge
from relay.runtime import Runtime
from relay.store import Store
from relay.tasks import Videos
from relay.tasks.refresh import Lifecycle
from relay.web import keys
from relay.workers.copier import Copier
from relay.workers.health import HealthSync
from relay.workers.poller import Poller
from relay.workers.webhooks import Sender

ALICE = "sk-test-alice-0123456789abcdef"
BOB = "sk-test-bob-0123456789abcdef"
ROOT = "sk-test-root-0123456789abcdef"


def auth(key: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def base_config(data_dir: Path) -> dict[str, Any]:
    return {
        "server": {"data_dir": str(data_dir), "allow_private_networks": True},
        "polling": {"interval_s": 0.05, "max_interval_s": 0.2},
        # most tests are about the upstream path; tests/test_storage.py turns copies on
        "storage": {"keep_videos": False},
        "limits": {"requests_per_minute": 0},
        "keys": [
            {"name": "alice", "key": ALICE, "user": "alice"},
            {"name": "bob", "key": BOB, "user": "bob"},
            {"name": "root", "key": ROOT, "user": "root", "role": "admin"},
        ],
        "channels": [
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2", "demo"],
                "options": {"finish_after_s": 0.3},
            }
        ],
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def providers() -> dict[str, type[Provider[Any]]]:
    """The providers a test's configs may name: the registry, and what a test adds to it."""
    return dict(REGISTRY)


@pytest.fixture
def make_config(data_dir: Path, providers: dict[str, type[Provider[Any]]]) -> Callable[..., Config]:
    """A valid test config; keyword sections deep-merge over the base (lists replace)."""

    def make(raw: dict[str, Any] | None = None, **sections: Any) -> Config:
        merged = deep_merge(copy.deepcopy(base_config(data_dir)), raw or {})
        merged = deep_merge(merged, sections)
        return parse(merged, env={}, source="test", providers=providers)

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


class Relay:
    """A running relay and a client for it."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client

    @property
    def app(self) -> web.Application:
        return self.client.server.app  # type: ignore[return-value]

    @property
    def store(self) -> Store:
        return self.app[keys.STORE]

    @property
    def runtime(self) -> Runtime:
        return self.app[keys.RUNTIME]

    @property
    def videos(self) -> Videos:
        return self.app[keys.VIDEOS]

    @property
    def lifecycle(self) -> Lifecycle:
        return self.videos.lifecycle

    @property
    def poller(self) -> Poller:
        return self.app[keys.POLLER]

    @property
    def copier(self) -> Copier:
        return self.app[keys.COPIER]

    @property
    def sender(self) -> Sender:
        return self.app[keys.SENDER]

    @property
    def health(self) -> HealthSync:
        return self.app[keys.HEALTH]

    def clock(self) -> float:
        return self.videos.ctx.clock()

    @property
    def base_url(self) -> str:
        return str(self.client.make_url("/v1"))

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def create(self, key: str = ALICE, **fields: Any) -> dict[str, Any]:
        fields.setdefault("prompt", "a paper airplane over a lake")
        resp = await self.client.post("/v1/videos", json=fields, headers=auth(key))
        body = await resp.json()
        assert resp.status == 200, body
        return body  # type: ignore[no-any-return]

    async def get(self, video_id: str, key: str = ALICE) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/videos/{video_id}", headers=auth(key))
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]

    async def wait(self, video_id: str, key: str = ALICE, timeout: float = 10) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            body = await self.get(video_id, key)
            if body["status"] in ("completed", "failed"):
                return body
            assert loop.time() < deadline, f"task still {body['status']}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def start_relay(
    aiohttp_client: Callable[..., Any], providers: dict[str, type[Provider[Any]]]
) -> AsyncIterator[Callable[[Config], Any]]:
    async def start(config: Config) -> Relay:
        app = create_app(config, providers=providers)
        client = await aiohttp_client(TestServer(app, host="127.0.0.1"))
        return Relay(client)

    yield start


@pytest.fixture
async def relay(start_relay: Callable[[Config], Any], config: Config) -> Relay:
    return await start_relay(config)  # type: ignore[no-any-return]


async def refused_upstream(resp: Any, *, rate_limited: bool) -> dict[str, Any]:
    """A create every channel refused, nothing made: a 429 with Retry-After when they all rate
    limited (a retry is safe), else a 502."""
    body: dict[str, Any] = await resp.json()
    if rate_limited:
        assert resp.status == 429, body
        assert body["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(resp.headers["Retry-After"]) <= 300
    else:
        assert resp.status == 502, body
        assert body["error"]["code"] == "upstream_error"
    return body


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
