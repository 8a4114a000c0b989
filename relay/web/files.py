"""`GET|HEAD /v1/files/{token}`: the inputs the relay hosts for providers that fetch by URL
only (relay/hosting.py). No auth: the signed token is the credential, and any token that is not
valid now (forged, expired, or its task finished) is the same plain 404."""

from __future__ import annotations

from aiohttp import web

from relay.content import Expired, serve_remote
from relay.domain import TERMINAL, LocalFile, Remote
from relay.errors import NotFound
from relay.store import Copy
from relay.web.keys import HTTP, STORE, VIDEOS
from relay.web.middleware import public

# the bytes are the client's, served from the relay's own origin: never rendered there
HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@public
async def hosted(request: web.Request) -> web.StreamResponse:
    ctx = request.app[VIDEOS].ctx
    found = ctx.hosting.parse(request.match_info["token"]) if ctx.hosting is not None else None
    gone = NotFound("no such file", code="not_found")
    if found is None:
        raise gone
    task = await request.app[STORE].get_task(found.task_id)
    if task is None or task.status in TERMINAL:
        raise gone
    assert ctx.hosting is not None
    kept = Copy(
        task_id=found.task_id,
        variant="input",
        state="stored",
        path=found.path,
        content_type=found.content_type,
        bytes=None,
        attempts=0,
        created_at=0.0,
        stored_at=None,
    )
    source = ctx.hosting.library.source(kept)
    if isinstance(source, LocalFile):
        return web.FileResponse(  # Range, If-Range and HEAD as aiohttp does them
            source.path,
            headers={"Content-Type": found.content_type, **HEADERS},
        )
    if isinstance(source, Remote):
        try:
            return await serve_remote(
                request,
                source,
                video_id=found.task_id,
                variant="video",
                http=request.app[HTTP],
                exact_type=found.content_type,
                extra_headers=HEADERS,
            )
        except Expired:  # the bucket no longer has it (retention, another relay's drop)
            raise gone from None
    raise gone
