"""MiniMax: translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import asyncio
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
from relay.providers.base import ChannelView, NoOptions, PollRules, Update
from relay.providers.errors import (
    AuthFailed,
    NotReady,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    Unsupported,
    VariantUnavailable,
)
from relay.providers.http import Reply
from relay.providers.minimax import MinimaxProvider
from relay.providers.minimax.request import build
from relay.providers.minimax.response import (
    URL_TTL_S,
    Succeeded,
    completed,
    http_error,
    read_file,
    read_query,
    task_id,
)
from relay.routing import build_adapter
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.minimax import MinimaxFake
from tests.images import data_url, png

FIXTURES = Path(__file__).parent / "fixtures" / "minimax"
NOW = 1_750_000_000.0


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(**fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it goes to (the relay maps the public name)."""
    fields.setdefault("model", "MiniMax-Hailuo-02")
    fields.setdefault("prompt", "a fox running through snow [Tracking shot]")
    fields.setdefault("seconds", 4)
    parsed = Size.parse(fields.pop("size", "1280x720"))
    assert parsed is not None
    request = VideoRequest(size=parsed, **fields)
    return request, request.public_model


def provider() -> MinimaxProvider:
    return MinimaxProvider(ChannelView("minimax", NoOptions(), api_key="k"), None)


URL_IMAGE = Image(url="https://img.example.test/first.png?sig=a%2Bb")
UPLOAD = Image(data=png(), mime="image/png")
LAST = Image(role="last_frame", url="https://img.example.test/last.png")
REFERENCE = Image(role="reference_image", url="https://img.example.test/face.png")


# --- requests -------------------------------------------------------------------------------


def test_text_request_is_the_native_body():
    native = build(*job())
    assert native.body == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "a fox running through snow [Tracking shot]",  # camera commands pass through
        "duration": 6,
        "resolution": "768P",
    }
    assert (native.seconds, native.size, native.dropped) == (6, "1366x768", ())


@pytest.mark.parametrize(
    ("model", "seconds", "size", "images", "duration", "resolution", "reported"),
    [
        ("MiniMax-Hailuo-02", 7, "1280x720", (), 6, "768P", "1366x768"),
        ("MiniMax-Hailuo-02", 8, "1280x720", (), 10, "768P", "1366x768"),
        ("MiniMax-Hailuo-02", 20, "720x1280", (), 10, "768P", "1366x768"),  # t2v is 16:9
        ("MiniMax-Hailuo-2.3", 10, "1920x1080", (), 6, "1080P", "1920x1080"),
        ("MiniMax-Hailuo-2.3", 10, "3840x2160", (), 6, "1080P", "1920x1080"),
        ("MiniMax-Hailuo-2.3", 10, "16:9", (), 10, "768P", "1366x768"),
        ("MiniMax-Hailuo-2.3-Fast", 10, "640x360", (URL_IMAGE,), 10, "768P", "1366x768"),
        ("MiniMax-Hailuo-02", 10, "640x360", (), 10, "768P", "1366x768"),  # 512P is i2v only
        ("MiniMax-Hailuo-02", 10, "640x360", (URL_IMAGE,), 10, "512P", "910x512"),
        ("MiniMax-Hailuo-02", 10, "640x360", (URL_IMAGE, LAST), 10, "768P", "1366x768"),
        ("MiniMax-Hailuo-02", 6, "720x1280", (URL_IMAGE,), 6, "768P", "768x1366"),
        ("T2V-01", 10, "1920x1080", (), 6, "720P", "1280x720"),
        ("T2V-01-Director", 10, "1280x720", (), 6, "720P", "1280x720"),
        ("I2V-01-live", 10, "720x1280", (URL_IMAGE,), 6, "720P", "720x1280"),
        ("S2V-01", 3, "16:9", (REFERENCE,), 6, "720P", "1280x720"),
    ],
)
def test_seconds_and_size_per_model(
    model: str,
    seconds: int,
    size: str,
    images: tuple[Image, ...],
    duration: int,
    resolution: str,
    reported: str,
):
    native = build(*job(model=model, seconds=seconds, size=size, images=images))
    assert (native.body["duration"], native.body["resolution"]) == (duration, resolution)
    assert (native.seconds, native.size) == (duration, reported)


def test_images_go_as_urls_or_data_urls():
    by_url = build(*job(images=(URL_IMAGE,)))
    assert by_url.body["first_frame_image"] == "https://img.example.test/first.png?sig=a%2Bb"
    uploaded = build(*job(images=(UPLOAD,)))
    assert uploaded.body["first_frame_image"] == data_url(png())
    both = build(*job(images=(LAST, Image(role="first_frame", data=png(), mime="image/png"))))
    assert both.body["first_frame_image"] == data_url(png())
    assert both.body["last_frame_image"] == "https://img.example.test/last.png"
    loose = build(*job(images=(UPLOAD, URL_IMAGE)))  # no roles: first, then last
    assert (loose.body["first_frame_image"], loose.body["last_frame_image"]) == (
        data_url(png()),
        URL_IMAGE.url,
    )


def test_a_reference_image_is_the_subject_reference():
    native = build(*job(model="S2V-01", images=(REFERENCE,)))
    assert native.body["subject_reference"] == [
        {"type": "character", "image": ["https://img.example.test/face.png"]}
    ]
    assert "first_frame_image" not in native.body


