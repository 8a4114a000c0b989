"""The video handlers: read the request, call the use case, render the answer. The caller is
already authenticated (middleware.py); every error is a RelayError the envelope renders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from relay import content as content_mod
from relay import video
from relay.domain import VARIANTS, Task
from relay.errors import InvalidRequest
from relay.events import BytesStreamed
from relay.web.forms import read_body
from relay.web.keys import EVENTS, HTTP, PRINCIPAL, RUNTIME, VIDEOS
from relay.web.middleware import json_response

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_IDEMPOTENCY_KEY = 255
MAX_QUERY = 1000  # characters of a prompt search (q=)


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


def _render(request: web.Request, task: Task) -> dict[str, Any]:
    return video.render(task, request.app[RUNTIME].config.server.public_url)


def _answer(request: web.Request, task: Task, replayed: bool) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return json_response(_render(request, task), headers=headers)


async def create(request: web.Request) -> web.Response:
    config = request.app[RUNTIME].config
    key = _idempotency_key(request)
    limits = {
        "max_upload": config.server.max_upload_bytes,
        "max_media": config.server.max_media_bytes,
    }
    fields, upload = await read_body(request, **limits)
    wanted = video.parse_create(fields, upload, **limits)
    del fields, upload  # a data: URL's text (up to 4/3 of max_media_mb) is not needed past here
    videos = request.app[VIDEOS]
    task, replayed = await _shielded(videos.create(request[PRINCIPAL], wanted, key))
    return _answer(request, task, replayed)


async def remix(request: web.Request) -> web.Response:
    config = request.app[RUNTIME].config
    key = _idempotency_key(request)
    fields, upload = await read_body(request, max_upload=config.server.max_upload_bytes)
    if upload is not None:
        raise InvalidRequest("a remix takes no input_reference file", param="input_reference")
    wanted = video.parse_remix(fields)
    videos = request.app[VIDEOS]
    source = request.match_info["video_id"]
    task, replayed = await _shielded(videos.remix(request[PRINCIPAL], source, wanted, key))
    return _answer(request, task, replayed)


async def list_videos(request: web.Request) -> web.Response:
    query = request.query
    limit_text = query.get("limit", "0")
    if not limit_text.isdigit() or int(limit_text) > MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 0 to {MAX_LIMIT}", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", param="order")
    search = query.get("q") or None
    if search is not None and len(search) > MAX_QUERY:
        raise InvalidRequest(f"q: at most {MAX_QUERY} characters", param="q")
    tasks, has_more = await request.app[VIDEOS].list_page(
        request[PRINCIPAL],
        after=query.get("after") or None,
        limit=int(limit_text) or DEFAULT_LIMIT,
        order=order,
        owner=query.get("owner") or None,
        query=search,
    )
    data = [_render(request, task) for task in tasks]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


async def retrieve(request: web.Request) -> web.Response:
    app = request.app
    videos = app[VIDEOS]
    task = await videos.get(request[PRINCIPAL], request.match_info["video_id"])
    config = app[RUNTIME].config
    headers = None
    if task.active:
        polling = config.polling
        now = videos.ctx.clock()
        due = task.next_poll_at or (now + polling.interval_s)
        wait_ms = max(100, min((due - now) * 1000 + 50, polling.max_interval_s * 1000))
        headers = {"openai-poll-after-ms": str(int(wait_ms))}
    return json_response(video.render(task, config.server.public_url), headers=headers)


async def delete(request: web.Request) -> web.Response:
    video_id = request.match_info["video_id"]
    await _shielded(request.app[VIDEOS].delete(request[PRINCIPAL], video_id))
    return json_response({"id": video_id, "object": "video.deleted", "deleted": True})


async def cancel(request: web.Request) -> web.Response:
    videos = request.app[VIDEOS]
    task = await _shielded(videos.cancel(request[PRINCIPAL], request.match_info["video_id"]))
    return _answer(request, task, replayed=False)


async def content(request: web.Request) -> web.StreamResponse:
    variant = request.query.get("variant", "video")
    if variant not in VARIANTS:
        raise InvalidRequest(
            f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})", param="variant"
        )
    who = request[PRINCIPAL]
    contents = request.app[VIDEOS].contents
    events = request.app[EVENTS]
    video_id = request.match_info["video_id"]
    source = await contents.source(who, video_id, variant)
    return await content_mod.serve(
        request,
        source,
        video_id=video_id,
        variant=variant,
        http=request.app[HTTP],
        refresh=lambda: contents.refresh(who, video_id, variant),
        sent=lambda kind, size: events.emit(BytesStreamed(video_id, variant, kind, size)),
        events=events,
    )
