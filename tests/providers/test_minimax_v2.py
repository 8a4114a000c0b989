"""MiniMax H3 on the V2 API: translation on the page's recorded bodies, the adapter over a stub
wire, then the relay against the fake (spec/providers/minimax-v2.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer, unused_port

from relay import hosting
from relay.app import create_app
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
from relay.providers.http import Reply
from relay.providers.minimax_v2 import MinimaxV2Options, MinimaxV2Provider
from relay.providers.minimax_v2 import request as request_module
from relay.providers.minimax_v2.models import accepts
from relay.providers.minimax_v2.request import build, check_sizes, inputs, to_host
from relay.providers.minimax_v2.response import (
    URL_TTL_S,
    classify,
    task_error,
    task_id,
    task_update,
    timestamp,
    url_expiry,
)
from relay.tasks.create import first_interval
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.minimax_v2 import H3, H3_MAX, MinimaxV2Fake
from tests.images import data_url, png

FIXTURES = Path(__file__).parent / "fixtures" / "minimax_v2"
NOW = 1_785_125_000.0
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
MP3 = b"ID3\x03\x00\x00\x00" + b"\x00" * 64


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on (`model`)."""
    model = fields.pop("model", H3)
    fields.setdefault("prompt", "a rocket over the dunes")
    fields.setdefault("seconds", 5)
    parsed = Size.parse(fields.pop("size", "1280x720"))
    assert parsed is not None
    return VideoRequest(model=model, size=parsed, **fields), model


def native(default_resolution: str = "768P", **fields: Any) -> Any:
    request, model = job(**fields)
    urls = [i.source.url_or_data_url() for i in inputs(request)]
    return build(request, model, default_resolution, urls)


def provider(**options: Any) -> MinimaxV2Provider:
    return MinimaxV2Provider(ChannelView("mm", MinimaxV2Options(**options), api_key="k"), None)


FIRST = Image(url="https://cdn.example.com/frame.png")
LAST = Image(role="last_frame", url="https://cdn.example.com/last.png")
REFERENCE = Image(role="reference_image", url="https://cdn.example.com/character.png")
VIDEO_REF = Media(kind="video", url="https://cdn.example.com/ref.mp4", role="reference_video")
AUDIO_REF = Media(kind="audio", url="https://cdn.example.com/voice.mp3", role="reference_audio")


# --- requests -------------------------------------------------------------------------------


def test_text_request_is_the_page_example():
    example = fixture("request_text")
    text = example["content"][0]["text"]
    body = native(prompt=text, seconds=10, size="2560x1440").body
    assert body == example
    assert not {"seconds", "size", "prompt", "image", "first_frame_image"} & set(body)


def test_first_frame_request_is_the_page_example():
    example = fixture("request_first_frame")
    text = example["content"][0]["text"]
    assert native(prompt=text, seconds=8, images=(FIRST,)).body == example


def test_reference_request_is_the_page_example_with_adaptive_from_metadata():
    example = fixture("request_reference")
    text = example["content"][0]["text"]
    sent = native(prompt=text, size="1920x1080", media=(VIDEO_REF, AUDIO_REF))
    assert sent.body["ratio"] == "16:9"  # no image: the relay sends a concrete ratio
    chosen = native(
        prompt=text, size="1920x1080", media=(VIDEO_REF, AUDIO_REF), metadata={"ratio": "adaptive"}
    )
    assert chosen.body == example
    assert chosen.size == "1920x1080"  # adaptive: the requested size is the best guess


@pytest.mark.parametrize(
    ("images", "media", "items"),
    [
        ((FIRST,), (), [("image_url", "first_frame", FIRST.url)]),
        ((LAST,), (), [("image_url", "last_frame", LAST.url)]),
        ((FIRST, Image(url="https://a.test/2.png")), (),
         [("image_url", "first_frame", FIRST.url), ("image_url", "last_frame", "https://a.test/2.png")]),
        ((LAST, FIRST), (),
         [("image_url", "first_frame", FIRST.url), ("image_url", "last_frame", LAST.url)]),
        ((REFERENCE, REFERENCE), (), [("image_url", "reference_image", REFERENCE.url)] * 2),
        ((REFERENCE,), (VIDEO_REF, AUDIO_REF),
         [("image_url", "reference_image", REFERENCE.url),
          ("video_url", "reference_video", VIDEO_REF.url),
          ("audio_url", "reference_audio", AUDIO_REF.url)]),
    ],
)  # fmt: skip
def test_each_input_kind_is_a_typed_content_item_with_its_role(
    images: tuple[Image, ...], media: tuple[Media, ...], items: list[tuple[str, str, str]]
):
    body = native(images=images, media=media).body
    assert body["content"][0] == {"type": "text", "text": "a rocket over the dunes"}
    assert [(i["type"], i["role"], i[i["type"]]["url"]) for i in body["content"][1:]] == items
    assert body["ratio"] == ("adaptive" if images else "16:9")


def test_bytes_are_sent_as_data_urls_with_their_prefix():
    upload = Image(data=png(), mime="image/png")
    clip = Media(kind="video", data=MP4, mime="video/mp4", role="reference_video")
    [frame] = native(images=(upload,)).body["content"][1:]
    assert frame["image_url"]["url"] == data_url(png())
    [ref] = native(media=(clip,)).body["content"][1:]
    assert ref["video_url"]["url"].startswith("data:video/mp4;base64,")


@pytest.mark.parametrize(("seconds", "sent"), [(12, 12), (2, 4), (20, 15), (4, 4), (15, 15)])
def test_duration_is_an_integer_clamped_to_4_to_15(seconds: int, sent: int):
    found = native(seconds=seconds)
    assert found.body["duration"] == sent and type(found.body["duration"]) is int
    assert found.seconds == sent


@pytest.mark.parametrize(
    ("model", "size", "default", "resolution", "ratio", "reported"),
    [
        (H3, "1280x720", "768P", "768P", "16:9", "1344x768"),
        (H3, "720x1280", "768P", "768P", "9:16", "768x1344"),
        (H3, "1920x1080", "768P", "2K", "16:9", "2560x1440"),
        (H3, "1080x1920", "768P", "2K", "9:16", "1440x2560"),
        (H3, "1024x1024", "768P", "2K", "1:1", "1440x1440"),
        (H3, "899x899", "2K", "768P", "1:1", "768x768"),
        (H3, "2560x1080", "768P", "2K", "21:9", "3360x1440"),
        (H3, "640x480", "768P", "768P", "4:3", "1024x768"),
        (H3, "480x640", "768P", "768P", "3:4", "768x1024"),
        (H3, "16:9", "768P", "768P", "16:9", "1344x768"),  # a bare ratio: the channel's default
        (H3, "16:9", "2K", "2K", "16:9", "2560x1440"),
        (H3, "16:9", "480P", "768P", "16:9", "1344x768"),  # 480P is not an H3 tier
        (H3_MAX, "854x480", "768P", "480P", "16:9", "832x480"),
        (H3_MAX, "1280x720", "768P", "768P", "16:9", "1344x768"),
        (H3_MAX, "1920x1080", "768P", "768P", "16:9", "1344x768"),
        (H3_MAX, "9:16", "2K", "768P", "9:16", "768x1344"),  # 2K is not an H3-Max tier
        (H3_MAX, "9:16", "480P", "480P", "9:16", "480x832"),
    ],
)
def test_size_becomes_an_upper_case_tier_and_a_ratio(
    model: str, size: str, default: str, resolution: str, ratio: str, reported: str
):
    found = native(default, model=model, size=size)
    assert (found.body["resolution"], found.body["ratio"]) == (resolution, ratio)
    assert found.size == reported


def test_with_an_image_the_ratio_is_adaptive_and_the_requested_size_is_reported():
    found = native(images=(FIRST,), size="720x1280")
    assert found.body["ratio"] == "adaptive" and found.size == "720x1280"
    assert native(images=(FIRST,), size="9:16").size == "768x1344"


def test_hints_v2_has_no_field_for_are_dropped():
    found = native(negative_prompt="blur", seed=7, generate_audio=False, enhance_prompt=True)
    assert set(found.body) == {"model", "content", "resolution", "duration", "ratio"}
    assert found.dropped == ("negative_prompt", "seed", "generate_audio", "enhance_prompt")


