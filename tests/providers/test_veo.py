"""Veo on the Gemini API: translation on the page's recorded bodies, then the relay against the
fake (whose download redirects to a second server that must never see the API key)."""

from __future__ import annotations

import asyncio
import base64
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
from relay.domain import Image, InlineBytes, Media, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.providers import REGISTRY
from relay.providers import veo as veo_module
from relay.providers.base import ChannelView, NoOptions, split_frames
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
from relay.providers.http import Reply, ReplyTooLarge
from relay.providers.veo import VeoProvider
from relay.providers.veo import response as veo_response
from relay.providers.veo.request import build, inline
from relay.providers.veo.response import (
    FILE_TTL_S,
    classify,
    duration,
    inline_video,
    operation_error,
    operation_name,
    operation_update,
)
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.veo import RAI_REASON, VeoFake
from tests.images import data_url, jpeg, png

FIXTURES = Path(__file__).parent / "fixtures" / "veo"
NOW = 1_750_000_000.0
NAME = "models/veo-3.1-generate-preview/operations/hv2x64iecmmr"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def native_error(name: str) -> tuple[int, Any]:
    entry = fixture("errors")[name]
    return entry["http"], entry["body"]


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on, as the relay hands them to the adapter."""
    model = fields.pop("model", "veo-3.1-generate-preview")
    fields.setdefault("prompt", "a lighthouse in a storm")
    fields.setdefault("seconds", 8)
    size = Size.parse(fields.pop("size", "1280x720"))
    assert size is not None
    return VideoRequest(model=model, size=size, **fields), model


UPLOAD = Image(data=png(), mime="image/png")
PNG_INLINE = inline(png(), "image/png")
JPEG_INLINE = inline(jpeg(), "image/jpeg")


# --- requests -------------------------------------------------------------------------------


def test_body_matches_the_page_example():
    native = build(*job(negative_prompt="cartoon, low quality"), first=PNG_INLINE)
    example = fixture("request")
    assert native.body["parameters"] == example["parameters"]
    assert set(native.body["instances"][0]) == set(example["instances"][0])
    image = native.body["instances"][0]["image"]
    assert image == {
        "bytesBase64Encoded": base64.b64encode(png()).decode(),
        "mimeType": "image/png",
    }
    assert (native.seconds, native.size) == (8, "1280x720")


@pytest.mark.parametrize(
    ("model", "size", "seconds", "expected"),
    [
        ("veo-3.1-generate-preview", "1280x720", 1, 4),
        ("veo-3.1-generate-preview", "1280x720", 5, 6),  # a tie takes the longer
        ("veo-3.1-generate-preview", "1280x720", 7, 8),
        ("veo-3.1-generate-preview", "1280x720", 20, 8),
        ("veo-3.0-fast-generate-001", "720x1280", 4, 4),
        ("veo-3.1-generate-preview", "1920x1080", 4, 8),  # 1080p: 8 only
        ("veo-3.1-generate-preview", "3840x2160", 4, 8),  # 4k: 8 only
        ("veo-3.0-generate-001", "3840x2160", 4, 8),  # 4k -> 1080p, still 8
        ("veo-3.1-generate-preview", "16:9", 4, 4),
        ("veo-2.0-generate-001", "1280x720", 4, 5),
        ("veo-2.0-generate-001", "1280x720", 7, 8),
        ("veo-2.0-generate-001", "1920x1080", 4, 5),  # no resolution on Veo 2: nothing forced
    ],
)
def test_seconds_snap_per_model(model: str, size: str, seconds: int, expected: int):
    native = build(*job(model=model, size=size, seconds=seconds))
    sent = native.body["parameters"]["durationSeconds"]
    assert type(sent) is int and sent == expected
    assert native.seconds == expected


def test_reference_images_force_eight_seconds():
    native = build(*job(seconds=4), references=(PNG_INLINE, JPEG_INLINE))
    assert native.body["parameters"]["durationSeconds"] == 8
    assert native.body["instances"][0]["referenceImages"] == [
        {"image": PNG_INLINE, "referenceType": "asset"},
        {"image": JPEG_INLINE, "referenceType": "asset"},
    ]


@pytest.mark.parametrize(
    ("model", "size", "ratio", "resolution", "reported"),
    [
        ("veo-3.1-generate-preview", "1280x720", "16:9", "720p", "1280x720"),
        ("veo-3.1-generate-preview", "720x1280", "9:16", "720p", "720x1280"),
        ("veo-3.1-generate-preview", "1920x1080", "16:9", "1080p", "1920x1080"),
        ("veo-3.1-generate-preview", "1080x1920", "9:16", "1080p", "1080x1920"),
        ("veo-3.1-generate-preview", "3840x2160", "16:9", "4k", "3840x2160"),
        ("veo-3.1-generate-preview", "2160x3840", "9:16", "4k", "2160x3840"),
        ("veo-3.0-generate-001", "3840x2160", "16:9", "1080p", "1920x1080"),
        ("veo-3.1-generate-preview", "640x360", "16:9", "720p", "1280x720"),
        ("veo-3.1-generate-preview", "1024x1024", "16:9", "1080p", "1920x1080"),
        ("veo-3.1-generate-preview", "1024x1792", "9:16", "1080p", "1080x1920"),
        ("veo-3.1-generate-preview", "16:9", "16:9", None, "1280x720"),  # the default tier
        ("veo-3.1-generate-preview", "9:16", "9:16", None, "720x1280"),
        ("veo-2.0-generate-001", "1920x1080", "16:9", None, "1280x720"),  # never to Veo 2
        ("veo-2.0-generate-001", "720x1280", "9:16", None, "720x1280"),
    ],
)
def test_size_becomes_a_ratio_and_a_resolution(
    model: str, size: str, ratio: str, resolution: str | None, reported: str
):
    native = build(*job(model=model, size=size))
    params = native.body["parameters"]
    assert params["aspectRatio"] == ratio
    assert params.get("resolution") == resolution
    assert ("resolution" in params) == (resolution is not None)
    assert native.size == reported


def test_frames_go_to_image_and_last_frame():
    last = Image(role="last_frame", url="https://img.example.test/l.png")
    first = Image(role="first_frame", data=png(), mime="image/png")
    assert split_frames((last, first)) == split_frames((first, last))
    placed = split_frames((last, first))
    assert (placed.first, placed.last) == (first, last)
    a, b = Image(url="https://a.test/1.png"), Image(url="https://a.test/2.png")
    plain = split_frames((a, b))  # two unlabelled images: first, then last
    assert (plain.first, plain.last) == (a, b)
    native = build(*job(), first=PNG_INLINE, last=JPEG_INLINE)
    instance = native.body["instances"][0]
    assert (instance["image"], instance["lastFrame"]) == (PNG_INLINE, JPEG_INLINE)


@pytest.mark.parametrize(
    ("model", "images", "person"),
    [
        ("veo-3.1-generate-preview", True, "allow_adult"),
        ("veo-3.0-generate-001", True, "allow_adult"),
        ("veo-3.1-generate-preview", False, None),  # text-to-video: left to the API's default
        ("veo-2.0-generate-001", True, None),
    ],
)
def test_person_generation_for_image_inputs(model: str, images: bool, person: str | None):
    native = build(*job(model=model), first=PNG_INLINE if images else None)
    assert native.body["parameters"].get("personGeneration") == person


def test_hints_pass_where_the_gemini_api_has_them():
    native = build(
        *job(
            negative_prompt="blur",
            enhance_prompt=False,
            person_generation="dont_allow",
            seed=0,
            generate_audio=True,
        ),
        first=PNG_INLINE,
    )
    params = native.body["parameters"]
    assert params["negativePrompt"] == "blur"
    assert params["enhancePrompt"] is False
    assert params["personGeneration"] == "dont_allow"  # the client's word over the default
    assert "seed" not in params and "generateAudio" not in params
    assert native.dropped == ("seed", "generate_audio")


def test_metadata_deep_merges_and_instances_are_ignored():
    native = build(
        *job(
            metadata={
                "parameters": {
                    "enhancePrompt": False,
                    "durationSeconds": 6,
                    "aspectRatio": "9:16",
                    "sampleCount": 4,
                    "seed": 7,
                    "generateAudio": True,
                    "storageUri": "gs://bucket/out",
                },
                "instances": [{"prompt": "something else"}],
                "model": "veo-2.0-generate-001",
                "key": "AIza-other",
            }
        ),
        first=PNG_INLINE,
    )
    body = native.body
    assert set(body) == {"instances", "parameters"}
    assert body["instances"][0]["prompt"] == "a lighthouse in a storm"
    assert body["instances"][0]["image"] == PNG_INLINE
    params = body["parameters"]
    assert params["enhancePrompt"] is False
    assert params["sampleCount"] == 1
    assert not {"seed", "generateAudio", "storageUri"} & set(params)
    assert set(native.dropped) == {
        "parameters.seed",
        "parameters.generateAudio",
        "parameters.storageUri",
    }
    assert (native.seconds, native.size) == (6, "720x1280")  # what actually went upstream


def test_metadata_cannot_send_resolution_to_veo2():
    native = build(
        *job(model="veo-2.0-generate-001", metadata={"parameters": {"resolution": "4k"}})
    )
    assert "resolution" not in native.body["parameters"]
    assert native.size == "1280x720"


def test_a_string_duration_in_metadata_is_reported_as_sent():
    native = build(*job(metadata={"parameters": {"durationSeconds": "4"}}))
    assert native.seconds == 4


def provider(**channel: Any) -> VeoProvider:
    channel.setdefault("api_key", "k")
    return VeoProvider(ChannelView("veo", NoOptions(), **channel), None)


REF = Image(role="reference_image", url="https://a.test/r.png")


@pytest.mark.parametrize(
    ("model", "images", "media", "why"),
    [
        ("veo-3.0-generate-001", (REF,), (), "does not take reference images"),
        ("veo-2.0-generate-001", (REF,), (), "does not take reference images"),
        ("veo-3.1-generate-preview", (REF,) * 4, (), "at most 3"),
        ("veo-3.1-generate-preview", (Image(role="last_frame", url="https://a.test/l.png"),),
         (), "first frame"),
        ("veo-3.1-generate-preview", (Image(url="https://a.test/1.png"),) * 3, (), "one first"),
        ("veo-3.1-generate-preview", (), (Media(kind="video", url="https://a.test/v.mp4"),),
         "reference video"),
        ("veo-3.1-generate-preview", (), (Media(kind="audio", url="https://a.test/a.mp3"),),
         "reference audio"),
    ],
)  # fmt: skip
def test_check_refuses_what_veo_cannot_take(
    model: str, images: tuple[Image, ...], media: tuple[Media, ...], why: str
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(model=model, images=images, media=media))
    assert why in refused.value.message


def test_check_accepts_frames_and_references_on_31():
    veo = provider()
    veo.check(*job(images=(UPLOAD,)))
    veo.check(*job(images=(UPLOAD, Image(role="last_frame", data=png(), mime="image/png"))))
    veo.check(*job(images=(REF, REF, REF)))
    assert "remix" not in VeoProvider.features


# --- answers --------------------------------------------------------------------------------


def test_the_operation_name_is_the_upstream_id():
    assert operation_name(fixture("submit")) == NAME


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "../../files/x"}, {"name": "/abs"}, {"name": 42}, None],
)
def test_a_start_without_a_usable_name_may_have_created_one(body: Any):
    with pytest.raises(Unavailable) as unsure:
        operation_name(body)
    assert unsure.value.maybe_created is True


def test_a_200_start_holding_an_error_is_that_error():
    _, body = native_error("auth")
    with pytest.raises(AuthFailed):
        operation_name(body)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("poll_running", "in_progress", None),
        ("poll_running_done_false", "in_progress", None),
        ("poll_succeeded", "completed", None),
        ("poll_succeeded_inline", "completed", None),
        ("poll_moderation", "failed", "moderation_blocked"),
        ("poll_failed", "failed", "upstream_error"),
        ("poll_failed_safety", "failed", "moderation_blocked"),
        ("poll_no_video", "failed", "generation_failed"),
    ],
)
def test_every_operation_answer_of_the_page(name: str, status: str, code: str | None):
    update = operation_update(fixture(name), now=NOW)
    assert update.status == status
    assert (update.error.code if update.error else None) == code
    if status == "in_progress":
        assert update.progress is None  # no upstream figure: the relay estimates by time
        assert update.completed_at is None
    else:
        assert update.completed_at == NOW


def test_success_keeps_the_file_uri_for_two_days():
    update = operation_update(fixture("poll_succeeded"), now=NOW)
    uri = fixture("poll_succeeded")["response"]["generateVideoResponse"]["generatedSamples"][0]
    assert update.state == {"video_uri": uri["video"]["uri"], "inline_video": False}
    assert update.progress == 100
    assert update.expires_at == NOW + FILE_TTL_S == NOW + 172800


def test_an_inline_sample_is_completed_keeping_only_a_flag():
    update = operation_update(fixture("poll_succeeded_inline"), now=NOW)
    assert update.state == {"video_uri": None, "inline_video": True}
    assert update.expires_at == NOW + FILE_TTL_S
    assert inline_video(fixture("poll_succeeded_inline")) == ("AAAAGGZ0eXBtcDQy", "video/mp4")
    assert inline_video(fixture("poll_succeeded")) is None  # a file URI: nothing inline


def test_an_inline_sample_over_the_bound_fails_saying_why(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(veo_response, "INLINE_MAX_BYTES", 8)
    update = operation_update(fixture("poll_succeeded_inline"), now=NOW)  # 12 bytes inline
    assert update.status == "failed" and update.error is not None
    assert update.error.code == "generation_failed"
    assert "inline" in update.error.message and "32 MiB" in update.error.message


def test_moderation_message_is_the_joined_reasons():
    body = fixture("poll_moderation")
    update = operation_update(body, now=NOW)
    assert update.error is not None and update.error.message == RAI_REASON
    body["response"]["generateVideoResponse"]["raiMediaFilteredReasons"].append("Second reason.")
    update = operation_update(body, now=NOW)
    assert update.error is not None
    assert update.error.message == f"{RAI_REASON}; Second reason."
    del body["response"]["generateVideoResponse"]["raiMediaFilteredReasons"]
    update = operation_update(body, now=NOW)
    assert update.error is not None and update.error.code == "moderation_blocked"


def test_failure_messages_carry_the_native_code():
    update = operation_update(fixture("poll_failed"), now=NOW)
    assert update.error is not None
    assert update.error.message == "INTERNAL: internal error while generating the video"
    for body in (fixture("poll_no_video"), {"name": NAME, "done": True}):
        update = operation_update(body, now=NOW)
        assert update.error is not None and update.error.message == "upstream produced no video"


def test_generated_videos_is_not_the_wire_name():
    body = {
        "name": NAME,
        "done": True,
        "response": {"generateVideoResponse": {"generatedVideos": [{"video": {"uri": "x"}}]}},
    }
    update = operation_update(body, now=NOW)
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "generation_failed"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"code": 1, "message": "cancelled"}, "cancelled"),
        ({"code": 2, "message": "unknown"}, "generation_failed"),
        ({"code": 3, "message": "durationSeconds is invalid"}, "invalid_request"),
        ({"code": 3, "message": "Blocked: violates our usage guidelines"}, "moderation_blocked"),
        ({"code": 4, "message": "deadline"}, "upstream_error"),
        ({"code": 7, "message": "denied"}, "upstream_auth_failed"),
        ({"code": 8, "message": "try later"}, "rate_limit_exceeded"),
        ({"code": 8, "message": "check your plan and billing details"}, "insufficient_quota"),
        ({"code": 9, "message": "region"}, "invalid_request"),
        ({"code": 13, "message": "internal"}, "upstream_error"),
        ({"code": 14, "message": "unavailable"}, "upstream_error"),
        ({"code": 16, "message": "token"}, "upstream_auth_failed"),
        ({"status": "INTERNAL", "message": "no number"}, "upstream_error"),
        ({"code": 500, "message": "an HTTP number"}, "upstream_error"),
        ({"code": 99, "message": "new"}, "generation_failed"),
        ({}, "generation_failed"),
    ],
)
def test_operation_error_codes(error: dict[str, Any], code: str):
    assert operation_error(error).code == code


def test_an_unconfirmed_progress_field_is_used_when_present():
    body = {"name": NAME, "metadata": {"progressPercent": 40}}
    assert operation_update(body, now=NOW).progress == 40
    assert operation_update({"name": NAME, "metadata": {"progress": 100}}, now=NOW).progress == 95


def test_an_unknown_done_value_keeps_the_status_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
):
    # the parser names it; the relay hands it to note_unknown_status, which logs once a channel
    caplog.set_level(logging.DEBUG, logger="relay.providers")
    odd = "maybe-" + secrets.token_hex(3)
    veo = provider()
    for _ in range(2):
        update = operation_update({"name": NAME, "done": odd}, now=NOW)
        assert update.status is None
        assert update.unknown_status is not None and odd in update.unknown_status
        veo.note_unknown_status(update.unknown_status)
    assert sum(odd in r.getMessage() for r in caplog.records) == 1


def test_a_200_poll_holding_an_error_envelope_raises():
    _, body = native_error("not_found")
    with pytest.raises(TaskNotFound):
        operation_update(body, now=NOW)


@pytest.mark.parametrize(
    ("name", "on_operation", "error_type", "code", "message"),
    [
        ("not_found", True, TaskNotFound, "task_expired", "NOT_FOUND: operation not found"),
        ("auth", False, AuthFailed, "upstream_auth_failed", "INVALID_ARGUMENT: API key not valid."),
        ("auth", True, AuthFailed, "upstream_auth_failed", None),
        ("key_blocked", False, AuthFailed, "upstream_auth_failed", None),
        ("rate_limit", False, RateLimited, "rate_limit_exceeded",
         "RESOURCE_EXHAUSTED: quota exceeded for this model"),
        ("quota", False, QuotaExceeded, "insufficient_quota", None),
        ("bad_request", False, Rejected, "invalid_request",
         "INVALID_ARGUMENT: durationSeconds must be 8 for 1080p"),
        ("content_policy", False, Rejected, "moderation_blocked",
         "INVALID_ARGUMENT: prompt blocked by safety filters"),
        ("unknown_model", False, Rejected, "invalid_request", "NOT_FOUND: model not found"),
        ("unavailable", False, Unavailable, "upstream_error", None),
        ("internal", True, Unavailable, "upstream_error", None),
    ],
)  # fmt: skip
def test_every_error_body_of_the_page(
    name: str, on_operation: bool, error_type: type, code: str, message: str | None
):
    status, body = native_error(name)
    raw = json.dumps(body)
    exc = classify(status, {}, body, raw, on_operation=on_operation)
    assert type(exc) is error_type
    assert exc.code == code
    if message:
        assert exc.message == message
    assert exc.detail is not None and exc.detail.startswith(f"HTTP {status}: ")


def test_rate_limit_waits_for_retry_info():
    status, body = native_error("rate_limit")
    exc = classify(status, {"Retry-After": "3"}, body, on_operation=False)
    assert isinstance(exc, RateLimited) and exc.retry_after == 41.0
    billing = json.loads(json.dumps(body))
    billing["error"]["message"] = "check your plan and billing details"
    exc = classify(status, {}, billing, on_operation=False)
    assert isinstance(exc, RateLimited)  # RetryInfo present: wait, it is not the plan
    status, bare = (
        429,
        {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
    )
    exc = classify(status, {"retry-after": "7"}, bare, on_operation=False)
    assert isinstance(exc, RateLimited) and exc.retry_after == 7.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("41s", 41.0), ("0.5s", 0.5), ({"seconds": 3, "nanos": 500000000}, 3.5), ("x", None),
     (None, None), ("-2s", 0.0)],
)  # fmt: skip
def test_retry_delay_durations(value: Any, seconds: float | None):
    assert duration(value) == seconds


@pytest.mark.parametrize(
    ("status", "body", "on_operation", "error_type", "maybe_created"),
    [
        (504, None, False, Unavailable, True),
        (503, None, False, Unavailable, False),
        (502, "<html>bad gateway</html>", False, Unavailable, False),
        (401, None, True, AuthFailed, None),
        (404, None, True, TaskNotFound, None),
        (404, None, False, Rejected, None),
        (400, {"error": {"code": 400, "message": "FAILED", "status": "FAILED_PRECONDITION"}},
         False, Rejected, None),
        (200, {"error": {"code": 429, "message": "later"}}, True, RateLimited, None),
    ],
)  # fmt: skip
def test_statuses_without_the_page_bodies(
    status: int, body: Any, on_operation: bool, error_type: type, maybe_created: bool | None
):
    exc = classify(status, {}, body, on_operation=on_operation)
    assert type(exc) is error_type
    if maybe_created is not None:
        assert isinstance(exc, Unavailable) and exc.maybe_created is maybe_created


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("durationSeconds must be 8 for 1080p", "seconds"),
        ("aspectRatio must be 16:9 or 9:16", "size"),
        ("image.mimeType must be image/png", "input_reference"),
        ("something else", None),
    ],
)
def test_bad_requests_name_the_client_field(message: str, param: str | None):
    body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    exc = classify(400, {}, body, on_operation=False)
    assert isinstance(exc, Rejected) and exc.param == param and not exc.moderation


# --- the adapter over a stubbed wire ----------------------------------------------------------


class StubHttp:
    """Answers the adapter's calls from a list, and keeps what it sent."""

    def __init__(self, *replies: Reply, image: bytes = png()) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.image = image
        self.fetched: list[str] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)

    async def fetch_image(self, url: str, limit: int) -> bytes:
        self.fetched.append(url)
        return self.image


