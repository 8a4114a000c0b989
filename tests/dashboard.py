"""What the dashboard API tests share: a relay on a clock the test moves, users with passwords,
sign-in helpers, and a client that keeps no cookies of its own (each test sends exactly the
cookie it means to)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from relay.app import create_app
from relay.config import Config
from relay.passwords import hash_password
from relay.providers.base import Provider
from tests.conftest import Relay

OWN_ORIGIN = "http://127.0.0.1:8080"  # the test configs' public_url
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "root": "root-password-333"}
_HASHES: dict[str, str] = {}  # scrypt is slow on purpose: hash each test password once


class Clock:
    """time.time(), moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Dash:
    relay: Relay
    clock: Clock

    @property
    def client(self) -> Any:
        return self.relay.client

    async def login(
        self, name: str = "alice", password: str | None = None, **headers: str
    ) -> aiohttp.ClientResponse:
        body = {
            "username": name,
            "password": PASSWORDS.get(name, "") if password is None else password,
        }
        return await self.client.post("/api/login", json=body, headers=headers)  # type: ignore[no-any-return]

    async def signed_in(self, name: str = "alice") -> tuple[str, str]:
        """(token, cookie value) of a fresh sign-in."""
        resp = await self.login(name)
        body = await resp.json()
        assert resp.status == 200, body
        return body["token"], resp.cookies["relay_session"].value


def token(value: str) -> dict[str, str]:
    return {"token": value}


def cookie(value: str, origin: str | None = OWN_ORIGIN) -> dict[str, str]:
    headers = {"Cookie": f"relay_session={value}"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


async def start_dash(
    aiohttp_client: Callable[..., Any],
    config: Config,
    providers: dict[str, type[Provider[Any]]],
    *,
    users: dict[str, str] | None = None,
) -> Dash:
    clock = Clock()
    app = create_app(config, providers=providers, clock=clock)
    client = await aiohttp_client(
        TestServer(app, host="127.0.0.1"), cookie_jar=aiohttp.DummyCookieJar()
    )
    relay = Relay(client)
    roles = users if users is not None else {"alice": "user", "bob": "user", "root": "admin"}
    for name, role in roles.items():
        if name not in _HASHES:
            _HASHES[name] = hash_password(PASSWORDS[name])
        await relay.store.add_user(name, role, clock(), password_hash=_HASHES[name])
    return Dash(relay, clock)