def test_hints_minimax_has_and_has_not():
    native = build(
        *job(
            enhance_prompt=False,
            negative_prompt="blur",
            seed=7,
            generate_audio=True,
            person_generation="allow_all",
        )
    )
    assert native.body["prompt_optimizer"] is False
    for dropped in ("negative_prompt", "seed", "generate_audio", "audio", "person_generation"):
        assert dropped not in native.body
    assert native.dropped == ("negative_prompt", "seed", "generate_audio", "person_generation")


def test_metadata_deep_merges_without_controlled_keys():
    native = build(
        *job(
            seconds=10,
            metadata={
                "prompt_optimizer": False,
                "fast_pretreatment": True,
                "aigc_watermark": True,
                "model": "MiniMax-Hailuo-2.3",
                "callback_url": "https://evil.example.test/hook",
                "resolution": "1080P",
            },
        )
    )
    body = native.body
    assert body["model"] == "MiniMax-Hailuo-02"
    assert "callback_url" not in body
    assert (body["prompt_optimizer"], body["fast_pretreatment"], body["aigc_watermark"]) == (
        False,
        True,
        True,
    )
    # 1080P from metadata still forces 6 s, and the report follows what went upstream
    assert (body["duration"], native.seconds, native.size) == (6, 6, "1920x1080")
    explicit = build(*job(metadata={"duration": 10, "resolution": "1080P"}))
    assert explicit.body["duration"] == 10  # the client's own choice: MiniMax will judge it


def test_last_frame_and_subject_reference_from_metadata():
    native = build(
        *job(
            images=(URL_IMAGE,),
            metadata={"last_frame_image": "https://img.example.test/l.png"},
        )
    )
    assert native.body["last_frame_image"] == "https://img.example.test/l.png"
    subject = [{"type": "character", "image": ["https://img.example.test/s.png"]}]
    provider().check(*job(model="S2V-01", metadata={"subject_reference": subject}))


@pytest.mark.parametrize(
    ("model", "images", "media", "why"),
    [
        ("T2V-01", (URL_IMAGE,), (), "text-to-video only"),
        ("I2V-01", (), (), "needs a first-frame image"),
        ("MiniMax-Hailuo-2.3-Fast", (), (), "needs a first-frame image"),
        ("MiniMax-Hailuo-2.3", (URL_IMAGE, LAST), (), "does not take a last frame"),
        ("I2V-01", (URL_IMAGE, LAST), (), "does not take a last frame"),
        ("MiniMax-Hailuo-02", (LAST,), (), "first frame to go with"),
        ("MiniMax-Hailuo-02", (REFERENCE,), (), "S2V-01 does"),
        ("S2V-01", (), (), "reference image of the subject"),
        ("S2V-01", (REFERENCE, REFERENCE), (), "one subject reference"),
        ("S2V-01", (REFERENCE, URL_IMAGE), (), "cannot mix"),
        ("MiniMax-Hailuo-02", (), (Media(kind="video", url="https://a.test/v.mp4"),), "video"),
        ("MiniMax-Hailuo-02", (), (Media(kind="audio", url="https://a.test/a.mp3"),), "audio"),
    ],
)
def test_check_refuses_what_the_model_cannot_take(
    model: str, images: tuple[Image, ...], media: tuple[Media, ...], why: str
):
    with pytest.raises(Unsupported) as refused:
        provider().check(*job(model=model, images=images, media=media))
    assert why in refused.value.message


@pytest.mark.parametrize(
    ("model", "images"),
    [
        ("MiniMax-Hailuo-2.3", ()),
        ("MiniMax-Hailuo-2.3", (URL_IMAGE,)),
        ("MiniMax-Hailuo-2.3-Fast", (UPLOAD,)),
        ("MiniMax-Hailuo-02", (URL_IMAGE, LAST)),
        ("T2V-01-Director", ()),
        ("I2V-01-Director", (URL_IMAGE,)),
        ("S2V-01", (REFERENCE,)),
        ("some-future-hailuo", (URL_IMAGE,)),
    ],
)
def test_check_accepts_the_page_modes(model: str, images: tuple[Image, ...]):
    provider().check(*job(model=model, images=images))


# --- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "progress"),
    [
        ("query_preparing", "queued", 0),
        ("query_queueing", "queued", 0),
        ("query_processing", "in_progress", None),
        ("query_fail", "failed", None),
        ("query_moderation", "failed", None),
    ],
)
@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_every_status_of_the_page(
    name: str, status: str, progress: int | None, case: Callable[[str], str]
):
    body = fixture(name)
    body["status"] = case(body["status"])
    update = read_query(body, {})
    assert isinstance(update, Update)
    assert (update.status, update.progress) == (status, progress)


def test_success_names_a_file_to_retrieve_and_keeps_it_a_string():
    found = read_query(fixture("query_success"), {})
    assert found == Succeeded("176844028768320", "1920x1080")
    as_number = read_query({**fixture("query_success"), "file_id": 176844028768320}, {})
    assert isinstance(as_number, Succeeded) and as_number.file_id == "176844028768320"
    lower = read_query({**fixture("query_success"), "status": "success"}, {})
    assert isinstance(lower, Succeeded)


