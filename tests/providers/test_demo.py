"""The built-in demo provider (spec/providers/demo.md): real media, timing, #fail, remix."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relay.config import Config
from relay.domain import Size
from relay.providers.demo import ASSETS, CLIPS, DemoProvider, clip_for
from tests.conftest import Relay, auth


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """ISO BMFF boxes: (type, payload start, payload end)."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        assert size >= header, "corrupt box"
        yield kind, pos + header, pos + size
        pos += size


def find(data: bytes, path: list[bytes]) -> tuple[int, int]:
    start, end = 0, len(data)
    for name in path:
        start, end = next((s, e) for k, s, e in boxes(data, start, end) if k == name)
    return start, end


def test_video_is_a_real_h264_mp4_of_a_few_seconds():
    data = (ASSETS / "video.mp4").read_bytes()
    kinds = [k for k, _, _ in boxes(data)]
    assert kinds[0] == b"ftyp" and b"moov" in kinds and b"mdat" in kinds
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # faststart: playable while streaming
    s, _ = find(data, [b"moov", b"mvhd"])
    version = data[s]
    if version == 0:
        timescale, duration = struct.unpack(">II", data[s + 12 : s + 20])
    else:
        timescale, duration = struct.unpack(">IQ", data[s + 20 : s + 32])
    assert 3 <= duration / timescale <= 6
    s, e = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    assert b"avc1" in data[s:e]
    assert len(data) < 512 * 1024


def test_thumbnail_and_spritesheet_are_real_images():
    webp = (ASSETS / "thumbnail.webp").read_bytes()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    assert struct.unpack("<I", webp[4:8])[0] + 8 == len(webp)
    jpg = (ASSETS / "spritesheet.jpg").read_bytes()
    assert jpg[:3] == b"\xff\xd8\xff" and jpg[-2:] == b"\xff\xd9"


def mp4_facts(data: bytes) -> tuple[str, float]:
    """(WxH of the H.264 track, duration in seconds), read from the file's own boxes."""
    s, _ = find(data, [b"moov", b"mvhd"])
    if data[s] == 0:
        timescale, duration = struct.unpack(">II", data[s + 12 : s + 20])
    else:
        timescale, duration = struct.unpack(">IQ", data[s + 20 : s + 32])
    s, _ = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    entry = s + 8  # version/flags, entry count
    width, height = struct.unpack(">HH", data[entry + 32 : entry + 36])
    return f"{width}x{height}", duration / timescale


@pytest.mark.parametrize("shape", sorted(CLIPS))
def test_each_clip_is_what_it_says(shape: str):
    clip = CLIPS[shape]
    size, seconds = mp4_facts((ASSETS / clip.files["video"]).read_bytes())
    assert size == clip.size
    assert round(seconds) == int(clip.seconds)


@pytest.mark.parametrize(
    ("size", "shape"),
    [
        ("1280x720", "landscape"),
        ("16:9", "landscape"),
        ("1920x1080", "landscape"),
        ("21:9", "landscape"),
        ("9:16", "portrait"),
        ("720x1280", "portrait"),
        ("1:1", "portrait"),
    ],
)
def test_the_request_shape_picks_the_clip(size: str, shape: str):
    parsed = Size.parse(size)
    assert parsed is not None
    assert clip_for(parsed) == shape


@pytest.mark.parametrize(("size", "seconds"), [("1920x1080", "8"), ("9:16", "12"), (None, None)])
async def test_the_video_object_says_what_is_served(
    relay: Relay, size: str | None, seconds: str | None
):
    fields = {k: v for k, v in (("size", size), ("seconds", seconds)) if v is not None}
    video = await relay.create(**fields)
    done = await relay.wait(video["id"])
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    served_size, served_seconds = mp4_facts(await resp.read())
    assert done["size"] == served_size == video["size"]
    assert done["seconds"] == str(round(served_seconds)) == video["seconds"]


def test_declares_everything():
    assert DemoProvider.variants == {"video", "thumbnail", "spritesheet"}
    assert "remix" in DemoProvider.features and "image_input" in DemoProvider.features
    assert DemoProvider.credentials == () and not DemoProvider.needs_network


async def test_progress_rises_then_completes(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    import asyncio

    config = make_config(
        channels=[
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2"],
                "options": {"finish_after_s": 1.2},
            }
        ]
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    assert video["status"] == "queued" and video["progress"] == 0
    seen = []
    while True:
        body = await relay.get(video["id"])
        seen.append((body["status"], body["progress"]))
        if body["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    progress = [p for s, p in seen if s == "in_progress"]
    assert progress and progress == sorted(progress) and 0 < progress[0] < 100
    assert len(set(progress)) > 1
    assert seen[-1] == ("completed", 100)


async def test_fail_marker(relay: Relay):
    video = await relay.create(prompt="a forbidden scene #fail")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "moderation_blocked"
    assert done["completed_at"] is not None


async def test_accepts_every_input_form(relay: Relay):
    from tests.images import data_url, png

    video = await relay.create(
        prompt="x",
        negative_prompt="blur",
        seed=7,
        generate_audio=True,
        enhance_prompt=False,
        person_generation="allow_adult",
        metadata={"anything": {"goes": 1}},
        input_reference={
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(png())}, "role": "first_frame"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/l.png"},
                    "role": "last_frame",
                },
                {"type": "video_url", "video_url": {"url": "https://x.test/v.mp4"}},
                {"type": "audio_url", "audio_url": {"url": "https://x.test/a.mp3"}},
            ]
        },
    )
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_zero_finish_time(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2"],
                "options": {"finish_after_s": 0},
            }
        ]
    )
    relay: Relay = await start_relay(config)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200
