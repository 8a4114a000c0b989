"""OpenRouter: translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
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
from relay.providers.http import Reply
from relay.providers.openrouter import OpenRouterOptions, OpenRouterProvider
from relay.providers.openrouter.models import (
    Capabilities,
    accepts,
    capabilities,
    model_table,
    size_fields,
)
from relay.providers.openrouter.request import create_body
from relay.providers.openrouter.response import classify, job_update
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.openrouter import MODELS, PREFIX, OpenRouterFake
from tests.images import data_url, png

FIXTURES = Path(__file__).parent / "fixtures" / "openrouter"
NOW = 1_750_000_000.0
ERRORS: dict[str, Any] = json.loads((FIXTURES / "errors.json").read_text())


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def caps_of(model_id: str) -> Capabilities:
    found = capabilities(next(m for m in MODELS if m["id"] == model_id))
    assert found is not None
    return found


VEO = model_table(fixture("models"))["google/veo-3.1-lite"]  # the page's own row
SORA = caps_of("openai/sora-2-pro")
WAN = caps_of("alibaba/wan-2.6")
URL_IMAGE = Image(url="https://assets.example.com/first.png")
UPLOAD = Image(data=png(), mime="image/png")


def job(**fields: Any) -> VideoRequest:
    fields.setdefault("prompt", "A serene mountain landscape at sunset")
    fields.setdefault("seconds", 8)
    size = Size.parse(fields.pop("size", "1280x720"))
    return VideoRequest(model="sora-2", size=size, **fields)


# --- requests -------------------------------------------------------------------------------


def test_request_matches_the_page_example():
    request = job(seed=42, generate_audio=True, images=(URL_IMAGE,))
    made = create_body(request, "google/veo-3.1", VEO)
    assert made.body == fixture("request")
    assert (made.seconds, made.size) == ("8", "1280x720")


@pytest.mark.parametrize(
    ("caps", "asked", "sent"),
    [(VEO, 5, 6), (VEO, 7, 8), (VEO, 12, 8), (VEO, 1, 4), (WAN, 7, 5), (WAN, 8, 10), (None, 7, 7)],
)
def test_duration_is_an_integer_snapped_to_the_model(
    caps: Capabilities | None, asked: int, sent: int
):
    made = create_body(job(seconds=asked), "m", caps)
    assert made.body["duration"] == sent and made.seconds == str(sent)
    assert "seconds" not in made.body


@pytest.mark.parametrize(
    ("caps", "size", "fields", "reported"),
    [
        (SORA, "1792x1024", {"size": "1792x1024"}, "1792x1024"),
        (SORA, "1000x1000", {"aspect_ratio": "16:9", "resolution": "1080p"}, "1920x1080"),
        (VEO, "1280x720", {"aspect_ratio": "16:9", "resolution": "720p"}, "1280x720"),
        (VEO, "640x480", {"aspect_ratio": "16:9", "resolution": "720p"}, "1280x720"),
        (VEO, "1080x1920", {"aspect_ratio": "9:16", "resolution": "1080p"}, "1080x1920"),
        (VEO, "9:16", {"aspect_ratio": "9:16"}, "720x1280"),
        (WAN, "720x720", {"aspect_ratio": "1:1", "resolution": "720p"}, "720x720"),
        (None, "3840x2160", {"aspect_ratio": "16:9", "resolution": "4K"}, "3840x2160"),
        (None, "854x480", {"aspect_ratio": "16:9", "resolution": "480p"}, "854x480"),
        (None, "2520x1080", {"aspect_ratio": "21:9", "resolution": "1080p"}, "2520x1080"),
    ],
)
def test_size_becomes_an_exact_size_or_a_ratio_and_a_tier(
    caps: Capabilities | None, size: str, fields: dict[str, str], reported: str
):
    parsed = Size.parse(size)
    assert parsed is not None
    mapped = size_fields(parsed, caps)
    assert dict(mapped.fields) == fields and mapped.reported == reported
    body = create_body(job(size=size), "m", caps).body
    assert not ("size" in body and ("resolution" in body or "aspect_ratio" in body))


def test_a_model_that_names_only_exact_sizes_snaps_to_the_nearest():
    only_sizes = Capabilities("x", (5,), sizes=("1280x720", "720x1280", "1920x1080"))
    mapped = size_fields(Size(1900, 1000), only_sizes)
    assert dict(mapped.fields) == {"size": "1920x1080"}


def test_first_frame_where_the_model_takes_it_else_a_reference():
    veo = create_body(job(images=(URL_IMAGE,)), "google/veo-3.1-lite", VEO).body
    assert veo["frame_images"][0]["frame_type"] == "first_frame"
    assert "input_references" not in veo
    wan = create_body(job(images=(URL_IMAGE,)), "alibaba/wan-2.6", WAN).body
    assert wan["input_references"] == [{"type": "image_url", "image_url": {"url": URL_IMAGE.url}}]
    assert "frame_images" not in wan


def test_first_and_last_frames_and_uploads_as_data_urls():
    last = Image(role="last_frame", data=png(), mime="image/png")
    body = create_body(job(images=(URL_IMAGE, last)), "m", VEO).body
    assert [i["frame_type"] for i in body["frame_images"]] == ["first_frame", "last_frame"]
    assert body["frame_images"][1]["image_url"]["url"] == data_url(png())
    with pytest.raises(Unsupported):
        create_body(job(images=(URL_IMAGE, last)), "openai/sora-2-pro", SORA)


def test_references_images_videos_and_audio():
    request = job(
        images=(Image(role="reference_image", url="https://img.example.test/r.png"),),
        media=(
            Media("video", "https://v.example.test/a.mp4"),
            Media("audio", "https://v.example.test/a.mp3"),
        ),
    )
    body = create_body(request, "bytedance/seedance-2.0", caps_of("bytedance/seedance-2.0")).body
    assert [i["type"] for i in body["input_references"]] == ["image_url", "video_url", "audio_url"]
    assert body["input_references"][1] == {
        "type": "video_url",
        "video_url": {"url": "https://v.example.test/a.mp4"},
    }
    # frame_images would win upstream and the references be ignored: refused instead
    with pytest.raises(Rejected):
        create_body(job(images=(URL_IMAGE,), media=request.media), "m", VEO)


def test_audio_and_seed_only_where_the_model_has_them():
    hints = {"generate_audio": False, "seed": 7}
    assert {"generate_audio", "seed"} <= set(create_body(job(**hints), "m", VEO).body)
    for caps in (SORA, WAN):
        assert not {"generate_audio", "seed"} & set(create_body(job(**hints), "m", caps).body)
    # an unknown model gets what was asked: the client hears the upstream's 400 if it is wrong
    assert {"generate_audio", "seed"} <= set(create_body(job(**hints), "m", None).body)


def test_negative_prompt_through_the_operators_provider_slug():
    request = job(negative_prompt="blurry")
    assert "provider" not in create_body(request, "m", VEO).body
    body = create_body(request, "m", VEO, provider_slug="google-vertex").body
    assert body["provider"] == {
        "options": {"google-vertex": {"parameters": {"negativePrompt": "blurry"}}}
    }
    assert "provider" not in create_body(request, "m", WAN, provider_slug="google-vertex").body


def test_metadata_deep_merges_without_controlled_keys():
    metadata = {
        "model": "other/model",
        "callback_url": "https://hook.example.test/x",
        "seconds": 4,
        "provider": {"options": {"google-vertex": {"parameters": {"personGeneration": "allow"}}}},
        "input_references": [{"type": "image_url", "image_url": {"url": "https://i.test/a.png"}}],
    }
    body = create_body(job(metadata=metadata), "google/veo-3.1-lite", VEO).body
    assert body["model"] == "google/veo-3.1-lite"
    assert "callback_url" not in body and "seconds" not in body
    assert body["provider"]["options"]["google-vertex"]["parameters"] == {
        "personGeneration": "allow"
    }
    assert body["input_references"] == metadata["input_references"]
    exact = create_body(job(metadata={"size": "1792x1024"}), "m", SORA)
    assert "resolution" not in exact.body and "aspect_ratio" not in exact.body
    assert exact.size == "1792x1024"
    tiered = {"resolution": "1080p", "aspect_ratio": "16:9"}
    tier = create_body(job(size="1792x1024", metadata=tiered), "m", SORA)
    assert "size" not in tier.body and tier.size == "1920x1080"


# --- the models list -------------------------------------------------------------------------


def test_models_list_rows_and_nulls():
    assert VEO.durations == (4, 6, 8)
    assert VEO.resolutions == ("720p", "1080p") and VEO.sizes is None
    assert VEO.generate_audio and VEO.seed and "negativePrompt" in VEO.passthrough
    table = model_table({"data": MODELS})
    assert "topaz/video-upscale" not in table  # no durations: an upscaler, ignored
    assert WAN.frame_images == () and not WAN.generate_audio and not WAN.seed
    assert model_table({"data": None}) == {} and model_table([]) == {}


def test_accepts_comes_from_the_list():
    durations, sizes = accepts(VEO)
    assert durations == (4, 6, 8)
    assert set(sizes) == {"1280x720", "720x1280", "1920x1080", "1080x1920"}
    assert accepts(SORA)[1][:2] == ("1280x720", "720x1280") and "1792x1024" in accepts(SORA)[1]
    assert accepts(None) == ((4, 8, 12), ("720x1280", "1280x720"))


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "progress"),
    [
        ("create", "queued", 0),
        ("create_reference", "queued", 0),
        ("poll_pending", "queued", 0),
        ("poll_in_progress", "in_progress", None),
        ("poll_completed", "completed", 100),
        ("poll_completed_storage", "completed", 100),
    ],
)
def test_every_running_state_of_the_page(name: str, status: str, progress: int | None):
    update = job_update(fixture(name))
    assert (update.status, update.progress) == (status, progress)


def test_completed_keeps_its_urls_as_received():
    update = job_update(fixture("poll_completed"))
    assert update.state["unsigned_urls"] == fixture("poll_completed")["unsigned_urls"]
    assert update.state["generation_id"] == "gen-1766412345-AbCdEfGh"
    webhook = job_update(fixture("webhook_completed")["data"])  # the same job shape
    assert webhook.status == "completed"


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("poll_failed", "moderation_blocked", "failed: Content policy violation"),
        ("poll_cancelled", "cancelled", "cancelled: Job was cancelled"),
        ("poll_expired", "task_expired", "expired: Job exceeded maximum time to live"),
    ],
)
def test_terminal_failures(name: str, code: str, message: str):
    update = job_update(fixture(name))
    assert update.status == "failed" and update.error is not None
    assert (update.error.code, update.error.message) == (code, message)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("Output flagged by the provider", "moderation_blocked"),
        ("SAFETY filter tripped", "moderation_blocked"),
        ("Sensitive content detected", "moderation_blocked"),
        ("Prompt violates the usage policy", "moderation_blocked"),
        ("Provider returned error: generation failed", "generation_failed"),
        (None, "generation_failed"),
    ],
)
def test_failure_words(error: Any, code: str):
    update = job_update({"id": "j", "status": "failed", "error": error})
    assert update.error is not None and update.error.code == code
    assert update.error.message.startswith("failed: ")


@pytest.mark.parametrize("word", ["queued_for_review", None, 3])
def test_an_unknown_status_keeps_the_previous_one(word: Any):
    update = job_update({"id": "j", "status": word})
    assert update.status is None and update.unknown_status == str(word)


def test_completed_without_a_url_is_left_for_a_content_check():
    assert job_update({"id": "j", "status": "completed", "unsigned_urls": []}).status is None


@pytest.mark.parametrize(
    ("name", "phase", "error_type", "extra"),
    [
        ("bad_request", "create", Rejected, {"code": "invalid_request"}),
        ("missing_key", "create", AuthFailed, {}),
        ("missing_key", "poll", AuthFailed, {}),
        ("credits", "create", QuotaExceeded, {}),
        ("moderation", "create", Rejected, {"code": "moderation_blocked"}),
        ("key_not_allowed", "create", AuthFailed, {}),
        ("guardrail", "create", Rejected, {"code": "invalid_request"}),
        ("not_found", "create", Rejected, {"param": "model"}),
        ("not_found", "poll", TaskNotFound, {}),
        ("not_found", "content", TaskNotFound, {}),
        ("timeout", "create", Unavailable, {"maybe_created": True}),
        ("timeout", "poll", Unavailable, {"maybe_created": False}),
        ("rate_limit", "create", RateLimited, {"retry_after": 12}),
        ("rate_limit", "poll", RateLimited, {"retry_after": 12}),
        ("internal", "create", Unavailable, {"maybe_created": True}),
        ("provider", "poll", Unavailable, {}),
        ("provider", "content", Unavailable, {}),
        ("no_provider", "create", RateLimited, {"retry_after": 30}),
        ("no_provider", "poll", Unavailable, {"maybe_created": False}),
    ],
)
def test_every_error_of_the_page(name: str, phase: Any, error_type: type, extra: dict[str, Any]):
    case = ERRORS[name]
    error = classify(case["status"], case["body"], case.get("headers", {}), phase, "detail")
    assert type(error) is error_type
    for key, value in extra.items():
        assert getattr(error, key) == value, key
    assert "openrouter.ai" not in error.message and "user_2abc" not in error.message


def test_a_non_json_error_page_still_classifies():
    error = classify(502, None, {}, "poll", "HTTP 502: <html>bad gateway</html>")
    assert isinstance(error, Unavailable) and "HTTP 502" in error.message


# --- the adapter, over a stubbed wire ----------------------------------------------------------


class StubHttp:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()
    )


def stubbed(*replies: Reply, **options: Any) -> tuple[OpenRouterProvider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView(
        "or", OpenRouterOptions(**options), base_url="https://openrouter.ai/api/v1", api_key="k"
    )
    return OpenRouterProvider(channel, http), http  # type: ignore[arg-type]


def ref(state: dict[str, Any] | None = None, upstream_id: str = "2hAwXrT31ZpCI8MsjBEe") -> TaskRef:
    return TaskRef(
        "video_x", upstream_id, "google/veo-3.1-lite", state or {}, NOW, "8", "1280x720", "queued"
    )


async def test_submit_takes_a_202_and_polls_by_id():
    adapter, http = stubbed(
        answer(fixture("models")),
        answer(fixture("create_reference"), 202),
        answer(fixture("poll_in_progress")),
    )
    submitted = await adapter.submit(job(seconds=5), "google/veo-3.1-lite")
    assert (submitted.upstream_id, submitted.seconds, submitted.status) == (
        "job-abc123",
        "6",
        "queued",
    )
    assert submitted.state == {"generation_id": "gen-xyz789"}
    assert (await adapter.poll(ref(upstream_id="job-abc123"))).status == "in_progress"
    (m0, u0, _), (m1, u1, k1), (m2, u2, k2) = http.sent
    assert (m0, u0) == ("GET", "https://openrouter.ai/api/v1/videos/models")
    assert (m1, u1) == ("POST", "https://openrouter.ai/api/v1/videos")
    # built from the id: the relative polling_url would have doubled /api/v1
    assert (m2, u2) == ("GET", "https://openrouter.ai/api/v1/videos/job-abc123")
    assert k1["headers"]["Authorization"] == k2["headers"]["Authorization"] == "Bearer k"
    assert k1["json"]["duration"] == 6 and "seconds" not in k1["json"]


async def test_the_models_list_is_cached_and_its_failure_tolerated():
    adapter, http = stubbed(
        answer({"error": {"code": 500, "message": "Internal Server Error"}}, 500),
        answer(fixture("create"), 202),
        answer(fixture("models")),
        answer(fixture("create"), 202),
        answer(fixture("create"), 202),
    )
    first = await adapter.submit(job(seconds=5), "google/veo-3.1-lite")
    assert first.seconds == "5"  # no list: unsnapped
    await adapter.submit(job(seconds=5), "google/veo-3.1-lite")
    again = await adapter.submit(job(seconds=5), "google/veo-3.1-lite")
    assert again.seconds == "6"
    assert [u for _, u, _ in http.sent].count("https://openrouter.ai/api/v1/videos/models") == 2
    assert adapter.accepts("google/veo-3.1-lite")[0] == (4, 6, 8)


async def test_a_create_without_an_id_may_have_made_a_job():
    adapter, _ = stubbed(answer(fixture("models")), answer({"status": "pending"}, 202))
    with pytest.raises(Unavailable) as caught:
        await adapter.submit(job(), "google/veo-3.1-lite")
    assert caught.value.maybe_created


async def test_inline_images_off_without_hosting_refuses_bytes_before_any_call():
    adapter, http = stubbed(inline_images=False)
    with pytest.raises(Unsupported) as caught:  # no submit scope: nothing can host the bytes
        await adapter.submit(job(images=(UPLOAD,)), "google/veo-3.1-lite")
    assert "input_reference" in str(caught.value) and http.sent == []


async def test_content_is_the_content_route_with_the_key():
    adapter, _ = stubbed()
    source = await adapter.content(ref(job_update(fixture("poll_completed")).state), "video")
    assert isinstance(source, Remote) and source.trusted
    assert source.url == fixture("poll_completed")["unsigned_urls"][0]
    assert source.headers == {"Authorization": "Bearer k"}


async def test_refresh_offers_a_storage_url_without_the_key():
    storage = fixture("poll_completed_storage")
    adapter, _ = stubbed(answer(storage))
    fresh = await adapter.refresh_content(ref(upstream_id="job-abc123"), "video")
    assert isinstance(fresh, Remote)
    assert fresh.url == "https://storage.example.com/video.mp4"
    assert fresh.headers == {} and not fresh.trusted
    same_origin = {
        **storage,
        "unsigned_urls": ["https://openrouter.ai/api/v1/videos/job-abc123/content?index=1"],
    }
    adapter, _ = stubbed(answer(same_origin))
    fresh = await adapter.refresh_content(ref(upstream_id="job-abc123"), "video")
    assert isinstance(fresh, Remote) and fresh.headers == {"Authorization": "Bearer k"}
    presigned = {
        **storage,
        "unsigned_urls": [],
        "urls": ["https://bucket.example.test/v.mp4?sig=a~b"],
    }
    state = job_update({**presigned, "unsigned_urls": ["https://x.example.test/v.mp4"]}).state
    adapter, _ = stubbed(answer({**fixture("poll_completed"), "urls": presigned["urls"]}))
    # `urls` only when unsigned_urls is empty; the API's own /content URL is no alternative
    assert await adapter.refresh_content(ref(), "video") is None
    assert state["unsigned_urls"] == ["https://x.example.test/v.mp4"]
    adapter, _ = stubbed(answer(ERRORS["not_found"]["body"], 404))
    assert await adapter.refresh_content(ref(), "video") is None


def test_options_are_validated(monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]):
    channel = {"name": "o", "provider": "openrouter", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {
        "models_cache_ttl": 300.0,
        "inline_images": True,
        "provider_slug": "",
    }
    for bad in ({"models_cache_ttl": -1}, {"inline_images": "no"}):
        with pytest.raises(ConfigError):
            make_config(channels=[{**channel, "options": bad}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[OpenRouterFake]:
    upstream = OpenRouterFake()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
def or_config(make_config: Callable[..., Config]) -> Callable[[OpenRouterFake], Config]:
    def make(upstream: OpenRouterFake) -> Config:
        # no stored copies: content must come from the fake
        return make_config(
            storage={"keep_videos": False}, channels=[upstream.channel(upstream.base_url)]
        )

    return make


@pytest.fixture
async def relay(
    fake: OpenRouterFake,
    or_config: Callable[[OpenRouterFake], Config],
    start_relay: Callable[[Config], Any],
) -> Relay:
    return await start_relay(or_config(fake))  # type: ignore[no-any-return]


async def videos(relay: Relay) -> list[dict[str, Any]]:
    resp = await relay.client.get("/v1/videos", headers=auth())
    return (await resp.json())["data"]  # type: ignore[no-any-return]


def content(relay: Relay, video_id: str, **headers: str) -> Any:
    return relay.client.get(f"/v1/videos/{video_id}/content", headers={**auth(), **headers})


async def test_create_poll_content_with_range(relay: Relay, fake: OpenRouterFake):
    video = await relay.create(seconds="12", size="1280x720")
    assert (video["seconds"], video["size"]) == ("12", "1280x720")
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["expires_at"] == pytest.approx(done["completed_at"] + 3600, abs=5)
    [create] = fake.creates()
    assert create.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert create.json() == {
        "model": "bytedance/seedance-2.0",
        "prompt": "a paper airplane over a lake",
        "duration": 12,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    polls = fake.calls(f"{PREFIX}/videos/", "GET")
    assert polls and all(p.headers["Authorization"] == f"Bearer {fake.api_key}" for p in polls)

    resp = await content(relay, video["id"])
    assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO
    part = await content(relay, video["id"], Range="bytes=100-199")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await part.read() == VIDEO[100:200]
    assert set(fake.content_auth) == {f"Bearer {fake.api_key}"}


async def test_relative_polling_url_and_an_early_generation_id(relay: Relay, fake: OpenRouterFake):
    fake.relative_polling_url = True
    fake.generation_id_on_create = True
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert not [r for r in fake.requests if r.path.count("/api/v1") > 1]


async def test_a_storage_url_gets_no_key(relay: Relay, fake: OpenRouterFake):
    fake.storage_urls = True
    video = await relay.create()
    await relay.wait(video["id"])
    fake.content_gone = True  # /content failing: the relay falls back to the job's own URL
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert fake.cdn_stats.auth_headers == [None]


async def test_presigned_urls_when_unsigned_urls_is_empty(relay: Relay, fake: OpenRouterFake):
    fake.no_urls = fake.presigned_urls = True
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"  # /content answered
    fake.content_gone = True
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert fake.cdn_stats.auth_headers[-1] is None


async def test_completed_without_any_file_fails(relay: Relay, fake: OpenRouterFake):
    fake.no_urls = fake.content_gone = True
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "generation_failed")


@pytest.mark.parametrize(
    ("prompt", "terminal", "code", "message"),
    [
        ("a storm #fail", None, "generation_failed", "failed: Provider returned error"),
        ("a storm #moderation", None, "moderation_blocked", "failed: Content policy violation"),
        ("a storm", "cancelled", "cancelled", "cancelled: Job was cancelled"),
        ("a storm", "expired", "task_expired", "expired: Job exceeded maximum time to live"),
    ],
)
async def test_failed_jobs(
    relay: Relay, fake: OpenRouterFake, prompt: str, terminal: str | None, code: str, message: str
):
    fake.terminal = terminal
    video = await relay.create(prompt=prompt)
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", code)
    assert done["error"]["message"].startswith(message)
    assert (await content(relay, video["id"])).status == 404


async def test_a_job_gone_upstream_is_expired(relay: Relay, fake: OpenRouterFake):
    fake.polls_to_finish = 50
    video = await relay.create()
    fake.jobs.clear()
    done = await relay.wait(video["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "task_expired")


async def test_a_moderation_block_at_submit_is_a_content_policy_400(
    relay: Relay, fake: OpenRouterFake
):
    resp = await relay.client.post("/v1/videos", json={"prompt": "#reject this"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "content_policy_violation"
    assert await videos(relay) == []


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Invalid request parameters"), (403, "Request blocked by guardrail")],
)
async def test_bad_requests_are_a_400(
    relay: Relay, fake: OpenRouterFake, status: int, message: str
):
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"] == message


async def test_without_the_list_values_go_unsnapped_and_a_400_says_so(
    relay: Relay, fake: OpenRouterFake
):
    fake.models_down = True
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "a cat", "seconds": "16"}, headers=auth()
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert "duration 16" in body["error"]["message"]
    fake.models_down = False
    ok = await relay.client.post(
        "/v1/videos", json={"prompt": "a cat", "seconds": "16"}, headers=auth()
    )
    assert ok.status == 200 and (await ok.json())["seconds"] == "15"


async def test_an_unknown_model_is_a_400(
    fake: OpenRouterFake, make_config: Callable[..., Config], start_relay: Callable[[Config], Any]
):
    channel = {**fake.channel(fake.base_url), "model_map": {"sora-2": "acme/no-such-model"}}
    relay: Relay = await start_relay(
        make_config(storage={"keep_videos": False}, channels=[channel])
    )
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == "Resource not found"


@pytest.mark.parametrize(
    ("status", "message", "retry_after"),
    [
        (429, "Rate limit exceeded", "7"),
        (503, "No available provider meets your routing requirements", None),
        (401, "User not found.", None),
        (402, "Insufficient credits. Add more using https://openrouter.ai/credits", None),
        (403, "This API key is not allowed", None),
    ],
)
async def test_submit_errors_leave_no_task(
    relay: Relay, fake: OpenRouterFake, status: int, message: str, retry_after: str | None
):
    fake.fail_next("submit", status, message, retry_after=retry_after)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await refused_upstream(resp, rate_limited=status in (429, 503))
    assert "openrouter.ai" not in json.dumps(body)
    assert await videos(relay) == [] and len(fake.creates()) == 1


@pytest.mark.parametrize(
    ("status", "message"), [(500, "Internal Server Error"), (408, "Request timed out")]
)
async def test_a_5xx_on_create_is_never_resubmitted(
    relay: Relay, fake: OpenRouterFake, status: int, message: str
):
    fake.fail_next("submit", status, message)
    resp = await relay.client.post("/v1/videos", json={"prompt": "a cat"}, headers=auth())
    body = await resp.json()
    # the job may exist upstream, billed: the task fails rather than running twice
    assert resp.status == 200 and body["status"] == "failed", body
    assert body["error"]["code"] == "upstream_error"
    assert len(fake.creates()) == 1


@pytest.mark.parametrize(
    ("status", "message", "retry_after"),
    [
        (429, "Rate limit exceeded", "1"),
        (500, "Internal Server Error", None),
        (502, "Provider returned error", None),
        (503, "Service Unavailable", None),
        (408, "Request timed out", None),
    ],
)
async def test_poll_errors_leave_the_job_running(
    relay: Relay, fake: OpenRouterFake, status: int, message: str, retry_after: str | None
):
    fake.polls_to_finish = 3
    fake.fail_next("poll", status, message, retry_after=retry_after)
    fake.fail_next("poll", status, message)
    video = await relay.create()
    done = await relay.wait(video["id"], timeout=20)
    assert done["status"] == "completed"


async def test_a_provider_fetch_failure_on_content_is_a_502(relay: Relay, fake: OpenRouterFake):
    video = await relay.create()
    await relay.wait(video["id"])
    fake.content_fetch_fails = True
    resp = await content(relay, video["id"])
    assert resp.status == 502
    fake.content_fetch_fails = False
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO


async def test_images_by_url_and_upload(relay: Relay, fake: OpenRouterFake):
    framed = await relay.create(
        model="google/veo-3.1-lite",
        seconds="8",
        input_reference={"image_url": "https://img.example.test/a.png"},
    )
    assert (await relay.wait(framed["id"]))["status"] == "completed"
    assert fake.creates()[-1].json()["frame_images"] == [
        {
            "type": "image_url",
            "image_url": {"url": "https://img.example.test/a.png"},
            "frame_type": "first_frame",
        }
    ]
    wan = await relay.create(
        model="alibaba/wan-2.6", seconds="5", input_reference={"image_url": data_url(png())}
    )
    assert (await relay.wait(wan["id"]))["status"] == "completed"
    assert fake.creates()[-1].json()["input_references"][0]["image_url"]["url"] == data_url(png())


async def test_remix_is_unsupported_before_any_call(relay: Relay, fake: OpenRouterFake):
    video = await relay.create()
    await relay.wait(video["id"])
    before = len(fake.requests)
    resp = await relay.client.post(
        f"/v1/videos/{video['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.requests) == before


async def test_official_sdk_flow(relay: Relay, fake: OpenRouterFake):
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    try:
        video = await client.videos.create_and_poll(prompt="a lighthouse at dusk", seconds="8")
        assert video.status == "completed" and video.seconds == "8" and video.size == "720x1280"
        assert (await client.videos.download_content(video.id)).content == VIDEO
        framed = await client.videos.create_and_poll(
            prompt="animate this",
            model="google/veo-3.1-lite",
            seconds="8",
            input_reference=("frame.png", png(), "image/png"),
        )
        assert framed.status == "completed"
        sent = fake.creates()[-1].json()["frame_images"][0]["image_url"]["url"]
        assert sent == data_url(png())
    finally:
        await client.close()


# --- failover and cooldown, by the policy table ------------------------------------------------


@pytest.fixture
async def two(
    fake: OpenRouterFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    first = {**fake.channel(fake.base_url), "name": "first", "priority": 10}
    second = {
        "name": "second",
        "provider": "demo",
        "models": ["sora-2"],
        "options": {"finish_after_s": 0.2},
    }
    config = make_config(storage={"keep_videos": False}, channels=[first, second])
    return await start_relay(config)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("status", "message", "retry_after", "state"),
    [
        (429, "Rate limit exceeded", "30", "rate_limited"),
        (503, "No available provider meets your routing requirements", "30", "rate_limited"),
        (401, "User not found.", None, "credentials"),
        (402, "Insufficient credits", None, "quota"),
    ],
)
async def test_failover_and_the_channel_state(
    two: Relay,
    fake: OpenRouterFake,
    status: int,
    message: str,
    retry_after: str | None,
    state: str,
):
    fake.fail_next("submit", status, message, retry_after=retry_after)
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == state
    if retry_after:
        assert first.health.until >= two.clock() + 29
    again = await two.create()  # the first channel is out or paused: not tried
    assert len(fake.creates()) == 1
    row = await two.store.get_task(again["id"])
    assert row is not None and row.channel == "second"


async def test_a_bad_request_is_not_failed_over(two: Relay, fake: OpenRouterFake):
    fake.fail_next("submit", 400, "Invalid request parameters")
    resp = await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0 and first.health.state == "ready"


async def test_three_outages_cool_the_channel(two: Relay, fake: OpenRouterFake):
    for _ in range(3):
        fake.fail_next("submit", 500, "Internal Server Error")
        resp = await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        assert resp.status == 200  # failed, never resubmitted elsewhere: it may exist
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == "cooling"
    video = await two.create()
    row = await two.store.get_task(video["id"])
    assert row is not None and row.channel == "second"


# --- the key ---------------------------------------------------------------------------------


async def test_the_key_never_leaks(
    or_config: Callable[[OpenRouterFake], Config],
    start_relay: Callable[[Config], Any],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    # not shaped like an sk- key: the adapter's own masking is what keeps it out
    canary = "or-canary-" + secrets.token_hex(16)
    upstream = OpenRouterFake(api_key=canary)
    await upstream.start()
    try:
        relay: Relay = await start_relay(or_config(upstream))
        seen: list[str] = []
        ok = await relay.create()
        seen.append(json.dumps(await relay.wait(ok["id"])))
        seen.append((await (await content(relay, ok["id"])).read()).decode("latin-1"))
        failed = await relay.create(prompt="x #fail")
        seen.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("poll", 500, f"echo {canary}")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        for status, text in ((400, "bad value"), (403, "guardrail blocked"), (500, "boom")):
            upstream.fail_next("submit", status, f"{text} {canary}")
            resp = await relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        upstream.storage_urls = True
        stored = await relay.create()
        await relay.wait(stored["id"])
        upstream.content_gone = True
        seen.append((await (await content(relay, stored["id"])).read()).decode("latin-1"))
        page = await relay.client.get("/v1/videos", headers=auth())
        seen.append(await page.text())
        # refused credentials and an exhausted account take the channel out: last
        upstream.fail_next("submit", 401, f"key {canary} refused")
        resp = await relay.client.post("/v1/videos", json={"prompt": "a"}, headers=auth())
        seen.append(await resp.text())
        assert len(seen) == 11
        assert all(canary not in text for text in seen)
        assert all(
            "127.0.0.1:" + str(upstream.server.port) not in t for t in seen if upstream.server
        )
        assert canary not in caplog.text
        assert upstream.cdn_stats.auth_headers[-1] is None  # the storage host got no key
    finally:
        await upstream.close()
