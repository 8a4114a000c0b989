"""The dashboard's JSON routes about the relay itself: the models a form may offer (anyone
signed in), the channel table's health and the users (admins only).

No answer here ever holds an upstream credential, base URL or raw upstream text: a channel is
shown by its name, provider, models, state and the class name of its last error.
"""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web

from relay import config as config_mod
from relay import passwords
from relay.errors import InvalidRequest, NotFound
from relay.routing import READY, upstream_models
from relay.store import User
from relay.web.account import read_fields, text_field
from relay.web.keys import PRINCIPAL, RUNTIME, SIGNIN, STORE
from relay.web.middleware import admin_only, json_response

ROLES = ("user", "admin")


# --- models -----------------------------------------------------------------------------------


async def models(request: web.Request) -> web.Response:
    """GET /api/models: each public model with the durations and sizes its enabled channels'
    providers declare, and what it can do."""
    runtime = request.app[RUNTIME]
    defaults = runtime.config.defaults
    data = []
    for name in runtime.channels.models():
        seconds: set[int] = set()
        sizes: dict[str, None] = {}
        features: set[str] = set()
        variants: set[str] = set()
        remix = False
        for channel in runtime.channels.serving(name):
            adapter = channel.adapter
            features |= adapter.features
            variants |= adapter.variants
            for upstream in upstream_models(channel.config, name):
                durations, offered = adapter.accepts(upstream)
                seconds.update(durations)
                sizes.update(dict.fromkeys(offered))
                remix = remix or adapter.can_remix(upstream)
        data.append(
            {
                "id": name,
                "object": "model",
                "seconds": [str(s) for s in sorted(seconds)],
                "sizes": list(sizes),
                "remix": remix,
                "image_input": "image_input" in features,
                "cancel": runtime.channels.cancels(name),
                "features": sorted(features - {"remix", "cancel"}),
                "variants": sorted(variants),
            }
        )
    return json_response(
        {
            "object": "list",
            "data": data,
            "defaults": {
                "model": defaults.model,
                "seconds": defaults.seconds,
                "size": defaults.size,
            },
        }
    )


# --- channels ---------------------------------------------------------------------------------


@admin_only
async def channels(request: web.Request) -> web.Response:
    """GET /api/channels: the channel table as the relay sees it now."""
    data = []
    for channel in request.app[RUNTIME].channels:
        health, config = channel.health, channel.config
        if not config.enabled:
            state = "disabled"
        elif health.state == READY:
            state = "full" if channel.full else READY
        else:
            state = health.state  # cooling, rate_limited, credentials, quota
        last = None
        if health.last_error is not None:
            at = health.last_error_at
            last = {"class": health.last_error, "at": int(at) if at is not None else None}
        data.append(
            {
                "name": channel.name,
                "object": "channel",
                "provider": channel.provider,
                "models": list(config.models),
                "enabled": config.enabled,
                "state": state,
                "until": None if state in (READY, "full", "disabled") else math.ceil(health.until),
                "in_flight": channel.in_flight,
                "limit": config.max_in_flight or None,
                "priority": config.priority,
                "weight": config.weight,
                "last_error": last,
            }
        )
    return json_response({"object": "list", "data": data})


# --- who made a video --------------------------------------------------------------------------

MAX_IDS = 100


@admin_only
async def owners(request: web.Request) -> web.Response:
    """GET /api/owners?ids=video_a,video_b: the owner and channel of each video (the video
    object has neither), for an admin's list and details. Unknown ids are left out."""
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"ids: at most {MAX_IDS} at once", param="ids")
    store = request.app[STORE]
    data = []
    for video_id in dict.fromkeys(ids):
        task = await store.get_task(video_id[:200])
        if task is not None:
            data.append({"id": task.id, "owner": task.owner, "channel": task.channel})
    return json_response({"object": "list", "data": data})


# --- users ------------------------------------------------------------------------------------


def render_user(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "object": "user",
        "role": user.role,
        "disabled": user.disabled,
        "has_password": user.has_password,
        "created_at": user.created_at,
    }


@admin_only
async def list_users(request: web.Request) -> web.Response:
    users = await request.app[STORE].list_users()
    return json_response({"object": "list", "data": [render_user(u) for u in users]})


@admin_only
async def create_user(request: web.Request) -> web.Response:
    """POST /api/users {name, password?, role?}: a new user (no password: API keys only)."""
    fields = await read_fields(request)
    _no_other_fields(fields, ("name", "password", "role"))
    name = text_field(fields, "name")
    assert name is not None
    if config_mod.invalid_name(name):
        raise InvalidRequest(
            "name: letters, digits, '_', '.', '-' (at most 64 characters)", param="name"
        )
    role = _role(fields.get("role", "user"))
    password = _new_password(fields.get("password"))
    store = request.app[STORE]
    if await store.get_user(name) is not None:
        raise InvalidRequest(
            f"a user named {name!r} exists already", code="user_exists", param="name"
        )
    hashed = await request.app[SIGNIN].hash_password(password) if password else None
    user = await store.add_user(name, role, time.time(), password_hash=hashed)
    return json_response(render_user(user))


@admin_only
async def change_user(request: web.Request) -> web.Response:
    """POST /api/users/{name} {password?, role?, disabled?}: reset the password (null: API keys
    only), make or revoke admin, disable or enable. A change that takes a right away ends the
    user's sessions. An admin cannot revoke or disable themselves."""
    name = request.match_info["name"]
    fields = await read_fields(request)
    _no_other_fields(fields, ("password", "role", "disabled"))
    store = request.app[STORE]
    if await store.get_user(name) is None:
        raise NotFound(f"no user named {name[:64]!r}", param="name")
    # check everything before changing anything
    role = _role(fields["role"]) if "role" in fields else None
    disabled = fields.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise InvalidRequest("disabled must be true or false", param="disabled")
    password = _new_password(fields["password"]) if "password" in fields else None
    me = request[PRINCIPAL].user
    if name == me and (role == "user" or disabled):
        raise InvalidRequest(
            "you cannot revoke your own admin role or disable yourself; ask another admin",
            param="role" if role == "user" else "disabled",
        )
    if "password" in fields:
        hashed = await request.app[SIGNIN].hash_password(password) if password else None
        await store.set_password(name, hashed)
    if role == "admin":
        await store.make_admin(name)
    elif role == "user":
        await store.revoke_admin(name)
    if disabled is True:
        await store.disable_user(name)
    elif disabled is False:
        await store.enable_user(name)
    user = await store.get_user(name)
    if user is None:  # removed meanwhile
        raise NotFound(f"no user named {name[:64]!r}", param="name")
    return json_response(render_user(user))


def _no_other_fields(fields: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in fields:
        if key not in known:
            raise InvalidRequest(
                f"unknown field {key[:40]!r} (known: {', '.join(known)})",
                code="unknown_parameter",
                param=key[:40],
            )


def _role(value: Any) -> str:
    if value not in ROLES:
        raise InvalidRequest("role must be 'user' or 'admin'", param="role")
    return str(value)


def _new_password(value: Any) -> str | None:
    """A new password, checked; None or "" means none (API keys only)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest("password must be a string", param="password")
    why = passwords.weakness(value)
    if why:
        raise InvalidRequest(why, param="password")
    return value
