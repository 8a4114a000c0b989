"""The signed-in person's own JSON routes: sign in and out, who am I, my API keys.

Bodies are JSON (the sign-in also takes form-urlencoded); every answer is JSON, every error the
envelope. Answers that carry a secret (a token, a new key) are sent with `Cache-Control:
no-store`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from relay.auth import digest, display_prefix, new_api_key
from relay.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    UnsupportedMediaType,
)
from relay.logs import client_address
from relay.store import ApiKey
from relay.web import credentials
from relay.web.keys import PRINCIPAL, SIGNIN, STORE
from relay.web.middleware import json_response, public

MAX_BODY = 64 * 1024
MAX_LABEL = 64
NO_STORE = {"Cache-Control": "no-store"}


async def read_fields(request: web.Request, *, form: bool = False) -> dict[str, Any]:
    """A small JSON object body (or form-urlencoded where `form`); an empty body is {}."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise RequestTooLarge(f"the request body is over {MAX_BODY // 1024} KiB")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise RequestTooLarge(f"the request body is over {MAX_BODY // 1024} KiB")
    if not raw.strip():
        return {}
    ctype = request.content_type
    if form and ctype == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidRequest("the form is not valid UTF-8", code="invalid_body") from None
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        kinds = "application/json" + (" or application/x-www-form-urlencoded" if form else "")
        raise UnsupportedMediaType(f"send the body as {kinds}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    return body


def text_field(fields: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required", code="missing_parameter", param=name)
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value


# --- signing in and out -----------------------------------------------------------------------


@public
async def login(request: web.Request) -> web.Response:
    """POST /api/login {username, password} -> {token, expires_at, user} and the cookie."""
    credentials.check_not_cross_site(request)
    fields = await read_fields(request, form=True)
    username = text_field(fields, "username")
    password = text_field(fields, "password")
    assert username is not None and password is not None
    done = await request.app[SIGNIN].login(
        username,
        password,
        address=client_address(request),
        replaces=request.cookies.get(credentials.COOKIE),
    )
    response = json_response(
        {
            "token": done.token,
            "expires_at": done.token_expires_at,
            "session_expires_at": int(done.session_expires_at),
            "user": {"name": done.user.name, "role": done.user.role},
        },
        headers=NO_STORE,
    )
    credentials.set_session_cookie(request, response, done.cookie)
    return response


@public
async def logout(request: web.Request) -> web.Response:
    """POST /api/logout: ends the session of the cookie or token sent, clears the cookie.
    Idempotent: without a live session it only clears the cookie."""
    signin = request.app[SIGNIN]
    token = request.headers.get("token")
    bearer = request.headers.get("Authorization", "")
    if token is None and bearer[:7].lower() == "bearer ":
        token = bearer[7:].strip()
    ended = False
    if token:
        try:
            _, session_id = await signin.from_token(token.strip())
        except AuthenticationFailed:
            pass  # an invalid or ended token names no session to end
        else:
            ended = await signin.logout(session_id=session_id)
    cookie = request.cookies.get(credentials.COOKIE)
    if cookie:
        credentials.check_origin(request)
        ended = await signin.logout(cookie) or ended
    response = json_response({"object": "logout", "signed_out": ended})
    credentials.clear_session_cookie(request, response)
    return response


async def me(request: web.Request) -> web.Response:
    """GET /api/me -> {name, role}."""
    who = request[PRINCIPAL]
    return json_response({"name": who.user, "role": who.role})


# --- the caller's API keys --------------------------------------------------------------------


def render_key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "api_key",
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "active": key.revoked_at is None,
    }


async def list_keys(request: web.Request) -> web.Response:
    """GET /api/keys: the caller's keys, revoked ones too; never a key itself."""
    keys = await request.app[STORE].list_keys(request[PRINCIPAL].user)
    return json_response({"object": "list", "data": [render_key(k) for k in keys]})


async def create_key(request: web.Request) -> web.Response:
    """POST /api/keys {name?}: a new key for the caller, shown in this answer only."""
    fields = await read_fields(request)
    label = text_field(fields, "name", required=False) or ""
    if len(label) > MAX_LABEL or not label.isprintable():
        raise InvalidRequest(f"name: at most {MAX_LABEL} printable characters", param="name")
    store = request.app[STORE]
    user = await store.get_user(request[PRINCIPAL].user)
    if user is None:  # a session's user always exists; a deleted one cannot get here
        raise NotFound("no such user")
    key = new_api_key()
    key_id = await store.add_key(user.id, label, display_prefix(key), digest(key), time.time())
    [made] = [k for k in await store.list_keys(user.name) if k.id == key_id]
    return json_response({**render_key(made), "key": key}, headers=NO_STORE)


async def revoke_key(request: web.Request) -> web.Response:
    """DELETE /api/keys/{key_id}: revoke one of the caller's keys."""
    text = request.match_info["key_id"]
    store = request.app[STORE]
    own = {k.id: k for k in await store.list_keys(request[PRINCIPAL].user)}
    key = own.get(int(text)) if text.isdigit() and len(text) < 19 else None
    if key is None or key.revoked_at is not None:
        raise NotFound(f"no active key with id {text[:20]!r}", param="key_id")
    await store.revoke_key(key.id, time.time())
    return json_response({"id": key.id, "object": "api_key.revoked", "revoked": True})
