"""Seedance: translation on the page's recorded bodies, then the relay against the fake Ark API."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Media, Size, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import ChannelView
from relay.providers.errors import (
    AuthFailed,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from relay.providers.http import ChannelHttp
from relay.providers.seedance import SeedanceOptions, SeedanceProvider
from relay.providers.seedance.models import FAMILIES, Family, family_of, pixel_size
from relay.providers.seedance.request import create_body
from relay.providers.seedance.response import classify, code_class, retry_after, task_update
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.seedance import LAST_FRAME, SeedanceFake
from tests.images import png
from tests.storetools import update_task

FIXTURES = Path(__file__).parent / "fixtures" / "seedance"
PRO_1_0 = "doubao-seedance-1-0-pro-250528"
PRO_1_5 = "doubao-seedance-1-5-pro-251215"
V2 = "doubao-seedance-2-0-260128"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def job(model: str = PRO_1_0, size: str = "1280x720", seconds: int = 5, **kw: Any) -> VideoRequest:
    """A request whose public model is also the upstream one (no model_map)."""
    parsed = Size.parse(size)
    assert parsed is not None
    return VideoRequest(model=model, prompt="a red kite", seconds=seconds, size=parsed, **kw)


def body_of(j: VideoRequest, family: str | None = None, last_frame: bool = False) -> Any:
    fam = Family(family) if family else family_of(j.public_model)
    return create_body(j, j.public_model, fam, return_last_frame=last_frame)


def adapter(**options: Any) -> SeedanceProvider:
    return SeedanceProvider(ChannelView("s", SeedanceOptions(**options), api_key="k"), None)


def check(provider: SeedanceProvider, j: VideoRequest) -> None:
    provider.check(j, j.public_model)


# --- model families ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("doubao-seedance-1-0-pro-250528", "1.0-pro"),
        ("seedance-1-0-pro-250528", "1.0-pro"),
        ("doubao-seedance-1-0-pro-fast-251015", "1.0-pro-fast"),
        ("seedance-1-0-pro-fast-251015", "1.0-pro-fast"),
        ("doubao-seedance-1-0-lite-t2v-250428", "1.0-lite-t2v"),
        ("doubao-seedance-1-0-lite-i2v-250428", "1.0-lite-i2v"),
        ("doubao-seedance-1-5-pro-251215", "1.5-pro"),
        ("seedance-1-5-pro-251215", "1.5-pro"),
        ("doubao-seedance-2-0-260128", "2.0"),
        ("doubao-seedance-2-0-fast-260128", "2.0-fast"),
        ("dreamina-seedance-2-0-260128", "2.0"),
        ("dreamina-seedance-2-0-fast-260128", "2.0-fast"),
        ("ep-20250601123456-abcde", "2.0"),  # endpoints: the newest generation by default
        ("my-alias", "2.0"),
    ],
)
def test_family_from_model_ids_of_both_sites(model: str, family: str):
    assert family_of(model).name == family


def test_endpoint_family_is_an_option():
    assert adapter().family("ep-20250601123456-abcde").name == "2.0"
    assert adapter(endpoint_family="1.0-pro").family("ep-x").name == "1.0-pro"
    assert adapter(endpoint_family="1.0-pro").family(V2).name == "2.0"  # ids still speak


def test_endpoint_family_option_is_validated(registered: None, make_config: Callable[..., Config]):
    from relay.config import ConfigError

    def channel(family: str) -> dict[str, Any]:
        return {
            "name": "s",
            "provider": "seedance",
            "api_key": "k",
            "models": ["sora-2"],
            "options": {"endpoint_family": family},
        }

    with pytest.raises(ConfigError, match="endpoint_family"):
        make_config(channels=[channel("3.0")])
    ok = make_config(channels=[channel("1.5-pro")])
    assert ok.channels[0].options["endpoint_family"] == "1.5-pro"


def test_every_family_has_sizes_for_every_tier_and_ratio():
    for name in FAMILIES:
        for res in ("480p", "720p", "1080p"):
            for ratio in ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9"):
                assert pixel_size(Family(name).generation, res, ratio)


# --- request mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "ratio", "resolution", "reported"),
    [
        (PRO_1_0, "1280x720", "16:9", "720p", "1248x704"),
        (V2, "1280x720", "16:9", "720p", "1280x720"),
        (PRO_1_5, "1792x1024", "16:9", "1080p", "1920x1080"),
        (PRO_1_0, "1792x1024", "16:9", "1080p", "1920x1088"),
        (PRO_1_0, "1024x1792", "9:16", "1080p", "1088x1920"),
        (V2, "720x1280", "9:16", "720p", "720x1280"),
        (V2, "480x480", "1:1", "480p", "640x640"),
        (PRO_1_5, "1024x768", "4:3", "720p", "1112x834"),
        (PRO_1_5, "1440x1080", "4:3", "1080p", "1664x1248"),
        (V2, "2520x1080", "21:9", "1080p", "2206x946"),
        (V2, "3840x2160", "16:9", "1080p", "1920x1080"),  # no 4k on this page: the top tier
        (PRO_1_0, "16:9", "16:9", None, "1920x1088"),  # bare ratio: 1.0 pro defaults to 1080p
        (V2, "9:16", "9:16", None, "720x1280"),  # 2.0 defaults to 720p
    ],
)
def test_size_snaps_to_ratio_and_tier(
    model: str, size: str, ratio: str, resolution: str | None, reported: str
):
    req = body_of(job(model, size))
    assert req.body["ratio"] == ratio
    assert req.body.get("resolution") == resolution
    assert req.size == reported


def test_resolution_left_out_where_the_model_takes_none():
    fast = body_of(job("dreamina-seedance-2-0-fast-260128", "1920x1080"))
    assert "resolution" not in fast.body and fast.size == "1280x720"
    refs = (Image(role="reference_image", url="https://img.test/a.png"),)
    lite = body_of(job("doubao-seedance-1-0-lite-i2v-250428", "1280x720", images=refs))
    assert "resolution" not in lite.body
    lite_frame = body_of(
        job(
            "doubao-seedance-1-0-lite-i2v-250428",
            "1280x720",
            images=(Image(url="https://img.test/a.png"),),
        )
    )
    assert lite_frame.body["resolution"] == "720p"


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        (PRO_1_0, 1, 2),
        (PRO_1_0, 4, 4),
        (PRO_1_0, 20, 12),
        (PRO_1_5, 2, 4),
        (PRO_1_5, 8, 8),
        (PRO_1_5, 15, 12),
        (V2, 12, 12),
        (V2, 20, 15),
        (V2, 3, 4),
    ],
)
def test_seconds_clamped_per_family(model: str, asked: int, sent: int):
    req = body_of(job(model, seconds=asked))
    assert req.body["duration"] == sent
    assert req.seconds == str(sent)


def test_prompt_is_the_first_and_only_text_item():
    req = body_of(job(images=(Image(url="https://img.test/a.png"),)))
    assert req.body["model"] == PRO_1_0
    assert req.body["content"][0] == {"type": "text", "text": "a red kite"}
    assert [i["type"] for i in req.body["content"]].count("text") == 1


def test_image_forms():
    url = Image(url="https://img.test/a.png")
    upload = Image(data=png(), mime="image/png")
    req = body_of(job(images=(url,)))
    assert req.body["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://img.test/a.png"},
        "role": "first_frame",
    }
    uploaded = body_of(job(images=(upload,))).body["content"][1]
    assert uploaded["image_url"]["url"] == upload.data_url()
    assert uploaded["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("roles", "sent"),
    [
        ((None,), ["first_frame"]),
        (("first_frame",), ["first_frame"]),
        ((None, None), ["first_frame", "last_frame"]),
        ((None, "last_frame"), ["first_frame", "last_frame"]),
        (("last_frame", None), ["last_frame", "first_frame"]),
        ((None, "first_frame"), ["last_frame", "first_frame"]),
        (("reference_image",) * 3, ["reference_image"] * 3),
    ],
)
def test_image_roles_are_always_explicit(roles: tuple[str | None, ...], sent: list[str]):
    images = tuple(Image(role=r, url=f"https://img.test/{i}.png") for i, r in enumerate(roles))
    content = body_of(job(V2, images=images)).body["content"]
    assert [item["role"] for item in content[1:]] == sent


@pytest.mark.parametrize(
    "roles",
    [
        ("first_frame", "reference_image"),
        (None, None, None),
        ("last_frame",),
        ("first_frame", "first_frame"),
    ],
)
def test_impossible_image_combinations_are_rejected(roles: tuple[str | None, ...]):
    images = tuple(Image(role=r, url="https://img.test/a.png") for r in roles)
    with pytest.raises(Rejected) as caught:
        body_of(job(V2, images=images))
    assert caught.value.param == "input_reference"


def test_reference_media_items():
    media = (
        Media(kind="video", url="https://v.test/a.mp4", role="reference_video"),
        Media(kind="audio", url="https://v.test/a.mp3"),
    )
    content = body_of(
        job(V2, images=(Image(role="reference_image", url="https://i/a"),), media=media)
    ).body["content"]
    assert content[2] == {
        "type": "video_url",
        "video_url": {"url": "https://v.test/a.mp4"},
        "role": "reference_video",
    }
    assert content[3] == {
        "type": "audio_url",
        "audio_url": {"url": "https://v.test/a.mp3"},
        "role": "reference_audio",
    }
    with pytest.raises(Rejected, match="audio"):
        body_of(job(V2, media=(Media(kind="audio", url="https://v.test/a.mp3"),)))
    four = tuple(Media(kind="video", url=f"https://v.test/{i}.mp4") for i in range(4))
    with pytest.raises(Rejected, match="at most 3"):
        body_of(job(V2, media=four))


def test_hints():
    req = body_of(job(PRO_1_0, seed=7, generate_audio=False, negative_prompt="blur"))
    assert req.body["seed"] == 7
    assert "generate_audio" not in req.body  # 1.0 has no audio
    assert "negative_prompt" not in req.body
    assert body_of(job(PRO_1_5, generate_audio=False)).body["generate_audio"] is False
    assert body_of(job(V2, generate_audio=True)).body["generate_audio"] is True
    assert "seed" not in body_of(job()).body


def test_return_last_frame_follows_the_option():
    assert body_of(job(), last_frame=True).body["return_last_frame"] is True
    assert "return_last_frame" not in body_of(job()).body


def test_metadata_merges_and_content_is_appended(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    metadata = {
        "model": "other",
        "callback_url": "https://evil.test/cb",
        "camera_fixed": True,
        "watermark": True,
        "service_tier": "flex",
        "execution_expires_after": 3600,
        "content": [
            {"type": "text", "text": "--rs 480p sneaky"},
            {"type": "draft_task", "draft_task": {"id": "cgt-20250101000000-abcde"}},
        ],
    }
    req = body_of(job(PRO_1_0, metadata=metadata))
    body = req.body
    assert body["model"] == PRO_1_0
    assert "callback_url" not in body
    assert body["camera_fixed"] is True and body["watermark"] is True
    assert body["service_tier"] == "flex" and body["execution_expires_after"] == 3600
    assert body["content"] == [
        {"type": "text", "text": "a red kite"},
        {"type": "draft_task", "draft_task": {"id": "cgt-20250101000000-abcde"}},
    ]
    assert "text item was dropped" in caplog.text
    with pytest.raises(Rejected) as caught:
        body_of(job(metadata={"content": {"type": "image_url"}}))
    assert caught.value.param == "metadata.content"


def test_metadata_overrides_are_reported():
    frames = body_of(job(PRO_1_0, metadata={"frames": 121}))
    assert frames.body["frames"] == 121 and frames.seconds == "5"
    auto = body_of(job(V2, seconds=8, metadata={"duration": -1}))
    assert auto.body["duration"] == -1 and auto.seconds == "8"
    small = body_of(job(V2, "1280x720", metadata={"resolution": "480p", "ratio": "1:1"}))
    assert small.size == "640x640"
    adaptive = body_of(job(V2, "1280x720", metadata={"ratio": "adaptive"}))
    assert adaptive.body["ratio"] == "adaptive" and adaptive.size == "1280x720"


# --- per-model limits (check) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kw", "words"),
    [
        (
            "doubao-seedance-1-0-lite-t2v-250428",
            {"images": (Image(url="https://i/a"),)},
            "no image",
        ),
        (PRO_1_0, {"images": (Image(role="reference_image", url="https://i/a"),)}, "reference"),
        (
            "doubao-seedance-1-0-lite-i2v-250428",
            {"images": tuple(Image(role="reference_image", url="https://i/a") for _ in range(5))},
            "at most 4",
        ),
        (PRO_1_5, {"media": (Media(kind="video", url="https://v/a.mp4"),)}, "reference video"),
        (PRO_1_0, {"media": (Media(kind="audio", url="https://v/a.mp3"),)}, "reference audio"),
        (PRO_1_5, {"metadata": {"content": [{"type": "video_url"}]}}, "reference video"),
    ],
)
def test_check_refuses_what_the_model_cannot_do(model: str, kw: dict[str, Any], words: str):
    with pytest.raises(Unsupported, match=words):
        check(adapter(), job(model, **kw))


def test_check_allows_2_0_references_and_endpoints():
    refs = tuple(Image(role="reference_image", url="https://i/a") for _ in range(9))
    media = (Media(kind="video", url="https://v/a.mp4"), Media(kind="audio", url="https://v/b.mp3"))
    check(adapter(), job(V2, images=refs, media=media))
    check(adapter(), job("ep-20250601-x", media=media))
    with pytest.raises(Unsupported):
        check(adapter(endpoint_family="1.0-pro"), job("ep-20250601-x", media=media))


# --- task objects -----------------------------------------------------------------------------


def test_queued_and_running():
    queued = task_update(fixture("queued.json"), Family("1.0-pro"))
    assert queued.status == "queued" and queued.progress == 0
    running = task_update(fixture("running.json"), Family("1.0-pro"))
    assert running.status == "in_progress" and running.progress is None
    assert running.error is None and running.completed_at is None


def test_succeeded():
    task = fixture("succeeded.json")
    update = task_update(task, Family("1.5-pro"))
    assert update.status == "completed" and update.progress == 100
    assert update.seconds == "5"
    assert update.size == "1280x720"  # 720p 16:9 on 1.5 pro
    assert update.completed_at == 1743414700  # already Unix seconds: unchanged
    assert update.expires_at == 1743414700 + 86400
    assert update.state["video_url"] == task["content"]["video_url"]  # byte for byte
    assert "last_frame_url" not in update.state


def test_succeeded_variants():
    task = fixture("succeeded.json")
    task["model"] = PRO_1_0
    task["resolution"] = "1080p"
    del task["duration"]
    task["frames"] = 121
    task["content"]["last_frame_url"] = "https://tos.test/out/last.png?X-Tos-Signature=x"
    update = task_update(task, Family("1.0-pro"))
    assert update.seconds == "5"  # 121 frames at 24 fps
    assert update.size == "1920x1088"  # the 1.0 table
    assert update.state["last_frame_url"] == "https://tos.test/out/last.png?X-Tos-Signature=x"
    task["content"] = None
    broken = task_update(task, Family("1.0-pro"))
    assert broken.status == "failed" and broken.error is not None
    assert broken.error.code == "generation_failed"


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("failed.json", "upstream_error", "InternalServiceError: internal error, please retry"),
        (
            "failed_moderation.json",
            "moderation_blocked",
            "OutputVideoSensitiveContentDetected: output video may contain sensitive content",
        ),
        ("expired.json", "task_expired", "expired: the task did not run before it expired"),
        ("cancelled.json", "cancelled", "cancelled: the task was cancelled upstream"),
    ],
)
def test_failures(name: str, code: str, message: str):
    task = fixture(name)
    update = task_update(task, Family("1.0-pro"))
    assert update.status == "failed"
    assert update.error is not None
    assert (update.error.code, update.error.message) == (code, message)
    assert update.completed_at == task["updated_at"]
    assert update.expires_at is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"code": "OutputAudioSensitiveContentDetected", "message": "m"}, "moderation_blocked"),
        (
            {"code": "InputImageSensitiveContentDetected.PrivacyInformation", "message": "m"},
            "moderation_blocked",
        ),
        ({"code": "InvalidParameter.ratio", "message": "m"}, "invalid_request"),
        ({"code": "SomethingNew", "message": "m"}, "generation_failed"),
        (None, "generation_failed"),
    ],
)
def test_failed_task_codes(error: Any, code: str):
    update = task_update({"status": "failed", "error": error, "updated_at": 1}, Family("2.0"))
    assert update.error is not None and update.error.code == code


def test_expired_with_an_error_object():
    task = fixture("expired.json")
    task["error"] = {"code": "TaskExpired", "message": "task expired"}
    update = task_update(task, Family("1.0-pro"))
    assert update.error is not None
    assert update.error.code == "task_expired"
    assert update.error.message == "expired: TaskExpired: task expired"


def test_absent_or_null_fields_before_success():
    task = fixture("running.json")
    assert task_update(task, Family("2.0")).status == "in_progress"
    task.update(content=None, usage=None, seed=None)
    assert task_update(task, Family("2.0")).status == "in_progress"


def test_unknown_status_keeps_the_previous_one_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    task = {**fixture("running.json"), "status": "paused"}
    # the parser names the status; the relay has the adapter note it, once per channel
    provider = adapter()
    for _ in range(2):
        update = task_update(task, Family("2.0"))
        assert update.status is None
        assert update.unknown_status == "paused"
        provider.note_unknown_status(update.unknown_status)
    assert caplog.text.count("'paused'") == 1


# --- error bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kind", "attrs"),
    [
        ("not_found", TaskNotFound, {}),
        ("auth", AuthFailed, {}),
        ("rate_limit", RateLimited, {"retry_after": None}),
        ("bad_request", Rejected, {"moderation": False, "param": "duration"}),
        ("content_policy_input", Rejected, {"moderation": True, "code": "moderation_blocked"}),
        ("no_balance", QuotaExceeded, {}),
        ("model_not_enabled", Rejected, {"moderation": False}),
        ("internal", Unavailable, {"maybe_created": False}),
    ],
)
def test_page_error_bodies(case: str, kind: type, attrs: dict[str, Any]):
    recorded = fixture("errors.json")[case]
    error = classify(recorded["status"], {}, recorded["body"], "raw", on_task=case == "not_found")
    assert type(error) is kind
    for name, value in attrs.items():
        assert getattr(error, name) == value
    native = recorded["body"]["error"]
    assert f"{native['code']}: {native['message']}" in error.message
    assert error.detail is not None and "raw" in error.detail


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "MissingParameter.content", Rejected),
        (400, "InvalidEndpoint.ClosedEndpoint", Rejected),
        (400, "InputVideoSensitiveContentDetected.PolicyViolation", Rejected),
        (403, "AccessDenied", AuthFailed),
        (404, "InvalidEndpointOrModel.NotFound", Rejected),
        (404, "NotFound.Model", TaskNotFound),
        (429, "RateLimitExceeded.EndpointTPMExceeded", RateLimited),
        (429, "RateLimitExceeded.FoundationModelRPMExceeded", RateLimited),
        (429, "QuotaExceeded", RateLimited),
        (429, "ServerOverloaded", RateLimited),
        (429, "SetLimitExceeded", QuotaExceeded),
        (500, "InternalServiceError", Unavailable),
        (503, "", Unavailable),
        (200, "InternalServiceError", Unavailable),  # an error envelope on a 200
        (401, "", AuthFailed),
        (404, "", TaskNotFound),
    ],
)
def test_code_list(status: int, code: str, kind: type):
    body = {"error": {"code": code, "message": "m", "param": "", "type": "X"}} if code else None
    assert type(classify(status, {}, body, "", on_task=True)) is kind


def test_bare_404_on_create_is_a_bad_model_not_a_lost_task():
    assert type(classify(404, {}, None, "", on_task=False)) is Rejected


def test_param_from_the_code_suffix():
    body = {"error": {"code": "InvalidParameter.ratio", "message": "bad", "param": ""}}
    error = classify(400, {}, body, "", on_task=False)
    assert isinstance(error, Rejected) and error.param == "ratio"


def test_moderation_is_any_sensitive_content_code():
    for code in (
        "InputTextSensitiveContentDetected",
        "InputImageSensitiveContentDetected.PolicyViolation",
        "InputAudioSensitiveContentDetected.PrivacyInformation",
        "OutputVideoSensitiveContentDetected",
    ):
        assert code_class(code) == "moderation_blocked"
    assert code_class("InvalidParameter") == "invalid_request"


def test_retry_after():
    assert retry_after("7") == 7.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    headers = {"Retry-After": "12"}
    error = classify(429, headers, fixture("errors.json")["rate_limit"]["body"], "", on_task=False)
    assert isinstance(error, RateLimited) and error.retry_after == 12.0


# --- through the relay ----------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "seedance", SeedanceProvider)


@pytest.fixture
async def fake() -> AsyncIterator[SeedanceFake]:
    server = SeedanceFake()
    await server.start()
    yield server
    await server.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    registered: None,
    fake: SeedanceFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Start:
    async def run(**channel: Any) -> Relay:
        config = make_config(channels=[fake.channel(fake.base_url, **channel)])
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, variant: str = "video") -> Any:
    return await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )


async def test_create_poll_complete_and_download(start: Start, fake: SeedanceFake):
    fake.polls_to_finish = 3
    relay = await start()
    video = await relay.create(model="sora-2", seconds="8", size="1280x720")
    assert video["status"] == "queued"
    assert (video["seconds"], video["size"]) == ("8", "1248x704")  # the 1.0 table

    [create] = fake.calls("/contents/generations/tasks", "POST")
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "model": "doubao-seedance-1-0-pro-250528",
        "content": [{"type": "text", "text": "a paper airplane over a lake"}],
        "ratio": "16:9",
        "resolution": "720p",
        "duration": 8,
        "return_last_frame": True,
    }

    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    task = next(iter(fake.tasks.values()))
    assert done["completed_at"] == task.updated_at
    assert done["expires_at"] == task.updated_at + 86400
    assert (done["seconds"], done["size"]) == ("8", "1248x704")
    polls = fake.calls(f"/contents/generations/tasks/{task.id}", "GET")
    assert len(polls) == 3
    assert all(p.headers["Authorization"] == f"Bearer {fake.api_key}" for p in polls)

    resp = await content(relay, video["id"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    # the signed URL went out untouched (the fake CDN checks its query) and without the key
    assert fake.cdn_stats.auth_headers == [None]

    thumb = await content(relay, video["id"], "thumbnail")
    assert thumb.status == 200
    assert thumb.headers["Content-Type"] == "image/png"
    assert await thumb.read() == LAST_FRAME
    sprites = await content(relay, video["id"], "spritesheet")
    assert sprites.status == 404
    assert (await sprites.json())["error"]["code"] == "variant_not_available"


async def test_request_fields_reach_the_fake(start: Start, fake: SeedanceFake):
    relay = await start(model=V2)
    image = "https://img.example.test/first.png"
    video = await relay.create(
        model=V2,
        size="720x1280",
        seconds="12",
        seed=42,
        generate_audio=False,
        negative_prompt="blurry",
        input_reference={
            "content": [
                {"type": "image_url", "image_url": {"url": image}, "role": "reference_image"},
                {"type": "video_url", "video_url": {"url": "https://v.example.test/ref.mp4"}},
            ]
        },
        metadata={"watermark": True, "content": [{"type": "text", "text": "ignored"}]},
    )
    assert (video["seconds"], video["size"]) == ("12", "720x1280")
    body = fake.creates()[0]
    assert body["content"] == [
        {"type": "text", "text": "a paper airplane over a lake"},
        {"type": "image_url", "image_url": {"url": image}, "role": "reference_image"},
        {
            "type": "video_url",
            "video_url": {"url": "https://v.example.test/ref.mp4"},
            "role": "reference_video",
        },
    ]
    assert body["seed"] == 42 and body["generate_audio"] is False and body["watermark"] is True
    assert body["ratio"] == "9:16" and body["resolution"] == "720p" and body["duration"] == 12
    assert "negative_prompt" not in body
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_uploaded_image_goes_as_a_data_url(start: Start, fake: SeedanceFake):
    relay = await start()
    form = {"prompt": "animate", "model": "sora-2"}
    import aiohttp

    data = aiohttp.FormData()
    for k, v in form.items():
        data.add_field(k, v)
    data.add_field("input_reference", png(), filename="f.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=data, headers=auth())
    assert resp.status == 200, await resp.text()
    item = fake.creates()[0]["content"][1]
    assert item["role"] == "first_frame"
    assert item["image_url"]["url"].startswith("data:image/png;base64,")


async def test_thumbnail_needs_the_last_frame(start: Start, fake: SeedanceFake):
    relay = await start(options={"last_frame_thumbnail": False})
    video = await relay.create()
    assert "return_last_frame" not in fake.creates()[0]
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await content(relay, video["id"], "thumbnail")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "variant_not_available"


@pytest.mark.parametrize(
    ("marker", "code", "native"),
    [
        ("#fail", "upstream_error", "InternalServiceError"),
        ("#moderation", "moderation_blocked", "OutputVideoSensitiveContentDetected"),
        ("#expired", "task_expired", "expired"),
        ("#cancelled", "cancelled", "cancelled"),
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


async def test_input_moderation_is_a_400(start: Start, fake: SeedanceFake):
    relay = await start()
    resp = await relay.client.post("/v1/videos", json={"prompt": "bad #reject"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "content_policy_violation"
    assert error["message"].startswith("InputTextSensitiveContentDetected")
    assert await relay.store.list_tasks(owner=None, after=None, limit=5, descending=True) == []


@pytest.mark.parametrize(
    ("case", "retry"),
    [
        ("rate_limit", "3"),
        ("internal", None),
        ("auth", None),
        ("gateway", None),
        ("overdue", None),
        ("set_limit", None),
        ("error_200", None),
    ],
)
async def test_submit_errors_leave_no_task(
    start: Start, fake: SeedanceFake, case: str, retry: str | None
):
    relay = await start()
    fake.fail_next("submit", case, retry_after=retry)
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=case == "rate_limit")
    assert "127.0.0.1" not in body["error"]["message"]
    assert await relay.store.list_tasks(owner=None, after=None, limit=5, descending=True) == []


async def test_submit_bad_request_is_a_400(start: Start, fake: SeedanceFake):
    relay = await start()
    fake.fail_next("submit", "bad_request")
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "duration")
    assert error["message"] == "InvalidParameter: duration out of range"


async def test_wrong_key_is_refused_by_the_fake(
    registered: None,
    fake: SeedanceFake,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
):
    channel = {**fake.channel(fake.base_url), "api_key": "ark-wrong"}
    relay: Relay = await start_relay(make_config(channels=[channel]))
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    assert fake.tasks == {}


@pytest.mark.parametrize("case", ["rate_limit", "internal", "gateway", "overloaded"])
async def test_poll_errors_leave_the_task_running(start: Start, fake: SeedanceFake, case: str):
    relay = await start()
    fake.fail_next("poll", case, retry_after="0")
    fake.fail_next("poll", case)
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed"
    assert fake.answers["poll"] == []  # both error answers were served


async def test_unknown_status_keeps_the_task_going(start: Start, fake: SeedanceFake):
    relay = await start()
    fake.status_override = "paused"
    video = await relay.create()
    import asyncio

    for _ in range(50):
        if len(fake.calls("/contents/generations/tasks/", "GET")) >= 3:
            break
        await asyncio.sleep(0.02)
    assert (await relay.get(video["id"]))["status"] == "queued"
    fake.status_override = None
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_vanished_task_fails_as_expired(start: Start, fake: SeedanceFake):
    fake.polls_to_finish = 100
    relay = await start()
    video = await relay.create()
    fake.tasks.clear()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "task_expired"
    assert "NotFound.TaskId" in done["error"]["message"]


async def test_reference_video_on_1_0_is_unsupported_before_any_call(
    start: Start, fake: SeedanceFake
):
    relay = await start()
    resp = await relay.client.post(
        "/v1/videos",
        json={
            "prompt": "x",
            "input_reference": {
                "content": [{"type": "video_url", "video_url": {"url": "https://v.test/a.mp4"}}]
            },
        },
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_remix_on_1_0_is_unsupported(start: Start, fake: SeedanceFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "in snow"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == 1


async def test_remix_on_2_0_references_the_source_video(start: Start, fake: SeedanceFake):
    relay = await start(model=V2)
    source = await relay.create(size="1280x720", seconds="5")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    source_task = next(iter(fake.tasks.values()))
    source_url = fake.render(source_task)["content"]["video_url"]
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "the same, at night"}, headers=auth()
    )
    assert resp.status == 200, await resp.text()
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    body = fake.creates()[1]
    assert body["model"] == V2
    assert body["content"] == [
        {"type": "text", "text": "the same, at night"},
        {"type": "video_url", "video_url": {"url": source_url}, "role": "reference_video"},
    ]
    assert (body["ratio"], body["resolution"], body["duration"]) == ("16:9", "720p", 5)
    done = await relay.wait(remix["id"])
    assert done["status"] == "completed"
    resp = await content(relay, remix["id"])
    assert await resp.read() == VIDEO


async def test_remix_of_an_expired_source_is_refused(start: Start, fake: SeedanceFake):
    relay = await start(model=V2)
    source = await relay.create()
    await relay.wait(source["id"])
    row = await relay.store.get_task(source["id"])
    assert row is not None
    state = {**row.upstream_state, "expires_at": 1.0}
    await update_task(relay.store, source["id"], {"upstream_state": state})
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert "expired" in (await resp.json())["error"]["message"]
    assert len(fake.creates()) == 1


async def test_delete_removes_the_upstream_record(start: Start, fake: SeedanceFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    upstream_id = next(iter(fake.tasks))
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    [call] = fake.calls(f"/contents/generations/tasks/{upstream_id}", "DELETE")
    assert call.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert upstream_id not in fake.tasks


async def test_delete_upstream_failure_is_best_effort(start: Start, fake: SeedanceFake):
    relay = await start()
    video = await relay.create()
    await relay.wait(video["id"])
    fake.fail_next("delete", "internal")
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    assert await relay.store.get_task(video["id"]) is None


async def test_endpoint_id_with_a_reported_model(start: Start, fake: SeedanceFake):
    fake.endpoints["ep-20250601-abcde"] = PRO_1_5
    relay = await start(model="ep-20250601-abcde")
    video = await relay.create(size="1280x720", generate_audio=True)
    assert video["size"] == "1280x720"  # ep- ids count as the newest generation
    assert fake.creates()[0]["generate_audio"] is True
    done = await relay.wait(video["id"])
    assert done["size"] == "1280x720"  # sized by the model the task reports (1.5 pro)


async def test_null_fields_and_expired_error_knobs(start: Start, fake: SeedanceFake):
    fake.null_fields = True
    fake.expired_error = True
    fake.polls_to_finish = 3
    relay = await start()
    ok = await relay.create()
    expired = await relay.create(prompt="slow #expired")
    assert (await relay.wait(ok["id"]))["status"] == "completed"
    done = await relay.wait(expired["id"])
    assert done["error"]["code"] == "task_expired"
    assert "TaskExpired" in done["error"]["message"]


async def test_official_sdk_flow(start: Start, fake: SeedanceFake):
    # 2.0's 720p sizes are OpenAI's; the strict SDK refuses 1.0's 704x1248 (see the report)
    relay = await start(model=V2)
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
        assert video.size == "720x1280"
        downloaded = await client.videos.download_content(video.id)
        assert downloaded.content == VIDEO
        thumb = await client.videos.download_content(video.id, variant="thumbnail")
        assert thumb.content == LAST_FRAME
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
    canary = "ark-canary-7d1e0c55-93b4-4f6a-8e2d-b1c9f0a3e6d7-zz9q"
    fake = SeedanceFake(api_key=canary, model=V2)
    await fake.start()
    try:
        relay: Relay = await start_relay(make_config(channels=[fake.channel(fake.base_url)]))
        seen: list[str] = []

        async def text(resp: Any) -> None:
            seen.append((await resp.read()).decode("latin-1"))  # media bytes too

        ok = await relay.create()
        seen.append(json.dumps(ok))
        seen.append(json.dumps(await relay.wait(ok["id"])))
        await text(await content(relay, ok["id"]))
        await text(await content(relay, ok["id"], "thumbnail"))
        fake.fail_next("poll", "auth")
        bad = await relay.create(prompt="#fail")
        seen.append(json.dumps(await relay.wait(bad["id"])))
        await text(
            await relay.client.post(
                f"/v1/videos/{ok['id']}/remix", json={"prompt": "y"}, headers=auth()
            )
        )
        fake.fail_next("delete", "auth")
        await text(await relay.client.delete(f"/v1/videos/{ok['id']}", headers=auth()))
        # a failed submit cools the only channel down: one fresh relay per error
        for case in ("auth", "rate_limit", "internal", "moderation", "bad_request", "gateway"):
            fresh: Relay = await start_relay(make_config(channels=[fake.channel(fake.base_url)]))
            fake.fail_next("submit", case)
            await text(await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth()))
        assert fake.answers == {"submit": [], "poll": [], "delete": []}  # all were served
        for body in seen:
            assert canary not in body
        assert canary not in logs.text
        for record in logs.records:
            assert canary not in record.getMessage()
    finally:
        await fake.close()


# --- the adapter alone against the fake (paths the relay does not drive yet) ------------------


@pytest.fixture
async def direct(fake: SeedanceFake) -> AsyncIterator[SeedanceProvider]:
    from relay.upstream import Http

    http = Http(allow_private_networks=True)
    config = fake.channel(fake.base_url, model=V2)
    channel = ChannelView(
        "s", SeedanceOptions(), base_url=config["base_url"], api_key=config["api_key"]
    )
    yield SeedanceProvider(channel, ChannelHttp(http, 10))
    await http.close()


def ref(submitted: Any, state: dict[str, Any] | None = None) -> Any:
    from relay.providers.base import TaskRef

    return TaskRef(
        id="video_x",
        upstream_id=submitted.upstream_id,
        upstream_model=V2,
        state=state or {},
        submitted_at=0.0,
        seconds=submitted.seconds,
        size=submitted.size,
        status="completed",
    )


async def finish(direct: SeedanceProvider, task: Any) -> Any:
    for _ in range(5):
        update = await direct.poll(task)
        if update.status == "completed":
            return update
    raise AssertionError("the fake never finished")


async def test_content_requeries_when_the_state_has_no_url(
    direct: SeedanceProvider, fake: SeedanceFake
):
    submitted = await direct.submit(job(V2), V2)
    update = await finish(direct, ref(submitted))
    source = await direct.content(ref(submitted), "video")
    assert source.url == update.state["video_url"]  # type: ignore[union-attr]
    assert source.headers == {}  # type: ignore[union-attr]
    frame = await direct.content(ref(submitted, dict(update.state)), "thumbnail")
    assert frame.content_type == "image/png"


async def test_refresh_content_only_offers_a_new_url(direct: SeedanceProvider, fake: SeedanceFake):
    submitted = await direct.submit(job(V2), V2)
    update = await finish(direct, ref(submitted))
    task = ref(submitted, dict(update.state))
    assert await direct.refresh_content(task, "video") is None  # the same URL again
    fake._sign(f"{submitted.upstream_id}.mp4")  # the object store signed it anew
    fresh = await direct.refresh_content(task, "video")
    assert fresh is not None and fresh.url != update.state["video_url"]  # type: ignore[union-attr]
    fake.tasks.clear()
    assert await direct.refresh_content(task, "video") is None


async def test_delete_follows_the_task_state(direct: SeedanceProvider, fake: SeedanceFake):
    fake.polls_to_finish = 5
    queued = await direct.submit(job(V2), V2)
    await direct.delete(ref(queued))
    assert fake.tasks[queued.upstream_id].status == "cancelled"  # a queued task is cancelled
    with pytest.raises(Rejected):
        await direct.delete(ref(queued))  # a cancelled one is refused
    running = await direct.submit(job(V2), V2)
    await direct.poll(ref(running))
    await direct.poll(ref(running))
    with pytest.raises(Rejected):
        await direct.delete(ref(running))
    fake.tasks.clear()
    await direct.delete(ref(running))  # already gone: nothing to do


async def test_a_create_answer_without_an_id_may_have_created(
    direct: SeedanceProvider, fake: SeedanceFake
):
    from tests.fakes.seedance import Answer

    fake.answers["submit"].append(Answer(200, b"{}"))
    with pytest.raises(Unavailable) as caught:
        await direct.submit(job(V2), V2)
    assert caught.value.maybe_created is True


async def test_the_fake_lists_tasks(direct: SeedanceProvider, fake: SeedanceFake):
    a = await direct.submit(job(V2), V2)
    await direct.submit(job(V2), V2)
    reply = await direct.http.request(
        "GET",
        direct.base_url + "/contents/generations/tasks",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        params={"page_num": "1", "page_size": "20", "filter.task_ids": a.upstream_id},
    )
    listed = reply.json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == a.upstream_id
