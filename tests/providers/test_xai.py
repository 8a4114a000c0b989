"""xAI Grok Imagine: translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from relay.config import Config
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.providers.base import ChannelView
from relay.providers.errors import (
    AuthFailed,
    NotReady,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from relay.providers.http import Reply
from relay.providers.xai import XaiOptions, XaiProvider
from relay.providers.xai.models import accepts
from relay.providers.xai.request import build, edit_body
from relay.providers.xai.response import classify, request_id, task_error, update
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.xai import BASE, PREVIEW, V15, XaiFake
from tests.images import data_url, jpeg, png
from tests.storetools import update_task

FIXTURES = Path(__file__).parent / "fixtures" / "xai"
NOW = 1_750_000_000.0
HOUR = 3600


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on (`model`)."""
    model = fields.pop("model", BASE)
    fields.setdefault("prompt", "a rocket over the dunes")
    fields.setdefault("seconds", 6)
    parsed = Size.parse(fields.pop("size", "1280x720"))
    assert parsed is not None
    return VideoRequest(model=model, size=parsed, **fields), model


def native(default_resolution: str = "720p", **fields: Any) -> Any:
    request, model = job(**fields)
    return build(request, model, default_resolution)


def provider() -> XaiProvider:
    return XaiProvider(ChannelView("xai", XaiOptions(), api_key="k"), None)


REFERENCE = Image(role="reference_image", url="https://assets.example.com/character.png")
FIRST = Image(url="https://a.test/f.png")


# --- requests -------------------------------------------------------------------------------


def test_text_request_is_the_page_example():
    example = fixture("request_text")
    body = native(prompt=example["prompt"], seconds=10, size="1280x720").body
    assert body == example
    assert "seconds" not in body and "size" not in body


def test_image_request_is_the_page_example_without_a_ratio():
    example = fixture("request_image")
    upload = Image(data=jpeg(), mime="image/jpeg")
    sent = native(prompt=example["prompt"], seconds=6, size="848x480", images=(upload,))
    assert sent.body == {**example, "image": {"url": data_url(jpeg(), "image/jpeg")}}
    assert "aspect_ratio" not in sent.body  # the image decides the shape
    url = native(images=(Image(url="https://img.example.test/a.png?x=1"),)).body["image"]
    assert url == {"url": "https://img.example.test/a.png?x=1"}


def test_reference_request_is_the_page_example():
    example = fixture("request_reference")
    sent = native(
        model=V15,
        prompt=example["prompt"],
        seconds=8,
        size="720x1280",
        images=(REFERENCE,),
        metadata={"reference_audios": [{"voice_id": "eve"}]},
    )
    assert sent.body == example
    assert (sent.seconds, sent.size) == (8, "720x1280")


@pytest.mark.parametrize(
    ("seconds", "images", "expected"),
    [
        (1, (), 1),
        (6, (), 6),
        (15, (), 15),
        (20, (), 15),
        (12, (REFERENCE,), 10),
        (4, (REFERENCE,), 4),
    ],
)
def test_duration_is_an_integer_clamped_to_the_mode(
    seconds: int, images: tuple[Image, ...], expected: int
):
    sent = native(model=V15, seconds=seconds, images=images)
    assert sent.body["duration"] == expected and type(sent.body["duration"]) is int
    assert sent.seconds == expected


@pytest.mark.parametrize(
    ("model", "size", "resolution", "ratio", "reported"),
    [
        (BASE, "1280x720", "720p", "16:9", "1280x720"),
        (BASE, "720x1280", "720p", "9:16", "720x1280"),
        (BASE, "848x480", "480p", "16:9", "848x480"),
        (BASE, "480x848", "480p", "9:16", "480x848"),
        (BASE, "640x480", "480p", "4:3", "640x480"),
        (BASE, "720x720", "720p", "1:1", "720x720"),
        (BASE, "1080x720", "720p", "3:2", "1080x720"),
        (BASE, "720x1080", "720p", "2:3", "720x1080"),
        (BASE, "1920x1080", "720p", "16:9", "1280x720"),  # no 1080p on the 1.0 model
        (BASE, "2560x1080", "720p", "16:9", "1280x720"),  # 21:9 snaps to 16:9
        (V15, "1920x1080", "1080p", "16:9", "1920x1080"),
        (V15, "3840x2160", "1080p", "16:9", "1920x1080"),
        (V15, "1080x1920", "1080p", "9:16", "1080x1920"),
        (BASE, "16:9", "720p", "16:9", "1280x720"),  # a bare ratio: the channel's default
    ],
)
def test_size_becomes_a_ratio_and_a_resolution(
    model: str, size: str, resolution: str, ratio: str, reported: str
):
    sent = native(model=model, size=size)
    assert (sent.body["resolution"], sent.body["aspect_ratio"]) == (resolution, ratio)
    assert sent.size == reported


