"""Gemini Omni Flash (spec/providers/gemini-omni.md): translation on the page's recorded
examples, then the relay against the fake: create, poll, content with Range, inline results,
failures, failover, the SDK and the key."""

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

from relay.config import Config
from relay.domain import InlineBytes, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.providers import gemini_omni as omni_module
from relay.providers.base import ChannelView
from relay.providers.errors import (
    AuthFailed,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    VariantUnavailable,
)
from relay.providers.gemini_omni import GeminiOmniOptions, GeminiOmniProvider
from relay.providers.gemini_omni.models import accepts
from relay.providers.gemini_omni.request import build
from relay.providers.gemini_omni.response import (
    classify,
    failure,
    file_id,
    find_video,
    interaction_id,
    update,
)
from relay.providers.http import Reply
from tests.conftest import ALICE, Relay, auth
from tests.fakes.base import VIDEO
from tests.fakes.gemini_omni import GeminiOmniFake
from tests.images import png

FIXTURES = Path(__file__).parent / "fixtures" / "gemini_omni"
NOW = 1_790_000_000.0
API = "https://generativelanguage.googleapis.com"
MODEL = "gemini-omni-1.1-flash"
PREVIEW = "gemini-omni-flash-preview"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def request(**fields: Any) -> VideoRequest:
    fields.setdefault("prompt", "a red balloon over a calm lake")
    fields.setdefault("seconds", 6)
    size = Size.parse(fields.pop("size", "1280x720"))
    assert size is not None
    return VideoRequest(model=MODEL, size=size, **fields)


# --- requests -------------------------------------------------------------------------------


def test_image_request_is_the_page_example():
    example = fixture("request")
    native = build(
        request(prompt="the kitten slowly turns its head toward the window"),
        MODEL,
        (png(), "image/png"),
    )
    image, text = native.body["input"]
    assert image["mime_type"] == "image/png" and not image["data"].startswith("data:")
    example["input"][0]["data"] = image["data"]
    assert native.body == example
    assert (native.seconds, native.size) == (6, "1280x720")
    assert text["text"].startswith("<FIRST_FRAME> ")


def test_text_request_asks_for_text_to_video_in_the_background_by_uri():
    native = build(request(size="720x1280", seconds=8), MODEL)
    assert native.body == {
        "model": MODEL,
        "input": [{"type": "text", "text": "a red balloon over a calm lake"}],
        "background": True,
        "response_format": {"type": "video", "delivery": "uri", "aspect_ratio": "9:16",
                            "resolution": "720p", "duration": "8s"},
        "generation_config": {"video_config": {"task": "text_to_video"}},
    }  # fmt: skip
    assert "store" not in native.body and "response_modalities" not in native.body


def test_a_tagged_prompt_is_sent_as_it_is():
    native = build(request(prompt="<FIRST_FRAME> waves"), MODEL, (png(), "image/png"))
    assert native.body["input"][-1] == {"type": "text", "text": "<FIRST_FRAME> waves"}


@pytest.mark.parametrize(("seconds", "sent"), [(1, "3s"), (3, "3s"), (4, "4s"), (8, "8s"),
                                               (10, "10s"), (12, "10s"), (20, "10s")])  # fmt: skip
def test_duration_is_a_string_clamped_to_3_to_10(seconds: int, sent: str):
    native = build(request(seconds=seconds), MODEL)
    assert native.body["response_format"]["duration"] == sent
    assert native.seconds == int(sent[:-1])


@pytest.mark.parametrize(
    ("size", "ratio", "resolution", "reported"),
    [
        ("640x360", "16:9", "360p", "640x360"),
        ("480x854", "9:16", "360p", "360x640"),
        ("1280x720", "16:9", "720p", "1280x720"),
        ("1024x1024", "16:9", "1080p", "1920x1080"),  # a square snaps to 16:9
        ("1080x1920", "9:16", "1080p", "1080x1920"),
        ("3840x2160", "16:9", "4k", "3840x2160"),
        ("16:9", "16:9", None, "1280x720"),  # a bare ratio: the API's default 720p
        ("9:16", "9:16", None, "720x1280"),
    ],
)
def test_size_becomes_a_ratio_and_a_tier(
    size: str, ratio: str, resolution: str | None, reported: str
):
    fmt = build(request(size=size), MODEL).body["response_format"]
    assert fmt["aspect_ratio"] == ratio and fmt.get("resolution") == resolution
    assert build(request(size=size), MODEL).size == reported


