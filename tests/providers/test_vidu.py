"""Vidu: translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from yarl import URL

from relay.config import Config
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.providers import REGISTRY
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
    VariantUnavailable,
)
from relay.providers.http import Reply
from relay.providers.vidu import ViduOptions, ViduProvider
from relay.providers.vidu.request import build
from relay.providers.vidu.response import error_from, parse_query, parse_submit, task_error
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import THUMBNAIL_JPEG, VIDEO
from tests.fakes.vidu import ViduFake
from tests.images import data_url, png

FIXTURES = Path(__file__).parent / "fixtures" / "vidu"
NOW = 1_750_000_000.0
DAY = 24 * 3600


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on (`model`)."""
    model = fields.pop("model", "viduq2")
    fields.setdefault("prompt", "an astronaut walking through fog")
    fields.setdefault("seconds", 5)
    size = fields.pop("size", "1280x720")
    parsed = Size.parse(size)
    assert parsed is not None
    return VideoRequest(model=model, size=parsed, **fields), model


def provider(**options: Any) -> ViduProvider:
    return ViduProvider(ChannelView("vidu", ViduOptions(**options), api_key="k"), None)


URL_IMAGE = Image(url="https://img.example.test/first.png?x=1")
UPLOAD = Image(data=png(), mime="image/png")


# --- requests -------------------------------------------------------------------------------


def test_text_request_matches_the_page_example():
    native = build(*job(seed=0))
    example = fixture("request_text2video")
    assert native.path == "text2video"
    for key in ("model", "prompt", "duration", "seed", "aspect_ratio", "resolution", "off_peak"):
        assert native.body[key] == example[key], key
    assert native.body["bgm"] is False
    assert "images" not in native.body
    assert (native.seconds, native.size) == (5, "1280x720")


@pytest.mark.parametrize(
    ("model", "seconds", "images", "expected"),
    [
        ("viduq2", 12, (), 10),
        ("viduq2", 4, (), 4),
        ("viduq2-pro", 10, (URL_IMAGE, URL_IMAGE), 8),  # start-end: 1-8
        ("viduq2-pro", 10, (URL_IMAGE,), 10),
        ("viduq3-pro", 16, (), 16),
        ("viduq3-pro", 20, (), 16),
        ("viduq1", 10, (), 5),
        ("viduq1-classic", 1, (URL_IMAGE,), 5),
        ("vidu2.0", 5, (URL_IMAGE,), 4),
        ("vidu2.0", 6, (URL_IMAGE,), 8),  # a tie takes the longer
        ("vidu2.0", 12, (URL_IMAGE,), 8),
    ],
)
def test_seconds_snap_per_model_family(
    model: str, seconds: int, images: tuple[Image, ...], expected: int
):
    native = build(*job(model=model, seconds=seconds, images=images))
    assert native.body["duration"] == expected
    assert native.seconds == expected


@pytest.mark.parametrize(
    ("model", "size", "seconds", "resolution", "ratio", "reported"),
    [
        ("viduq2", "1280x720", 5, "720p", "16:9", "1280x720"),
        ("viduq2", "1920x1080", 5, "1080p", "16:9", "1920x1080"),
        ("viduq2", "720x1280", 5, "720p", "9:16", "720x1280"),
        ("viduq2", "640x360", 5, "540p", "16:9", "960x540"),
        ("viduq2", "3840x2160", 5, "1080p", "16:9", "1920x1080"),
        ("viduq2", "16:9", 5, "720p", "16:9", "1280x720"),  # a bare ratio: the default tier
        ("viduq2", "1024x768", 5, "720p", "4:3", "960x720"),
        ("viduq2", "720x720", 5, "720p", "1:1", "720x720"),
        ("viduq3-pro", "1080x1440", 5, "1080p", "3:4", "1080x1440"),
        ("viduq1", "640x360", 5, "1080p", "16:9", "1920x1080"),  # q1 has only 1080p
        ("viduq1", "1024x768", 5, "1080p", "1:1", "1080x1080"),  # no 4:3 on q1
        ("vidu2.0", "640x360", 4, "360p", "16:9", "640x360"),
        ("vidu2.0", "16:9", 4, "360p", "16:9", "640x360"),
        ("vidu2.0", "1920x1080", 8, "720p", "16:9", "1280x720"),  # 8 s is 720p only
    ],
)
def test_size_becomes_a_tier_and_a_ratio(
    model: str, size: str, seconds: int, resolution: str, ratio: str, reported: str
):
    native = build(*job(model=model, size=size, seconds=seconds))
    assert native.body["resolution"] == resolution
    assert native.body["aspect_ratio"] == ratio
    assert native.size == reported