@pytest.mark.parametrize("file_id", ["", None, "missing"])
def test_success_without_a_file_id_is_not_done(file_id: Any):
    body = {**fixture("query_success"), "file_id": file_id}
    if file_id == "missing":
        del body["file_id"]
    update = read_query(body, {})
    assert isinstance(update, Update) and update.status == "in_progress"


def test_unknown_status_keeps_the_previous_one():
    update = read_query({**fixture("query_processing"), "status": "Rendering"}, {})
    assert isinstance(update, Update) and update.status is None and update.error is None
    assert update.unknown_status == "Rendering"  # the relay notes it once per channel


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("query_fail", "generation_failed", "task failed"),
        ("query_moderation", "moderation_blocked", "1027: output new_sensitive"),
    ],
)
def test_failures_carry_the_native_code(name: str, code: str, message: str):
    update = read_query(fixture(name), {})
    assert isinstance(update, Update) and update.error is not None
    assert (update.error.code, update.error.message) == (code, message)


@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_an_unknown_task_is_not_found(case: Callable[[str], str]):
    # the relay fails the task as task_expired with this message (PollRules: no grace window)
    body = fixture("query_unknown_task")
    body["status"] = case(body["status"])
    with pytest.raises(TaskNotFound) as gone:
        read_query(body, {})
    assert (gone.value.code, gone.value.message) == (
        "task_expired",
        "2013: invalid params, task not found",
    )


@pytest.mark.parametrize(
    ("status_code", "msg", "code"),
    [
        (1000, "unknown error", "upstream_error"),
        (1026, "input new_sensitive", "moderation_blocked"),
        (2013, "invalid params, image too small", "invalid_request"),
        (1008, "insufficient balance", "insufficient_quota"),
        (1002, "rate limit exceeded", None),
    ],
)
def test_a_fail_with_a_code_is_final(status_code: int, msg: str, code: str | None):
    body = {
        **fixture("query_fail"),
        "base_resp": {"status_code": status_code, "status_msg": msg},
    }
    if status_code == 1002:  # a rate limit is about the query, not the task: it raises
        with pytest.raises(RateLimited):
            read_query(body, {})
        return
    update = read_query(body, {})
    assert isinstance(update, Update) and update.status == "failed"
    assert update.error is not None and update.error.code == code
    assert update.error.message == f"{status_code}: {msg}"


def test_moderation_and_bad_params_fail_whatever_the_status():
    body = {**fixture("query_processing"), "base_resp": {"status_code": 1042, "status_msg": ""}}
    update = read_query(body, {})
    assert isinstance(update, Update) and update.error is not None
    assert update.error.code == "invalid_request"
    assert update.error.message == "1042: invisible-character ratio limit"


@pytest.mark.parametrize("status_code", [1002, 1039, 1041, 2045])
def test_a_rate_limited_poll_leaves_the_task(status_code: int):
    body = {"task_id": "", "status": "", "base_resp": {"status_code": status_code}}
    with pytest.raises(RateLimited) as limited:
        read_query(body, {"Retry-After": "3"})
    assert limited.value.retry_after == 3.0


@pytest.mark.parametrize("name", ["error_auth_missing", "error_auth_bad_key"])
def test_an_auth_error_on_a_poll_raises(name: str):
    with pytest.raises(AuthFailed):
        read_query({**fixture(name), "status": ""}, {})


@pytest.mark.parametrize("status_code", [1000, 1001, 1013, 1024, 1033, 1008, 4321])
def test_transient_codes_count_to_five_in_a_row(status_code: int):
    # the adapter classifies each one; the relay counts them and fails the task at the fifth
    # (test_five_transient_errors_in_a_row_fail_the_task), and a good answer resets its count
    body = {**fixture("query_processing"), "base_resp": {"status_code": status_code}}
    with pytest.raises(TransientError) as transient:
        read_query(body, {})
    assert transient.value.code == "upstream_error"
    assert transient.value.message.startswith(f"{status_code}: ")
    assert MinimaxProvider.poll_rules == PollRules(fail_after_errors=5)
    good = read_query(fixture("query_processing"), {})
    assert isinstance(good, Update) and good.status == "in_progress" and good.state == {}


@pytest.mark.parametrize(
    ("name", "error_type", "code", "message"),
    [
        (
            "error_auth_missing",
            AuthFailed,
            "upstream_auth_failed",
            "1004: login fail: missing API secret key in Authorization header",
        ),
        ("error_auth_bad_key", AuthFailed, "upstream_auth_failed", "2049: invalid api key"),
        ("error_rate_limit", RateLimited, "rate_limit_exceeded", "1002: rate limit exceeded"),
        ("error_no_balance", QuotaExceeded, "insufficient_quota", "1008: insufficient balance"),
        (
            "error_bad_request",
            Rejected,
            "invalid_request",
            "2013: invalid params, duration 10 not supported at 1080P",
        ),
        ("error_content_policy", Rejected, "moderation_blocked", "1026: input new_sensitive"),
    ],
)
def test_every_create_error_of_the_page(name: str, error_type: type, code: str, message: str):
    body = fixture(name)
    raw = json.dumps(body)
    exc = http_error(200, {}, body, raw, creating=True)
    assert type(exc) is error_type
    assert exc is not None and (exc.code, exc.message) == (code, message)
    assert exc.detail is not None and raw in exc.detail


