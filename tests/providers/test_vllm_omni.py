"""A local vLLM-Omni server through the `openai` adapter (`options = { vllm_omni = true }`):
translation on the page's recorded bodies, the adapter against the fake, then the relay."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Remote, Size, TaskRef, VideoRequest
from relay.errors import ConfigError
from relay.policy import ChannelEffect
from relay.providers.base import ChannelView, Submitted
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
    VariantUnavailable,
)
from relay.providers.http import ChannelHttp
from relay.providers.openai import OpenAIOptions, OpenAIProvider
from relay.providers.openai.response import is_failed_video
from relay.providers.openai.vllm_omni import (
    create_fields,
    duration,
    form_pairs,
    frame_size,
    vllm_classify,
)
from relay.upstream import Http
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.vllm_omni import OOM, SERVED, FakeVllmOmni
from tests.images import data_url, png
from tests.storetools import copies_of

FIXTURES = Path(__file__).parent / "fixtures" / "vllm_omni"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def req(**fields: Any) -> VideoRequest:
    fields.setdefault("model", "sora-2")
    fields.setdefault("prompt", "a mountain lake at sunrise")
    fields.setdefault("seconds", 5)
    fields.setdefault("size", Size(width=1280, height=720))
    return VideoRequest(**fields)


def view(
    base_url: str | None = None, api_key: str | None = None, **options: Any
) -> ChannelView[OpenAIOptions]:
    return ChannelView(
        "vllm",
        OpenAIOptions(**{"vllm_omni": True, **options}),
        base_url=base_url,
        api_key=api_key,
    )


OFFLINE = OpenAIProvider(view("http://127.0.0.1:8091/v1"), None)


# --- answers --------------------------------------------------------------------------------


def test_create_answer_is_queued_and_its_echo_is_not_trusted():
    update = OFFLINE.parse(load("create"), {})
    assert (update.status, update.progress, update.size) == ("queued", None, "1280x720")
    assert update.seconds is None  # frames are seconds x fps: submit works the duration out
    assert update.expires_at is None


def test_running_progress_is_left_to_the_estimate():
    update = OFFLINE.parse(load("retrieve_in_progress"), {})
    assert (update.status, update.progress) == ("in_progress", None)


def test_completed_keeps_its_times_and_no_expiry():
    update = OFFLINE.parse(load("retrieve_completed"), {})
    assert (update.status, update.progress) == ("completed", 100)
    assert update.completed_at == 1785301452 and update.expires_at is None


def test_a_failed_poll_body_is_the_jobs_outcome():
    body = load("retrieve_failed")
    assert is_failed_video(body)
    update = OFFLINE.parse(body, {})
    assert update.status == "failed" and update.error is not None
    assert update.error.code == "generation_failed"
    assert update.error.message == OOM  # the message, without the status as a prefix


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_request"),
        (422, "invalid_request"),
        (500, "generation_failed"),
        (503, "upstream_error"),
        (507, "generation_failed"),
    ],
)
def test_failed_job_codes(status: int, code: str):
    body = load("retrieve_failed")
    body["error"]["code"] = status
    update = OFFLINE.parse(body, {})
    assert update.error is not None and update.error.code == code


@pytest.mark.parametrize(
    "fixture", ["not_found_detail", "not_found_envelope", "unauthorized", "retrieve_completed"]
)
def test_only_a_failed_video_object_is_a_job_failure(fixture: str):
    assert not is_failed_video(load(fixture))


@pytest.mark.parametrize(
    ("fixture", "status", "phase", "kind", "code"),
    [
        ("unauthorized", 401, "create", AuthFailed, "upstream_auth_failed"),
        ("unauthorized", 401, "poll", AuthFailed, "upstream_auth_failed"),
        ("not_found_detail", 404, "poll", TaskNotFound, "task_expired"),
        ("not_found_envelope", 404, "poll", TaskNotFound, "task_expired"),
        ("not_found_detail", 404, "delete", TaskNotFound, "task_expired"),
        ("model_mismatch", 400, "create", Rejected, "invalid_request"),
        ("both_references", 400, "create", Rejected, "invalid_request"),
        ("invalid_json_field", 400, "create", Rejected, "invalid_request"),
        ("invalid_seconds_422", 422, "create", Rejected, "invalid_request"),
        ("invalid_seconds_envelope", 400, "create", Rejected, "invalid_request"),
        ("missing_prompt_422", 422, "create", Rejected, "invalid_request"),
        ("missing_prompt_422", 400, "create", Rejected, "invalid_request"),
        ("not_initialized", 503, "create", RateLimited, "rate_limit_exceeded"),
        ("not_initialized", 503, "poll", RateLimited, "rate_limit_exceeded"),
        ("cancel_in_progress", 409, "delete", Unavailable, "upstream_error"),
        ("output_not_available", 409, "delete", Unavailable, "upstream_error"),
        ("content_in_progress", 404, "content", TaskNotFound, "task_expired"),
    ],
)
def test_page_error_bodies(
    fixture: str, status: int, phase: Any, kind: type[ProviderError], code: str
):
    error = vllm_classify(status, load(fixture), {}, phase, "detail")
    assert type(error) is kind
    assert error.code == code


def test_error_texts_from_every_envelope():
    lost = vllm_classify(404, load("not_found_detail"), {}, "poll", "d")
    assert "restarted" in lost.message
    refused = vllm_classify(401, load("unauthorized"), {}, "create", "d")
    assert "Unauthorized" in refused.message
    invalid = vllm_classify(422, load("invalid_seconds_422"), {}, "create", "d")
    assert isinstance(invalid, Rejected) and invalid.param == "seconds"
    assert "seconds: String should match pattern" in invalid.message
    mismatch = vllm_classify(400, load("model_mismatch"), {}, "create", "d")
    assert "Model mismatch" in mismatch.message
    created = vllm_classify(502, None, {}, "create", "d")  # a proxy in front: the job may exist
    assert isinstance(created, Unavailable) and created.maybe_created


# --- requests -------------------------------------------------------------------------------


def test_extension_fields_are_flat_form_fields():
    fields = create_fields(
        req(
            negative_prompt="blur",
            seed=7,
            generate_audio=False,
            metadata={
                "num_inference_steps": 40,
                "guidance_scale": 5.0,
                "lora": {"name": "style", "scale": 0.8},
                "extra_params": {"shift": [1, 2]},
                "enable_frame_interpolation": True,
                "model": "ignored",
            },
        ),
        None,
        5,
        "1280x720",
        {},
        has_file=False,
    )
    assert form_pairs(fields) == [
        ("prompt", "a mountain lake at sunrise"),
        ("seconds", "5"),
        ("size", "1280x720"),
        ("negative_prompt", "blur"),
        ("seed", "7"),
        ("generate_sound", "false"),
        ("num_inference_steps", "40"),
        ("guidance_scale", "5.0"),
        ("lora", '{"name":"style","scale":0.8}'),
        ("extra_params", '{"shift":[1,2]}'),
        ("enable_frame_interpolation", "true"),
    ]


def test_pinned_fields_win_and_the_file_is_the_reference():
    fields = create_fields(
        req(metadata={"fps": 30, "input_reference": {"image_url": "https://x"}, "seed": 1}),
        SERVED,
        8,
        "1280x720",
        {"fps": 16, "num_frames": 81},
        has_file=True,
    )
    assert fields == {
        "model": SERVED,
        "prompt": "a mountain lake at sunrise",
        "seconds": "8",
        "size": "1280x720",
        "seed": 1,
        "fps": 16,
        "num_frames": 81,
    }


@pytest.mark.parametrize(
    ("extra", "seconds"),
    [
        ({}, "8"),
        ({"num_frames": 81, "fps": 16}, "5"),  # Wan 2.2's tuned clip
        ({"num_frames": 121}, "5"),  # the server's default 24 fps
        ({"num_frames": "49", "fps": "8"}, "6"),
        ({"num_frames": 3, "fps": 24}, "1"),
        ({"num_frames": "many"}, "8"),
    ],
)
def test_duration_follows_the_frames(extra: dict[str, Any], seconds: str):
    assert duration({"seconds": "8", **extra}) == seconds


def test_width_and_height_override_size():
    assert frame_size({"size": "1280x720"}) == "1280x720"
    assert frame_size({"size": "1280x720", "width": 832, "height": "480"}) == "832x480"


# --- config ---------------------------------------------------------------------------------


def test_a_vllm_channel_needs_no_key(make_config: Callable[..., Config]):
    channel = {
        "name": "vllm",
        "provider": "openai",
        "base_url": "http://127.0.0.1:8091/v1",
        "models": ["sora-2"],
        "options": {"vllm_omni": True},
    }
    config = make_config(channels=[channel])
    assert config.channels[0].api_key is None
    with pytest.raises(ConfigError) as info:
        make_config(channels=[{**channel, "options": {}}])
    assert "channels[0].api_key" in str(info.value)
    assert OpenAIProvider.credentials_needed({"vllm_omni": True}) == ()
    assert OpenAIProvider.credentials_needed({}) == ("api_key",)


def test_declared_per_channel():
    assert OFFLINE.features == {"image_input", "cancel"}  # DELETE stops a running job
    assert OFFLINE.variants == {"video"}
    assert not OFFLINE.can_remix(SERVED)
    assert OFFLINE.typical_run_s >= 120
    plain = OpenAIProvider(ChannelView("o", OpenAIOptions(), api_key="k"), None)
    assert plain.features == {"image_input", "remix"}
    assert plain.variants == {"video", "thumbnail", "spritesheet"}


# --- the adapter against the fake, without a relay --------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeVllmOmni]:
    upstream = FakeVllmOmni()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    outbound = Http(allow_private_networks=False)  # the channel's own base_url is trusted anyway
    yield outbound
    await outbound.close()


def adapter_for(
    fake: FakeVllmOmni, http: Http, api_key: str | None = None, **options: Any
) -> OpenAIProvider:
    return OpenAIProvider(view(fake.base_url + "/v1", api_key, **options), ChannelHttp(http, 10))


def ref(submitted: Submitted) -> TaskRef:
    return TaskRef(
        id="video_relay",
        upstream_id=submitted.upstream_id,
        upstream_model=SERVED,
        state=dict(submitted.state),
        submitted_at=0.0,
        seconds=submitted.seconds,
        size=submitted.size,
        status="queued",
    )


async def test_adapter_round_trip_without_a_key(fake: FakeVllmOmni, http: Http):
    adapter = adapter_for(fake, http, fields={"fps": 16, "num_frames": 81})
    submitted = await adapter.submit(
        req(seconds=8, images=(Image(data=png(), mime="image/png"),)), "sora-2"
    )
    assert submitted.upstream_id.startswith("video_gen_")
    assert (submitted.seconds, submitted.size, submitted.status) == ("5", "1280x720", "queued")
    (create,) = fake.created
    assert "model" not in create["fields"]  # an unmapped public name is not the served one
    assert create["fields"]["num_frames"] == "81" and create["fields"]["fps"] == "16"
    upload = create["files"]["input_reference"]
    assert (upload.content_type, upload.data) == ("image/png", png())
    running = await adapter.poll(ref(submitted))
    assert (running.status, running.progress) == ("in_progress", None)
    done = await adapter.poll(ref(submitted))
    assert (done.status, done.progress, done.expires_at) == ("completed", 100, None)
    source = await adapter.content(ref(submitted), "video")
    assert isinstance(source, Remote) and source.trusted
    assert source.url == f"{fake.base_url}/v1/videos/{submitted.upstream_id}/content"
    assert source.headers == {}
    with pytest.raises(VariantUnavailable):
        await adapter.content(ref(submitted), "thumbnail")
    assert all("Authorization" not in r.headers for r in fake.requests)


async def test_a_mapped_model_is_sent_and_json_is_never(fake: FakeVllmOmni, http: Http):
    adapter = adapter_for(fake, http, json_create=True)
    await adapter.submit(req(), SERVED)
    (create,) = fake.created
    assert create["fields"]["model"] == SERVED
    assert fake.requests[0].headers["Content-Type"].startswith("multipart/form-data")


async def test_a_key_is_sent_when_configured(fake: FakeVllmOmni, http: Http):
    fake.api_key = "vllm-secret-key"
    with pytest.raises(AuthFailed):
        await adapter_for(fake, http).submit(req(), "sora-2")
    submitted = await adapter_for(fake, http, api_key="vllm-secret-key").submit(req(), "sora-2")
    assert submitted.upstream_id
    assert fake.requests[-1].headers["Authorization"] == "Bearer vllm-secret-key"


async def test_a_failed_job_polls_as_failed(fake: FakeVllmOmni, http: Http):
    adapter = adapter_for(fake, http)
    submitted = await adapter.submit(req(prompt="too big #fail"), "sora-2")
    await adapter.poll(ref(submitted))
    failed = await adapter.poll(ref(submitted))
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.error.message) == ("generation_failed", OOM)


async def test_delete_retries_a_conflict_once(fake: FakeVllmOmni, http: Http):
    adapter = adapter_for(fake, http)
    adapter.delete_retry_s = 0.0
    first = await adapter.submit(req(), "sora-2")
    fake.delete_conflicts = 1
    await adapter.delete(ref(first))
    assert first.upstream_id not in fake.videos
    second = await adapter.submit(req(), "sora-2")
    fake.delete_conflicts = 2
    with pytest.raises(Unavailable):
        await adapter.delete(ref(second))
    assert len(fake.calls(f"/v1/videos/{second.upstream_id}", "DELETE")) == 2
    await adapter.delete(ref(first))  # gone already: nothing to do


async def test_remix_never_calls_the_server(fake: FakeVllmOmni, http: Http):
    adapter = adapter_for(fake, http)
    submitted = await adapter.submit(req(), "sora-2")
    with pytest.raises(Unsupported):
        await adapter.remix(ref(submitted), req(prompt="again"), "sora-2")
    assert len(fake.requests) == 1


# --- through the relay ------------------------------------------------------------------------


async def start(
    fake: FakeVllmOmni,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    *,
    storage: dict[str, Any] | None = None,
    **channel: Any,
) -> Relay:
    config = make_config(
        # the guard stays on for client URLs; the channel's loopback base_url is the operator's
        server={"allow_private_networks": False},
        storage=storage or {"keep_videos": False},
        channels=[fake.channel(fake.base_url, **channel)],
    )
    return await start_relay(config)  # type: ignore[no-any-return]


@pytest.fixture
async def relay_on(
    fake: FakeVllmOmni, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    return await start(
        fake, start_relay, make_config, options={"fields": {"fps": 16, "num_frames": 81}}
    )


async def test_create_poll_content_on_loopback(relay_on: Relay, fake: FakeVllmOmni):
    video = await relay_on.create(model="sora-2", seconds="8", size="1280x720")
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "5", "1280x720")
    done = await relay_on.wait(video["id"])
    assert (done["status"], done["progress"], done["expires_at"]) == ("completed", 100, None)
    assert done["seconds"] == "5"  # 81 frames at 16 fps, not the echo's 8
    (create,) = fake.created
    assert create["fields"]["model"] == SERVED  # the channel's model_map
    resp = await relay_on.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=100-199"}
    )
    assert resp.status == 206
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO[100:200]
    full = await relay_on.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert await full.read() == VIDEO
    asked = fake.calls("/content", "GET")
    assert [r.query for r in asked] == [{}, {}]  # never ?variant=
    assert asked[0].headers["Range"] == "bytes=100-199"
    before = len(fake.requests)
    thumb = await relay_on.client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert thumb.status == 404
    assert (await thumb.json())["error"]["code"] == "variant_not_available"
    assert len(fake.requests) == before
    assert all("Authorization" not in r.headers for r in fake.requests)


async def test_the_guard_still_holds_for_client_urls(relay_on: Relay, fake: FakeVllmOmni):
    fake.files["frame.png"] = png()
    resp = await relay_on.client.post(
        "/v1/videos",
        json={"prompt": "x", "input_reference": {"image_url": fake.cdn_url("frame.png")}},
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["param"] == "input_reference"
    assert "127.0.0.1" not in json.dumps(body)
    assert fake.created == []


async def test_images_go_up_as_a_file_part(relay_on: Relay, fake: FakeVllmOmni):
    await relay_on.create(input_reference={"image_url": data_url(png(1280, 720))}, size="16:9")
    (create,) = fake.created
    assert create["files"]["input_reference"].content_type == "image/png"
    assert create["files"]["input_reference"].data == png(1280, 720)
    assert not any(name.startswith("input_reference[") for name in create["fields"])


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "generation_failed"), (503, "upstream_error"), (422, "invalid_request")],
)
async def test_a_failed_job_is_a_failed_video(
    relay_on: Relay, fake: FakeVllmOmni, status: int, code: str
):
    fake.failure_status = status
    video = await relay_on.create(prompt="too long #fail")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": OOM}
    (upstream_id,) = fake.videos
    # two polls: running, then the failure; no retry loop on the error status
    await asyncio.sleep(0.3)
    assert len(fake.calls(f"/v1/videos/{upstream_id}", "GET")) == fake.polls_to_finish
    resp = await relay_on.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "video_failed"


async def test_a_restart_fails_the_running_jobs_as_expired(relay_on: Relay, fake: FakeVllmOmni):
    video = await relay_on.create()
    fake.restart()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "task_expired"
    assert "restarted" in done["error"]["message"]
    assert "127.0.0.1" not in done["error"]["message"]


async def test_a_kept_copy_outlives_a_restart(
    fake: FakeVllmOmni, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    relay = await start(fake, start_relay, make_config, storage={"keep_videos": True})
    video = await relay.create()
    assert (await relay.wait(video["id"]))["status"] == "completed"
    for _ in range(500):
        copies = await copies_of(relay.store, video["id"])
        if [c.state for c in copies] == ["stored"]:  # the MP4 only: there is no thumbnail
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the copy never finished")
    fake.restart()
    resp = await relay.client.get(
        f"/v1/videos/{video['id']}/content", headers={**auth(), "Range": "bytes=-100"}
    )
    assert resp.status == 206 and await resp.read() == VIDEO[-100:]
    assert (await relay.get(video["id"]))["expires_at"] is None


async def test_remix_is_unsupported_before_any_call(relay_on: Relay, fake: FakeVllmOmni):
    source = await relay_on.create()
    await relay_on.wait(source["id"])
    before = len(fake.requests)
    resp = await relay_on.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.requests) == before


async def test_a_model_mismatch_is_a_400_and_an_operator_log(
    fake: FakeVllmOmni,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    relay = await start(fake, start_relay, make_config, model_map={"sora-2": "Wan-AI/Other"})
    resp = await relay.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400, body
    assert "Model mismatch" in body["error"]["message"]
    assert "another model than model_map names" in logs.text
    assert fake.base_url not in logs.text and fake.base_url not in json.dumps(body)
    resp = await relay.client.get("/v1/videos", headers=auth())
    assert (await resp.json())["data"] == []


async def test_a_loading_server_is_retry_later(relay_on: Relay, fake: FakeVllmOmni):
    fake.ready = False
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    await refused_upstream(resp, rate_limited=True)
    assert fake.created == []


async def test_delete_reaches_the_server(relay_on: Relay, fake: FakeVllmOmni):
    video = await relay_on.create()
    await relay_on.wait(video["id"])
    (upstream_id,) = fake.videos
    resp = await relay_on.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200 and (await resp.json())["deleted"] is True
    assert fake.calls(f"/v1/videos/{upstream_id}", "DELETE")
    assert fake.videos == {}


async def test_official_sdk_flow(relay_on: Relay, fake: FakeVllmOmni):
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
        assert video.status == "completed" and video.seconds == "5" and video.size == "1280x720"
        assert video.expires_at is None
        assert (await sdk.videos.download_content(video.id)).content == VIDEO
        with pytest.raises(openai.NotFoundError):
            await sdk.videos.download_content(video.id, variant="thumbnail")
        uploaded = await sdk.videos.create_and_poll(
            prompt="animate this",
            input_reference=("frame.png", png(1280, 720), "image/png"),
            poll_interval_ms=20,
        )
        assert uploaded.status == "completed"
        with pytest.raises(openai.BadRequestError):
            await sdk.videos.remix(video.id, prompt="the same, in snow")
        failed = await sdk.videos.create_and_poll(prompt="boom #fail", poll_interval_ms=20)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.code == "generation_failed"
    assert fake.created[1]["files"]["input_reference"].content_type == "image/png"


async def test_a_configured_key_never_leaks(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "vllm-CANARY-7d3e9f1a2b4c6d8e0f"
    upstream = FakeVllmOmni(api_key=canary)
    upstream.echo_key = True
    await upstream.start()
    try:
        relay = await start(upstream, start_relay, make_config)
        bodies: list[str] = []
        video = await relay.create()
        upstream.fail_next("retrieve", 401, {"error": f"Unauthorized: Bearer {canary}"})
        bodies.append(json.dumps(await relay.wait(video["id"])))
        for channel in relay.runtime.channels:  # the refused poll took the channel out
            relay.runtime.channels.record(channel, ChannelEffect.ALIVE)
        resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
        assert await resp.read() == VIDEO
        failed = await relay.create(prompt=f"x #fail {canary[:4]}")
        bodies.append(json.dumps(await relay.wait(failed["id"])))
        upstream.fail_next("create", 400, {"detail": f"Model mismatch: key {canary}"})
        resp = await relay.client.post("/v1/videos", json={"prompt": "y"}, headers=auth())
        bodies.append(await resp.text())
        upstream.api_key = "vllm-rotated-0000"  # the canary is refused now, and echoed back
        resp = await relay.client.post("/v1/videos", json={"prompt": "w"}, headers=auth())
        bodies.append(await resp.text())
        assert resp.status == 502
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {canary}"
        logged = logs.text + "".join(str(r.args) for r in logs.records)
        assert "credentials" in logged
        for body in bodies:
            assert canary not in body
            assert upstream.base_url not in body
        assert canary not in logged and "CANARY-7d3e" not in logged
    finally:
        await upstream.close()


async def test_hints_without_a_field_are_still_dropped(
    fake: FakeVllmOmni, http: Http, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, "relay.providers.openai")
    await adapter_for(fake, http).submit(req(seed=5, enhance_prompt=True), "sora-2")
    assert "dropped enhance_prompt" in caplog.text
    assert fake.created[0]["fields"]["seed"] == "5"
