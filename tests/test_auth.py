"""API keys (static and stored), ownership, admin scope, rate limits, and the key CLI."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay.auth import KEY_PREFIX, bearer_token, digest, new_api_key
from relay.cli import bootstrap_key, main
from relay.config import Config
from relay.errors import AuthenticationFailed
from relay.store.sqlite import SqliteStore
from tests.conftest import ALICE, BOB, ROOT, Relay, auth


def test_new_keys_are_long_and_random():
    a, b = new_api_key(), new_api_key()
    assert a != b and a.startswith(KEY_PREFIX) and len(a) >= len(KEY_PREFIX) + 43


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Token sk-x"]
)
def test_malformed_authorization(header: str | None):
    with pytest.raises(AuthenticationFailed):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive():
    assert bearer_token("bearer sk-1") == "sk-1"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        (auth("sk-nope-0123456789abcdef"), "invalid API key"),
        ({"Authorization": "Basic YTpi"}, "malformed"),
    ],
)
async def test_unauthenticated_requests(relay: Relay, headers: dict[str, str], message: str):
    for method, path in [
        ("GET", "/v1/videos"),
        ("POST", "/v1/videos"),
        ("GET", "/v1/videos/video_x"),
        ("GET", "/v1/videos/video_x/content"),
        ("DELETE", "/v1/videos/video_x"),
        ("POST", "/v1/videos/video_x/remix"),
        ("POST", "/v1/videos/video_x/cancel"),
        ("GET", "/v1/models"),
    ]:
        resp = await relay.client.request(method, path, headers=headers)
        assert resp.status == 401, (method, path)
        body = await resp.json()
        assert body["error"]["type"] == "authentication_error"
        assert body["error"]["code"] == "invalid_api_key"
        assert message in body["error"]["message"]
        assert "sk-nope" not in body["error"]["message"]


async def test_healthz_needs_no_key(relay: Relay):
    resp = await relay.client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok"}


async def test_key_given_as_its_digest(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    secret = "sk-digest-only-0123456789"
    config = make_config(
        keys=[
            {"name": "d", "key_sha256": hashlib.sha256(secret.encode()).hexdigest(), "user": "dora"}
        ]
    )
    relay: Relay = await start_relay(config)
    video = await relay.create(key=secret)
    row = await relay.store.get_task(video["id"])
    assert row is not None and row.owner == "dora"
    assert await relay.store.get_user("dora") is not None  # created on first use


async def test_ownership(relay: Relay):
    mine = await relay.create(ALICE)
    theirs = await relay.create(BOB)
    for path in ["", "/content"]:
        resp = await relay.client.get(f"/v1/videos/{theirs['id']}{path}", headers=auth(ALICE))
        unknown = await relay.client.get(f"/v1/videos/video_unknown{path}", headers=auth(ALICE))
        assert resp.status == unknown.status == 404
        a, b = await resp.json(), await unknown.json()
        assert a["error"]["code"] == b["error"]["code"] == "not_found"
    resp = await relay.client.delete(f"/v1/videos/{theirs['id']}", headers=auth(ALICE))
    assert resp.status == 404
    resp = await relay.client.post(
        f"/v1/videos/{theirs['id']}/remix", json={"prompt": "x"}, headers=auth(ALICE)
    )
    assert resp.status == 404
    listing = await (await relay.client.get("/v1/videos", headers=auth(ALICE))).json()
    assert [v["id"] for v in listing["data"]] == [mine["id"]]


async def test_admin_sees_everything(relay: Relay):
    a = await relay.create(ALICE)
    b = await relay.create(BOB)
    assert (await relay.get(a["id"], ROOT))["id"] == a["id"]
    own = await (await relay.client.get("/v1/videos", headers=auth(ROOT))).json()
    assert own["data"] == []  # an admin's list is their own unless they ask for more
    everyone = await (
        await relay.client.get("/v1/videos", params={"owner": "all"}, headers=auth(ROOT))
    ).json()
    assert [v["id"] for v in everyone["data"]] == [b["id"], a["id"]]
    bobs = await (
        await relay.client.get("/v1/videos", params={"owner": "bob"}, headers=auth(ROOT))
    ).json()
    assert [v["id"] for v in bobs["data"]] == [b["id"]]


async def test_owner_parameter_needs_admin(relay: Relay):
    resp = await relay.client.get("/v1/videos", params={"owner": "bob"}, headers=auth(ALICE))
    assert resp.status == 403
    body = await resp.json()
    assert body["error"] == {
        "message": body["error"]["message"],
        "type": "permission_error",
        "param": None,
        "code": "insufficient_permissions",
    }
    own = await relay.client.get("/v1/videos", params={"owner": "alice"}, headers=auth(ALICE))
    assert own.status == 200


async def test_stored_keys_and_revocation(relay: Relay):
    store = relay.store
    user = await store.add_user("erin", "user", 1.0)
    key = new_api_key()
    key_id = await store.add_key(user.id, "", key[:15], digest(key), 1.0)
    assert (await relay.client.get("/v1/models", headers=auth(key))).status == 200
    await store.revoke_key(key_id, 2.0)
    assert (await relay.client.get("/v1/models", headers=auth(key))).status == 401


async def test_rate_limit_over_http(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    relay: Relay = await start_relay(make_config(limits={"requests_per_minute": 2}))
    await relay.create()
    bad = await relay.client.post("/v1/videos", json={"prompt": "x", "size": "big"}, headers=auth())
    assert bad.status == 400  # a rejected request does not count
    await relay.create()
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.json()
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert (
        await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth(BOB))
    ).status == 200


# --- bootstrap key and CLI ---------------------------------------------------------------------


async def test_first_start_without_keys_writes_an_admin_key(
    make_config: Callable[..., Config], data_dir: Path
):
    config = make_config(keys=[])
    data_dir.mkdir(parents=True)
    store = await SqliteStore.open(data_dir / "relay.db")
    await bootstrap_key(store, config)
    path = data_dir / "admin.key"
    key = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    found = await store.find_key(digest(key))
    assert found is not None and found.user == "admin" and found.role == "admin"
    await bootstrap_key(store, config)  # a key exists now: nothing more
    assert len(await store.list_keys()) == 1
    await store.close()


async def test_no_bootstrap_when_keys_are_configured(config: Config, data_dir: Path):
    data_dir.mkdir(parents=True)
    store = await SqliteStore.open(data_dir / "relay.db")
    await bootstrap_key(store, config)
    assert await store.list_keys() == []
    assert not (data_dir / "admin.key").exists()
    await store.close()


def test_cli_users_and_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    c = ["--config", str(conf)]
    assert main(["keys", "create", "frank", *c]) == 2
    assert "relay users add frank" in capsys.readouterr().err
    assert main(["users", "add", "frank", "--admin", *c]) == 0
    assert main(["users", "add", "frank", *c]) == 1
    assert main(["users", "add", "bad name!", *c]) == 2
    capsys.readouterr()
    assert main(["keys", "create", "frank", "--name", "laptop", *c]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith(KEY_PREFIX) and "shown once" in out.err
    assert main(["keys", "list", *c]) == 0
    listing = capsys.readouterr().out
    assert "frank" in listing and "laptop" in listing and "active" in listing
    assert key not in listing  # never the key itself
    assert main(["users", "list", *c]) == 0
    assert re.search(r"^frank +admin +no ", capsys.readouterr().out, re.MULTILINE)
    assert main(["keys", "revoke", "1", *c]) == 0
    assert main(["keys", "revoke", "1", *c]) == 2
    capsys.readouterr()
    main(["keys", "list", "frank", *c])
    assert "revoked" in capsys.readouterr().out