def test_the_resolution_option_fills_a_bare_ratio_and_the_preview_never_gets_one():
    native = build(request(size="9:16"), MODEL, resolution="1080p")
    assert native.body["response_format"]["resolution"] == "1080p"
    assert native.size == "1080x1920"
    for size in ("1920x1080", "16:9"):
        preview = build(request(size=size), PREVIEW, resolution="4k")
        assert "resolution" not in preview.body["response_format"]
        assert preview.size == "1280x720"
    meta = build(request(metadata={"response_format": {"resolution": "4k"}}), PREVIEW)
    assert "resolution" not in meta.body["response_format"]


def test_hints_without_a_field_are_dropped_or_folded():
    hinted = request(negative_prompt="rain", seed=7, generate_audio=False)
    native = build(hinted, MODEL)
    assert native.dropped == ("seed", "generate_audio", "negative_prompt")
    assert native.body["input"][-1]["text"] == "a red balloon over a calm lake"
    folded = build(hinted, MODEL, fold_negative=True)
    assert folded.body["input"][-1]["text"] == "a red balloon over a calm lake\nAvoid: rain"


def test_metadata_merges_without_what_the_relay_controls():
    metadata = {
        "generation_config": {"thinking_level": "low",
                              "video_config": {"task": "edit", "duration_seconds": 4}},
        "response_format": {"resolution": "360p", "delivery": "inline", "duration": 5},
        "model": "other", "background": False, "store": False, "input": "x",
        "webhook_config": {"uris": ["https://hook.example.test"]},
        "previous_interaction_id": "v1_x", "response_modalities": ["VIDEO"],
    }  # fmt: skip
    native = build(request(metadata=metadata), MODEL)
    body = native.body
    assert body["generation_config"] == {"thinking_level": "low", "video_config": {"task": "edit"}}
    assert body["response_format"] == {"type": "video", "delivery": "uri", "aspect_ratio": "16:9",
                                       "resolution": "360p", "duration": "6s"}  # fmt: skip
    assert (body["model"], body["background"]) == (MODEL, True)
    assert not {"store", "webhook_config", "previous_interaction_id", "response_modalities"} & set(
        body
    )
    assert body["input"][-1]["type"] == "text"
    assert native.size == "640x360"
    good = build(request(metadata={"response_format": {"duration": "4s",
                                                       "aspect_ratio": "1:1"}}), MODEL)  # fmt: skip
    assert good.seconds == 4 and good.body["response_format"]["aspect_ratio"] == "16:9"


def test_remix_continues_the_previous_interaction():
    native = build(request(prompt="now at night", seconds=4), MODEL, previous="v1_source")
    assert native.body["previous_interaction_id"] == "v1_source"
    assert native.body["input"] == [{"type": "text", "text": "now at night"}]
    assert native.body["response_format"]["duration"] == "4s"
    assert "generation_config" not in native.body  # the model infers the edit


def test_accepts_offers_each_models_tiers():
    seconds, sizes = accepts(MODEL)
    assert seconds == tuple(range(3, 11))
    assert sizes == ("640x360", "360x640", "1280x720", "720x1280", "1920x1080", "1080x1920",
                     "3840x2160", "2160x3840")  # fmt: skip
    assert accepts(PREVIEW)[1] == ("1280x720", "720x1280")


# --- answers --------------------------------------------------------------------------------


def test_create_answer():
    assert interaction_id(fixture("create")) == fixture("create")["id"]
    with pytest.raises(Unavailable) as caught:
        interaction_id({"status": "in_progress"})
    assert caught.value.maybe_created


def polled(name: str, base: str = API) -> Any:
    return update(fixture(name), now=NOW, base_url=base)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("create", "in_progress", None),
        ("poll_queued", "queued", None),
        ("poll_running", "in_progress", None),
        ("poll_completed_uri", "completed", None),
        ("poll_completed_inline", "completed", None),
        ("poll_moderation", "failed", "moderation_blocked"),
        ("poll_failed", "failed", "upstream_error"),
        ("poll_cancelled", "failed", "cancelled"),
    ],
)
def test_the_status_table(name: str, status: str, code: str | None):
    found = polled(name)
    assert found.status == status
    assert (found.error.code if found.error else None) == code
    if status == "queued":
        assert found.progress == 0
    if status == "in_progress":
        assert found.progress is None  # no progress field: the relay's time-based estimate


@pytest.mark.parametrize(
    ("native", "code"),
    [("incomplete", "generation_failed"), ("budget_exceeded", "generation_failed"),
     ("requires_action", "invalid_request"), ("expired", "generation_failed"),
     ("some_error", "generation_failed")],
)  # fmt: skip
def test_other_terminal_statuses(native: str, code: str):
    found = update({**fixture("poll_running"), "status": native}, now=NOW, base_url=API)
    assert found.status == "failed" and found.error is not None and found.error.code == code