def answer(body: Any, status: int = 200) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def stubbed(
    *replies: Reply, base_url: str | None = None, image: bytes = png()
) -> tuple[VeoProvider, StubHttp]:
    http = StubHttp(*replies, image=image)
    channel = ChannelView("veo", NoOptions(), base_url=base_url, api_key="AIza-stub")
    return VeoProvider(channel, http), http  # type: ignore[arg-type]


def ref(state: dict[str, Any] | None = None, status: str = "in_progress") -> TaskRef:
    return TaskRef(
        "video_x",
        NAME,
        "veo-3.1-generate-preview",
        state or {},
        NOW,
        "8",
        "1280x720",
        status,  # type: ignore[arg-type]
    )


async def test_submit_and_poll_over_the_wire():
    veo, http = stubbed(answer(fixture("submit")), answer(fixture("poll_running")))
    image = Image(url="https://img.example.test/frame.png")
    submitted = await veo.submit(*job(images=(image,)))
    assert submitted.upstream_id == NAME
    assert (submitted.seconds, submitted.size, submitted.status) == ("8", "1280x720", "queued")
    assert set(submitted.state) == {"key_id"} and "AIza" not in json.dumps(submitted.state)
    assert (await veo.poll(ref())).status == "in_progress"
    (m1, u1, k1), (m2, u2, k2) = http.sent
    base = "https://generativelanguage.googleapis.com"
    assert (m1, u1) == ("POST", f"{base}/v1beta/models/veo-3.1-generate-preview:predictLongRunning")
    assert (m2, u2) == ("GET", f"{base}/v1beta/{NAME}")
    for kwargs in (k1, k2):
        assert kwargs["headers"] == {"x-goog-api-key": "AIza-stub"}
        assert not kwargs.get("params")
    assert http.fetched == ["https://img.example.test/frame.png"]
    assert k1["json"]["instances"][0]["image"] == PNG_INLINE