def test_pro_fast_has_no_540p():
    native = build(*job(model="viduq2-pro-fast", size="640x360", images=(URL_IMAGE,)))
    assert native.body["resolution"] == "720p"
    assert native.size == "1280x720"


def test_one_image_goes_to_img2video_without_aspect_ratio():
    native = build(*job(model="viduq2-pro", images=(URL_IMAGE,)))
    assert native.path == "img2video"
    assert native.body["images"] == ["https://img.example.test/first.png?x=1"]
    assert "aspect_ratio" not in native.body


def test_upload_becomes_a_data_url_with_its_prefix():
    native = build(*job(model="viduq2-pro", images=(UPLOAD,)))
    assert native.body["images"] == [data_url(png())]
    assert native.body["images"][0].startswith("data:image/png;base64,")


def test_two_images_go_first_then_last():
    last = Image(role="last_frame", url="https://img.example.test/last.png")
    first = Image(role="first_frame", data=png(), mime="image/png")
    native = build(*job(model="viduq2-pro", images=(last, first)))
    assert native.path == "start-end2video"
    assert native.body["images"] == [data_url(png()), "https://img.example.test/last.png"]
    assert "aspect_ratio" not in native.body


@pytest.mark.parametrize(
    "images",
    [
        (Image(role="reference_image", url="https://img.example.test/r.png"),),
        (URL_IMAGE, URL_IMAGE, URL_IMAGE),
    ],
)
def test_references_or_many_images_go_to_reference2video(images: tuple[Image, ...]):
    native = build(*job(images=images, size="720x1280"))
    assert native.path == "reference2video"
    assert len(native.body["images"]) == len(images)
    assert native.body["aspect_ratio"] == "9:16"


def test_subjects_in_metadata_pick_reference2video_and_allow_audio():
    subjects = [{"id": "1", "images": ["https://img.example.test/s.png"], "voice_id": ""}]
    native = build(*job(generate_audio=True, metadata={"subjects": subjects}))
    assert native.path == "reference2video"
    assert native.body["subjects"] == subjects
    assert native.body["audio"] is True


def test_hints_pass_where_vidu_has_them():
    native = build(*job(model="viduq3-pro", seed=42, generate_audio=True, negative_prompt="blur"))
    assert native.body["seed"] == 42
    assert native.body["audio"] is True
    assert "negative_prompt" not in json.dumps(native.body)
    assert native.dropped == ("negative_prompt",)


def test_audio_dropped_on_models_without_it():
    native = build(*job(model="viduq2", generate_audio=True, enhance_prompt=True))
    assert "audio" not in native.body
    assert set(native.dropped) == {"generate_audio", "enhance_prompt"}


def test_metadata_deep_merges_without_controlled_keys():
    native = build(
        *job(
            metadata={
                "movement_amplitude": "large",
                "style": "anime",
                "bgm": True,
                "watermark": True,
                "payload": "order-7",
                "model": "viduq3-pro",
                "callback_url": "https://evil.example.test/hook",
                "resolution": "1080p",
                "duration": 8,
            }
        )
    )
    body = native.body
    assert body["model"] == "viduq2"
    assert "callback_url" not in body
    assert (body["movement_amplitude"], body["style"], body["bgm"]) == ("large", "anime", True)
    assert (body["watermark"], body["payload"]) == (True, "order-7")
    assert body["off_peak"] is False  # never on unless asked
    assert (native.seconds, native.size) == (8, "1920x1080")  # what actually went upstream


