"""Every /api/ route over HTTP: statuses, bodies, the error envelope, who may call what, and that
no answer carries a credential it should not."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from relay.config import Config
from relay.providers.base import Provider
from relay.web.keys import SIGNIN
from tests.conftest import ALICE, ROOT, auth
from tests.dashboard import OWN_ORIGIN, PASSWORDS, Dash, cookie, start_dash, token

JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


@pytest.fixture
async def dash(
    aiohttp_client: Callable[..., Any],
    config: Config,
    providers: dict[str, type[Provider[Any]]],
) -> Dash:
    return await start_dash(aiohttp_client, config, providers)


def envelope(body: dict[str, Any], type_: str, code: str | None = None) -> dict[str, Any]:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


# --- sign in, sign out, me --------------------------------------------------------------------


async def test_login_answers_a_token_and_sets_the_session_cookie(dash: Dash):
    resp = await dash.login("alice")
    body = await resp.json()
    assert resp.status == 200, body
    assert set(body) == {"token", "expires_at", "session_expires_at", "user"}
    assert JWT.match(body["token"])
    now = dash.clock()
    assert now + 86400 - 5 <= body["expires_at"] <= now + 86400 + 1  # a day (sessions: a week)
    assert body["session_expires_at"] == pytest.approx(now + 168 * 3600, abs=5)
    assert body["user"] == {"name": "alice", "role": "user"}
    assert resp.headers["Cache-Control"] == "no-store"
    assert "x-request-id" in resp.headers
    [set_cookie] = resp.headers.getall("Set-Cookie")
    morsel = resp.cookies["relay_session"]
    assert len(morsel.value) >= 43  # 256 bits, base64url
    assert morsel["httponly"] and morsel["path"] == "/" and morsel["samesite"] == "Lax"
    assert not morsel["secure"]  # public_url is http here
    assert int(morsel["max-age"]) == 168 * 3600
    assert morsel.value not in str(body) and PASSWORDS["alice"] not in set_cookie
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_the_session_cookie_is_secure_behind_https(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(server={"public_url": "https://relay.example.org"})
    dash = await start_dash(aiohttp_client, config, providers)
    resp = await dash.login("alice")
    assert resp.status == 200
    assert resp.cookies["relay_session"]["secure"]
    # and the Origin that counts is the public one
    _, value = await dash.signed_in("alice")
    ok = await dash.client.post(
        "/api/keys", json={}, headers=cookie(value, "https://relay.example.org")
    )
    assert ok.status == 200
    bad = await dash.client.post("/api/keys", json={}, headers=cookie(value, OWN_ORIGIN))
    assert bad.status == 403


async def test_login_takes_a_form_too(dash: Dash):
    resp = await dash.client.post(
        "/api/login", data={"username": "root", "password": PASSWORDS["root"]}
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["user"] == {"name": "root", "role": "admin"}


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("alice", "wrong-password"),
        ("nobody", "whatever-it-is"),
        ("Alice", PASSWORDS["alice"]),  # names are exact
        ("alice", PASSWORDS["alice"] + " "),
        ("x" * 5000, "a name far too long"),
    ],
)
async def test_a_wrong_pair_is_one_generic_401(dash: Dash, name: str, password: str):
    resp = await dash.login(name, password)
    body = await resp.json()
    assert resp.status == 401
    error = envelope(body, "authentication_error", "invalid_credentials")
    assert error["message"] == "wrong username or password"
    assert "Set-Cookie" not in resp.headers


async def test_an_unknown_name_costs_a_sign_in_the_same_time(dash: Dash):
    import time

    await dash.relay.store.ensure_user("keys-only", "user", 1.0)

    async def cost(name: str) -> float:
        dash.clock.advance(301)  # clear of the sign-in throttle
        start = time.perf_counter()
        resp = await dash.login(name, "not-the-password")
        assert resp.status == 401
        return time.perf_counter() - start

    await cost("nobody")  # the dummy hash is made once
    # interleaved rounds, each name's fastest: a busy machine slows single samples, not all five
    names = ("alice", "nobody", "keys-only")
    costs: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(5):
        for name in names:
            costs[name].append(await cost(name))
    known = min(costs["alice"])
    for name in names[1:]:
        other = min(costs[name])
        assert 0.5 < other / known < 2.0, (name, known, other)


async def test_users_without_a_password_or_disabled_cannot_sign_in(dash: Dash):
    await dash.relay.store.ensure_user("keys-only", "user", 1.0)
    resp = await dash.login("keys-only", "anything-at-all")
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "wrong username or password"
    await dash.relay.store.disable_user("bob")
    resp = await dash.login("bob")
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "wrong username or password"


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "param"),
    [
        ({"json": {"username": "alice"}}, 400, "missing_parameter", "password"),
        ({"json": {"password": "x"}}, 400, "missing_parameter", "username"),
        ({"json": {"username": "alice", "password": 5}}, 400, "invalid_parameter", "password"),
        ({"json": ["alice"]}, 400, "invalid_json", None),
        (
            {"data": b"{nope", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
            None,
        ),
        (
            {"data": b"x", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
            None,
        ),
        (
            {"data": b"x" * 70_000, "headers": {"Content-Type": "application/json"}},
            413,
            "request_too_large",
            None,
        ),
    ],
)
async def test_bad_login_bodies(
    dash: Dash, kwargs: dict[str, Any], status: int, code: str, param: str | None
):
    resp = await dash.client.post("/api/login", **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    error = envelope(body, "invalid_request_error", code)
    assert error["param"] == param


async def test_me_and_logout(dash: Dash):
    jwt, value = await dash.signed_in("root")
    for headers in (token(jwt), {"Authorization": f"Bearer {jwt}"}, cookie(value)):
        resp = await dash.client.get("/api/me", headers=headers)
        assert resp.status == 200
        assert await resp.json() == {"name": "root", "role": "admin"}
    resp = await dash.client.post("/api/logout", headers=cookie(value))
    assert resp.status == 200
    assert await resp.json() == {"object": "logout", "signed_out": True}
    cleared = resp.cookies["relay_session"]
    assert cleared.value == "" and cleared["path"] == "/"
    for headers in (token(jwt), cookie(value)):  # the token named that session: gone too
        resp = await dash.client.get("/api/me", headers=headers)
        assert resp.status == 401
    again = await dash.client.post("/api/logout", headers=cookie(value))
    assert again.status == 200 and (await again.json())["signed_out"] is False


async def test_logout_by_token(dash: Dash):
    jwt, value = await dash.signed_in("alice")
    resp = await dash.client.post("/api/logout", headers=token(jwt))
    assert (await resp.json())["signed_out"] is True
    assert (await dash.client.get("/api/me", headers=cookie(value))).status == 401


async def test_api_routes_need_a_dashboard_credential(dash: Dash):
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/videos"),
        ("POST", "/api/videos"),
        ("GET", "/api/videos/video_x"),
        ("GET", "/api/videos/video_x/content"),
        ("DELETE", "/api/videos/video_x"),
        ("POST", "/api/videos/video_x/cancel"),
        ("POST", "/api/videos/video_x/remix"),
        ("GET", "/api/models"),
        ("GET", "/api/keys"),
        ("POST", "/api/keys"),
        ("DELETE", "/api/keys/1"),
        ("GET", "/api/channels"),
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("POST", "/api/users/alice"),
    ]:
        for headers in ({}, auth(ALICE), token("not-a-jwt"), cookie("not-a-session")):
            resp = await dash.client.request(method, path, headers=headers)
            assert resp.status == 401, (method, path, headers)
            envelope(await resp.json(), "authentication_error")
        dash.clock.advance(61)  # out of the failed-authentication throttle's window


async def test_unknown_api_paths_and_methods(dash: Dash):
    jwt, _ = await dash.signed_in("alice")
    resp = await dash.client.get("/api/nothing", headers=token(jwt))
    assert resp.status == 404
    envelope(await resp.json(), "invalid_request_error", "not_found")
    resp = await dash.client.put("/api/keys", headers=token(jwt))
    assert resp.status == 405
    envelope(await resp.json(), "invalid_request_error", "method_not_allowed")


async def test_dashboard_off_means_no_sign_in(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(dashboard={"enabled": False})
    dash = await start_dash(aiohttp_client, config, providers)
    resp = await dash.login("alice")
    assert resp.status == 404
    assert (await dash.client.get("/v1/videos", headers=auth(ALICE))).status == 200
    # a session made while it was on is not taken either
    signin = dash.relay.app[SIGNIN]
    made = await signin.login("alice", PASSWORDS["alice"], address="127.0.0.1")
    video = await dash.relay.create(ALICE)
    for path, headers in [
        ("/api/me", token(made.token)),
        ("/api/me", cookie(made.cookie)),
        (f"/v1/videos/{video['id']}/content", cookie(made.cookie, None)),
    ]:
        resp = await dash.client.get(path, headers=headers)
        assert resp.status == 401, path


# --- /api/videos: the same routes as /v1/videos -----------------------------------------------


async def test_api_videos_answer_exactly_like_v1(dash: Dash):
    jwt, value = await dash.signed_in("alice")
    made = await dash.client.post(
        "/api/videos", json={"prompt": "a lighthouse at night", "seconds": "4"}, headers=token(jwt)
    )
    video = await made.json()
    assert made.status == 200, video
    assert video["object"] == "video" and video["status"] == "queued"
    done = await dash.relay.wait(video["id"])  # the same video, through /v1 with alice's key
    assert done["status"] == "completed"
    for headers in (token(jwt), {"Authorization": f"Bearer {jwt}"}, cookie(value, None)):
        via_api = await dash.client.get(f"/api/videos/{video['id']}", headers=headers)
        via_v1 = await dash.client.get(f"/v1/videos/{video['id']}", headers=auth(ALICE))
        assert via_api.status == via_v1.status == 200
        assert await via_api.json() == await via_v1.json()
        listed = await dash.client.get("/api/videos?limit=5", headers=headers)
        assert (
            await listed.json()
            == await (await dash.client.get("/v1/videos?limit=5", headers=auth(ALICE))).json()
        )
        content = await dash.client.get(
            f"/api/videos/{video['id']}/content", headers={**headers, "Range": "bytes=0-99"}
        )
        assert content.status == 206 and len(await content.read()) == 100
        head = await dash.client.head(f"/api/videos/{video['id']}/content", headers=headers)
        assert head.status == 200 and int(head.headers["Content-Length"]) > 100
    missing = await dash.client.get("/api/videos/video_nope", headers=token(jwt))
    v1_missing = await dash.client.get("/v1/videos/video_nope", headers=auth(ALICE))
    assert missing.status == v1_missing.status == 404
    assert (await missing.json())["error"] == (await v1_missing.json())["error"]
    bad = await dash.client.post(
        "/api/videos", json={"prompt": "x", "aspect_ratio": "16:9"}, headers=token(jwt)
    )
    v1_bad = await dash.client.post(
        "/v1/videos", json={"prompt": "x", "aspect_ratio": "16:9"}, headers=auth(ALICE)
    )
    assert bad.status == v1_bad.status == 400
    assert (await bad.json())["error"] == (await v1_bad.json())["error"]
    remix = await dash.client.post(
        f"/api/videos/{video['id']}/remix", json={"prompt": "by day"}, headers=token(jwt)
    )
    assert remix.status == 200
    assert (await remix.json())["remixed_from_video_id"] == video["id"]
    deleted = await dash.client.delete(f"/api/videos/{video['id']}", headers=token(jwt))
    assert await deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}


async def test_api_videos_keep_users_apart(dash: Dash):
    theirs = await dash.relay.create(ALICE, prompt="alice's video")
    bob, _ = await dash.signed_in("bob")
    resp = await dash.client.get(f"/api/videos/{theirs['id']}", headers=token(bob))
    assert resp.status == 404
    listed = await (await dash.client.get("/api/videos", headers=token(bob))).json()
    assert listed["data"] == []
    resp = await dash.client.get("/api/videos?owner=alice", headers=token(bob))
    assert resp.status == 403
    envelope(await resp.json(), "permission_error", "insufficient_permissions")
    root, _ = await dash.signed_in("root")
    listed = await (await dash.client.get("/api/videos?owner=alice", headers=token(root))).json()
    assert [v["id"] for v in listed["data"]] == [theirs["id"]]
    everyone = await (await dash.client.get("/api/videos?owner=all", headers=token(root))).json()
    assert theirs["id"] in [v["id"] for v in everyone["data"]]


async def test_api_videos_search_prompts(dash: Dash):
    ids = {}
    for prompt in ("A Red Fox in snow", "100% pure_water", "a red barn", "C:\\path\\x"):
        ids[prompt] = (await dash.relay.create(ALICE, prompt=prompt))["id"]
    await dash.relay.create(ROOT, prompt="root's red kite")
    jwt, _ = await dash.signed_in("alice")

    async def search(query: str, extra: str = "", who: str = jwt) -> list[str]:
        resp = await dash.client.get(
            "/api/videos",
            params={"q": query, **dict([extra.split("=")] if extra else [])},
            headers=token(who),
        )
        assert resp.status == 200, await resp.text()
        return [v["prompt"] for v in (await resp.json())["data"]]

    assert await search("RED") == ["a red barn", "A Red Fox in snow"]
    assert await search("%") == ["100% pure_water"]
    assert await search("e_w") == ["100% pure_water"]
    assert await search("%_") == []  # no wildcards: "%_" is not in any prompt
    assert await search("\\path\\") == ["C:\\path\\x"]
    assert await search("zebra") == []
    root, _ = await dash.signed_in("root")
    assert await search("red", "owner=all", root) == [
        "root's red kite",
        "a red barn",
        "A Red Fox in snow",
    ]
    page = await (
        await dash.client.get("/api/videos", params={"q": "red", "limit": "1"}, headers=token(jwt))
    ).json()
    assert page["has_more"] and [v["prompt"] for v in page["data"]] == ["a red barn"]
    rest = await (
        await dash.client.get(
            "/api/videos", params={"q": "red", "after": page["last_id"]}, headers=token(jwt)
        )
    ).json()
    assert [v["prompt"] for v in rest["data"]] == ["A Red Fox in snow"] and not rest["has_more"]
    resp = await dash.client.get("/api/videos", params={"q": "x" * 1001}, headers=token(jwt))
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "q"


# --- models -----------------------------------------------------------------------------------


async def test_models_say_what_each_model_accepts(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(
        channels=[
            {"name": "demo", "provider": "demo", "models": ["sora-2", "demo"]},
            {
                "name": "kling",
                "provider": "kling",
                "access_key": "ak-secret-value",
                "secret_key": "sk-secret-value",
                "base_url": "http://127.0.0.1:9/kling",
                "models": ["kling", "sora-2"],
                "model_map": {"kling": "kling-v2-master", "sora-2": "kling-v2-master"},
            },
            {
                "name": "off",
                "provider": "demo",
                "models": ["hidden"],
                "enabled": False,
            },
        ]
    )
    dash = await start_dash(aiohttp_client, config, providers)
    jwt, _ = await dash.signed_in("alice")
    resp = await dash.client.get("/api/models", headers=token(jwt))
    body = await resp.json()
    assert resp.status == 200, body
    models = {m["id"]: m for m in body["data"]}
    assert set(models) == {"sora-2", "demo", "kling"}  # a disabled channel's model is not offered
    assert body["defaults"] == {"model": "sora-2", "seconds": "4", "size": "720x1280"}
    kling = models["kling"]
    assert kling["seconds"] == ["5", "10"]
    assert kling["sizes"] == ["1280x720", "720x1280", "720x720"]  # v2-master: 720p only
    assert kling["remix"] is False and kling["image_input"] is True
    demo = models["demo"]  # its two real clips, whatever is asked
    assert (demo["seconds"], demo["sizes"]) == (["4"], ["720x1280", "1280x720"])
    assert demo["remix"] is True and "reference_images" in demo["features"]
    sora = models["sora-2"]  # both channels: the union
    assert sora["seconds"] == ["4", "5", "10"]
    assert sora["sizes"] == ["720x1280", "1280x720", "720x720"]
    assert sora["remix"] is True
    # which content variants the form's list may ask for: the demo makes thumbnails, kling not
    assert demo["variants"] == ["spritesheet", "thumbnail", "video"]
    assert models["kling"]["variants"] == ["video"]
    text = await resp.text()
    for secret in ("ak-secret-value", "sk-secret-value", "127.0.0.1:9"):
        assert secret not in text


# --- keys -------------------------------------------------------------------------------------


async def test_keys_create_list_revoke(dash: Dash):
    jwt, value = await dash.signed_in("alice")
    made = await dash.client.post("/api/keys", json={"name": "laptop"}, headers=token(jwt))
    key = await made.json()
    assert made.status == 200, key
    assert made.headers["Cache-Control"] == "no-store"
    assert key["key"].startswith("sk-relay-") and key["name"] == "laptop" and key["active"]
    assert key["key"].startswith(key["prefix"])
    # the new key works on /v1 at once, as alice
    resp = await dash.client.get("/v1/videos", headers=auth(key["key"]))
    assert resp.status == 200
    listed = await (await dash.client.get("/api/keys", headers=cookie(value))).json()
    assert [k["id"] for k in listed["data"]] == [key["id"]]
    assert "key" not in listed["data"][0] and key["key"] not in str(listed)
    # bob cannot see or revoke it
    bob, _ = await dash.signed_in("bob")
    assert (await (await dash.client.get("/api/keys", headers=token(bob))).json())["data"] == []
    resp = await dash.client.delete(f"/api/keys/{key['id']}", headers=token(bob))
    assert resp.status == 404
    envelope(await resp.json(), "invalid_request_error", "not_found")
    resp = await dash.client.delete(f"/api/keys/{key['id']}", headers=cookie(value))
    assert resp.status == 200
    assert await resp.json() == {"id": key["id"], "object": "api_key.revoked", "revoked": True}
    assert (await dash.client.get("/v1/videos", headers=auth(key["key"]))).status == 401
    again = await dash.client.delete(f"/api/keys/{key['id']}", headers=token(jwt))
    assert again.status == 404
    for bad in ("abc", "99999999999999999999999"):
        assert (await dash.client.delete(f"/api/keys/{bad}", headers=token(jwt))).status == 404
    resp = await dash.client.post("/api/keys", json={"name": "x" * 65}, headers=token(jwt))
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "name"
    unnamed = await dash.client.post("/api/keys", headers=token(jwt))  # no body at all
    assert unnamed.status == 200 and (await unnamed.json())["name"] == ""


# --- owners -----------------------------------------------------------------------------------


async def test_owners_tell_an_admin_who_made_each_video_and_where(dash: Dash):
    mine = await dash.relay.create(ALICE, prompt="alice's")
    theirs = await dash.relay.create(ROOT, prompt="root's")
    jwt, value = await dash.signed_in("root")
    ids = f"{mine['id']},video_unknown,{theirs['id']},{mine['id']}"
    resp = await dash.client.get(f"/api/owners?ids={ids}", headers=cookie(value))
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {
        "object": "list",
        "data": [
            {"id": mine["id"], "owner": "alice", "channel": "demo"},
            {"id": theirs["id"], "owner": "root", "channel": "demo"},
        ],
    }
    empty = await dash.client.get("/api/owners", headers=token(jwt))
    assert (await empty.json())["data"] == []
    many = ",".join(f"video_{i}" for i in range(101))
    resp = await dash.client.get(f"/api/owners?ids={many}", headers=token(jwt))
    assert resp.status == 400
    assert envelope(await resp.json(), "invalid_request_error")["param"] == "ids"


# --- admin routes -----------------------------------------------------------------------------


async def test_admin_routes_are_403_for_users(dash: Dash):
    jwt, value = await dash.signed_in("alice")
    for method, path, body in [
        ("GET", "/api/channels", None),
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"name": "eve", "password": "a-password-1"}),
        ("POST", "/api/users/alice", {"role": "admin"}),
        ("GET", "/api/owners?ids=video_x", None),
    ]:
        for headers in (token(jwt), cookie(value)):
            resp = await dash.client.request(method, path, json=body, headers=headers)
            assert resp.status == 403, (method, path)
            envelope(await resp.json(), "permission_error", "insufficient_permissions")
    assert await dash.relay.store.get_user("eve") is None
    alice = await dash.relay.store.get_user("alice")
    assert alice is not None and alice.role == "user"


async def test_channels_show_state_without_credentials(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(
        channels=[
            {"name": "demo", "provider": "demo", "models": ["sora-2"], "max_in_flight": 3},
            {
                "name": "kling-main",
                "provider": "kling",
                "access_key": "ak-very-secret",
                "secret_key": "sk-very-secret",
                "base_url": "http://user:pass@127.0.0.1:9",
                "models": ["sora-2"],
                "priority": -1,
            },
            {"name": "resting", "provider": "demo", "models": ["sora-2"], "enabled": False},
        ]
    )
    dash = await start_dash(aiohttp_client, config, providers)
    from relay.policy import ChannelEffect

    table = dash.relay.runtime.channels
    kling = table.get("kling-main")
    assert kling is not None
    table.record(kling, ChannelEffect.FAILURE, error="Unavailable", why="HTTP 503")
    table.record(kling, ChannelEffect.FAILURE, error="Unavailable", why="HTTP 503")
    table.record(kling, ChannelEffect.FAILURE, error="Timeout", why="timeout")
    jwt, _ = await dash.signed_in("root")
    resp = await dash.client.get("/api/channels", headers=token(jwt))
    body = await resp.json()
    assert resp.status == 200, body
    rows = {c["name"]: c for c in body["data"]}
    assert rows["demo"] == {
        "name": "demo",
        "object": "channel",
        "provider": "demo",
        "models": ["sora-2"],
        "enabled": True,
        "state": "ready",
        "until": None,
        "in_flight": 0,
        "limit": 3,
        "priority": 0,
        "weight": 1,
        "last_error": None,
    }
    cooling = rows["kling-main"]
    assert cooling["state"] == "cooling" and cooling["limit"] is None
    assert dash.clock() < cooling["until"] <= dash.clock() + 6
    assert cooling["last_error"]["class"] == "Timeout"
    assert abs(cooling["last_error"]["at"] - dash.clock()) <= 2
    assert rows["resting"]["state"] == "disabled"
    table.record(kling, ChannelEffect.REFUSED, error="AuthFailed", why="401")
    demo = table.get("demo")
    assert demo is not None
    demo.in_flight = 3
    rows = {
        c["name"]: c
        for c in (await (await dash.client.get("/api/channels", headers=token(jwt))).json())["data"]
    }
    assert rows["kling-main"]["state"] == "credentials"
    assert rows["demo"]["state"] == "full" and rows["demo"]["in_flight"] == 3
    text = await resp.text()
    for secret in ("ak-very-secret", "sk-very-secret", "user:pass", "127.0.0.1:9", "HTTP 503"):
        assert secret not in text


async def test_users_list_create_and_change(dash: Dash):
    jwt, _ = await dash.signed_in("root")
    listed = await (await dash.client.get("/api/users", headers=token(jwt))).json()
    names = {u["name"]: u for u in listed["data"]}
    assert set(names) == {"alice", "bob", "root"}
    assert set(names["alice"]) == {
        "name",
        "object",
        "role",
        "disabled",
        "has_password",
        "created_at",
    }
    assert names["root"]["role"] == "admin" and names["alice"]["has_password"]
    assert "scrypt" not in str(listed)

    made = await dash.client.post(
        "/api/users", json={"name": "carol", "password": "carol-password"}, headers=token(jwt)
    )
    carol = await made.json()
    assert made.status == 200, carol
    assert carol["role"] == "user" and carol["has_password"] and not carol["disabled"]
    assert (await dash.login("carol", "carol-password")).status == 200

    keyless = await dash.client.post(
        "/api/users", json={"name": "dave", "role": "admin"}, headers=token(jwt)
    )
    assert (await keyless.json())["has_password"] is False

    for body, status, code, param in [
        ({"name": "carol"}, 400, "user_exists", "name"),
        ({"name": "bad name!"}, 400, "invalid_parameter", "name"),
        ({"name": "eve", "password": "short"}, 400, "invalid_parameter", "password"),
        ({"name": "eve", "role": "owner"}, 400, "invalid_parameter", "role"),
        ({"name": "eve", "email": "e@x"}, 400, "unknown_parameter", "email"),
        ({}, 400, "missing_parameter", "name"),
    ]:
        resp = await dash.client.post("/api/users", json=body, headers=token(jwt))
        error = envelope(await resp.json(), "invalid_request_error", code)
        assert resp.status == status and error["param"] == param, body

    changed = await dash.client.post("/api/users/carol", json={"role": "admin"}, headers=token(jwt))
    assert (await changed.json())["role"] == "admin"
    changed = await dash.client.post(
        "/api/users/carol",
        json={"password": "a-new-password", "disabled": True},
        headers=token(jwt),
    )
    assert (await changed.json())["disabled"] is True
    assert (await dash.login("carol", "a-new-password")).status == 401  # disabled
    changed = await dash.client.post(
        "/api/users/carol", json={"disabled": False}, headers=token(jwt)
    )
    assert (await changed.json())["disabled"] is False
    assert (await dash.login("carol", "a-new-password")).status == 200
    cleared = await dash.client.post(
        "/api/users/carol", json={"password": None}, headers=token(jwt)
    )
    assert (await cleared.json())["has_password"] is False
    assert (await dash.login("carol", "a-new-password")).status == 401

    for name, body, status, param in [
        ("nobody", {"role": "admin"}, 404, "name"),
        ("carol", {"disabled": "yes"}, 400, "disabled"),
        ("carol", {"password": "short"}, 400, "password"),
        ("carol", {"role": "god"}, 400, "role"),
        ("root", {"role": "user"}, 400, "role"),  # not yourself
        ("root", {"disabled": True}, 400, "disabled"),
    ]:
        resp = await dash.client.post(f"/api/users/{name}", json=body, headers=token(jwt))
        assert resp.status == status, (name, body)
        assert (await resp.json())["error"]["param"] == param
    root = await dash.relay.store.get_user("root")
    assert root is not None and root.role == "admin" and not root.disabled


async def test_no_answer_or_log_line_carries_a_credential(
    dash: Dash, logs: pytest.LogCaptureFixture
):
    """Sign in, make keys and videos, visit every route: no password, hash, session value,
    digest or foreign token ever appears in a body, a header (besides the one Set-Cookie and
    the token/key that an answer exists to hand over) or a log line."""
    resp = await dash.login("root")
    body = await resp.json()
    jwt, value = body["token"], resp.cookies["relay_session"].value
    store = dash.relay.store
    hashes = [await store.password_hash(n) for n in PASSWORDS]
    key = await (await dash.client.post("/api/keys", json={"name": "k"}, headers=token(jwt))).json()
    video = await dash.relay.create(ROOT)
    secrets = [*PASSWORDS.values(), *[h for h in hashes if h], value, ROOT, ALICE]
    import hashlib

    secrets += [hashlib.sha256(value.encode()).hexdigest(), key["key"]]
    seen = []
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/videos"),
        ("GET", f"/api/videos/{video['id']}"),
        ("GET", "/api/models"),
        ("GET", "/api/keys"),
        ("GET", "/api/channels"),
        ("GET", "/api/users"),
        ("POST", "/api/users/alice"),
        ("GET", "/api/nothing"),
    ]:
        for headers in (token(jwt), cookie(value)):
            resp = await dash.client.request(method, path, json={}, headers=headers)
            seen.append(await resp.text() + str(dict(resp.headers)))
    for failing in (dash.login("root", "nope-nope-nope"), dash.login("ghost", PASSWORDS["root"])):
        resp = await failing
        seen.append(await resp.text() + str(dict(resp.headers)))
    everything = "\n".join(seen)
    # every line but aiosqlite's statement log, which the relay turns off (relay/logs.py)
    lines = "\n".join(r.getMessage() for r in logs.records if not r.name.startswith("aiosqlite"))
    for secret in secrets:
        assert secret not in everything
        assert secret not in lines
    assert jwt not in everything and jwt not in lines
    assert "failed sign-in from" in lines  # the log says what happened, not with what