@pytest.mark.parametrize(
    ("status_code", "error_type", "code"),
    [
        (1000, Unavailable, "upstream_error"),
        (1001, Unavailable, "upstream_error"),
        (1002, RateLimited, "rate_limit_exceeded"),
        (1004, AuthFailed, "upstream_auth_failed"),
        (1008, QuotaExceeded, "insufficient_quota"),
        (1013, Unavailable, "upstream_error"),
        (1024, Unavailable, "upstream_error"),
        (1026, Rejected, "moderation_blocked"),
        (1027, Rejected, "moderation_blocked"),
        (1033, Unavailable, "upstream_error"),
        (1039, RateLimited, "rate_limit_exceeded"),
        (1041, RateLimited, "rate_limit_exceeded"),
        (1042, Rejected, "invalid_request"),
        (2013, Rejected, "invalid_request"),
        (2045, RateLimited, "rate_limit_exceeded"),
        (2049, AuthFailed, "upstream_auth_failed"),
        (9999, Unavailable, "upstream_error"),
    ],
)
def test_every_status_code_of_the_page(status_code: int, error_type: type, code: str):
    body = {"task_id": "", "base_resp": {"status_code": status_code, "status_msg": ""}}
    exc = http_error(200, {}, body, "", creating=True)
    assert type(exc) is error_type and exc is not None and exc.code == code
    assert exc.message.startswith(f"{status_code}: ") and len(exc.message) > 6
    if isinstance(exc, Unavailable):
        assert exc.maybe_created is False  # an error answer: nothing was created
    if isinstance(exc, Rejected):
        assert exc.moderation == (code == "moderation_blocked")


def test_a_bad_parameter_names_the_client_field():
    exc = http_error(200, {}, fixture("error_bad_request"), "")
    assert isinstance(exc, Rejected) and exc.param == "seconds"
    image = {"base_resp": {"status_code": 2013, "status_msg": "invalid params, first_frame_image"}}
    assert getattr(http_error(200, {}, image, ""), "param", None) == "input_reference"


def test_the_http_status_is_not_trusted():
    assert http_error(200, {}, fixture("create_success"), "") is None
    # an error inside a non-200 still reads as its code
    assert isinstance(http_error(500, {}, fixture("error_rate_limit"), ""), RateLimited)
    limited = http_error(429, {"Retry-After": "9"}, None, "")
    assert isinstance(limited, RateLimited) and limited.retry_after == 9.0
    gateway = http_error(503, {}, None, "<html>")
    assert isinstance(gateway, Unavailable) and not gateway.maybe_created
    timeout = http_error(504, {}, None, "<html>", creating=True)
    assert isinstance(timeout, Unavailable) and timeout.maybe_created
    unreadable = http_error(200, {}, None, "<html>", creating=True)
    assert isinstance(unreadable, Unavailable) and unreadable.maybe_created


def test_create_answer_task_id():
    assert task_id(fixture("create_success")) == "106916112212032"
    assert task_id({"task_id": 106916112212032}) == "106916112212032"
    with pytest.raises(Unavailable) as unsure:
        task_id({"task_id": "", "base_resp": {"status_code": 0}})
    assert unsure.value.maybe_created


def test_retrieve_gives_both_urls_as_received():
    body = fixture("retrieve")
    assert read_file(body, {}) == (
        body["file"]["download_url"],
        body["file"]["backup_download_url"],
    )
    body["file"]["download_url"] = ""
    assert read_file(body, {}) == (fixture("retrieve")["file"]["backup_download_url"],)
    del body["file"]["backup_download_url"]
    with pytest.raises(Unavailable):
        read_file(body, {})
    gone = {"base_resp": {"status_code": 2013, "status_msg": "invalid params, file not found"}}
    with pytest.raises(TaskNotFound):
        read_file(gone, {})
    with pytest.raises(Unavailable):
        read_file({"file": fixture("retrieve")["file"]}, {})  # no base_resp: not trusted


def test_completion_keeps_the_file_id_and_never_the_url():
    update = completed(Succeeded("176844028768320", "1920x1080"), now=NOW)
    assert (update.status, update.progress, update.size) == ("completed", 100, "1920x1080")
    assert (update.completed_at, update.expires_at) == (NOW, NOW + 32400)
    assert update.state == {"file_id": "176844028768320"}
    assert URL_TTL_S == 9 * 3600


# --- the adapter over a stubbed wire ------------------------------------------------------------


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