def test_the_default_resolution_option_and_its_caps():
    assert native("480p", size="9:16").body["resolution"] == "480p"
    assert native("1080p", model=V15, size="16:9").body["resolution"] == "1080p"
    assert native("1080p", model=BASE, size="16:9").body["resolution"] == "720p"
    refs = native(model=V15, size="1920x1080", images=(REFERENCE,))
    assert refs.body["resolution"] == "720p" and refs.size == "1280x720"  # references cap


def test_hints_pass_where_xai_has_them():
    sent = native(generate_audio=False, negative_prompt="blur", seed=7)
    assert sent.body["generate_audio"] is False
    assert "seed" not in sent.body and "negative_prompt" not in sent.body
    assert sent.dropped == ("negative_prompt", "seed")


def test_metadata_merges_without_what_the_relay_controls():
    sent = native(
        metadata={
            "user": "end-user-7",
            "model": "grok-imagine-video-1.5",
            "output": {"upload_url": "https://evil.example.test/put"},
            "storage_options": {"x": 1},
            "api_key": "stolen",
            "duration": 3,
            "resolution": "480p",
        }
    )
    body = sent.body
    assert body["model"] == BASE and body["user"] == "end-user-7"
    assert not {"output", "storage_options", "api_key"} & set(body)
    assert (sent.seconds, sent.size) == (3, "848x480")  # what actually went upstream


def test_a_prompt_over_4096_characters_is_refused_before_any_call():
    with pytest.raises(Rejected) as refused:
        native(prompt="x" * 4097)
    assert refused.value.param == "prompt" and refused.value.code == "invalid_request"
    assert native(prompt="x" * 4096).body["prompt"] == "x" * 4096


@pytest.mark.parametrize(
    ("model", "images", "media", "metadata", "why"),
    [
        (PREVIEW, (), (), {}, "image-to-video only"),
        (PREVIEW, (REFERENCE,), (), {}, "image-to-video only"),
        (BASE, (REFERENCE,), (), {}, "does not support reference images"),
        (BASE, (), (), {"reference_images": [{"url": "https://a.test/r.png"}]}, "reference"),
        (V15, (FIRST, REFERENCE), (), {}, "combine"),
        (V15, (REFERENCE,) * 8, (), {}, "at most 7"),
        (BASE, (FIRST, Image(role="last_frame", url="https://a.test/l.png")), (), {}, "last frame"),
        (V15, (), (Media(kind="audio", url="https://a.test/a.mp3"),), {}, "reference audio"),
        (V15, (), (Media(kind="video", url="https://a.test/v.mp4"),), {}, "reference video"),
    ],
)  # fmt: skip
def test_check_refuses_what_xai_answers_400_to(
    model: str,
    images: tuple[Image, ...],
    media: tuple[Media, ...],
    metadata: dict[str, Any],
    why: str,
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(model=model, images=images, media=media, metadata=metadata))
    assert why in refused.value.message


def test_check_accepts_what_each_model_takes():
    xai = provider()
    xai.check(*job(model=BASE))
    xai.check(*job(model=V15))  # text-only on 1.5 is unconfirmed: xAI decides
    xai.check(*job(model=V15, images=(REFERENCE,) * 7))
    xai.check(*job(model=PREVIEW, images=(Image(url="https://a.test/f.png"),)))
    assert xai.can_remix(BASE) and not xai.can_remix(V15) and not xai.can_remix(PREVIEW)


def test_accepts_offers_the_seven_ratios_per_tier():
    seconds, sizes = accepts(BASE)
    assert seconds == tuple(range(1, 16))
    assert len(sizes) == 14 and "848x480" in sizes and "1920x1080" not in sizes
    assert "1920x1080" in accepts(V15)[1] and "1620x1080" in accepts(V15)[1]