def test_an_unknown_status_keeps_the_previous_one():
    found = update({**fixture("poll_running"), "status": "thinking"}, now=NOW, base_url=API)
    assert found.status is None and found.unknown_status == "thinking"


def test_a_uri_result_keeps_only_the_file_id_and_the_time_of_updated():
    found = polled("poll_completed_uri")
    assert found.state == {"video_file": "8d3kq2v1xp0a", "inline_video": False}
    assert found.completed_at == 1784802127.0  # 2026-07-23T10:22:07Z
    assert found.expires_at == found.completed_at + 172800
    assert found.progress == 100


def test_an_inline_result_keeps_only_a_flag(monkeypatch: pytest.MonkeyPatch):
    found = polled("poll_completed_inline")
    assert found.state == {"video_file": None, "inline_video": True}
    video = find_video(fixture("poll_completed_inline"))
    assert video is not None and video.data == "AAAAIGZ0eXBpc29t"
    monkeypatch.setattr("relay.providers.gemini_omni.response.INLINE_MAX_BYTES", 4)
    over = polled("poll_completed_inline")
    assert over.status == "failed" and over.error is not None
    assert over.error.message.startswith("gemini-omni returned the video inline")


@pytest.mark.parametrize(
    ("uri", "found"),
    [
        (f"{API}/v1beta/files/8d3kq2v1xp0a:download?alt=media", "8d3kq2v1xp0a"),
        (f"{API}/v1beta/files/8d3kq2v1xp0a", "8d3kq2v1xp0a"),
        ("files/8d3kq2v1xp0a", "8d3kq2v1xp0a"),
        ("https://evil.example.test/v1beta/files/8d3kq2v1xp0a", None),
        ("http://generativelanguage.googleapis.com/v1beta/files/x", None),
        (f"{API}.evil.test/v1beta/files/x", None),
    ],
)
def test_the_three_uri_shapes_on_the_api_host_only(uri: str, found: str | None):
    assert file_id(uri, API) == found


def test_a_uri_on_another_host_fails_the_job():
    body = fixture("poll_completed_uri")
    body["steps"][-1]["content"][0]["uri"] = "https://files.example.test/v1beta/files/a"
    found = update(body, now=NOW, base_url=API)
    assert found.status == "failed" and found.error is not None
    assert found.error.code == "generation_failed" and "files.example.test" not in str(found)


def test_the_last_video_of_the_last_model_output_wins_and_output_video_is_a_fallback():
    body = fixture("poll_completed_uri")
    body["steps"].insert(0, {"type": "model_output", "content": [
        {"type": "video", "uri": "files/old"}]})  # fmt: skip
    body["steps"][-1]["content"].append({"mime_type": "video/mp4", "uri": "files/last"})
    assert update(body, now=NOW, base_url=API).state["video_file"] == "last"
    bare = {**fixture("poll_running"), "status": "completed",
            "output_video": {"uri": "files/sdk", "mime_type": "video/mp4"}}  # fmt: skip
    assert update(bare, now=NOW, base_url=API).state["video_file"] == "sdk"


def test_completed_without_a_video_but_with_video_tokens_is_unparsed():
    body = fixture("poll_completed_uri")
    body["steps"][-1]["content"] = []
    found = update(body, now=NOW, base_url=API)
    assert found.status == "failed" and found.error is not None
    assert found.error.code == "generation_failed" and "unparsed" in found.error.message


def test_a_refusal_keeps_the_models_text():
    found = polled("poll_moderation")
    assert found.error is not None
    assert found.error.message == "I can't create that video because it depicts a real person."


@pytest.mark.parametrize(
    ("body", "code", "shown"),
    [
        ({"error": {"code": "internal", "message": "video generation failed"}}, "upstream_error",
         "internal: video generation failed"),
        ({"errors": [{"code": "generation_failed", "message": "no video"}]}, "generation_failed",
         "generation_failed: no video"),
        ({"steps": [{"type": "model_output", "error": {"code": 14, "message": "busy"}}]},
         "upstream_error", "14: busy"),
        ({"steps": [{"type": "model_output", "error": {"code": 3, "message": "bad"}}]},
         "generation_failed", "3: bad"),
        ({"finish_reason": "SAFETY"}, "moderation_blocked", "SAFETY: "),
        ({"finish_reason": "PROHIBITED_CONTENT"}, "moderation_blocked", "PROHIBITED_CONTENT: "),
        ({"error": {"code": "failed", "message": "blocked by our safety policy"}},
         "moderation_blocked", "failed: blocked by our safety policy"),
        ({"error": {"code": "API_KEY_SERVICE_BLOCKED", "message": "x"}}, "generation_failed",
         "API_KEY_SERVICE_BLOCKED: x"),
        ({}, "generation_failed", "failed: "),
        ({"error": {"code": {"odd": 1}, "message": "m"}}, "generation_failed", "failed: m"),
    ],
)  # fmt: skip
def test_a_failure_is_read_from_all_four_places(body: Any, code: str, shown: str):
    found = failure(body)
    assert found.code == code and found.message.startswith(shown)


