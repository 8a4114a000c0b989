"""Sessions and tokens over HTTP: rotation at sign-in, expiry, sessions ended by a new password,
disabling or revoking admin; the JWT checks; the Origin rule; the cookie on /v1 only for
content; sign-in throttling and the failed-authentication throttle."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from relay.cli import main
from relay.config import Config
from relay.providers.base import Provider
from tests.conftest import ALICE, BOB, ROOT, auth
from tests.dashboard import OWN_ORIGIN, Dash, cookie, start_dash, token


@pytest.fixture
async def dash(
    aiohttp_client: Callable[..., Any],
    config: Config,
    providers: dict[str, type[Provider[Any]]],
) -> Dash:
    return await start_dash(aiohttp_client, config, providers)


async def status(dash: Dash, headers: dict[str, str], path: str = "/api/me") -> int:
    return (await dash.client.get(path, headers=headers)).status  # type: ignore[no-any-return]


# --- sessions -----------------------------------------------------------------------------------


async def test_every_sign_in_is_a_new_session_and_replaces_the_one_sent(dash: Dash):
    _, first = await dash.signed_in("alice")
    _, other_device = await dash.signed_in("alice")
    assert first != other_device
    resp = await dash.login("alice", **{"Cookie": f"relay_session={first}"})
    assert resp.status == 200
    rotated = resp.cookies["relay_session"].value
    assert rotated not in (first, other_device)
    assert await status(dash, cookie(first)) == 401  # the cookie sent along was ended
    assert await status(dash, cookie(rotated)) == 200
    assert await status(dash, cookie(other_device)) == 200  # another device stays signed in


async def test_the_store_keeps_only_a_digest_of_the_cookie(dash: Dash, data_dir: Path):
    _, value = await dash.signed_in("alice")
    raw = (data_dir / "relay.db").read_bytes() + b"".join(
        p.read_bytes() for p in data_dir.glob("relay.db-*")
    )
    assert value.encode() not in raw
    assert hashlib.sha256(value.encode()).hexdigest().encode() in raw


async def test_sessions_and_their_tokens_expire(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    dash = await start_dash(aiohttp_client, make_config(dashboard={"session_hours": 1}), providers)
    resp = await dash.login("alice")
    body = await resp.json()
    assert int(resp.cookies["relay_session"]["max-age"]) == 3600
    assert body["expires_at"] <= dash.clock() + 3600 + 1  # a token never outlives its session
    jwt, value = body["token"], resp.cookies["relay_session"].value
    dash.clock.advance(3590)
    assert await status(dash, cookie(value)) == 200
    assert await status(dash, token(jwt)) == 200
    dash.clock.advance(20)
    assert await status(dash, cookie(value)) == 401
    resp = await dash.client.get("/api/me", headers=token(jwt))
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_token"


async def test_a_token_expires_after_a_day_even_in_a_longer_session(dash: Dash):
    jwt, value = await dash.signed_in("alice")
    dash.clock.advance(86400 + 1)
    assert await status(dash, token(jwt)) == 401
    assert await status(dash, cookie(value)) == 200  # the week-long session goes on
    fresh = await dash.login("alice")
    assert fresh.status == 200


@pytest.mark.parametrize("change", ["password", "disable", "revoke_admin"])
async def test_taking_a_right_away_ends_the_users_sessions_and_tokens(dash: Dash, change: str):
    await dash.relay.store.make_admin("alice")
    jwt, value = await dash.signed_in("alice")
    bob_jwt, _ = await dash.signed_in("bob")
    root, _ = await dash.signed_in("root")
    assert await status(dash, token(jwt)) == 200
    body = {
        "password": {"password": "a-brand-new-password"},
        "disable": {"disabled": True},
        "revoke_admin": {"role": "user"},
    }[change]
    resp = await dash.client.post("/api/users/alice", json=body, headers=token(root))
    assert resp.status == 200, await resp.json()
    assert await status(dash, token(jwt)) == 401
    assert await status(dash, cookie(value)) == 401
    assert await status(dash, token(bob_jwt)) == 200  # nobody else's
    assert await status(dash, token(root)) == 200


async def test_making_someone_admin_keeps_their_session_and_applies_at_once(dash: Dash):
    jwt, _ = await dash.signed_in("alice")
    root, _ = await dash.signed_in("root")
    assert (await dash.client.get("/api/users", headers=token(jwt))).status == 403
    await dash.client.post("/api/users/alice", json={"role": "admin"}, headers=token(root))
    assert (await dash.client.get("/api/users", headers=token(jwt))).status == 200


async def test_relay_users_passwd_ends_the_sessions_of_a_running_relay(
    dash: Dash, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    jwt, value = await dash.signed_in("alice")
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n'
        '[[channels]]\nname = "demo"\nprovider = "demo"\nmodels = ["sora-2"]\n'
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("changed-password-9\n"))
    code = await asyncio.to_thread(main, ["users", "passwd", "alice", "--config", str(conf)])
    assert code == 0
    assert await status(dash, token(jwt)) == 401
    assert await status(dash, cookie(value)) == 401
    assert (await dash.login("alice")).status == 401
    assert (await dash.login("alice", "changed-password-9")).status == 200


# --- the token's checks over HTTP ------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def claims_of(jwt: str) -> dict[str, Any]:
    return orjson.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))  # type: ignore[no-any-return]


async def test_tokens_are_checked(dash: Dash, data_dir: Path):
    jwt, _ = await dash.signed_in("alice")
    root_jwt, _ = await dash.signed_in("root")
    key = await dash.relay.store.shared_secret("jwt", b"", 0.0)  # the stored key
    claims = claims_of(jwt)
    assert set(claims) == {"sub", "iat", "exp", "sid"} and claims["sub"] == "alice"
    assert forge({"alg": "HS256", "typ": "JWT"}, claims, key) == jwt  # the real key, for sure
    head, body, _ = jwt.split(".")
    none_header = b64(orjson.dumps({"alg": "none"}))
    refused = {
        "alg none": f"{none_header}.{body}.",
        "HS512 header": forge({"alg": "HS512", "typ": "JWT"}, claims, key),
        "another key": forge({"alg": "HS256", "typ": "JWT"}, claims, b"x" * 32),
        "claims changed": ".".join(
            [head, b64(orjson.dumps({**claims, "sub": "root"})), jwt.split(".")[2]]
        ),
        "someone else's session": forge(
            {"alg": "HS256", "typ": "JWT"}, {**claims, "sid": claims_of(root_jwt)["sid"]}, key
        ),
        "expired": forge(
            {"alg": "HS256", "typ": "JWT"},
            {**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600},
            key,
        ),
        "longer than a day": forge(
            {"alg": "HS256", "typ": "JWT"}, {**claims, "exp": claims["iat"] + 86401}, key
        ),
        "older than its session": forge(
            {"alg": "HS256", "typ": "JWT"}, {**claims, "iat": claims["iat"] - 60}, key
        ),
        "no session": forge(
            {"alg": "HS256", "typ": "JWT"}, {k: v for k, v in claims.items() if k != "sid"}, key
        ),
        "garbage": "Bearer-ish.garbage",
    }
    for why, bad in refused.items():
        for headers in (token(bad), {"Authorization": f"Bearer {bad}"}):
            resp = await dash.client.get("/api/videos", headers=headers)
            assert resp.status == 401, why
            error = (await resp.json())["error"]
            assert error["type"] == "authentication_error" and error["code"] == "invalid_token"
            assert bad not in error["message"]
        dash.clock.advance(61)  # keep clear of the failed-authentication throttle
    assert await status(dash, token(jwt)) == 200


async def test_a_bad_token_is_not_passed_over_for_the_cookie(dash: Dash):
    _, value = await dash.signed_in("alice")
    resp = await dash.client.get("/api/me", headers={**token("nope"), **cookie(value)})
    assert resp.status == 401


# --- the Origin rule --------------------------------------------------------------------------


async def test_a_cross_site_change_with_the_cookie_is_refused_and_changes_nothing(dash: Dash):
    _, value = await dash.signed_in("alice")
    video = await dash.relay.create(ALICE)
    await dash.relay.wait(video["id"])
    attempts = [
        ("POST", "/api/keys", {"name": "evil"}),
        ("POST", "/api/videos", {"prompt": "made by another site"}),
        ("DELETE", f"/api/videos/{video['id']}", None),
        ("POST", f"/api/videos/{video['id']}/remix", {"prompt": "x"}),
        ("DELETE", "/api/keys/1", None),
    ]
    for origin in ("https://evil.example", "null", "http://127.0.0.1:8081", None):
        for method, path, body in attempts:
            resp = await dash.client.request(method, path, json=body, headers=cookie(value, origin))
            answer = await resp.json()
            assert resp.status == 403, (origin, method, path, answer)
            assert answer["error"]["type"] == "permission_error"
            assert answer["error"]["code"] == "cross_origin_request"
            assert "Access-Control-Allow-Origin" not in resp.headers
        resp = await dash.client.post("/api/logout", headers=cookie(value, origin))
        assert resp.status == 403
    assert await dash.relay.store.list_keys("alice") == []
    tasks = await dash.relay.store.list_tasks(owner=None, after=None, limit=10, descending=True)
    assert [t.id for t in tasks] == [video["id"]]  # nothing made, nothing deleted
    assert await status(dash, cookie(value)) == 200  # and still signed in


async def test_the_relays_own_pages_may_change_things(dash: Dash):
    _, value = await dash.signed_in("alice")
    own = await dash.client.post("/api/keys", json={"name": "a"}, headers=cookie(value))
    assert own.status == 200
    same_origin = await dash.client.post(
        "/api/keys",
        json={"name": "b"},
        headers={**cookie(value, None), "Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status == 200
    for site in ("cross-site", "same-site", "none"):
        resp = await dash.client.post(
            "/api/keys", json={}, headers={**cookie(value, None), "Sec-Fetch-Site": site}
        )
        assert resp.status == 403, site
    # reading needs no Origin; a token is no ambient credential, so no Origin rule for it
    assert await status(dash, cookie(value, "https://evil.example")) == 200
    jwt, _ = await dash.signed_in("alice")
    made = await dash.client.post(
        "/api/keys", json={}, headers={**token(jwt), "Origin": "https://evil.example"}
    )
    assert made.status == 200


async def test_sign_in_from_another_site_is_refused(dash: Dash):
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        resp = await dash.login("alice", **headers)
        assert resp.status == 403 and "Set-Cookie" not in resp.headers
    assert (await dash.login("alice", Origin=OWN_ORIGIN)).status == 200
    assert (await dash.login("alice")).status == 200  # a script: neither header


async def test_no_cors_headers_ever(dash: Dash):
    jwt, _ = await dash.signed_in("alice")
    for method in ("GET", "OPTIONS"):
        resp = await dash.client.request(
            method,
            "/api/videos",
            headers={
                **token(jwt),
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


# --- the cookie on /v1 ------------------------------------------------------------------------


async def test_v1_takes_the_cookie_only_for_content_get_and_head(dash: Dash):
    video = await dash.relay.create(ALICE)
    await dash.relay.wait(video["id"])
    bobs = await dash.relay.create(BOB)
    await dash.relay.wait(bobs["id"], BOB)
    _, value = await dash.signed_in("alice")
    content = f"/v1/videos/{video['id']}/content"
    resp = await dash.client.get(content, headers={**cookie(value, None), "Range": "bytes=0-9"})
    assert resp.status == 206 and len(await resp.read()) == 10
    head = await dash.client.head(content, headers=cookie(value, None))
    assert head.status == 200
    thumb = await dash.client.get(content + "?variant=thumbnail", headers=cookie(value, None))
    assert thumb.status == 200
    theirs = await dash.client.get(f"/v1/videos/{bobs['id']}/content", headers=cookie(value, None))
    assert theirs.status == 404  # the cookie is alice, and alice only
    for method, path in [
        ("GET", "/v1/videos"),
        ("GET", f"/v1/videos/{video['id']}"),
        ("POST", "/v1/videos"),
        ("DELETE", f"/v1/videos/{video['id']}"),
        ("POST", f"/v1/videos/{video['id']}/remix"),
        ("POST", f"/v1/videos/{video['id']}/cancel"),  # /v1 takes keys only
        ("GET", "/v1/models"),
    ]:
        resp = await dash.client.request(method, path, json={"prompt": "x"}, headers=cookie(value))
        assert resp.status == 401, (method, path)
    # a key wins when both are sent
    resp = await dash.client.get(content, headers={**cookie(value, None), **auth(BOB)})
    assert resp.status == 404
    # after sign-out the content URL answers 401
    await dash.client.post("/api/logout", headers=cookie(value))
    assert (await dash.client.get(content, headers=cookie(value, None))).status == 401
    assert (await dash.client.get(content, headers=auth(ALICE))).status == 200


# --- throttles --------------------------------------------------------------------------------


@pytest.fixture
async def proxied(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
) -> Dash:
    """Behind a trusted proxy, so each request can come from its own address."""
    return await start_dash(aiohttp_client, make_config(server={"trust_proxy": True}), providers)


def src(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_five_failed_sign_ins_for_one_name_block_it_for_five_minutes(proxied: Dash):
    dash = proxied
    for i in range(5):
        resp = await dash.login("alice", "wrong-password", **src(f"10.0.0.{i}"))
        assert resp.status == 401
    blocked = await dash.login("alice", **src("10.0.1.1"))  # even the right password
    body = await blocked.json()
    assert blocked.status == 429, body
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert 290 <= int(blocked.headers["Retry-After"]) <= 300
    assert "Set-Cookie" not in blocked.headers
    assert (await dash.login("bob", **src("10.0.1.1"))).status == 200  # another name
    dash.clock.advance(301)
    assert (await dash.login("alice", **src("10.0.1.1"))).status == 200


async def test_five_failed_sign_ins_from_one_address_block_it(proxied: Dash):
    dash = proxied
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert (await dash.login(name, "nope-nope", **src("192.0.2.7"))).status == 401
    blocked = await dash.login("alice", **src("192.0.2.7"))
    assert blocked.status == 429 and int(blocked.headers["Retry-After"]) >= 290
    assert (await dash.login("alice", **src("192.0.2.8"))).status == 200


async def test_a_good_sign_in_clears_its_names_count(proxied: Dash):
    dash = proxied
    for i in range(4):
        await dash.login("alice", "wrong-password", **src(f"10.1.0.{i}"))
    assert (await dash.login("alice", **src("10.1.1.0"))).status == 200
    for i in range(4):
        assert (await dash.login("alice", "wrong-password", **src(f"10.2.0.{i}"))).status == 401


async def test_twenty_failed_authentications_a_minute_answer_429(proxied: Dash):
    dash = proxied
    me = src("198.51.100.9")
    video = await dash.relay.create(ALICE)
    failing = [
        auth("sk-relay-wrong-key"),
        {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
        token("not.a.token"),
        {"Cookie": "relay_session=nope"},
    ]
    for i in range(20):
        path = "/api/me" if i % 4 in (2, 3) else "/v1/videos"
        resp = await dash.client.get(path, headers={**failing[i % 4], **me})
        assert resp.status == 401, i
    resp = await dash.client.get("/v1/videos", headers={**auth("sk-relay-guess"), **me})
    body = await resp.json()
    assert resp.status == 429, body
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # a valid credential is checked first and still accepted
    assert (
        await dash.client.get(f"/v1/videos/{video['id']}", headers={**auth(ALICE), **me})
    ).status == 200
    jwt, value = await dash.signed_in("alice")
    assert await status(dash, {**token(jwt), **me}) == 200
    assert await status(dash, {**cookie(value), **me}) == 200
    # no credential at all is no guess: a plain 401
    assert (await dash.client.get("/v1/videos", headers=me)).status == 401
    # other addresses are not affected
    assert (
        await dash.client.get("/v1/videos", headers={**auth("sk-x"), **src("198.51.100.10")})
    ).status == 401
    dash.clock.advance(61)
    assert (await dash.client.get("/v1/videos", headers={**auth("sk-x"), **me})).status == 401


async def test_failed_authentications_count_without_a_proxy_too(dash: Dash):
    for _ in range(20):
        assert (await dash.client.get("/v1/models", headers=auth("sk-wrong"))).status == 401
    assert (await dash.client.get("/v1/models", headers=auth("sk-wrong"))).status == 429
    assert (await dash.client.get("/v1/models", headers=auth(ROOT))).status == 200


async def test_pages_can_ask_who_is_signed_in(dash: Dash):
    from aiohttp.test_utils import make_mocked_request

    from relay.web import credentials

    _, value = await dash.signed_in("root")

    def page(headers: dict[str, str]) -> Any:
        return make_mocked_request("GET", "/dashboard", headers=headers, app=dash.relay.app)

    who = await credentials.signed_in(page(cookie(value, None)))
    assert who is not None and (who.user, who.admin) == ("root", True)
    assert await credentials.signed_in(page({})) is None
    assert await credentials.signed_in(page(cookie("stale", None))) is None


async def test_guessing_keys_at_metrics_counts_too(dash: Dash):
    for _ in range(20):
        assert (await dash.client.get("/metrics", headers=auth("sk-wrong"))).status == 401
    assert (await dash.client.get("/metrics", headers=auth("sk-wrong"))).status == 429
    assert (await dash.client.get("/metrics", headers=auth(ROOT))).status == 200
