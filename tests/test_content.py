"""GET/HEAD /v1/videos/{id}/content: local files and upstream streams, Range, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.content import ByteRange, Unsatisfiable, if_range_allows, parse_range
from relay.providers.base import Provider
from relay.providers.demo import ASSETS
from tests.conftest import ALICE, Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.scripted import ScriptedProvider

# --- the range rules, as pure functions -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 9)),
        ("bytes=90-", 100, ByteRange(90, 99)),
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=-500", 100, ByteRange(0, 99)),
        ("bytes=50-1000", 100, ByteRange(50, 99)),
        ("bytes=0-0", 100, ByteRange(0, 0)),
        ("bytes=5-1", 100, None),  # invalid: ignored
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole body
        ("items=0-1", 100, None),
        ("bytes=0-9", None, None),  # unknown size: the whole body
    ],
)
def test_parse_range(header: str | None, size: int | None, expected: ByteRange | None):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_if_range_rules():
    assert if_range_allows(None, '"a"', 10.0)
    assert if_range_allows('"a"', '"a"', 10.0)
    assert not if_range_allows('"b"', '"a"', 10.0)
    assert not if_range_allows('W/"a"', '"a"', 10.0)  # weak validators never match
    assert if_range_allows("Thu, 01 Jan 1970 00:00:20 GMT", None, 10.0)
    assert not if_range_allows("Thu, 01 Jan 1970 00:00:05 GMT", None, 10.0)
    assert not if_range_allows("not a date", None, 10.0)


# --- local files (the demo's assets) ----------------------------------------------------------


@pytest.fixture
async def done(relay: Relay) -> str:
    video = await relay.create()
    finished = await relay.wait(video["id"])
    assert finished["status"] == "completed"
    return str(video["id"])


async def test_full_download_headers(relay: Relay, done: str):
    resp = await relay.client.get(f"/v1/videos/{done}/content", headers=auth())
    assert resp.status == 200
    assert await resp.read() == VIDEO
    assert resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{done}.mp4"'
    assert resp.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("variant", "ctype", "ext", "asset"),
    [
        ("thumbnail", "image/webp", "webp", "thumbnail.webp"),
        ("spritesheet", "image/jpeg", "jpg", "spritesheet.jpg"),
        ("video", "video/mp4", "mp4", "video.mp4"),
    ],
)
async def test_variants(relay: Relay, done: str, variant: str, ctype: str, ext: str, asset: str):
    resp = await relay.client.get(
        f"/v1/videos/{done}/content", params={"variant": variant}, headers=auth()
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == ctype
    assert resp.headers["Content-Disposition"].endswith(f'.{ext}"')
    assert await resp.read() == (ASSETS / asset).read_bytes()


async def test_head(relay: Relay, done: str):
    resp = await relay.client.head(f"/v1/videos/{done}/content", headers=auth())
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert await resp.read() == b""


@pytest.mark.parametrize(
    ("rng", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(VIDEO) - 1),
        ("bytes=-50", len(VIDEO) - 50, len(VIDEO) - 1),
    ],
)
async def test_range(relay: Relay, done: str, rng: str, start: int, end: int):
    resp = await relay.client.get(f"/v1/videos/{done}/content", headers={**auth(), "Range": rng})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(VIDEO)}"
    assert await resp.read() == VIDEO[start : end + 1]


async def test_unsatisfiable_range_is_416(relay: Relay, done: str):
    resp = await relay.client.get(
        f"/v1/videos/{done}/content", headers={**auth(), "Range": f"bytes={len(VIDEO)}-"}
    )
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(VIDEO)}"
    body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"


async def test_if_range(relay: Relay, done: str):
    url = f"/v1/videos/{done}/content"
    first = await relay.client.get(url, headers=auth())
    etag = first.headers["ETag"]
    same = await relay.client.get(url, headers={**auth(), "Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206 and await same.read() == VIDEO[:10]
    other = await relay.client.get(
        url, headers={**auth(), "Range": "bytes=0-9", "If-Range": '"changed"'}
    )
    assert other.status == 200 and await other.read() == VIDEO


async def test_unknown_variant_is_400(relay: Relay, done: str):
    resp = await relay.client.get(
        f"/v1/videos/{done}/content", params={"variant": "poster"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "variant"


async def test_not_ready_and_failed(relay: Relay):
    running = await relay.create()
    resp = await relay.client.get(f"/v1/videos/{running['id']}/content", headers=auth())
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "video_not_ready"
    failed = await relay.create(prompt="blocked #fail")
    await relay.wait(failed["id"])
    resp = await relay.client.get(f"/v1/videos/{failed['id']}/content", headers=auth())
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "video_failed"


# --- upstream streams -------------------------------------------------------------------------


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def scripted(providers: dict[str, type[Provider[Any]]]) -> None:
    providers["scripted"] = ScriptedProvider


@pytest.fixture
async def remote(
    scripted: None,
    cdn: FakeUpstream,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> tuple[Relay, str, FakeUpstream]:
    config = make_config(
        storage={"keep_videos": False},  # these tests are about the upstream path
        channels=[
            {
                "name": "scripted",
                "provider": "scripted",
                "models": ["sora-2"],
                "options": {"cdn_url": cdn.cdn_url(), "thumbnail_url": cdn.cdn_url("thumb")},
            }
        ],
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    return relay, video["id"], cdn


async def test_remote_full_download(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, cdn = remote
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    assert await resp.read() == VIDEO
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{video_id}.mp4"'
    assert cdn.cdn_stats.auth_headers == ["Bearer up-key"]  # same host: the adapter's header


async def test_remote_range_reaches_upstream(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, cdn = remote
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", headers={**auth(), "Range": "bytes=10-19"}
    )
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 10-19/{len(VIDEO)}"
    assert await resp.read() == VIDEO[10:20]
    assert cdn.cdn_stats.range_headers == ["bytes=10-19"]


async def test_remote_range_served_when_upstream_ignores_it(
    remote: tuple[Relay, str, FakeUpstream],
):
    relay, video_id, cdn = remote
    cdn.cdn.ignore_range = True
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", headers={**auth(), "Range": "bytes=60000-60099"}
    )
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 60000-60099/{len(VIDEO)}"
    assert await resp.read() == VIDEO[60000:60100]


async def test_remote_head(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, _ = remote
    resp = await relay.client.head(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert await resp.read() == b""


async def test_remote_thumbnail_type(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, cdn = remote
    cdn.files["thumb"] = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    cdn.cdn.content_type = "application/octet-stream"
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/webp"  # generic upstream type replaced
    assert cdn.cdn_stats.auth_headers == [None]


async def test_variant_not_produced(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, _ = remote
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": "spritesheet"}, headers=auth()
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "variant_not_available"


@pytest.mark.parametrize("chunked", [False, True])
async def test_truncated_upstream_never_looks_complete(
    remote: tuple[Relay, str, FakeUpstream], chunked: bool
):
    relay, video_id, cdn = remote
    cdn.cdn.truncate_at = 50_000
    cdn.cdn.chunked = chunked
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_client_disconnect_stops_the_upstream(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, cdn = remote
    cdn.files["video.mp4"] = b"\x00" * (32 * 1024 * 1024)
    cdn.cdn.delay_s = 0.02
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    await resp.content.read(64 * 1024)
    resp.close()  # the client goes away mid-file
    for _ in range(100):
        if cdn.cdn_stats.disconnects:
            break
        await asyncio.sleep(0.02)
    assert cdn.cdn_stats.disconnects == 1
    assert cdn.cdn_stats.finished == 0
    assert cdn.cdn_stats.bytes_sent < 8 * 1024 * 1024


async def test_slow_client_holds_the_upstream_back(remote: tuple[Relay, str, FakeUpstream]):
    relay, video_id, cdn = remote
    size = 64 * 1024 * 1024
    cdn.files["video.mp4"] = b"\x01" * size
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    await resp.content.read(1024)
    await asyncio.sleep(0.5)  # the client reads nothing for a while
    # only socket buffers and one chunk sit between the two ends, not the file
    assert cdn.cdn_stats.bytes_sent < 24 * 1024 * 1024
    rest = await resp.read()
    assert len(rest) + 1024 == size


async def test_expired_upstream_url_without_refresh_is_404(
    remote: tuple[Relay, str, FakeUpstream],
):
    relay, video_id, cdn = remote
    cdn.cdn.status = 403
    ScriptedProvider.refreshes = 0
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 404
    body = await resp.json()
    assert "127.0.0.1" not in body["error"]["message"]
    assert ScriptedProvider.refreshes == 1  # asked once, had nothing


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_expired_upstream_url_is_refreshed_once(
    scripted: None,
    cdn: FakeUpstream,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    status: int,
):
    fresh = FakeUpstream()
    await fresh.start()
    try:
        cdn.cdn.status = status  # the stored URL has expired
        config = make_config(
            storage={"keep_videos": False},
            channels=[
                {
                    "name": "s",
                    "provider": "scripted",
                    "models": ["sora-2"],
                    "options": {"cdn_url": cdn.cdn_url(), "refresh_url": fresh.cdn_url()},
                }
            ],
        )
        relay: Relay = await start_relay(config)
        video = await relay.create()
        await relay.wait(video["id"])
        ScriptedProvider.refreshes = 0
        resp = await relay.client.get(
            f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=5-9"}
        )
        assert resp.status == 206
        assert await resp.read() == VIDEO[5:10]
        assert ScriptedProvider.refreshes == 1
        assert cdn.cdn_stats.requests == 1 and fresh.cdn_stats.requests == 1
        fresh.cdn.status = 403  # the fresh URL dies too: one refresh only, then a 404
        resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
        assert resp.status == 404
        assert ScriptedProvider.refreshes == 2 and fresh.cdn_stats.requests == 2
    finally:
        await fresh.close()


async def test_json_from_upstream_is_not_passed_off_as_video(
    remote: tuple[Relay, str, FakeUpstream],
):
    relay, video_id, cdn = remote
    cdn.cdn.content_type = "application/json"
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_error"


async def test_redirect_to_another_host_drops_credentials(
    scripted: None,
    cdn: FakeUpstream,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
):
    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(cdn.cdn_url())

    seen: list[str | None] = []

    async def first(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        raise web.HTTPFound(cdn.cdn_url())

    app = web.Application()
    app.router.add_get("/v", first)
    origin = TestServer(app, host="127.0.0.1")
    await origin.start_server()
    try:
        config = make_config(
            storage={"keep_videos": False},
            channels=[
                {
                    "name": "s",
                    "provider": "scripted",
                    "models": ["sora-2"],
                    "options": {"cdn_url": str(origin.make_url("/v"))},
                }
            ],
        )
        relay: Relay = await start_relay(config)
        video = await relay.create()
        await relay.wait(video["id"])
        resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth(ALICE))
        assert await resp.read() == VIDEO
        assert seen == ["Bearer up-key"]  # the first host got the key
        assert cdn.cdn_stats.auth_headers == [None]  # the redirect target did not
    finally:
        await origin.close()


async def test_private_result_address_refused_by_default(
    scripted: None,
    cdn: FakeUpstream,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
):
    config = make_config(
        server={"allow_private_networks": False},
        storage={"keep_videos": False},
        channels=[
            {
                "name": "s",
                "provider": "scripted",
                "models": ["sora-2"],
                "options": {"cdn_url": cdn.cdn_url()},
            }
        ],
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 502
    assert cdn.cdn_stats.requests == 0


async def test_a_stalled_upstream_is_cut_after_the_idle_timeout(
    remote: tuple[Relay, str, FakeUpstream], monkeypatch: pytest.MonkeyPatch
):
    relay, video_id, cdn = remote
    monkeypatch.setattr("relay.content.IDLE_TIMEOUT_S", 0.3)
    cdn.cdn.chunk = 32 * 1024
    cdn.cdn.delay_s = 1.0  # one chunk, then silence longer than the idle timeout
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_a_slow_but_steady_upstream_has_no_total_cap(
    remote: tuple[Relay, str, FakeUpstream], monkeypatch: pytest.MonkeyPatch
):
    relay, video_id, cdn = remote
    monkeypatch.setattr("relay.content.IDLE_TIMEOUT_S", 0.3)
    cdn.cdn.chunk = 16 * 1024
    cdn.cdn.delay_s = 0.1  # ~0.8 s in all: longer than the idle timeout, never idle that long
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert await resp.read() == VIDEO


async def test_an_encoded_upstream_body_is_decoded_without_a_wrong_length(
    remote: tuple[Relay, str, FakeUpstream],
):
    relay, video_id, cdn = remote
    cdn.cdn.gzip = True
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200
    assert "Content-Encoding" not in resp.headers
    assert resp.headers.get("Content-Length") in (None, str(len(VIDEO)))
    assert await resp.read() == VIDEO
