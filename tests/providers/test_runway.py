"""Runway: translation on the page's recorded bodies, the adapter on the wire, then the relay
against the fake (tests/fakes/runway.py), the official SDK, and a credential canary."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.providers.base import ChannelView
from relay.providers.errors import (
    AuthFailed,
    CancelRefused,
    NotReady,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from relay.providers.http import ChannelHttp, Reply
from relay.providers.runway import RunwayOptions, RunwayProvider
from relay.providers.runway.inputs import (
    IMAGE_DATA_URI_MAX,
    Resolver,
    data_uri,
    fits_data_uri,
    head_problem,
    url_problem,
)
from relay.providers.runway.models import I2V, T2V, accepts, duration, model_of, pick_ratio
from relay.providers.runway.request import Inputs, build, remix_body, utf16_units
from relay.providers.runway.response import classify, failure_code, task_error, task_id, update
from relay.upstream import Http
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.runway import FAILURES, MODELS, VERSION, Canned, RunwayFake
from tests.images import data_url, jpeg, png

FIXTURES = Path(__file__).parent / "fixtures" / "runway"
NOW = 1_750_000_000.0
DAY = 86400.0
FIRST = "https://assets.example.com/first-frame.png"
LAST = "https://assets.example.com/last-frame.png"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on (`model`)."""
    model = fields.pop("model", "gen4.5")
    fields.setdefault("prompt", "the kite climbs slowly as the camera tilts up")
    fields.setdefault("seconds", 5)
    parsed = Size.parse(fields.pop("size", "1280x720"))
    assert parsed is not None
    return VideoRequest(model=model, size=parsed, **fields), model


def native(inputs: Inputs | None = None, **fields: Any) -> Any:
    request, model = job(**fields)
    return build(request, model, inputs or Inputs())


def provider(**options: Any) -> RunwayProvider:
    return RunwayProvider(ChannelView("runway", RunwayOptions(**options), api_key="k"), None)


IMAGE = Image(url=FIRST)


# --- requests -------------------------------------------------------------------------------


def test_image_request_is_the_page_example():
    example = fixture("request_image_gen45")
    sent = native(
        Inputs(first=FIRST),
        prompt=example["promptText"],
        images=(IMAGE,),
        seed=1234,
        metadata={"contentModeration": {"publicFigureThreshold": "auto"}},
    )
    assert (sent.endpoint, sent.body) == ("image_to_video", example)
    assert (sent.seconds, sent.size, sent.dropped) == ("5", "1280x720", ())


def test_text_request_is_the_page_example():
    example = fixture("request_text_veo31")
    sent = native(
        model="veo3.1",
        prompt=example["promptText"],
        seconds=8,
        size="1920x1080",
        generate_audio=True,
        negative_prompt="text, watermark",
    )
    assert (sent.endpoint, sent.body) == ("text_to_video", example)
    assert (sent.seconds, sent.size) == ("8", "1920x1080")
    assert "prompt_text" not in json.dumps(sent.body)  # camelCase on the wire, never snake_case


def test_remix_body_is_the_page_example():
    example = fixture("request_remix_aleph2")
    request, _ = job(prompt="make it snow", seed=42, metadata={"videoUri": "x", "model": "m"})
    assert remix_body(request, "aleph2", example["videoUri"]) == example


def test_first_and_last_frames_go_as_the_array_form():
    last = Image(role="last_frame", url=LAST)
    sent = native(Inputs(first=FIRST, last=LAST), model="veo3.1", images=(IMAGE, last))
    assert sent.body["promptImage"] == [
        {"uri": FIRST, "position": "first"},
        {"uri": LAST, "position": "last"},
    ]


def test_seedance_references_and_media():
    refs = ("https://a.example.com/1.png", "https://a.example.com/2.png")
    inputs = Inputs(references=refs, videos=("https://a.example.com/v.mp4",),
                    audios=("https://a.example.com/a.mp3",))  # fmt: skip
    ref = Image(role="reference_image", url=refs[0])
    sent = native(inputs, model="seedance2", images=(ref, ref), seconds=7, generate_audio=False)
    assert sent.endpoint == "image_to_video"
    assert sent.body["promptImage"] == [{"uri": u} for u in refs]  # no position: references
    assert sent.body["referenceVideos"] == [{"uri": "https://a.example.com/v.mp4"}]
    assert sent.body["referenceAudio"] == [{"uri": "https://a.example.com/a.mp3"}]
    assert (sent.body["duration"], sent.body["audio"]) == (7, False)  # free range: as asked


@pytest.mark.parametrize(
    ("size", "resolution", "reported"),
    [("1280x720", "720P", "1280x720"), ("1920x1080", "1080P", "1920x1080"),
     ("9:16", "720P", "720x1280"), ("3840x2160", "1080P", "3840x2160")],
)  # fmt: skip
def test_happyhorse_image_jobs_send_a_resolution_and_no_ratio(
    size: str, resolution: str, reported: str
):
    sent = native(Inputs(first=FIRST), model="happyhorse_1_0", images=(IMAGE,), size=size)
    assert sent.body["resolution"] == resolution and "ratio" not in sent.body
    assert sent.size == reported  # the requested size: the image decides the aspect
    text = native(model="happyhorse_1_0", size="1440x1440")
    assert text.body["ratio"] == "1440:1440" and "resolution" not in text.body


@pytest.mark.parametrize(
    ("model", "seconds", "sent"),
    [
        ("gen4.5", 1, 2), ("gen4.5", 5, 5), ("gen4.5", 12, 10),
        ("gen4_turbo", 4, 5), ("gen4_turbo", 7, 5), ("gen4_turbo", 8, 10), ("gen4_turbo", 12, 10),
        ("veo3.1", 1, 4), ("veo3.1", 5, 6), ("veo3.1", 7, 8), ("veo3.1", 12, 8),
        ("veo3.1_fast", 6, 6), ("veo3", 4, 8), ("veo3", 12, 8),
        ("gemini_omni_flash", 1, 3), ("gemini_omni_flash", 12, 10),
        ("happyhorse_1_0", 7, 7), ("seedance2", 11, 11), ("some-new-model", 9, 9),
    ],
)  # fmt: skip
def test_duration_is_an_integer_snapped_per_model(model: str, seconds: int, sent: int):
    assert duration(model_of(model), seconds) == sent
    images = (IMAGE,) if model == "gen4_turbo" else ()
    body = native(Inputs(first=FIRST) if images else None, model=model, seconds=seconds,
                  images=images).body  # fmt: skip
    assert body["duration"] == sent and type(body["duration"]) is int


@pytest.mark.parametrize(
    ("model", "path", "size", "ratio"),
    [
        ("gen4.5", T2V, "1280x720", "1280:720"),  # an exact match passes through
        ("gen4.5", T2V, "1920x1080", "1280:720"),
        ("gen4.5", T2V, "720x720", "1280:720"),  # a square: landscape wins the tie
        ("gen4.5", T2V, "9:16", "720:1280"),
        ("gen4.5", I2V, "1104x832", "1104:832"),
        ("gen4.5", I2V, "1000x1000", "960:960"),
        ("gen4.5", I2V, "2560x1080", "1584:672"),
        ("gen4.5", I2V, "4:3", "1104:832"),
        ("veo3.1", T2V, "1920x1080", "1920:1080"),
        ("veo3.1", T2V, "720x720", "1280:720"),
        ("veo3.1", T2V, "1080x1080", "1920:1080"),
        ("veo3.1", T2V, "9:16", "720:1280"),  # a bare ratio: the smallest of that aspect
        ("veo3.1", T2V, "3840x2160", "1920:1080"),
        ("seedance2", T2V, "854x480", "864:496"),  # 864:496 is Seedance's own 16:9
        ("seedance2", T2V, "16:9", "864:496"),
        ("seedance2", T2V, "2560x1080", "2206:946"),
        ("seedance2_fast", T2V, "1920x1080", "1280:720"),
        ("happyhorse_1_0", T2V, "1440x1080", "1662:1248"),
    ],
)
def test_size_becomes_one_of_the_models_pixel_sizes(model: str, path: str, size: str, ratio: str):
    parsed = Size.parse(size)
    assert parsed is not None
    assert pick_ratio(parsed, model_of(model).ratios[path]) == ratio


def test_prompts_are_counted_in_utf16_code_units():
    assert utf16_units("a😀") == 3
    assert native(prompt="😀" * 500).body["promptText"] == "😀" * 500
    with pytest.raises(Rejected) as refused:
        native(prompt="😀" * 500 + "a")
    assert refused.value.param == "prompt" and "1000" in refused.value.message
    assert len(native(model="seedance2", prompt="x" * 3500).body["promptText"]) == 3500
    with pytest.raises(Rejected):
        native(model="happyhorse_1_0", prompt="x" * 2501)


def test_an_empty_prompt_is_left_out_only_where_it_is_optional():
    turbo = native(Inputs(first=FIRST), model="gen4_turbo", prompt="", images=(IMAGE,))
    assert "promptText" not in turbo.body
    for model, images in (("gen4.5", (IMAGE,)), ("gen4.5", ()), ("veo3.1", ())):
        with pytest.raises(Rejected) as refused:
            native(Inputs(first=FIRST), model=model, prompt=" ", images=images)
        assert refused.value.param == "prompt"


