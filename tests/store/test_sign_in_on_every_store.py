"""Signing in on every store backend, through HTTP: sessions, tokens, a new password ending
them, the prompt search; and a SQLite relay's sessions surviving `relay migrate` to PostgreSQL
(the cookie and the token work on the relay started on the copy)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.config import Config
from relay.providers.base import Provider
from tests.conftest import ALICE
from tests.dashboard import cookie, start_dash, token


async def test_sign_in_sessions_and_search(
    store_url: str,
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    dash = await start_dash(aiohttp_client, make_config(store={"url": store_url}), providers)
    jwt, value = await dash.signed_in("alice")
    _, other = await dash.signed_in("alice")
    for headers in (token(jwt), cookie(value), cookie(other)):
        assert (await dash.client.get("/api/me", headers=headers)).status == 200
    for prompt in ("100% Cotton_Candy", "a red fox"):
        await dash.relay.create(ALICE, prompt=prompt)
    found = await dash.client.get("/api/videos", params={"q": "cotton_c"}, headers=token(jwt))
    assert [v["prompt"] for v in (await found.json())["data"]] == ["100% Cotton_Candy"]
    root, _ = await dash.signed_in("root")
    changed = await dash.client.post(
        "/api/users/alice", json={"password": "another-password"}, headers=token(root)
    )
    assert changed.status == 200
    for headers in (token(jwt), cookie(value), cookie(other)):
        assert (await dash.client.get("/api/me", headers=headers)).status == 401
    assert (await dash.client.get("/api/me", headers=token(root))).status == 200


async def test_sessions_survive_a_migration_to_postgresql(
    tmp_path: Path,
    data_dir: Path,
    postgres_url: str,
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
    capsys: pytest.CaptureFixture[str],
):
    old = await start_dash(aiohttp_client, make_config(), providers)
    jwt, value = await old.signed_in("alice")
    _, ended = await old.signed_in("bob")
    await old.client.post("/api/logout", headers=cookie(ended))
    await old.relay.store.disable_user("bob")
    await old.client.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    code = await asyncio.to_thread(
        cli.main, ["migrate", "--config", str(config), "--to", postgres_url]
    )
    out = capsys.readouterr().out
    assert code == 0 and "sessions" in out
    new = await start_dash(
        aiohttp_client, make_config(store={"url": postgres_url}), providers, users={}
    )
    for headers in (token(jwt), cookie(value)):  # the signing key came along with the rows
        resp = await new.client.get("/api/me", headers=headers)
        assert resp.status == 200 and (await resp.json())["name"] == "alice"
    assert (await new.client.get("/api/me", headers=cookie(ended))).status == 401
    assert (await new.login("bob")).status == 401  # still disabled
    fresh_jwt, _ = await new.signed_in("alice")
    assert fresh_jwt != jwt


async def test_a_token_from_one_relay_works_on_another(
    tmp_path: Path,
    postgres_url: str,
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    # two relays on one database, each with a data_dir of its own (two machines)
    one = await start_dash(
        aiohttp_client,
        make_config(store={"url": postgres_url}, server={"data_dir": str(tmp_path / "one")}),
        providers,
    )
    other = await start_dash(
        aiohttp_client,
        make_config(store={"url": postgres_url}, server={"data_dir": str(tmp_path / "two")}),
        providers,
        users={},
    )
    jwt, value = await one.signed_in("alice")
    for headers in (token(jwt), cookie(value)):
        resp = await other.client.get("/api/me", headers=headers)
        assert resp.status == 200 and (await resp.json())["name"] == "alice"