ERRORS = fixture("errors")


@pytest.mark.parametrize(
    ("name", "on_interaction", "kind", "code"),
    [
        ("bad_key", False, AuthFailed, "upstream_auth_failed"),
        ("bad_key", True, AuthFailed, "upstream_auth_failed"),
        ("bad_key_bare", False, AuthFailed, "upstream_auth_failed"),
        ("key_blocked", False, AuthFailed, "upstream_auth_failed"),
        ("rate", False, RateLimited, "rate_limit_exceeded"),
        ("too_long", False, Rejected, "invalid_request"),
        ("too_short", False, Rejected, "invalid_request"),
        ("bad_image", False, Rejected, "invalid_request"),
        ("wrong_api", False, Rejected, "invalid_request"),
        ("prompt_blocked", False, Rejected, "moderation_blocked"),
        ("unknown_model", False, Rejected, "invalid_request"),
        ("server", False, Unavailable, "upstream_error"),
        ("server_front", False, Unavailable, "upstream_error"),
        ("server", True, Unavailable, "upstream_error"),
        ("unknown_interaction", True, TaskNotFound, "task_expired"),
        ("unknown_model", True, TaskNotFound, "task_expired"),  # any 404 on a poll: gone
        ("too_long", True, TransientError, "upstream_error"),  # a 400 on a running job
    ],
)
def test_the_classification_table(name: str, on_interaction: bool, kind: type, code: str):
    status, body = ERRORS[name]
    error = classify(status, {}, body, json.dumps(body), on_interaction=on_interaction)
    assert type(error) is kind and error.code == code


def test_what_each_classification_carries():
    status, body = ERRORS["rate"]
    limited = classify(status, {}, body, on_interaction=False)
    assert isinstance(limited, RateLimited) and limited.retry_after == 29
    billing = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                         "message": "Billing is not enabled for this project's plan."}}  # fmt: skip
    assert isinstance(classify(429, {}, billing, on_interaction=False), QuotaExceeded)
    plain = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down"}}
    assert classify(429, {"Retry-After": "7"}, plain, on_interaction=False).retry_after == 7  # type: ignore[attr-defined]
    status, body = ERRORS["server"]
    made = classify(status, {}, body, on_interaction=False)
    assert isinstance(made, Unavailable) and made.maybe_created  # the POST may have billed one
    too_long = classify(ERRORS["too_long"][0], {}, ERRORS["too_long"][1], on_interaction=False)
    assert isinstance(too_long, Rejected) and too_long.param == "seconds"
    assert too_long.message.startswith("invalid_request: Requested video duration 999s")
    bad_key = classify(400, {}, ERRORS["bad_key"][1], on_interaction=False)
    assert bad_key.message == "INVALID_ARGUMENT: API key not valid. Please pass a valid API key."
    gone = {"error": {"code": "invalid_request",
                      "message": "Invalid previous_interaction_id: v1_x"}}  # fmt: skip
    assert isinstance(classify(400, {}, gone, on_interaction=False, remix=True), TaskNotFound)
    assert isinstance(classify(400, {}, gone, on_interaction=False), Rejected)
    # safety words count only as whole enum tokens or "blocked ... safety/policy"
    settings = {"error": {"code": "invalid_request", "message": "unknown field safety_settings"}}
    assert classify(400, {}, settings, on_interaction=False).code == "invalid_request"


# --- the adapter over a stub ------------------------------------------------------------------


class StubHttp:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        self.sent.append((method, url, kwargs))
        return self.replies.pop(0)


def answer(body: Any, status: int = 200) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def stubbed(*replies: Reply, **options: Any) -> tuple[GeminiOmniProvider, StubHttp]:
    http = StubHttp(*replies)
    channel = ChannelView(
        "omni", GeminiOmniOptions(**options), base_url=f"{API}/v1beta/", api_key="AIza-k"
    )
    return GeminiOmniProvider(channel, http), http  # type: ignore[arg-type]


def ref(state: dict[str, Any], status: str = "in_progress") -> TaskRef:
    return TaskRef("video_o", fixture("create")["id"], MODEL, state, NOW, "6", "1280x720", status)  # type: ignore[arg-type]