@pytest.mark.parametrize(
    ("images", "media", "why"),
    [
        ((Image(role="last_frame", url="https://a.test/l.png"),), (), "first frame"),
        (
            (
                Image(role="reference_image", url="https://a.test/r.png"),
                Image(role="first_frame", url="https://a.test/f.png"),
            ),
            (),
            "mix",
        ),
        (
            tuple(Image(role="reference_image", url="https://a.test/r.png") for _ in range(8)),
            (),
            "at most 7",
        ),
        (
            (
                Image(role="last_frame", url="https://a.test/l.png"),
                Image(role="last_frame", url="https://a.test/l.png"),
            ),
            (),
            "one first frame",
        ),
        ((), (Media(kind="video", url="https://a.test/v.mp4"),), "reference video"),
        ((), (Media(kind="audio", url="https://a.test/a.mp3"),), "reference audio"),
    ],
)
def test_check_refuses_what_vidu_cannot_take(
    images: tuple[Image, ...], media: tuple[Media, ...], why: str
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(images=images, media=media))
    assert why in refused.value.message


def test_check_accepts_the_four_paths():
    for images in ((), (URL_IMAGE,), (URL_IMAGE, URL_IMAGE), (URL_IMAGE,) * 3):
        provider().check(*job(images=images))


# --- answers --------------------------------------------------------------------------------


def test_submit_answer_and_its_rfc3339_time():
    accepted = parse_submit(fixture("submit_created"))
    assert accepted.task_id == "809387572068364288"
    assert accepted.status == "queued"
    assert accepted.created_at == pytest.approx(1735746091.968916)


@pytest.mark.parametrize(
    ("err_code", "error_type", "code"),
    [
        ("AuditSubmitIllegal", Rejected, "moderation_blocked"),
        ("FieldInvalid", Rejected, "invalid_request"),
        ("CreditInsufficient", QuotaExceeded, "insufficient_quota"),
        ("SystemThrottling", RateLimited, "rate_limit_exceeded"),
        ("InternalServiceFailure", Unavailable, "upstream_error"),
        ("SomethingNew", Rejected, "invalid_request"),
        ("", Rejected, "invalid_request"),
    ],
)
def test_a_submit_answering_failed_is_refused(err_code: str, error_type: type, code: str):
    body = {**fixture("submit_created"), "state": "failed", "err_code": err_code, "credits": 0}
    with pytest.raises(error_type) as refused:
        parse_submit(body)
    assert refused.value.code == code


def test_a_submit_without_task_id_may_have_created_one():
    with pytest.raises(Unavailable) as unsure:
        parse_submit({"state": "created"})
    assert unsure.value.maybe_created is True


@pytest.mark.parametrize(
    ("name", "status", "progress"),
    [
        ("query_created", "queued", 0),
        ("query_queueing", "queued", 0),
        ("query_processing", "in_progress", 40),
        ("query_success", "completed", 100),
        ("query_failed", "failed", None),
        ("query_moderation", "failed", None),
        ("query_cancelled", "failed", None),
    ],
)
def test_every_state_of_the_page(name: str, status: str, progress: int | None):
    update = parse_query(fixture(name), now=NOW, ttl_s=DAY)
    assert update.status == status
    assert update.progress == progress


@pytest.mark.parametrize(
    ("progress", "expected"), [(None, None), (0, 1), (100, 95), ("40%", 40), ("x", None)]
)
def test_progress_is_optional_and_clamped(progress: Any, expected: int | None):
    body = fixture("query_processing")
    if progress is None:
        del body["progress"]
    else:
        body["progress"] = progress
    assert parse_query(body, now=NOW, ttl_s=DAY).progress == expected


def test_unknown_state_keeps_the_previous_status():
    body = {**fixture("query_processing"), "state": "scheduling"}
    update = parse_query(body, now=NOW, ttl_s=DAY)
    assert update.status is None
    assert update.unknown_status == "scheduling"  # the relay notes it


def test_success_keeps_the_signed_urls_as_received():
    update = parse_query(fixture("query_success"), now=NOW, ttl_s=DAY)
    creation = fixture("query_success")["creations"][0]
    assert update.state == {"video_url": creation["url"], "cover_url": creation["cover_url"]}
    assert update.state["video_url"].endswith("Signature=ab~cd;ef")
    assert update.completed_at == NOW
    assert update.expires_at == NOW + DAY