def test_metadata_merges_without_what_the_relay_controls():
    found = native(
        metadata={
            "aigc_watermark": True,
            "ratio": "21:9",
            "model": "MiniMax-H3-Max",
            "callback_url": "https://evil.example.test/hook",
            "api_key": "stolen",
            "duration": 12,
        }
    )
    body = found.body
    assert body["aigc_watermark"] is True and body["model"] == H3
    assert not {"callback_url", "api_key"} & set(body)
    assert (found.seconds, found.size) == (12, "1792x768")  # what actually went upstream


def test_a_metadata_content_list_replaces_the_array_and_is_checked():
    own = [
        {"type": "text", "text": "my own words"},
        {"type": "image_url", "image_url": {"url": "mm_file://381"}, "role": "first_frame"},
    ]
    assert native(images=(FIRST,), metadata={"content": own}).body["content"] == own
    for bad, why in (
        ([{"type": "image_url", "image_url": {"url": "mm_file://1"}, "role": "first_frame"}],
         "text item"),
        ([{"type": "text", "text": "  "}], "text item"),
        ([{"type": "text", "text": "x"}, {"role": "first_frame"}, {"role": "reference_video"}],
         "cannot mix"),
        ("not a list", "list of objects"),
        ([{"type": "text", "text": "x" * 7001}], "7000"),
    ):  # fmt: skip
        with pytest.raises(Rejected) as refused:
            native(metadata={"content": bad})
        assert refused.value.param == "metadata.content" and why in refused.value.message


def test_the_prompt_is_checked_before_any_call():
    assert native(prompt="x" * 7000).body["content"][0]["text"] == "x" * 7000
    for prompt in ("x" * 7001, "   "):
        with pytest.raises(Rejected) as refused:
            native(prompt=prompt)
        assert refused.value.param == "prompt" and refused.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("model", "images", "media", "why"),
    [
        (H3_MAX, (REFERENCE,), (), "first and last frames only"),
        (H3_MAX, (), (VIDEO_REF,), "first and last frames only"),
        (H3, (FIRST, LAST, Image(url="https://a.test/3.png")), (), "at most two frame images"),
        (H3, (FIRST, REFERENCE), (), "cannot mix"),
        (H3, (LAST,), (VIDEO_REF,), "cannot mix"),
        (H3, (REFERENCE,) * 10, (), "at most 9 reference images"),
        (H3, (), (VIDEO_REF,) * 4, "at most 3 reference video"),
        (H3, (REFERENCE,), (AUDIO_REF,) * 4, "at most 3 reference audio"),
        (H3, (REFERENCE,) * 9, (VIDEO_REF, VIDEO_REF, VIDEO_REF, AUDIO_REF), "at most 12"),
        (H3, (), (AUDIO_REF,), "beside a reference audio"),
    ],
)
def test_check_refuses_what_minimax_answers_400_to(
    model: str, images: tuple[Image, ...], media: tuple[Media, ...], why: str
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(model=model, images=images, media=media))
    assert why in refused.value.message


def test_check_accepts_each_mode_and_remix_is_not_offered():
    mm = provider()
    mm.check(*job())
    mm.check(*job(model=H3_MAX, images=(FIRST, LAST)))
    mm.check(*job(images=(REFERENCE,) * 9, media=(VIDEO_REF, VIDEO_REF, AUDIO_REF)))
    mm.check(*job(media=(VIDEO_REF, AUDIO_REF)))
    assert not mm.can_remix(H3) and mm.can_cancel(H3) and mm.can_cancel(H3_MAX)
    with pytest.raises(Unsupported):
        mm.check(*job(remix_of="video_1"))


def test_accepts_offers_every_second_and_each_ratio_per_tier():
    seconds, sizes = accepts(H3)
    assert seconds == tuple(range(4, 16))
    assert len(sizes) == 12 and {"1344x768", "2560x1440", "3360x1440", "768x768"} <= set(sizes)
    assert "832x480" in accepts(H3_MAX)[1] and "2560x1440" not in accepts(H3_MAX)[1]


def test_inputs_over_the_pages_size_limits_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
):
    loud = Media(kind="audio", data=b"\x00" * (15 * 1024 * 1024 + 1), mime="audio/mpeg",
                 param="input_reference.content[1].audio_url.url")  # fmt: skip
    request, _ = job(images=(REFERENCE,), media=(loud,))
    with pytest.raises(Rejected) as refused:
        check_sizes(inputs(request))
    assert refused.value.param == loud.param and "15 MB" in refused.value.message
    monkeypatch.setitem(request_module._LIMITS, "video", 10)
    monkeypatch.setitem(request_module._LIMITS, "image", 10)
    clip = Media(kind="video", data=MP4, mime="video/mp4", param="input_reference.content[0]")
    for found in ((Image(data=png(), mime="image/png"),), ()):
        request, _ = job(images=found, media=() if found else (clip,))
        with pytest.raises(Rejected):
            check_sizes(inputs(request))


def test_which_bytes_the_relay_hosts(monkeypatch: pytest.MonkeyPatch):
    audio = Media(kind="audio", data=MP3, mime="audio/mpeg", role="reference_audio")
    clip = Media(kind="video", data=MP4 * 4, mime="video/mp4", role="reference_video")
    picture = Image(role="reference_image", data=png(), mime="image/png")
    request, _ = job(images=(picture, REFERENCE), media=(clip, VIDEO_REF, audio))
    found = inputs(request)  # picture, REFERENCE, clip, VIDEO_REF, audio
    assert to_host(found) == {4}  # audio: the page documents no data URL for it
    assert to_host(found, everything=True) == {0, 2, 4}  # URLs are never hosted
    monkeypatch.setattr(request_module, "_INLINE_BUDGET", 200)
    assert to_host(found) == {2, 4}  # the largest data URL goes first, until the rest fits
    monkeypatch.setattr(request_module, "_INLINE_BUDGET", 10)
    assert to_host(found) == {0, 2, 4}


# --- answers --------------------------------------------------------------------------------


def test_create_answer():
    assert task_id(fixture("create"), "") == "424010985738629"
    assert task_id({"task_id": 424010985738629}, "") == "424010985738629"
    with pytest.raises(Unavailable) as unsure:
        task_id({}, "HTTP 200: {}")
    assert unsure.value.maybe_created is True