def test_hints_pass_where_the_model_has_a_field():
    gen = native(negative_prompt="blur", seed=7, generate_audio=True, enhance_prompt=True)
    assert gen.body["seed"] == 7 and "negativePrompt" not in gen.body and "audio" not in gen.body
    assert gen.dropped == ("negative_prompt", "generate_audio", "enhance_prompt")
    veo = native(model="veo3", negative_prompt="blur", seed=7, generate_audio=True)
    assert veo.body["negativePrompt"] == "blur" and "seed" not in veo.body
    assert veo.dropped == ("seed", "generate_audio")  # veo3 always has sound
    with pytest.raises(Rejected) as refused:
        native(seed=2**32)
    assert refused.value.param == "seed"


def test_metadata_merges_without_what_the_relay_controls():
    sent = native(
        Inputs(first=FIRST),
        model="veo3.1",
        images=(IMAGE,),
        metadata={
            "promptImage": [{"uri": FIRST, "position": "first"}, {"uri": LAST, "position": "last"}],
            "model": "veo3",
            "Authorization": "Bearer stolen",
            "X-Runway-Version": "1999-01-01",
            "duration": 6,
            "ratio": "1080:1920",
        },
    )
    assert sent.body["model"] == "veo3.1"
    assert sent.body["promptImage"][1] == {"uri": LAST, "position": "last"}  # a list replaces
    assert not {"Authorization", "X-Runway-Version"} & set(sent.body)
    assert (sent.seconds, sent.size) == ("6", "1080x1920")  # what actually went upstream


@pytest.mark.parametrize(
    ("model", "images", "media", "why"),
    [
        ("gen4_turbo", (), (), "requires an input image"),
        ("aleph2", (), (), "cannot start from a prompt"),
        ("aleph2", (IMAGE,), (), "cannot start from an image"),
        ("gen4.5", (IMAGE, Image(role="last_frame", url=LAST)), (), "last frame"),
        ("gemini_omni_flash", (IMAGE, Image(url=LAST)), (), "last frame"),
        ("veo3.1", (Image(role="last_frame", url=LAST),), (), "only together"),
        ("veo3.1", (Image(role="reference_image", url=FIRST),), (), "reference images"),
        ("seedance2", (IMAGE, Image(role="reference_image", url=FIRST)), (), "combine"),
        ("seedance2", (Image(role="reference_image", url=FIRST),) * 10, (), "at most 9"),
        ("gen4.5", (), (Media(kind="video", url="https://a.example.com/v.mp4"),), "video or audio"),
    ],
)  # fmt: skip
def test_check_refuses_what_runway_answers_400_to(
    model: str, images: tuple[Image, ...], media: tuple[Media, ...], why: str
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(model=model, images=images, media=media))
    assert why in refused.value.message


def test_check_accepts_what_each_model_takes():
    runway = provider()
    runway.check(*job(model="gen4_turbo", images=(IMAGE,)))
    runway.check(*job(model="veo3.1", images=(IMAGE, Image(role="last_frame", url=LAST))))
    runway.check(*job(model="seedance2", images=(Image(role="reference_image", url=FIRST),) * 9,
                      media=(Media(kind="audio", url="https://a.example.com/a.mp3"),)))  # fmt: skip
    runway.check(*job(model="a-model-runway-adds-later"))
    assert not runway.can_remix("gen4.5") and provider(remix_model="aleph2").can_remix("gen4.5")
    assert runway.can_cancel("gen4.5")


def test_accepts_offers_each_models_sizes_and_durations():
    assert accepts("gen4.5") == (tuple(range(2, 11)), ("1280x720", "720x1280"))
    assert accepts("gen4_turbo")[0] == (5, 10) and "1584x672" in accepts("gen4_turbo")[1]
    assert accepts("veo3.1") == ((4, 6, 8), ("1280x720", "720x1280", "1080x1920", "1920x1080"))
    assert accepts("veo3")[0] == (8,)
    assert len(accepts("seedance2")[1]) == 18 and len(accepts("seedance2_mini")[1]) == 12
    assert accepts("unknown")[0] == (5, 10)


# --- answers --------------------------------------------------------------------------------


def test_create_answers():
    assert task_id(fixture("create"), "") == "17f20503-6c24-4c16-946b-35dbbce2af2f"
    assert task_id(fixture("create_estimate"), "") == "17f20503-6c24-4c16-946b-35dbbce2af2f"
    with pytest.raises(Unavailable) as unsure:
        task_id({"estimatedCost": {"credits": 25}}, "HTTP 200: {}")
    assert unsure.value.maybe_created is True  # a task may exist: never sent again


def poll(name_or_body: str | dict[str, Any], *, floor: float = 5.0) -> Any:
    body = fixture(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return update(body, now=NOW, ttl_s=DAY, poll_after_s=floor)


@pytest.mark.parametrize(
    ("name", "status", "progress", "code"),
    [
        ("poll_pending", "queued", 0, None),
        ("poll_throttled", "queued", 0, None),  # Runway's own queue: never an error
        ("poll_running", "in_progress", 45, None),
        ("poll_succeeded", "completed", 100, None),
        ("poll_succeeded_cost", "completed", 100, None),
        ("poll_failed_safety", "failed", None, "moderation_blocked"),
        ("poll_failed_internal", "failed", None, "generation_failed"),
        ("poll_failed_old", "failed", None, "generation_failed"),
        ("poll_cancelled", "failed", None, "cancelled"),
    ],
)
def test_the_status_table(name: str, status: str, progress: int | None, code: str | None):
    found = poll(name)
    assert (found.status, found.progress) == (status, progress)
    assert (found.error.code if found.error else None) == code
    assert found.state["upstream_created_at"] == pytest.approx(1785406503.221)
    if status in ("queued", "in_progress"):
        assert found.poll_after_s == 5.0 and found.completed_at is None
    else:
        assert found.completed_at == NOW and found.poll_after_s is None


@pytest.mark.parametrize(("given", "shown"), [(0, 1), (0.004, 1), (0.45, 45), (0.999, 99),
                                              (1.5, 99), (None, None), ("0.5", None)])  # fmt: skip
def test_running_progress_is_a_fraction_clamped_to_1_99(given: Any, shown: int | None):
    body = {"status": "RUNNING", "createdAt": "2026-07-30T10:15:03.221Z"}
    if given is not None:
        body["progress"] = given
    assert poll(body).progress == shown  # None: the relay's time estimate


def test_succeeded_keeps_the_signed_url_byte_for_byte():
    found = poll("poll_succeeded_cost")
    url = fixture("poll_succeeded")["output"][0]
    assert found.state["video_url"] == url and "_jwt=eyJ" in url
    assert found.state["cost_credits"] == 25
    assert found.expires_at == found.state["expires_at"] == NOW + DAY
    assert "cost_credits" not in poll("poll_succeeded").state  # cost is optional


@pytest.mark.parametrize("output", [[], None, [""], [42]])
def test_succeeded_without_output_is_a_failure(output: Any):
    body = {**fixture("poll_succeeded"), "output": output}
    if output is None:
        del body["output"]
    found = poll(body)
    assert found.status == "failed" and found.error.code == "generation_failed"
    assert "no output" in found.error.message and "video_url" not in found.state


@pytest.mark.parametrize(
    ("code", "failure", "normalised"),
    [
        ("SAFETY.INPUT.TEXT", "flagged", "moderation_blocked"),
        ("SAFETY.INPUT.IMAGE", "x", "moderation_blocked"),
        ("SAFETY.OUTPUT.VIDEO", "x", "moderation_blocked"),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "x", "moderation_blocked"),
        ("INPUT_PREPROCESSING.SAFETY.IMAGE", "x", "moderation_blocked"),
        ("INPUT_PREPROCESSING.CORRUPT", "x", "invalid_request"),
        ("ASSET.INVALID", "x", "invalid_request"),
        ("THIRD_PARTY.UNAVAILABLE", "Retry later", "upstream_error"),
        ("INTERNAL.BAD_OUTPUT.CODE01", "An unexpected error occurred.", "generation_failed"),
        ("INTERNAL.SOMETHING_NEW", "x", "generation_failed"),
        ("", "An unexpected error occurred.", "generation_failed"),
        ("", "Your prompt was flagged by our content moderation system.", "moderation_blocked"),
    ],
)
def test_failure_codes_by_prefix(code: str, failure: str, normalised: str):
    assert failure_code(code, failure) == normalised


def test_failure_messages_keep_the_code_before_runways_text():
    body = fixture("poll_failed_internal")
    assert task_error(body).message == "INTERNAL.BAD_OUTPUT.CODE01: An unexpected error occurred."
    assert task_error({"failure": "Oops."}).message == "FAILED: Oops."
    assert task_error({"failureCode": "ASSET.INVALID"}).message == "ASSET.INVALID"
    assert task_error({}).message == "FAILED: runway gave no reason"
    assert task_error({"failure": {"nested": 1}, "failureCode": 7}).code == "generation_failed"


def test_an_unknown_status_keeps_the_previous_one():
    found = poll({"id": "x", "status": "PAUSED"})
    assert found.status is None and found.unknown_status == "PAUSED"
    with pytest.raises(Unavailable):
        poll({"error": "Task not found"})
    assert poll("poll_pending", floor=0).poll_after_s is None


