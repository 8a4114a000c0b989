"""Jimeng: the signer on the page's test vector, translation on the page's recorded bodies, then
the relay against the fake Volcengine visual API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config, ConfigError
from relay.domain import Image, Remote, Size, TaskRef, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import ChannelView, Submitted
from relay.providers.errors import (
    AuthFailed,
    NotReady,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    Unsupported,
)
from relay.providers.http import ChannelHttp, Reply
from relay.providers.jimeng import VERSION, JimengOptions, JimengProvider
from relay.providers.jimeng.auth import (
    canonical_host,
    canonical_query,
    date_key,
    sign,
    signing_key,
)
from relay.providers.jimeng.models import FAMILIES, KEYS, MAX_IMAGE_BYTES, choose_key
from relay.providers.jimeng.request import build_submit
from relay.providers.jimeng.response import classify, code_class, parse_result, parse_submit
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.jimeng import FAMILY, GET_RESULT, SUBMIT, JimengFake
from tests.images import data_url, jpeg, png, webp

FIXTURES = Path(__file__).parent / "fixtures" / "jimeng"
NOW = 1_754_000_000.0


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def reply_of(recorded: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    return Reply(recorded["status"], headers or {}, json.dumps(recorded["body"]).encode())


Job = tuple[VideoRequest, str]  # a request and its upstream model, as the relay routes them


def job(
    model: str = FAMILY,
    size: str = "1280x720",
    seconds: int = 5,
    prompt: str = "a red kite",
    **kw: Any,
) -> Job:
    parsed = Size.parse(size)
    assert parsed is not None
    request = VideoRequest(model="sora-2", prompt=prompt, seconds=seconds, size=parsed, **kw)
    return request, model


def build(j: Job, default_tier: str = "720p") -> Any:
    request, model = j
    return build_submit(request, model, list(request.images), default_tier)


def adapter(**options: Any) -> JimengProvider:
    channel = ChannelView("j", JimengOptions(**options), access_key="ak", secret_key="sk")
    return JimengProvider(channel, None)


URL_A = "https://img.example.test/first.png"
URL_B = "https://img.example.test/last.png"


# --- the signature ------------------------------------------------------------------------


def test_the_page_test_vector_step_by_step():
    v = fixture("sign_vector.json")
    signed = sign(
        method=v["method"],
        path=v["path"],
        query=[tuple(p) for p in v["query"]],
        headers={"Content-Type": v["content_type"], "Host": v["host"]},
        body=v["body"].encode(),
        access_key=v["access_key"],
        secret_key=v["secret_key"],
        when=datetime.strptime(v["x_date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
    )
    assert signed.x_date == v["x_date"]
    assert signed.body_hash == v["body_hash"]
    assert signed.canonical_request == v["canonical_request"]
    assert (
        hashlib.sha256(signed.canonical_request.encode()).hexdigest()
        == (v["canonical_request_sha256"])
    )
    assert signed.string_to_sign == v["string_to_sign"]
    assert date_key(v["secret_key"], "20240115").hex() == v["k_date"]
    assert signing_key(v["secret_key"], "20240115").hex() == v["k_signing"]
    assert signed.signed_headers == "content-type;host;x-content-sha256;x-date"
    assert signed.authorization == v["authorization"]
    assert signed.headers == {
        "Content-Type": "application/json",
        "Host": "visual.volcengineapi.com",
        "X-Date": "20240115T120000Z",
        "X-Content-Sha256": v["body_hash"],
        "Authorization": v["authorization"],
    }
    assert "5cbe194c" not in repr(signed)


def test_empty_body_hash():
    signed = sign(
        method="POST",
        path="/",
        query=[],
        headers={"Content-Type": "application/json", "Host": "h"},
        body=b"",
        access_key="a",
        secret_key="s",
        when=datetime(2024, 1, 15, tzinfo=UTC),
    )
    assert signed.body_hash == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_canonical_query_and_host():
    assert canonical_query([("b", "2"), ("a", "y"), ("a", "x")]) == "a=x&a=y&b=2"
    assert canonical_query([("k", "a b+c~d_e.f-g/h")]) == "k=a%20b%2Bc~d_e.f-g%2Fh"
    assert canonical_host("visual.volcengineapi.com:443") == "visual.volcengineapi.com"
    assert canonical_host("example.test:80") == "example.test"
    assert canonical_host("127.0.0.1:8443") == "127.0.0.1:8443"


def test_every_x_header_is_signed_and_values_trimmed():
    signed = sign(
        method="post",
        path="/",
        query=[("Action", "A")],
        headers={
            "Content-Type": " application/json ",
            "Host": "h:443",
            "X-Extra": "1",
            "Accept": "*",
        },
        body=b"{}",
        access_key="a",
        secret_key="s",
        when=datetime(2024, 1, 15, tzinfo=UTC),
    )
    assert signed.signed_headers == "content-type;host;x-content-sha256;x-date;x-extra"
    assert "content-type:application/json\nhost:h\n" in signed.canonical_request
    assert signed.canonical_request.startswith("POST\n/\nAction=A\n")


# --- choosing the req_key -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "images", "tier", "key"),
    [
        ("jimeng-3.0", 0, "720p", "jimeng_t2v_v30"),
        ("jimeng-3.0", 1, "720p", "jimeng_i2v_first_v30"),
        ("jimeng-3.0", 2, "720p", "jimeng_i2v_first_tail_v30"),
        ("jimeng-3.0", 0, "1080p", "jimeng_t2v_v30_1080p"),
        ("jimeng-3.0", 1, "1080p", "jimeng_i2v_first_v30_1080"),
        ("jimeng-3.0", 2, "1080p", "jimeng_i2v_first_tail_v30_1080"),
        ("jimeng-3.0-720p", 0, "1080p", "jimeng_t2v_v30"),
        ("jimeng-3.0-1080p", 1, "720p", "jimeng_i2v_first_v30_1080"),
        ("jimeng-3.0-pro", 0, "720p", "jimeng_ti2v_v30_pro"),
        ("jimeng-3.0-pro", 1, "1080p", "jimeng_ti2v_v30_pro"),
        ("jimeng-s2.0-pro", 0, "1080p", "jimeng_vgfm_t2v_l20"),
        ("jimeng-s2.0-pro", 1, "720p", "jimeng_vgfm_i2v_l20"),
        # a real req_key passes through unchanged, whatever the tier
        ("jimeng_t2v_v30_1080p", 0, "720p", "jimeng_t2v_v30_1080p"),
        ("jimeng_i2v_recamera_v30", 1, "1080p", "jimeng_i2v_recamera_v30"),
        ("jimeng_ti2v_v30_pro", 1, "720p", "jimeng_ti2v_v30_pro"),
        ("jimeng_future_key_v40", 1, "720p", "jimeng_future_key_v40"),
    ],
)
def test_key_from_family_images_and_tier(model: str, images: int, tier: str, key: str):
    assert choose_key(model, images, tier).name == key


@pytest.mark.parametrize(
    ("model", "images"),
    [
        ("jimeng-3.0-pro", 2),
        ("jimeng-s2.0-pro", 2),
        ("jimeng-3.0", 3),
        ("jimeng_t2v_v30", 1),
        ("jimeng_i2v_first_v30", 0),
        ("jimeng_i2v_first_tail_v30_1080", 1),
    ],
)
def test_no_key_for_that_many_images(model: str, images: int):
    with pytest.raises(Unsupported, match="jimeng"):
        choose_key(model, images, "720p")


def test_every_family_key_is_a_page_key():
    for family in FAMILIES.values():
        for modes in family.values():
            for name in modes:
                assert name is None or name in KEYS


# --- the submit body ----------------------------------------------------------------------


def test_the_page_example_body():
    example = fixture("submit_request.json")
    req = build(
        job(
            "jimeng-3.0-pro",
            size="1920x1080",
            prompt="a cavalry charge across a plain",
            images=(Image(url=URL_A),),
        )
    )
    # the page's mapping sends no aspect_ratio with an image (the image decides the ratio)
    assert req.body == {k: v for k, v in example.items() if k != "aspect_ratio"}
    assert (req.req_key, req.seconds, req.size) == ("jimeng_ti2v_v30_pro", "5", "1920x1088")
    text = build(job("jimeng-3.0-pro", size="1920x1080", prompt="a cavalry charge across a plain"))
    assert text.body == {
        "req_key": "jimeng_ti2v_v30_pro",
        "prompt": "a cavalry charge across a plain",
        "seed": -1,
        "frames": 121,
        "aspect_ratio": "16:9",
    }


@pytest.mark.parametrize(
    ("model", "size", "key", "ratio", "reported"),
    [
        (FAMILY, "1280x720", "jimeng_t2v_v30", "16:9", "1280x720"),
        (FAMILY, "720x1280", "jimeng_t2v_v30", "9:16", "720x1280"),
        (FAMILY, "480x480", "jimeng_t2v_v30", "1:1", "720x720"),
        (FAMILY, "1024x768", "jimeng_t2v_v30", "4:3", "960x720"),
        (FAMILY, "1920x1080", "jimeng_t2v_v30_1080p", "16:9", "1920x1088"),
        (FAMILY, "1792x1024", "jimeng_t2v_v30_1080p", "16:9", "1920x1088"),
        (FAMILY, "1024x1792", "jimeng_t2v_v30_1080p", "9:16", "1088x1920"),
        (FAMILY, "2520x1080", "jimeng_t2v_v30_1080p", "21:9", "2176x928"),
        (FAMILY, "1440x1440", "jimeng_t2v_v30_1080p", "1:1", "1440x1440"),
        (FAMILY, "1248x1664", "jimeng_t2v_v30_1080p", "3:4", "1248x1664"),
        (FAMILY, "3840x2160", "jimeng_t2v_v30_1080p", "16:9", "1920x1088"),  # 4k: the top tier
        (FAMILY, "16:9", "jimeng_t2v_v30", "16:9", "1280x720"),  # bare ratio: the default tier
        ("jimeng-3.0-pro", "1280x720", "jimeng_ti2v_v30_pro", "16:9", "1920x1088"),
        ("jimeng-s2.0-pro", "720x1680", "jimeng_vgfm_t2v_l20", "9:21", "720x1680"),
        ("jimeng-3.0", "720x1680", "jimeng_t2v_v30", "9:16", "720x1280"),  # no 9:21 on 3.0
    ],
)
def test_size_snaps_to_ratio_and_tier(model: str, size: str, key: str, ratio: str, reported: str):
    req = build(job(model, size))
    assert req.body["req_key"] == key
    assert req.body["aspect_ratio"] == ratio
    assert req.size == reported


def test_bare_ratio_takes_the_channel_default_tier():
    req = build(job(size="9:16"), default_tier="1080p")
    assert (req.req_key, req.size) == ("jimeng_t2v_v30_1080p", "1088x1920")


@pytest.mark.parametrize(
    ("asked", "frames", "sent"),
    [(1, 121, "5"), (4, 121, "5"), (7, 121, "5"), (8, 241, "10"), (20, 241, "10")],
)
def test_seconds_become_frames(asked: int, frames: int, sent: str):
    req = build(job(seconds=asked))
    assert req.body["frames"] == frames
    assert req.seconds == sent


def test_image_forms():
    url = build(job(images=(Image(url=URL_A),)))
    assert url.body["image_urls"] == [URL_A] and "binary_data_base64" not in url.body
    assert url.req_key == "jimeng_i2v_first_v30" and "aspect_ratio" not in url.body
    image = png()
    upload = build(job(images=(Image(data=image, mime="image/png"),)))
    assert upload.body["binary_data_base64"] == [Image(data=image, mime="image/png").base64()]
    assert not upload.body["binary_data_base64"][0].startswith("data:")
    assert "image_urls" not in upload.body


def test_first_and_last_frames_in_order():
    first, last = Image(url=URL_A, role="first_frame"), Image(url=URL_B, role="last_frame")
    req = build(job(size="1920x1080", images=(last, first)))
    assert req.body["image_urls"] == [URL_A, URL_B]
    assert req.req_key == "jimeng_i2v_first_tail_v30_1080"
    unlabelled = build(job(images=(Image(url=URL_A), Image(url=URL_B))))
    assert unlabelled.body["image_urls"] == [URL_A, URL_B]
    assert unlabelled.req_key == "jimeng_i2v_first_tail_v30"


def test_mixed_forms_are_refused_by_the_pure_builder():
    images = (Image(url=URL_A), Image(data=png(), mime="image/png", role="last_frame"))
    with pytest.raises(Rejected, match="cannot be combined"):
        build(job(images=images))


def test_image_limits():
    big = png() + b"\0" * (MAX_IMAGE_BYTES + 1)
    with pytest.raises(Rejected, match=r"4\.7 MB") as caught:
        build(job(images=(Image(data=big, mime="image/png"),)))
    assert caught.value.code == "invalid_request" and caught.value.param == "input_reference"
    with pytest.raises(Rejected, match="JPEG or PNG"):
        build(job(images=(Image(data=webp(), mime="image/webp"),)))
    ok = build(job(images=(Image(data=jpeg(), mime="image/jpeg"),)))
    assert ok.req_key == "jimeng_i2v_first_v30"


def test_prompt_limit():
    assert build(job(prompt="x" * 800)).body["prompt"] == "x" * 800
    with pytest.raises(Rejected) as caught:
        build(job(prompt="x" * 801))
    assert caught.value.param == "prompt"


def test_hints_and_metadata(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, "relay.providers.jimeng")
    req = build(
        job(
            "jimeng_i2v_recamera_v30",
            images=(Image(url=URL_A),),
            seed=42,
            negative_prompt="blurry",
            generate_audio=True,
            metadata={
                "template_id": "hitchcock_dolly_in",
                "camera_strength": "medium",
                "req_key": "jimeng_t2v_v30",  # the model is not metadata's to choose
                "aspect_ratio": "1:1",  # the image decides
            },
        )
    )
    assert req.body == {
        "req_key": "jimeng_i2v_recamera_v30",
        "prompt": "a red kite",
        "image_urls": [URL_A],
        "seed": 42,
        "frames": 121,
        "template_id": "hitchcock_dolly_in",
        "camera_strength": "medium",
    }
    assert "negative_prompt, generate_audio" in caplog.text


def test_metadata_second_image_picks_the_first_and_last_key():
    req = build(job(images=(Image(url=URL_A),), metadata={"image_urls": [URL_A, URL_B]}))
    assert req.req_key == "jimeng_i2v_first_tail_v30"
    assert req.body["image_urls"] == [URL_A, URL_B]


def test_metadata_base64_loses_its_data_prefix():
    req = build(job(metadata={"binary_data_base64": [data_url(png())]}))
    assert req.body["binary_data_base64"][0] == data_url(png()).split(",", 1)[1]
    assert req.req_key == "jimeng_i2v_first_v30"


def test_metadata_cannot_mix_the_two_image_fields():
    with pytest.raises(Rejected, match="cannot be combined"):
        build(job(images=(Image(url=URL_A),), metadata={"binary_data_base64": ["aGk="]}))


def test_metadata_frames_and_aspect_ratio():
    req = build(job(metadata={"frames": 241, "aspect_ratio": "21:9"}))
    assert (req.body["frames"], req.seconds) == (241, "10")
    assert (req.body["aspect_ratio"], req.size) == ("21:9", "1680x720")
    empty = build(job(size="720x1280", metadata={"aspect_ratio": ""}))
    assert empty.body["aspect_ratio"] == "9:16"  # never an empty string


# --- check(): refused before any network call -------------------------------------------------


@pytest.mark.parametrize(
    ("model", "images", "message"),
    [
        (FAMILY, (Image(url=URL_A, role="reference_image"),), "reference images"),
        ("jimeng-3.0-pro", (Image(url=URL_A), Image(url=URL_B)), "first and a last frame"),
        ("jimeng-s2.0-pro", (Image(url=URL_A), Image(url=URL_B)), "first and a last frame"),
        (FAMILY, (Image(url=URL_B, role="last_frame"),), "needs a first frame"),
        ("jimeng_t2v_v30", (Image(url=URL_A),), "a first frame"),
    ],
)
def test_check_refuses(model: str, images: tuple[Image, ...], message: str):
    with pytest.raises(Unsupported, match=message):
        adapter().check(*job(model, images=images))


def test_check_counts_metadata_images():
    with pytest.raises(Unsupported):
        adapter().check(*job("jimeng-3.0-pro", metadata={"image_urls": [URL_A, URL_B]}))
    adapter().check(*job(FAMILY, metadata={"image_urls": [URL_A, URL_B]}))


def test_refusal_is_a_reason_not_an_error():
    assert adapter().refusal(*job()) is None
    assert adapter().refusal(*job(images=(Image(url=URL_A), Image(url=URL_B)))) is None
    why = adapter().refusal(*job("jimeng-3.0-pro", images=(Image(url=URL_A), Image(url=URL_B))))
    assert why == "jimeng model 'jimeng-3.0-pro' does not take a first and a last frame"
    reference = adapter().refusal(*job(images=(Image(url=URL_A, role="reference_image"),)))
    assert reference == "provider 'jimeng' does not support reference images"


def test_options_are_validated(registered: None, make_config: Callable[..., Config]):
    channel = {
        "name": "j",
        "provider": "jimeng",
        "access_key": "a",
        "secret_key": "s",
        "models": ["sora-2"],
    }
    with pytest.raises(ConfigError, match="default_tier"):
        make_config(channels=[{**channel, "options": {"default_tier": "4k"}}])
    with pytest.raises(ConfigError, match="secret_key"):
        make_config(channels=[{k: v for k, v in channel.items() if k != "secret_key"}])
    ok = make_config(channels=[{**channel, "options": {"default_tier": "1080p"}}])
    assert ok.channels[0].options["default_tier"] == "1080p"


# --- get-result answers -------------------------------------------------------------------------


def result(name: str) -> Any:
    return parse_result(reply_of(fixture(name)), now=NOW)


def test_statuses():
    queued = result("in_queue.json")
    assert (queued.status, queued.progress) == ("queued", 0)
    running = result("generating.json")
    assert (running.status, running.progress) == ("in_progress", None)
    done = result("done.json")
    assert done.status == "completed" and done.progress == 100
    assert done.expires_at == NOW + 3600
    assert done.completed_at is None  # Jimeng gives no timestamps: the relay's clock decides
    assert done.state == {
        "video_url": "https://cdn.example.test/jimeng/7392616336519610409.mp4?sig=…",
        "done_at": NOW,
    }


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("failed_internal.json", "upstream_error", "50500: Internal Error"),
        ("moderation.json", "moderation_blocked", "50511: Post Img Risk Not Pass"),
    ],
)
def test_failures(name: str, code: str, message: str):
    update = result(name)
    assert update.status == "failed" and update.progress is None
    assert update.error is not None
    assert update.error.code == code
    assert update.error.message.startswith(message)


@pytest.mark.parametrize(
    ("name", "message"), [("not_found.json", "not_found: "), ("expired.json", "expired: ")]
)
def test_an_unknown_task_is_not_found(name: str, message: str):
    # raised: the relay fails the task as task_expired with this message
    with pytest.raises(TaskNotFound) as caught:
        result(name)
    assert caught.value.code == "task_expired"
    assert caught.value.message.startswith(message)


def test_done_without_a_url_is_an_upstream_error():
    body = fixture("done.json")
    body["body"]["data"]["video_url"] = ""
    update = parse_result(reply_of(body), now=NOW)
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "upstream_error"


def test_failure_on_http_200_and_with_data_null():
    body = fixture("moderation.json")
    body["status"] = 200
    assert parse_result(reply_of(body), now=NOW).status == "failed"
    body["body"]["data"] = None  # unconfirmed: a blocked result with data null is final too
    update = parse_result(reply_of(body), now=NOW)
    assert update.error is not None and update.error.code == "moderation_blocked"


def test_unknown_status_keeps_the_previous_one(caplog: pytest.LogCaptureFixture):
    # the parser names it; the relay asks the adapter to note it, which logs once per channel
    caplog.set_level(logging.INFO, "relay.providers")
    provider = adapter()
    body = fixture("generating.json")
    body["body"]["data"]["status"] = "paused"
    for _ in range(3):
        update = parse_result(reply_of(body), now=NOW)
        assert update.status is None and update.unknown_status == "paused"
        provider.note_unknown_status(update.unknown_status)
    assert caplog.text.count("'paused'") == 1


def business_errors() -> dict[int, dict[str, Any]]:
    return {e["body"]["code"]: e for e in fixture("business_errors.json")}


@pytest.mark.parametrize("code", [50429, 50430])
def test_rate_limits_on_get_result_leave_the_task(code: int):
    with pytest.raises(RateLimited) as caught:
        parse_result(reply_of(business_errors()[code], {"Retry-After": "7"}), now=NOW)
    assert caught.value.retry_after == 7.0
    assert str(code) in caught.value.message


@pytest.mark.parametrize("code", [50500, 50501])
def test_internal_errors_are_counted_then_fail(code: int):
    # the adapter classifies each one; the relay counts them and fails the task at the fifth
    # (test_five_internal_errors_in_a_row_fail_the_task), by the class's PollRules
    answer = reply_of(business_errors()[code])
    with pytest.raises(TransientError) as caught:
        parse_result(answer, now=NOW)
    assert caught.value.code == "upstream_error"
    assert caught.value.message.startswith(f"{code}: ")
    assert JimengProvider.poll_rules.fail_after_errors == 5
    # an ordinary answer says nothing of a count (the relay resets its own)
    assert result("generating.json").state == {}


@pytest.mark.parametrize("code", [50411, 50412, 50413, 50511, 50512, 50516, 50517, 50518, 50519])
def test_policy_codes_fail_the_task_as_moderation(code: int):
    update = parse_result(reply_of(business_errors()[code]), now=NOW)
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "moderation_blocked"


@pytest.mark.parametrize("code", [50520, 50521, 50522])
def test_moderation_service_errors_without_a_status_are_retried(code: int):
    with pytest.raises(Unavailable):
        parse_result(reply_of(business_errors()[code]), now=NOW)
    done = business_errors()[code]
    done["body"]["data"] = {"status": "done", "video_url": ""}
    update = parse_result(reply_of(done), now=NOW)
    assert update.error is not None and update.error.code == "upstream_error"


def test_get_result_errors_that_say_nothing_about_the_task():
    with pytest.raises(AuthFailed):
        parse_result(reply_of(fixture("gateway_signature.json")), now=NOW)
    with pytest.raises(AuthFailed):
        parse_result(reply_of(fixture("access_denied.json")), now=NOW)
    with pytest.raises(Unavailable):
        parse_result(Reply(502, {}, b"<html>502 Bad Gateway</html>"), now=NOW)
    with pytest.raises(RateLimited) as caught:
        parse_result(Reply(429, {"Retry-After": "3"}, b""), now=NOW)
    assert caught.value.retry_after == 3.0


# --- submit answers ---------------------------------------------------------------------------


def test_parse_submit():
    assert parse_submit(reply_of(fixture("submit.json"))) == "7392616336519610409"
    with pytest.raises(Unavailable) as caught:
        parse_submit(Reply(200, {}, b'{"code": 10000, "data": {}, "message": "Success"}'))
    assert caught.value.maybe_created is True


@pytest.mark.parametrize(
    "case",
    fixture("gateway_errors.json"),
    ids=lambda c: c["body"]["ResponseMetadata"]["Error"]["Code"],
)
def test_gateway_errors(case: dict[str, Any]):
    error = classify(reply_of(case), submitting=True)
    number = case["body"]["ResponseMetadata"]["Error"]["CodeN"]
    if number in (100003, 100005, 100009, 100010, 100012, 100013):
        assert isinstance(error, AuthFailed)
    else:
        assert isinstance(error, Rejected) and not error.moderation
        assert error.code == "invalid_request"
    assert case["body"]["ResponseMetadata"]["Error"]["Code"] in error.message
    assert error.detail is not None and "HTTP" in error.detail


def test_invalid_timestamp_names_the_clock():
    case = next(
        c
        for c in fixture("gateway_errors.json")
        if c["body"]["ResponseMetadata"]["Error"]["CodeN"] == 100006
    )
    assert "clock" in classify(reply_of(case), submitting=True).message


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (50411, Rejected),
        (50412, Rejected),
        (50413, Rejected),
        (50511, Rejected),
        (50512, Rejected),
        (50516, Rejected),
        (50517, Rejected),
        (50518, Rejected),
        (50519, Rejected),
        (50520, Unavailable),
        (50521, Unavailable),
        (50522, Unavailable),
        (50429, RateLimited),
        (50430, RateLimited),
        (50500, Unavailable),
        (50501, Unavailable),
    ],
)
def test_business_errors_on_submit(code: int, kind: type):
    error = classify(reply_of(business_errors()[code]), submitting=True)
    assert isinstance(error, kind)
    assert f"{code}: {business_errors()[code]['body']['message']}" in error.message
    if isinstance(error, Rejected):
        assert error.moderation and error.code == "moderation_blocked"
    if isinstance(error, Unavailable):
        assert error.maybe_created is False  # a plain 5xx answer: nothing was created


def test_other_submit_answers():
    assert isinstance(
        classify(reply_of(fixture("access_denied.json")), submitting=True), AuthFailed
    )
    unlisted = Reply(400, {}, b'{"code": 50215, "data": null, "message": "Input invalid"}')
    error = classify(unlisted, submitting=True)
    assert isinstance(error, Rejected) and not error.moderation
    assert error.message == "50215: Input invalid"
    risky = Reply(400, {}, b'{"code": 50599, "data": null, "message": "Post Foo Risk Not Pass"}')
    assert classify(risky, submitting=True).code == "moderation_blocked"
    timeout = classify(Reply(504, {}, b"<html>504</html>"), submitting=True)
    assert isinstance(timeout, Unavailable) and timeout.maybe_created is True
    bad_gateway = classify(Reply(502, {}, b"<html>502</html>"), submitting=True)
    assert isinstance(bad_gateway, Unavailable) and bad_gateway.maybe_created is False
    assert isinstance(classify(Reply(401, {}, b""), submitting=True), AuthFailed)
    limited = classify(Reply(429, {"retry-after": "2"}, b""), submitting=True)
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.0
    assert isinstance(classify(Reply(404, {}, b"nope"), submitting=True), Rejected)


def test_code_classes():
    assert code_class(50400, 403) == "upstream_auth_failed"
    assert code_class(50123, 200) == "invalid_request"
    assert code_class(50999, 500) == "upstream_error"
    assert code_class(50777, 400, "Pre Video Risk Not Pass") == "moderation_blocked"
    assert code_class(50520, 400, "Risk Internal Error") == "upstream_error"


# --- through the relay ------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "jimeng", JimengProvider)


@pytest.fixture
async def fake() -> AsyncIterator[JimengFake]:
    server = JimengFake()
    await server.start()
    yield server
    await server.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    registered: None,
    fake: JimengFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Start:
    async def run(**channel: Any) -> Relay:
        config = make_config(
            storage={"keep_videos": False}, channels=[fake.channel(fake.base_url, **channel)]
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, variant: str = "video") -> Any:
    return await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )


async def no_tasks(relay: Relay) -> bool:
    return await relay.store.list_tasks(owner=None, after=None, limit=5, descending=True) == []


async def test_create_poll_complete_and_download(start: Start, fake: JimengFake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(model="sora-2", seconds="8", size="1280x720")
    assert video["status"] == "queued"
    assert (video["seconds"], video["size"]) == ("10", "1280x720")

    [submit] = [r for r in fake.requests if r.query.get("Action") == SUBMIT]
    assert submit.method == "POST" and submit.path == "/"
    assert submit.query == {"Action": SUBMIT, "Version": "2022-08-31"}
    assert submit.headers["Content-Type"] == "application/json"
    assert submit.headers["X-Content-Sha256"] == hashlib.sha256(submit.body).hexdigest()
    assert submit.headers["Authorization"].startswith(f"HMAC-SHA256 Credential={fake.access_key}/")
    assert (
        "SignedHeaders=content-type;host;x-content-sha256;x-date,"
        in (submit.headers["Authorization"])
    )
    assert submit.json() == {
        "req_key": "jimeng_t2v_v30",
        "prompt": "a paper airplane over a lake",
        "seed": -1,
        "frames": 241,
        "aspect_ratio": "16:9",
    }
    assert fake.signature_failures == []

    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("10", "1280x720")
    # every get-result repeats the submit's req_key
    results = fake.results()
    assert len(results) == 3
    task_id = next(iter(fake.tasks))
    assert results == [{"req_key": "jimeng_t2v_v30", "task_id": task_id}] * 3
    row = await relay.store.get_task(video["id"])
    assert row is not None
    assert row.upstream_state["req_key"] == "jimeng_t2v_v30"
    assert row.expires_at == row.upstream_state["done_at"] + 3600

    resp = await content(relay, video["id"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    assert fake.cdn_stats.auth_headers == [None]  # the signed URL went out without credentials
    thumb = await content(relay, video["id"], "thumbnail")
    assert thumb.status == 404
    assert (await thumb.json())["error"]["code"] == "variant_not_available"


async def test_1080p_and_hints_reach_the_fake(start: Start, fake: JimengFake):
    relay = await start()
    video = await relay.create(
        size="1024x1792",
        seconds="4",
        seed=7,
        negative_prompt="blurry",
        generate_audio=True,
        metadata={"model": "x", "seed": 8},
    )
    assert (video["seconds"], video["size"]) == ("5", "1088x1920")
    assert fake.submits()[0] == {
        "req_key": "jimeng_t2v_v30_1080p",
        "prompt": "a paper airplane over a lake",
        "seed": 8,
        "frames": 121,
        "aspect_ratio": "9:16",
    }
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert {r["req_key"] for r in fake.results()} == {"jimeng_t2v_v30_1080p"}


async def test_chinese_prompt_is_signed_as_sent(start: Start, fake: JimengFake):
    relay = await start()
    video = await relay.create(prompt="一只红色的风筝飞过湖面")
    assert fake.submits()[0]["prompt"] == "一只红色的风筝飞过湖面"
    assert "一只".encode() in fake.requests[0].body  # UTF-8, not \\u escapes
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_first_and_last_frame_urls(start: Start, fake: JimengFake):
    relay = await start()
    video = await relay.create(
        input_reference={
            "content": [
                {"type": "image_url", "image_url": {"url": URL_A}, "role": "first_frame"},
                {"type": "image_url", "image_url": {"url": URL_B}, "role": "last_frame"},
            ]
        }
    )
    body = fake.submits()[0]
    assert body["req_key"] == "jimeng_i2v_first_tail_v30"
    assert body["image_urls"] == [URL_A, URL_B]
    assert "aspect_ratio" not in body
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_uploaded_image_goes_as_raw_base64(start: Start, fake: JimengFake):
    import aiohttp

    relay = await start()
    data = aiohttp.FormData()
    data.add_field("prompt", "animate")
    data.add_field("input_reference", png(), filename="f.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    assert resp.status == 200, await resp.text()
    body = fake.submits()[0]
    assert body["req_key"] == "jimeng_i2v_first_v30"
    assert body["binary_data_base64"] == [Image(data=png(), mime="image/png").base64()]


async def test_mixed_image_forms_fetch_the_url(start: Start, fake: JimengFake):
    fake.files["first.png"] = png(8, 8)
    relay = await start()
    video = await relay.create(
        input_reference={
            "content": [
                {"type": "image_url", "image_url": {"url": fake.cdn_url("first.png")}},
                {
                    "type": "image_url",
                    "image_url": {"url": data_url(jpeg(), "image/jpeg")},
                    "role": "last_frame",
                },
            ]
        }
    )
    body = fake.submits()[0]
    assert "image_urls" not in body
    assert body["binary_data_base64"] == [
        Image(data=png(8, 8), mime="image/png").base64(),
        Image(data=jpeg(), mime="image/jpeg").base64(),
    ]
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_webp_upload_is_a_400(start: Start, fake: JimengFake):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "input_reference": {"image_url": data_url(webp(), "image/webp")}},
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "input_reference"
    assert fake.requests == [] and await no_tasks(relay)


@pytest.mark.parametrize(
    ("marker", "code", "native"),
    [
        ("#fail", "upstream_error", "50500: Internal Error"),
        ("#moderation", "moderation_blocked", "50511: Post Img Risk Not Pass"),
        ("#empty", "upstream_error", "10000: "),
        ("#expired", "task_expired", "expired: "),
    ],
)
async def test_task_failures(start: Start, fake: JimengFake, marker: str, code: str, native: str):
    relay = await start()
    video = await relay.create(prompt=f"a storm {marker}")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(native)
    assert done["expires_at"] is None


@pytest.mark.parametrize(
    ("error_data", "http_200"), [("null", False), ("done", True), ("null", True)]
)
@pytest.mark.parametrize(
    ("marker", "code", "native"),
    [
        ("#fail", "upstream_error", "50500: Internal Error"),
        ("#moderation", "moderation_blocked", "50511: Post Img Risk Not Pass"),
    ],
)
async def test_task_failures_in_the_unconfirmed_shapes(
    start: Start,
    fake: JimengFake,
    marker: str,
    code: str,
    native: str,
    error_data: str,
    http_200: bool,
):
    # data null on a 50500 is the counted case: it fails after five answers in a row
    fake.error_data, fake.error_http_200, fake.echo_status = error_data, http_200, False
    relay = await start()
    video = await relay.create(prompt=f"a storm {marker}")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(native)


async def test_input_moderation_is_a_400(start: Start, fake: JimengFake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "bad #reject"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "content_policy_violation"
    assert error["message"] == "50412: Text Risk Not Pass"
    assert await no_tasks(relay)


@pytest.mark.parametrize(
    "case",
    [
        "rate_limit",
        "concurrency",
        "internal",
        "rpc",
        "gateway",
        "signature",
        "invalid_key",
        "lack_policy",
        "access_denied",
    ],
)
async def test_submit_errors_leave_no_task(start: Start, fake: JimengFake, case: str):
    relay = await start()
    fake.fail_next("submit", case, retry_after="3")
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=case in ("rate_limit", "concurrency"))
    assert "127.0.0.1" not in body["error"]["message"]
    assert await no_tasks(relay) and fake.tasks == {}


@pytest.mark.parametrize(
    ("case", "native"), [("bad_request", "50215: "), ("timestamp", "InvalidTimestamp: ")]
)
async def test_submit_bad_request_is_a_400(start: Start, fake: JimengFake, case: str, native: str):
    relay = await start()
    fake.fail_next("submit", case)
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(native)
    assert await no_tasks(relay)


async def test_submit_timeout_is_not_retried(start: Start, fake: JimengFake):
    relay = await start()
    fake.fail_next("submit", "timeout")
    video = await relay.create()
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_error"


async def test_wrong_secret_is_refused_by_the_fake(
    registered: None,
    fake: JimengFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
):
    channel = {**fake.channel(fake.base_url), "secret_key": "not-the-secret"}
    relay: Relay = await start_relay(make_config(channels=[channel]))
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert fake.signature_failures == ["signature mismatch"]
    assert fake.tasks == {}


@pytest.mark.parametrize(
    "case",
    ["rate_limit", "concurrency", "internal", "rpc", "gateway", "signature", "risk_internal"],
)
async def test_poll_errors_leave_the_task_running(start: Start, fake: JimengFake, case: str):
    relay = await start()
    fake.fail_next("poll", case, retry_after="0")
    fake.fail_next("poll", case)
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"
    assert fake.answers["poll"] == []  # both error answers were served
    row = await relay.store.get_task(video["id"])
    assert row is not None and row.upstream_state.get("server_errors", 0) == 0


async def test_five_internal_errors_in_a_row_fail_the_task(start: Start, fake: JimengFake):
    relay = await start()
    for _ in range(5):
        fake.fail_next("poll", "internal")
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "upstream_error"
    assert done["error"]["message"].startswith("50500: Internal Error")
    assert len(fake.results()) == 5


async def test_four_internal_errors_then_it_completes(start: Start, fake: JimengFake):
    relay = await start()
    for _ in range(4):
        fake.fail_next("poll", "rpc")
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_unknown_status_keeps_the_task_going(start: Start, fake: JimengFake):
    relay = await start()
    fake.status_override = "paused"
    video = await relay.create()
    for _ in range(100):
        if len(fake.results()) >= 3:
            break
        await asyncio.sleep(0.02)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_vanished_task_fails_as_expired(start: Start, fake: JimengFake):
    fake.polls_to_finish = 100
    relay = await start()
    video = await relay.create()
    fake.tasks.clear()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "task_expired"
    assert done["error"]["message"].startswith("not_found: ")


async def test_reference_image_is_unsupported_before_any_call(start: Start, fake: JimengFake):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={
            "prompt": "x",
            "input_reference": {
                "content": [
                    {"type": "image_url", "image_url": {"url": URL_A}, "role": "reference_image"}
                ]
            },
        },
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_last_frame_on_pro_is_unsupported_before_any_call(start: Start, fake: JimengFake):
    relay = await start(model="jimeng-3.0-pro")
    resp = await relay.client.post(
        "/v1/videos",
        json={
            "prompt": "x",
            "input_reference": {
                "content": [
                    {"type": "image_url", "image_url": {"url": URL_A}},
                    {"type": "image_url", "image_url": {"url": URL_B}, "role": "last_frame"},
                ]
            },
        },
        headers=auth(),
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "unsupported_feature" and "jimeng" in error["message"]
    assert fake.requests == []


async def test_remix_is_unsupported(start: Start, fake: JimengFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "in snow"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.submits()) == 1


async def test_official_sdk_flow(start: Start, fake: JimengFake):
    relay = await start()
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        video = await client.videos.create_and_poll(
            prompt="a lighthouse",
            model="sora-2",
            seconds="4",
            size="720x1280",
            poll_interval_ms=20,
        )
        assert video.status == "completed"
        assert (video.size, video.seconds) == ("720x1280", "5")  # 121 frames
        downloaded = await client.videos.download_content(video.id)
        assert downloaded.content == VIDEO
        uploaded = await client.videos.create_and_poll(
            prompt="animate this",
            model="sora-2",
            seconds="8",
            size="1280x720",
            input_reference=("frame.png", png(), "image/png"),
            poll_interval_ms=20,
        )
        assert uploaded.status == "completed" and uploaded.seconds == "10"
        assert fake.submits()[-1]["binary_data_base64"] == [
            Image(data=png(), mime="image/png").base64()
        ]
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
    finally:
        await client.close()


async def test_the_keys_never_leak(
    registered: None,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    access = "AKLTcanary4e1f0b9a7c3d2e5f6a8b9c0d1e2f3a4b"
    secret = "c2VjcmV0LWNhbmFyeS03ZDFlMGM1NS05M2I0LTRmNmEtOGUyZA=="
    fake = JimengFake(access_key=access, secret_key=secret)
    await fake.start()
    try:
        config = make_config(storage={"keep_videos": False}, channels=[fake.channel(fake.base_url)])
        relay: Relay = await start_relay(config)
        seen: list[str] = []

        async def text(resp: Any) -> None:
            seen.append((await resp.read()).decode("latin-1"))  # media bytes too

        ok = await relay.create()
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        await text(await content(relay, ok["id"]))
        fake.fail_next("poll", "signature")
        fake.fail_next("poll", "internal")
        bad = await relay.create(prompt="#fail")
        seen.append(json.dumps(await relay.wait(bad["id"])))
        await text(
            await relay.client.post(
                f"/v1/videos/{ok['id']}/remix", json={"prompt": "y"}, headers=auth()
            )
        )
        await text(await relay.client.delete(f"/v1/videos/{ok['id']}", headers=auth()))
        # a failed submit cools the only channel down: one fresh relay per error
        cases = ("signature", "invalid_key", "rate_limit", "internal", "text_risk", "bad_request")
        for case in (*cases, "gateway", "timeout", "access_denied"):
            fresh: Relay = await start_relay(make_config(channels=[fake.channel(fake.base_url)]))
            fake.fail_next("submit", case)
            await text(await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth()))
        assert fake.answers == {"submit": [], "poll": []}  # all were served
        for body in seen:
            assert access not in body and secret not in body
        for record in logs.records:
            assert access not in record.getMessage() and secret not in record.getMessage()
        assert access not in logs.text and secret not in logs.text
    finally:
        await fake.close()


# --- the adapter alone against the fake ---------------------------------------------------------


@pytest.fixture
async def direct(fake: JimengFake) -> AsyncIterator[JimengProvider]:
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    yield provider_for(fake, http)
    await http.close()


def provider_for(fake: JimengFake, http: Any, **options: Any) -> JimengProvider:
    config = fake.channel(fake.base_url)
    channel = ChannelView(
        "j",
        JimengOptions(**options),
        base_url=config["base_url"],
        access_key=config["access_key"],
        secret_key=config["secret_key"],
    )
    return JimengProvider(channel, ChannelHttp(http, 10))


def ref(submitted: Submitted, state: dict[str, Any] | None = None) -> TaskRef:
    return TaskRef(
        id="video_x",
        upstream_id=submitted.upstream_id,
        upstream_model=FAMILY,
        state={**submitted.state, **(state or {})},
        submitted_at=0.0,
        seconds=submitted.seconds,
        size=submitted.size,
        status="completed",
    )


async def finish(direct: JimengProvider, task: TaskRef) -> Any:
    for _ in range(5):
        update = await direct.poll(task)
        if update.status == "completed":
            return update
    raise AssertionError("the fake never finished")


async def test_content_after_the_hour_asks_again(direct: JimengProvider, fake: JimengFake):
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    source = await direct.content(task, "video")
    assert isinstance(source, Remote) and source.url == update.state["video_url"]
    assert source.headers == {} and not source.trusted
    later = time.time() + 3600 + 5
    fake.clock_offset = 3600 + 5  # the stored URL has expired at the CDN
    direct.clock = lambda: later
    fresh = await direct.content(task, "video")
    assert isinstance(fresh, Remote) and fresh.url != update.state["video_url"]
    assert len(fake.results()) == 3  # two polls, then one re-query
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(update.state["video_url"]) as old:
            assert old.status == 403
        async with session.get(fresh.url) as new:
            assert new.status == 200 and await new.read() == VIDEO


async def test_content_past_the_record_lifetime(direct: JimengProvider, fake: JimengFake):
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    later = time.time() + 13 * 3600
    direct.clock = lambda: later
    with pytest.raises(TaskNotFound):
        await direct.content(task, "video")
    assert len(fake.results()) == 2  # known to be gone: not asked


async def test_content_of_a_task_the_upstream_forgot(direct: JimengProvider, fake: JimengFake):
    submitted = await direct.submit(*job())
    task = ref(submitted)
    fake.tasks.clear()
    with pytest.raises(TaskNotFound):
        await direct.content(task, "video")
    fake.polls_to_finish = 10
    running = await direct.submit(*job())
    with pytest.raises(NotReady):
        await direct.content(ref(running), "video")


async def test_refresh_content_only_offers_a_new_url(direct: JimengProvider, fake: JimengFake):
    start = time.time()
    fake.clock = direct.clock = lambda: start
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    assert await direct.refresh_content(task, "video") is None  # the same URL again
    fake.clock_offset = 60  # a minute later the upstream signs anew
    fresh = await direct.refresh_content(task, "video")
    assert isinstance(fresh, Remote) and fresh.url != update.state["video_url"]
    fake.tasks.clear()
    assert await direct.refresh_content(task, "video") is None


async def test_a_url_seen_before_keeps_when_it_was_first_seen(
    direct: JimengProvider, fake: JimengFake
):
    start = time.time()
    fake.clock = lambda: start  # the upstream hands out the same URL again
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    direct.clock = lambda: start + 600
    again = await direct.poll(task)
    assert again.status == "completed" and again.state == {}  # done_at stays: the URL's hour
    fake.clock = lambda: start + 600  # signed anew
    fresh = await direct.poll(task)
    assert fresh.state["video_url"] != task.state["video_url"]
    assert fresh.state["done_at"] == start + 600


async def test_req_json_option_goes_with_every_get_result(fake: JimengFake):
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    try:
        provider = provider_for(fake, http, req_json='{"aigc_meta": {"content_producer": "x"}}')
        submitted = await provider.submit(*job())
        await finish(provider, ref(submitted))
        assert all(
            r["req_json"] == '{"aigc_meta": {"content_producer": "x"}}' for r in fake.results()
        )
        assert "req_json" not in fake.submits()[0]
    finally:
        await http.close()


@pytest.mark.parametrize(
    ("skew", "ok"), [(-10 * 60, True), (14 * 60, True), (-16 * 60, False), (20 * 60, False)]
)
async def test_clock_skew(direct: JimengProvider, fake: JimengFake, skew: float, ok: bool):
    direct.clock = lambda: time.time() + skew
    if ok:
        assert (await direct.submit(*job())).upstream_id in fake.tasks
    else:
        with pytest.raises(Rejected, match="InvalidTimestamp"):
            await direct.submit(*job())
        assert fake.signature_failures == ["X-Date more than 15 minutes off"]


async def test_host_header_is_the_signed_one(fake: JimengFake):
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    try:
        provider = provider_for(fake, http)
        provider.base_url = fake.base_url + "/"
        submitted = await provider.submit(*job())
        assert submitted.upstream_id in fake.tasks
        [call] = fake.requests
        assert call.headers["Host"] == fake.base_url.removeprefix("http://")
    finally:
        await http.close()


async def test_the_fake_checks_the_body_hash(direct: JimengProvider, fake: JimengFake):
    body = b'{"req_key":"jimeng_t2v_v30","prompt":"x"}'
    signed = sign(
        method="POST",
        path="/",
        query=[("Action", SUBMIT), ("Version", VERSION)],
        headers={"Content-Type": "application/json", "Host": fake.base_url.removeprefix("http://")},
        body=body,
        access_key=fake.access_key,
        secret_key=fake.secret_key,
        when=datetime.now(UTC),
    )
    url = f"{fake.base_url}/?Action={SUBMIT}&Version={VERSION}"
    tampered = body.replace(b'"x"', b'"y"')
    reply = await direct.http.request("POST", url, headers=signed.headers, data=tampered)
    assert reply.status == 401
    assert reply.json()["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"
    assert fake.signature_failures == ["X-Content-Sha256 is not the body's"]
    good = await direct.http.request("POST", url, headers=signed.headers, data=body)
    assert good.status == 200 and good.json()["code"] == 10000
    missing = await direct.http.request(
        "POST", f"{fake.base_url}/?Action={GET_RESULT}", headers=signed.headers, data=body
    )
    assert missing.json()["ResponseMetadata"]["Error"]["CodeN"] == 100002
    anonymous = await direct.http.request("POST", url, data=body)
    assert anonymous.json()["ResponseMetadata"]["Error"]["Code"] == "MissingAuthenticationToken"


async def test_the_fake_validates_submit_fields(direct: JimengProvider, fake: JimengFake):
    cases = [
        {"req_key": "jimeng_t2v_v30", "prompt": "x", "aspect_ratio": ""},
        {"req_key": "jimeng_t2v_v30", "prompt": "x", "frames": 100},
        {"req_key": "jimeng_i2v_first_v30", "image_urls": [URL_A], "aspect_ratio": "2:1"},
        {"req_key": "jimeng_i2v_first_v30", "binary_data_base64": [data_url(png())]},
        {"req_key": "jimeng_i2v_first_v30", "image_urls": [URL_A], "binary_data_base64": ["aGk="]},
        {"req_key": "jimeng_t2v_v30_720p", "prompt": "x"},
        {"req_key": "jimeng_t2v_v30"},
    ]
    for body in cases:
        reply = await direct._call(SUBMIT, body)
        assert reply.status == 400, body
        assert reply.json()["code"] == 50215
    assert fake.tasks == {}
    example = await direct._call(SUBMIT, fixture("submit_request.json"))  # the page's own body
    assert example.status == 200 and example.json()["code"] == 10000


async def test_access_denied_key(direct: JimengProvider, fake: JimengFake):
    fake.denied.add(fake.access_key)
    with pytest.raises(AuthFailed, match="50400"):
        await direct.submit(*job())


async def test_get_result_needs_the_submit_req_key(direct: JimengProvider, fake: JimengFake):
    from dataclasses import replace

    submitted = await direct.submit(*job())
    assert submitted.state == {"req_key": "jimeng_t2v_v30"}
    forgotten = replace(ref(submitted), state={})  # the family name is no req_key
    with pytest.raises(TaskNotFound) as caught:
        await direct.poll(forgotten)
    assert caught.value.code == "task_expired"
    real_key = replace(forgotten, upstream_model="jimeng_t2v_v30")
    assert (await direct.poll(real_key)).status == "in_progress"