def test_edit_body_is_the_page_example():
    example = fixture("request_edit")
    body = edit_body(
        example["prompt"],
        example["video"]["url"],
        {"duration": 4, "resolution": "480p", "video": {"url": "x"}, "model": "m", "user": "u"},
    )
    assert body == {**example, "user": "u"}  # the fields an edit refuses are left out


# --- answers --------------------------------------------------------------------------------


def test_create_answer():
    assert request_id(fixture("create"), "") == "aa87081b-1a29-d8a6-e5bf-5807e3a7a561"
    with pytest.raises(Unavailable) as unsure:
        request_id({}, "HTTP 200: {}")
    assert unsure.value.maybe_created is True


def poll(name_or_body: str | dict[str, Any], *, submitted_at: float = NOW) -> Any:
    body = fixture(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return update(body, now=NOW, submitted_at=submitted_at, ttl_s=HOUR)


@pytest.mark.parametrize(
    ("name", "status", "progress", "code"),
    [
        ("poll_pending_early", "queued", 0, None),
        ("poll_pending", "in_progress", 35, None),
        ("poll_done", "completed", 100, None),
        ("poll_done_moderated", "failed", None, "moderation_blocked"),
        ("poll_failed_string", "failed", None, "moderation_blocked"),
        ("poll_failed_object", "failed", None, "generation_failed"),
        ("poll_expired", "failed", None, "task_expired"),
    ],
)
def test_the_status_table(name: str, status: str, progress: int | None, code: str | None):
    found = poll(name)
    assert found.status == status and found.progress == progress
    assert (found.error.code if found.error else None) == code


@pytest.mark.parametrize(("given", "shown"), [(0, 0), (1, 1), (100, 99), ("35", 35)])
def test_pending_progress_is_clamped(given: Any, shown: int):
    found = poll({"status": "pending", "progress": given})
    assert found.progress == shown
    assert found.status == ("queued" if given == 0 else "in_progress")


def test_a_long_pending_without_progress_shows_running_by_time():
    found = poll("poll_pending_early", submitted_at=NOW - 61)
    assert (found.status, found.progress) == ("in_progress", None)  # the relay's time estimate
    assert poll("poll_pending_early", submitted_at=NOW - 59).status == "queued"


def test_done_keeps_the_url_the_length_and_the_cost():
    found = poll("poll_done")
    url = fixture("poll_done")["video"]["url"]
    assert found.state == {"video_url": url, "expires_at": NOW + HOUR, "cost_usd": 0.3}
    assert (found.seconds, found.completed_at, found.expires_at) == ("6", NOW, NOW + HOUR)


def test_done_without_a_url_is_moderation_even_when_moderation_says_true():
    body = {**fixture("poll_done"), "video": {"url": "", "duration": 6, "respect_moderation": True}}
    found = poll(body)
    assert found.status == "failed" and found.error.code == "moderation_blocked"
    assert found.state == {}


def test_failed_errors_keep_their_native_text():
    assert task_error("Generated video rejected by content moderation.").message == (
        "Generated video rejected by content moderation."
    )
    assert task_error({"code": "internal_error", "message": "Video generation failed"}).message == (
        "internal_error: Video generation failed"
    )
    for blocked in ("Input image blocked", "safety check", "violates our policy"):
        assert task_error(blocked).code == "moderation_blocked"
    assert task_error({"code": "content_moderation"}).code == "moderation_blocked"
    assert task_error(None).code == "generation_failed"
    assert task_error(42).code == "generation_failed"


def test_an_unknown_status_keeps_the_previous_one():
    found = poll({"status": "scheduling"})
    assert found.status is None and found.unknown_status == "scheduling"
    with pytest.raises(Unavailable):
        poll({"code": "x", "error": "y"})


BAD_KEY = fixture("error_bad_key")
FORBIDDEN = "The caller does not have permission"  # the status phrase of every 403


@pytest.mark.parametrize(
    ("status", "body", "on_create", "error_type", "code"),
    [
        (400, fixture("error_invalid_argument"), True, Rejected, "invalid_request"),
        (400, BAD_KEY, True, AuthFailed, "upstream_auth_failed"),
        (401, BAD_KEY, False, AuthFailed, "upstream_auth_failed"),
        (401, None, True, AuthFailed, "upstream_auth_failed"),
        (403, {"code": FORBIDDEN, "error": "Your API key lacks permission"}, True, AuthFailed,
         "upstream_auth_failed"),
        (403, {"code": FORBIDDEN, "error": "Prompt violates usage guidelines"}, True, Rejected,
         "moderation_blocked"),
        (403, {"code": FORBIDDEN, "error": "forbidden"}, True, AuthFailed, "upstream_auth_failed"),
        (403, None, False, AuthFailed, "upstream_auth_failed"),
        (422, None, True, Rejected, "invalid_request"),
        (404, {"code": "not found", "error": "no model"}, True, Rejected, "invalid_request"),
        (404, None, False, TaskNotFound, "task_expired"),
        (429, fixture("error_credits"), True, QuotaExceeded, "insufficient_quota"),
        (429, {"code": "Too many requests", "error": "slow down"}, False, RateLimited,
         "rate_limit_exceeded"),
        (500, None, True, Unavailable, "upstream_error"),
        (503, {"code": "unavailable", "error": "try later"}, False, Unavailable, "upstream_error"),
    ],
)  # fmt: skip
def test_the_classification_table(
    status: int, body: Any, on_create: bool, error_type: type, code: str
):
    exc = classify(status, {}, body, json.dumps(body), on_create=on_create)
    assert type(exc) is error_type
    assert exc.code == code
    if isinstance(exc, Unavailable):
        assert exc.maybe_created is False


def test_the_status_phrase_is_not_read_for_words():
    # "permission" is in the phrase of every 403: only the message decides
    body = {"code": "The caller does not have permission", "error": "content violates guidelines"}
    assert classify(403, {}, body, "", on_create=True).code == "moderation_blocked"


def test_error_messages_carry_the_phrase_and_message_and_keep_the_body_for_the_log():
    exc = classify(400, {}, fixture("error_invalid_argument"), "raw-body", on_create=True)
    assert exc.message == (
        "Client specified an invalid argument: Text-to-video is not supported for this model"
    )
    assert exc.detail == "HTTP 400: raw-body"
    bad = classify(400, {}, {"code": "x", "error": "Invalid duration 20"}, "", on_create=True)
    assert isinstance(bad, Rejected) and bad.param == "seconds"
    key = classify(400, {}, BAD_KEY, "", on_create=True)
    assert "console.x.ai" not in key.message  # client text holds no URL


def test_retry_after_and_a_gateway_timeout():
    limited = classify(429, {"Retry-After": "7"}, None, "", on_create=True)
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    timeout = classify(504, {}, None, "", on_create=True)
    assert isinstance(timeout, Unavailable) and timeout.maybe_created is True


class StubHttp:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


async def test_submit_poll_and_content_over_the_wire():
    http = StubHttp(answer(fixture("create")), answer(fixture("poll_done")))
    channel = ChannelView("xai", XaiOptions(), base_url="https://api.x.ai/", api_key="xai-k")
    xai = XaiProvider(channel, http)  # type: ignore[arg-type]
    submitted = await xai.submit(*job(seconds=10))
    assert (submitted.upstream_id, submitted.seconds, submitted.size) == (
        "aa87081b-1a29-d8a6-e5bf-5807e3a7a561", "10", "1280x720",
    )  # fmt: skip
    ref = TaskRef("video_x", "a/b", BASE, {}, NOW, "10", "1280x720", "queued")
    found = await xai.poll(ref)
    (m1, u1, k1), (m2, u2, k2) = http.sent
    assert (m1, u1) == ("POST", "https://api.x.ai/v1/videos/generations")
    assert k1["json"]["duration"] == 10
    assert (m2, u2) == ("GET", "https://api.x.ai/v1/videos/a%2Fb")
    assert k1["headers"]["Authorization"] == k2["headers"]["Authorization"] == "Bearer xai-k"
    done = TaskRef("video_x", "a", BASE, dict(found.state), NOW, "6", "1280x720", "completed")
    source = await xai.content(done, "video")
    assert isinstance(source, Remote)
    assert source.url == fixture("poll_done")["video"]["url"]
    assert source.headers == {} and not source.trusted  # never the key to vidgen.x.ai
    with pytest.raises(NotReady):
        await xai.content(ref, "video")


def test_options_are_validated(monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]):
    channel = {"name": "x", "provider": "xai", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {"resolution": "720p", "url_ttl_s": HOUR}
    for bad in ({"resolution": "4k"}, {"url_ttl_s": 1}):
        with pytest.raises(ConfigError):
            make_config(channels=[{**channel, "options": bad}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[XaiFake]:
    upstream = XaiFake()
    await upstream.start()
    yield upstream
    await upstream.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    fake: XaiFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Start:
    async def run(keep: bool = False, **channel: Any) -> Relay:
        # no stored copies unless asked: content must come from the fake's CDN
        config = make_config(
            storage={"keep_videos": keep}, channels=[fake.channel(fake.base_url, **channel)]
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, **headers: str) -> Any:
    return await relay.client.get(f"/v1/videos/{video_id}/content", headers={**auth(), **headers})


async def listed(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


async def test_create_poll_and_content_with_range(start: Start, fake: XaiFake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(seconds="10", size="1280x720")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "10", "1280x720")
    [create] = fake.calls("/v1/videos/generations", "POST")
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "model": BASE,
        "prompt": "a paper airplane over a lake",
        "duration": 10,
        "resolution": "720p",
        "aspect_ratio": "16:9",
    }
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("10", "1280x720")
    assert done["expires_at"] == pytest.approx(done["completed_at"] + HOUR, abs=2)
    polls = fake.calls("/v1/videos/", "GET")
    assert len(polls) == 3
    assert all(p.headers["Authorization"] == f"Bearer {fake.api_key}" for p in polls)

    whole = await content(relay, video["id"])
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert await whole.read() == VIDEO
    part = await content(relay, video["id"], Range="bytes=100-199")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await part.read() == VIDEO[100:200]
    assert fake.cdn_stats.auth_headers == [None, None]  # the key never went to the video host
    assert "bytes=100-199" in fake.cdn_stats.range_headers


async def test_progress_moves_while_pending(start: Start, fake: XaiFake):
    import asyncio

    fake.polls_to_finish = 1000
    relay = await start()
    video = await relay.create()
    for _ in range(500):
        seen = await relay.get(video["id"])
        if seen["status"] == "in_progress":
            break
        await asyncio.sleep(0.02)
    assert seen["status"] == "in_progress" and 1 <= seen["progress"] <= 99


@pytest.mark.parametrize(
    ("form", "sent"),
    [
        ({"image_url": "https://img.example.test/a.png"}, "https://img.example.test/a.png"),
        ({"image_url": data_url(png())}, data_url(png())),
    ],
)
async def test_first_frame_by_url_or_data_url(
    start: Start, fake: XaiFake, form: dict[str, str], sent: str
):
    relay = await start()
    video = await relay.create(input_reference=form, size="720x1280", seconds="6")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert create["image"] == {"url": sent} and "aspect_ratio" not in create


async def test_references_on_1_5(start: Start, fake: XaiFake):
    relay = await start()
    refs = [
        {"type": "image_url", "role": "reference_image",
         "image_url": {"url": f"https://img.example.test/{i}.png"}} for i in range(2)
    ]  # fmt: skip
    video = await relay.create(
        model=V15,
        seconds="12",
        size="1920x1080",
        input_reference={"content": refs},
        metadata={"reference_audios": [{"voice_id": "rex"}]},
    )
    assert (video["seconds"], video["size"]) == ("10", "1280x720")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert create["reference_images"] == [
        {"url": f"https://img.example.test/{i}.png"} for i in range(2)
    ]
    assert create["reference_audios"] == [{"voice_id": "rex"}]
    assert (create["duration"], create["resolution"]) == (10, "720p")


@pytest.mark.parametrize(
    ("prompt", "knobs", "code", "message"),
    [
        ("a storm #fail", {}, "generation_failed", "internal_error: Video generation failed"),
        ("a storm #fail", {"error_as_string": True}, "generation_failed",
         "Video generation failed"),
        ("a storm #moderation", {}, "moderation_blocked", "done (respect_moderation false)"),
        ("a storm #moderation", {"moderation_as_failed": True}, "moderation_blocked",
         "Generated video rejected by content moderation."),
        ("a storm #expired", {}, "task_expired", "expired"),
    ],
)  # fmt: skip
async def test_failed_jobs_have_normalised_codes(
    start: Start, fake: XaiFake, prompt: str, knobs: dict[str, Any], code: str, message: str
):
    for name, value in knobs.items():
        setattr(fake, name, value)
    relay = await start()
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["expires_at"] is None
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(message)
    resp = await content(relay, video["id"])
    assert resp.status == 404


async def test_a_job_gone_upstream_is_expired(start: Start, fake: XaiFake):
    fake.polls_to_finish = 100
    relay = await start()
    video = await relay.create()
    fake.forget_tasks()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")


async def test_an_unknown_status_keeps_the_task_going(start: Start, fake: XaiFake):
    import asyncio

    fake.status_override = "paused"
    relay = await start()
    video = await relay.create()
    for _ in range(100):
        if len(fake.calls("/v1/videos/", "GET")) >= 3:
            break
        await asyncio.sleep(0.02)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_input_moderation_is_a_content_policy_400(start: Start, fake: XaiFake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "content_policy_violation"
    assert "usage guidelines" in error["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize(
    ("status", "message", "param"),
    [
        (400, "Text-to-video is not supported for this model", None),
        (400, "Invalid aspect_ratio: 5:4", "size"),
        (422, "Failed to deserialize the JSON body: missing field `prompt`", "prompt"),
    ],
)
async def test_bad_requests_are_a_400_with_the_native_text(
    start: Start, fake: XaiFake, status: int, message: str, param: str | None
):
    relay = await start()
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400
    assert (error["code"], error["param"]) == ("invalid_parameter", param)
    assert error["message"].endswith(message)
    assert await listed(relay) == []


async def test_text_only_on_1_5_follows_the_upstream(start: Start, fake: XaiFake):
    relay = await start()
    ok = await relay.create(model=V15, size="1920x1080")
    assert ok["size"] == "1920x1080"
    assert (await relay.wait(ok["id"]))["status"] == "completed"
    fake.v15_text_to_video = False  # the earlier, image-only 1.5
    resp = await relay.client.post("/v1/videos", json={"prompt": "x", "model": V15}, headers=auth())
    assert resp.status == 400
    assert "Text-to-video is not supported" in (await resp.json())["error"]["message"]


async def test_text_on_the_preview_model_never_reaches_xai(start: Start, fake: XaiFake):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "x", "model": PREVIEW}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "message", "rate_limited"),
    [
        (429, "Too many requests", True),
        (429, "Your team t has either used all available credits or reached its monthly "
              "spending limit.", False),
        (500, "Internal error", False),
        (503, "unavailable", False),
        (401, "Incorrect API key provided: xa***zz.", False),
        (400, "Incorrect API key provided: xa***zz.", False),
    ],
)  # fmt: skip
async def test_submit_errors_leave_no_task(
    start: Start, fake: XaiFake, status: int, message: str, rate_limited: bool
):
    relay = await start()
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=rate_limited)
    assert "127.0.0.1" not in body["error"]["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize("bad_key_status", [400, 401])
async def test_a_wrong_key_is_refused_natively(
    fake: XaiFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    bad_key_status: int,
):
    fake.bad_key_status = bad_key_status
    channel = {**fake.channel(fake.base_url), "api_key": "xai-wrong-key"}
    relay: Relay = await start_relay(make_config(channels=[channel]))
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert fake.jobs == {}
    xai = relay.runtime.channels.get("xai")
    assert xai is not None and xai.health.state == "credentials"


@pytest.mark.parametrize(("status", "message"), [(429, "slow down"), (500, "x"), (503, "x")])
async def test_poll_errors_leave_the_task_running(
    start: Start, fake: XaiFake, status: int, message: str
):
    relay = await start()
    fake.fail_next("poll", status, message)
    fake.fail_next("poll", status, message)
    video = await relay.create()
    assert (await relay.wait(video["id"], timeout=20))["status"] == "completed"
    assert fake.next_poll == []


async def test_remix_is_xais_edit_of_the_source(start: Start, fake: XaiFake):
    relay = await start()
    source = await relay.create(seconds="8", size="848x480")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    [job_] = fake.jobs.values()
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix",
        json={"prompt": "Make the ball larger.", "metadata": {"user": "u-1"}},
        headers=auth(),
    )
    assert resp.status == 200, await resp.text()
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["seconds"], remix["size"]) == ("8", "848x480")
    [edit] = fake.creates("edits")
    assert edit == {
        "model": BASE,
        "prompt": "Make the ball larger.",
        "video": {"url": fake.url(f"/cdn/{job_.file}")},
        "user": "u-1",
    }
    done = await relay.wait(remix["id"])
    assert done["status"] == "completed" and done["seconds"] == "8"
    assert await (await content(relay, remix["id"])).read() == VIDEO