async def test_while_the_file_processes_only_the_file_is_asked_about():
    active = {**fixture("file_processing"), "state": "ACTIVE"}
    omni, http = stubbed(
        answer(fixture("poll_completed_uri")), answer(fixture("file_processing")), answer(active)
    )
    waiting = await omni.poll(ref({}))
    assert waiting.status == "in_progress"
    done = await omni.poll(ref(dict(waiting.state)))  # the state the relay keeps
    assert done.status == "completed" and done.expires_at == 1784974927.112
    assert [u.rsplit("/", 2)[-2] for _, u, _ in http.sent] == ["interactions", "files", "files"]


async def test_submit_poll_file_and_content_over_the_wire():
    active = {**fixture("file_processing"), "state": "ACTIVE"}
    omni, http = stubbed(
        answer(fixture("create")),
        answer(fixture("poll_completed_uri")),
        answer(fixture("file_processing")),
        answer(fixture("poll_completed_uri")),
        answer(active),
    )
    submitted = await omni.submit(request(), MODEL)
    assert submitted.upstream_id == fixture("create")["id"]
    assert (submitted.seconds, submitted.size, submitted.status) == ("6", "1280x720", "queued")
    assert "key_id" in submitted.state and "AIza-k" not in json.dumps(submitted.state)
    waiting = await omni.poll(ref(dict(submitted.state)))
    assert waiting.status == "in_progress"  # the file is still PROCESSING
    done = await omni.poll(ref(dict(submitted.state)))
    assert done.status == "completed" and done.expires_at == 1784974927.112
    methods = [(m, u) for m, u, _ in http.sent]
    ident = fixture("create")["id"]
    assert methods == [
        ("POST", f"{API}/v1beta/interactions"),
        ("GET", f"{API}/v1beta/interactions/{ident}"),
        ("GET", f"{API}/v1beta/files/8d3kq2v1xp0a"),
        ("GET", f"{API}/v1beta/interactions/{ident}"),
        ("GET", f"{API}/v1beta/files/8d3kq2v1xp0a"),
    ]
    assert all(k["headers"] == {"x-goog-api-key": "AIza-k"} for _, _, k in http.sent)
    source = await omni.content(ref({**done.state}, "completed"), "video")
    assert isinstance(source, Remote) and source.trusted
    assert source.url == f"{API}/v1beta/files/8d3kq2v1xp0a:download?alt=media"
    assert source.headers == {"x-goog-api-key": "AIza-k"}
    assert await omni.refresh_content(ref({**done.state}, "completed"), "video") is None


async def test_a_failed_file_fails_the_job():
    failed = {**fixture("file_processing"), "state": "FAILED"}
    omni, _ = stubbed(answer(fixture("poll_completed_uri")), answer(failed))
    found = await omni.poll(ref({}))
    assert found.status == "failed" and found.error is not None
    assert found.error.code == "generation_failed"


async def test_inline_results_are_read_again_and_decoded():
    body = fixture("poll_completed_inline")
    omni, http = stubbed(answer(body))
    source = await omni.content(
        ref({"video_file": None, "inline_video": True}, "completed"), "video"
    )
    assert isinstance(source, InlineBytes) and source.content_type == "video/mp4"
    assert source.data[4:8] == b"ftyp"
    assert http.sent[0][2]["limit"] == omni_module.INLINE_REPLY_BYTES


async def test_an_inline_result_that_cannot_be_read_again_says_why():
    omni, _ = stubbed(answer(fixture("poll_moderation")), answer(fixture("poll_running")))
    state = {"video_file": None, "inline_video": True}
    with pytest.raises(VariantUnavailable):
        await omni.content(ref(state, "completed"), "video")


def test_options_are_validated(make_config: Callable[..., Config]):
    channel = {"name": "g", "provider": "gemini-omni", "api_key": "k", "models": ["sora-2"]}
    config = make_config(channels=[channel])
    assert config.channels[0].options == {"resolution": "720p", "fold_negative": False}
    for bad in ({"resolution": "480p"}, {"fold_negative": "yes"}):
        with pytest.raises(ConfigError):
            make_config(channels=[{**channel, "options": bad}])
    with pytest.raises(ConfigError):
        make_config(channels=[{**channel, "api_key": ""}])


# --- through the relay, against the fake -------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[GeminiOmniFake]:
    upstream = GeminiOmniFake()
    await upstream.start()
    yield upstream
    await upstream.close()


Start = Callable[..., Any]