async def test_a_base_url_given_with_its_version():
    veo, http = stubbed(
        answer(fixture("poll_running")),
        base_url="https://generativelanguage.googleapis.com/v1beta/",
    )
    await veo.poll(ref())
    assert http.sent[0][1] == f"https://generativelanguage.googleapis.com/v1beta/{NAME}"


async def test_a_fetched_url_that_is_no_image_is_refused():
    veo, http = stubbed(image=b"<html>not an image</html>")
    with pytest.raises(Rejected) as refused:
        await veo.submit(*job(images=(Image(url="https://img.example.test/x"),)))
    assert refused.value.param == "input_reference"
    assert http.sent == []


async def test_submit_errors_are_classified():
    status, body = native_error("unknown_model")
    veo, _ = stubbed(answer(body, status))
    with pytest.raises(Rejected) as refused:
        await veo.submit(*job())
    assert refused.value.param == "model"


async def test_content_is_the_file_uri_with_the_key_on_its_own_origin():
    veo, _ = stubbed()
    uri = "https://generativelanguage.googleapis.com/v1beta/files/3j6svp4106e7:download?alt=media"
    source = await veo.content(ref({"video_uri": uri}, "completed"), "video")
    assert isinstance(source, Remote)
    assert source.url == uri
    assert source.headers == {"x-goog-api-key": "AIza-stub"}
    assert source.trusted is True and source.content_type == "video/mp4"