def poll(name_or_body: str | dict[str, Any]) -> Any:
    body = fixture(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return task_update(body["task"], now=NOW)


@pytest.mark.parametrize(
    ("name", "status", "progress", "code"),
    [
        ("query_queued", "queued", 0, None),
        ("query_running", "in_progress", None, None),  # no progress field: the relay estimates
        ("query_succeeded", "completed", 100, None),
        ("query_failed", "failed", None, "moderation_blocked"),
        ("query_failed_internal", "failed", None, "generation_failed"),
        ("query_cancelled", "failed", None, "cancelled"),
        ("query_expired", "failed", None, "task_expired"),
    ],
)
def test_the_status_table(name: str, status: str, progress: int | None, code: str | None):
    found = poll(name)
    assert found.status == status and found.progress == progress
    assert (found.error.code if found.error else None) == code
    if status == "failed":
        assert found.completed_at == fixture(name)["task"]["updated_at"]


def test_succeeded_keeps_the_url_as_received_and_its_expiry():
    found = poll("query_succeeded")
    url = fixture("query_succeeded")["task"]["content"]["url"]
    assert found.state == {"video_url": url, "expires_at": 1785212346.0}
    assert (found.seconds, found.size) == ("5", "2560x1440")
    assert (found.completed_at, found.expires_at) == (1785125946.0, 1785212346.0)


def test_without_expires_the_url_lives_the_assumed_9_hours():
    task = fixture("query_succeeded")["task"]
    plain = {**task, "content": {"url": "https://cdn.hailuoai.com/o.mp4?Signature=x"}}
    found = task_update(plain, now=NOW)
    assert found.expires_at == 1785125946.0 + URL_TTL_S == found.state["expires_at"]
    assert url_expiry("https://c.test/o.mp4?Expires=1785212346000") is None  # not 10 digits
    assert url_expiry("https://c.test/o.mp4?Expires=soon") is None
    assert url_expiry("https://c.test/o.mp4?a=1&Expires=1785212346") == 1785212346.0


def test_succeeded_without_a_url_is_a_failure_with_no_output():
    task = {**fixture("query_succeeded")["task"], "content": {}}
    found = task_update(task, now=NOW)
    assert found.status == "failed" and found.error.code == "generation_failed"
    assert "no output" in found.error.message and found.state == {}


def test_failed_tasks_keep_the_native_code_and_message():
    assert (
        poll("query_failed").error.message == "1026: video description contains sensitive content"
    )
    failed = fixture("query_failed")["task"]
    for error, code in (
        ({"code": "1027", "message": "output blocked"}, "moderation_blocked"),
        ({"code": 1026, "message": "input"}, "moderation_blocked"),  # a number read too
        ({"code": "2056", "message": "prompt has sensitive words"}, "moderation_blocked"),
        ({"code": "1013", "message": "internal error"}, "generation_failed"),
        (None, "generation_failed"),
    ):
        found = task_error({**failed, "error": error})
        assert found.code == code, error
    assert task_error({**failed, "error": {"code": 1026, "message": "x"}}).message == "1026: x"


def test_an_unknown_status_keeps_the_previous_one():
    found = poll({"task": {"status": "paused"}})
    assert found.status is None and found.unknown_status == "paused"
    assert poll({"task": {"status": "RUNNING"}}).status == "in_progress"  # case is forgiven


def test_timestamps_are_seconds_as_integers_or_numeric_strings():
    assert timestamp(1785125946) == timestamp("1785125946") == 1785125946.0
    assert timestamp("soon") is None and timestamp(None) is None
    task = {**fixture("query_succeeded")["task"], "updated_at": "1785125946"}
    assert task_update(task, now=NOW).completed_at == 1785125946.0


def test_an_adaptive_task_reports_no_size_of_its_own():
    task = {**fixture("query_succeeded")["task"], "ratio": "adaptive"}
    assert task_update(task, now=NOW).size is None


PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "raw", "about_task", "error_type", "code"),
    [
        (401, fixture("error_auth"), None, False, AuthFailed, "upstream_auth_failed"),
        (403, None, "", True, AuthFailed, "upstream_auth_failed"),
        (402, fixture("error_balance"), None, False, QuotaExceeded, "insufficient_quota"),
        (402, None, "insufficient balance", False, QuotaExceeded, "insufficient_quota"),
        (429, None, "", True, RateLimited, "rate_limit_exceeded"),
        (422, fixture("error_moderation"), None, False, Rejected, "moderation_blocked"),
        (400, {"error": {"type": "x", "message": "prompt contains sensitive words"}}, None, False,
         Rejected, "moderation_blocked"),
        (400, fixture("error_invalid_ratio"), None, False, Rejected, "invalid_request"),
        (413, None, "", False, Rejected, "invalid_request"),
        (409, None, "", True, Rejected, "invalid_request"),
        (400, fixture("error_invalid_task"), None, True, TaskNotFound, "task_expired"),
        (404, fixture("error_invalid_task"), None, True, TaskNotFound, "task_expired"),
        (404, None, "invalid task_id", True, TaskNotFound, "task_expired"),
        (400, fixture("error_invalid_task"), None, False, Rejected, "invalid_request"),
        (404, None, "", True, Rejected, "invalid_request"),  # keyed on the message, not 404
        (500, None, PAGE, False, Unavailable, "upstream_error"),
        (502, None, PAGE, True, Unavailable, "upstream_error"),
        (503, None, "", False, Unavailable, "upstream_error"),
        (529, None, "", False, Unavailable, "upstream_error"),
        (200, {"base_resp": {"status_code": 1004, "status_msg": "login fail"}}, None, False,
         AuthFailed, "upstream_auth_failed"),
        (400, {"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}, None,
         False, QuotaExceeded, "insufficient_quota"),
        (400, {"base_resp": {"status_code": 2013, "status_msg": "invalid params, duration"}},
         None, False, Rejected, "invalid_request"),
        (200, {"base_resp": {"status_code": 2013, "status_msg": "invalid task_id"}}, None, True,
         TaskNotFound, "task_expired"),
    ],
)  # fmt: skip
def test_the_classification_table(
    status: int,
    body: Any,
    raw: str | None,
    about_task: bool,
    error_type: type,
    code: str,
):
    text = json.dumps(body) if raw is None else raw
    exc = classify(status, {}, body, text, about_task=about_task)
    assert type(exc) is error_type and exc.code == code
    assert "<" not in exc.message


def test_a_5xx_on_create_may_have_made_a_billed_task():
    for status in (500, 502, 503, 504, 529):
        made = classify(status, {}, None, "", creating=True)
        assert isinstance(made, Unavailable) and made.maybe_created is True
        assert classify(status, {}, None, "").maybe_created is False  # type: ignore[attr-defined]
    refused = classify(429, {"Retry-After": "7"}, None, "", creating=True)
    assert isinstance(refused, RateLimited) and refused.retry_after == 7


def test_messages_carry_the_type_and_message_and_name_the_field():
    exc = classify(402, {}, fixture("error_balance"), "raw-body")
    assert "insufficient_balance_error: insufficient balance" in exc.message
    assert exc.detail == "HTTP 402: raw-body"
    bad = classify(400, {}, fixture("error_invalid_ratio"), "")
    assert isinstance(bad, Rejected) and bad.param == "size"
    for message, param in (
        ("duration must be an integer from 4 to 15", "seconds"),
        ("invalid resolution '768p'", "size"),
        ("content[1].role 'x' is invalid for image_url", "input_reference"),
        ("text must be a string of at most 7000 characters", "prompt"),
        ("something else", None),
    ):
        found = classify(400, {}, {"error": {"message": message}}, "")
        assert isinstance(found, Rejected) and found.param == param, message
    plain = classify(500, {}, None, PAGE)
    assert plain.message == "the upstream failed (HTTP 500)"


# --- the adapter over a stub wire -------------------------------------------------------------


class StubHttp:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200, **headers: str) -> Reply:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return Reply(status, {"Content-Type": "application/json", **headers}, raw)