@pytest.fixture
def start(
    fake: GeminiOmniFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Start:
    async def run(keep_videos: bool = False, **channel: Any) -> Relay:
        config = make_config(
            storage={"keep_videos": keep_videos},
            channels=[fake.channel(fake.base_url, **channel)],
        )
        relay: Relay = await start_relay(config)
        return relay

    return run


async def content(relay: Relay, video_id: str, **headers: str) -> Any:
    return await relay.client.get(f"/v1/videos/{video_id}/content", headers={**auth(), **headers})


def only_the_key_header(fake: GeminiOmniFake) -> None:
    """Every API call carried the key in x-goog-api-key: never Bearer, never ?key=."""
    assert fake.requests
    for r in fake.requests:
        assert r.headers.get("x-goog-api-key") == fake.api_key, r.path
        assert "Authorization" not in r.headers and "key" not in r.query


async def test_create_poll_and_content_with_range(start: Start, fake: GeminiOmniFake):
    fake.polls_to_finish = 3
    fake.queued_first = True
    relay = await start()
    video = await relay.create(seconds="8", size="720x1280")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "8", "720x1280")
    [create] = fake.creates()
    assert create.headers["Content-Type"] == "application/json"
    assert create.json() == {
        "model": MODEL,
        "input": [{"type": "text", "text": "a paper airplane over a lake"}],
        "background": True,
        "response_format": {"type": "video", "delivery": "uri", "aspect_ratio": "9:16",
                            "resolution": "720p", "duration": "8s"},
        "generation_config": {"video_config": {"task": "text_to_video"}},
    }  # fmt: skip
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("8", "720x1280")
    assert done["expires_at"] >= done["completed_at"] + 172800 - 5
    [item] = fake.interactions.values()
    assert item.polls >= 3 and item.file_reads >= 2  # PROCESSING first, then ACTIVE

    whole = await content(relay, video["id"])
    assert whole.status == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert await whole.read() == VIDEO
    part = await content(relay, video["id"], Range="bytes=100-199")
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert await part.read() == VIDEO[100:200]
    downloads = fake.calls(":download")
    assert len(downloads) == 2 and all(d.query == {"alt": "media"} for d in downloads)
    only_the_key_header(fake)
    assert fake.ignored == []


async def test_the_download_redirect_drops_the_key(start: Start, fake: GeminiOmniFake):
    fake.redirect_download = True
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await content(relay, video["id"], Range="bytes=-10")
    assert resp.status == 206 and await resp.read() == VIDEO[-10:]
    assert len(fake.storage_requests) == 1 and fake.storage_keys_seen() == []


@pytest.mark.parametrize("shape", ["download", "file", "name"])
async def test_every_uri_shape_downloads(start: Start, fake: GeminiOmniFake, shape: str):
    fake.uri_shape = shape
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    assert await (await content(relay, video["id"])).read() == VIDEO


async def test_a_uri_on_another_host_is_never_fetched(start: Start, fake: GeminiOmniFake):
    fake.foreign_uri = True
    relay = await start()
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "generation_failed"
    assert fake.calls("/v1beta/files/") == []


async def test_an_image_goes_up_inline_with_its_tag(start: Start, fake: GeminiOmniFake):
    relay = await start()
    form = aiohttp.FormData()
    form.add_field("prompt", "animate this")
    form.add_field("seconds", "4")
    form.add_field("input_reference", png(1280, 720), filename="f.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=form, headers=auth())
    body = await resp.json()
    assert resp.status == 200, body
    assert (await relay.wait(body["id"]))["status"] == "completed"
    sent = fake.creates()[-1].json()
    image, text = sent["input"]
    assert image["mime_type"] == "image/png" and image["data"]
    assert text == {"type": "text", "text": "<FIRST_FRAME> animate this"}
    assert sent["generation_config"] == {"video_config": {"task": "image_to_video"}}


async def test_unsupported_image_roles_never_reach_the_api(start: Start, fake: GeminiOmniFake):
    relay = await start()
    content_ = [
        {"type": "image_url", "image_url": {"url": "https://img.example.test/a.png"},
         "role": "reference_image"},
    ]  # fmt: skip
    resp = await relay.client.post(
        "/v1/videos",
        json={"prompt": "x", "input_reference": {"content": content_}},
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.creates() == []


async def test_an_inline_result_is_served_like_a_file(start: Start, fake: GeminiOmniFake):
    fake.result = "inline"  # `data`, although the relay asked for `uri`
    relay = await start()
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "completed" and done["expires_at"] is not None
    reads = len(fake.calls("/v1beta/interactions/", "GET"))
    resp = await content(relay, video["id"])
    assert resp.status == 200 and await resp.read() == VIDEO
    assert resp.headers["Content-Length"] == str(len(VIDEO))
    resp = await content(relay, video["id"], Range="bytes=100-1099")
    assert resp.status == 206 and await resp.read() == VIDEO[100:1100]
    assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(VIDEO)}"
    resp = await relay.client.head(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(VIDEO))
    # every answer read the interaction again: the base64 is never in the task row
    assert len(fake.calls("/v1beta/interactions/", "GET")) == reads + 3
    row = await relay.store.get_task(video["id"])
    assert row is not None and "AAAA" not in json.dumps(row.upstream_state)
    assert fake.calls("/v1beta/files/") == []
    only_the_key_header(fake)


async def test_an_inline_result_is_stored_and_outlives_the_interaction(
    start: Start, fake: GeminiOmniFake, data_dir: Path
):
    fake.result = "inline"
    relay = await start(keep_videos=True)
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    path = data_dir / f"videos/{video['id']}/video.mp4"
    for _ in range(500):
        if (await relay.get(video["id"]))["expires_at"] is None:
            break
        await asyncio.sleep(0.02)
    assert path.read_bytes() == VIDEO
    fake.forget_tasks()  # the interaction is gone upstream: only the copy has the video
    resp = await content(relay, video["id"], Range="bytes=-10")
    assert resp.status == 206 and await resp.read() == VIDEO[-10:]


async def test_an_inline_result_over_the_bound_fails_saying_why(
    start: Start, fake: GeminiOmniFake, monkeypatch: pytest.MonkeyPatch
):
    fake.result = "inline"
    monkeypatch.setattr(omni_module, "INLINE_REPLY_BYTES", 64 * 1024)
    relay = await start()
    video = await relay.create()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "generation_failed"
    assert done["error"]["message"].startswith("gemini-omni returned the video inline")
    assert (await content(relay, video["id"])).status == 404


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("error", "upstream_error", "internal: video generation failed"),
        ("errors", "generation_failed", "generation_failed: no video produced"),
        ("step", "upstream_error", "13: internal error"),
        ("finish_reason", "generation_failed", "OTHER: the upstream gave no message"),
    ],
)
async def test_failures_keep_their_native_reason(
    start: Start, fake: GeminiOmniFake, where: str, code: str, message: str
):
    fake.failure = where
    relay = await start()
    video = await relay.create(prompt="x #fail")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": message}