def stubbed(*replies: Reply) -> tuple[MinimaxProvider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView("minimax", NoOptions(), base_url="https://api.minimaxi.com/", api_key="k")
    return MinimaxProvider(channel, http), http  # type: ignore[arg-type]


RUNNING = TaskRef(
    "video_x", "176843862716480", "MiniMax-Hailuo-02", {}, NOW, "6", "1366x768", "in_progress"
)
DONE = TaskRef(
    "video_x",
    "176843862716480",
    "MiniMax-Hailuo-02",
    {"file_id": "176844028768320"},
    NOW,
    "6",
    "1920x1080",
    "completed",
)


async def test_submit_poll_retrieve_over_the_wire():
    minimax, http = stubbed(
        answer(fixture("create_success")),
        answer(fixture("query_success")),
        answer(fixture("retrieve")),
    )
    submitted = await minimax.submit(*job(images=(URL_IMAGE,)))
    assert (submitted.upstream_id, submitted.seconds, submitted.size) == (
        "106916112212032",
        "6",
        "1366x768",
    )
    update = await minimax.poll(RUNNING)
    assert update.status == "completed" and update.size == "1920x1080"
    assert update.state == {"file_id": "176844028768320"}
    assert update.expires_at is not None and update.completed_at is not None
    assert update.expires_at - update.completed_at == 32400
    (m1, u1, k1), (m2, u2, k2), (m3, u3, k3) = http.sent
    assert (m1, u1) == ("POST", "https://api.minimaxi.com/v1/video_generation")
    assert k1["json"]["first_frame_image"] == URL_IMAGE.url
    assert (m2, u2, k2["params"]) == (
        "GET",
        "https://api.minimaxi.com/v1/query/video_generation",
        {"task_id": "176843862716480"},
    )
    assert (m3, u3, k3["params"]) == (
        "GET",
        "https://api.minimaxi.com/v1/files/retrieve",
        {"file_id": "176844028768320"},
    )
    assert {k["headers"]["Authorization"] for k in (k1, k2, k3)} == {"Bearer k"}


async def test_content_retrieves_afresh_on_every_read():
    first, second = fixture("retrieve"), fixture("retrieve")
    second["file"]["download_url"] = "https://cdn.example.test/new.mp4?Expires=2&Signature=b"
    minimax, http = stubbed(answer(first), answer(second))
    one = await minimax.content(DONE, "video")
    two = await minimax.content(DONE, "video")
    assert isinstance(one, Remote) and isinstance(two, Remote)
    assert one.url == first["file"]["download_url"]  # byte for byte, %2F and all
    assert two.url == second["file"]["download_url"]
    assert (one.headers, one.trusted, one.content_type) == ({}, False, "video/mp4")
    assert [k["params"] for _, _, k in http.sent] == [{"file_id": "176844028768320"}] * 2


async def test_content_errors():
    minimax, _ = stubbed(
        answer({"base_resp": {"status_code": 2013, "status_msg": "invalid params, file"}}),
        answer(fixture("error_rate_limit")),
    )
    with pytest.raises(NotReady):
        await minimax.content(RUNNING, "video")
    with pytest.raises(VariantUnavailable):
        await minimax.content(DONE, "thumbnail")
    with pytest.raises(TaskNotFound):
        await minimax.content(DONE, "video")
    with pytest.raises(RateLimited):
        await minimax.content(DONE, "video")


async def test_refresh_content_prefers_the_backup_host():
    minimax, _ = stubbed(answer(fixture("retrieve")), answer(fixture("error_auth_bad_key")))
    fresh = await minimax.refresh_content(DONE, "video")
    assert isinstance(fresh, Remote)
    assert fresh.url == fixture("retrieve")["file"]["backup_download_url"]
    assert await minimax.refresh_content(DONE, "video") is None


@pytest.mark.parametrize(
    ("retrieve", "outcome"),
    [
        (answer(fixture("error_rate_limit")), RateLimited),
        (answer(fixture("error_auth_bad_key")), AuthFailed),
        (answer(None, 503), Unavailable),
        (answer({"base_resp": {"status_code": 2013, "status_msg": "file not found"}}), 1),
        (answer({"base_resp": {"status_code": 1000, "status_msg": "unknown error"}}), 1),
        (answer({"file": {"file_id": 1}, "base_resp": {"status_code": 0}}), 1),
    ],
)
async def test_a_failed_retrieve_after_success(retrieve: Reply, outcome: Any):
    minimax, _ = stubbed(answer(fixture("query_success")), retrieve)
    if isinstance(outcome, type):
        with pytest.raises(outcome) as raised:
            await minimax.poll(RUNNING)
        assert not isinstance(raised.value, TransientError)  # never counted toward failing
        return
    # counted like a transient code: the relay fails the task after five in a row
    with pytest.raises(TransientError):
        await minimax.poll(RUNNING)


async def test_a_gateway_error_on_a_poll_raises():
    minimax, _ = stubbed(answer(None, 502), answer(None, 429))
    with pytest.raises(Unavailable):
        await minimax.poll(RUNNING)
    with pytest.raises(RateLimited):
        await minimax.poll(RUNNING)


async def test_an_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="relay.providers")
    status = "Status-" + secrets.token_hex(4)
    body = {**fixture("query_processing"), "status": status}
    minimax, _ = stubbed(answer(body), answer(body))
    for _ in range(2):  # the relay notes what each poll names, as lifecycle.refresh does
        update = await minimax.poll(RUNNING)
        assert update.status is None and update.unknown_status == status
        minimax.note_unknown_status(update.unknown_status)
    assert sum(status in r.getMessage() for r in caplog.records) == 1


def test_channel_config(monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]):
    monkeypatch.setitem(REGISTRY, "minimax", MinimaxProvider)
    channel = {"name": "m", "provider": "minimax", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].base_url is None
    adapter = build_adapter(config.channels[0], MinimaxProvider, None)
    assert adapter.base_url == "https://api.minimax.io"
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[MinimaxFake]:
    upstream = MinimaxFake()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
