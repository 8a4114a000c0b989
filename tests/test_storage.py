"""Stored copies: copied once the task completes, served from disk, retried, kept within
keep_days and max_gb, removed with the task, and resumed after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.config import Config
from relay.providers.base import Provider
from relay.providers.demo import ASSETS
from relay.store import Copy
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.scripted import ScriptedProvider
from tests.images import webp
from tests.storetools import copies_of

THUMB = webp()


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.files["thumb"] = THUMB
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def kept(
    monkeypatch: pytest.MonkeyPatch,
    cdn: FakeUpstream,
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
) -> Callable[..., Config]:
    providers["scripted"] = ScriptedProvider
    monkeypatch.setattr("relay.workers.copier.FIRST_RETRY_S", 0.05)

    def config(**storage: Any) -> Config:
        options = {"cdn_url": cdn.cdn_url(), "thumbnail_url": cdn.cdn_url("thumb")}
        return make_config(
            storage={"keep_videos": True, **storage},
            channels=[
                {"name": "s", "provider": "scripted", "models": ["sora-2"], "options": options}
            ],
        )

    return config


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.02)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def stored(relay: Relay, video_id: str, variants: int = 2) -> list[Copy]:
    async def check() -> list[Copy] | None:
        copies = await copies_of(relay.store, video_id)
        done = [c for c in copies if c.state == "stored"]
        return done if len(done) == variants else None

    return await until(check)  # type: ignore[no-any-return]


async def finished(relay: Relay) -> str:
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    return str(video["id"])


async def test_copies_are_served_from_disk(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
    data_dir: Path,
):
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)
    copies = {c.variant: c for c in await stored(relay, video_id)}
    assert (data_dir / f"videos/{video_id}/video.mp4").read_bytes() == VIDEO
    assert (data_dir / f"videos/{video_id}/thumbnail.webp").read_bytes() == THUMB
    assert copies["video"].bytes == len(VIDEO) and copies["video"].content_type == "video/mp4"
    assert (await relay.get(video_id))["expires_at"] is None
    before = cdn.cdn_stats.requests
    url = f"/v1/videos/{video_id}/content"
    resp = await relay.client.get(url, headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{video_id}.mp4"'
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=-100"})
    assert resp.status == 206 and await resp.read() == VIDEO[-100:]
    etag = resp.headers["ETag"]
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=0-9", "If-Range": etag})
    assert resp.status == 206 and await resp.read() == VIDEO[:10]
    resp = await relay.client.get(
        url, headers={**auth(), "Range": "bytes=0-9", "If-Range": '"other"'}
    )
    assert resp.status == 200 and await resp.read() == VIDEO
    resp = await relay.client.head(url, headers=auth())
    assert resp.headers["Content-Length"] == str(len(VIDEO)) and await resp.read() == b""
    thumb = await relay.client.get(url, params={"variant": "thumbnail"}, headers=auth())
    assert await thumb.read() == THUMB and thumb.headers["Content-Type"] == "image/webp"
    assert cdn.cdn_stats.requests == before  # nothing went upstream


async def test_a_failed_copy_is_retried_and_never_fails_the_task(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
):
    cdn.cdn.status = 500
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)

    async def attempted() -> bool:
        copies = await copies_of(relay.store, video_id)
        return any(c.attempts >= 1 for c in copies)

    await until(attempted)
    assert (await relay.get(video_id))["status"] == "completed"
    cdn.cdn.status = None
    await stored(relay, video_id)
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert await resp.read() == VIDEO


async def test_content_comes_from_upstream_until_the_copy_exists(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
):
    cdn.cdn.delay_s = 0.05  # a slow copy: a few seconds for the demo video
    cdn.cdn.chunk = 8 * 1024
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)

    async def copying() -> bool:
        return cdn.cdn_stats.active > 0

    await until(copying)
    assert (await relay.get(video_id))["expires_at"] is None  # scripted sets no expiry
    assert await relay.store.stored_copy(video_id, "video") is None
    before = cdn.cdn_stats.requests
    cdn.cdn.delay_s = 0.0
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert cdn.cdn_stats.requests == before + 1  # served from upstream meanwhile


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_truncated_upstream_never_becomes_a_stored_copy(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
    data_dir: Path,
    chunked: bool,
):
    cdn.cdn.truncate_at = 40_000
    cdn.cdn.chunked = chunked
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)

    async def attempted() -> bool:
        copies = await copies_of(relay.store, video_id)
        return any(c.variant == "video" and c.attempts >= 1 for c in copies)

    await until(attempted)
    folder = data_dir / "videos" / video_id
    assert not (folder / "video.mp4").exists()
    assert not list(folder.glob("*.part")) if folder.exists() else True
    cdn.cdn.truncate_at = None
    copies = await stored(relay, video_id)
    assert {c.variant for c in copies} == {"video", "thumbnail"}
    assert (folder / "video.mp4").read_bytes() == VIDEO


async def test_an_expired_url_is_refreshed_for_the_copy(
    cdn: FakeUpstream,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    providers["scripted"] = ScriptedProvider
    fresh = FakeUpstream()
    await fresh.start()
    try:
        cdn.cdn.status = 403
        relay: Relay = await start_relay(
            make_config(
                storage={"keep_videos": True},
                channels=[
                    {
                        "name": "s",
                        "provider": "scripted",
                        "models": ["sora-2"],
                        "options": {"cdn_url": cdn.cdn_url(), "refresh_url": fresh.cdn_url()},
                    }
                ],
            )
        )
        video_id = await finished(relay)
        await stored(relay, video_id, variants=1)
        assert fresh.cdn_stats.requests == 1
    finally:
        await fresh.close()


async def test_a_copy_that_can_never_succeed_is_dropped(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
    data_dir: Path,
):
    cdn.cdn.status = 410  # gone, and the scripted provider has no fresh URL
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)

    async def dropped() -> bool:
        return not await copies_of(relay.store, video_id)

    await until(dropped)
    assert not (data_dir / "videos" / video_id / "video.mp4").exists()
    assert (await relay.get(video_id))["status"] == "completed"


async def test_delete_removes_the_files(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
):
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)
    await stored(relay, video_id)
    assert (data_dir / "videos" / video_id).is_dir()
    resp = await relay.client.delete(f"/v1/videos/{video_id}", headers=auth())
    assert resp.status == 200
    assert not (data_dir / "videos" / video_id).exists()
    assert await copies_of(relay.store, video_id) == []


async def test_retention_by_age(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
):
    relay: Relay = await start_relay(kept(keep_days=7))
    old, new = await finished(relay), await finished(relay)
    await stored(relay, old)
    await stored(relay, new)
    store = relay.store
    long_ago = relay.clock() - 8 * 86400
    for copy in await copies_of(store, old):
        await store._db.execute(
            "UPDATE copies SET stored_at = ? WHERE task_id = ? AND variant = ?",
            (long_ago, copy.task_id, copy.variant),
        )
    assert await relay.copier.retention() == 2
    assert not (data_dir / "videos" / old).exists()
    assert (data_dir / "videos" / new / "video.mp4").exists()
    gone = await relay.get(old)
    assert gone["expires_at"] is not None  # the relay no longer holds it
    assert (await relay.get(new))["expires_at"] is None


async def test_retention_by_size_removes_the_oldest_first(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
):
    cap = (len(VIDEO) + len(THUMB)) * 1.5  # room for one video and its thumbnail
    relay: Relay = await start_relay(kept(max_gb=cap / 1024**3, keep_days=0))
    first = await finished(relay)
    await stored(relay, first)
    second = await finished(relay)
    await stored(relay, second)
    assert await relay.copier.retention() >= 1
    assert not (data_dir / "videos" / first / "video.mp4").exists()
    assert (data_dir / "videos" / second / "video.mp4").exists()
    assert await relay.store.stored_bytes() <= cap


async def test_a_restart_cleans_half_written_files_and_copies_again(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
    data_dir: Path,
):
    cdn.cdn.delay_s = 0.05
    cdn.cdn.chunk = 4 * 1024  # slow: the copy is still running when the relay stops
    first: Relay = await start_relay(kept())
    video_id = await finished(first)

    async def copying() -> bool:
        return cdn.cdn_stats.active > 0

    await until(copying)
    await first.client.close()
    folder = data_dir / "videos" / video_id
    (folder / "video.mp4.part").parent.mkdir(parents=True, exist_ok=True)
    (folder / "video.mp4.part").write_bytes(b"half")  # what a crash would leave behind
    cdn.cdn.delay_s = 0.0
    cdn.cdn.chunk = 64 * 1024
    second: Relay = await start_relay(kept())
    await stored(second, video_id)
    assert (folder / "video.mp4").read_bytes() == VIDEO
    assert not list(folder.glob("*.part"))


async def test_copies_run_a_few_at_a_time(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
):
    cdn.cdn.delay_s = 0.02
    cdn.cdn.chunk = 16 * 1024
    relay: Relay = await start_relay(kept())
    ids = [await finished(relay) for _ in range(4)]
    for video_id in ids:
        await stored(relay, video_id)
    assert cdn.cdn_stats.most_active <= 2


async def test_the_demo_needs_no_copy(relay: Relay, data_dir: Path):
    video_id = await finished(relay)

    async def settled() -> bool:
        return not await copies_of(relay.store, video_id)

    await until(settled)
    assert not (data_dir / "videos" / video_id).exists()
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    assert await resp.read() == (ASSETS / "video.mp4").read_bytes()


async def test_keep_videos_off_makes_no_copies(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
):
    relay: Relay = await start_relay(kept(keep_videos=False))
    video_id = await finished(relay)
    await asyncio.sleep(0.2)
    assert await copies_of(relay.store, video_id) == []
    assert not (data_dir / "videos").exists()


async def test_slow_client_on_a_stored_copy(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    data_dir: Path,
):
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)
    await stored(relay, video_id)
    async with (
        aiohttp.ClientSession() as session,
        session.get(relay.url(f"/v1/videos/{video_id}/content"), headers=auth()) as resp,
    ):
        first = await resp.content.read(1000)
        await asyncio.sleep(0.2)
        rest = await resp.read()
    assert first + rest == VIDEO


@pytest.mark.parametrize(
    ("method", "rng", "status"),
    [("GET", None, 200), ("GET", "bytes=0-9", 206), ("HEAD", None, 200)],
)
async def test_a_stored_copy_is_private(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    method: str,
    rng: str | None,
    status: int,
):
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)
    await stored(relay, video_id)
    for variant in ("video", "thumbnail"):
        resp = await relay.client.request(
            method,
            f"/v1/videos/{video_id}/content",
            params={"variant": variant},
            headers={**auth(), **({"Range": rng} if rng else {})},
        )
        assert resp.status == status
        assert resp.headers["Cache-Control"] == "private"


async def test_a_copy_keeps_only_an_allowed_type(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
    data_dir: Path,
):
    cdn.cdn.content_type = "image/svg+xml"  # what the upstream claims for both files
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)
    copies = {c.variant: c for c in await stored(relay, video_id)}
    assert {c.content_type for c in copies.values()} == {"application/octet-stream"}
    assert (data_dir / f"videos/{video_id}/video.mp4").read_bytes() == VIDEO
    before = cdn.cdn_stats.requests
    for variant, ext, data in (("video", "mp4", VIDEO), ("thumbnail", "webp", THUMB)):
        resp = await relay.client.get(
            f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
        )
        assert await resp.read() == data
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{video_id}.{ext}"'
    assert cdn.cdn_stats.requests == before  # from the copies


async def test_an_error_page_sent_with_a_200_is_never_a_copy(
    kept: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    cdn: FakeUpstream,
):
    cdn.cdn.content_type = "application/json"
    relay: Relay = await start_relay(kept())
    video_id = await finished(relay)

    async def attempted() -> bool:
        copies = await copies_of(relay.store, video_id)
        return len(copies) == 2 and all(c.attempts >= 1 for c in copies)

    await until(attempted)
    assert all(c.state == "pending" for c in await copies_of(relay.store, video_id))
    cdn.cdn.content_type = None
    copies = {c.variant: c for c in await stored(relay, video_id)}
    assert copies["video"].content_type == "video/mp4"
