"""The /v1 handlers: authenticate, read the request, call the use case, render the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from relay import content as content_mod
from relay import forms, video
from relay.auth import Authenticator, Principal
from relay.errors import InvalidRequest, ServiceUnavailable
from relay.domain import VARIANTS

log = logging.getLogger("relay.api")
T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_IDEMPOTENCY_KEY = 255


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(value), status=status, headers=headers, content_type="application/json"
    )


def _state(request: web.Request):  # type: ignore[no-untyped-def]
    from relay.app import STATE

    return request.app[STATE]


async def _who(request: web.Request) -> Principal:
    auth: Authenticator = _state(request).runtime.auth
    return await auth.authenticate(request.headers.get("Authorization"))


async def _shielded(work: Awaitable[T]) -> T:
    """Finish a state-changing use case even if the client hangs up midway: an upstream job
    created but not recorded would be lost (and billed)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return await asyncio.shield(task)


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} printable characters",
            param="Idempotency-Key",
        )
    return key


def _render(request: web.Request, row: Any) -> dict[str, Any]:
    return video.render(row, _state(request).runtime.config.server.public_url)


async def create(request: web.Request) -> web.Response:
    who = await _who(request)
    state = _state(request)
    config = state.runtime.config
    key = _idempotency_key(request)
    fields, upload = await forms.read_body(request, max_upload=config.server.max_upload_bytes)
    req = video.parse_create(
        fields,
        upload,
        defaults=config.defaults,
        max_upload=config.server.max_upload_bytes,
        form=request.content_type != "application/json",
    )
    row, replayed = await _shielded(state.videos.create(who, req, key))
    if not replayed and row.next_poll_at is not None:
        state.poller.due_at(row.next_poll_at)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return _json(_render(request, row), headers=headers)


async def remix(request: web.Request) -> web.Response:
    who = await _who(request)
    state = _state(request)
    key = _idempotency_key(request)
    fields, upload = await forms.read_body(
        request, max_upload=state.runtime.config.server.max_upload_bytes
    )
    if upload is not None:
        raise InvalidRequest("a remix takes no input_reference file", param="input_reference")
    req = video.parse_remix(fields)
    row, replayed = await _shielded(
        state.videos.remix(who, request.match_info["video_id"], req, key)
    )
    if not replayed and row.next_poll_at is not None:
        state.poller.due_at(row.next_poll_at)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return _json(_render(request, row), headers=headers)


async def list_videos(request: web.Request) -> web.Response:
    who = await _who(request)
    query = request.query
    limit_text = query.get("limit", "0")
    if not limit_text.isdigit() or int(limit_text) > MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 0 to {MAX_LIMIT}", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", param="order")
    after = query.get("after") or None
    rows, has_more = await _state(request).videos.list_page(
        who,
        after=after,
        limit=int(limit_text) or DEFAULT_LIMIT,
        order=order,
        owner=query.get("owner") or None,
    )
    data = [_render(request, row) for row in rows]
    return _json(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


async def retrieve(request: web.Request) -> web.Response:
    who = await _who(request)
    state = _state(request)
    row = await state.videos.get(who, request.match_info["video_id"])
    headers = None
    if row.active:
        polling = state.runtime.config.polling
        due = row.next_poll_at or (state.videos.clock() + polling.interval_s)
        wait_ms = (due - state.videos.clock()) * 1000 + 50
        wait_ms = max(100, min(wait_ms, polling.max_interval_s * 1000))
        headers = {"openai-poll-after-ms": str(int(wait_ms))}
    return _json(_render(request, row), headers=headers)


async def delete(request: web.Request) -> web.Response:
    who = await _who(request)
    video_id = request.match_info["video_id"]
    await _shielded(_state(request).videos.delete(who, video_id))
    return _json({"id": video_id, "object": "video.deleted", "deleted": True})


async def content(request: web.Request) -> web.StreamResponse:
    who = await _who(request)
    variant = request.query.get("variant", "video")
    if variant not in VARIANTS:
        raise InvalidRequest(
            f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})", param="variant"
        )
    state = _state(request)
    video_id = request.match_info["video_id"]
    source = await state.videos.content(who, video_id, variant)
    return await content_mod.serve(
        request,
        source,
        video_id=video_id,
        variant=variant,
        http=state.http,
        refresh=lambda: state.videos.refresh_content(who, video_id, variant),
    )


async def models(request: web.Request) -> web.Response:
    await _who(request)
    state = _state(request)
    created = int(state.started_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "relay"}
        for name in state.runtime.channels.models()
    ]
    return _json({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    try:
        await _state(request).store.ping()
    except Exception as exc:
        log.error("health check: database unavailable: %s", exc)
        raise ServiceUnavailable("database unavailable") from None
    return _json({"status": "ok", "database": "ok"})