def wired(*replies: Reply, **options: Any) -> tuple[MinimaxV2Provider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView(
        "mm", MinimaxV2Options(**options), base_url="https://api.minimaxi.com/", api_key="mm-k"
    )
    return MinimaxV2Provider(channel, http), http  # type: ignore[arg-type]


def ref(upstream_id: str = "424010985738629", **state: Any) -> TaskRef:
    return TaskRef("video_x", upstream_id, H3, state, NOW, "5", "1344x768", "queued")


BASE = "https://api.minimaxi.com"


async def test_submit_poll_and_content_over_the_wire():
    mm, http = wired(answer(fixture("create")), answer(fixture("query_succeeded")))
    submitted = await mm.submit(*job(seconds=10, size="1920x1080"))
    assert (submitted.upstream_id, submitted.seconds, submitted.size) == (
        "424010985738629", "10", "2560x1440",
    )  # fmt: skip
    found = await mm.poll(ref("a/b"))
    (m1, u1, k1), (m2, u2, k2) = http.sent
    assert (m1, u1) == ("POST", f"{BASE}/v2/video_generation")
    assert k1["json"]["duration"] == 10 and k1["json"]["resolution"] == "2K"
    # the id is a path segment, never a query string
    assert (m2, u2, k2.get("params")) == ("GET", f"{BASE}/v2/query/video_generation/a%2Fb", None)
    for kwargs in (k1, k2):
        assert kwargs["headers"] == {"Authorization": "Bearer mm-k", "Accept": "application/json"}
    assert not any("/v1/" in url for _, url, _ in http.sent)
    done = TaskRef("video_x", "a", H3, dict(found.state), NOW, "5", "2560x1440", "completed")
    source = await mm.content(done, "video")
    assert isinstance(source, Remote)
    assert source.url == fixture("query_succeeded")["task"]["content"]["url"]  # as received
    assert source.headers == {} and not source.trusted  # never the key to the CDN
    with pytest.raises(NotReady):
        await mm.content(ref(), "video")


@pytest.mark.parametrize(("interval", "expected"), [(None, 10.0), (0, None), (30, 30.0)])
async def test_polls_are_paced_by_the_option(interval: float | None, expected: float | None):
    options = {} if interval is None else {"poll_interval_s": interval}
    mm, _ = wired(
        answer(fixture("query_queued")),
        answer(fixture("query_running")),
        answer(fixture("query_succeeded")),
        **options,
    )
    assert (await mm.poll(ref())).poll_after_s == expected
    assert (await mm.poll(ref())).poll_after_s == expected
    assert (await mm.poll(ref())).poll_after_s is None  # nothing more to ask


class HostStub:
    """relay.hosting.SCOPE for unit tests: what was hosted, under which field."""

    def __init__(self) -> None:
        self.hosted: list[tuple[str, str]] = []

    async def url(self, data: bytes, mime: str, param: str) -> str:
        self.hosted.append((mime, param))
        return f"https://relay.example.org/v1/files/token{len(self.hosted)}"


@pytest.fixture
def scope() -> Iterator[HostStub]:
    stub = HostStub()
    token = hosting.SCOPE.set(stub)  # type: ignore[arg-type]
    yield stub
    hosting.SCOPE.reset(token)


AUDIO_PARAM = "input_reference.content[2].audio_url.url"


def with_bytes() -> tuple[VideoRequest, str]:
    picture = Image(role="reference_image", data=png(), mime="image/png")
    clip = Media(kind="video", data=MP4, mime="video/mp4", role="reference_video")
    voice = Media(kind="audio", data=MP3, mime="audio/mpeg", role="reference_audio",
                  param=AUDIO_PARAM)  # fmt: skip
    return job(images=(picture,), media=(clip, voice))


async def test_audio_bytes_are_hosted_and_images_and_video_go_as_data_urls(scope: HostStub):
    mm, http = wired(answer(fixture("create")))
    await mm.submit(*with_bytes())
    content = http.sent[0][2]["json"]["content"]
    assert content[1]["image_url"]["url"] == data_url(png())
    assert content[2]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert content[3]["audio_url"]["url"] == "https://relay.example.org/v1/files/token1"
    assert scope.hosted == [("audio/mpeg", AUDIO_PARAM)]


async def test_a_body_over_64_mb_hosts_its_largest_bytes(
    scope: HostStub, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(request_module, "_INLINE_BUDGET", 150)  # room for the image alone
    mm, http = wired(answer(fixture("create")))
    await mm.submit(*with_bytes())
    content = http.sent[0][2]["json"]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/png")  # small enough to stay
    assert content[2]["video_url"]["url"].startswith("https://relay.example.org/")
    assert [mime for mime, _ in scope.hosted] == ["video/mp4", "audio/mpeg"]


async def test_without_a_hosting_scope_audio_bytes_are_refused_naming_the_field():
    mm, http = wired(answer(fixture("create")))
    with pytest.raises(Unsupported) as refused:
        await mm.submit(*with_bytes())
    assert AUDIO_PARAM in refused.value.message and http.sent == []


async def test_a_bad_prompt_is_refused_before_anything_is_hosted(scope: HostStub):
    mm, http = wired()
    request, model = with_bytes()
    with pytest.raises(Rejected):
        await mm.submit(VideoRequest(**{**request.__dict__, "prompt": ""}), model)
    assert scope.hosted == [] and http.sent == []


# --- cancel and delete on the stub wire ---------------------------------------------------------


def deleted(name: str = "delete_cancelled") -> Reply:
    return answer(fixture(name))


def error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": message, "http_code": status}}
    return answer(body, status)


async def test_cancel_of_a_queued_task_asks_then_deletes():
    mm, http = wired(answer(fixture("query_queued")), deleted())
    await mm.cancel(ref())
    (m1, u1, _), (m2, u2, k2) = http.sent
    assert (m1, u1) == ("GET", f"{BASE}/v2/query/video_generation/424010985738629")
    assert (m2, u2) == ("DELETE", f"{BASE}/v2/video_generation/424010985738629")
    assert k2["headers"]["Authorization"] == "Bearer mm-k"


@pytest.mark.parametrize("name", ["query_running", "query_succeeded", "query_failed"])
async def test_cancel_never_deletes_a_running_or_finished_task(name: str):
    mm, http = wired(answer(fixture(name)))
    with pytest.raises(CancelRefused) as refused:
        await mm.cancel(ref())
    assert "queued" in refused.value.message
    assert [method for method, _, _ in http.sent] == ["GET"]  # the record and result stay


@pytest.mark.parametrize("status", [400, 409])
async def test_cancel_refused_by_the_delete_in_the_race(status: int):
    mm, _ = wired(
        answer(fixture("query_queued")), error(status, "task is running and cannot be cancelled")
    )
    with pytest.raises(CancelRefused):
        await mm.cancel(ref())


@pytest.mark.parametrize(
    ("reply", "raised"),
    [
        (error(400, "invalid task_id"), TaskNotFound),  # gone between the calls: settled
        (error(404, "invalid task_id", "not_found_error"), TaskNotFound),
        (error(401, "invalid api key", "authorized_error"), AuthFailed),
        (answer("<html>502</html>", 502), Unavailable),
    ],
)
async def test_cancel_delete_errors_are_classified(reply: Reply, raised: type):
    mm, _ = wired(answer(fixture("query_queued")), reply)
    with pytest.raises(raised):
        await mm.cancel(ref())


async def test_cancel_of_a_task_minimax_no_longer_knows_is_not_found():
    mm, http = wired(error(400, "invalid task_id"))
    with pytest.raises(TaskNotFound):
        await mm.cancel(ref())
    assert len(http.sent) == 1


async def test_a_delete_that_found_the_task_finished_is_logged(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    mm, _ = wired(answer(fixture("query_queued")), deleted("delete_deleted"))
    await mm.cancel(ref())
    assert "deleted its record" in caplog.text


@pytest.mark.parametrize(
    "reply",
    [deleted("delete_deleted"), deleted(), error(400, "invalid task_id"),
     error(409, "task is running and cannot be cancelled")],
)  # fmt: skip
async def test_delete_is_best_effort(reply: Reply, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    mm, http = wired(reply)
    await mm.delete(ref())
    assert http.sent[0][:2] == ("DELETE", f"{BASE}/v2/video_generation/424010985738629")
    if reply.status == 409:
        assert "refused to delete" in caplog.text


async def test_delete_outages_are_raised_for_the_relay_to_log():
    mm, _ = wired(answer("", 503))
    with pytest.raises(Unavailable):
        await mm.delete(ref())


# --- context IR (options.context_ir) on the stub wire -----------------------------------------


def ir_task(status: str, **fields: Any) -> Reply:
    task = {**fixture("query_context_ir")["task"], "status": status, **fields}
    if status != "succeeded":
        task.pop("content")
    return answer({"task": task})


async def test_context_ir_expands_the_prompt_then_generates():
    expanded = fixture("query_context_ir")["task"]["content"]["prompt"]
    mm, http = wired(
        answer({"task_id": "ir-1"}),
        ir_task("queued"),
        ir_task("running"),
        ir_task("succeeded"),
        answer({"task_id": "gen-1"}),
        answer(fixture("query_queued")),
        answer(fixture("query_succeeded")),
        context_ir=True,
    )
    assert mm.typical_run_s == 420.0
    submitted = await mm.submit(*job(prompt="a captain", seconds=10, images=(FIRST,)))
    assert submitted.upstream_id == "ir-1"
    method, url, kwargs = http.sent[0]
    assert (method, url) == ("POST", f"{BASE}/v2/h3_context_ir")
    assert kwargs["json"] == {
        "content": [
            {"type": "text", "text": "a captain"},
            {"type": "image_url", "image_url": {"url": FIRST.url}, "role": "first_frame"},
        ],
        "duration": 10,
        "ratio": "adaptive",
    }
    task = ref("ir-1", **submitted.state)
    seen = []
    for _ in range(5):
        update = await mm.poll(task)
        seen.append(update.status)
        task = TaskRef(
            "video_x", "ir-1", H3, {**task.state, **update.state}, NOW, "10", "x", "queued"
        )
    assert seen == ["queued", "in_progress", "in_progress", "in_progress", "completed"]
    generation = http.sent[4]
    assert generation[:2] == ("POST", f"{BASE}/v2/video_generation")
    assert generation[2]["json"]["content"][0] == {"type": "text", "text": expanded}
    assert generation[2]["json"]["resolution"] == "768P"
    assert [u for _, u, _ in http.sent[5:]] == [f"{BASE}/v2/query/video_generation/gen-1"] * 2
    assert task.state["task_id"] == "gen-1" and task.state["pending"] is None


async def test_context_ir_keeps_hosted_urls_in_the_state_not_bytes(scope: HostStub):
    mm, _ = wired(answer({"task_id": "ir-1"}), context_ir=True)
    upload = Image(data=png(), mime="image/png")
    submitted = await mm.submit(*job(images=(upload,)))
    pending = submitted.state["pending"]
    assert pending["content"][1]["image_url"]["url"].startswith("https://relay.example.org/")
    assert scope.hosted == [("image/png", "input_reference")]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (answer("", 500), "upstream_error"),  # maybe made: never sent twice
        (error(400, "invalid ratio"), "invalid_request"),
        (error(422, "sensitive", "unprocessable_entity_error"), "moderation_blocked"),
    ],
)
async def test_a_generation_the_expansion_cannot_start_fails_the_task(reply: Reply, code: str):
    mm, http = wired(ir_task("succeeded"), reply, context_ir=True)
    pending = {"model": H3, "content": [{"type": "text", "text": "x"}], "ratio": "16:9"}
    update = await mm.poll(ref("ir-1", context_ir="ir-1", pending=pending))
    assert update.status == "failed" and update.error is not None and update.error.code == code
    assert len(http.sent) == 2


async def test_a_rate_limited_generation_is_sent_again_at_the_next_poll():
    mm, _ = wired(ir_task("succeeded"), error(429, "slow down", "rate_limit_error"))
    pending = {"model": H3, "content": [{"type": "text", "text": "x"}], "ratio": "16:9"}
    with pytest.raises(RateLimited):
        await mm.poll(ref("ir-1", context_ir="ir-1", pending=pending))


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (ir_task("failed", error={"code": "1000", "message": "x"}), "generation_failed"),
        (ir_task("cancelled"), "cancelled"),
        (ir_task("succeeded", content={}), "generation_failed"),
    ],
)
async def test_an_expansion_that_fails_fails_the_task(reply: Reply, code: str):
    mm, http = wired(reply)
    update = await mm.poll(ref("ir-1", context_ir="ir-1", pending={"content": []}))
    assert update.status == "failed" and update.error is not None
    assert update.error.code == code and update.error.message.startswith("context IR")
    assert len(http.sent) == 1


