"""Fixtures of the guard's rig (tests/ssrf/rig.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.config import Config
from relay.providers.base import Provider
from tests.ssrf.rig import (
    Bouncer,
    Canary,
    EchoProvider,
    FakeDns,
    Network,
    route_everything_to_loopback,
)


@pytest.fixture
async def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    return route_everything_to_loopback(monkeypatch)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr("relay.upstream.system_resolver", lambda: fake)
    return fake


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    server = Canary()
    await server.server.start_server()
    yield server
    await server.server.close()


@pytest.fixture
async def bouncer() -> AsyncIterator[Bouncer]:
    server = Bouncer()
    await server.server.start_server()
    yield server
    await server.server.close()


@pytest.fixture
def echo(
    providers: dict[str, type[Provider[Any]]], make_config: Callable[..., Config]
) -> Callable[..., Config]:
    providers["echo"] = EchoProvider

    def config(**sections: Any) -> Config:
        sections.setdefault("server", {"allow_private_networks": False})
        sections.setdefault("storage", {"keep_videos": False})
        return make_config(
            channels=[{"name": "echo", "provider": "echo", "models": ["sora-2"]}], **sections
        )

    return config