def minimax_config(
    monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> Callable[[MinimaxFake], Config]:
    monkeypatch.setitem(REGISTRY, "minimax", MinimaxProvider)

    def make(upstream: MinimaxFake) -> Config:
        # no stored copies: content must come from the fake's CDN
        return make_config(
            storage={"keep_videos": False}, channels=[upstream.channel(upstream.base_url)]
        )

    return make


@pytest.fixture
async def relay(
    fake: MinimaxFake,
    minimax_config: Callable[[MinimaxFake], Config],
    start_relay: Callable[[Config], Any],
) -> Relay:
    return await start_relay(minimax_config(fake))  # type: ignore[no-any-return]


async def videos(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


async def content(relay: Relay, video_id: str) -> tuple[int, bytes]:
    resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
    return resp.status, await resp.read()


async def test_text_to_video_end_to_end(relay: Relay, fake: MinimaxFake):
    fake.polls_to_finish = 4
    video = await relay.create(model="sora-2", seconds="8", size="1280x720")
    assert (video["seconds"], video["size"]) == ("10", "1366x768")
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["size"] == "1366x768"
    assert done["expires_at"] >= done["completed_at"] + 32400 - 5
    [create] = fake.creates()
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.json() == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "a paper airplane over a lake",
        "duration": 10,
        "resolution": "768P",
    }
    polls = fake.calls("/v1/query/video_generation", "GET")
    assert len(polls) == 4
    assert {p.query["task_id"] for p in polls} == set(fake.tasks)
    retrieves = fake.calls("/v1/files/retrieve", "GET")
    assert len(retrieves) == 1  # the poll confirmed a URL exists before completing
    assert all(r.headers["Authorization"] == f"Bearer {fake.api_key}" for r in polls + retrieves)
    row = await relay.store.get_task(video["id"])
    assert row is not None
    assert row.upstream_state == {"file_id": retrieves[0].query["file_id"]}

    assert await content(relay, video["id"]) == (200, VIDEO)
    assert await content(relay, video["id"]) == (200, VIDEO)
    # every read trades the file id for a freshly signed URL; the CDN never sees a key
    assert len(fake.calls("/v1/files/retrieve", "GET")) == 3
    assert fake.cdn_stats.auth_headers == [None, None]
    assert fake.cdn_stats.finished == 2
    thumb = await relay.client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert thumb.status == 404
    assert (await thumb.json())["error"]["code"] == "variant_not_available"


async def test_content_outlives_the_url(relay: Relay, fake: MinimaxFake):
    video = await relay.create()
    await relay.wait(video["id"])
    fake.expire_urls()  # 9 h later: every URL handed out so far is dead, the file id is not
    assert await content(relay, video["id"]) == (200, VIDEO)


async def test_backup_url_when_there_is_no_primary(relay: Relay, fake: MinimaxFake):
    fake.primary_url = False
    fake.zero_bytes = True
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert resp.headers["Content-Length"] == str(len(VIDEO))  # not file.bytes


async def test_a_failing_primary_host_falls_back_to_the_backup(relay: Relay, fake: MinimaxFake):
    video = await relay.create()
    await relay.wait(video["id"])
    fake.broken_primary = True
    # the primary URL is refused; the relay asks refresh_content once, which retrieves again
    # and hands out the backup host's URL
    assert await content(relay, video["id"]) == (200, VIDEO)
    assert len(fake.calls("/v1/files/retrieve", "GET")) == 3
    row = await relay.store.get_task(video["id"])
    channel = relay.runtime.channels.get("minimax")
    assert row is not None and channel is not None
    fresh = await channel.adapter.refresh_content(row.ref(), "video")
    assert isinstance(fresh, Remote) and "-backup.mp4?" in fresh.url
    fake.backup_url = False  # no backup listed: the refresh is the primary again, still refused
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 404


async def test_a_re_encoded_signature_is_refused_by_the_fake_cdn(fake: MinimaxFake):
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    body = {"model": "T2V-01", "prompt": "x"}
    async with aiohttp.ClientSession() as session:
        async with session.post(fake.url("/v1/video_generation"), json=body, headers=headers) as r:
            created = await r.json()
        for _ in range(fake.polls_to_finish):
            async with session.get(
                fake.url("/v1/query/video_generation"),
                params={"task_id": created["task_id"]},
                headers=headers,
            ) as r:
                done = await r.json()
        assert isinstance(done["file_id"], str)
        async with session.get(
            fake.url("/v1/files/retrieve"), params={"file_id": done["file_id"]}, headers=headers
        ) as r:
            file = (await r.json())["file"]
        assert file["file_id"] == int(done["file_id"])
        url = file["download_url"]
        assert "%2B" in url or "%3D" in url
        mangled = url.replace("%", "%25")
        async with session.get(URL(mangled, encoded=True)) as r:
            assert r.status == 403
        async with session.get(URL(url, encoded=True)) as r:
            assert r.status == 200 and await r.read() == VIDEO


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"model": "MiniMax-Hailuo-2.3", "input_reference": {"image_url": "https://i.test/a.png"}},
            {"first_frame_image": "https://i.test/a.png"},
        ),
        (
            {"model": "I2V-01", "input_reference": {"image_url": data_url(png(16, 9))}},
            {"first_frame_image": data_url(png(16, 9))},
        ),
        (
            {"input_reference": {"content": [
                {"type": "image_url", "role": "last_frame",
                 "image_url": {"url": "https://i.test/last.png"}},
                {"type": "image_url", "role": "first_frame",
                 "image_url": {"url": "https://i.test/first.png"}},
            ]}},
            {"first_frame_image": "https://i.test/first.png",
             "last_frame_image": "https://i.test/last.png"},
        ),
        (
            {"model": "S2V-01", "input_reference": {"content": [
                {"type": "image_url", "role": "reference_image",
                 "image_url": {"url": "https://i.test/face.png"}},
            ]}},
            {"subject_reference": [{"type": "character", "image": ["https://i.test/face.png"]}]},
        ),
    ],
)  # fmt: skip
async def test_image_modes_end_to_end(
    relay: Relay, fake: MinimaxFake, fields: dict[str, Any], expected: dict[str, Any]
):
    video = await relay.create(**fields)
    assert (await relay.wait(video["id"]))["status"] == "completed"
    [create] = fake.creates()
    sent = create.json()
    assert {k: sent[k] for k in expected} == expected