async def test_moderation_and_unparsed_results(start: Start, fake: GeminiOmniFake,
                                               logs: pytest.LogCaptureFixture):  # fmt: skip
    relay = await start()
    blocked = await relay.wait((await relay.create(prompt="x #moderation"))["id"])
    refusal = "I can't create that video because it depicts a real person."
    assert blocked["error"] == {"code": "moderation_blocked", "message": refusal}
    fake.result = "unparsed"
    unparsed = await relay.wait((await relay.create())["id"])
    assert unparsed["error"]["code"] == "generation_failed"
    assert any("video tokens but no video" in r.getMessage() for r in logs.records)
    resp = await relay.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"


@pytest.mark.parametrize("status", [400, 404])
async def test_a_forgotten_interaction_expires_the_task(
    start: Start, fake: GeminiOmniFake, status: int
):
    fake.unknown_interaction = status
    fake.polls_to_finish = 1000
    relay = await start()
    video = await relay.create()
    await asyncio.sleep(0.1)
    fake.forget_tasks()
    done = await relay.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "task_expired"


async def test_a_400_on_a_running_job_is_polled_again(start: Start, fake: GeminiOmniFake):
    fake.polls_to_finish = 4
    fake.fail_next("poll", "bad_request")
    fake.fail_next("poll", "bad_request")
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"


async def test_a_failed_file_fails_the_task(start: Start, fake: GeminiOmniFake):
    fake.file_failed = True
    relay = await start()
    done = await relay.wait((await relay.create())["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "generation_failed"


async def test_an_expired_file_is_a_404(start: Start, fake: GeminiOmniFake):
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    fake.expire_files()
    resp = await content(relay, video["id"])
    assert resp.status == 404 and fake.calls(":download")
    fake.expired_files.clear()
    fake.expire_urls()  # a 403, as any expired URL: the Files URI is fixed, nothing renews it
    assert (await content(relay, video["id"])).status == 404


async def test_remix_continues_the_interaction(start: Start, fake: GeminiOmniFake):
    relay = await start()
    source = await relay.create(seconds="6")
    assert (await relay.wait(source["id"]))["status"] == "completed"
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "now at night"}, headers=auth()
    )
    remix = await resp.json()
    assert resp.status == 200, remix
    assert remix["remixed_from_video_id"] == source["id"]
    assert (await relay.wait(remix["id"]))["status"] == "completed"
    first, second = (c.json() for c in fake.creates())
    [source_item] = [i for i in fake.interactions.values() if i.body == first]
    assert second["previous_interaction_id"] == source_item.id
    assert second["input"] == [{"type": "text", "text": "now at night"}]
    assert second["response_format"]["duration"] == "6s" and second["background"] is True


