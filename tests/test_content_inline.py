"""Results an upstream answered inline (an InlineBytes source): served from memory with the
content proxy's headers, Range, If-Range and HEAD, stored by the copier like a download, and the
decoding every adapter shares (relay/providers/inline.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.config import Config
from relay.domain import InlineBytes
from relay.providers import inline
from relay.providers.base import Provider
from relay.providers.errors import VariantUnavailable
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.scripted import ScriptedProvider
from tests.images import webp
from tests.storetools import copies_of
from tests.test_content_headers import RELAY_HEADERS
from tests.test_storage import stored

THUMB = webp()


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.files["thumb"] = THUMB
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def inline_config(
    monkeypatch: pytest.MonkeyPatch,
    cdn: FakeUpstream,
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
) -> Callable[..., Config]:
    providers["scripted"] = ScriptedProvider
    monkeypatch.setattr(ScriptedProvider, "inline_reads", 0)
    monkeypatch.setattr(ScriptedProvider, "gone", False)

    def config(keep_videos: bool = False) -> Config:
        options = {"inline": True, "thumbnail_url": cdn.cdn_url("thumb")}
        return make_config(
            storage={"keep_videos": keep_videos},
            channels=[
                {"name": "s", "provider": "scripted", "models": ["sora-2"], "options": options}
            ],
        )

    return config


async def finished(relay: Relay) -> str:
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    return str(video["id"])


@pytest.fixture
async def served(
    inline_config: Callable[..., Config], start_relay: Callable[[Config], Any]
) -> tuple[Relay, str]:
    relay: Relay = await start_relay(inline_config())
    return relay, await finished(relay)


# --- served from memory -------------------------------------------------------------------------


async def test_inline_bytes_get_the_headers_every_source_gets(served: tuple[Relay, str]):
    relay, video_id = served
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{video_id}.mp4"'
    assert resp.headers["Cache-Control"] == "private"
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert {h.lower() for h in resp.headers} <= RELAY_HEADERS | {"etag"}
    again = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert again.headers["ETag"] == etag  # decoded anew, the same validator
    # no copy is kept here: each download read the upstream's answer again
    assert ScriptedProvider.inline_reads == 2


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=-100", len(VIDEO) - 100, len(VIDEO) - 1),
        ("bytes=100-", 100, len(VIDEO) - 1),
        ("bytes=0-0", 0, 0),
        (f"bytes=5-{len(VIDEO) + 1000}", 5, len(VIDEO) - 1),
    ],
)
async def test_ranges_of_inline_bytes(served: tuple[Relay, str], header: str, start: int, end: int):
    relay, video_id = served
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", headers={**auth(), "Range": header}
    )
    assert resp.status == 206
    assert await resp.read() == VIDEO[start : end + 1]
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(VIDEO)}"
    assert resp.headers["Content-Length"] == str(end + 1 - start)
    assert resp.headers["Content-Type"] == "video/mp4"


async def test_an_unsatisfiable_range_of_inline_bytes_is_a_416(served: tuple[Relay, str]):
    relay, video_id = served
    url = f"/v1/videos/{video_id}/content"
    for header in (f"bytes={len(VIDEO)}-", "bytes=-0"):
        resp = await relay.client.get(url, headers={**auth(), "Range": header})
        assert resp.status == 416
        assert resp.headers["Content-Range"] == f"bytes */{len(VIDEO)}"
        assert (await resp.json())["error"]["code"] == "range_not_satisfiable"


async def test_if_range_and_several_ranges_of_inline_bytes(served: tuple[Relay, str]):
    relay, video_id = served
    url = f"/v1/videos/{video_id}/content"
    etag = (await relay.client.head(url, headers=auth())).headers["ETag"]
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=0-9", "If-Range": etag})
    assert resp.status == 206 and await resp.read() == VIDEO[:10]
    for if_range in ('"another"', "Wed, 21 Oct 2015 07:28:00 GMT"):
        resp = await relay.client.get(
            url, headers={**auth(), "Range": "bytes=0-9", "If-Range": if_range}
        )
        assert resp.status == 200 and await resp.read() == VIDEO
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=0-1,5-6"})
    assert resp.status == 200 and await resp.read() == VIDEO


async def test_head_of_inline_bytes(served: tuple[Relay, str]):
    relay, video_id = served
    url = f"/v1/videos/{video_id}/content"
    resp = await relay.client.head(url, headers=auth())
    assert resp.status == 200 and await resp.read() == b""
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert resp.headers["Content-Type"] == "video/mp4"
    resp = await relay.client.head(url, headers={**auth(), "Range": "bytes=0-99"})
    assert resp.status == 206 and resp.headers["Content-Range"] == f"bytes 0-99/{len(VIDEO)}"


async def test_without_copies_inline_bytes_last_as_long_as_the_upstream(
    served: tuple[Relay, str], monkeypatch: pytest.MonkeyPatch
):
    relay, video_id = served
    monkeypatch.setattr(ScriptedProvider, "gone", True)
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


# --- stored by the copier -----------------------------------------------------------------------


async def test_an_inline_result_becomes_a_stored_copy_that_outlives_the_upstream(
    inline_config: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    relay: Relay = await start_relay(inline_config(keep_videos=True))
    video_id = await finished(relay)
    copies = {c.variant: c for c in await stored(relay, video_id)}
    assert (data_dir / f"videos/{video_id}/video.mp4").read_bytes() == VIDEO
    assert copies["video"].bytes == len(VIDEO) and copies["video"].content_type == "video/mp4"
    assert (await relay.get(video_id))["expires_at"] is None
    monkeypatch.setattr(ScriptedProvider, "gone", True)
    url = f"/v1/videos/{video_id}/content"
    resp = await relay.client.get(url, headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=-100"})
    assert resp.status == 206 and await resp.read() == VIDEO[-100:]
    size = len(VIDEO)
    assert resp.headers["Content-Range"] == f"bytes {size - 100}-{size - 1}/{size}"


async def test_an_inline_copy_the_upstream_forgot_is_dropped_not_retried(
    inline_config: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    monkeypatch: pytest.MonkeyPatch,
):
    relay: Relay = await start_relay(inline_config(keep_videos=True))
    await relay.copier.stop()  # the copy runs below, by hand
    video_id = await finished(relay)
    monkeypatch.setattr(ScriptedProvider, "gone", True)
    await relay.copier.round()
    videos = [c for c in await copies_of(relay.store, video_id) if c.variant == "video"]
    assert videos == []  # dropped at once: no URL to come back to, no retry can help


# --- decoding, shared by the adapters -----------------------------------------------------------


def test_decoding_takes_standard_and_url_safe_base64():
    data = bytes(range(256)) * 10
    standard = base64.b64encode(data).decode()
    assert inline.decode(standard, "video/mp4", provider="p") == InlineBytes(data, "video/mp4")
    url_safe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert inline.decode(url_safe, None, provider="p") == InlineBytes(data, "video/mp4")
    wrapped = "\n".join(standard[i : i + 76] for i in range(0, len(standard), 76))
    assert inline.decode(wrapped, "video/mp4", provider="p").data == data


@pytest.mark.parametrize("encoded", ["", "not base64 at all!", "===="])
def test_unreadable_inline_base64_is_a_clear_error(encoded: str):
    with pytest.raises(VariantUnavailable, match="not readable"):
        inline.decode(encoded, "video/mp4", provider="veo")


def test_inline_results_over_the_bound_are_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(inline, "INLINE_MAX_BYTES", 3000)
    fits = base64.b64encode(b"x" * 3000).decode()
    assert len(inline.decode(fits, "video/mp4", provider="veo").data) == 3000
    over = base64.b64encode(b"x" * 3001).decode()
    assert inline.encoded_size(over) == 3001
    with pytest.raises(VariantUnavailable) as refused:
        inline.decode(over, "video/mp4", provider="veo")
    assert refused.value.message.startswith("veo returned the video inline")
    assert "MiB the relay takes inline" in refused.value.message


def test_the_bound_and_the_reply_limit_agree():
    assert inline.INLINE_MAX_BYTES == 32 * 1024 * 1024
    encoded = inline.INLINE_MAX_BYTES * 4 // 3 + 4
    assert encoded < inline.INLINE_REPLY_BYTES < encoded + 2 * 1024 * 1024