def test_success_with_a_top_level_result_url_only():
    body = {**fixture("query_success"), "creations": [], "result_url": "https://cdn.test/v.mp4"}
    update = parse_query(body, now=NOW, ttl_s=DAY)
    assert update.status == "completed"
    assert update.state == {"video_url": "https://cdn.test/v.mp4", "cover_url": None}


def test_success_without_a_video_is_a_failure():
    body = {**fixture("query_success"), "creations": []}
    update = parse_query(body, now=NOW, ttl_s=DAY)
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "generation_failed"


@pytest.mark.parametrize(
    ("err_code", "code"),
    [
        ("InternalServiceFailure", "upstream_error"),
        ("CreationPolicyViolation", "moderation_blocked"),
        ("TaskPromptPolicyViolation", "moderation_blocked"),
        ("AuditSubmitIllegal", "moderation_blocked"),
        ("UserCancelled", "cancelled"),
        ("CreditInsufficient", "insufficient_quota"),
        ("ImageDownloadFailure", "invalid_request"),
        ("TaskNotFound", "task_expired"),
        ("NewFailureName", "generation_failed"),
        ("", "generation_failed"),
    ],
)
def test_failed_task_errors(err_code: str, code: str):
    error = task_error(err_code)
    assert error.code == code
    if err_code:
        assert error.message.startswith(err_code)


def test_failed_fixtures_carry_their_native_code():
    for name, code in (
        ("query_failed", "upstream_error"),
        ("query_moderation", "moderation_blocked"),
        ("query_cancelled", "cancelled"),
    ):
        update = parse_query(fixture(name), now=NOW, ttl_s=DAY)
        assert update.error is not None and update.error.code == code
        assert update.error.message.startswith(fixture(name)["err_code"] + ": ")


@pytest.mark.parametrize(
    ("name", "status", "error_type", "code", "message"),
    [
        ("error_not_found", 404, TaskNotFound, "task_expired", "TaskNotFound: task not found"),
        ("error_auth", 401, AuthFailed, "upstream_auth_failed", "Unauthorized: unauthorized"),
        ("error_rate_limit", 429, RateLimited, "rate_limit_exceeded", None),
        ("error_concurrency", 429, RateLimited, "rate_limit_exceeded", None),
        (
            "error_bad_request",
            400,
            Rejected,
            "invalid_request",
            "FieldInvalid: duration is invalid",
        ),
        ("error_content_policy", 400, Rejected, "moderation_blocked", None),
        ("error_no_credits", 400, QuotaExceeded, "insufficient_quota", None),
        ("error_no_credits", 402, QuotaExceeded, "insufficient_quota", None),
    ],
)
def test_every_error_body_of_the_page(
    name: str, status: int, error_type: type, code: str, message: str | None
):
    body = fixture(name)
    exc = error_from(status, {}, body, json.dumps(body))
    assert type(exc) is error_type
    assert exc.code == code
    if message:
        assert exc.message == message
    assert body["metadata"]["trace_id"] not in exc.message  # the raw body is for the log
    assert exc.detail is not None and body["metadata"]["trace_id"] in exc.detail


def test_content_policy_is_moderation_and_bad_fields_are_not():
    policy = error_from(400, {}, fixture("error_content_policy"))
    assert isinstance(policy, Rejected) and policy.moderation
    field = error_from(400, {}, fixture("error_bad_request"))
    assert isinstance(field, Rejected) and not field.moderation
    image = error_from(400, {}, {"code": 400, "reason": "ImageDownloadFailure", "message": "x"})
    assert isinstance(image, Rejected) and image.param == "input_reference"