async def test_remix_of_a_long_clip_or_an_expired_url_is_refused(start: Start, fake: XaiFake):
    relay = await start()
    long = await relay.create(seconds="10")
    short = await relay.create(seconds="6")
    for video in (long, short):
        assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await relay.client.post(
        f"/v1/videos/{long['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert "clip length" in (await resp.json())["error"]["message"]
    row = await relay.store.get_task(short["id"])
    assert row is not None
    await update_task(
        relay.store, short["id"], {"upstream_state": {**row.upstream_state, "expires_at": 1.0}}
    )
    resp = await relay.client.post(
        f"/v1/videos/{short['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert "expired" in (await resp.json())["error"]["message"]
    assert fake.creates("edits") == []


async def test_remix_past_the_url_sends_the_stored_copy_as_a_data_url(start: Start, fake: XaiFake):
    relay = await start(keep=True)
    source = await relay.create(seconds="6")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    for _ in range(200):
        if await relay.store.stored_copy(source["id"], "video") is not None:
            break
        await relay.copier.round()
    row = await relay.store.get_task(source["id"])
    assert row is not None
    await update_task(
        relay.store, source["id"], {"upstream_state": {**row.upstream_state, "expires_at": 1.0}}
    )
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    [edit] = fake.creates("edits")
    assert edit["video"]["url"].startswith("data:video/mp4;base64,")
    assert fake.edit_sources == [VIDEO]  # the stored copy's bytes


async def test_remix_on_a_model_that_cannot_edit_never_reaches_xai(start: Start, fake: XaiFake):
    relay = await start()
    source = await relay.create(model=V15)
    assert (await relay.wait(source["id"]))["status"] == "completed"
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.creates("edits") == []


async def test_an_expired_result_url(start: Start, fake: XaiFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    fake.expire_urls()
    resp = await content(relay, video["id"])
    assert resp.status in (404, 502)  # xAI cannot sign it again: it reports `expired`
    assert (await relay.get(video["id"]))["status"] == "completed"


async def test_the_fake_takes_every_listed_image_key_and_extensions(fake: XaiFake):
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with aiohttp.ClientSession() as session:
        for key in ("url", "image_url", "file_id"):
            body = {"model": BASE, "prompt": "x", "image": {key: "https://a.test/i.png"}}
            async with session.post(
                fake.url("/v1/videos/generations"), json=body, headers=headers
            ) as r:
                assert r.status == 200, await r.text()
        async with session.post(
            fake.url("/v1/videos/generations"), data={"prompt": "x"}, headers=headers
        ) as r:
            assert r.status == 400  # JSON only
        body = {"model": BASE, "prompt": "x", "duration": 4, "aspect_ratio": "16:9"}
        async with session.post(
            fake.url("/v1/videos/generations"), json=body, headers=headers
        ) as r:
            rid = (await r.json())["request_id"]
        for _ in range(fake.polls_to_finish):
            async with session.get(fake.url(f"/v1/videos/{rid}"), headers=headers) as r:
                done = await r.json()
        assert done["status"] == "done" and done["usage"]["cost_in_usd_ticks"] == 2_000_000_000
        extend = {
            "model": BASE,
            "prompt": "on",
            "video": {"url": done["video"]["url"]},
            "duration": 5,
        }
        async with session.post(
            fake.url("/v1/videos/extensions"), json=extend, headers=headers
        ) as r:
            assert r.status == 200
        async with session.get(done["video"]["url"]) as r:
            assert r.status == 200 and await r.read() == VIDEO


# --- failover and cooldown by the policy table ------------------------------------------------


@pytest.fixture
async def two(
    fake: XaiFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    first = {**fake.channel(fake.base_url), "name": "first", "priority": 10}
    second = {"name": "second", "provider": "demo", "models": ["sora-2"],
              "options": {"finish_after_s": 0.2}}  # fmt: skip
    config = make_config(storage={"keep_videos": False}, channels=[first, second])
    return await start_relay(config)  # type: ignore[no-any-return]


async def channel_of(relay: Relay, video_id: str) -> str:
    row = await relay.store.get_task(video_id)
    assert row is not None
    return row.channel


@pytest.mark.parametrize(
    ("status", "message", "state", "tried_again"),
    [
        (500, "Internal error", "ready", True),  # one hiccup: failure counted, still in use
        (503, "unavailable", "ready", True),
        (429, "Too many requests", "rate_limited", False),  # paused for the default wait
        (429, "has either used all available credits or reached its monthly spending limit",
         "quota", False),
        (401, "Incorrect API key provided", "credentials", False),
        (400, "Incorrect API key provided", "credentials", False),
    ],
)  # fmt: skip
async def test_failover_and_cooldown(
    two: Relay, fake: XaiFake, status: int, message: str, state: str, tried_again: bool
):
    fake.fail_next("submit", status, message)
    video = await two.create()
    assert await channel_of(two, video["id"]) == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == state
    again = await two.create()
    assert len(fake.creates()) == (2 if tried_again else 1)
    assert await channel_of(two, again["id"]) == ("first" if tried_again else "second")
    assert (await two.wait(video["id"]))["status"] == "completed"


async def test_a_rejected_request_is_not_failed_over(two: Relay, fake: XaiFake):
    resp = await two.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0
    assert await listed(two) == []


# --- the SDK, and the key ----------------------------------------------------------------------


async def test_official_sdk_flow(start: Start, fake: XaiFake):
    relay = await start()
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        video = await client.videos.create_and_poll(
            prompt="a lighthouse", seconds="8", size="720x1280", poll_interval_ms=20
        )
        assert (video.status, video.seconds, video.size) == ("completed", "8", "720x1280")
        assert (await client.videos.download_content(video.id)).content == VIDEO
        framed = await client.videos.create_and_poll(
            prompt="animate this", seconds="4", size="1280x720", poll_interval_ms=20,
            input_reference=("frame.png", png(1280, 720), "image/png"),
        )  # fmt: skip
        assert framed.status == "completed"
        assert fake.creates()[-1]["image"]["url"].startswith("data:image/png;base64,")
        remix = await client.videos.remix(video.id, prompt="at night")
        assert remix.remixed_from_video_id == video.id
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
    finally:
        await client.close()


async def test_the_key_never_leaks(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "xai-canary-" + secrets.token_hex(16)
    upstream = XaiFake(api_key=canary)
    await upstream.start()

    def config() -> Config:
        channels = [upstream.channel(upstream.base_url)]
        return make_config(storage={"keep_videos": False}, channels=channels)

    try:
        relay: Relay = await start_relay(config())
        seen: list[str] = []
        ok = await relay.create(seconds="6")
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        seen.append((await (await content(relay, ok["id"])).read()).decode("latin-1"))
        resp = await relay.client.post(
            f"/v1/videos/{ok['id']}/remix", json={"prompt": "y"}, headers=auth()
        )
        seen.append(await resp.text())
        for prompt in ("x #fail", "x #moderation"):
            failed = await relay.create(prompt=prompt)
            seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("poll", 401, upstream._bad_key_message(canary))
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        seen.append(await (await relay.client.get("/v1/videos", headers=auth())).text())
        seen.append(await (await relay.client.get("/", headers=auth())).text())
        # a failed submit cools the only channel down: one fresh relay per error
        for status, message in (
            (400, upstream._bad_key_message(canary)),
            (401, f"bad key {canary}"),
            (429, "slow down"),
            (500, f"trace for {canary}"),
            (400, "Invalid duration"),
        ):
            fresh: Relay = await start_relay(config())
            upstream.fail_next("submit", status, message)
            resp = await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        assert upstream.next_submit == [] and upstream.next_poll == []
        for text in seen:
            assert canary not in text and upstream.base_url not in text
        assert canary not in logs.text
        for record in logs.records:
            assert canary not in record.getMessage()
        assert set(upstream.cdn_stats.auth_headers) == {None}
    finally:
        await upstream.close()
