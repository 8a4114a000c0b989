"""What every fake upstream shares: a tiny aiohttp app on 127.0.0.1, a request log, and a CDN.

A fake follows its provider page (tests/../shared/spec/providers/<name>.md) to the letter for
the native API. Outcomes are chosen by markers in the prompt, the same in every fake, so one
contract suite drives them all:

    "#fail"        the job fails upstream (the provider's generic failure)
    "#moderation"  the job is blocked by moderation at run time
    "#reject"      the submit is refused as moderation (input policy) at once
    otherwise      the job completes after `polls_to_finish` status polls

The CDN (`/cdn/<name>`) serves result files with Range, and has knobs for the content tests:
slow writes, a body cut short, Range ignored, a fixed status (an expired URL).

The per-method contract cases (tests/providers/test_methods.py) drive every fake through the same
few hooks, each answered in the provider's own native form:

    contract_error(op, kind, retry_after)  the next `op` ("submit" or "poll") answers the
                                           provider's native `kind` error: "auth" (credentials
                                           refused) or "rate_limit" (with Retry-After seconds
                                           where the provider sends one)
    forget_tasks()                         the upstream no longer knows any task made so far
    expire_urls()                          every result URL handed out so far answers 403
                                           (a URL signed afresh later works)
    supports_delete                        whether the provider's API deletes a task
    supports_cancel                        whether the provider's API stops a queued task (and
                                           refuses to touch a finished one through cancel)
    renews_urls                            whether a new query hands out a working result URL
                                           once the old one expired (False: the URL is fixed)
    retry_after_header                     whether the provider's 429 carries a Retry-After
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.providers.demo import ASSETS

VIDEO = (ASSETS / "video.mp4").read_bytes()
THUMBNAIL_JPEG = (ASSETS / "spritesheet.jpg").read_bytes()


def outcome(prompt: str) -> str:
    for marker in ("#reject", "#moderation", "#fail"):
        if marker in prompt:
            return marker[1:]
    return "complete"


def _sniff(data: bytes) -> str:
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body) if self.body else None


@dataclass
class CdnKnobs:
    status: int | None = None  # answer this status instead of the file (403 = expired URL)
    ignore_range: bool = False
    truncate_at: int | None = None  # close the connection after this many body bytes
    chunk: int = 64 * 1024
    delay_s: float = 0.0  # pause between chunks
    chunked: bool = False  # no Content-Length
    content_type: str | None = None  # None: by the file's magic bytes, as object stores do
    gzip: bool = False  # send the file gzip-encoded (Content-Encoding), Range ignored


@dataclass
class CdnStats:
    requests: int = 0
    bytes_sent: int = 0
    disconnects: int = 0
    finished: int = 0
    active: int = 0  # bodies being sent right now
    most_active: int = 0
    range_headers: list[str | None] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)


class FakeUpstream:
    name: ClassVar[str] = "fake"
    polls_to_finish: int = 2
    supports_delete: ClassVar[bool] = False
    supports_cancel: ClassVar[bool] = False
    renews_urls: ClassVar[bool] = True
    retry_after_header: ClassVar[bool] = True

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._record])
        self.requests: list[Recorded] = []
        self.files: dict[str, bytes] = {"video.mp4": VIDEO}
        self.cdn = CdnKnobs()
        self.cdn_stats = CdnStats()
        self.server: TestServer | None = None
        self.issued: set[str] = set()  # every CDN URL handed out (path and query)
        self.expired: set[str] = set()
        self.app.router.add_get("/cdn/{name}", self._serve_cdn)
        self.routes(self.app.router)

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the provider's native routes (subclasses)."""

    def channel(self, base_url: str) -> dict[str, Any]:
        """A [[channels]] entry of a relay config that points at this fake (subclasses)."""
        raise NotImplementedError

    # --- running --------------------------------------------------------------------

    async def start(self) -> str:
        self.server = TestServer(self.app, host="127.0.0.1")
        await self.server.start_server()
        return self.base_url

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def url(self, path: str) -> str:
        return self.base_url + path

    def cdn_url(self, name: str = "video.mp4", query: str = "") -> str:
        relative = f"/cdn/{name}" + (f"?{query}" if query else "")
        self.issued.add(relative)
        return self.url(relative)

    # --- the per-method contract hooks ---------------------------------------------------

    def contract_error(self, op: str, kind: str, retry_after: int | None = None) -> None:
        """Make the next `op` call answer the provider's native `kind` error (subclasses)."""
        raise NotImplementedError

    def forget_tasks(self) -> None:
        """Forget every task, as an upstream does past its retention (subclasses)."""
        raise NotImplementedError

    def expire_urls(self) -> None:
        """Every result URL handed out so far answers 403 from now on."""
        self.expired |= self.issued

    def calls(self, path_part: str = "", method: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method)
        ]

    # --- middleware and CDN -----------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/cdn/"):
            body = await request.read()
            self.requests.append(
                Recorded(
                    request.method, request.path, dict(request.query), dict(request.headers), body
                )
            )
        return await handler(request)  # type: ignore[no-any-return]

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        knobs, stats = self.cdn, self.cdn_stats
        stats.requests += 1
        stats.range_headers.append(request.headers.get("Range"))
        stats.auth_headers.append(request.headers.get("Authorization"))
        name = request.match_info["name"]
        if str(request.rel_url) in self.expired:
            return web.json_response({"error": "the signed URL has expired"}, status=403)
        if knobs.status is not None:
            return web.json_response({"error": "expired"}, status=knobs.status)
        data = self.files.get(name)
        if data is None:
            return web.json_response({"error": "no such object"}, status=404)
        ctype = knobs.content_type or _sniff(data)
        if knobs.gzip:
            import gzip

            data = gzip.compress(data)
        start, end, status = 0, len(data) - 1, 200
        rng = request.headers.get("Range")
        if rng and not knobs.ignore_range and not knobs.gzip and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            if first == "":
                start = max(0, len(data) - int(last))
            else:
                start = int(first)
                end = min(int(last), len(data) - 1) if last else len(data) - 1
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start : end + 1]
        resp = web.StreamResponse(status=status)
        resp.content_type = ctype
        if knobs.gzip:
            resp.headers["Content-Encoding"] = "gzip"
        if not knobs.chunked:
            resp.content_length = len(body)
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        resp.headers["Accept-Ranges"] = "bytes"
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        sent = 0
        stats.active += 1
        stats.most_active = max(stats.most_active, stats.active)
        try:
            for i in range(0, len(body), knobs.chunk):
                piece = body[i : i + knobs.chunk]
                if knobs.truncate_at is not None and sent + len(piece) > knobs.truncate_at:
                    piece = piece[: knobs.truncate_at - sent]
                    await resp.write(piece)
                    stats.bytes_sent += len(piece)
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                await resp.write(piece)
                sent += len(piece)
                stats.bytes_sent += len(piece)
                if knobs.delay_s:
                    await asyncio.sleep(knobs.delay_s)
            await resp.write_eof()
            stats.finished += 1
        except (ConnectionResetError, asyncio.CancelledError):
            stats.disconnects += 1
            raise
        finally:
            stats.active -= 1
        return resp