VALIDATION = fixture("error_validation")


@pytest.mark.parametrize(
    ("status", "body", "on_create", "error_type", "code", "param"),
    [
        (400, VALIDATION, True, Rejected, "invalid_request", "size"),
        (400, {"error": "Validation of body failed", "issues": [
            {"code": "invalid_type", "path": ["duration"], "message": "Expected number"}]},
         True, Rejected, "invalid_request", "seconds"),
        (400, fixture("error_credits"), True, QuotaExceeded, "insufficient_quota", None),
        (402, fixture("error_credits"), True, QuotaExceeded, "insufficient_quota", None),
        (429, fixture("error_credits"), True, QuotaExceeded, "insufficient_quota", None),
        (400, {"error": "Invalid asset: promptImage redirected"}, True, Rejected,
         "invalid_request", "input_reference"),
        (400, {"error": "The asset is too large"}, True, Rejected, "invalid_request",
         "input_reference"),
        (400, {"error": "Your prompt did not pass content moderation."}, True, Rejected,
         "moderation_blocked", None),
        (400, {"error": "The X-Runway-Version header is missing"}, True, AuthFailed,
         "upstream_auth_failed", None),
        (400, {"error": "Invalid X-Runway-Version"}, False, AuthFailed, "upstream_auth_failed",
         None),
        (401, {"error": "Invalid API key provided."}, False, AuthFailed, "upstream_auth_failed",
         None),
        (401, None, True, AuthFailed, "upstream_auth_failed", None),
        (403, None, True, AuthFailed, "upstream_auth_failed", None),
        (404, fixture("error_not_found"), True, Rejected, "invalid_request", None),
        (404, fixture("error_not_found"), False, TaskNotFound, "task_expired", None),
        (405, None, True, Rejected, "invalid_request", None),
        (429, {"error": "You have exceeded the rate limit."}, True, RateLimited,
         "rate_limit_exceeded", None),
        (429, {"error": "maximum daily generations for this model"}, False, RateLimited,
         "rate_limit_exceeded", None),
        (500, None, False, Unavailable, "upstream_error", None),
        (502, None, True, Unavailable, "upstream_error", None),
        (503, None, True, Unavailable, "upstream_error", None),
        (504, None, True, Unavailable, "upstream_error", None),
    ],
)  # fmt: skip
def test_the_classification_table(
    status: int, body: Any, on_create: bool, error_type: type, code: str, param: str | None
):
    exc = classify(status, {}, body, json.dumps(body), on_create=on_create)
    assert type(exc) is error_type and exc.code == code
    assert getattr(exc, "param", None) == param


@pytest.mark.parametrize(("status", "created"), [(500, True), (502, False), (503, False),
                                                 (504, True), (520, True)])  # fmt: skip
def test_only_a_create_turned_away_before_a_task_existed_may_go_elsewhere(
    status: int, created: bool
):
    exc = classify(status, {}, None, "", on_create=True)
    assert isinstance(exc, Unavailable) and exc.maybe_created is created
    polled = classify(status, {}, None, "", on_create=False)
    assert isinstance(polled, Unavailable) and polled.maybe_created is False


def test_error_messages_name_the_issue_and_keep_the_body_for_the_log():
    exc = classify(400, {}, VALIDATION, "raw-body", on_create=True)
    assert exc.message.startswith("Validation of body failed: ratio: Invalid enum value.")
    assert exc.detail == "HTTP 400: raw-body"
    assert "docs.dev.runwayml.com" not in exc.message  # client text holds no URL
    version = classify(400, {}, {"error": "bad X-Runway-Version"}, "", on_create=True)
    assert "options.api_version" in version.message
    assert classify(503, {}, None, "", on_create=False).message.endswith("(HTTP 503)")
    limited = classify(429, {"Retry-After": "7"}, None, "", on_create=True)
    assert isinstance(limited, RateLimited) and limited.retry_after == 7


# --- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://assets.example.com/a.png", None),
        ("http://assets.example.com/a.png", "is not https"),
        ("https://203.0.113.7/a.png", "IP address"),
        ("https://[2001:db8::1]/a.png", "IP address"),
        ("https://assets.example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_url_rules(url: str, problem: str | None):
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("status", "headers", "problem"),
    [
        (200, {"Content-Type": "image/png", "Content-Length": "10"}, None),
        (200, {"content-type": "image/webp; q=1", "content-length": "10"}, None),
        (302, {"Location": "https://elsewhere.example.com/a.png"}, "redirects"),
        (200, {"Content-Type": "application/octet-stream", "Content-Length": "10"}, "served as"),
        (200, {"Content-Length": "10"}, "no type"),
        (200, {"Content-Type": "image/png"}, "Content-Length"),
        (200, {"Content-Type": "image/png", "Content-Length": str(17 * 1024 * 1024)}, "larger"),
        (405, {}, "HTTP 405"),
    ],
)
def test_head_rules(status: int, headers: dict[str, str], problem: str | None):
    found = head_problem(status, headers, "image", 16 * 1024 * 1024)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_data_uri_limit_is_on_the_encoded_string():
    prefix = len("data:image/png;base64,")
    raw = (IMAGE_DATA_URI_MAX - prefix - 1) // 4 * 3  # the largest that stays under 5 MB
    assert fits_data_uri(b"x" * raw, "image/png", IMAGE_DATA_URI_MAX)
    assert len(data_uri(b"x" * raw, "image/png")) == IMAGE_DATA_URI_MAX - 2
    assert not fits_data_uri(b"x" * (raw + 1), "image/png", IMAGE_DATA_URI_MAX)
    assert len(data_uri(b"x" * (raw + 1), "image/png")) > IMAGE_DATA_URI_MAX