async def test_content_behind_a_proxy_base_url():
    veo, _ = stubbed(base_url="https://gemini-proxy.example.test")
    google = "https://generativelanguage.googleapis.com/v1beta/files/f:download?alt=media"
    source = await veo.content(ref({"video_uri": google}, "completed"), "video")
    assert isinstance(source, Remote)
    assert source.headers == {"x-goog-api-key": "AIza-stub"}  # Google's own host: keyed
    assert source.trusted is False  # but not the operator's host: guarded
    elsewhere = "https://files.elsewhere.example.test/v.mp4"
    source = await veo.content(ref({"video_uri": elsewhere}, "completed"), "video")
    assert isinstance(source, Remote) and source.headers == {} and not source.trusted


async def test_inline_results_are_read_again_and_decoded():
    veo, http = stubbed(answer(fixture("poll_succeeded_inline")))
    source = await veo.content(ref({"video_uri": None, "inline_video": True}, "completed"), "video")
    assert source == InlineBytes(base64.b64decode("AAAAGGZ0eXBtcDQy"), "video/mp4")
    [(method, url, kwargs)] = http.sent
    assert (method, url) == ("GET", f"https://generativelanguage.googleapis.com/v1beta/{NAME}")
    assert kwargs["headers"] == {"x-goog-api-key": "AIza-stub"}
    assert kwargs["limit"] == veo_module.INLINE_REPLY_BYTES  # room for the base64