async def test_an_upload_becomes_a_data_url_and_sets_the_shape(relay: Relay, fake: MinimaxFake):
    data = aiohttp.FormData()
    data.add_field("prompt", "animate")
    data.add_field("model", "I2V-01")
    data.add_field("input_reference", png(9, 16), filename="f.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    assert resp.status == 200, await resp.text()
    video = await resp.json()
    assert video["size"] == "720x1280"  # portrait client size: the guess until MiniMax says
    done = await relay.wait(video["id"])
    assert done["size"] == "720x1280"  # the output followed the 9:16 image
    assert fake.creates()[0].json()["first_frame_image"] == data_url(png(9, 16))


async def test_1080p_goes_as_six_seconds(relay: Relay, fake: MinimaxFake):
    video = await relay.create(model="MiniMax-Hailuo-2.3", seconds="12", size="1920x1080")
    assert (video["seconds"], video["size"]) == ("6", "1920x1080")
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert fake.creates()[0].json()["duration"] == 6


@pytest.mark.parametrize(
    ("fail_code", "prompt", "code", "message"),
    [
        (None, "a storm #fail", "generation_failed", "task failed"),
        ((1000, "unknown error"), "a storm #fail", "upstream_error", "1000: unknown error"),
        (None, "a storm #moderation", "moderation_blocked", "1027: output new_sensitive"),
    ],
)
async def test_failed_tasks(
    relay: Relay,
    fake: MinimaxFake,
    fail_code: tuple[int, str] | None,
    prompt: str,
    code: str,
    message: str,
):
    fake.fail_code = fail_code
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert (done["error"]["code"], done["error"]["message"]) == (code, message)
    assert fake.calls("/v1/files/retrieve") == []


async def test_task_gone_upstream_is_expired(relay: Relay, fake: MinimaxFake):
    fake.polls_to_finish = 50
    video = await relay.create()
    fake.tasks.clear()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")
    assert done["error"]["message"] == "2013: invalid params, task not found"


async def test_reject_is_a_content_policy_400(relay: Relay, fake: MinimaxFake):
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject this"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "content_policy_violation"
    assert body["error"]["message"] == "1026: input new_sensitive"
    assert await videos(relay) == []


async def test_invalid_params_are_a_400(relay: Relay, fake: MinimaxFake):
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "a cat", "size": "1920x1080", "metadata": {"duration": 10}},
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"] == "2013: invalid params, duration 10 not supported at 1080P"
    assert body["error"]["param"] == "seconds"
    assert await videos(relay) == []


@pytest.mark.parametrize(
    ("code", "status", "retry_after"),
    [
        (1002, 200, None),
        (1039, 200, None),
        (2045, 200, None),
        (1008, 200, None),
        (1000, 200, None),
        (1033, 200, None),
        (1004, 200, None),
        (2049, 200, None),
        (0, 429, "7"),
        (0, 503, None),
        (0, 500, None),
    ],
)
async def test_submit_errors_leave_no_task(
    relay: Relay, fake: MinimaxFake, code: int, status: int, retry_after: str | None
):
    fake.fail_next("create", code=code, msg="refused", status=status, retry_after=retry_after)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    await refused_upstream(resp, rate_limited=code in (1002, 1039, 2045) or status == 429)
    assert await videos(relay) == []
    assert len(fake.requests) == 1


async def test_a_gateway_timeout_on_submit_is_not_retried(relay: Relay, fake: MinimaxFake):
    fake.fail_next("create", status=504)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    video = await resp.json()
    assert (video["status"], video["error"]["code"]) == ("failed", "upstream_error")
    assert len(fake.requests) == 1


async def test_wrong_key_is_refused_natively(
    fake: MinimaxFake,
    minimax_config: Callable[[MinimaxFake], Config],
    start_relay: Callable[[Config], Any],
):
    right = fake.api_key
    fake.api_key = "another-key"
    relay: Relay = await start_relay(minimax_config(fake))
    fake.api_key = right
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    assert resp.status == 502
    assert fake.requests[0].headers["Authorization"] == "Bearer another-key"
    assert await videos(relay) == []


