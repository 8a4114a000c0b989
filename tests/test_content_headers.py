"""The headers of GET/HEAD /v1/videos/{id}/content (api.md "Content"): the Content-Type from
the allow-list, `Cache-Control: private` on every answer, and no upstream header but a
well-formed length and range."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.providers.base import Provider
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.scripted import ScriptedProvider

# --- the headers a client gets: the allow-list, private, nothing else of the upstream's --------

UPSTREAM_EXTRAS = {
    "Set-Cookie": "session=upstream-cookie",
    "Server": "upstream-cdn/1.0",
    "ETag": '"upstream-etag"',
    "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
    "Access-Control-Allow-Origin": "*",
    "Content-Security-Policy": "default-src upstream",
    "Link": "<https://upstream.example/next>; rel=next",
    "Location": "https://upstream.example/elsewhere",
    "Refresh": "0; url=https://upstream.example/",
    "X-Amz-Request-Id": "upstream-request-id",
    "X-Upstream-Secret": "upstream-secret",
    "Content-Language": "upstream",
    "Cache-Control": "public, max-age=31536000",
    "Expires": "Thu, 01 Dec 2094 16:00:00 GMT",
    "Vary": "upstream",
    "Strict-Transport-Security": "max-age=1",
    "X-Content-Type-Options": "upstream",
}
RELAY_HEADERS = {
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "content-disposition",
    "cache-control",
    "x-request-id",
    "date",
    "server",
}


class Origin:
    """An upstream whose every answer header the test chooses."""

    def __init__(self) -> None:
        self.content_type: str | None = "video/mp4"
        self.headers: dict[str, str] = {}
        self.status = 200
        self.app = web.Application()
        self.app.router.add_get("/v", self._serve)
        self.server = TestServer(self.app, host="127.0.0.1")

    async def _serve(self, request: web.Request) -> web.Response:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        body, status = VIDEO, self.status
        rng = request.headers.get("Range")
        if rng == "bytes=0-99" and status == 200:
            body, status = VIDEO[:100], 206
            headers.setdefault("Content-Range", f"bytes 0-99/{len(VIDEO)}")
        resp = web.Response(body=body, status=status, headers=headers)
        if self.content_type is None:
            resp.headers.pop("Content-Type", None)
        return resp


@pytest.fixture
async def origin(
    providers: dict[str, type[Provider[Any]]],
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> AsyncIterator[tuple[Relay, str, Origin]]:
    providers["scripted"] = ScriptedProvider
    up = Origin()
    await up.server.start_server()
    url = str(up.server.make_url("/v"))
    config = make_config(
        channels=[
            {
                "name": "s",
                "provider": "scripted",
                "models": ["sora-2"],
                "options": {"cdn_url": url, "thumbnail_url": url},
            }
        ],
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    yield relay, video["id"], up
    await up.server.close()


@pytest.mark.parametrize(
    ("claimed", "variant", "served", "ext"),
    [
        ("image/svg+xml", "thumbnail", "application/octet-stream", "webp"),
        ("video/x-evil;charset=utf-7", "video", "application/octet-stream", "mp4"),
        ("text/html;charset=utf-7", "video", None, None),  # an error page: a 502
        ("video/quicktime", "video", "application/octet-stream", "mp4"),
        ("application/x-shockwave-flash", "video", "application/octet-stream", "mp4"),
        ("image/svg+xml", "video", "application/octet-stream", "mp4"),
        ('video/mp4; codecs="avc1.640028"', "video", "video/mp4", "mp4"),
        ("VIDEO/MP4", "video", "video/mp4", "mp4"),
        ("image/png", "thumbnail", "image/png", "png"),
        ("image/jpeg", "thumbnail", "image/jpeg", "jpg"),
        ("image/jpg", "thumbnail", "image/jpeg", "jpg"),
        ("application/octet-stream", "video", "video/mp4", "mp4"),  # generic: the known type
        ("application/octet-stream", "thumbnail", "image/webp", "webp"),
        (None, "video", "video/mp4", "mp4"),
    ],
)
async def test_remote_content_type_comes_from_the_allow_list(
    origin: tuple[Relay, str, Origin],
    claimed: str | None,
    variant: str,
    served: str | None,
    ext: str | None,
):
    relay, video_id, up = origin
    up.content_type = claimed
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )
    if served is None:
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == "upstream_error"
        return
    assert resp.status == 200
    assert resp.headers["Content-Type"] == served
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{video_id}.{ext}"'
    assert resp.headers["Cache-Control"] == "private"
    assert await resp.read() == VIDEO


@pytest.mark.parametrize(
    ("method", "rng", "status"),
    [("GET", None, 200), ("GET", "bytes=0-99", 206), ("HEAD", None, 200)],
)
async def test_no_upstream_header_reaches_the_client(
    origin: tuple[Relay, str, Origin], method: str, rng: str | None, status: int
):
    relay, video_id, up = origin
    up.headers = dict(UPSTREAM_EXTRAS)
    headers = {**auth(), **({"Range": rng} if rng else {})}
    resp = await relay.client.request(method, f"/v1/videos/{video_id}/content", headers=headers)
    assert resp.status == status
    names = {name.lower() for name in resp.headers}
    assert names <= RELAY_HEADERS, names - RELAY_HEADERS
    for name, value in resp.headers.items():
        assert "upstream" not in value.lower(), (name, value)
    assert resp.headers["Cache-Control"] == "private"
    assert resp.headers["Content-Type"] == "video/mp4"
    if status == 206:
        assert resp.headers["Content-Range"] == f"bytes 0-99/{len(VIDEO)}"
        assert await resp.read() == VIDEO[:100]
    else:
        assert "Content-Range" not in resp.headers
        assert resp.headers["Content-Length"] == str(len(VIDEO))


async def test_an_upstream_range_that_does_not_parse_is_not_passed_on(
    origin: tuple[Relay, str, Origin],
):
    relay, video_id, up = origin
    up.headers = {"Content-Range": "bytes upstream-junk"}
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", headers={**auth(), "Range": "bytes=0-99"}
    )
    assert resp.status == 502  # a partial body without its range: no way to say which bytes
    assert (await resp.json())["error"]["code"] == "upstream_error"
    up.status = 200
    up.headers = {"Content-Range": "bytes 0-99/5"}  # a whole body claiming a range
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200 and "Content-Range" not in resp.headers
    assert await resp.read() == VIDEO


@pytest.mark.parametrize(
    ("method", "rng", "status"),
    [("GET", None, 200), ("GET", "bytes=0-9", 206), ("HEAD", None, 200)],
)
@pytest.mark.parametrize("variant", ["video", "thumbnail"])
async def test_local_content_is_private(
    relay: Relay, method: str, rng: str | None, status: int, variant: str
):
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    done = video["id"]
    headers = {**auth(), **({"Range": rng} if rng else {})}
    resp = await relay.client.request(
        method, f"/v1/videos/{done}/content", params={"variant": variant}, headers=headers
    )
    assert resp.status == status
    assert resp.headers["Cache-Control"] == "private"