def test_retry_after_is_read():
    exc = error_from(429, {"retry-after": "7"}, fixture("error_rate_limit"))
    assert isinstance(exc, RateLimited) and exc.retry_after == 7.0
    assert (
        isinstance((none := error_from(429, {}, fixture("error_concurrency"))), RateLimited)
        and none.retry_after is None
    )


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (
            401,
            {"code": "Unauthorized", "reason": "Unauthorized", "message": "unauthorized"},
            AuthFailed,
        ),
        (400, {"code": "TaskPromptPolicyViolation", "message": "prompt rejected"}, Rejected),
        (400, {"code": "CreditInsufficient", "message": "insufficient credits"}, QuotaExceeded),
        (200, {"code": 429, "message": "too many requests"}, RateLimited),  # error in a 200
        (403, {"code": 403, "reason": "Forbidden", "message": "forbidden"}, AuthFailed),
        (409, {"code": 409, "reason": "Conflict", "message": "conflict"}, Rejected),
        (503, None, Unavailable),
        (502, None, Unavailable),
        (404, None, TaskNotFound),
        (402, None, QuotaExceeded),
    ],
)
def test_reason_then_string_code_then_status(status: int, body: Any, error_type: type):
    assert type(error_from(status, {}, body)) is error_type


def test_a_200_query_with_an_error_body_raises():
    with pytest.raises(TaskNotFound):
        parse_query(fixture("error_not_found"), now=NOW, ttl_s=DAY)