async def test_an_inline_result_that_cannot_be_read_again_says_why():
    status, body = native_error("not_found")
    veo, _ = stubbed(answer(body, status))
    completed = ref({"video_uri": None, "inline_video": True}, "completed")
    with pytest.raises(TaskNotFound):
        await veo.content(completed, "video")
    broken = fixture("poll_succeeded_inline")
    broken["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["encodedVideo"] = (
        "***"
    )
    veo, _ = stubbed(answer(broken))
    with pytest.raises(VariantUnavailable, match="not readable"):
        await veo.content(completed, "video")


async def test_an_inline_result_grown_past_the_bound_is_a_clear_404(
    monkeypatch: pytest.MonkeyPatch,
):
    veo, http = stubbed()

    async def too_large(*args: Any, **kwargs: Any) -> Reply:
        raise ReplyTooLarge("the upstream answer was too large", maybe_created=True)

    monkeypatch.setattr(http, "request", too_large)
    completed = ref({"video_uri": None, "inline_video": True}, "completed")
    with pytest.raises(VariantUnavailable) as refused:
        await veo.content(completed, "video")
    assert refused.value.message.startswith("veo returned the video inline")
    update = await veo.poll(ref())
    assert update.status == "failed" and update.error is not None
    assert update.error.message == refused.value.message


async def test_missing_results():
    veo, _ = stubbed(answer(fixture("poll_running")), answer(fixture("poll_succeeded")))
    with pytest.raises(NotReady):
        await veo.content(ref({}, "completed"), "video")  # asked again: still running
    source = await veo.content(ref({}, "completed"), "video")  # asked again: there now
    assert isinstance(source, Remote) and source.url.endswith(":download?alt=media")
    with pytest.raises(VariantUnavailable):
        await veo.content(ref({"video_uri": "https://x.test/v"}, "completed"), "thumbnail")
    assert await veo.refresh_content(ref({"video_uri": "https://x.test/v"}), "video") is None


def test_config_needs_an_api_key(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
):
    monkeypatch.setitem(REGISTRY, "veo", VeoProvider)
    channel = {"name": "g", "provider": "veo", "api_key": "k", "models": ["sora-2"]}
    assert make_config(channels=[channel]).channels[0].base_url is None  # Google's by default
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- the fake on its own ------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[VeoFake]:
    upstream = VeoFake()
    await upstream.start()
    yield upstream
    await upstream.close()


async def _post(fake: VeoFake, body: Any, model: str = "veo-3.1-generate-preview") -> Any:
    url = fake.url(f"/v1beta/models/{model}:predictLongRunning")
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"x-goog-api-key": fake.api_key}) as resp,
    ):
        return resp.status, await resp.json()


async def test_fake_takes_the_unconfirmed_forms_and_refuses_vertex_fields(fake: VeoFake):
    b64 = base64.b64encode(png()).decode()
    image = {"inlineData": {"mimeType": "image/png", "data": b64}}
    both = {
        "instances": [{"prompt": "x", "image": image}],
        "parameters": {"durationSeconds": "8", "personGeneration": "allow_adult"},
    }
    assert (await _post(fake, both))[0] == 200
    status, body = await _post(fake, {"instances": [{"prompt": "x"}], "parameters": {"seed": 1}})
    assert status == 400 and "`seed` isn't supported" in body["error"]["message"]
    uri = {
        "instances": [{"prompt": "x", "image": {"gcsUri": "gs://b/i.png", "mimeType": "image/png"}}]
    }
    assert (await _post(fake, uri))[0] == 400
    status, body = await _post(
        fake, {"instances": [{"prompt": "x"}], "parameters": {"resolution": "1080p",
                                                             "durationSeconds": 4}}
    )  # fmt: skip
    assert (status, body["error"]["message"]) == (400, "durationSeconds must be 8 for 1080p")
    status, body = await _post(fake, {"instances": [{"prompt": "x"}]}, model="veo-9")
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