class Uploads:
    """Stands in for Runway's upload flow: records what would go up."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def __call__(self, data: bytes, mime: str) -> str:
        self.sent.append((len(data), mime))
        return f"runway://upload/u{len(self.sent)}"


class HeadStub(Resolver):
    """A resolver whose HEAD answers are scripted, and whose fetches are recorded."""

    def __init__(
        self, verdict: str | None, fetched: bytes = b"", uploads: Uploads | None = None
    ) -> None:
        super().__init__(provider(), uploads or Uploads())
        self.verdict, self.fetched = verdict, fetched
        self.heads: list[str] = []
        self.provider.image_bytes = self._fetch  # type: ignore[method-assign]

    async def head(self, url: str, kind: str, limit: int) -> str | None:
        self.heads.append(url)
        return self.verdict

    async def _fetch(self, image: Image, limit: int) -> Image:
        return Image(role=image.role, data=self.fetched, mime="image/png")


async def test_an_image_url_goes_as_it_is_when_runway_can_fetch_it():
    resolver = HeadStub(None)
    assert await resolver.image(Image(url=FIRST)) == FIRST
    assert resolver.heads == [FIRST]


async def test_an_image_url_runway_would_refuse_is_sent_as_bytes():
    small = png(8, 8)
    for url, verdict in (
        (FIRST, "redirects (runway does not follow redirects)"),
        ("http://assets.example.com/a.png", None),
        ("https://198.51.100.4/a.png", None),
    ):
        resolver = HeadStub(verdict, small)
        assert await resolver.image(Image(url=url)) == data_url(small)
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (4 * 1024 * 1024)
    uploads = Uploads()
    resolver = HeadStub("redirects", big, uploads)
    assert await resolver.image(Image(url=FIRST)) == "runway://upload/u1"
    assert uploads.sent == [(len(big), "image/png")]


async def test_uploaded_bytes_are_a_data_uri_or_runways_upload():
    uploads = Uploads()
    resolver = HeadStub(None, uploads=uploads)
    assert await resolver.image(Image(data=jpeg(), mime="image/jpeg")) == data_url(
        jpeg(), "image/jpeg"
    )
    big = Image(data=b"\xff\xd8\xff" + b"0" * (4 * 1024 * 1024), mime="image/jpeg")
    assert await resolver.image(big) == "runway://upload/u1"
    video = Media(kind="video", data=VIDEO, mime="video/mp4", param="input_reference.content[1]")
    assert await resolver.media(video) == data_uri(VIDEO, "video/mp4")
    large = Media(kind="video", data=b"0" * (13 * 1024 * 1024), mime="video/mp4",
                  param="input_reference.content[2]")  # fmt: skip
    assert await resolver.media(large) == "runway://upload/u2"
    assert resolver.heads == []  # no URL, no HEAD
    assert uploads.sent[-1] == (13 * 1024 * 1024, "video/mp4")


async def test_a_media_url_runway_would_refuse_is_a_400_naming_it():
    param = "input_reference.content[1].video_url.url"
    for url, verdict in (("http://a.example.com/v.mp4", None),
                         ("https://a.example.com/v.mp4", "redirects")):  # fmt: skip
        with pytest.raises(Rejected) as refused:
            await HeadStub(verdict).media(Media(kind="video", url=url, param=param))
        assert refused.value.param == param
    ok = Media(kind="audio", url="https://a.example.com/a.mp3")
    assert await HeadStub(None).media(ok) == "https://a.example.com/a.mp3"


async def test_head_reads_the_answer_without_following_redirects():
    app = web.Application()

    async def fine(request: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="image/png")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/fine.png")

    async def generic(request: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="application/octet-stream")

    app.router.add_get("/fine.png", fine)
    app.router.add_get("/moved.png", moved)
    app.router.add_get("/generic.png", generic)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = Http(allow_private_networks=True)
    runway = RunwayProvider(ChannelView("r", RunwayOptions(), api_key="k"), ChannelHttp(http, 5))
    try:
        resolver = Resolver(runway, runway.upload)
        base = str(server.make_url("")).rstrip("/")
        assert await resolver.head(f"{base}/fine.png", "image", 1 << 20) is None
        assert "redirects" in (await resolver.head(f"{base}/moved.png", "image", 1 << 20) or "")
        generic = await resolver.head(f"{base}/generic.png", "image", 1 << 20)
        assert "application/octet-stream" in (generic or "")
        assert await resolver.head("http://127.0.0.1:9/x.png", "image", 1) is None  # unreachable
    finally:
        await http.close()
        await server.close()


async def test_head_never_reaches_a_private_address_the_guard_refuses():
    hits: list[str] = []
    app = web.Application()

    async def seen(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=png(), content_type="image/png")

    app.router.add_route("*", "/x.png", seen)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = Http(allow_private_networks=False)
    runway = RunwayProvider(ChannelView("r", RunwayOptions(), api_key="k"), ChannelHttp(http, 5))
    try:
        url = str(server.make_url("/x.png"))
        # left to Runway, whose network is not the relay's: the relay itself sends nothing
        assert await Resolver(runway, runway.upload).head(url, "image", 1 << 20) is None
        assert hits == []
    finally:
        await http.close()
        await server.close()


# --- the adapter on the wire ----------------------------------------------------------------


class StubHttp:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200) -> Reply:
    raw = b"" if body is None else json.dumps(body).encode()
    return Reply(status, {"Content-Type": "application/json"}, raw)


def wired(*replies: Reply, **options: Any) -> tuple[RunwayProvider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView(
        "runway",
        RunwayOptions(**options),
        base_url="https://api.dev.runwayml.com/",
        api_key="key_1",
    )
    return RunwayProvider(channel, http), http  # type: ignore[arg-type]


def ref(upstream_id: str = "17f20503", **state: Any) -> TaskRef:
    return TaskRef("video_x", upstream_id, "gen4.5", state, NOW, "5", "1280x720", "queued")


async def test_submit_poll_and_content_over_the_wire():
    runway, http = wired(answer(fixture("create_estimate")), answer(fixture("poll_succeeded")))
    submitted = await runway.submit(*job(seconds=12))
    assert (submitted.upstream_id, submitted.seconds, submitted.size) == (
        "17f20503-6c24-4c16-946b-35dbbce2af2f", "10", "1280x720",
    )  # fmt: skip
    assert submitted.state == {"endpoint": "text_to_video", "estimated_credits": 25}
    found = await runway.poll(ref("a/b"))
    (m1, u1, k1), (m2, u2, k2) = http.sent
    assert (m1, u1) == ("POST", "https://api.dev.runwayml.com/v1/text_to_video")
    assert (m2, u2) == ("GET", "https://api.dev.runwayml.com/v1/tasks/a%2Fb")
    for kwargs in (k1, k2):
        assert kwargs["headers"]["Authorization"] == "Bearer key_1"
        assert kwargs["headers"]["X-Runway-Version"] == "2024-11-06"
    assert found.poll_after_s is None and found.status == "completed"
    source = await runway.content(ref(**found.state), "video")
    assert isinstance(source, Remote)
    assert source.url == fixture("poll_succeeded")["output"][0]
    assert source.headers == {} and not source.trusted  # never Runway's headers to CloudFront


async def test_a_2xx_create_other_than_200_is_accepted_and_the_version_is_an_option():
    runway, http = wired(answer({"id": "t-1"}, 201), api_version="2025-01-01")
    assert (await runway.submit(*job())).upstream_id == "t-1"
    assert http.sent[0][2]["headers"]["X-Runway-Version"] == "2025-01-01"


async def test_content_before_a_url_is_kept_asks_again():
    runway, _ = wired(answer(fixture("poll_running")), answer(fixture("poll_succeeded")))
    with pytest.raises(NotReady):
        await runway.content(ref(), "video")
    source = await runway.content(ref(), "video")
    assert isinstance(source, Remote) and "_jwt=" in source.url


async def test_the_poll_floor_is_runways_five_seconds_by_default():
    runway, _ = wired(answer(fixture("poll_running")))
    assert (await runway.poll(ref())).poll_after_s == 5.0


async def test_cancel_asks_first_then_deletes_an_active_task():
    for status in ("PENDING", "THROTTLED", "RUNNING"):
        runway, http = wired(answer({"id": "t", "status": status}), answer(None, 204))
        await runway.cancel(ref("t"))
        assert [(m, u.rsplit("/", 1)[1]) for m, u, _ in http.sent] == [
            ("GET", "t"),
            ("DELETE", "t"),
        ]
        assert http.sent[1][2]["headers"]["X-Runway-Version"] == "2024-11-06"


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "CANCELLED", "SOMETHING_NEW"])
async def test_cancel_never_deletes_a_task_that_is_not_active(status: str):
    runway, http = wired(answer({"id": "t", "status": status}))
    with pytest.raises(CancelRefused) as refused:
        await runway.cancel(ref("t"))
    assert status in refused.value.message
    assert [m for m, _, _ in http.sent] == ["GET"]


async def test_after_its_own_cancel_a_404_means_cancelled():
    runway, _ = wired(
        answer({"id": "t", "status": "RUNNING"}),
        answer({}, 200),  # the page's other possible DELETE answer
        answer(fixture("error_not_found"), 404),
        answer(fixture("error_not_found"), 404),
    )
    await runway.cancel(ref("t"))
    found = await runway.poll(ref("t"))
    assert found.status == "failed" and found.error is not None
    assert found.error.code == "cancelled"
    with pytest.raises(TaskNotFound):  # another task's 404 is still gone
        await runway.poll(ref("other"))


async def test_cancel_errors():
    gone, _ = wired(answer(fixture("error_not_found"), 404))
    with pytest.raises(TaskNotFound):  # the relay settles: nothing runs on
        await gone.cancel(ref())
    raced, _ = wired(answer({"status": "RUNNING"}), answer(fixture("error_not_found"), 404))
    await raced.cancel(ref())  # gone between the look and the DELETE: stopped all the same
    refused, _ = wired(answer({"status": "RUNNING"}), answer({"error": "Invalid API key"}, 401))
    with pytest.raises(AuthFailed):
        await refused.cancel(ref())
    down, _ = wired(answer({"status": "PENDING"}), answer(None, 503))
    with pytest.raises(Unavailable):
        await down.cancel(ref())
    for odd in (["RUNNING"], None, "RUNNING"):  # a 200 that is not a task: no crash, no DELETE
        unreadable, http = wired(answer(odd))
        with pytest.raises(Unavailable):
            await unreadable.cancel(ref())
        assert [m for m, _, _ in http.sent] == ["GET"]
    html, _ = wired(Reply(200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"))
    with pytest.raises(Unavailable):
        await html.cancel(ref())


def test_a_validation_failure_naming_content_moderation_is_no_content_policy_refusal():
    body = {
        "error": "Validation of body failed",
        "issues": [
            {"path": ["contentModeration", "publicFigureThreshold"], "message": "Invalid enum"}
        ],
    }
    error = classify(400, {}, body, json.dumps(body), on_create=True)
    assert isinstance(error, Rejected) and not error.moderation
    flagged = {"error": "Your prompt was flagged by our content moderation"}
    error = classify(400, {}, flagged, json.dumps(flagged), on_create=True)
    assert isinstance(error, Rejected) and error.moderation


async def test_delete_is_best_effort_and_a_404_is_done():
    runway, http = wired(answer(None, 204), answer(fixture("error_not_found"), 404))
    await runway.delete(ref("t"))
    await runway.delete(ref("t"))
    assert [m for m, _, _ in http.sent] == ["DELETE", "DELETE"]
    broken, _ = wired(answer(None, 502))
    with pytest.raises(Unavailable):
        await broken.delete(ref())


async def test_remix_uses_a_fresh_output_url_of_the_source():
    runway, http = wired(
        answer(fixture("poll_succeeded")), answer({"id": "r-1"}), remix_model="aleph2"
    )
    request, _ = job(prompt="make it snow", seed=42)
    done = await runway.remix(ref("src"), request, "gen4.5")
    assert (done.upstream_id, done.seconds, done.size) == ("r-1", "5", "1280x720")
    assert http.sent[0][:2] == ("GET", "https://api.dev.runwayml.com/v1/tasks/src")
    assert http.sent[1][1] == "https://api.dev.runwayml.com/v1/video_to_video"
    assert http.sent[1][2]["json"] == {
        "model": "aleph2",
        "videoUri": fixture("poll_succeeded")["output"][0],
        "promptText": "make it snow",
        "seed": 42,
    }


async def test_remix_of_a_source_runway_no_longer_has_is_a_400():
    runway, http = wired(answer(fixture("error_not_found"), 404), remix_model="aleph2")
    with pytest.raises(Rejected) as refused:
        await runway.remix(ref(), job()[0], "gen4.5")
    assert refused.value.param == "video_id" and len(http.sent) == 1
    running, _ = wired(answer(fixture("poll_running")), remix_model="aleph2")
    with pytest.raises(Rejected):
        await running.remix(ref(), job()[0], "gen4.5")


def test_options_are_validated(make_config: Callable[..., Config]):
    channel = {"name": "r", "provider": "runway", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {
        "api_version": "2024-11-06",
        "remix_model": "",
        "url_ttl_s": DAY,
        "min_poll_s": 5.0,
    }
    for bad in ({"url_ttl_s": 1}, {"min_poll_s": -1}, {"api_version": 20241106}):
        with pytest.raises(ConfigError):
            make_config(channels=[{**channel, "options": bad}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[RunwayFake]:
    upstream = RunwayFake()
    await upstream.start()
    yield upstream
    await upstream.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    fake: RunwayFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Start:
    async def run(
        polling: dict[str, Any] | None = None, keep: bool = False, **channel: Any
    ) -> Relay:
        # no stored copies unless asked: content must come from the fake's CDN
        config = make_config(
            storage={"keep_videos": keep},
            channels=[fake.channel(fake.base_url, **channel)],
            **({"polling": polling} if polling else {}),
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, **headers: str) -> Any:
    return await relay.client.get(f"/v1/videos/{video_id}/content", headers={**auth(), **headers})


async def listed(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


async def test_create_poll_and_content_with_range(start: Start, fake: RunwayFake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(seconds="8", size="1280x720")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "8", "1280x720")
    [create] = fake.calls("/v1/text_to_video", "POST")
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "model": "gen4.5",
        "promptText": "a paper airplane over a lake",
        "ratio": "1280:720",
        "duration": 8,
    }
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("8", "1280x720")
    assert done["expires_at"] == pytest.approx(done["completed_at"] + DAY, abs=2)
    assert len(fake.calls("/v1/tasks/", "GET")) == 3
    for call in fake.requests:  # every call, polls included, carries both headers
        assert call.headers["Authorization"] == f"Bearer {fake.api_key}"
        assert call.headers["X-Runway-Version"] == VERSION

    whole = await content(relay, video["id"])
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert await whole.read() == VIDEO
    part = await content(relay, video["id"], Range="bytes=100-199")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await part.read() == VIDEO[100:200]
    # the signed URL went out byte for byte (the fake's CDN refuses any other), headerless
    assert fake.cdn_stats.auth_headers == [None, None]
    assert fake.cdn_version_headers == [None, None]
    assert "bytes=100-199" in fake.cdn_stats.range_headers


async def test_polls_keep_runways_five_seconds_apart(start: Start, fake: RunwayFake):
    fake.polls_to_finish = 1000
    relay = await start(options={})  # the default min_poll_s
    await relay.create()
    await asyncio.sleep(1.0)  # the relay polls every 0.05-0.2 s otherwise
    assert fake.calls("/v1/tasks/", "GET") == []  # the first check waits Runway's 5 s too


async def test_throttled_is_queued_then_progress_moves(start: Start, fake: RunwayFake):
    fake.polls_to_finish, fake.throttled_polls = 1000, 3
    relay = await start()
    video = await relay.create()
    seen: list[tuple[str, int]] = []
    for _ in range(500):
        body = await relay.get(video["id"])
        seen.append((body["status"], body["progress"]))
        if body["status"] == "in_progress":
            break
        await asyncio.sleep(0.02)
    [task] = fake.tasks.values()
    assert task.polls > 4  # PENDING, three THROTTLED, then RUNNING
    assert set(seen[:-1]) == {("queued", 0)}
    status, progress = seen[-1]
    assert status == "in_progress" and 1 <= progress <= 99


async def test_running_without_progress_uses_the_time_estimate(start: Start, fake: RunwayFake):
    fake.polls_to_finish, fake.progress = 1000, False
    relay = await start()
    video = await relay.create()
    for _ in range(500):
        body = await relay.get(video["id"])
        if body["status"] == "in_progress":
            break
        await asyncio.sleep(0.02)
    assert body["status"] == "in_progress" and 0 <= body["progress"] <= 95


@pytest.mark.parametrize(
    ("form", "sent"),
    [
        ({"image_url": "https://img.example.test/a.png"}, "https://img.example.test/a.png"),
        ({"image_url": data_url(png(1280, 720))}, data_url(png(1280, 720))),
    ],
)
async def test_first_frame_by_url_or_data_url(
    start: Start, fake: RunwayFake, form: dict[str, str], sent: str
):
    relay = await start()
    video = await relay.create(input_reference=form, size="1104x832")
    assert video["size"] == "1104x832"
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates("image_to_video")
    assert create["promptImage"] == sent and create["ratio"] == "1104:832"


async def test_an_image_url_runway_cannot_fetch_is_sent_as_bytes(start: Start, fake: RunwayFake):
    # http and an IP address: Runway would refuse it, so the relay fetches it and sends bytes
    fake.files["frame.png"] = png(16, 9)
    url = fake.cdn_url("frame.png")
    relay = await start()
    video = await relay.create(input_reference={"image_url": url})
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates("image_to_video")
    assert create["promptImage"] == data_url(png(16, 9))


async def test_an_image_url_runway_refuses_is_a_400_naming_the_input(
    start: Start, fake: RunwayFake
):
    fake.unusable_urls.add("https://img.example.test/redirects.png")
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={
            "prompt": "x",
            "input_reference": {"image_url": "https://img.example.test/redirects.png"},
        },
        headers=auth(),
    )
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "invalid_parameter"
    assert error["param"] == "input_reference" and "promptImage" in error["message"]
    assert await listed(relay) == []


async def test_first_and_last_frames_on_veo(start: Start, fake: RunwayFake):
    relay = await start()
    frames = [
        {"type": "image_url", "role": "first_frame", "image_url": {"url": "https://a.example.test/f.png"}},
        {"type": "image_url", "role": "last_frame", "image_url": {"url": "https://a.example.test/l.png"}},
    ]  # fmt: skip
    video = await relay.create(model="veo3.1", seconds="5", size="1920x1080",
                               input_reference={"content": frames})  # fmt: skip
    assert (video["seconds"], video["size"]) == ("6", "1920x1080")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates("image_to_video")
    assert create["promptImage"] == [
        {"uri": "https://a.example.test/f.png", "position": "first"},
        {"uri": "https://a.example.test/l.png", "position": "last"},
    ]
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "x", "input_reference": {"content": frames}}, headers=auth()
    )  # gen4.5 has no last frame: refused before any call
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


async def test_seedance_references_video_and_audio(start: Start, fake: RunwayFake):
    relay = await start()
    items = [
        {"type": "image_url", "role": "reference_image", "image_url": {"url": "https://a.example.test/1.png"}},
        {"type": "image_url", "role": "reference_image", "image_url": {"url": "https://a.example.test/2.png"}},
        {"type": "video_url", "video_url": {"url": "https://a.example.test/v.mp4"}},
        {"type": "audio_url", "audio_url": {"url": data_url(b"ID3" + b"\x00" * 64, "audio/mpeg")}},
    ]  # fmt: skip
    video = await relay.create(model="seedance2", seconds="7", size="1280x720",
                               input_reference={"content": items})  # fmt: skip
    assert (await relay.wait(video["id"]))["status"] == "completed", video
    [create] = fake.creates("image_to_video")
    assert create["promptImage"] == [{"uri": "https://a.example.test/1.png"},
                                     {"uri": "https://a.example.test/2.png"}]  # fmt: skip
    assert create["referenceVideos"] == [{"uri": "https://a.example.test/v.mp4"}]
    assert create["referenceAudio"][0]["uri"].startswith("data:audio/mpeg;base64,")
    assert (create["duration"], create["ratio"]) == (7, "1280:720")


@pytest.mark.parametrize(
    ("marker", "knobs", "code", "message"),
    [
        ("#fail", {}, "generation_failed", "INTERNAL.BAD_OUTPUT.CODE01: An unexpected error"),
        ("#moderation", {}, "moderation_blocked", "SAFETY.INPUT.TEXT: Your prompt was flagged"),
        ("#moderation", {"safety_code": False}, "moderation_blocked", "FAILED: Your prompt"),
        ("#output_safety", {}, "moderation_blocked", "SAFETY.OUTPUT.VIDEO"),
        ("#input_safety", {}, "moderation_blocked", "INPUT_PREPROCESSING.SAFETY.IMAGE"),
        ("#preprocessing", {}, "invalid_request", "INPUT_PREPROCESSING.CORRUPT"),
        ("#asset", {}, "invalid_request", "ASSET.INVALID"),
        ("#third_party", {}, "upstream_error", "THIRD_PARTY.UNAVAILABLE"),
        ("#old_failure", {}, "generation_failed", "FAILED: An unexpected error"),
        ("#old_failure", {"failure_code": "null"}, "generation_failed", "FAILED: An unexpected"),
        ("#nooutput", {}, "generation_failed", "SUCCEEDED: runway listed no output"),
    ],
)
async def test_failed_tasks_have_normalised_codes(
    start: Start, fake: RunwayFake, marker: str, knobs: dict[str, Any], code: str, message: str
):
    for name, value in knobs.items():
        setattr(fake, name, value)
    relay = await start()
    video = await relay.create(prompt=f"a storm {marker}")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["expires_at"] is None
    assert (done["error"]["code"], done["completed_at"] is not None) == (code, True)
    assert done["error"]["message"].startswith(message)
    assert (await content(relay, video["id"])).status == 404
    assert len(fake.creates()) == 1  # THIRD_PARTY.UNAVAILABLE is not resubmitted either


def test_the_fake_knows_every_failure_family():
    assert {"fail", "moderation", "third_party", "asset"} <= set(FAILURES)


async def test_a_task_cancelled_elsewhere_is_cancelled(start: Start, fake: RunwayFake):
    fake.status_override = "CANCELLED"
    relay = await start()
    done = await relay.wait((await relay.create())["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "cancelled")


async def test_a_task_gone_upstream_is_expired(start: Start, fake: RunwayFake):
    fake.polls_to_finish = 100
    relay = await start()
    video = await relay.create()
    fake.forget_tasks()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")


async def test_an_unknown_status_keeps_the_task_going(start: Start, fake: RunwayFake):
    fake.status_override = "PAUSED"
    relay = await start()
    video = await relay.create()
    for _ in range(100):
        if len(fake.calls("/v1/tasks/", "GET")) >= 3:
            break
        await asyncio.sleep(0.02)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_input_moderation_is_a_content_policy_400(start: Start, fake: RunwayFake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "content_policy_violation"
    assert "moderation" in error["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize(
    ("field", "message", "param"),
    [
        ("ratio", "Invalid enum value. Expected '1280:720' | '720:1280', received '1:1'", "size"),
        ("duration", "Expected number, received string", "seconds"),
        ("promptText", "String must contain at most 1000 character(s)", "prompt"),
    ],
)
async def test_validation_failures_are_a_400_naming_the_field(
    start: Start, fake: RunwayFake, field: str, message: str, param: str
):
    relay = await start()
    fake.fail_validation("submit", field, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400
    assert (error["code"], error["param"]) == ("invalid_parameter", param)
    assert error["message"] == f"Validation of body failed: {field}: {message}"
    assert await listed(relay) == []


async def test_what_runway_refuses_never_leaves_the_relay(start: Start, fake: RunwayFake):
    relay = await start()
    for body in (
        {"prompt": "x", "model": "gen4_turbo"},  # no text_to_video for it
        {"prompt": "x", "model": "aleph2"},  # edits only
        {"prompt": "x" * 1001},
    ):
        resp = await relay.client.post("/v1/videos", json=body, headers=auth())
        assert resp.status == 400, body
    assert fake.creates() == []


@pytest.mark.parametrize(
    ("case", "rate_limited"),
    [("auth", False), ("credits", False), ("rate_limit", True), ("daily", True),
     ("shed", False), ("unavailable", False), ("version", False)],
)  # fmt: skip
async def test_submit_errors_leave_no_task(
    start: Start, fake: RunwayFake, case: str, rate_limited: bool
):
    relay = await start()
    fake.fail_next("submit", case)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=rate_limited)
    assert "127.0.0.1" not in body["error"]["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize("case", ["internal", "overloaded"])
async def test_a_create_that_may_have_made_a_task_is_never_sent_again(
    start: Start, fake: RunwayFake, case: str
):
    relay = await start()
    fake.fail_next("submit", case)
    video = await relay.create()  # a 500 or 504 may still have made a billed task
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_error"
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(
    ("channel", "knobs", "state"),
    [
        ({"api_key": "key_" + "0" * 64}, {}, "credentials"),
        ({"options": {"api_version": "2023-01-01", "min_poll_s": 0}}, {}, "credentials"),
        ({"options": {"api_version": "2023-01-01", "min_poll_s": 0}}, {"version_status": 401},
         "credentials"),
        ({}, {"credit_balance": 0}, "quota"),
        ({}, {"credit_balance": 0, "credits_status": 402}, "quota"),
        ({}, {"credit_balance": 0, "credits_status": 429}, "quota"),
        ({}, {"daily_limit": 0}, "rate_limited"),
    ],
)  # fmt: skip
async def test_refusals_take_the_channel_out_as_the_policy_says(
    start: Start, fake: RunwayFake, channel: dict[str, Any], knobs: dict[str, Any], state: str
):
    for name, value in knobs.items():
        setattr(fake, name, value)
    relay = await start(**channel)
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status in (429, 502)
    assert fake.tasks == {}
    runway = relay.runtime.channels.get("runway")
    assert runway is not None and runway.health.state == state


@pytest.mark.parametrize("case", ["rate_limit", "internal", "shed", "unavailable", "overloaded"])
async def test_poll_errors_leave_the_task_running(start: Start, fake: RunwayFake, case: str):
    relay = await start()
    fake.fail_next("poll", case)
    fake.fail_next("poll", case)
    video = await relay.create()
    assert (await relay.wait(video["id"], timeout=20))["status"] == "completed"
    assert fake.answers["poll"] == []


async def test_an_expired_url_is_signed_afresh_by_a_new_poll(start: Start, fake: RunwayFake):
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    polls = len(fake.calls("/v1/tasks/", "GET"))
    fake.expire_urls()
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert len(fake.calls("/v1/tasks/", "GET")) == polls + 1
    fake.expire_urls()
    fake.forget_tasks()  # the task itself is gone: the result is lost
    assert (await content(relay, video["id"])).status in (404, 502)


async def test_estimates_and_costs_are_kept_when_runway_sends_them(start: Start, fake: RunwayFake):
    fake.estimate, fake.report_cost = True, True
    relay = await start()
    video = await relay.create(seconds="6")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    row = await relay.store.get_task(video["id"])
    assert row is not None
    assert row.upstream_state["estimated_credits"] == row.upstream_state["cost_credits"] == 30
    assert isinstance(row.upstream_state["upstream_created_at"], float)


# --- remix, delete and cancel ---------------------------------------------------------------


async def test_remix_is_off_unless_a_remix_model_is_set(start: Start, fake: RunwayFake):
    relay = await start()
    source = await relay.create()
    assert (await relay.wait(source["id"]))["status"] == "completed"
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.creates("video_to_video") == []


@pytest.mark.parametrize("refuse_output_urls", [False, True])
async def test_remix_runs_video_to_video_over_the_source(
    start: Start, fake: RunwayFake, refuse_output_urls: bool
):
    relay = await start(options={"remix_model": "aleph2", "min_poll_s": 0})
    source = await relay.create(seconds="8", size="720x1280")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    stored = (await relay.store.get_task(source["id"])).upstream_state["video_url"]  # type: ignore[union-attr]
    fake.refuse_output_urls = refuse_output_urls
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix",
        json={"prompt": "make it snow", "metadata": {"seed": 42}},
        headers=auth(),
    )
    assert resp.status == 200, await resp.text()
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["seconds"], remix["size"]) == ("8", "720x1280")
    bodies = fake.creates("video_to_video")
    assert [b["model"] for b in bodies] == ["aleph2"] * (2 if refuse_output_urls else 1)
    first = bodies[0]
    assert first["videoUri"] != stored and "_jwt=" in first["videoUri"]  # signed afresh
    assert (first["promptText"], first["seed"]) == ("make it snow", 42)
    if refuse_output_urls:  # Runway would not fetch its own output: the clip's bytes instead
        assert bodies[1]["videoUri"] == data_uri(VIDEO, "video/mp4")
    done = await relay.wait(remix["id"])
    assert done["status"] == "completed" and done["seconds"] == "8"
    assert await (await content(relay, remix["id"])).read() == VIDEO


async def test_remix_of_a_source_runway_forgot_sends_the_stored_copy(
    start: Start, fake: RunwayFake
):
    relay = await start(keep=True, options={"remix_model": "aleph2", "min_poll_s": 0})
    source = await relay.create(seconds="8", size="720x1280")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    for _ in range(200):
        if await relay.store.stored_copy(source["id"], "video") is not None:
            break
        await relay.copier.round()
    fake.forget_tasks()  # Runway no longer has the source
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "make it snow"}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    [body] = fake.creates("video_to_video")
    assert body["videoUri"] == data_uri(VIDEO, "video/mp4")  # the page: a data URI of the copy
    assert (await relay.wait((await resp.json())["id"]))["status"] == "completed"


async def test_deleting_a_video_deletes_the_runway_task(start: Start, fake: RunwayFake):
    relay = await start()
    for delete_status in (204, 200):
        fake.delete_status = delete_status
        video = await relay.create()
        assert (await relay.wait(video["id"]))["status"] == "completed"
        [upstream_id] = fake.tasks
        resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
        assert resp.status == 200
        [call] = fake.calls(f"/v1/tasks/{upstream_id}", "DELETE")
        assert call.headers["X-Runway-Version"] == VERSION
        assert fake.tasks == {}
    fake.fail_next("delete", "unavailable")  # best effort: the record goes all the same
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200 and await listed(relay) == []


IDLE = {"interval_s": 60, "max_interval_s": 60}  # only cancel asks the upstream


async def cancel(relay: Relay, video_id: str) -> tuple[int, dict[str, Any]]:
    resp = await relay.client.post(f"/v1/videos/{video_id}/cancel", headers=auth())
    return resp.status, await resp.json()


@pytest.mark.parametrize("cancelled_reads", [1, 0])
async def test_cancel_deletes_an_active_task(start: Start, fake: RunwayFake, cancelled_reads: int):
    fake.polls_to_finish, fake.cancelled_reads = 1000, cancelled_reads
    relay = await start(polling=IDLE)
    video = await relay.create()
    [task] = fake.tasks.values()
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    [look] = fake.calls(f"/v1/tasks/{task.id}", "GET")[-1:]
    [call] = fake.calls(f"/v1/tasks/{task.id}", "DELETE")
    assert call.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert look.headers["X-Runway-Version"] == call.headers["X-Runway-Version"] == VERSION
    assert task.cancelled


async def test_cancel_of_a_job_that_just_finished_keeps_its_result(start: Start, fake: RunwayFake):
    fake.polls_to_finish = 1  # done at the first look upstream
    relay = await start(polling=IDLE)
    video = await relay.create()
    [upstream_id] = fake.tasks
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["status"] == "completed" and body["error"] is None, body
    # never a DELETE of a finished task: on Runway that deletes the task and its output
    assert fake.calls(f"/v1/tasks/{upstream_id}", "DELETE") == []
    assert (await content(relay, video["id"])).status == 200


@pytest.mark.parametrize(("op", "case"), [("poll", "unavailable"), ("delete", "internal"),
                                          ("delete", "auth")])  # fmt: skip
async def test_a_failed_cancel_is_a_502_and_the_task_runs_on(
    start: Start, fake: RunwayFake, op: str, case: str
):
    fake.polls_to_finish = 1000
    relay = await start(polling=IDLE)
    video = await relay.create()
    fake.fail_next(op, case)
    status, body = await cancel(relay, video["id"])
    assert status == 502 and body["error"]["code"] == "upstream_error"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")
    if case != "auth":
        status, body = await cancel(relay, video["id"])  # and a retry works
        assert status == 200 and body["error"]["code"] == "cancelled"


# --- failover and cooldown by the policy table ------------------------------------------------


@pytest.fixture
async def two(
    fake: RunwayFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
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
    ("case", "state", "tried_again"),
    [
        ("shed", "ready", True),  # one hiccup, turned away before a task existed
        ("unavailable", "ready", True),
        ("rate_limit", "rate_limited", False),  # paused for the default wait
        ("daily", "rate_limited", False),
        ("credits", "quota", False),
        ("auth", "credentials", False),
        ("version", "credentials", False),  # the relay's own configuration fault
    ],
)
async def test_failover_and_cooldown(
    two: Relay, fake: RunwayFake, case: str, state: str, tried_again: bool
):
    fake.fail_next("submit", case)
    video = await two.create()
    assert await channel_of(two, video["id"]) == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == state
    again = await two.create()
    assert len(fake.calls("/v1/text_to_video", "POST")) == (2 if tried_again else 1)
    assert await channel_of(two, again["id"]) == ("first" if tried_again else "second")
    assert (await two.wait(video["id"]))["status"] == "completed"


@pytest.mark.parametrize("case", ["internal", "overloaded"])
async def test_a_create_that_may_have_made_a_task_is_not_failed_over(
    two: Relay, fake: RunwayFake, case: str
):
    fake.fail_next("submit", case)
    video = await two.create()
    assert video["status"] == "failed" and await channel_of(two, video["id"]) == "first"


async def test_a_rejected_request_is_not_failed_over(two: Relay, fake: RunwayFake):
    resp = await two.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0
    assert await listed(two) == []


# --- the SDK, and the key ----------------------------------------------------------------------


async def test_official_sdk_flow(start: Start, fake: RunwayFake):
    relay = await start(options={"remix_model": "aleph2", "min_poll_s": 0})
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
        assert (framed.status, framed.seconds) == ("completed", "4")
        assert fake.creates("image_to_video")[-1]["promptImage"].startswith("data:image/png;")
        remix = await client.videos.remix(video.id, prompt="at night")
        assert remix.remixed_from_video_id == video.id
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
        running = await client.videos.create(prompt="stop me #slow")
        fake.tasks[list(fake.tasks)[-1]].polls = -10_000  # keep it running upstream
        stopped = await relay.client.post(f"/v1/videos/{running.id}/cancel", headers=auth())
        assert stopped.status == 200
        cancelled = await client.videos.retrieve(running.id)
        assert cancelled.status == "failed" and cancelled.error is not None
        assert cancelled.error.code == "cancelled"
        await client.videos.delete(video.id)
        assert fake.calls("/v1/tasks/", "DELETE")
    finally:
        await client.close()


async def test_the_key_never_leaks(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "key_" + secrets.token_hex(32)
    upstream = RunwayFake(api_key=canary)
    await upstream.start()

    def config(**options: Any) -> Config:
        channel = upstream.channel(upstream.base_url)
        channel["options"] = {**channel["options"], **options}
        return make_config(storage={"keep_videos": False}, channels=[channel])

    try:
        relay: Relay = await start_relay(config(remix_model="aleph2"))
        seen: list[str] = []
        ok = await relay.create(seconds="6")
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        seen.append((await (await content(relay, ok["id"])).read()).decode("latin-1"))
        resp = await relay.client.post(
            f"/v1/videos/{ok['id']}/remix", json={"prompt": "y"}, headers=auth()
        )
        seen.append(await resp.text())
        for prompt in ("x #fail", "x #moderation", "x #third_party"):
            failed = await relay.create(prompt=prompt)
            seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.polls_to_finish = 10_000
        running = await relay.create()
        seen.append(json.dumps(await cancel(relay, running["id"])))
        upstream.polls_to_finish = 2
        upstream.answers["poll"].append(Canned(401, f"Invalid API key provided: {canary}"))
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        seen.append(await (await relay.client.get("/v1/videos", headers=auth())).text())
        seen.append(await (await relay.client.get("/", headers=auth())).text())
        resp = await relay.client.delete(f"/v1/videos/{ok['id']}", headers=auth())
        seen.append(await resp.text())
        # a failed submit cools the only channel down: one fresh relay per error
        for status, message in (
            (401, f"Invalid API key provided: {canary}"),
            (400, f"Validation of body failed for Bearer {canary}"),
            (429, "slow down"),
            (500, f"trace for {canary}"),
            (400, f"You do not have enough credits ({canary})"),
        ):
            fresh: Relay = await start_relay(config())
            upstream.answers["submit"].append(Canned(status, message))
            resp = await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        assert all(not queue for queue in upstream.answers.values())
        for text in seen:
            assert canary not in text and upstream.base_url not in text
            assert "cdn/" not in text  # nor the signed output URL
        assert canary not in logs.text
        for record in logs.records:
            assert canary not in record.getMessage()
        assert set(upstream.cdn_stats.auth_headers) == {None}
        assert set(upstream.cdn_version_headers) == {None}
    finally:
        await upstream.close()


# --- the fake itself: the page's routes, checks and odd cases -----------------------------------


async def call(
    fake: RunwayFake, method: str, path: str, *, version: str | None = VERSION,
    key: str | None = None, **kwargs: Any,
) -> tuple[int, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    if version is not None:
        headers["X-Runway-Version"] = version
    headers.update(kwargs.pop("headers", {}))
    url = fake.url(path)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, **kwargs) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text) if text else None
        except ValueError:
            return resp.status, text


async def test_the_fake_checks_auth_then_the_version_header(fake: RunwayFake):
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}
    path = "/v1/text_to_video"
    assert (await call(fake, "POST", path, json=body, headers={"Authorization": "Basic x"}))[
        0
    ] == 401
    status, error = await call(fake, "POST", path, json=body, key="key_" + "1" * 64)
    assert (status, error) == (401, {"error": "Invalid API key provided."})
    wrong_both = await call(fake, "POST", path, json=body, key="key_" + "1" * 64, version=None)
    assert wrong_both[0] == 401  # the key is checked before the version
    for version in (None, "2023-01-01"):
        status, error = await call(fake, "POST", path, json=body, version=version)
        assert status == 400 and "X-Runway-Version" in error["error"]
    for method, route in (("GET", "/v1/tasks/x"), ("DELETE", "/v1/tasks/x"),
                          ("GET", "/v1/organization")):  # fmt: skip
        assert (await call(fake, method, route, version=None))[0] == 400
    fake.version_status = 401
    assert (await call(fake, "POST", path, json=body, version=None))[0] == 401
    assert fake.tasks == {}


async def test_the_fake_task_lifecycle_and_its_answers(fake: RunwayFake):
    fake.polls_to_finish, fake.throttled_polls, fake.estimate = 4, 1, True
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}
    status, created = await call(fake, "POST", "/v1/text_to_video", json=body)
    assert status == 200 and set(created) == {"id", "estimatedCost"}
    seen = []
    for _ in range(4):
        status, task = await call(fake, "GET", f"/v1/tasks/{created['id']}")
        seen.append((task["status"], task.get("progress")))
    assert seen[:3] == [("PENDING", None), ("THROTTLED", None), ("RUNNING", 0.75)]
    assert task["status"] == "SUCCEEDED" and task["createdAt"].endswith("Z")
    url = task["output"][0]
    _, again = await call(fake, "GET", f"/v1/tasks/{created['id']}")
    assert again["output"][0] != url  # signed afresh
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200 and await resp.read() == VIDEO
        async with session.get(url.replace("_jwt=eyJ", "_jwt=eyj")) as resp:
            assert resp.status == 403  # not byte for byte
    status, _ = await call(fake, "PUT", f"/v1/tasks/{created['id']}")
    assert status == 405
    status, answer = await call(fake, "DELETE", f"/v1/tasks/{created['id']}")
    assert (status, answer) == (204, None)  # a finished task is deleted, with its output
    assert await call(fake, "GET", f"/v1/tasks/{created['id']}") == (
        404, {"error": "Task not found"},
    )  # fmt: skip
    async with aiohttp.ClientSession() as session, session.get(again["output"][0]) as resp:
        assert resp.status == 404


@pytest.mark.parametrize(
    ("endpoint", "body", "path"),
    [
        ("text_to_video", {"model": "gen4.5", "prompt_text": "x"}, []),  # snake_case
        ("text_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "1280:720",
                           "duration": "5"}, ["duration"]),
        ("text_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "16:9",
                           "duration": 5}, ["ratio"]),
        ("text_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "1280:720"},
         ["duration"]),
        ("text_to_video", {"model": "gen4_turbo", "promptText": "x", "ratio": "1280:720"},
         ["model"]),
        ("text_to_video", {"model": "veo3", "promptText": "x", "ratio": "1280:720",
                           "duration": 6}, ["duration"]),
        ("image_to_video", {"model": "gen4.5", "ratio": "1280:720", "duration": 5,
                            "promptImage": "https://a.example.com/f.png"}, ["promptText"]),
        ("image_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "1280:720",
                            "duration": 5, "promptImage": [
                                {"uri": "https://a.example.com/f.png", "position": "first"},
                                {"uri": "https://a.example.com/l.png", "position": "last"}]},
         ["promptImage"]),
        ("image_to_video", {"model": "veo3.1", "ratio": "1280:720", "promptImage": [
            {"uri": "https://a.example.com/l.png", "position": "last"}]}, ["promptImage"]),
        ("image_to_video", {"model": "happyhorse_1_0", "ratio": "1280:720",
                            "promptImage": "https://a.example.com/f.png"}, ["ratio"]),
        ("text_to_video", {"model": "gen4.5", "promptText": "x", "ratio": "1280:720",
                           "duration": 5, "seed": -1}, ["seed"]),
        ("text_to_video", {"model": "veo3.1", "promptText": "x", "ratio": "1280:720",
                           "seed": 1}, []),
        ("video_to_video", {"model": "aleph2", "promptText": "x"}, ["videoUri"]),
    ],
)  # fmt: skip
async def test_the_fake_validates_bodies_per_model(
    fake: RunwayFake, endpoint: str, body: dict[str, Any], path: list[str]
):
    status, error = await call(fake, "POST", f"/v1/{endpoint}", json=body)
    assert status == 400 and error["error"] == "Validation of body failed", error
    assert error["issues"][0]["path"] == path and error["docUrl"].startswith("https://")


@pytest.mark.parametrize(
    ("body", "endpoint"),
    [
        ({"model": "gen4_turbo", "promptImage": "https://a.example.com/f.png",
          "ratio": "1584:672", "duration": 7}, "image_to_video"),  # 2-10 on gen4_turbo
        ({"model": "veo3.1", "promptText": "x", "ratio": "1920:1080", "duration": 8,
          "audio": True, "negativePrompt": "text"}, "text_to_video"),
        ({"model": "seedance2", "promptText": "x", "ratio": "992:432",
          "references": [{"uri": "https://a.example.com/r.png"}]}, "image_to_video"),
        ({"model": "happyhorse_1_0", "promptImage": "https://a.example.com/f.png",
          "resolution": "1080P"}, "image_to_video"),
        ({"model": "aleph2", "promptText": "x", "videoUri": "https://a.example.com/v.mp4",
          "ratio": "anything", "targetAspectRatio": "21:9",
          "keyframes": [{"uri": "https://a.example.com/k.png", "seconds": 1}],
          "contentModeration": {"publicFigureThreshold": "low"}}, "video_to_video"),
        ({"model": "gemini_omni_flash", "promptText": "x",
          "promptVideo": data_uri(VIDEO, "video/mp4")}, "video_to_video"),
    ],
)  # fmt: skip
async def test_the_fake_takes_every_form_the_page_lists(
    fake: RunwayFake, body: dict[str, Any], endpoint: str
):
    status, created = await call(fake, "POST", f"/v1/{endpoint}", json=body)
    assert status == 200, created


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://a.example.com/f.png", "https"),
        ("https://203.0.113.9/f.png", "domain name"),
        ("https://a.example.com/" + "x" * 2048, "2048"),
        ("data:;base64,AAAA", "base64 data URI"),
        ("data:image/png,raw", "base64 data URI"),
        ("data:video/mp4;base64,AAAA", "not image"),
        ("data:image/png;base64," + "A" * (5 * 1024 * 1024), "exceeds 5 MB"),
        ("runway://upload/never", "unknown or expired"),
        ("https://a.example.com/redirects.png", "redirected"),
    ],
)
async def test_the_fake_refuses_assets_naming_them(fake: RunwayFake, uri: str, words: str):
    fake.unusable_urls.add("https://a.example.com/redirects.png")
    body = {"model": "gen4_turbo", "promptImage": uri, "ratio": "1280:720"}
    status, error = await call(fake, "POST", "/v1/image_to_video", json=body)
    assert status == 400 and "promptImage" in error["error"] and words in error["error"]


async def test_the_fake_checks_image_shape_when_asked(fake: RunwayFake):
    fake.check_image_shape = True
    body = {"model": "gen4_turbo", "promptImage": data_url(png(30, 10)), "ratio": "1280:720"}
    status, error = await call(fake, "POST", "/v1/image_to_video", json=body)
    assert status == 400 and "aspect" in error["error"]
    body["promptImage"] = data_url(png(16, 9))
    assert (await call(fake, "POST", "/v1/image_to_video", json=body))[0] == 200


async def test_the_fake_upload_flow(fake: RunwayFake):
    status, slot = await call(fake, "POST", "/v1/uploads",
                              json={"filename": "x.png", "type": "ephemeral"})  # fmt: skip
    assert status == 200 and slot["runwayUri"].startswith("runway://")
    assert (await call(fake, "POST", "/v1/uploads", json={"filename": "x.png"}))[0] == 400
    form = aiohttp.FormData()
    for name, value in slot["fields"].items():
        form.add_field(name, value)
    form.add_field("file", png(), filename="x.png", content_type="image/png")
    async with aiohttp.ClientSession() as session, session.post(slot["uploadUrl"], data=form) as r:
        assert r.status == 204  # no Runway header goes to the bucket
    body = {"model": "gen4_turbo", "promptImage": slot["runwayUri"], "ratio": "1280:720"}
    assert (await call(fake, "POST", "/v1/image_to_video", json=body))[0] == 200
    fake.uploads[slot["runwayUri"]] = 0  # 24 h later
    assert (await call(fake, "POST", "/v1/image_to_video", json=body))[0] == 400


async def test_the_fake_organization(fake: RunwayFake):
    status, org = await call(fake, "GET", "/v1/organization")
    assert status == 200 and org["creditBalance"] == fake.credit_balance
    limits = org["tier"]["models"]["gen4.5"]
    assert set(limits) == {"maxConcurrentGenerations", "maxDailyGenerations"}
    assert set(MODELS) <= set(org["tier"]["models"])


async def test_the_fake_cancel_forms(fake: RunwayFake):
    fake.polls_to_finish, fake.delete_status = 10, 200
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}
    _, created = await call(fake, "POST", "/v1/text_to_video", json=body)
    assert await call(fake, "DELETE", f"/v1/tasks/{created['id']}") == (200, {})
    status, task = await call(fake, "GET", f"/v1/tasks/{created['id']}")
    assert (status, task["status"]) == (200, "CANCELLED")  # fetched once more, then gone
    assert (await call(fake, "GET", f"/v1/tasks/{created['id']}"))[0] == 404
    fake.cancelled_reads = 0
    _, created = await call(fake, "POST", "/v1/text_to_video", json=body)
    await call(fake, "DELETE", f"/v1/tasks/{created['id']}")
    assert (await call(fake, "GET", f"/v1/tasks/{created['id']}"))[0] == 404


async def test_an_upload_too_big_for_a_data_uri_goes_up_by_runways_upload(
    start: Start, fake: RunwayFake
):
    relay = await start()
    big = png(16, 9) + b"\x00" * (4 * 1024 * 1024)  # over 5 MB as a data URI
    form = aiohttp.FormData()
    form.add_field("prompt", "animate this")
    form.add_field("input_reference", big, filename="big.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=form, headers=auth())
    video = await resp.json()
    assert resp.status == 200, video
    [create] = fake.creates("image_to_video")
    assert create["promptImage"].startswith("runway://upload/")
    assert create["promptImage"] in fake.uploads  # the fake's bucket took the file
    [slot] = fake.calls("/v1/uploads", "POST")
    assert slot.json() == {"filename": "input.png", "type": "ephemeral"}
    assert slot.headers["X-Runway-Version"] == VERSION
    [put] = fake.calls("/upload-bucket", "POST")
    assert "Authorization" not in put.headers and "X-Runway-Version" not in put.headers
    assert (await relay.wait(video["id"]))["status"] == "completed"