@pytest.mark.parametrize(
    ("op", "code", "status", "retry_after"),
    [
        ("query", 1002, 200, None),
        ("query", 1039, 200, None),
        ("query", 1041, 200, None),
        ("query", 2045, 200, "1"),
        ("query", 1000, 200, None),
        ("query", 1013, 200, None),
        ("query", 0, 429, None),
        ("query", 0, 503, None),
        ("retrieve", 1002, 200, None),
        ("retrieve", 1024, 200, None),
        ("retrieve", 0, 502, None),
    ],
)
async def test_poll_errors_leave_the_task_running(
    relay: Relay, fake: MinimaxFake, op: str, code: int, status: int, retry_after: str | None
):
    fake.polls_to_finish = 3
    for _ in range(2):
        fake.fail_next(op, code=code, msg="later", status=status, retry_after=retry_after)
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=15)
    assert done["status"] == "completed"
    assert len(fake.calls(f"/{op}", "GET")) >= (5 if op == "query" else 3)


async def test_five_transient_errors_in_a_row_fail_the_task(relay: Relay, fake: MinimaxFake):
    fake.polls_to_finish = 3
    for _ in range(5):
        fake.fail_next("query", code=1001, msg="timeout")
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "upstream_error")
    assert done["error"]["message"].startswith("1001: timeout")


async def test_a_good_poll_between_transient_errors_starts_the_count_again(
    relay: Relay, fake: MinimaxFake
):
    fake.polls_to_finish = 12
    for _ in range(4):
        fake.fail_next("query", code=1001, msg="timeout")
    video = await relay.create()
    for _ in range(500):  # four errors, then the task's own answer
        if len(fake.calls("/v1/query/video_generation", "GET")) >= 5:
            break
        await asyncio.sleep(0.01)
    for _ in range(4):
        fake.fail_next("query", code=1001, msg="timeout")
    done = await relay.wait(video["id"], timeout=15)
    assert done["status"] == "completed"
    assert len(fake.calls("/v1/query/video_generation", "GET")) == 12 + 8


async def test_callback_style_statuses_and_no_file_id_field(relay: Relay, fake: MinimaxFake):
    fake.lowercase_status = True
    fake.file_id_before_success = "missing"
    fake.polls_to_finish = 4
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert await content(relay, video["id"]) == (200, VIDEO)


async def test_remix_is_unsupported_before_any_call(relay: Relay, fake: MinimaxFake):
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"input_reference": {"content": [
            {"type": "video_url", "video_url": {"url": "https://v.example.test/a.mp4"}}]}},
        {"model": "T2V-01", "input_reference": {"image_url": "https://i.test/a.png"}},
        {"model": "I2V-01"},
    ],
)  # fmt: skip
async def test_unsupported_inputs_never_reach_minimax(
    relay: Relay, fake: MinimaxFake, fields: dict[str, Any]
):
    resp = await relay.client.post("/v1/videos", json={"prompt": "x", **fields}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_official_sdk_flow(relay: Relay, fake: MinimaxFake):
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        # the 01-series makes 720P: a size the strict SDK accepts
        video = await client.videos.create_and_poll(
            prompt="a lighthouse at dusk", model="T2V-01", seconds="8"
        )
        assert (video.status, video.seconds, video.size) == ("completed", "6", "1280x720")
        assert (await client.videos.download_content(video.id)).content == VIDEO
        framed = await client.videos.create_and_poll(
            prompt="animate this", model="I2V-01",
            input_reference=("frame.png", png(9, 16), "image/png"),
        )  # fmt: skip
        assert (framed.status, framed.size) == ("completed", "720x1280")
        assert fake.creates()[-1].json()["first_frame_image"] == data_url(png(9, 16))
    finally:
        await client.close()


async def test_the_key_never_leaks(
    minimax_config: Callable[[MinimaxFake], Config],
    start_relay: Callable[[Config], Any],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    canary = "minimax-canary-" + secrets.token_hex(16)
    upstream = MinimaxFake(api_key=canary)
    await upstream.start()
    try:
        relay: Relay = await start_relay(minimax_config(upstream))
        seen: list[str] = []
        ok = await relay.create()
        seen.append(json.dumps(await relay.wait(ok["id"])))
        resp = await relay.client.get(f"/v1/videos/{ok['id']}/content", headers=auth())
        seen.append((await resp.read()).decode("latin-1"))
        failed = await relay.create(prompt="x #moderation")
        seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("query", code=1000, msg="unknown error")
        upstream.fail_next("retrieve", code=1002, msg="rate limit exceeded")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        for code in (2013, 1008, 2049):  # 2049 last: it takes the channel out
            upstream.fail_next("create", code=code, msg="no")
            resp = await relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        upstream.expire_urls()
        upstream.broken_primary = True
        resp = await relay.client.get(f"/v1/videos/{ok['id']}/content", headers=auth())
        seen.append((await resp.read()).decode("latin-1"))
        assert len(seen) == 9
        assert all(canary not in text for text in seen)
        assert canary not in caplog.text
        assert upstream.cdn_stats.auth_headers == [None, None, None]
    finally:
        await upstream.close()