async def test_fake_expires_signed_urls_but_not_the_file_uri(fake: VeoFake):
    """The contract hook expire_urls(): the storage URLs signed so far answer 403; the Files API
    URI stays, and its next download signs a working one (so no poll needs to renew it)."""
    status, started = await _post(fake, {"instances": [{"prompt": "x"}]})
    assert status == 200
    op = fake.operations[started["name"]]
    uri = fake.url(f"/v1beta/files/{op.file_id}:download?alt=media")
    key = {"x-goog-api-key": fake.api_key}
    async with aiohttp.ClientSession() as session:
        async with session.get(uri, headers=key, allow_redirects=False) as resp:
            assert resp.status == 302
            signed = resp.headers["Location"]
        fake.expire_urls()
        # fetched exactly as received, as the relay does (yarl would unescape %40 and %2F)
        async with session.get(URL(signed, encoded=True)) as resp:
            assert resp.status == 403
        async with session.get(uri, headers=key, allow_redirects=False) as resp:
            fresh = resp.headers["Location"]
        async with session.get(URL(fresh, encoded=True)) as resp:
            assert (resp.status, await resp.read()) == (200, VIDEO)


# --- through the relay ------------------------------------------------------------------------


@pytest.fixture
def veo_config(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> Callable[[VeoFake], Config]:
    monkeypatch.setitem(REGISTRY, "veo", VeoProvider)

    def make(upstream: VeoFake) -> Config:
        return make_config(
            storage={"keep_videos": False}, channels=[upstream.channel(upstream.base_url)]
        )

    return make


@pytest.fixture
async def relay(
    fake: VeoFake, veo_config: Callable[[VeoFake], Config], start_relay: Callable[[Config], Any]
) -> Relay:
    return await start_relay(veo_config(fake))  # type: ignore[no-any-return]


async def videos(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


async def download(relay: Relay, video_id: str) -> aiohttp.ClientResponse:
    return await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())


def no_key_but_the_header(fake: VeoFake) -> None:
    """Every API call carried the key in x-goog-api-key: never Bearer, never ?key=."""
    assert fake.requests
    for r in fake.requests:
        assert r.headers.get("x-goog-api-key") == fake.api_key, r.path
        assert "Authorization" not in r.headers and "key" not in r.query


async def test_text_to_video_end_to_end(relay: Relay, fake: VeoFake):
    fake.polls_to_finish = 3
    video = await relay.create(model="sora-2", seconds="8", size="1280x720")
    assert (video["seconds"], video["size"], video["status"]) == ("8", "1280x720", "queued")
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["expires_at"] >= done["completed_at"] + 172800 - 5
    [create] = fake.creates()
    assert create.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    assert create.json() == {
        "instances": [{"prompt": "a paper airplane over a lake"}],
        "parameters": {
            "aspectRatio": "16:9",
            "durationSeconds": 8,
            "resolution": "720p",
            "sampleCount": 1,
        },
    }
    [op] = fake.operations.values()
    polls = fake.calls("/operations/", "GET")
    assert len(polls) >= 3 and {p.path for p in polls} == {f"/v1beta/{op.name}"}

    resp = await download(relay, video["id"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    [dl] = fake.calls(":download")
    assert dl.query == {"alt": "media"}
    no_key_but_the_header(fake)
    # the signed storage URL on the other server was reached, without the key
    assert [r.path for r in fake.storage_requests] == [
        f"/generativelanguage-files/{op.file_id}.mp4"
    ]
    assert fake.storage_keys_seen() == []
    assert fake.cdn_stats.finished == 1


async def test_range_through_the_redirect(relay: Relay, fake: VeoFake):
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=10-19"}
    )
    assert resp.status == 206 and await resp.read() == VIDEO[10:20]
    assert fake.cdn_stats.range_headers == ["bytes=10-19"]
    assert fake.storage_keys_seen() == []


async def test_a_download_answered_directly(relay: Relay, fake: VeoFake):
    fake.redirect_download = False
    fake.running_done_false = True
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await download(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert fake.storage_requests == []


@pytest.mark.parametrize("form", ["data_url", "https_url", "upload"])
async def test_images_go_up_as_inline_bytes(relay: Relay, fake: VeoFake, form: str):
    fake.files["frame.jpg"] = jpeg()
    if form == "upload":
        form_data = aiohttp.FormData()
        form_data.add_field("prompt", "animate this")
        form_data.add_field("input_reference", png(), filename="f.png", content_type="image/png")
        resp = await relay.client.post("/v1/videos", data=form_data, headers=auth())
        assert resp.status == 200
        video, expected = await resp.json(), PNG_INLINE
    elif form == "data_url":
        video = await relay.create(input_reference={"image_url": data_url(png())})
        expected = PNG_INLINE
    else:
        video = await relay.create(input_reference={"image_url": fake.cdn_url("frame.jpg")})
        expected = JPEG_INLINE
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    sent = create.json()
    assert sent["instances"][0]["image"] == expected
    assert sent["parameters"]["personGeneration"] == "allow_adult"


async def test_first_last_and_reference_images(relay: Relay, fake: VeoFake):
    last = data_url(jpeg(), "image/jpeg")
    content = [
        {"type": "image_url", "role": "last_frame", "image_url": {"url": last}},
        {"type": "image_url", "role": "first_frame", "image_url": {"url": data_url(png())}},
    ]
    video = await relay.create(input_reference={"content": content}, seconds="4")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    instance = fake.creates()[-1].json()["instances"][0]
    assert (instance["image"], instance["lastFrame"]) == (PNG_INLINE, JPEG_INLINE)
    refs = [
        {"type": "image_url", "role": "reference_image", "image_url": {"url": data_url(png())}}
    ] * 2
    video = await relay.create(input_reference={"content": refs}, seconds="4")
    assert video["seconds"] == "8"  # reference images: 8 s only
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert (
        fake.creates()[-1].json()["instances"][0]["referenceImages"]
        == [{"image": PNG_INLINE, "referenceType": "asset"}] * 2
    )


async def test_veo2_and_4k(relay: Relay, fake: VeoFake):
    video = await relay.create(model="veo-2.0-generate-001", seconds="4", size="1920x1080")
    assert (video["seconds"], video["size"]) == ("5", "1280x720")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert "resolution" not in fake.creates()[-1].json()["parameters"]
    video = await relay.create(seconds="4", size="2160x3840")
    assert (video["seconds"], video["size"]) == ("8", "2160x3840")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    params = fake.creates()[-1].json()["parameters"]
    assert (params["aspectRatio"], params["resolution"]) == ("9:16", "4k")


async def test_hints_and_metadata_end_to_end(relay: Relay, fake: VeoFake):
    video = await relay.create(
        negative_prompt="blur",
        seed=5,
        generate_audio=False,
        metadata={"parameters": {"enhancePrompt": False}, "instances": [{"prompt": "other"}]},
    )
    assert (await relay.wait(video["id"]))["status"] == "completed"  # the fake refuses seed
    body = fake.creates()[-1].json()
    assert body["instances"] == [{"prompt": "a paper airplane over a lake"}]
    assert body["parameters"]["negativePrompt"] == "blur"
    assert body["parameters"]["enhancePrompt"] is False
    assert "seed" not in body["parameters"] and "generateAudio" not in body["parameters"]


@pytest.mark.parametrize(
    ("prompt", "knobs", "code", "message"),
    [
        ("a storm #fail", {}, "upstream_error",
         "INTERNAL: internal error while generating the video"),
        ("a storm #moderation", {}, "moderation_blocked", RAI_REASON),
        ("a storm #moderation", {"moderation": "error"}, "moderation_blocked",
         "INVALID_ARGUMENT: The video could not be generated because it was blocked by safety "
         "filters."),
        ("a storm", {"result": "empty"}, "generation_failed", "upstream produced no video"),
    ],
)  # fmt: skip
async def test_failed_operations(
    relay: Relay, fake: VeoFake, prompt: str, knobs: dict[str, str], code: str, message: str
):
    for knob, value in knobs.items():
        setattr(fake, knob, value)
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": message}
    assert (await download(relay, video["id"])).status == 404


@pytest.mark.parametrize("inline_bytes", [4096, None])  # None: the whole demo video, ~170 KB
async def test_an_inline_result_is_served_like_a_file(
    relay: Relay, fake: VeoFake, inline_bytes: int | None
):
    fake.result = "inline"
    fake.inline_bytes = inline_bytes
    expected = VIDEO[:inline_bytes] if inline_bytes is not None else VIDEO
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=3)
    assert done["status"] == "completed" and done["expires_at"] is not None
    [op] = fake.operations.values()
    reads = len(fake.calls("/operations/", "GET"))
    url = f"/v1/videos/{video['id']}/content"
    resp = await download(relay, video["id"])
    assert resp.status == 200 and await resp.read() == expected
    assert resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Length"] == str(len(expected))
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{video["id"]}.mp4"'
    assert resp.headers["Cache-Control"] == "private" and resp.headers["ETag"]
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=100-1099"})
    assert resp.status == 206 and await resp.read() == expected[100:1100]
    assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(expected)}"
    resp = await relay.client.head(url, headers=auth())
    assert resp.status == 200 and await resp.read() == b""
    assert resp.headers["Content-Length"] == str(len(expected))
    resp = await relay.client.get(url, headers={**auth(), "Range": f"bytes={len(expected)}-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{len(expected)}"
    # every answer read the operation again (no copies in this config), with the key
    assert len(fake.calls("/operations/", "GET")) == reads + 4
    assert {r.path for r in fake.calls("/operations/", "GET")} == {f"/v1beta/{op.name}"}
    assert fake.calls(":download") == [] and fake.storage_requests == []
    no_key_but_the_header(fake)


async def test_an_inline_result_is_stored_and_outlives_the_operation(
    fake: VeoFake,
    make_config: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
):
    monkeypatch.setitem(REGISTRY, "veo", VeoProvider)
    config = make_config(storage={"keep_videos": True}, channels=[fake.channel(fake.base_url)])
    relay: Relay = await start_relay(config)
    fake.result = "inline"
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    path = data_dir / f"videos/{video['id']}/video.mp4"
    for _ in range(500):
        if (await relay.get(video["id"]))["expires_at"] is None:
            break
        await asyncio.sleep(0.02)
    assert path.read_bytes() == VIDEO
    fake.forget_tasks()  # the operation is gone upstream: only the copy has the video
    url = f"/v1/videos/{video['id']}/content"
    resp = await download(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    resp = await relay.client.get(url, headers={**auth(), "Range": "bytes=-10"})
    assert resp.status == 206 and await resp.read() == VIDEO[-10:]


async def test_an_inline_result_over_the_bound_fails_with_a_clear_error(
    relay: Relay, fake: VeoFake, monkeypatch: pytest.MonkeyPatch
):
    fake.result = "inline"
    # a full demo video inline is ~230 KB of JSON: over a limit of 64 KiB, it is not even read
    monkeypatch.setattr(veo_module, "INLINE_REPLY_BYTES", 64 * 1024)
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=3)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "generation_failed"
    assert done["error"]["message"].startswith("veo returned the video inline")
    assert "32 MiB" in done["error"]["message"]
    resp = await download(relay, video["id"])
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "video_failed"


async def test_an_inline_result_read_but_over_the_bound_fails_too(
    relay: Relay, fake: VeoFake, monkeypatch: pytest.MonkeyPatch
):
    fake.result = "inline"
    fake.inline_bytes = 20_000
    monkeypatch.setattr(veo_response, "INLINE_MAX_BYTES", 10_000)
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=3)
    assert done["status"] == "failed"
    assert done["error"]["message"].startswith("veo returned the video inline")


async def test_reject_is_a_content_policy_400(relay: Relay, fake: VeoFake):
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject this"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "content_policy_violation"
    assert body["error"]["message"] == "INVALID_ARGUMENT: prompt blocked by safety filters"
    assert await videos(relay) == []


@pytest.mark.parametrize(("kind", "param"), [("bad_request", "seconds"), ("region", None)])
async def test_bad_requests_are_400s(relay: Relay, fake: VeoFake, kind: str, param: str | None):
    fake.fail_next("submit", kind)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["param"] == param
    assert await videos(relay) == []


@pytest.mark.parametrize(
    "kind", ["rate_limit", "quota", "internal", "unavailable", "auth", "blocked"]
)
async def test_submit_errors_leave_no_task(relay: Relay, fake: VeoFake, kind: str):
    fake.fail_next("submit", kind)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    await refused_upstream(resp, rate_limited=kind == "rate_limit")
    assert await videos(relay) == []
    assert len(fake.requests) == 1


async def test_a_gateway_timeout_on_submit_is_not_retried(relay: Relay, fake: VeoFake):
    fake.fail_next("submit", "timeout")
    video = await relay.create()
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_error"
    assert len(fake.creates()) == 1


async def test_a_wrong_key_gets_the_native_400(
    fake: VeoFake, veo_config: Callable[[VeoFake], Config], start_relay: Callable[[Config], Any]
):
    right = fake.api_key
    fake.api_key = "AIza-wrong-" + secrets.token_hex(4)
    relay: Relay = await start_relay(veo_config(fake))
    fake.api_key = right
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    assert resp.status == 502
    assert await videos(relay) == []
    [create] = fake.creates()  # answered with the page's 400 API_KEY_INVALID
    assert create.headers["x-goog-api-key"] != right


@pytest.mark.parametrize(
    ("kind", "retry_delay"), [("rate_limit", "0.1s"), ("unavailable", None), ("internal", None)]
)
async def test_poll_errors_leave_the_task_running(
    relay: Relay, fake: VeoFake, kind: str, retry_delay: str | None
):
    fake.polls_to_finish = 3
    fake.fail_next("poll", kind, retry_delay)
    fake.fail_next("poll", kind, retry_delay)
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=15)
    assert done["status"] == "completed"
    assert len(fake.calls("/operations/", "GET")) >= 5


async def test_an_operation_gone_upstream_is_expired(relay: Relay, fake: VeoFake):
    fake.polls_to_finish = 50
    video = await relay.create()
    fake.operations.clear()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")


async def test_a_file_past_its_two_days_is_gone(relay: Relay, fake: VeoFake):
    video = await relay.create()
    await relay.wait(video["id"])
    fake.expire_files()
    resp = await download(relay, video["id"])
    assert resp.status == 404
    assert fake.storage_requests == []


async def test_remix_is_unsupported_before_any_call(relay: Relay, fake: VeoFake):
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(
    ("model", "content"),
    [
        ("sora-2", [{"type": "video_url", "video_url": {"url": "https://v.example.test/a.mp4"}}]),
        ("veo-3.0-generate-001", [{"type": "image_url", "role": "reference_image",
                                   "image_url": {"url": "https://img.example.test/r.png"}}]),
        ("sora-2", [{"type": "image_url", "role": "last_frame",
                     "image_url": {"url": "https://img.example.test/l.png"}}]),
    ],
)  # fmt: skip
async def test_unsupported_inputs_never_reach_veo(
    relay: Relay, fake: VeoFake, model: str, content: list[dict[str, Any]]
):
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "model": model, "input_reference": {"content": content}},
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_official_sdk_flow(relay: Relay, fake: VeoFake):
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        video = await client.videos.create_and_poll(prompt="a lighthouse at dusk", seconds="8")
        assert video.status == "completed" and video.seconds == "8" and video.size == "720x1280"
        assert (await client.videos.download_content(video.id)).content == VIDEO
        framed = await client.videos.create_and_poll(
            prompt="animate this", seconds="4", input_reference=("frame.png", png(), "image/png")
        )
        assert framed.status == "completed" and framed.seconds == "4"
        assert fake.creates()[-1].json()["instances"][0]["image"] == PNG_INLINE
    finally:
        await client.close()
    assert fake.storage_keys_seen() == []