@pytest.mark.parametrize(("status", "calls"), [("queued", ["GET", "DELETE"]), ("running", ["GET"]),
                                               ("succeeded", ["GET"])])  # fmt: skip
async def test_cancel_while_expanding_stops_before_the_generation(status: str, calls: list[str]):
    mm, http = wired(ir_task(status), deleted())
    await mm.cancel(ref("ir-1", context_ir="ir-1", pending={"content": []}))
    assert [method for method, _, _ in http.sent] == calls


def test_options_are_validated(make_config: Callable[..., Config]):
    channel = {"name": "m", "provider": "minimax-v2", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {
        "resolution": "768P", "context_ir": False, "poll_interval_s": 10.0,
    }  # fmt: skip
    assert config.channels[0].base_url is None  # https://api.minimax.io, the default
    for bad in ({"resolution": "2k"}, {"poll_interval_s": -1}, {"context_ir": "yes"}, {"x": 1}):
        with pytest.raises(ConfigError):
            make_config(channels=[{**channel, "options": bad}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])
    assert provider(resolution="2K").typical_run_s == 600.0


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[MinimaxV2Fake]:
    upstream = MinimaxV2Fake()
    await upstream.start()
    yield upstream
    await upstream.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    fake: MinimaxV2Fake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Start:
    async def run(polling: dict[str, Any] | None = None, **channel: Any) -> Relay:
        # no stored copies: content must come from the fake's CDN
        config = make_config(
            storage={"keep_videos": False},
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


async def test_create_poll_and_content_with_range(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(seconds="10", size="1280x720")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "10", "1344x768")
    [create] = fake.calls("/v2/video_generation", "POST")
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "model": H3,
        "content": [{"type": "text", "text": "a paper airplane over a lake"}],
        "resolution": "768P",
        "duration": 10,
        "ratio": "16:9",
    }
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("10", "1344x768")
    [task] = fake.tasks.values()
    assert done["completed_at"] == task.updated_at
    assert done["completed_at"] < done["expires_at"] <= done["completed_at"] + 86400 + 2
    polls = fake.calls("/v2/query/video_generation/", "GET")
    assert len(polls) == 3 and all(p.query == {} for p in polls)  # the id is in the path
    assert all(p.path == f"/v2/query/video_generation/{task.id}" for p in polls)
    assert not [r for r in fake.requests if r.path.startswith("/v1/")]

    whole = await content(relay, video["id"])
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert await whole.read() == VIDEO
    part = await content(relay, video["id"], Range="bytes=100-199")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await part.read() == VIDEO[100:200]
    assert fake.cdn_stats.auth_headers == [None, None]  # the key never went to the CDN
    assert "bytes=100-199" in fake.cdn_stats.range_headers


async def test_progress_moves_while_running(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 1000
    relay = await start()
    video = await relay.create()
    for _ in range(500):
        seen = await relay.get(video["id"])
        if seen["status"] == "in_progress" and seen["progress"] >= 1:
            break
        await asyncio.sleep(0.02)
    assert seen["status"] == "in_progress" and 1 <= seen["progress"] <= 95


@pytest.mark.parametrize(
    ("form", "sent"),
    [
        ({"image_url": "https://img.example.test/a.png"}, "https://img.example.test/a.png"),
        ({"image_url": data_url(png())}, data_url(png())),
    ],
)
async def test_first_frame_by_url_or_data_url(
    start: Start, fake: MinimaxV2Fake, form: dict[str, str], sent: str
):
    relay = await start()
    video = await relay.create(input_reference=form, size="720x1280", seconds="6")
    assert video["size"] == "720x1280"  # adaptive: the requested size
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert create["content"][1] == {"type": "image_url", "image_url": {"url": sent},
                                    "role": "first_frame"}  # fmt: skip
    assert create["ratio"] == "adaptive" and create["duration"] == 6


async def test_first_and_last_frames(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    items = [
        {"type": "image_url", "image_url": {"url": f"https://img.example.test/{r}.png"}, "role": r}
        for r in ("last_frame", "first_frame")
    ]
    video = await relay.create(model=H3_MAX, input_reference={"content": items}, size="854x480")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert [i.get("role") for i in create["content"]] == [None, "first_frame", "last_frame"]
    assert (create["model"], create["resolution"]) == (H3_MAX, "480P")


async def test_reference_images_video_and_audio(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    items = [
        {"type": "image_url", "image_url": {"url": "https://img.example.test/c.png"},
         "role": "reference_image"},
        {"type": "video_url", "video_url": {"url": data_url(MP4, "video/mp4")}},
        {"type": "audio_url", "audio_url": {"url": "https://cdn.example.test/voice.mp3"}},
    ]  # fmt: skip
    video = await relay.create(input_reference={"content": items}, size="1920x1080", seconds="5")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    assert [(i["type"], i.get("role")) for i in create["content"]] == [
        ("text", None),
        ("image_url", "reference_image"),
        ("video_url", "reference_video"),
        ("audio_url", "reference_audio"),
    ]
    assert create["content"][2]["video_url"]["url"] == data_url(MP4, "video/mp4")  # as is
    assert (create["resolution"], create["ratio"]) == ("2K", "adaptive")


async def test_a_video_data_url_over_a_megabyte_reaches_minimax(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    clip = MP4 + b"\x00" * (1536 * 1024)
    items = [{"type": "video_url", "video_url": {"url": data_url(clip, "video/mp4")}}]
    video = await relay.create(input_reference={"content": items})
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert fake.creates()[0]["ratio"] == "9:16"  # no image: a concrete ratio


@pytest.fixture
def start_public(
    fake: MinimaxV2Fake,
    aiohttp_client: Callable[..., Any],
    providers: dict[str, Any],
    make_config: Callable[..., Config],
) -> Start:
    """A relay whose public_url is its own address, so the fake can fetch what it hosts."""

    async def run(*, private: bool = True, **channel: Any) -> Relay:
        port = unused_port()
        server = {"public_url": f"http://127.0.0.1:{port}", "allow_private_networks": private}
        config = make_config(
            server=server,
            storage={"keep_videos": False},
            channels=[fake.channel(fake.base_url, **channel)],
        )
        app = create_app(config, providers=providers)
        return Relay(await aiohttp_client(TestServer(app, host="127.0.0.1", port=port)))

    return run


AUDIO_BYTES = [
    {"type": "video_url", "video_url": {"url": "https://cdn.example.test/ref.mp4"}},
    {"type": "audio_url", "audio_url": {"url": data_url(MP3, "audio/mpeg")}},
]


async def test_audio_bytes_reach_minimax_through_the_hosted_url(
    start_public: Start, fake: MinimaxV2Fake
):
    """The page documents data URLs for images and video only: audio bytes are served by the
    relay, and MiniMax fetches them."""
    relay = await start_public()
    video = await relay.create(prompt="she sings", input_reference={"content": AUDIO_BYTES})
    [create] = fake.creates()
    url = create["content"][2]["audio_url"]["url"]
    assert url.startswith(relay.url("/v1/files/")) and fake.fetched[url] == MP3
    assert create["content"][1]["video_url"]["url"] == "https://cdn.example.test/ref.mp4"
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_audio_bytes_need_a_public_url_minimax_reaches(
    start_public: Start, fake: MinimaxV2Fake
):
    relay = await start_public(private=False)  # a loopback public_url, taken at its word
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "input_reference": {"content": AUDIO_BYTES}},
        headers=auth(),
    )
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "input_reference.content[1].audio_url.url"
    assert "public_url" in error["message"]
    assert fake.creates() == []


async def test_context_ir_hosts_every_byte_input(start_public: Start, fake: MinimaxV2Fake):
    relay = await start_public(options={"poll_interval_s": 0, "context_ir": True})
    form = {"image_url": data_url(png())}
    video = await relay.create(prompt="animate", input_reference=form)
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [expansion] = fake.creates("/v2/h3_context_ir")
    [generation] = fake.creates()
    url = expansion["content"][1]["image_url"]["url"]
    assert url.startswith(relay.url("/v1/files/")) and fake.fetched[url] == png()
    assert generation["content"][1] == expansion["content"][1]


@pytest.mark.parametrize(
    ("model", "items"),
    [
        (H3, [{"type": "image_url", "image_url": {"url": "https://i.test/a.png"},
               "role": "first_frame"},
              {"type": "image_url", "image_url": {"url": "https://i.test/b.png"},
               "role": "reference_image"}]),
        (H3_MAX, [{"type": "image_url", "image_url": {"url": "https://i.test/a.png"},
                   "role": "reference_image"}]),
        (H3, [{"type": "audio_url", "audio_url": {"url": "https://i.test/a.mp3"}}]),
    ],
)  # fmt: skip
async def test_what_minimax_refuses_never_reaches_it(
    start: Start, fake: MinimaxV2Fake, model: str, items: list[dict[str, Any]]
):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "model": model, "input_reference": {"content": items}},
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_a_long_prompt_is_a_400_naming_it(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "x" * 7001}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "prompt" and "7000" in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("prompt", "knobs", "code", "message"),
    [
        ("a storm #fail", {}, "generation_failed", "1000: unknown error"),
        ("a storm #moderation", {}, "moderation_blocked", "1027: video output contains"),
        ("a storm #moderation", {"moderation_code": "1026"}, "moderation_blocked", "1026: "),
        ("a storm #cancelled", {}, "cancelled", "cancelled"),
        ("a storm #expired", {}, "task_expired", "expired"),
        ("a storm #nooutput", {}, "generation_failed", "succeeded: the task has no content.url"),
    ],
)
async def test_failed_jobs_have_normalised_codes(
    start: Start,
    fake: MinimaxV2Fake,
    prompt: str,
    knobs: dict[str, Any],
    code: str,
    message: str,
):
    for name, value in knobs.items():
        setattr(fake, name, value)
    relay = await start()
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["expires_at"] is None
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(message)
    assert (await content(relay, video["id"])).status == 404


@pytest.mark.parametrize("status", [400, 404])
async def test_a_task_past_the_7_day_window_is_expired(
    start: Start, fake: MinimaxV2Fake, status: int
):
    fake.polls_to_finish = 100
    fake.invalid_task_status = status
    relay = await start()
    video = await relay.create()
    fake.forget_tasks()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")
    assert "invalid task_id" in done["error"]["message"]


async def test_an_unknown_status_keeps_the_task_going(start: Start, fake: MinimaxV2Fake):
    fake.status_override = "paused"
    relay = await start()
    video = await relay.create()
    for _ in range(100):
        if len(fake.calls("/v2/query/video_generation/", "GET")) >= 3:
            break
        await asyncio.sleep(0.02)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


@pytest.mark.parametrize(
    "knobs",
    [{"string_timestamps": True}, {"url_expires": False}, {"redirect": True}],
    ids=["string-timestamps", "no-expires", "redirect"],
)
async def test_the_unconfirmed_answer_forms(
    start: Start, fake: MinimaxV2Fake, knobs: dict[str, Any]
):
    for name, value in knobs.items():
        setattr(fake, name, value)
    relay = await start()
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and isinstance(done["completed_at"], int)
    [task] = fake.tasks.values()
    assert done["completed_at"] == task.updated_at
    if not fake.url_expires:
        assert done["expires_at"] == done["completed_at"] + 32400
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert set(fake.cdn_stats.auth_headers) == {None}


async def test_an_expired_url_is_signed_afresh(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    queries = len(fake.calls("/v2/query/video_generation/", "GET"))
    fake.expire_urls()
    served = fake.cdn_stats.requests
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    # the old URL was refused, one more query signed a new one, and that one served the file
    assert fake.cdn_stats.requests == served + 2
    assert len(fake.calls("/v2/query/video_generation/", "GET")) == queries + 1


async def test_input_moderation_is_a_content_policy_400(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "content_policy_violation"
    assert "sensitive" in error["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize(
    ("status", "message", "param"),
    [
        (400, "invalid ratio: adaptive requires an image input", "size"),
        (400, "duration must be an integer from 4 to 15", "seconds"),
        (413, "request body too large", None),
    ],
)
async def test_bad_requests_are_a_400_with_the_native_text(
    start: Start, fake: MinimaxV2Fake, status: int, message: str, param: str | None
):
    relay = await start()
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400
    assert (error["code"], error["param"]) == ("invalid_parameter", param)
    assert error["message"].endswith(message)
    assert await listed(relay) == []


@pytest.mark.parametrize("envelope", ["anthropic", "plain", "base_resp"])
@pytest.mark.parametrize(
    ("status", "message", "rate_limited"),
    [
        (429, "rate limit exceeded", True),
        (402, "insufficient balance", False),
        (401, "invalid api key", False),
    ],
)
async def test_submit_refusals_leave_no_task(
    start: Start,
    fake: MinimaxV2Fake,
    envelope: str,
    status: int,
    message: str,
    rate_limited: bool,
):
    fake.envelope = envelope
    relay = await start()
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=rate_limited)
    assert "127.0.0.1" not in body["error"]["message"]
    assert await listed(relay) == []


@pytest.mark.parametrize("status", [500, 503, 529])
async def test_a_5xx_on_create_fails_the_task_and_is_never_resent(
    start: Start, fake: MinimaxV2Fake, status: int
):
    relay = await start()
    fake.fail_next("submit", status, "internal error")
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "failed", body
    assert body["error"]["code"] == "upstream_error"
    assert len(fake.calls("/v2/video_generation", "POST")) == 1


async def test_a_wrong_key_is_refused_natively(
    fake: MinimaxV2Fake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    channel = {**fake.channel(fake.base_url), "api_key": "sk-api-wrong-key-0123456789"}
    relay: Relay = await start_relay(make_config(channels=[channel]))
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert fake.tasks == {}
    mm = relay.runtime.channels.get("minimax-v2")
    assert mm is not None and mm.health.state == "credentials"


@pytest.mark.parametrize(("status", "message"), [(429, "slow down"), (500, "x"), (503, "x")])
async def test_poll_errors_leave_the_task_running(
    start: Start, fake: MinimaxV2Fake, status: int, message: str
):
    relay = await start()
    fake.fail_next("poll", status, message)
    fake.fail_next("poll", status, message)
    video = await relay.create()
    assert (await relay.wait(video["id"], timeout=20))["status"] == "completed"
    assert fake.scripted["poll"] == []


async def test_remix_is_refused_and_regeneration_never_stands_in(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    source = await relay.create()
    assert (await relay.wait(source["id"]))["status"] == "completed"
    before = len(fake.requests)
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.requests) == before and fake.calls("/v2/video_regeneration") == []


async def test_deleting_a_finished_video_removes_the_record_upstream(
    start: Start, fake: MinimaxV2Fake
):
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [upstream_id] = fake.tasks
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    [call] = fake.calls(f"/v2/video_generation/{upstream_id}", "DELETE")
    assert call.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert fake.tasks == {}


async def test_context_ir_through_the_relay(start: Start, fake: MinimaxV2Fake):
    relay = await start(options={"poll_interval_s": 0, "context_ir": True})
    video = await relay.create(prompt="a captain at the window", seconds="10")
    done = await relay.wait(video["id"])
    assert done["status"] == "completed", done
    [expansion] = fake.creates("/v2/h3_context_ir")
    assert expansion == {
        "content": [{"type": "text", "text": "a captain at the window"}],
        "duration": 10,
        "ratio": "9:16",
    }
    [generation] = fake.creates()
    assert generation["content"][0]["text"].startswith("a captain at the window Slow dolly-in")
    assert await (await content(relay, video["id"])).read() == VIDEO


# --- cancel through the relay -------------------------------------------------------------------

IDLE_POLLER = {"interval_s": 60, "max_interval_s": 60}  # only cancel asks the upstream


async def cancel(relay: Relay, video_id: str) -> tuple[int, dict[str, Any]]:
    resp = await relay.client.post(f"/v1/videos/{video_id}/cancel", headers=auth())
    return resp.status, await resp.json()


async def test_cancel_of_a_queued_task(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 10
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    [task] = fake.tasks.values()
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "failed" and body["error"]["code"] == "cancelled"
    assert task.status == "cancelled"  # not billed, and the record stays
    [call] = fake.calls(f"/v2/video_generation/{task.id}", "DELETE")
    assert call.headers["Authorization"] == f"Bearer {fake.api_key}"
    models = await (await relay.client.get("/v1/models", headers=auth())).json()
    assert all(m["cancel"] for m in models["data"])


async def test_cancel_of_a_running_task_is_refused_and_it_runs_on(
    start: Start, fake: MinimaxV2Fake
):
    fake.polls_to_finish = 10
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    [task] = fake.tasks.values()
    task.status, task.polls = "running", 3
    status, body = await cancel(relay, video["id"])
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert "queued" in body["error"]["message"] and "runs on" in body["error"]["message"]
    assert fake.calls(f"/v2/video_generation/{task.id}", "DELETE") == []
    assert task.status == "running"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")


@pytest.mark.parametrize("refusal", [400, 409])
async def test_a_delete_refused_in_the_race_settles_on_the_poll(
    start: Start, fake: MinimaxV2Fake, refusal: int
):
    """The task left the queue between the adapter's look and its DELETE: MiniMax refuses, the
    relay polls once, and the task, still running, runs on."""
    fake.polls_to_finish = 10
    fake.running_delete_status = refusal
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    fake.fail_next("delete", refusal, "task is running and cannot be cancelled")
    status, body = await cancel(relay, video["id"])
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert (await relay.get(video["id"]))["status"] in ("queued", "in_progress")


async def test_a_job_that_just_finished_keeps_its_result(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 1  # done at the first look upstream
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    [upstream_id] = fake.tasks
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "completed" and body["error"] is None
    # never a DELETE of a finished task: it would delete the record and its result
    assert fake.calls(f"/v2/video_generation/{upstream_id}", "DELETE") == []
    assert upstream_id in fake.tasks
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO


async def test_a_job_that_just_failed_takes_its_real_outcome(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 1
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create(prompt="a storm #moderation")
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["status"] == "failed"
    assert body["error"]["code"] == "moderation_blocked"


async def test_a_cancel_outage_is_a_502_and_the_task_runs_on(start: Start, fake: MinimaxV2Fake):
    fake.polls_to_finish = 10
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    fake.fail_next("poll", 503, "service unavailable")
    status, body = await cancel(relay, video["id"])
    assert status == 502 and body["error"]["code"] == "upstream_error"
    assert "retry is safe" in body["error"]["message"]
    assert (await relay.get(video["id"]))["status"] == "queued"
    status, body = await cancel(relay, video["id"])  # and a retry works
    assert status == 200 and body["error"]["code"] == "cancelled"


async def test_a_task_gone_upstream_is_cancelled_without_a_delete(
    start: Start, fake: MinimaxV2Fake
):
    fake.polls_to_finish = 10
    relay = await start(polling=IDLE_POLLER)
    video = await relay.create()
    fake.forget_tasks()
    status, body = await cancel(relay, video["id"])
    assert status == 200 and body["error"]["code"] == "cancelled"
    assert fake.calls("/v2/video_generation/", "DELETE") == []


# --- failover and cooldown by the policy table ------------------------------------------------


@pytest.fixture
async def two(
    fake: MinimaxV2Fake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
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
    ("status", "message", "state"),
    [
        (429, "rate limit exceeded", "rate_limited"),  # paused for the default wait
        (402, "insufficient balance", "quota"),
        (401, "invalid api key", "credentials"),
        (403, "forbidden", "credentials"),
    ],
)
async def test_failover_and_cooldown(
    two: Relay, fake: MinimaxV2Fake, status: int, message: str, state: str
):
    fake.fail_next("submit", status, message)
    video = await two.create()
    assert await channel_of(two, video["id"]) == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == state
    again = await two.create()
    assert len(fake.creates()) == 1  # out of the rotation: the second went elsewhere too
    assert await channel_of(two, again["id"]) == "second"
    assert (await two.wait(video["id"]))["status"] == "completed"


async def test_a_5xx_on_create_is_not_failed_over(two: Relay, fake: MinimaxV2Fake):
    fake.fail_next("submit", 500, "internal error")
    resp = await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "failed"  # maybe billed: never resubmitted
    assert await channel_of(two, body["id"]) == "first"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 1
    again = await two.create()
    assert await channel_of(two, again["id"]) == "first"  # one failure: still in use


async def test_a_rejected_request_is_not_failed_over(two: Relay, fake: MinimaxV2Fake):
    for prompt in ("x #reject", "y"):
        if prompt == "y":
            fake.fail_next("submit", 400, "invalid ratio")
        resp = await two.client.post("/v1/videos", json={"prompt": prompt}, headers=auth())
        assert resp.status == 400
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0
    assert await listed(two) == []


# --- the SDK, and the key ----------------------------------------------------------------------


async def test_official_sdk_flow(start: Start, fake: MinimaxV2Fake):
    relay = await start()
    strict = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    client = openai.AsyncOpenAI(base_url=relay.base_url, api_key=ALICE, max_retries=0)
    try:
        # a first-frame job reports the requested size: one the strict SDK's literal lists
        framed = await strict.videos.create_and_poll(
            prompt="animate this", seconds="4", size="1280x720", poll_interval_ms=20,
            input_reference=("frame.png", png(1280, 720), "image/png"),
        )  # fmt: skip
        assert (framed.status, framed.seconds, framed.size) == ("completed", "4", "1280x720")
        first = fake.creates()[-1]["content"][1]
        assert first["role"] == "first_frame"
        assert first["image_url"]["url"].startswith("data:image/png;base64,")
        assert (await strict.videos.download_content(framed.id)).content == VIDEO
        # a text job reports 768P's own 768x1344, which that literal does not list
        video = await client.videos.create_and_poll(
            prompt="a lighthouse", seconds="8", size="720x1280", poll_interval_ms=20
        )
        assert (video.status, video.seconds, video.size) == ("completed", "8", "768x1344")
        assert (await client.videos.download_content(video.id)).content == VIDEO
        with pytest.raises(openai.BadRequestError):
            await client.videos.remix(video.id, prompt="at night")
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
        await client.videos.delete(video.id)
    finally:
        await strict.close()
        await client.close()


@pytest.mark.parametrize("form", ["sk-api-", "eyJhbGciOiJSUzI1NiJ9.eyJHcm91cE5hbWUiOiJ4In0."])
async def test_the_key_never_leaks(
    form: str,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = form + "canary" + secrets.token_hex(16)  # MiniMax's key forms: sk-api-…, a JWT
    upstream = MinimaxV2Fake(api_key=canary)
    upstream.polls_to_finish = 1
    await upstream.start()

    def config(**polling: Any) -> Config:
        channels = [upstream.channel(upstream.base_url)]
        extra = {"polling": polling} if polling else {}
        return make_config(storage={"keep_videos": False}, channels=channels, **extra)

    try:
        relay: Relay = await start_relay(config())
        seen: list[str] = []
        ok = await relay.create(seconds="6")
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        seen.append((await (await content(relay, ok["id"])).read()).decode("latin-1"))
        for prompt in ("x #fail", "x #moderation", "x #nooutput"):
            failed = await relay.create(prompt=prompt)
            seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("poll", 401, f"invalid api key {canary}")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        seen.append(await (await relay.client.get("/v1/videos", headers=auth())).text())
        seen.append(await (await relay.client.get("/", headers=auth())).text())
        # the cancel path: a refusal quoting the key, and an outage
        idle: Relay = await start_relay(config(interval_s=60, max_interval_s=60))
        upstream.polls_to_finish = 10
        for script in ((409, f"running; key {canary}"), (500, f"trace for {canary}")):
            video = await idle.create()
            upstream.fail_next("delete", *script)
            resp = await idle.client.post(f"/v1/videos/{video['id']}/cancel", headers=auth())
            seen.append(await resp.text())
        # a failed submit cools the only channel down: one fresh relay per error
        for status, message in (
            (401, f"invalid api key {canary}"),
            (402, f"insufficient balance for {canary}"),
            (429, "slow down"),
            (500, f"trace for {canary}"),
            (400, f"invalid ratio {canary}"),
            (422, f"sensitive {canary}"),
        ):
            fresh: Relay = await start_relay(config())
            upstream.fail_next("submit", status, message)
            resp = await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
            seen.append(await resp.text())
        assert all(not queue for queue in upstream.scripted.values())
        for text in seen:
            assert canary not in text and upstream.base_url not in text
            assert canary[8:20] not in text
        for record in logs.records:
            assert canary not in record.getMessage() and canary[8:20] not in record.getMessage()
        assert set(upstream.cdn_stats.auth_headers) == {None}
    finally:
        await upstream.close()


# --- the fake follows the page ------------------------------------------------------------------


async def native_call(
    fake: MinimaxV2Fake, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {fake.api_key if key is None else key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.url(path), json=body, headers=headers) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


TEXT = [{"type": "text", "text": "a harbour at dawn"}]


def generation(**fields: Any) -> dict[str, Any]:
    return {"model": H3, "content": TEXT, "resolution": "768P", "duration": 5, "ratio": "16:9",
            **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (generation(resolution="768p"), 400, "resolution"),
        (generation(resolution="480P"), 400, "resolution"),
        (generation(model=H3_MAX, resolution="480P"), 200, ""),
        (generation(duration=3), 400, "duration"),
        (generation(duration=5.0), 400, "duration"),
        ({k: v for k, v in generation().items() if k != "duration"}, 400, "required"),
        ({k: v for k, v in generation().items() if k != "ratio"}, 400, "adaptive"),
        (generation(ratio="adaptive"), 400, "adaptive"),
        (generation(ratio="5:4"), 400, "ratio"),
        (generation(content=[{"type": "text", "text": ""}]), 400, "text"),
        (generation(content=[{"type": "text", "text": "x" * 7001}]), 400, "7000"),
        (generation(callback_url="http://x.test/cb"), 400, "callback_url"),
        (generation(callback_url="https://x.test/cb", aigc_watermark=True), 200, ""),
        (generation(aigc_watermark="yes"), 400, "aigc_watermark"),
        (generation(model="MiniMax-M3"), 400, "model"),
        (generation(content=[*TEXT,
            {"type": "image_url", "image_url": {"url": "mm_file://123"}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": "https://i.test/r.png"},
             "role": "reference_image"}]), 400, "mixed"),
        (generation(content=[*TEXT,
            {"type": "audio_url", "audio_url": {"url": data_url(MP3, "audio/mpeg")},
             "role": "reference_audio"},
            {"type": "video_url", "video_url": {"url": "https://v.test/r.mp4"},
             "role": "reference_video"}]), 400, "audio_url.url"),
        (generation(content=[*TEXT,
            {"type": "video_url", "video_url": {"url": data_url(MP4, "video/mp4")},
             "role": "reference_video"}], ratio="adaptive"), 200, ""),
        (generation(content=[*TEXT,
            {"type": "audio_url", "audio_url": {"url": "https://a.test/v.mp3"},
             "role": "reference_audio"}]), 400, "needs a reference image or video"),
        (generation(model=H3_MAX, resolution="768P", content=[*TEXT,
            {"type": "video_url", "video_url": {"url": "https://v.test/r.mp4"},
             "role": "reference_video"}]), 400, "reference"),
        (generation(content=[*TEXT,
            {"type": "video_url", "video_url": {"url": "https://v.test/r.mp4"},
             "role": "base_video"}]), 400, "role"),
    ],
)  # fmt: skip
async def test_the_fake_checks_the_create_body(
    fake: MinimaxV2Fake, body: dict[str, Any], status: int, words: str
):
    got, answer_ = await native_call(fake, "POST", "/v2/video_generation", body)
    assert got == status, answer_
    if status == 200:
        assert set(answer_) == {"task_id"}  # nothing else, no base_resp
    else:
        assert answer_["type"] == "error" and answer_["error"]["http_code"] == status
        assert words in answer_["error"]["message"]


async def test_the_fake_answers_auth_list_delete_and_the_other_routes(fake: MinimaxV2Fake):
    status, body = await native_call(fake, "POST", "/v2/video_generation", generation(), key="no")
    assert (status, body["error"]["type"]) == (401, "authorized_error")
    ids = []
    for _ in range(3):
        status, body = await native_call(fake, "POST", "/v2/video_generation", generation())
        ids.append(body["task_id"])
    status, found = await native_call(fake, "GET", "/v2/query/video_generation?page_size=2")
    assert status == 200 and found["total"] == 3 and len(found["items"]) == 2
    assert set(found) == set(fixture("list"))  # {"items": [task...], "total"}, newest first
    assert [i["id"] for i in found["items"]] == [ids[2], ids[1]]
    status, found = await native_call(
        fake, "GET", f"/v2/query/video_generation?filter.task_ids={ids[0]}&filter.status=queued"
    )
    assert [i["id"] for i in found["items"]] == [ids[0]]
    status, found = await native_call(fake, "DELETE", f"/v2/video_generation/{ids[0]}")
    assert found == {"task_id": ids[0], "action": "cancelled", "status": "cancelled"}
    for _ in range(fake.polls_to_finish):
        await native_call(fake, "GET", f"/v2/query/video_generation/{ids[1]}")
    status, found = await native_call(fake, "DELETE", f"/v2/video_generation/{ids[1]}")
    assert found == {"task_id": ids[1], "action": "deleted", "status": "succeeded"}
    status, found = await native_call(fake, "GET", f"/v2/query/video_generation/{ids[1]}")
    assert (status, found["error"]["message"]) == (400, "invalid task_id")
    await native_call(fake, "GET", f"/v2/query/video_generation/{ids[2]}")
    status, found = await native_call(fake, "DELETE", f"/v2/video_generation/{ids[2]}")
    assert status == 400  # running: refused
    regen = {"model": H3, "content": [{"type": "video_url", "role": "base_video",
                                       "video_url": {"url": "https://v.test/a.mp4"}}]}  # fmt: skip
    status, made = await native_call(fake, "POST", "/v2/video_regeneration", regen)
    assert status == 200
    for _ in range(fake.polls_to_finish):
        status, found = await native_call(
            fake, "GET", f"/v2/query/video_generation/{made['task_id']}"
        )
    assert found["task"]["resolution"] == "2K" and found["task"]["task_type"] == "regeneration"
    status, _ = await native_call(fake, "GET", "/v1/query/video_generation?task_id=1")
    assert status == 404  # no V1 paths here


@pytest.mark.parametrize("envelope", ["plain", "base_resp"])
async def test_the_fake_emits_each_error_form(fake: MinimaxV2Fake, envelope: str):
    fake.envelope = envelope
    status, body = await native_call(fake, "POST", "/v2/video_generation", generation(), key="x")
    assert status == 401
    if envelope == "plain":
        assert body == "invalid api key"
    else:
        assert body == {"base_resp": {"status_code": 1004, "status_msg": "invalid api key"}}


def test_the_first_check_after_submit_waits_for_minimaxs_floor():
    """The page: poll every 10 s or slower, the first poll included."""
    assert first_interval(provider(), 5.0) == 10.0
    assert first_interval(provider(poll_interval_s=0), 5.0) == 5.0
    assert first_interval(provider(), 30.0) == 30.0
