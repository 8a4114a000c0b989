"""DashScope: translation on the page's recorded bodies, then the relay against the fake Wan API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from relay.config import Config, ConfigError
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import ChannelView
from relay.providers.dashscope import DashScopeOptions, DashScopeProvider
from relay.providers.dashscope.models import known, spec_for
from relay.providers.dashscope.request import create_body
from relay.providers.dashscope.response import (
    classify,
    code_class,
    native_error,
    produced_seconds,
    produced_size,
    retry_after,
    task_update,
    url_expiry,
)
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
from relay.providers.http import ChannelHttp
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.dashscope import CREATE, DashScopeFake
from tests.images import data_url, png
from tests.storetools import update_task

FIXTURES = Path(__file__).parent / "fixtures" / "dashscope"
T2V = "wan2.6-t2v"
I2V = "wan2.6-i2v"
FLASH = "wan2.6-i2v-flash"
KF2V = "wan2.2-kf2v-flash"
IMAGE_URL = "https://img.example.test/cat.png"
SUBMITTED_AT = 1_759_126_732.0  # 2025-09-29 14:18:52 at UTC+8


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


Job = tuple[VideoRequest, str]  # a request and the upstream model it runs on


def job(model: str = T2V, size: str = "1280x720", seconds: int = 5, **kw: Any) -> Job:
    parsed = Size.parse(size)
    assert parsed is not None
    return VideoRequest(model=model, prompt="a red kite", seconds=seconds, size=parsed, **kw), model


def built(j: Job, prompt_extend: bool = True) -> Any:
    return create_body(*j, prompt_extend=prompt_extend)


def adapter(**options: Any) -> DashScopeProvider:
    return DashScopeProvider(ChannelView("d", DashScopeOptions(**options), api_key="k"), None)


def update_of(name: str, seen_at: float = SUBMITTED_AT + 300, **kw: Any) -> Any:
    return task_update(
        fixture(name),
        seen_at=seen_at,
        utc_offset_hours=kw.pop("utc_offset_hours", 8),
        requested_size=kw.pop("requested_size", "1280x720"),
    )


def at_utc8(text: str) -> float:
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=UTC).timestamp() - 8 * 3600


# --- models --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kind", "tiers", "durations"),
    [
        ("wan2.6-t2v", "t2v", ("720P", "1080P"), tuple(range(2, 16))),
        ("wan2.6-t2v-us", "t2v", ("720P", "1080P"), (5, 10)),
        ("wan2.5-t2v-preview", "t2v", ("480P", "720P", "1080P"), (5, 10)),
        ("wan2.2-t2v-plus", "t2v", ("480P", "1080P"), (5,)),
        ("wanx2.1-t2v-turbo", "t2v", ("480P", "720P"), (5,)),
        ("wan2.1-t2v-turbo", "t2v", ("480P", "720P"), (5,)),
        ("wanx2.1-t2v-plus", "t2v", ("720P",), (5,)),
        ("wan2.6-i2v", "i2v", ("720P", "1080P"), tuple(range(2, 16))),
        ("wan2.6-i2v-flash-us", "i2v", ("720P", "1080P"), (5, 10, 15)),
        ("wan2.5-i2v-preview", "i2v", ("480P", "720P", "1080P"), (5, 10)),
        ("wan2.2-i2v-flash", "i2v", ("480P", "720P", "1080P"), (5,)),
        ("wan2.2-i2v-plus", "i2v", ("480P", "1080P"), (5,)),
        ("wanx2.1-i2v-turbo", "i2v", ("480P", "720P"), (3, 4, 5)),
        ("wanx2.1-i2v-plus", "i2v", ("720P",), (5,)),
        ("wan2.2-kf2v-flash", "kf2v", ("480P", "720P", "1080P"), (5,)),
        ("wanx2.1-kf2v-plus", "kf2v", ("720P",), (5,)),
    ],
)
def test_model_table(model: str, kind: str, tiers: tuple[str, ...], durations: tuple[int, ...]):
    spec = spec_for(model)
    assert (spec.kind, spec.tiers, spec.durations) == (kind, tiers, durations)
    assert known(model)


def test_unknown_ids_are_read_from_their_words():
    assert not known("wan2.6-i2v-2025-12-01")
    assert spec_for("wan2.6-i2v-2025-12-01").kind == "i2v"
    assert spec_for("my-wan-kf2v-alias").kind == "kf2v"
    assert spec_for("something-else").kind == "t2v"


# --- request mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "native"),
    [
        (T2V, "1280x720", "1280*720"),
        (T2V, "720x1280", "720*1280"),
        (T2V, "1792x1024", "1920*1080"),
        (T2V, "1024x1792", "1080*1920"),
        (T2V, "1024x768", "1088*832"),
        (T2V, "768x1024", "832*1088"),
        (T2V, "1080x1080", "1440*1440"),
        (T2V, "480x480", "960*960"),  # no 480P on 2.6: the nearest tier it has
        (T2V, "3840x2160", "1920*1080"),  # 4k: the top tier
        (T2V, "16:9", "1920*1080"),  # a bare ratio takes the default tier
        (T2V, "9:16", "1080*1920"),
        (T2V, "1:1", "1440*1440"),
        ("wan2.2-t2v-plus", "1280x720", "1920*1080"),  # 720P missing: tie takes the higher
        ("wan2.2-t2v-plus", "854x480", "832*480"),
        ("wanx2.1-t2v-turbo", "1920x1080", "1280*720"),
        ("wanx2.1-t2v-turbo", "16:9", "1280*720"),
        ("wan2.1-t2v-plus", "480x832", "720*1280"),
        ("wan2.5-t2v-preview", "640x640", "960*960"),
    ],
)
def test_t2v_size_snaps_to_the_models_tiers(model: str, size: str, native: str):
    req = built(job(model, size))
    assert req.body["parameters"]["size"] == native
    assert "resolution" not in req.body["parameters"]
    assert req.size == native.replace("*", "x")


@pytest.mark.parametrize(
    ("model", "size", "resolution", "reported"),
    [
        (I2V, "1280x720", "720P", "1280x720"),
        (I2V, "720x1280", "720P", "720x1280"),
        (I2V, "16:9", "1080P", "1920x1080"),
        (I2V, "480x832", "720P", "720x1280"),
        ("wan2.5-i2v-preview", "480x832", "480P", "480x832"),
        ("wan2.2-i2v-flash", "9:16", "720P", "720x1280"),
        ("wan2.2-i2v-plus", "1280x720", "1080P", "1920x1080"),
        ("wanx2.1-i2v-plus", "1792x1024", "720P", "1280x720"),
    ],
)
def test_i2v_sends_a_resolution_and_never_a_size(
    model: str, size: str, resolution: str, reported: str
):
    req = built(job(model, size, images=(Image(url=IMAGE_URL),)))
    assert req.body["parameters"]["resolution"] == resolution
    assert "size" not in req.body["parameters"]
    assert req.size == reported  # the tier in the client's aspect


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        (T2V, 4, 4),
        (T2V, 1, 2),
        (T2V, 20, 15),
        ("wan2.6-t2v-us", 8, 10),
        ("wan2.6-t2v-us", 7, 5),
        ("wan2.5-t2v-preview", 8, 10),
        ("wan2.5-t2v-preview", 4, 5),
        ("wan2.6-i2v-us", 12, 10),
        ("wan2.6-i2v-us", 13, 15),
        ("wanx2.1-i2v-turbo", 4, 4),
        ("wanx2.1-i2v-turbo", 8, 5),
    ],
)
def test_duration_is_an_int_snapped_to_the_model(model: str, asked: int, sent: int):
    images = (Image(url=IMAGE_URL),) if "i2v" in model else ()
    req = built(job(model, seconds=asked, images=images))
    duration = req.body["parameters"]["duration"]
    assert type(duration) is int and duration == sent
    assert req.seconds == str(sent)


@pytest.mark.parametrize("model", ["wan2.2-t2v-plus", "wanx2.1-t2v-turbo", "wan2.1-t2v-plus"])
def test_fixed_five_second_models_get_no_duration(model: str):
    req = built(job(model, seconds=12))
    assert "duration" not in req.body["parameters"]
    assert req.seconds == "5"


def test_the_whole_t2v_body():
    req = built(job(T2V, "1280x720", 8))
    assert req.body == {
        "model": T2V,
        "input": {"prompt": "a red kite"},
        "parameters": {
            "size": "1280*720",
            "duration": 8,
            "prompt_extend": True,
            "watermark": False,
        },
    }
    assert (req.seconds, req.size, req.oss) == ("8", "1280x720", False)


def test_image_forms():
    upload = Image(data=png(), mime="image/png")
    by_url = built(job(I2V, images=(Image(url=IMAGE_URL),)))
    assert by_url.body["input"]["img_url"] == IMAGE_URL
    by_bytes = built(job(I2V, images=(upload,)))
    assert by_bytes.body["input"]["img_url"] == data_url(png())
    first = Image(role="first_frame", url="https://img.example.test/a.png")
    last = Image(role="last_frame", data=png(), mime="image/png")
    kf = built(job(KF2V, images=(last, first)))
    assert kf.body["input"]["first_frame_url"] == "https://img.example.test/a.png"
    assert kf.body["input"]["last_frame_url"] == data_url(png())
    assert "img_url" not in kf.body["input"]
    assert kf.body["parameters"]["resolution"] == "720P"
    two = built(job(KF2V, images=(Image(url="https://a.test/1.png"), Image(url=IMAGE_URL))))
    assert two.body["input"]["first_frame_url"] == "https://a.test/1.png"
    assert two.body["input"]["last_frame_url"] == IMAGE_URL


def test_hints():
    req = built(job(I2V, images=(Image(url=IMAGE_URL),), negative_prompt="blurry", seed=42))
    assert req.body["input"]["negative_prompt"] == "blurry"
    assert req.body["parameters"]["seed"] == 42
    flash = built(job(FLASH, images=(Image(url=IMAGE_URL),), generate_audio=False))
    assert flash.body["parameters"]["audio"] is False
    for model in (I2V, T2V, "wan2.5-t2v-preview", "wan2.2-i2v-flash"):
        images = (Image(url=IMAGE_URL),) if "i2v" in model else ()
        other = built(job(model, images=images, generate_audio=False, person_generation="x"))
        assert "audio" not in other.body["parameters"]
        assert "person_generation" not in json.dumps(other.body)


def test_prompt_extend_comes_from_the_option_and_enhance_prompt():
    assert built(job(), prompt_extend=False).body["parameters"]["prompt_extend"] is False
    assert built(job(enhance_prompt=False)).body["parameters"]["prompt_extend"] is False
    on = built(job(enhance_prompt=True), prompt_extend=False)
    assert on.body["parameters"]["prompt_extend"] is True
    assert built(job()).body["parameters"]["watermark"] is False


@pytest.mark.parametrize("seed", [-1, 2147483648])
def test_seed_out_of_range_is_refused(seed: int):
    with pytest.raises(Rejected) as caught:
        built(job(seed=seed))
    assert caught.value.param == "seed"


def test_reference_audio_goes_as_audio_url():
    audio = Media(kind="audio", url="https://a.example.test/song.mp3", role="reference_audio")
    req = built(job(T2V, media=(audio,)))
    assert req.body["input"]["audio_url"] == "https://a.example.test/song.mp3"


def test_metadata_merges_without_the_model():
    metadata = {
        "model": "wan2.2-t2v-plus",
        "callback_url": "https://evil.test/",
        "parameters": {"prompt_extend": False, "shot_type": "multi", "duration": 10},
        "input": {"audio_url": "https://a.test/x.mp3"},
    }
    req = built(job(T2V, seconds=5, metadata=metadata))
    assert req.body["model"] == T2V
    assert "callback_url" not in req.body
    assert req.body["parameters"]["prompt_extend"] is False
    assert req.body["parameters"]["shot_type"] == "multi"
    assert req.body["parameters"]["watermark"] is False
    assert req.body["input"] == {"prompt": "a red kite", "audio_url": "https://a.test/x.mp3"}
    assert req.seconds == "10"  # what was actually sent


def test_metadata_resolution_and_size_are_reported():
    i2v = built(
        job(
            I2V,
            "1280x720",
            images=(Image(url=IMAGE_URL),),
            metadata={"parameters": {"resolution": "1080P"}},
        )
    )
    assert i2v.size == "1920x1080"
    t2v = built(job(T2V, metadata={"parameters": {"size": "960*960"}}))
    assert t2v.size == "960x960"


def test_oss_inputs_are_flagged():
    req = built(
        job(
            I2V,
            images=(Image(url=IMAGE_URL),),
            metadata={"input": {"img_url": "oss://dashscope-instant/abc/cat.png"}},
        )
    )
    assert req.oss is True


@pytest.mark.parametrize(
    ("model", "kw", "words"),
    [
        (T2V, {"images": (Image(url=IMAGE_URL),)}, "text-to-video"),
        (I2V, {}, "needs an input image"),
        (I2V, {"images": (Image(url=IMAGE_URL), Image(url=IMAGE_URL))}, "kf2v"),
        (I2V, {"images": (Image(role="reference_image", url=IMAGE_URL),)}, "reference images"),
        (KF2V, {"images": (Image(url=IMAGE_URL),)}, "first and a last frame"),
        (
            "wan2.2-i2v-flash",
            {"images": (Image(url=IMAGE_URL),), "media": (Media("audio", "https://a.test/a"),)},
            "no reference audio",
        ),
        (T2V, {"media": (Media("audio", "https://a.test/a"),) * 2}, "at most one"),
        (T2V, {"media": (Media("video", "https://a.test/v.mp4"),)}, "reference video"),
    ],
)
def test_check_refuses_what_the_model_cannot_do(model: str, kw: dict[str, Any], words: str):
    with pytest.raises(Unsupported, match=words):
        adapter().check(*job(model, **kw))


def test_check_allows_what_the_model_takes():
    provider = adapter()
    provider.check(*job(T2V))
    provider.check(*job(I2V, images=(Image(url=IMAGE_URL),)))
    provider.check(*job(I2V, metadata={"input": {"img_url": IMAGE_URL}}))
    provider.check(*job(I2V, metadata={"input": {"template": "flying"}}))
    provider.check(*job(KF2V, images=(Image(url=IMAGE_URL), Image(url=IMAGE_URL))))
    provider.check(*job(T2V, media=(Media("audio", "https://a.test/a"),)))


def test_base_url_is_the_region_root():
    assert adapter().api == "https://dashscope-intl.aliyuncs.com/api/v1"
    for base in ("https://dashscope.aliyuncs.com", "https://dashscope.aliyuncs.com/api/v1/"):
        channel = ChannelView("d", DashScopeOptions(), base_url=base)
        assert DashScopeProvider(channel, None).api == "https://dashscope.aliyuncs.com/api/v1"


def test_options_are_validated(registered: None, make_config: Callable[..., Config]):
    def channel(**options: Any) -> dict[str, Any]:
        return {
            "name": "d",
            "provider": "dashscope",
            "api_key": "k",
            "models": ["sora-2"],
            "options": options,
        }

    with pytest.raises(ConfigError, match="prompt_extend"):
        make_config(channels=[channel(prompt_extend="yes")])
    with pytest.raises(ConfigError, match="utc_offset_hours"):
        make_config(channels=[channel(utc_offset_hours="+8")])
    ok = make_config(channels=[channel(prompt_extend=False, utc_offset_hours=-5)])
    assert dict(ok.channels[0].options) == {
        "prompt_extend": False,
        "utc_offset_hours": -5,
        "wan27_image_model": "",
        "remix_model": "",
    }


# --- task records ---------------------------------------------------------------------------


def test_submit_answer_and_queued_and_running():
    assert fixture("submit.json")["output"]["task_id"] == "0385dc79-5ff8-4d82-bcb6-6a1b2c3d4e5f"
    pending = update_of("query_pending.json")
    assert (pending.status, pending.progress) == ("queued", 0)
    running = update_of("query_running.json")
    assert (running.status, running.progress) == ("in_progress", None)  # time-based by policy


def test_succeeded():
    update = update_of("query_succeeded.json")
    assert update.status == "completed" and update.progress == 100
    assert update.completed_at == pytest.approx(at_utc8("2025-09-29 14:23:39.407"))
    assert update.expires_at == 1759213419  # the URL's Expires
    assert (update.seconds, update.size) == ("10", "1280x720")
    url = fixture("query_succeeded.json")["output"]["video_url"]
    assert update.state == {"video_url": url, "expires_at": 1759213419}


def test_end_time_follows_the_utc_offset_option():
    utc = update_of("query_succeeded.json", utc_offset_hours=0)
    plus8 = update_of("query_succeeded.json")
    assert utc.completed_at - plus8.completed_at == 8 * 3600


def test_success_without_expires_or_end_time_uses_the_time_seen():
    body = fixture("query_succeeded.json")
    body["output"]["video_url"] = "https://dashscope-result-sh.oss.aliyuncs.com/1d/a.mp4"
    del body["output"]["end_time"]
    update = task_update(body, seen_at=5000.0, utc_offset_hours=8, requested_size="1280x720")
    assert update.completed_at == 5000.0
    assert update.expires_at == 5000.0 + 86400


def test_success_without_a_url_fails():
    body = fixture("query_succeeded.json")
    del body["output"]["video_url"]
    update = task_update(body, seen_at=1.0, utc_offset_hours=8, requested_size="1280x720")
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "generation_failed"


@pytest.mark.parametrize(
    ("variant", "requested", "seconds", "size"),
    [
        ("wan2.6", "1280x720", "10", "1280x720"),
        ("t2v_2.5_and_older", "832x480", "5", "832x480"),
        ("i2v_2.2_2.5", "1280x720", "5", "1920x1080"),  # SR 1080 in the requested aspect
        ("strings", "1280x720", "10", "1280x720"),
        ("floats", "832x480", "5", "832x480"),
        ("i2v_strings", "1080x1920", "5", "720x1280"),
    ],
)
def test_usage_variants(variant: str, requested: str, seconds: str, size: str):
    usage = fixture("usage.json")[variant]
    assert produced_seconds(usage) == seconds
    assert produced_size(usage, requested) == size


def test_usage_missing_keeps_what_was_asked():
    assert produced_seconds({}) is None
    assert produced_size({"SR": "weird"}, "1280x720") is None


def test_url_expiry():
    assert url_expiry("https://x.test/a.mp4?Expires=1759213419&Signature=a%2Bb") == 1759213419
    assert url_expiry("https://x.test/a.mp4?Signature=abc") is None
    assert url_expiry("https://x.test/a.mp4?Expires=soon") is None


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("query_failed.json", "invalid_request", "InvalidParameter: The size does not match the"),
        (
            "query_moderation.json",
            "moderation_blocked",
            "DataInspectionFailed: input or output data may be inappropriate",
        ),
        ("query_canceled.json", "cancelled", "CANCELED"),
    ],
)
def test_failures(name: str, code: str, message: str):
    update = update_of(name)
    assert update.status == "failed"
    assert update.error is not None
    assert update.error.code == code
    assert update.error.message.startswith(message)


@pytest.mark.parametrize(
    ("code", "message", "normalized"),
    [
        ("InternalError", "An internal error has occured", "upstream_error"),
        ("InternalError.Algo.InvalidParameter", "bad frame", "invalid_request"),
        ("IPInfringementSuspect", "ip infringement", "moderation_blocked"),
        ("Arrearage", "account in arrears", "insufficient_quota"),
        ("Algo.Failed", "the output may be inappropriate", "moderation_blocked"),  # keywords
        ("Algo.Failed", "the model gave up", "generation_failed"),
        ("", "", "generation_failed"),
    ],
)
def test_failed_task_codes(code: str, message: str, normalized: str):
    output = {"task_status": "FAILED", "code": code, "message": message}
    update = task_update({"output": output}, seen_at=1, utc_offset_hours=8, requested_size="1x1")
    assert update.error is not None and update.error.code == normalized


def test_unknown_is_not_found_and_the_relay_gets_a_grace_window():
    # the grace window is the relay's (PollRules); the parser only says the id is unknown
    for seen_at in (SUBMITTED_AT + 30, SUBMITTED_AT + 61):
        with pytest.raises(TaskNotFound) as caught:
            update_of("query_unknown.json", seen_at=seen_at)
        assert caught.value.code == "task_expired"
        assert caught.value.message.startswith("UNKNOWN")
    rules = DashScopeProvider.poll_rules
    assert rules.not_found_window_s == 60
    assert 55 <= sum(rules.not_found_backoff) <= 75  # the waits cover the window
    assert rules.fail_after_errors is None


def test_an_unknown_status_keeps_the_previous_one_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, "relay.providers")
    provider = adapter()
    body = {"output": {"task_id": "t", "task_status": "SUSPENDED"}}
    for _ in range(3):
        update = task_update(body, seen_at=1, utc_offset_hours=8, requested_size="1x1")
        assert update.status is None and update.progress is None
        assert update.unknown_status == "SUSPENDED"
        provider.note_unknown_status(update.unknown_status)  # what the relay does with it
    assert sum("SUSPENDED" in r.getMessage() for r in caplog.records) == 1


# --- error bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kind", "code"),
    [
        ("auth", AuthFailed, "upstream_auth_failed"),
        ("rate_limit", RateLimited, "rate_limit_exceeded"),
        ("bad_request", Rejected, "invalid_request"),
        ("content_policy", Rejected, "moderation_blocked"),
        ("no_balance", QuotaExceeded, "insufficient_quota"),
        ("model_not_enabled", AuthFailed, "upstream_auth_failed"),
        ("internal", Unavailable, "upstream_error"),
        ("sync_refused", AuthFailed, "upstream_auth_failed"),
    ],
)
def test_page_error_bodies(case: str, kind: type, code: str):
    recorded = fixture("errors.json")[case]
    raw = json.dumps(recorded["body"])
    error = classify(recorded["status"], {}, recorded["body"], raw, creating=True)
    assert isinstance(error, kind)
    assert error.code == code
    native = recorded["body"]["code"]
    assert error.message.startswith(native) or f"({native}: " in error.message
    assert error.detail is not None and raw in error.detail  # the raw body is for the log only


@pytest.mark.parametrize(("status", "code"), [tuple(pair) for pair in fixture("other_codes.json")])
def test_other_codes(status: int, code: str):
    error = classify(
        status, {}, {"request_id": "r", "code": code, "message": "m"}, "", creating=True
    )
    expected = {
        "AccessDenied": AuthFailed,
        "AccessDenied.Unpurchased": AuthFailed,
        "Throttling": RateLimited,
        "Throttling.AllocationQuota": RateLimited,
    }.get(code, Rejected)
    assert isinstance(error, expected)
    if code == "IPInfringementSuspect":
        assert error.code == "moderation_blocked"
    elif expected is Rejected:
        assert error.code == "invalid_request"
    if code == "InvalidURL":
        assert isinstance(error, Rejected) and error.param == "input_reference"


def test_code_class_table():
    assert code_class("InternalError.Timeout") == "upstream_error"
    assert code_class("BadRequest.TooLarge") == "invalid_request"
    assert code_class("SomethingNew") is None


def test_error_answers_without_a_known_code_fall_back_on_the_status():
    gateway = classify(502, {}, None, "<html>502</html>", creating=True)
    assert isinstance(gateway, Unavailable) and gateway.maybe_created is False
    timeout = classify(504, {}, None, "<html>504</html>", creating=True)
    assert isinstance(timeout, Unavailable) and timeout.maybe_created is True
    poll_timeout = classify(504, {}, None, "", creating=False)
    assert isinstance(poll_timeout, Unavailable) and poll_timeout.maybe_created is False
    assert isinstance(classify(401, {}, None, "", creating=False), AuthFailed)
    assert isinstance(classify(429, {}, None, "", creating=False), RateLimited)
    assert isinstance(
        classify(400, {}, {"code": "New", "message": "x"}, "", creating=True), Rejected
    )
    odd = classify(
        400, {}, {"code": "New", "message": "data may be inappropriate"}, "", creating=True
    )
    assert isinstance(odd, Rejected) and odd.moderation


def test_an_error_body_on_http_200_is_an_error():
    body = {"request_id": "r", "code": "InternalError", "message": "boom"}
    assert native_error(body) == ("InternalError", "boom")
    assert native_error(fixture("submit.json")) is None
    assert isinstance(classify(200, {}, body, "", creating=True), Unavailable)


def test_retry_after():
    body = fixture("errors.json")["rate_limit"]["body"]
    error = classify(429, {"Retry-After": "12"}, body, "", creating=True)
    assert isinstance(error, RateLimited) and error.retry_after == 12.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --- through the relay ----------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "dashscope", DashScopeProvider)


@pytest.fixture
async def fake() -> AsyncIterator[DashScopeFake]:
    server = DashScopeFake()
    await server.start()
    yield server
    await server.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    registered: None,
    fake: DashScopeFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Start:
    async def run(**channel: Any) -> Relay:
        config = make_config(
            channels=[fake.channel(fake.base_url, **channel)], storage={"keep_videos": False}
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, variant: str = "video") -> Any:
    return await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )


async def no_tasks(relay: Relay) -> bool:
    rows = await relay.store.list_tasks(owner=None, after=None, limit=5, descending=True)
    return rows == []


async def test_create_poll_complete_and_download(start: Start, fake: DashScopeFake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(model="sora-2", seconds="8", size="1280x720")
    assert video["status"] == "queued"
    assert (video["seconds"], video["size"]) == ("8", "1280x720")

    [create] = fake.calls(CREATE, "POST")
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["X-DashScope-Async"] == "enable"
    assert create.headers["Content-Type"] == "application/json"
    assert "X-DashScope-OssResourceResolve" not in create.headers
    assert create.json() == {
        "model": "wan2.6-t2v",
        "input": {"prompt": "a paper airplane over a lake"},
        "parameters": {
            "size": "1280*720",
            "duration": 8,
            "prompt_extend": True,
            "watermark": False,
        },
    }

    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    task = next(iter(fake.tasks.values()))
    assert task.ended is not None
    assert done["completed_at"] == int(task.ended)  # end_time, read as UTC+8
    assert done["expires_at"] == int(task.ended) + 86400  # the URL's Expires
    assert (done["seconds"], done["size"]) == ("8", "1280x720")
    polls = fake.calls(f"/api/v1/tasks/{task.id}", "GET")
    assert len(polls) == 3
    assert all(p.headers["Authorization"] == f"Bearer {fake.api_key}" for p in polls)
    assert all("X-DashScope-Async" not in p.headers for p in polls)

    resp = await content(relay, video["id"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    # the signed URL went out byte for byte (the fake CDN checks it) and without the key
    assert fake.cdn_stats.auth_headers == [None]

    thumb = await content(relay, video["id"], "thumbnail")
    assert thumb.status == 404
    assert (await thumb.json())["error"]["code"] == "variant_not_available"


async def test_i2v_with_an_upload_and_hints(start: Start, fake: DashScopeFake):
    relay = await start(model=FLASH)
    data = aiohttp.FormData()
    for key, value in {
        "prompt": "the cat wakes up",
        "model": FLASH,
        "size": "720x1280",
        "seconds": "6",
        "negative_prompt": "blurry",
        "seed": "7",
        "generate_audio": "false",
    }.items():
        data.add_field(key, value)
    data.add_field("input_reference", png(), filename="cat.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    assert resp.status == 200, await resp.text()
    video = await resp.json()
    assert (video["seconds"], video["size"]) == ("6", "720x1280")
    body = fake.creates()[0]
    assert body["input"]["img_url"] == data_url(png())
    assert body["input"]["negative_prompt"] == "blurry"
    assert body["parameters"] == {
        "resolution": "720P",
        "duration": 6,
        "prompt_extend": True,
        "watermark": False,
        "seed": 7,
        "audio": False,
    }
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"
    assert done["size"] == "1280x720"  # 2.6 reports the produced size in usage


async def test_i2v_2_2_reports_the_tier_in_the_asked_aspect(start: Start, fake: DashScopeFake):
    fake.usage_numbers = "float"
    relay = await start(model="wan2.2-i2v-flash")
    video = await relay.create(
        model="wan2.2-i2v-flash", size="720x1280", seconds="8", input_reference=IMAGE_URL
    )
    assert (video["seconds"], video["size"]) == ("5", "720x1280")
    body = fake.creates()[0]
    assert body["input"]["img_url"] == IMAGE_URL
    assert body["parameters"] == {"resolution": "720P", "prompt_extend": True, "watermark": False}
    done = await relay.wait(video["id"])
    assert (done["seconds"], done["size"]) == ("5", "720x1280")  # usage: duration 5.0, SR 720.0


async def test_kf2v_takes_first_and_last_frames(start: Start, fake: DashScopeFake):
    relay = await start(model=KF2V)
    video = await relay.create(
        model=KF2V,
        input_reference={
            "content": [
                {"type": "image_url", "image_url": {"url": IMAGE_URL}, "role": "first_frame"},
                {"type": "image_url", "image_url": {"url": data_url(png())}, "role": "last_frame"},
            ]
        },
    )
    body = fake.creates()[0]
    assert body["input"]["first_frame_url"] == IMAGE_URL
    assert body["input"]["last_frame_url"] == data_url(png())
    assert "duration" not in body["parameters"] and video["seconds"] == "5"
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_prompt_extend_option_and_usage_strings(start: Start, fake: DashScopeFake):
    fake.usage_numbers = "str"
    relay = await start(model="wan2.5-t2v-preview", options={"prompt_extend": False})
    video = await relay.create(model="wan2.5-t2v-preview", size="854x480", seconds="10")
    assert fake.creates()[0]["parameters"]["prompt_extend"] is False
    done = await relay.wait(video["id"])
    assert (done["seconds"], done["size"]) == ("10", "832x480")


async def test_utc_offset_option(start: Start, fake: DashScopeFake):
    fake.utc_offset_hours = -5
    relay = await start(options={"utc_offset_hours": -5})
    done = await relay.wait((await relay.create())["id"])
    task = next(iter(fake.tasks.values()))
    assert task.ended is not None and done["completed_at"] == int(task.ended)


async def test_a_url_without_expires_lives_a_day_from_success(start: Start, fake: DashScopeFake):
    fake.expires_in_url = False
    relay = await start()
    video = await relay.create()
    done = await relay.wait(video["id"])
    row = await relay.store.get_task(video["id"])
    assert row is not None and row.updated_at is not None
    assert abs(done["expires_at"] - (row.updated_at + 86400)) <= 1
    assert await (await content(relay, video["id"])).read() == VIDEO


@pytest.mark.parametrize(
    ("marker", "code", "native"),
    [
        ("#fail", "upstream_error", "InternalError"),
        ("#moderation", "moderation_blocked", "DataInspectionFailed"),
        ("#badsize", "invalid_request", "InvalidParameter: The size does not match the model"),
        ("#cancel", "cancelled", "CANCELED"),
    ],
)
async def test_task_failures(start: Start, marker: str, code: str, native: str):
    relay = await start()
    video = await relay.create(prompt=f"a storm {marker}")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert done["error"]["message"].startswith(native)
    assert done["expires_at"] is None


async def test_input_moderation_is_a_400(start: Start, fake: DashScopeFake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "bad #reject"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "content_policy_violation"
    assert error["message"] == "DataInspectionFailed: input or output data may be inappropriate"
    assert await no_tasks(relay)


@pytest.mark.parametrize(
    ("case", "retry"),
    [
        ("rate_limit", "3"),
        ("allocation", None),
        ("internal", None),
        ("auth", None),
        ("model_access", None),
        ("gateway", None),
        ("arrearage", None),
        ("error_200", None),
    ],
)
async def test_submit_errors_leave_no_task(
    start: Start, fake: DashScopeFake, case: str, retry: str | None
):
    relay = await start()
    fake.fail_next("submit", case, retry_after=retry)
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=case in ("rate_limit", "allocation"))
    assert "127.0.0.1" not in body["error"]["message"]
    assert await no_tasks(relay)
    assert fake.tasks == {}


async def test_a_submit_gateway_timeout_fails_the_task_instead_of_retrying(
    start: Start, fake: DashScopeFake
):
    relay = await start()
    fake.fail_next("submit", "gateway_timeout")
    video = await relay.create()
    assert video["status"] == "failed"
    assert video["error"]["code"] == "upstream_error"
    assert len(fake.creates()) == 1


async def test_submit_bad_request_is_a_400(start: Start, fake: DashScopeFake):
    relay = await start()
    fake.fail_next("submit", "bad_request")
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"] == "InvalidParameter: Required parameter(s) missing or invalid"


async def test_wrong_key_is_refused_by_the_fake(
    registered: None,
    fake: DashScopeFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
):
    channel = {**fake.channel(fake.base_url), "api_key": "sk-wrong"}
    relay: Relay = await start_relay(make_config(channels=[channel]))
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert fake.tasks == {}


@pytest.mark.parametrize("case", ["rate_limit", "internal", "gateway", "auth", "error_200"])
async def test_poll_errors_leave_the_task_running(start: Start, fake: DashScopeFake, case: str):
    relay = await start()
    fake.fail_next("poll", case, retry_after="0")
    fake.fail_next("poll", case)
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"
    assert fake.answers["poll"] == []  # both error answers were served


async def test_unknown_right_after_submit_keeps_the_task_queued(start: Start, fake: DashScopeFake):
    fake.hidden_polls = 2
    relay = await start()
    video = await relay.create()
    for _ in range(100):
        if fake.calls("/api/v1/tasks/", "GET"):
            break
        await asyncio.sleep(0.01)
    assert (await relay.get(video["id"]))["status"] == "queued"
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"
    assert len(fake.calls("/api/v1/tasks/", "GET")) >= 2 + fake.polls_to_finish


async def test_unknown_after_the_grace_window_fails_as_expired(start: Start, fake: DashScopeFake):
    fake.polls_to_finish = 1000
    relay = await start()
    video = await relay.create()
    row = await relay.store.get_task(video["id"])
    assert row is not None and row.submitted_at is not None
    await update_task(relay.store, video["id"], {"submitted_at": row.submitted_at - 120})
    fake.tasks.clear()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "task_expired"
    assert done["error"]["message"].startswith("UNKNOWN")


async def test_an_unknown_status_keeps_the_task_going(start: Start, fake: DashScopeFake):
    relay = await start()
    fake.status_override = "SUSPENDED"
    video = await relay.create()
    for _ in range(100):
        if len(fake.calls("/api/v1/tasks/", "GET")) >= 3:
            break
        await asyncio.sleep(0.01)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_unsupported_features_are_refused_before_any_call(start: Start, fake: DashScopeFake):
    relay = await start(model_map={"sora-2": "wan2.6-t2v"})  # a t2v model for every job shape
    refused = [
        {"prompt": "x", "input_reference": IMAGE_URL},  # t2v model: no image input
        {
            "prompt": "x",
            "input_reference": {
                "content": [{"type": "video_url", "video_url": {"url": "https://v.test/a.mp4"}}]
            },
        },
    ]
    for body in refused:
        resp = await relay.client.post("/v1/videos", json=body, headers=auth())
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_remix_is_unsupported(start: Start, fake: DashScopeFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "in snow"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


async def test_official_sdk_flow(start: Start, fake: DashScopeFake):
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
        assert (video.size, video.seconds) == ("720x1280", "4")
        downloaded = await client.videos.download_content(video.id)
        assert downloaded.content == VIDEO
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
    finally:
        await client.close()


async def test_the_key_never_leaks(
    registered: None,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "sk-canary-5e0b7c1d9a8f4e3b2c6d7e8f9a0b1c2d-zz9q"
    fake = DashScopeFake(api_key=canary)
    await fake.start()
    try:
        config = make_config(channels=[fake.channel(fake.base_url)], storage={"keep_videos": False})
        relay: Relay = await start_relay(config)
        seen: list[str] = []

        async def text(resp: Any) -> None:
            seen.append((await resp.read()).decode("latin-1"))  # media bytes too

        ok = await relay.create()
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        await text(await content(relay, ok["id"]))
        await text(await content(relay, ok["id"], "thumbnail"))
        fake.fail_next("poll", "auth")
        fake.fail_next("poll", "rate_limit")
        bad = await relay.create(prompt="#fail")
        seen.append(json.dumps(await relay.wait(bad["id"])))
        await text(
            await relay.client.post(
                f"/v1/videos/{ok['id']}/remix", json={"prompt": "y"}, headers=auth()
            )
        )
        await text(await relay.client.delete(f"/v1/videos/{ok['id']}", headers=auth()))
        # a failed submit cools the only channel down: one fresh relay per error
        for case in ("auth", "rate_limit", "internal", "moderation", "bad_request", "gateway"):
            fresh: Relay = await start_relay(make_config(channels=[fake.channel(fake.base_url)]))
            fake.fail_next("submit", case)
            await text(await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth()))
        assert fake.answers == {"submit": [], "poll": [], "cancel": []}  # all were served
        for body in seen:
            assert canary not in body
        assert canary not in logs.text
        for record in logs.records:
            assert canary not in record.getMessage()
    finally:
        await fake.close()


# --- the adapter alone against the fake -----------------------------------------------------


@pytest.fixture
async def direct(fake: DashScopeFake) -> AsyncIterator[DashScopeProvider]:
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    config = fake.channel(fake.base_url)
    channel = ChannelView(
        "d", DashScopeOptions(), base_url=config["base_url"], api_key=config["api_key"]
    )
    yield DashScopeProvider(channel, ChannelHttp(http, 10))
    await http.close()


def ref(submitted: Any, state: dict[str, Any] | None = None, model: str = T2V) -> TaskRef:
    return TaskRef(
        id="video_x",
        upstream_id=submitted.upstream_id,
        upstream_model=model,
        state=state or {},
        submitted_at=submitted_at_now(),
        seconds=submitted.seconds,
        size=submitted.size,
        status="completed",
    )


def submitted_at_now() -> float:
    import time

    return time.time()


async def finish(direct: DashScopeProvider, task: TaskRef) -> Any:
    for _ in range(5):
        update = await direct.poll(task)
        if update.status == "completed":
            return update
    raise AssertionError("the fake never finished")


async def test_the_fake_refuses_a_create_without_the_async_header(
    direct: DashScopeProvider, fake: DashScopeFake
):
    reply = await direct.http.request(
        "POST",
        direct.api + "/services/aigc/video-generation/video-synthesis",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        json=built(job()).body,
    )
    assert reply.status == 403
    body = reply.json()
    assert (body["code"], body["message"]) == (
        "AccessDenied",
        "current user api does not support synchronous calls",
    )
    error = classify(reply.status, reply.headers, body, reply.text(), creating=True)
    assert isinstance(error, AuthFailed)
    assert fake.tasks == {}


async def test_the_fake_checks_native_types(direct: DashScopeProvider, fake: DashScopeFake):
    headers = {"Authorization": f"Bearer {fake.api_key}", "X-DashScope-Async": "enable"}
    url = direct.api + "/services/aigc/video-generation/video-synthesis"
    cases = [
        ({"parameters": {"duration": "5"}}, "InvalidParameter"),
        ({"parameters": {"size": "1280x720"}}, "InvalidParameter"),
        ({"parameters": {"size": "720P"}}, "InvalidParameter"),
        ({"parameters": {"resolution": "720P"}}, "InvalidParameter"),
        ({"parameters": {"audio": False}}, "InvalidParameter"),
        ({"model": "wanx2.1-t2v-turbo"}, "ModelNotFound"),  # a China name on the intl site
        ({"input": {}}, "BadRequest.EmptyInput"),
    ]
    for change, code in cases:
        body = built(job()).body
        for key, value in change.items():
            body[key] = {**body[key], **value} if isinstance(value, dict) and value else value
        reply = await direct.http.request("POST", url, headers=headers, json=body)
        assert reply.status in (400, 404), change
        assert reply.json()["code"] == code, change
    i2v = built(job(I2V, images=(Image(url=IMAGE_URL),))).body
    i2v["parameters"]["size"] = "1280*720"
    reply = await direct.http.request("POST", url, headers=headers, json=i2v)
    assert reply.json()["code"] == "InvalidParameter"
    assert fake.tasks == {}


async def test_oss_inputs_send_the_resolve_header(direct: DashScopeProvider, fake: DashScopeFake):
    metadata = {"input": {"img_url": "oss://dashscope-instant/abc/cat.png"}}
    submitted = await direct.submit(*job(I2V, metadata=metadata))
    [create] = fake.calls(CREATE, "POST")
    assert create.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert fake.tasks[submitted.upstream_id].request["input"]["img_url"].startswith("oss://")


async def test_content_requeries_when_the_state_has_no_url(
    direct: DashScopeProvider, fake: DashScopeFake
):
    fake.polls_to_finish = 3
    submitted = await direct.submit(*job())
    with pytest.raises(NotReady):
        await direct.content(ref(submitted), "video")
    update = await finish(direct, ref(submitted))
    source = await direct.content(ref(submitted), "video")
    assert isinstance(source, Remote)
    assert source.url == update.state["video_url"]
    assert source.headers == {} and source.trusted is False


async def test_refresh_content_only_offers_a_new_url(
    direct: DashScopeProvider, fake: DashScopeFake
):
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    assert await direct.refresh_content(task, "video") is None  # the same URL again
    fake._publish(fake.tasks[submitted.upstream_id])  # signed anew
    fresh = await direct.refresh_content(task, "video")
    assert isinstance(fresh, Remote) and fresh.url != update.state["video_url"]
    fake.tasks.clear()
    assert await direct.refresh_content(task, "video") is None


async def test_refresh_content_ignores_an_expiry_that_moves_with_the_time_seen(
    direct: DashScopeProvider, fake: DashScopeFake
):
    fake.expires_in_url = False  # expires_at is then the time seen + 24 h, new on every query
    submitted = await direct.submit(*job())
    update = await finish(direct, ref(submitted))
    task = ref(submitted, {**update.state, "expires_at": update.state["expires_at"] - 5})
    assert await direct.refresh_content(task, "video") is None  # the URL is the same


async def test_a_create_answer_without_an_id_may_have_created(
    direct: DashScopeProvider, fake: DashScopeFake
):
    from tests.fakes.dashscope import Answer

    fake.answers["submit"].append(Answer(200, b'{"output": {}, "request_id": "r"}'))
    with pytest.raises(Unavailable) as caught:
        await direct.submit(*job())
    assert caught.value.maybe_created is True


async def test_a_cancelled_pending_task_reads_as_cancelled(
    direct: DashScopeProvider, fake: DashScopeFake
):
    fake.polls_to_finish = 5
    submitted = await direct.submit(*job())
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    cancel = f"{direct.api}/tasks/{submitted.upstream_id}/cancel"
    reply = await direct.http.request("POST", cancel, headers=headers)
    assert reply.status == 200
    update = await direct.poll(ref(submitted))
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "cancelled"
    again = await direct.http.request("POST", cancel, headers=headers)
    assert again.status == 400 and again.json()["code"] == "UnsupportedOperation"


@pytest.mark.parametrize(
    ("region", "model", "seconds"),
    [
        ("cn", "wanx2.1-t2v-turbo", "5"),
        ("us", "wan2.6-t2v-us", "10"),
        ("intl", "wan2.1-t2v-plus", "5"),
    ],
)
async def test_regional_model_names(region: str, model: str, seconds: str):
    from relay.upstream import Http

    fake = DashScopeFake(model=model, region=region)
    await fake.start()
    http = Http(allow_private_networks=True)
    try:
        channel = ChannelView("d", DashScopeOptions(), base_url=fake.base_url, api_key=fake.api_key)
        provider = DashScopeProvider(channel, ChannelHttp(http, 10))
        submitted = await provider.submit(*job(model, seconds=9))
        assert submitted.seconds == seconds
        update = await finish(provider, ref(submitted, model=model))
        assert update.seconds == seconds
    finally:
        await http.close()
        await fake.close()