class StubHttp:
    """Answers the adapter's calls from a list, and keeps what it sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def stubbed(*replies: Reply, **options: Any) -> tuple[ViduProvider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView(
        "vidu", ViduOptions(**options), base_url="https://api.vidu.cn", api_key="k"
    )
    return ViduProvider(channel, http), http  # type: ignore[arg-type]


RUNNING = TaskRef("video_x", "809387572068364288", "viduq2", {}, NOW, "5", "1280x720", "queued")


async def test_submit_and_poll_over_the_wire():
    vidu, http = stubbed(answer(fixture("submit_created")), answer(fixture("query_success")))
    submitted = await vidu.submit(*job(images=(URL_IMAGE,), model="viduq2-pro"))
    assert submitted.upstream_id == "809387572068364288"
    assert submitted.state["upstream_created_at"] == pytest.approx(1735746091.968916)
    update = await vidu.poll(RUNNING)
    assert update.status == "completed"
    (m1, u1, k1), (m2, u2, k2) = http.sent
    assert (m1, u1) == ("POST", "https://api.vidu.cn/ent/v2/img2video")
    assert (m2, u2) == ("GET", "https://api.vidu.cn/ent/v2/tasks/809387572068364288/creations")
    assert k1["headers"]["Authorization"] == k2["headers"]["Authorization"] == "Token k"


async def test_url_lifetime_is_an_option():
    vidu, _ = stubbed(answer(fixture("query_success")), url_ttl_s=3600)
    update = await vidu.poll(RUNNING)
    assert update.expires_at is not None and update.completed_at is not None
    assert update.expires_at - update.completed_at == 3600


async def test_an_unknown_state_is_logged_once(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="relay.providers")
    state = "state-" + secrets.token_hex(4)
    body = {**fixture("query_processing"), "state": state}
    vidu, _ = stubbed(answer(body), answer(body))
    for _ in range(2):
        update = await vidu.poll(RUNNING)
        assert update.status is None and update.unknown_status == state
        vidu.note_unknown_status(update.unknown_status)  # what the relay does with it
    assert sum(state in r.getMessage() for r in caplog.records) == 1


async def test_refresh_content_queries_again():
    vidu, _ = stubbed(answer(fixture("query_success")), answer(fixture("error_not_found"), 404))
    fresh = await vidu.refresh_content(RUNNING, "thumbnail")
    assert isinstance(fresh, Remote)
    assert fresh.url == fixture("query_success")["creations"][0]["cover_url"]
    assert await vidu.refresh_content(RUNNING, "video") is None  # gone upstream


def test_url_lifetime_option_is_validated(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
):
    monkeypatch.setitem(REGISTRY, "vidu", ViduProvider)
    channel = {"name": "v", "provider": "vidu", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {"url_ttl_s": DAY}
    assert config.channels[0].base_url is None  # the global site by default
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "options": {"url_ttl_s": 5}}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


async def test_content_before_and_after_success():
    vidu = provider()
    ref = TaskRef("video_x", "1", "viduq2", {}, NOW, "5", "1280x720", "completed")
    with pytest.raises(NotReady):
        await vidu.content(ref, "video")
    state = parse_query(fixture("query_success"), now=NOW, ttl_s=DAY).state
    done = TaskRef("video_x", "1", "viduq2", state, NOW, "5", "1280x720", "completed")
    video = await vidu.content(done, "video")
    thumb = await vidu.content(done, "thumbnail")
    assert isinstance(video, Remote) and isinstance(thumb, Remote)
    assert video.url == state["video_url"] and video.headers == {} and not video.trusted
    assert (video.content_type, thumb.content_type) == ("video/mp4", "image/jpeg")
    no_cover = TaskRef(
        "video_x", "1", "viduq2", {**state, "cover_url": None}, NOW, "5", "", "completed"
    )
    with pytest.raises(VariantUnavailable):
        await vidu.content(no_cover, "thumbnail")
    with pytest.raises(VariantUnavailable):
        await vidu.content(done, "spritesheet")


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[ViduFake]:
    upstream = ViduFake()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
def vidu_config(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> Callable[[ViduFake], Config]:
    monkeypatch.setitem(REGISTRY, "vidu", ViduProvider)

    def make(upstream: ViduFake) -> Config:
        # no stored copies: content must come from the fake's CDN
        return make_config(
            storage={"keep_videos": False}, channels=[upstream.channel(upstream.base_url)]
        )

    return make


@pytest.fixture
async def relay(
    fake: ViduFake,
    vidu_config: Callable[[ViduFake], Config],
    start_relay: Callable[[Config], Any],
) -> Relay:
    return await start_relay(vidu_config(fake))  # type: ignore[no-any-return]


async def videos(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


async def test_text_to_video_end_to_end(relay: Relay, fake: ViduFake):
    video = await relay.create(model="sora-2", seconds="12", size="1280x720")
    assert (video["seconds"], video["size"]) == ("10", "1280x720")
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["expires_at"] >= done["completed_at"] + DAY - 5
    [create] = fake.creates()
    assert create.path == "/ent/v2/text2video"
    assert create.headers["Authorization"] == f"Token {fake.api_key}"
    assert create.json() == {
        "model": "viduq2",
        "prompt": "a paper airplane over a lake",
        "duration": 10,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "bgm": False,
        "off_peak": False,
    }
    polls = fake.calls("/creations", "GET")
    assert polls and all(p.headers["Authorization"] == f"Token {fake.api_key}" for p in polls)

    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    thumb = await relay.client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert thumb.status == 200
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert await thumb.read() == THUMBNAIL_JPEG
    # the signed URLs arrived intact (the fake's CDN 403s a re-encoded signature) and keyless
    assert fake.cdn_stats.auth_headers == [None, None]
    assert fake.cdn_stats.finished == 2


async def test_thumbnail_type_when_the_cdn_sends_a_generic_one(relay: Relay, fake: ViduFake):
    fake.cdn.content_type = "application/octet-stream"
    video = await relay.create()
    await relay.wait(video["id"])
    thumb = await relay.client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert await thumb.read() == THUMBNAIL_JPEG


async def test_a_re_encoded_signature_is_refused_by_the_fake_cdn(fake: ViduFake):
    body = {"model": "viduq2", "prompt": "x", "duration": 5}
    headers = {"Authorization": f"Token {fake.api_key}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(fake.url("/ent/v2/text2video"), json=body, headers=headers) as r:
            task_id = (await r.json())["task_id"]
        query = fake.url(f"/ent/v2/tasks/{task_id}/creations")
        for _ in range(fake.polls_to_finish):
            async with session.get(query, headers=headers) as r:
                answer = await r.json()
        url = answer["creations"][0]["url"]
        assert "~" in url and ";" in url
        mangled = url.replace("~", "%7E").replace(";", "%3B")
        async with session.get(URL(mangled, encoded=True)) as r:
            assert r.status == 403
        async with session.get(URL(url, encoded=True)) as r:
            assert r.status == 200 and await r.read() == VIDEO


async def test_expired_urls_and_a_fresh_query(relay: Relay, fake: ViduFake):
    video = await relay.create()
    await relay.wait(video["id"])
    fake.expire_urls()
    queries = len(fake.calls("/creations"))
    # the relay asks Vidu again for a freshly signed URL, once, and the client sees no difference
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert len(fake.calls("/creations")) == queries + 1
    fake.expire_urls()
    row = await relay.store.get_task(video["id"])
    assert row is not None
    channel = relay.runtime.channels.get("vidu")
    assert channel is not None
    fresh = await channel.adapter.refresh_content(row.ref(), "video")
    assert isinstance(fresh, Remote) and fresh.url != row.upstream_state["video_url"]
    async with aiohttp.ClientSession() as session, session.get(URL(fresh.url, encoded=True)) as r:
        assert r.status == 200 and await r.read() == VIDEO


@pytest.mark.parametrize(
    ("input_reference", "model", "path", "images"),
    [
        ({"image_url": "https://img.example.test/a.png"}, "viduq2-pro", "img2video",
         ["https://img.example.test/a.png"]),
        ({"image_url": data_url(png())}, "viduq2-pro", "img2video", [data_url(png())]),
        (
            {"content": [
                {"type": "image_url", "role": "last_frame",
                 "image_url": {"url": "https://img.example.test/last.png"}},
                {"type": "image_url", "role": "first_frame",
                 "image_url": {"url": "https://img.example.test/first.png"}},
            ]},
            "viduq2-pro", "start-end2video",
            ["https://img.example.test/first.png", "https://img.example.test/last.png"],
        ),
        (
            {"content": [
                {"type": "image_url", "role": "reference_image",
                 "image_url": {"url": f"https://img.example.test/{i}.png"}} for i in range(3)
            ]},
            "viduq2", "reference2video",
            [f"https://img.example.test/{i}.png" for i in range(3)],
        ),
    ],
)  # fmt: skip
async def test_image_paths_end_to_end(
    relay: Relay,
    fake: ViduFake,
    input_reference: dict[str, Any],
    model: str,
    path: str,
    images: list[str],
):
    video = await relay.create(model=model, input_reference=input_reference, seconds="5")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert create.path == f"/ent/v2/{path}"
    assert create.json()["images"] == images
    assert ("aspect_ratio" in create.json()) == (path == "reference2video")


@pytest.mark.parametrize(
    ("prompt", "code", "native"),
    [
        ("a storm #fail", "upstream_error", "InternalServiceFailure"),
        ("a storm #moderation", "moderation_blocked", "CreationPolicyViolation"),
    ],
)
async def test_failed_tasks(relay: Relay, prompt: str, code: str, native: str):
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(native)


async def test_cancelled_upstream(relay: Relay, fake: ViduFake):
    fake.polls_to_finish = 50
    video = await relay.create()
    task_id = next(iter(fake.tasks))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.url(f"/ent/v2/tasks/{task_id}/cancel"),
            headers={"Authorization": f"Token {fake.api_key}"},
        ) as r,
    ):
        assert r.status == 200 and await r.json() == {}
    done = await relay.wait(video["id"])
    assert done["error"]["code"] == "cancelled"


async def test_task_gone_upstream_is_expired(relay: Relay, fake: ViduFake):
    fake.polls_to_finish = 50
    video = await relay.create()
    fake.tasks.clear()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")


async def test_reject_is_a_content_policy_400(relay: Relay, fake: ViduFake):
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject this"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "content_policy_violation"
    assert body["error"]["message"] == "TaskPromptPolicyViolation: prompt rejected"
    assert await videos(relay) == []


async def test_a_submit_answering_failed_is_a_400(relay: Relay, fake: ViduFake):
    fake.submit_failed_with = "AuditSubmitIllegal"
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    assert await videos(relay) == []


async def test_bad_field_is_a_400(relay: Relay, fake: ViduFake):
    fake.fail_next_submit(400, "FieldInvalid", "duration is invalid")
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"] == "FieldInvalid: duration is invalid"


@pytest.mark.parametrize(
    ("status", "reason", "retry_after", "string_codes"),
    [
        (429, "TooManyRequests", "7", False),
        (429, "QuotaExceeded", None, True),
        (429, "SystemThrottling", None, False),
        (500, "InternalServiceFailure", None, False),
        (500, "InternalServiceFailure", None, True),
        (401, "Unauthorized", None, False),
        (400, "CreditInsufficient", None, True),
        (402, "CreditInsufficient", None, True),
    ],
)
async def test_submit_errors_leave_no_task(
    relay: Relay,
    fake: ViduFake,
    status: int,
    reason: str,
    retry_after: str | None,
    string_codes: bool,
):
    fake.string_codes = string_codes
    fake.fail_next_submit(status, reason, "refused", retry_after)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    await refused_upstream(resp, rate_limited=status == 429)
    assert await videos(relay) == []
    assert len(fake.requests) == 1


async def test_wrong_key_is_refused_natively(
    fake: ViduFake,
    vidu_config: Callable[[ViduFake], Config],
    start_relay: Callable[[Config], Any],
):
    right = fake.api_key
    fake.api_key = "another-key"
    relay: Relay = await start_relay(vidu_config(fake))
    fake.api_key = right
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    assert resp.status == 502
    assert fake.requests[0].headers["Authorization"] == "Token another-key"
    assert await videos(relay) == []


@pytest.mark.parametrize(
    ("status", "reason", "retry_after"),
    [(429, "TooManyRequests", "1"), (429, "SystemThrottling", None),
     (500, "InternalServiceFailure", None), (503, "InternalServiceFailure", None)],
)  # fmt: skip
async def test_poll_errors_leave_the_task_running(
    relay: Relay, fake: ViduFake, status: int, reason: str, retry_after: str | None
):
    fake.polls_to_finish = 3
    fake.fail_next_poll(status, reason, "later", retry_after)
    fake.fail_next_poll(status, reason, "later")
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=15)
    assert done["status"] == "completed"
    assert len(fake.calls("/creations", "GET")) >= 5


async def test_progress_without_an_upstream_figure(relay: Relay, fake: ViduFake):
    fake.report_progress = False
    fake.result_url_field = True
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"


async def test_remix_is_unsupported_before_any_call(relay: Relay, fake: ViduFake):
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "video_url", "video_url": {"url": "https://v.example.test/a.mp4"}}],
        [{"type": "image_url", "role": "last_frame",
          "image_url": {"url": "https://img.example.test/l.png"}}],
    ],
)  # fmt: skip
async def test_unsupported_inputs_never_reach_vidu(
    relay: Relay, fake: ViduFake, content: list[dict[str, Any]]
):
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "input_reference": {"content": content}},
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_official_sdk_flow(relay: Relay, fake: ViduFake):
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        video = await client.videos.create_and_poll(prompt="a lighthouse at dusk", seconds="8")
        assert video.status == "completed" and video.seconds == "8" and video.size == "720x1280"
        assert (await client.videos.download_content(video.id)).content == VIDEO
        thumb = await client.videos.download_content(video.id, variant="thumbnail")
        assert thumb.content == THUMBNAIL_JPEG
        framed = await client.videos.create_and_poll(
            prompt="animate this", model="viduq2-pro",
            input_reference=("frame.png", png(), "image/png"),
        )  # fmt: skip
        assert framed.status == "completed"
        assert fake.creates()[-1].json()["images"] == [data_url(png())]
    finally:
        await client.close()


async def test_the_key_never_leaks(
    vidu_config: Callable[[ViduFake], Config],
    start_relay: Callable[[Config], Any],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    canary = "vidu-canary-" + secrets.token_hex(16)
    upstream = ViduFake(api_key=canary)
    await upstream.start()
    try:
        relay: Relay = await start_relay(vidu_config(upstream))
        seen: list[str] = []
        ok = await relay.create()
        seen.append(json.dumps(await relay.wait(ok["id"])))
        for variant in ("video", "thumbnail"):
            resp = await relay.client.get(
                f"/v1/videos/{ok['id']}/content", params={"variant": variant}, headers=auth()
            )
            seen.append((await resp.read()).decode("latin-1"))
        failed = await relay.create(prompt="x #fail")
        seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next_poll(500, "InternalServiceFailure", "later")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        for status, reason in ((401, "Unauthorized"), (400, "FieldInvalid")):
            upstream.fail_next_submit(status, reason, "no")
            resp = await relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        assert len(seen) == 8
        assert all(canary not in text for text in seen)
        assert canary not in caplog.text
        assert upstream.cdn_stats.auth_headers == [None, None]
    finally:
        await upstream.close()
