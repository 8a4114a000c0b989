"""OpenAI (Sora): translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Media, Remote, Size, TaskRef, VideoRequest
from relay.policy import ChannelEffect
from relay.providers import REGISTRY
from relay.providers.base import ChannelView, Submitted, option_specs
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
)
from relay.providers.http import ChannelHttp
from relay.providers.normalize import retry_after
from relay.providers.openai import OpenAIOptions, OpenAIProvider
from relay.providers.openai.models import pixel_size, upstream_seconds
from relay.providers.openai.request import (
    form_create,
    form_fields,
    image_part,
    json_create,
)
from relay.providers.openai.response import classify, poll_after, redact, video_update
from relay.upstream import Http
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.openai import SPRITESHEET, THUMBNAIL, FakeOpenAI
from tests.images import data_url, jpeg, png, webp

FIXTURES = Path(__file__).parent / "fixtures" / "openai"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


MODEL = "sora-2"  # the upstream model the pure functions and the adapter are given


def req(**fields: Any) -> VideoRequest:
    fields.setdefault("model", "sora-2")
    fields.setdefault("prompt", "a paper boat")
    fields.setdefault("seconds", 4)
    fields.setdefault("size", Size(width=720, height=1280))
    return VideoRequest(**fields)


# --- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("16:9", "1280x720"),
        ("9:16", "720x1280"),
        ("21:9", "1280x720"),
        ("3:4", "720x1280"),
        ("1:1", "720x1280"),  # a tie goes to the upstream default shape
        ("1280x720", "1280x720"),
        ("1920x1080", "1920x1080"),  # upstream decides what it takes
        ("1000x1000", "1000x1000"),
    ],
)
def test_sizes(size: str, expected: str):
    parsed = Size.parse(size)
    assert parsed is not None
    assert pixel_size(parsed) == expected


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        ("sora-2", 4, 4),
        ("sora-2", 5, 4),
        ("sora-2", 10, 12),  # a tie takes the longer one
        ("sora-2-pro", 16, 16),
        ("sora-2-pro-2025-10-06", 20, 20),
        ("sora-2", 120, 20),
        ("acme-video-1", 7, 7),  # a compatible server's own model: as asked
    ],
)
def test_seconds(model: str, asked: int, sent: int):
    assert upstream_seconds(asked, model) == sent


def test_json_create_types_image_and_metadata():
    body = json_create(
        req(
            images=(Image(url="https://img.test/a.png"),),
            seed=7,
            negative_prompt="blur",
            metadata={
                "model": "sora-2-pro",
                "callback_url": "https://x",
                "characters": [{"id": "char_1"}],
            },
        ),
        MODEL,
        8,
        "720x1280",
    )
    assert body == {
        "model": "sora-2",
        "prompt": "a paper boat",
        "seconds": "8",
        "size": "720x1280",
        "input_reference": {"image_url": "https://img.test/a.png"},
        "characters": [{"id": "char_1"}],
    }


def test_json_create_sends_bytes_as_a_data_url():
    body = json_create(req(images=(Image(data=png(), mime="image/png"),)), MODEL, 4, "720x1280")
    assert body["input_reference"] == {"image_url": data_url(png())}


def test_form_fields_use_bracket_notation():
    pairs = form_fields(
        {
            "prompt": "p",
            "characters": [{"id": "char_1"}, {"id": "char_2"}],
            "input_reference": {"file_id": "file-1"},
            "flags": [True, False],
            "n": 3,
            "skip": None,
        }
    )
    assert pairs == [
        ("prompt", "p"),
        ("characters[][id]", "char_1"),
        ("characters[][id]", "char_2"),
        ("input_reference[file_id]", "file-1"),
        ("flags[]", "true"),
        ("flags[]", "false"),
        ("n", "3"),
    ]


def test_form_create_strings_and_file_wins_over_metadata_reference():
    pairs = form_create(
        req(metadata={"input_reference": {"image_url": "https://x"}, "token": "t"}),
        MODEL,
        12,
        "1280x720",
        has_file=True,
    )
    assert pairs == [
        ("model", "sora-2"),
        ("prompt", "a paper boat"),
        ("seconds", "12"),
        ("size", "1280x720"),
    ]


@pytest.mark.parametrize(
    ("data", "mime", "filename"),
    [
        (png(), "image/png", "input_reference.png"),
        (jpeg(), "image/jpeg", "input_reference.jpg"),
        (webp(), "image/webp", "input_reference.webp"),
    ],
)
def test_image_parts_carry_their_real_type(data: bytes, mime: str, filename: str):
    part = image_part(data, mime)
    assert (part.name, part.filename, part.content_type, part.data) == (
        "input_reference",
        filename,
        mime,
        data,
    )


# --- answers --------------------------------------------------------------------------------


def test_create_answer_is_queued():
    update = video_update(load("create"))
    assert (update.status, update.progress, update.seconds, update.size) == (
        "queued",
        0,
        "8",
        "1280x720",
    )
    assert update.completed_at is None and update.expires_at is None


def test_in_progress_carries_the_upstream_progress():
    update = video_update(load("retrieve_in_progress"), poll_after_s=2.5)
    assert (update.status, update.progress, update.poll_after_s) == ("in_progress", 33, 2.5)


def test_completed_keeps_the_upstream_times():
    update = video_update(load("retrieve_completed"))
    assert update.status == "completed" and update.progress == 100
    assert update.completed_at == 1758941610 and update.expires_at == 1758945210
    assert update.error is None


def test_failed_passes_the_native_error():
    update = video_update(load("retrieve_failed"))
    assert update.status == "failed" and update.progress == 41
    assert update.error is not None
    assert update.error.code == "generation_failed"
    assert update.error.message == "internal_error: video generation failed"


def test_moderation_blocked_video():
    update = video_update(load("retrieve_moderation"))
    assert update.status == "failed" and update.error is not None
    assert update.error.code == "moderation_blocked"
    assert update.error.message.startswith("moderation_blocked: the request was blocked")


@pytest.mark.parametrize(
    ("word", "code"),
    [("cancelled", "cancelled"), ("canceled", "cancelled"), ("expired", "task_expired")],
)
def test_defensive_end_words(word: str, code: str):
    update = video_update({**load("retrieve_in_progress"), "status": word})
    assert update.status == "failed" and update.error is not None
    assert update.error.code == code


def test_completed_at_only_counts_once_completed():
    update = video_update({**load("retrieve_in_progress"), "completed_at": 1758941600})
    assert update.completed_at is None


@pytest.mark.parametrize("word", ["paused_for_review", None, 3])
def test_unknown_status_keeps_the_previous_one(word: Any, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, "relay.providers")
    body = {**load("retrieve_in_progress"), "status": word}
    adapter = OpenAIProvider(ChannelView("o", OpenAIOptions(), api_key="k"), None)
    for _ in range(2):  # the parser names it; the relay has the adapter note it
        update = video_update(body)
        assert update.status is None and update.unknown_status == str(word)
        adapter.note_unknown_status(update.unknown_status)
    assert caplog.text.count("unknown upstream status") == 1  # logged once, not every poll


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"openai-poll-after-ms": "1500"}, 1.5),
        ({"OpenAI-Poll-After-Ms": "250"}, 0.25),
        ({"openai-poll-after-ms": "soon"}, None),
        ({}, None),
    ],
)
def test_poll_after(headers: dict[str, str], expected: float | None):
    assert poll_after(headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "later"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None):
    assert retry_after(headers) == expected


@pytest.mark.parametrize(
    ("fixture", "status", "phase", "kind", "code"),
    [
        ("error_auth", 401, "create", AuthFailed, "upstream_auth_failed"),
        ("error_auth", 401, "poll", AuthFailed, "upstream_auth_failed"),
        ("error_unverified", 403, "create", AuthFailed, "upstream_auth_failed"),
        ("error_rate_limit", 429, "create", RateLimited, "rate_limit_exceeded"),
        ("error_concurrency", 429, "create", RateLimited, "rate_limit_exceeded"),
        ("error_quota", 429, "create", QuotaExceeded, "insufficient_quota"),
        ("error_invalid_type", 400, "create", Rejected, "invalid_request"),
        ("error_image_size", 400, "create", Rejected, "invalid_request"),
        ("error_moderation", 400, "create", Rejected, "moderation_blocked"),
        ("error_moderation", 400, "remix", Rejected, "moderation_blocked"),
        ("error_server", 500, "create", Unavailable, "upstream_error"),
        ("error_server", 503, "poll", Unavailable, "upstream_error"),
        ("not_found", 404, "poll", TaskNotFound, "task_expired"),
        ("not_found", 404, "delete", TaskNotFound, "task_expired"),
        ("content_not_ready", 404, "content", TaskNotFound, "task_expired"),
        ("not_found", 404, "create", Rejected, "invalid_request"),  # an unknown model
        ("not_found", 404, "remix", Rejected, "invalid_request"),
    ],
)
def test_page_error_bodies(
    fixture: str, status: int, phase: Any, kind: type[ProviderError], code: str
):
    error = classify(status, load(fixture), {}, phase, "detail")
    assert type(error) is kind
    assert error.code == code
    assert error.detail == "detail"


def test_error_details_are_kept():
    body = load("error_invalid_type")
    error = classify(400, body, {}, "create", "d")
    assert isinstance(error, Rejected) and error.param == "input_reference"
    assert error.message.startswith("invalid_type: Invalid type for 'input_reference'")
    limited = classify(429, load("error_rate_limit"), {"Retry-After": "7"}, "poll", "d")
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert limited.message == "rate_limit_exceeded: Rate limit reached."


def test_a_5xx_may_have_created_the_job():
    created = classify(502, None, {}, "create", "d")
    assert isinstance(created, Unavailable) and created.maybe_created
    assert isinstance(remixed := classify(504, None, {}, "remix", "d"), Unavailable)
    assert remixed.maybe_created
    polled = classify(500, load("error_server"), {}, "poll", "d")
    assert isinstance(polled, Unavailable) and not polled.maybe_created


@pytest.mark.parametrize(
    ("code", "moderated"),
    [
        ("moderation_blocked", True),
        ("content_policy_violation", True),
        ("safety_block", True),
        ("invalid_value", False),
        (None, False),
    ],
)
def test_moderation_codes_at_submit(code: str | None, moderated: bool):
    body = {
        "error": {"message": "no", "type": "invalid_request_error", "param": None, "code": code}
    }
    error = classify(400, body, {}, "create", "d")
    assert isinstance(error, Rejected) and error.moderation is moderated


def test_redact_masks_keys():
    text = "Incorrect API key provided: sk-proj-abc123XYZ789. key=my-secret-key"
    assert redact(text, ("my-secret-key", None)) == "Incorrect API key provided: sk-***. key=***"


# --- the adapter against the fake, without a relay --------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    upstream = FakeOpenAI()
    await upstream.start()
    yield upstream
    await upstream.close()


def make_channel(fake: FakeOpenAI, **options: Any) -> ChannelView[OpenAIOptions]:
    return ChannelView(
        "o",
        OpenAIOptions(**{"json_create": False, "organization": "", "project": "", **options}),
        base_url=fake.base_url + "/v1",
        api_key=fake.api_key,
    )


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    outbound = Http(allow_private_networks=True)
    yield outbound
    await outbound.close()


@pytest.fixture
def adapter(fake: FakeOpenAI, http: Http) -> OpenAIProvider:
    return OpenAIProvider(make_channel(fake), ChannelHttp(http, 10))


def ref(submitted: Submitted, state: dict[str, Any] | None = None) -> TaskRef:
    return TaskRef(
        id="video_relay",
        upstream_id=submitted.upstream_id,
        upstream_model="sora-2",
        state=state or dict(submitted.state),
        submitted_at=0.0,
        seconds=submitted.seconds,
        size=submitted.size,
        status="queued",
    )


async def test_adapter_round_trip(fake: FakeOpenAI, adapter: OpenAIProvider):
    fake.poll_after_ms = 1500
    submitted = await adapter.submit(req(seconds=9, size=Size(ratio=(16, 9))), MODEL)
    assert (submitted.seconds, submitted.size, submitted.status) == ("8", "1280x720", "queued")
    (create,) = fake.created
    assert create["content_type"] == "multipart/form-data"
    assert create["fields"] == {
        "model": "sora-2",
        "prompt": "a paper boat",
        "seconds": "8",
        "size": "1280x720",
    }
    first = await adapter.poll(ref(submitted))
    assert (first.status, first.progress, first.poll_after_s) == ("in_progress", 50, 1.5)
    done = await adapter.poll(ref(submitted))
    assert done.status == "completed" and done.expires_at is not None
    assert done.poll_after_s is None
    source = await adapter.content(ref(submitted), "thumbnail")
    assert isinstance(source, Remote) and source.trusted
    assert (
        source.url == f"{fake.base_url}/v1/videos/{submitted.upstream_id}/content?variant=thumbnail"
    )
    assert source.headers == {"Authorization": f"Bearer {fake.api_key}"}
    assert source.content_type == "image/webp"
    assert await adapter.refresh_content(ref(submitted), "video") is None
    for recorded in fake.requests:
        assert recorded.headers["Authorization"] == f"Bearer {fake.api_key}"


async def test_organization_and_project_headers(fake: FakeOpenAI, http: Http):
    adapter = OpenAIProvider(
        make_channel(fake, organization="org-123", project="proj_456"), ChannelHttp(http, 10)
    )
    submitted = await adapter.submit(req(), MODEL)
    await adapter.poll(ref(submitted))
    for recorded in fake.requests:
        assert recorded.headers["OpenAI-Organization"] == "org-123"
        assert recorded.headers["OpenAI-Project"] == "proj_456"
    source = await adapter.content(ref(submitted), "video")
    assert isinstance(source, Remote) and source.headers["OpenAI-Project"] == "proj_456"


async def test_url_image_is_fetched_and_sent_as_a_typed_file(
    fake: FakeOpenAI, adapter: OpenAIProvider
):
    fake.files["frame"] = png(720, 1280)  # served as application/octet-stream: sniffed instead
    fake.cdn.content_type = "application/octet-stream"
    await adapter.submit(req(images=(Image(url=fake.cdn_url("frame")),)), MODEL)
    (create,) = fake.created
    upload = create["files"]["input_reference"]
    assert (upload.content_type, upload.filename, upload.data) == (
        "image/png",
        "input_reference.png",
        png(720, 1280),
    )
    assert "input_reference" not in create["fields"]


async def test_a_url_that_is_not_an_image_is_refused(fake: FakeOpenAI, adapter: OpenAIProvider):
    fake.files["page"] = b"<html>not an image</html>"
    with pytest.raises(Rejected) as caught:
        await adapter.submit(req(images=(Image(url=fake.cdn_url("page")),)), MODEL)
    assert caught.value.param == "input_reference"
    assert fake.created == []


async def test_image_must_match_the_size_upstream(fake: FakeOpenAI, adapter: OpenAIProvider):
    with pytest.raises(Rejected) as caught:
        await adapter.submit(req(images=(Image(data=png(4, 4), mime="image/png"),)), MODEL)
    assert "must match the requested width and height" in caught.value.message


async def test_json_create_option(fake: FakeOpenAI, http: Http):
    adapter = OpenAIProvider(make_channel(fake, json_create=True), ChannelHttp(http, 10))
    await adapter.submit(
        req(images=(Image(url="https://img.test/a.png"),), metadata={"characters": [{"id": "c"}]}),
        MODEL,
    )
    (create,) = fake.created
    assert create["content_type"] == "application/json"
    assert create["fields"]["input_reference"] == {"image_url": "https://img.test/a.png"}
    assert create["fields"]["characters"] == [{"id": "c"}]
    assert create["fields"]["seconds"] == "4"


async def test_remix_and_delete_use_the_upstream_id(fake: FakeOpenAI, adapter: OpenAIProvider):
    submitted = await adapter.submit(req(), MODEL)
    for _ in range(2):
        await adapter.poll(ref(submitted))
    remix = await adapter.remix(ref(submitted), req(prompt="again, in snow"), MODEL)
    assert remix.upstream_id != submitted.upstream_id
    assert fake.videos[remix.upstream_id]["remixed_from_video_id"] == submitted.upstream_id
    assert fake.calls(f"/v1/videos/{submitted.upstream_id}/remix", "POST")
    await adapter.delete(ref(submitted))
    assert submitted.upstream_id not in fake.videos
    await adapter.delete(ref(submitted))  # gone already: nothing to do


# --- through the relay ------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "openai", OpenAIProvider)


@pytest.fixture
async def relay_on(
    registered: None,
    fake: FakeOpenAI,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Relay:
    return await start_relay(make_config(channels=[fake.channel(fake.base_url)]))  # type: ignore[no-any-return]


def ready(relay: Relay) -> None:
    """Undo the pause an upstream error put on the channels, so the next call goes out."""
    for channel in relay.runtime.channels:
        relay.runtime.channels.record(channel, ChannelEffect.ALIVE)


async def no_tasks(relay: Relay) -> None:
    resp = await relay.client.get("/v1/videos", headers=auth())
    assert (await resp.json())["data"] == []


async def test_create_poll_download_through_a_redirect(relay_on: Relay, fake: FakeOpenAI):
    video = await relay_on.create(model="sora-2", seconds="8", size="1280x720")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "8", "1280x720")
    (create,) = fake.created
    assert create["fields"]["model"] == "sora-2-2025-12-08"  # the channel's model_map
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    (upstream,) = fake.videos.values()
    assert done["expires_at"] == upstream["expires_at"]
    for variant, expected, kind in (
        ("video", VIDEO, "video/mp4"),
        ("thumbnail", THUMBNAIL, "image/webp"),
        ("spritesheet", SPRITESHEET, "image/jpeg"),
    ):
        resp = await relay_on.client.get(
            f"/v1/videos/{video['id']}/content", params={"variant": variant}, headers=auth()
        )
        assert resp.status == 200
        assert await resp.read() == expected
        assert resp.headers["Content-Type"] == kind
    asked = fake.calls("/content", "GET")
    assert [r.query["variant"] for r in asked] == ["video", "thumbnail", "spritesheet"]
    assert all(r.headers["Authorization"] == f"Bearer {fake.api_key}" for r in asked)
    assert all(r.path == f"/v1/videos/{upstream['id']}/content" for r in asked)
    # the signed URL is on another origin: it never gets the key
    assert fake.cdn_stats.auth_headers == [None, None, None]


async def test_streamed_content_with_range(relay_on: Relay, fake: FakeOpenAI):
    fake.content_mode = "stream"
    video = await relay_on.create()
    await relay_on.wait(video["id"])
    resp = await relay_on.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=100-199"}
    )
    assert resp.status == 206
    assert await resp.read() == VIDEO[100:200]
    assert fake.calls("/content")[0].headers["Range"] == "bytes=100-199"
    assert fake.cdn_stats.requests == 0


async def test_images_go_up_as_typed_file_parts(relay_on: Relay, fake: FakeOpenAI):
    await relay_on.create(input_reference={"image_url": data_url(png(720, 1280))})
    fake.files["frame.webp"] = webp()
    await relay_on.create(image=fake.cdn_url("frame.webp"), size="1280x720")
    first, second = fake.created
    assert first["files"]["input_reference"].content_type == "image/png"
    assert first["files"]["input_reference"].data == png(720, 1280)
    assert second["files"]["input_reference"].content_type == "image/webp"
    assert second["fields"]["size"] == "1280x720"


@pytest.mark.parametrize(
    ("marker", "code", "message"),
    [
        ("#fail", "generation_failed", "internal_error: video generation failed"),
        (
            "#moderation",
            "moderation_blocked",
            "moderation_blocked: the request was blocked by content moderation",
        ),
    ],
)
async def test_failed_videos(relay_on: Relay, marker: str, code: str, message: str):
    video = await relay_on.create(prompt=f"a storm {marker}")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": message}


async def test_reject_is_a_content_policy_400(relay_on: Relay, fake: FakeOpenAI):
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    await no_tasks(relay_on)


async def test_a_size_upstream_refuses_is_a_400_naming_it(relay_on: Relay, fake: FakeOpenAI):
    resp = await relay_on.client.post(
        "/v1/videos", json={"prompt": "x", "size": "1920x1080"}, headers=auth()
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "size")
    await no_tasks(relay_on)


@pytest.mark.parametrize("knob", ["rate_limit_next", "quota_next", "auth_error_next", "unverified"])
async def test_submit_errors_leave_no_task(relay_on: Relay, fake: FakeOpenAI, knob: str):
    if knob == "unverified":
        fake.verified = False
    else:
        getattr(fake, knob)("create")
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    await refused_upstream(resp, rate_limited=knob == "rate_limit_next")
    await no_tasks(relay_on)
    assert fake.videos == {}


async def test_a_5xx_at_create_is_not_retried(relay_on: Relay, fake: FakeOpenAI):
    # the job may exist upstream: the page forbids a retry, so the task fails instead of a 5xx
    fake.server_error_next("create", 500)
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "failed" and body["error"]["code"] == "upstream_error"
    assert len(fake.calls("/v1/videos", "POST")) == 1


@pytest.mark.parametrize("knob", ["rate_limit_next", "server_error_next", "auth_error_next"])
async def test_poll_errors_leave_the_task_running(relay_on: Relay, fake: FakeOpenAI, knob: str):
    video = await relay_on.create()
    getattr(fake, knob)("retrieve")
    getattr(fake, knob)("retrieve")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    assert not fake.answers.queue["retrieve"]


async def test_a_lost_video_expires(relay_on: Relay, fake: FakeOpenAI):
    video = await relay_on.create()
    fake.videos.clear()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "task_expired"


async def test_expired_content_is_a_404(relay_on: Relay, fake: FakeOpenAI):
    video = await relay_on.create()
    await relay_on.wait(video["id"])
    fake.videos.clear()
    resp = await relay_on.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 404
    assert "127.0.0.1" not in (await resp.text())


async def test_unsupported_requests_never_reach_openai(relay_on: Relay, fake: FakeOpenAI):
    for body in (
        {
            "prompt": "x",
            "input_reference": {
                "content": [
                    {
                        "type": "image_url",
                        "role": "first_frame",
                        "image_url": {"url": "https://a.test/1.png"},
                    },
                    {
                        "type": "image_url",
                        "role": "last_frame",
                        "image_url": {"url": "https://a.test/2.png"},
                    },
                ]
            },
        },
        {
            "prompt": "x",
            "input_reference": {
                "content": [{"type": "video_url", "video_url": {"url": "https://a.test/v.mp4"}}]
            },
        },
    ):
        resp = await relay_on.client.post("/v1/videos", json=body, headers=auth())
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert fake.requests == []


async def test_remix_through_the_relay(relay_on: Relay, fake: FakeOpenAI):
    source = await relay_on.create()
    await relay_on.wait(source["id"])
    (upstream_source,) = fake.videos
    resp = await relay_on.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "now at night"}, headers=auth()
    )
    assert resp.status == 200
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    (call,) = fake.calls("/remix", "POST")
    assert call.path == f"/v1/videos/{upstream_source}/remix"  # never the relay's id
    assert call.json() == {"prompt": "now at night"}
    assert (await relay_on.wait(remix["id"]))["status"] == "completed"


async def test_delete_is_best_effort_upstream(relay_on: Relay, fake: FakeOpenAI):
    first = await relay_on.create()
    second = await relay_on.create()
    await relay_on.wait(first["id"])
    await relay_on.wait(second["id"])
    one, two = list(fake.videos)
    resp = await relay_on.client.delete(f"/v1/videos/{first['id']}", headers=auth())
    assert resp.status == 200 and (await resp.json())["deleted"] is True
    assert one not in fake.videos
    fake.server_error_next("delete")
    resp = await relay_on.client.delete(f"/v1/videos/{second['id']}", headers=auth())
    assert resp.status == 200  # the local record goes even when upstream fails
    assert two in fake.videos
    await no_tasks(relay_on)


async def test_official_sdk_flow(relay_on: Relay, fake: FakeOpenAI):
    async with openai.AsyncOpenAI(
        base_url=relay_on.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    ) as sdk:
        video = await sdk.videos.create_and_poll(
            prompt="a lighthouse at dusk",
            model="sora-2",
            seconds="8",
            size="1280x720",
            poll_interval_ms=20,
        )
        assert video.status == "completed" and video.seconds == "8" and video.size == "1280x720"
        assert (await sdk.videos.download_content(video.id)).content == VIDEO
        thumb = await sdk.videos.download_content(video.id, variant="thumbnail")
        assert thumb.content == THUMBNAIL
        uploaded = await sdk.videos.create_and_poll(
            prompt="animate this",
            input_reference=("frame.png", png(720, 1280), "image/png"),
            poll_interval_ms=20,
        )
        assert uploaded.status == "completed"
        remix = await sdk.videos.remix(video.id, prompt="the same, in snow")
        assert remix.remixed_from_video_id == video.id
    assert fake.created[-1]["files"]["input_reference"].content_type == "image/png"


async def test_credentials_never_leak(
    registered: None,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "sk-proj-CANARY-5f2e9a7c1b3d4e6f8a0b"
    upstream = FakeOpenAI(api_key=canary)
    upstream.echo_key = True
    await upstream.start()
    try:
        relay: Relay = await start_relay(
            make_config(channels=[upstream.channel(upstream.base_url)])
        )
        bodies: list[str] = []
        video = await relay.create()
        upstream.server_error_next("retrieve")
        upstream.auth_error_next("retrieve")
        bodies.append(json.dumps(await relay.wait(video["id"])))
        ready(relay)  # the refused poll took the channel out
        resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
        assert await resp.read() == VIDEO
        failed = await relay.create(prompt="x #moderation")
        bodies.append(json.dumps(await relay.wait(failed["id"])))
        for knob in ("rate_limit_next", "quota_next"):
            getattr(upstream, knob)("create")
            resp = await relay.client.post("/v1/videos", json={"prompt": "y"}, headers=auth())
            bodies.append(await resp.text())
            ready(relay)
        resp = await relay.client.post("/v1/videos", json={"prompt": "z #reject"}, headers=auth())
        bodies.append(await resp.text())
        upstream.api_key = "sk-proj-rotated-0000"  # now the canary is refused, and echoed back
        resp = await relay.client.post("/v1/videos", json={"prompt": "w"}, headers=auth())
        bodies.append(await resp.text())
        assert resp.status == 502
        assert canary in upstream.requests[-1].headers["Authorization"]
        logged = logs.text + "".join(str(r.args) for r in logs.records)
        assert "credentials" in logged  # the auth refusal was logged, without the key
        for body in bodies:
            assert canary not in body
        assert canary not in logged
        assert "CANARY" not in logged
    finally:
        await upstream.close()


async def test_hints_without_a_field_are_dropped_and_logged(
    fake: FakeOpenAI, adapter: OpenAIProvider, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, "relay.providers.openai")
    await adapter.submit(req(seed=5, generate_audio=True, negative_prompt="blur"), MODEL)
    assert "dropped negative_prompt, seed, generate_audio" in caplog.text
    assert set(fake.created[0]["fields"]) == {"model", "prompt", "seconds", "size"}


def test_declared_contract():
    assert OpenAIProvider.name == "openai"
    assert OpenAIProvider.features == {"image_input", "remix"}
    assert OpenAIProvider.variants == {"video", "thumbnail", "spritesheet"}
    assert OpenAIProvider.default_base_url == "https://api.openai.com/v1"
    assert set(option_specs(OpenAIProvider.Options)) == {
        "json_create",
        "organization",
        "project",
        "vllm_omni",
        "fields",
    }
    assert OpenAIProvider.result_ttl_s == 3600
    media = req(media=(Media(kind="video", url="https://a.test/v.mp4"),))
    adapter = OpenAIProvider(ChannelView("o", OpenAIOptions(), api_key="k"), None)
    with pytest.raises(ProviderError):
        adapter.check(media, MODEL)