async def test_the_key_never_leaks(
    veo_config: Callable[[VeoFake], Config],
    start_relay: Callable[[Config], Any],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    canary = "AIzaSy-canary-" + secrets.token_hex(16)
    upstream = VeoFake(api_key=canary)
    await upstream.start()
    try:
        relay: Relay = await start_relay(veo_config(upstream))
        seen: list[str] = []
        ok = await relay.create(input_reference={"image_url": data_url(png())})
        seen.append(json.dumps(await relay.wait(ok["id"])))
        resp = await download(relay, ok["id"])
        seen.append((await resp.read()).decode("latin-1"))
        for prompt in ("x #fail", "x #moderation"):
            failed = await relay.create(prompt=prompt)
            seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("poll", "unavailable")
        upstream.fail_next("poll", "auth")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        upstream.expire_files()
        seen.append(await (await download(relay, polled["id"])).text())
        for kind in ("auth", "bad_request", "rate_limit", "quota"):
            upstream.fail_next("submit", kind)
            resp = await relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        listing = await relay.client.get("/v1/videos", headers=auth())
        seen.append(await listing.text())
        assert len(seen) == 12
        assert all(canary not in text for text in seen)
        assert canary not in caplog.text
        assert all(canary not in r.getMessage() for r in caplog.records)
        assert upstream.storage_keys_seen() == []
        assert upstream.storage_requests  # the redirect target was reached
        no_key_but_the_header(upstream)
    finally:
        await upstream.close()


async def test_the_key_never_leaks_with_inline_results(
    make_config: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setitem(REGISTRY, "veo", VeoProvider)
    canary = "AIzaSy-canary-" + secrets.token_hex(16)
    upstream = VeoFake(api_key=canary)
    upstream.result = "inline"
    await upstream.start()
    try:
        config = make_config(
            storage={"keep_videos": True}, channels=[upstream.channel(upstream.base_url)]
        )
        relay: Relay = await start_relay(config)
        seen: list[str] = []
        ok = await relay.create()
        seen.append(json.dumps(await relay.wait(ok["id"])))
        url = f"/v1/videos/{ok['id']}/content"
        for method, headers in (
            ("GET", {}),
            ("GET", {"Range": "bytes=0-99"}),
            ("GET", {"Range": "bytes=999999999-"}),
            ("HEAD", {}),
        ):
            resp = await relay.client.request(method, url, headers={**auth(), **headers})
            seen.append(json.dumps(dict(resp.headers)) + (await resp.read()).decode("latin-1"))
        monkeypatch.setattr(veo_module, "INLINE_REPLY_BYTES", 64 * 1024)
        too_large = await relay.create()
        seen.append(json.dumps(await relay.wait(too_large["id"])))
        seen.append(await (await download(relay, too_large["id"])).text())
        upstream.forget_tasks()
        seen.append((await (await download(relay, ok["id"])).read()).decode("latin-1"))
        assert len(seen) == 8
        assert all(canary not in text for text in seen)
        assert canary not in caplog.text
        assert all(canary not in r.getMessage() for r in caplog.records)
        no_key_but_the_header(upstream)
    finally:
        await upstream.close()
