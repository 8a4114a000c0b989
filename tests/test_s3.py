"""Stored copies in an S3-compatible bucket: SigV4 on AWS's own examples, then a real SeaweedFS:
single and multipart uploads streamed in, presigned reads with Range, removal, stale uploads,
the bucket check, and a relay keeping and serving its videos there."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from relay.config import Config, S3Config
from relay.storage import S3Library, StorageError
from relay.storage import s3 as s3_module
from relay.storage.sigv4 import EMPTY_SHA256, presign, sign_headers
from relay.store import Copy
from tests.conftest import Relay, auth
from tests.fakes.base import VIDEO, FakeUpstream
from tests.fakes.scripted import ScriptedProvider
from tests.s3server import S3Server, s3_server  # noqa: F401 - the session fixture
from tests.storetools import copies_of

AWS_ACCESS = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_WHEN = datetime(2013, 5, 24, tzinfo=UTC)


def test_sigv4_header_signature_matches_the_aws_example():
    # "Example: GET Object" of AWS's SigV4 documentation for S3
    headers = sign_headers(
        method="GET",
        url="https://examplebucket.s3.amazonaws.com/test.txt",
        headers={"Range": "bytes=0-9"},
        payload_hash=EMPTY_SHA256,
        access_key=AWS_ACCESS,
        secret_key=AWS_SECRET,
        region="us-east-1",
        when=AWS_WHEN,
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert AWS_SECRET not in repr(headers)


def test_presigned_url_matches_the_aws_example():
    url = presign(
        method="GET",
        url="https://examplebucket.s3.amazonaws.com/test.txt",
        expires_s=86400,
        access_key=AWS_ACCESS,
        secret_key=AWS_SECRET,
        region="us-east-1",
        when=AWS_WHEN,
    )
    assert url.endswith(
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    assert "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" in url


# --- against a real server --------------------------------------------------------------------


def config_of(server: S3Server, **changes: Any) -> S3Config:
    values: dict[str, Any] = {
        "endpoint": server.endpoint,
        "bucket": server.bucket,
        "region": "us-east-1",
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "path_style": True,
    }
    values.update(changes)
    return S3Config(**values)


@pytest.fixture
async def library(s3_server: S3Server) -> AsyncIterator[S3Library]:  # noqa: F811
    async with aiohttp.ClientSession() as session:
        yield S3Library(config_of(s3_server), session)


def pattern(size: int) -> bytes:
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def chunks(data: bytes, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def fetch(source: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(source.url, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.read()


def copy_of(path: str, size: int, variant: str = "video") -> Copy:
    return Copy("video_t", variant, "stored", path, "video/mp4", size, 0, 0.0, 1.0)


async def test_a_small_copy_goes_up_in_one_put_and_reads_back_with_range(library: S3Library):
    data = pattern(300_000)
    path, size = await library.write("video_small", "video", "video/mp4", chunks(data), len(data))
    assert (path, size) == ("videos/video_small/video.mp4", len(data))
    source = library.source(copy_of(path, size))
    assert source is not None and source.trusted and source.content_type == "video/mp4"
    assert "relay-test-secret" not in source.url  # a signature, never the secret
    assert await fetch(source) == (200, data)
    status, part = await fetch(source, {"Range": "bytes=1000-1999"})
    assert (status, part) == (206, data[1000:2000])
    await library.remove("video_small")
    assert (await fetch(source))[0] == 404


async def test_files_found_by_name_go_and_the_others_stay(library: S3Library):
    data = pattern(1000)
    kept, _ = await library.write("video_named", "video", "video/mp4", chunks(data), len(data))
    hosted, _ = await library.write("video_named", "input-ab", "video/mp4", chunks(data), 1000)
    await library.forget_named("video_named", "input-")
    assert (await fetch(library.source(copy_of(hosted, 1000))))[0] == 404
    assert (await fetch(library.source(copy_of(kept, 1000)))) == (200, data)
    await library.remove("video_named")


async def test_a_large_copy_is_a_streamed_multipart_upload(library: S3Library):
    data = pattern(2 * s3_module.PART_BYTES + 12345)
    path, size = await library.write("video_big", "video", "video/mp4", chunks(data), len(data))
    assert size == len(data)
    source = library.source(copy_of(path, size))
    assert source is not None
    status, body = await fetch(source)
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    await library.forget(path)
    assert (await fetch(source))[0] == 404


async def test_a_short_body_is_no_copy_and_its_upload_is_aborted(library: S3Library):
    data = pattern(s3_module.PART_BYTES + 10)
    with pytest.raises(StorageError, match="sent"):
        await library.write("video_short", "video", "video/mp4", chunks(data), len(data) + 5)
    source = library.source(copy_of("videos/video_short/video.mp4", len(data)))
    assert source is not None and (await fetch(source))[0] == 404
    assert await library.clean_partials() == 0  # nothing left behind to clean


async def test_stale_multipart_uploads_are_aborted(
    library: S3Library, monkeypatch: pytest.MonkeyPatch
):
    upload = await library._start_upload("videos/video_cut/video.mp4", "video/mp4")
    assert upload
    assert await library.clean_partials() == 0  # young: maybe another relay's copy
    monkeypatch.setattr(s3_module, "STALE_UPLOAD_S", -1.0)
    assert await library.clean_partials() >= 1


async def test_the_bucket_check_names_what_is_wrong(s3_server: S3Server):  # noqa: F811
    async with aiohttp.ClientSession() as session:
        await S3Library(config_of(s3_server), session).check()
        with pytest.raises(StorageError, match="does not exist"):
            await S3Library(config_of(s3_server, bucket="no-such-bucket"), session).check()
        with pytest.raises(StorageError, match="refused the credentials"):
            await S3Library(config_of(s3_server, secret_key="wrong-secret"), session).check()


# --- a relay keeping its copies in the bucket -------------------------------------------------


async def test_a_relay_keeps_and_serves_its_videos_from_the_bucket(
    s3_server: S3Server,  # noqa: F811
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    data_dir: Any,
    providers: dict[str, Any],
):
    providers["scripted"] = ScriptedProvider
    cdn = FakeUpstream()
    await cdn.start()
    try:
        config = make_config(
            storage=s3_server.storage(keep_videos=True),
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
        for _ in range(200):
            if any(c.state == "stored" for c in await copies_of(relay.store, video["id"])):
                break
            await relay.copier.round()
        [stored] = [c for c in await copies_of(relay.store, video["id"]) if c.state == "stored"]
        assert stored.path == f"videos/{video['id']}/video.mp4"
        assert not (data_dir / "videos").exists()  # nothing on the relay's own disk
        requests = cdn.cdn_stats.requests
        url = f"/v1/videos/{video['id']}/content"
        resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=100-199"})
        assert resp.status == 206 and await resp.read() == cdn.files["video.mp4"][100:200]
        resp = await relay.client.get(url, headers=auth())
        assert await resp.read() == cdn.files["video.mp4"]
        assert cdn.cdn_stats.requests == requests  # served from the bucket, not the upstream
        assert (await relay.get(video["id"]))["expires_at"] is None
        source = relay.videos.ctx.library.source(stored)  # type: ignore[union-attr]
        resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
        assert resp.status == 200
        assert source is not None and (await fetch(source))[0] == 404  # deleted from the bucket
    finally:
        await cdn.close()


async def test_an_inline_result_is_kept_in_the_bucket_and_outlives_the_upstream(
    s3_server: S3Server,  # noqa: F811
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
):
    providers["scripted"] = ScriptedProvider
    monkeypatch.setattr(ScriptedProvider, "variants", frozenset({"video"}))
    monkeypatch.setattr(ScriptedProvider, "gone", False)
    config = make_config(
        storage=s3_server.storage(keep_videos=True),
        channels=[
            {"name": "s", "provider": "scripted", "models": ["sora-2"], "options": {"inline": True}}
        ],
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    await relay.wait(video["id"])
    for _ in range(200):
        if any(c.state == "stored" for c in await copies_of(relay.store, video["id"])):
            break
        await relay.copier.round()
    [stored] = [c for c in await copies_of(relay.store, video["id"]) if c.state == "stored"]
    assert stored.path == f"videos/{video['id']}/video.mp4" and stored.bytes == len(VIDEO)
    monkeypatch.setattr(ScriptedProvider, "gone", True)  # only the bucket has it now
    url = f"/v1/videos/{video['id']}/content"
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=100-199"})
    assert resp.status == 206 and await resp.read() == VIDEO[100:200]
    resp = await relay.client.get(url, headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