async def test_a_remix_of_a_forgotten_source_is_expired(start: Start, fake: GeminiOmniFake):
    relay = await start()
    source = await relay.create()
    assert (await relay.wait(source["id"]))["status"] == "completed"
    fake.forget_tasks()
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    # the adapter says task_expired (TaskNotFound); the policy table answers a remix whose
    # source is gone by trying the next channel, and there is none: nothing was created
    assert resp.status == 502
    assert "nothing was created" in (await resp.json())["error"]["message"]
    channel = relay.runtime.channels.get("gemini-omni")
    assert channel is not None and channel.health.state == "ready"
    assert len(fake.creates()) == 2


async def test_delete_removes_the_stored_interaction(start: Start, fake: GeminiOmniFake):
    relay = await start()
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    for _ in range(200):
        if not fake.interactions:
            break
        await asyncio.sleep(0.02)
    assert fake.interactions == {}
    assert fake.calls("/v1beta/interactions/", "DELETE")


# --- failover and cooldown by the policy table ------------------------------------------------


@pytest.fixture
async def two(
    fake: GeminiOmniFake, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
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
    ("kind", "state", "tried_again"),
    [
        ("rate_limit", "rate_limited", False),
        ("quota", "quota", False),
        ("auth", "credentials", False),
        ("blocked", "credentials", False),
    ],
)
async def test_failover_and_cooldown(
    two: Relay, fake: GeminiOmniFake, kind: str, state: str, tried_again: bool
):
    fake.fail_next("submit", kind)
    video = await two.create()
    assert await channel_of(two, video["id"]) == "second"
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.state == state
    again = await two.create()
    assert len(fake.creates()) == (2 if tried_again else 1)
    assert await channel_of(two, again["id"]) == ("first" if tried_again else "second")
    assert (await two.wait(video["id"]))["status"] == "completed"


@pytest.mark.parametrize("kind", ["internal", "unavailable"])
async def test_a_5xx_on_the_create_is_not_resubmitted(two: Relay, fake: GeminiOmniFake, kind: str):
    fake.fail_next("submit", kind)  # the POST may still have made (and billed) an interaction
    video = await two.create()
    assert len(fake.creates()) == 1
    assert await channel_of(two, video["id"]) == "first"


@pytest.mark.parametrize("kind", ["too_long", "safety", "bad_image"])
async def test_a_rejected_request_is_not_failed_over(two: Relay, fake: GeminiOmniFake, kind: str):
    fake.fail_next("submit", kind)
    resp = await two.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    first = two.runtime.channels.get("first")
    assert first is not None and first.health.failures == 0


# --- the SDK, and the key ----------------------------------------------------------------------


async def test_official_sdk_flow(start: Start, fake: GeminiOmniFake):
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
        assert fake.creates()[-1].json()["input"][0]["type"] == "image"
        remix = await client.videos.remix(video.id, prompt="at night")
        assert remix.remixed_from_video_id == video.id
        failed = await client.videos.create_and_poll(prompt="x #moderation", poll_interval_ms=20)
        assert failed.error is not None and failed.error.code == "moderation_blocked"
        fake.result = "inline"
        inline = await client.videos.create_and_poll(prompt="inline", poll_interval_ms=20)
        assert (await client.videos.download_content(inline.id)).content == VIDEO
    finally:
        await client.close()


async def test_the_key_never_leaks(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "AIza-canary-" + secrets.token_hex(16)
    upstream = GeminiOmniFake(api_key=canary)
    upstream.redirect_download = True
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
        upstream.result = "inline"
        inline = await relay.create()
        seen.append(json.dumps(await relay.wait(inline["id"])))
        seen.append((await (await content(relay, inline["id"])).read()).decode("latin-1"))
        upstream.fail_next("poll", "auth")
        polled = await relay.create()
        seen.append(json.dumps(await relay.wait(polled["id"])))
        seen.append(await (await relay.client.get("/v1/videos", headers=auth())).text())
        seen.append(await (await relay.client.get("/", headers=auth())).text())
        # a failed submit cools the only channel down: one fresh relay per error
        for kind in ("auth", "blocked", "rate_limit", "internal", "too_long", "unknown_model"):
            fresh: Relay = await start_relay(config())
            upstream.fail_next("submit", kind)
            resp = await fresh.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
            seen.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "#reject"}, headers=auth())
        seen.append(await resp.text())
        assert upstream.scripted == {"submit": [], "poll": [], "download": [], "file": []}
        for text in seen:
            assert canary not in text and upstream.base_url not in text
            assert "/v1beta/files" not in text  # the Files URI is never shown
        assert canary not in logs.text
        for record in logs.records:
            assert canary not in record.getMessage()
        assert upstream.storage_keys_seen() == []
    finally:
        await upstream.close()
