"""compat-relay: the gateways' deviations on the page's recorded bodies, then the relay against a
fake new-api gateway."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Remote, Size, TaskRef, VideoRequest
from relay.policy import ChannelEffect
from relay.providers import REGISTRY
from relay.providers.base import ChannelView, PollRules, Submitted, now
from relay.providers.compat_relay import CompatRelayOptions, CompatRelayProvider
from relay.providers.compat_relay.models import STATUS_WORDS
from relay.providers.compat_relay.request import form_create, json_create
from relay.providers.compat_relay.response import (
    classify,
    embedded_error,
    gateway_update,
    result_url,
    route_missing,
    status_of,
    task_id,
)
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
    VariantUnavailable,
)
from relay.providers.http import ChannelHttp
from relay.upstream import Http
from tests.conftest import ALICE, Relay, auth
from tests.fakes.base import THUMBNAIL_JPEG, VIDEO
from tests.fakes.compat_relay import SYNONYMS, FakeCompatRelay
from tests.images import data_url, png
from tests.storetools import update_task

FIXTURES = Path(__file__).parent / "fixtures" / "compat_relay"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


MODEL = "wan2.2-t2v-plus"  # the upstream model the pure functions and the adapter are given


def req(**fields: Any) -> VideoRequest:
    fields.setdefault("model", "sora-2")
    fields.setdefault("prompt", "a paper boat")
    fields.setdefault("seconds", 5)
    fields.setdefault("size", Size(width=1280, height=720))
    return VideoRequest(**fields)


# --- requests -------------------------------------------------------------------------------


def test_json_create_passes_urls_and_metadata_through():
    body = json_create(
        req(
            images=(Image(url="https://img.test/a.png"),),
            seed=7,
            negative_prompt="blur",
            generate_audio=True,
            metadata={"parameters": {"seed": 7}, "model": "x", "callback_url": "https://cb"},
        ),
        MODEL,
        5,
        "1280x720",
    )
    assert body == {
        "model": "wan2.2-t2v-plus",
        "prompt": "a paper boat",
        "seconds": "5",
        "size": "1280x720",
        "input_reference": {"image_url": "https://img.test/a.png"},
        "metadata": {"parameters": {"seed": 7}},  # the gateway's own field, not merged
    }


def test_form_create_carries_metadata_as_json():
    pairs = form_create(req(metadata={"parameters": {"seed": 7}}), MODEL, 5, "1280x720")
    assert pairs == [
        ("model", "wan2.2-t2v-plus"),
        ("prompt", "a paper boat"),
        ("seconds", "5"),
        ("size", "1280x720"),
        ("metadata", '{"parameters":{"seed":7}}'),
    ]
    assert ("metadata", "{}") not in form_create(req(), MODEL, 5, "1280x720")


# --- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"), [(w, s) for s, words in STATUS_WORDS.items() for w in words]
)
def test_every_status_word_of_the_page(word: str, status: str):
    assert status_of(word)[1] == status
    assert status_of(f" {word.upper()} ")[1] == status  # lowered and stripped first


def note(word: Any) -> CompatRelayProvider:
    """Two polls' answers with this status word, noted as the relay notes them."""
    adapter = CompatRelayProvider(ChannelView("g", CompatRelayOptions(), api_key="k"), None)
    for _ in range(2):
        update = gateway_update({"task_id": "t", "status": word})
        if update.unknown_status:
            adapter.note_unknown_status(update.unknown_status)
    return adapter


@pytest.mark.parametrize("word", ["unknown", "UNKNOWN", "", None])
def test_unknown_keeps_the_previous_status(word: Any, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, "relay.providers")
    assert status_of(word)[1] is None
    assert gateway_update({"task_id": "t", "status": word}).unknown_status is None
    note(word)
    assert "unknown upstream status" not in caplog.text  # expected, so not news


def test_other_words_are_kept_and_logged_once(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, "relay.providers")
    assert status_of("under_review_compat")[1] is None
    assert status_of("under_review_compat")[1] is None
    update = gateway_update({"task_id": "t", "status": " Under_Review_Compat "})
    assert update.status is None and update.unknown_status == "under_review_compat"
    note("under_review_compat")
    assert caplog.text.count("'under_review_compat'") == 1


@pytest.mark.parametrize(
    ("progress", "expected"), [(30, 30), ("30%", 30), (0, 1), ("99.5", 95), (None, None)]
)
def test_running_progress(progress: Any, expected: int | None):
    update = gateway_update({**load("retrieve_running"), "progress": progress})
    assert update.status == "in_progress" and update.progress == expected


def test_create_answers():
    assert task_id(load("create")) == "task_3fK9aQ2mZpL0xYb7Rt5vWc8dNe1sHu4g"
    assert task_id({"task_id": "vt_8812", "status": "queued"}) == "vt_8812"
    assert task_id({"task_id": 8812}) == "8812"
    assert task_id({"code": "success", "data": {"task_id": "t1"}}) == "t1"
    assert task_id(load("task_not_exist")) is None
    assert gateway_update(load("create")).status == "queued"


def test_unknown_right_after_create_is_not_finished():
    update = gateway_update(load("retrieve_unknown"))
    assert update.status is None and update.completed_at is None and update.error is None


def test_running_ignores_its_completed_at():
    update = gateway_update(load("retrieve_running"))
    assert update.status == "in_progress" and update.completed_at is None
    assert update.state == {}


def test_completed_with_metadata_url():
    update = gateway_update(load("retrieve_completed"))
    assert update.status == "completed"
    assert update.completed_at == 1757000210
    assert update.expires_at == 1757000210 + 3600  # no expires_at from the gateway: 1 h
    assert update.state == {"url": load("retrieve_completed")["metadata"]["url"]}
    assert update.seconds is None and update.size is None  # the relay keeps what it asked


def test_another_gateways_shape():
    update = gateway_update(load("other_gateway"), received_at=1757000300.0)
    assert update.status == "completed"
    assert update.completed_at == 1757000300.0  # none given: when the relay saw it
    assert update.expires_at == 1757086400
    assert update.state == {
        "url": "https://cdn.example.net/v/8812.mp4",
        "thumbnail_url": "https://cdn.example.net/v/8812.jpg",
    }


def test_milliseconds_and_sizes():
    body = {
        **load("retrieve_completed"),
        "completed_at": 1757000210000,
        "seconds": "5.04",
        "size": "1280x720",
    }
    update = gateway_update(body)
    assert update.completed_at == 1757000210 and update.seconds == "5"
    assert update.size == "1280x720"


def test_result_url_fallback_chain():
    body: dict[str, Any] = {
        "metadata": {"url": "https://a.test/1"},
        "video_url": "https://a.test/2",
        "url": "https://a.test/3",
        "output": {"video_url": "https://a.test/4"},
        "data": {"url": "https://a.test/5"},
    }
    seen = []
    for key in ("metadata", "video_url", "url", "output", "data"):
        seen.append(result_url(body))
        body.pop(key)
    assert seen == [f"https://a.test/{i}" for i in range(1, 6)]
    assert result_url(body) is None
    assert result_url({"metadata": {"url": ""}, "url": "not a url"}) is None


def test_failed_with_a_numeric_code_is_moderation():
    update = gateway_update(load("retrieve_failed"))
    assert update.status == "failed" and update.error is not None
    assert update.error.code == "moderation_blocked"
    assert update.error.message == "1027: output new_sensitive"
    assert update.progress is None and update.completed_at is None


@pytest.mark.parametrize(
    ("status", "error", "code", "message"),
    [
        ("failed", {"code": "", "message": "task failed"}, "generation_failed", "task failed"),
        (
            "error",
            {"code": "", "message": "DataInspectionFailed: bad"},
            "moderation_blocked",
            "DataInspectionFailed: bad",
        ),
        ("FAILURE", "Risk Not Pass", "moderation_blocked", "Risk Not Pass"),
        ("cancelled", None, "cancelled", "the gateway reported the job as cancelled"),
        ("expired", {"code": "1026", "message": "x"}, "task_expired", "1026: x"),
        (
            "fail",
            {"code": "InternalError", "message": "oops"},
            "generation_failed",
            "InternalError: oops",
        ),
    ],
)
def test_failures(status: str, error: Any, code: str, message: str):
    update = gateway_update({"task_id": "t", "status": status, "error": error})
    assert update.status == "failed" and update.error is not None
    assert (update.error.code, update.error.message) == (code, message)


def test_the_older_envelope():
    done = gateway_update(load("generations_success"))
    assert done.status == "completed" and done.completed_at == 1757000210
    assert done.state == {"url": "https://cdn.example.net/xxx.mp4"}
    failed = gateway_update(load("generations_failure"))
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "moderation_blocked" and failed.error.message == "Risk Not Pass"
    running = gateway_update(
        {"code": "success", "data": {"status": "IN_PROGRESS", "progress": "30%"}}
    )
    assert (running.status, running.progress) == ("in_progress", 30)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status", "phase", "kind", "code"),
    [
        ("error_auth_openai", 401, "create", AuthFailed, "upstream_auth_failed"),
        ("error_auth_task", 401, "poll", AuthFailed, "upstream_auth_failed"),
        ("error_auth_task", 403, "create", AuthFailed, "upstream_auth_failed"),
        ("error_rate_limit", 429, "create", RateLimited, "rate_limit_exceeded"),
        ("error_rate_limit", 429, "poll", RateLimited, "rate_limit_exceeded"),
        ("error_bad_request", 400, "create", Rejected, "invalid_request"),
        ("error_fail_to_fetch", 400, "create", Rejected, "invalid_request"),
        ("error_fail_to_fetch", 503, "create", Unavailable, "upstream_error"),
        ("error_fail_to_fetch", 401, "create", Unavailable, "upstream_error"),
        ("error_moderation", 400, "create", Rejected, "moderation_blocked"),
        ("error_quota", 403, "create", QuotaExceeded, "insufficient_quota"),
        ("error_quota", 429, "create", QuotaExceeded, "insufficient_quota"),
        ("task_not_exist", 400, "poll", TaskNotFound, "task_expired"),
        ("content_not_found", 404, "poll", TaskNotFound, "task_expired"),
        ("content_fetch_failed", 502, "poll", Unavailable, "upstream_error"),
        ("content_not_ready", 400, "remix", Rejected, "invalid_request"),
        ("error_bad_request", 413, "create", Rejected, "invalid_request"),
        ("error_bad_request", 200, "create", Rejected, "invalid_request"),  # inside a 200
        ("error_rate_limit", 200, "create", RateLimited, "rate_limit_exceeded"),
        ("task_not_exist", 200, "poll", TaskNotFound, "task_expired"),
    ],
)
def test_page_error_bodies(
    fixture: str, status: int, phase: Any, kind: type[ProviderError], code: str
):
    error = classify(status, load(fixture), {"Retry-After": "2"}, phase, "d")
    assert type(error) is kind
    assert error.code == code
    if isinstance(error, RateLimited):
        assert error.retry_after == 2.0


def test_messages_name_the_native_error_never_a_raw_body():
    moderated = classify(400, load("error_moderation"), {}, "create", "d")
    assert moderated.message == (
        "fail_to_fetch_task: InputTextSensitiveContentDetected: Input text may contain "
        "sensitive information"
    )
    refused = classify(400, load("error_fail_to_fetch"), {}, "create", "d")
    assert refused.message == "fail_to_fetch_task: InvalidParameter: size is not supported"
    raw = {"code": "fail_to_fetch_task", "message": "<html>bad gateway</html>", "data": None}
    assert classify(400, raw, {}, "create", "d").message == (
        "fail_to_fetch_task: the backing provider refused the job (HTTP 400)"
    )
    assert classify(400, load("error_bad_request"), {}, "create", "d").message == (
        "invalid_request: prompt is required"
    )


def test_5xx_on_create_may_have_created_the_job():
    created = classify(500, load("error_fail_to_fetch"), {}, "create", "d")
    assert isinstance(created, Unavailable) and created.maybe_created
    polled = classify(500, None, {}, "poll", "d")
    assert isinstance(polled, Unavailable) and not polled.maybe_created
    missing = classify(404, None, {}, "create", "d")  # no /videos route: nothing was created
    assert isinstance(missing, Unavailable) and not missing.maybe_created


def test_error_envelopes_inside_a_200_and_router_404s():
    assert not embedded_error(load("create"))
    assert not embedded_error(load("generations_success"))
    assert not embedded_error(load("other_gateway"))
    for name in ("task_not_exist", "error_bad_request", "error_auth_openai", "content_not_found"):
        assert embedded_error(load(name)), name
    assert route_missing(404, None) and route_missing(405, {})
    assert not route_missing(404, load("content_not_found"))
    assert not route_missing(400, None)


# --- the adapter against the fake, without a relay --------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeCompatRelay]:
    upstream = FakeCompatRelay()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    outbound = Http(allow_private_networks=True)
    yield outbound
    await outbound.close()


def make_adapter(fake: FakeCompatRelay, http: Http, remix: bool = False) -> CompatRelayProvider:
    channel = ChannelView(
        "g", CompatRelayOptions(remix=remix), base_url=fake.base_url + "/v1", api_key=fake.token
    )
    return CompatRelayProvider(channel, ChannelHttp(http, 10))


@pytest.fixture
def adapter(fake: FakeCompatRelay, http: Http) -> CompatRelayProvider:
    return make_adapter(fake, http)


def ref(submitted: Submitted, state: dict[str, Any] | None = None, age: float = 0) -> TaskRef:
    return TaskRef(
        id="video_relay",
        upstream_id=submitted.upstream_id,
        upstream_model="wan2.2-t2v-plus",
        state=state if state is not None else dict(submitted.state),
        submitted_at=now() - age,
        seconds=submitted.seconds,
        size=submitted.size,
        status="queued",
    )


async def finish(adapter: CompatRelayProvider, task: TaskRef) -> dict[str, Any]:
    state = dict(task.state)
    for _ in range(10):
        update = await adapter.poll(TaskRef(**{**task.__dict__, "state": state}))
        state.update(update.state)
        if update.status == "completed":
            return state
    raise AssertionError("never completed")


async def test_task_not_exist_grace(fake: FakeCompatRelay, adapter: CompatRelayProvider):
    # the adapter classifies task_not_exist as not found; the grace after create is the
    # relay's, from the rules the adapter declares (tested through the relay below)
    rules = CompatRelayProvider.poll_rules
    assert rules == PollRules(not_found_window_s=30.0, not_found_backoff=(2.0, 3.0, 5.0, 5.0))
    fake.missing_polls = 6
    submitted = await adapter.submit(req(), MODEL)
    for _ in range(5):
        with pytest.raises(TaskNotFound):
            await adapter.poll(ref(submitted))
    with pytest.raises(TaskNotFound):  # past the first 30 s: the same answer
        await adapter.poll(ref(submitted, {}, age=31))
    found = await adapter.poll(ref(submitted, {}))
    assert found.status is None and found.state == {}  # "unknown": nothing of the grace kept


async def test_older_route_is_the_fallback(fake: FakeCompatRelay, adapter: CompatRelayProvider):
    fake.videos_route = False
    submitted = await adapter.submit(req(), MODEL)
    first = await adapter.poll(ref(submitted))
    assert first.state == {"route": "generations"}
    state = await finish(adapter, ref(submitted, dict(first.state)))
    assert state["url"].startswith(fake.cdn_url(f"{submitted.upstream_id}.mp4"))
    direct = fake.calls(f"/v1/videos/{submitted.upstream_id}", "GET")
    assert len(direct) == 1  # tried once, then only the older route
    assert len(fake.calls("/v1/video/generations/")) >= 3


async def test_content_prefers_the_gateway_then_the_direct_url(
    fake: FakeCompatRelay, adapter: CompatRelayProvider
):
    submitted = await adapter.submit(req(), MODEL)
    early = Remote(
        f"{fake.base_url}/v1/videos/{submitted.upstream_id}/content", headers=adapter.auth_headers()
    )
    assert not await adapter.serves(early)  # the gateway says 400 until the job is done
    assert fake.calls("/content")  # it was asked
    state = await finish(adapter, ref(submitted))
    task = ref(submitted, state)
    proxied = await adapter.content(task, "video")
    assert isinstance(proxied, Remote) and proxied.trusted
    assert proxied.url == f"{fake.base_url}/v1/videos/{submitted.upstream_id}/content"
    assert proxied.headers == {"Authorization": f"Bearer {fake.token}"}
    assert fake.calls("/content")[-1].headers["Range"] == "bytes=0-0"  # a probe, not a download
    fake.content_fails = True
    direct = await adapter.content(task, "video")
    assert isinstance(direct, Remote) and direct.url == state["url"]
    assert direct.headers == {} and not direct.trusted
    fake.content_fails, fake.content_route = False, False
    assert (await adapter.content(task, "video")).url == state["url"]  # type: ignore[union-attr]
    no_direct = await adapter.content(ref(submitted, {}), "video")
    assert no_direct.url == proxied.url  # type: ignore[union-attr]


async def test_refresh_content_asks_for_a_fresh_url(
    fake: FakeCompatRelay, adapter: CompatRelayProvider
):
    submitted = await adapter.submit(req(), MODEL)
    state = await finish(adapter, ref(submitted))
    fresh = await adapter.refresh_content(ref(submitted, {"url": "https://old.test/x"}), "video")
    assert isinstance(fresh, Remote) and fresh.url.startswith(
        fake.cdn_url(f"{submitted.upstream_id}.mp4")
    )
    assert fresh.url != state["url"]  # signed again
    fake.tasks.clear()
    assert await adapter.refresh_content(ref(submitted, state, age=60), "video") is None


async def test_thumbnail_only_from_thumbnail_url(
    fake: FakeCompatRelay, adapter: CompatRelayProvider
):
    submitted = await adapter.submit(req(), MODEL)
    state = await finish(adapter, ref(submitted))
    with pytest.raises(VariantUnavailable):
        await adapter.content(ref(submitted, state), "thumbnail")
    with pytest.raises(VariantUnavailable):
        await adapter.content(ref(submitted, state), "spritesheet")
    fake.result_shape = "video_url"
    other = await adapter.submit(req(), MODEL)
    state = await finish(adapter, ref(other))
    thumb = await adapter.content(ref(other, state), "thumbnail")
    assert isinstance(thumb, Remote) and thumb.url == fake.cdn_url(f"{other.upstream_id}.jpg")
    assert thumb.content_type == "image/jpeg" and thumb.headers == {}


async def test_remix_only_with_the_option(fake: FakeCompatRelay, http: Http):
    plain = make_adapter(fake, http)
    assert "remix" not in plain.features
    assert "remix" in CompatRelayProvider.features
    submitted = await plain.submit(req(size=Size(width=720, height=1280)), "sora-2")
    with pytest.raises(Unsupported):
        await plain.remix(ref(submitted), req(prompt="again"), "sora-2")
    assert not fake.calls("/remix")
    willing = make_adapter(fake, http, remix=True)
    assert "remix" in willing.features
    state = await finish(willing, ref(submitted))
    remix = await willing.remix(ref(submitted, state), req(prompt="again"), "sora-2")
    assert remix.upstream_id in fake.tasks
    assert fake.calls(f"/v1/videos/{submitted.upstream_id}/remix", "POST")


async def test_delete_is_local_only(fake: FakeCompatRelay, adapter: CompatRelayProvider):
    submitted = await adapter.submit(req(), MODEL)
    before = len(fake.requests)
    await adapter.delete(ref(submitted))
    assert len(fake.requests) == before


# --- through the relay ------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "compat-relay", CompatRelayProvider)


@pytest.fixture
async def start_on(
    registered: None,
    fake: FakeCompatRelay,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Callable[..., Any]:
    async def start(**extra: Any) -> Relay:
        channel = fake.channel(fake.base_url, **extra)
        return await start_relay(make_config(channels=[channel]))  # type: ignore[no-any-return]

    return start


@pytest.fixture
async def relay_on(start_on: Callable[..., Any]) -> Relay:
    return await start_on()  # type: ignore[no-any-return]


def ready(relay: Relay) -> None:
    """Undo the pause an upstream error put on the channels, so the next call goes out."""
    for channel in relay.runtime.channels:
        relay.runtime.channels.record(channel, ChannelEffect.ALIVE)


async def no_tasks(relay: Relay) -> None:
    resp = await relay.client.get("/v1/videos", headers=auth())
    assert (await resp.json())["data"] == []


async def download(relay: Relay, video_id: str, variant: str = "video") -> tuple[int, bytes]:
    resp = await relay.client.get(
        f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
    )
    return resp.status, await resp.read()


async def test_create_poll_download(relay_on: Relay, fake: FakeCompatRelay):
    video = await relay_on.create(
        model="sora-2", seconds="5", size="16:9", metadata={"parameters": {"seed": 7}}
    )
    assert (video["status"], video["seconds"], video["size"]) == ("queued", "5", "1280x720")
    (create,) = fake.created
    assert create["content_type"] == "application/json"
    assert create["fields"] == {
        "model": "wan2.2-t2v-plus",
        "prompt": "a paper airplane over a lake",
        "seconds": "5",
        "size": "1280x720",
        "metadata": {"parameters": {"seed": 7}},
    }
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["seconds"], done["size"]) == ("5", "1280x720")
    assert done["expires_at"] == done["completed_at"] + 3600
    assert await download(relay_on, video["id"]) == (200, VIDEO)
    (task,) = fake.tasks
    downloads = [r for r in fake.calls(f"/v1/videos/{task}/content") if "Range" not in r.headers]
    assert len(downloads) == 1
    assert downloads[0].headers["Authorization"] == f"Bearer {fake.token}"
    assert fake.cdn_stats.requests == 0
    status, _ = await download(relay_on, video["id"], "thumbnail")
    assert status == 404  # this gateway gave no thumbnail_url


async def test_another_gateways_words_and_shapes(relay_on: Relay, fake: FakeCompatRelay):
    fake.words = SYNONYMS
    fake.id_shape = "task_id"
    fake.result_shape = "video_url"
    fake.progress_text = True
    fake.polls_to_finish = 3
    video = await relay_on.create()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    (task,) = fake.tasks.values()
    assert done["expires_at"] == task["completed_at"] + 86400  # the gateway's own expires_at
    assert await download(relay_on, video["id"], "thumbnail") == (200, THUMBNAIL_JPEG)
    assert fake.cdn_stats.auth_headers == [None]  # a direct URL gets no key


async def test_direct_url_when_the_gateway_cannot_proxy(relay_on: Relay, fake: FakeCompatRelay):
    fake.content_route = False
    video = await relay_on.create()
    await relay_on.wait(video["id"])
    assert await download(relay_on, video["id"]) == (200, VIDEO)
    assert fake.cdn_stats.auth_headers == [None]


async def test_an_older_gateway_is_polled_on_its_route(relay_on: Relay, fake: FakeCompatRelay):
    fake.videos_route = False
    video = await relay_on.create()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    assert await download(relay_on, video["id"]) == (200, VIDEO)


async def test_image_bytes_go_as_multipart(relay_on: Relay, fake: FakeCompatRelay):
    await relay_on.create(
        input_reference={"image_url": data_url(png())}, metadata={"parameters": {"seed": 7}}
    )
    await relay_on.create(image="https://img.test/frame.png")
    upload, linked = fake.created
    assert upload["content_type"] == "multipart/form-data"
    assert upload["files"]["input_reference"].content_type == "image/png"
    assert upload["files"]["input_reference"].data == png()
    assert upload["fields"]["metadata"] == {"parameters": {"seed": 7}}
    assert linked["content_type"] == "application/json"
    assert linked["fields"]["input_reference"] == {"image_url": "https://img.test/frame.png"}


@pytest.mark.parametrize(
    ("marker", "code", "message"),
    [
        ("#fail", "generation_failed", "task failed: generation error"),
        ("#moderation", "moderation_blocked", "1027: output new_sensitive"),
    ],
)
async def test_failed_tasks(relay_on: Relay, marker: str, code: str, message: str):
    video = await relay_on.create(prompt=f"a storm {marker}")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": message}
    assert done["completed_at"] is not None


async def test_reject_is_a_content_policy_400(relay_on: Relay, fake: FakeCompatRelay):
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "content_policy_violation"
    assert "InputTextSensitiveContentDetected" in error["message"]
    await no_tasks(relay_on)


@pytest.mark.parametrize(
    ("knob", "envelope"),
    [
        ("rate_limit_next", ""),
        ("quota_next", ""),
        ("auth_error_next", "openai"),
        ("auth_error_next", "task"),
    ],
)
async def test_submit_errors_leave_no_task(
    relay_on: Relay, fake: FakeCompatRelay, knob: str, envelope: str
):
    fake.auth_envelope = envelope or fake.auth_envelope
    getattr(fake, knob)("create")
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    if knob == "rate_limit_next":  # every channel rate limited: nothing made, a retry is safe
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
    else:
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == "upstream_error"
    await no_tasks(relay_on)
    assert fake.tasks == {}


async def test_a_5xx_at_create_is_not_retried(relay_on: Relay, fake: FakeCompatRelay):
    fake.server_error_next("create", 502)
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "failed"
    assert body["error"]["code"] == "upstream_error"
    assert len(fake.calls("/v1/videos", "POST")) == 1


@pytest.mark.parametrize("knob", ["rate_limit_next", "server_error_next", "auth_error_next"])
async def test_poll_errors_leave_the_task_running(
    relay_on: Relay, fake: FakeCompatRelay, knob: str
):
    fake.auth_envelope = "task"
    video = await relay_on.create()
    getattr(fake, knob)("retrieve")
    getattr(fake, knob)("retrieve")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    assert not fake.answers.queue["retrieve"]


async def test_a_task_not_stored_yet_is_waited_for(
    relay_on: Relay, fake: FakeCompatRelay, monkeypatch: pytest.MonkeyPatch
):
    # the relay applies the adapter's PollRules (short waits here, the same rule)
    rules = PollRules(not_found_window_s=30.0, not_found_backoff=(0.05, 0.05, 0.05, 0.05))
    monkeypatch.setattr(CompatRelayProvider, "poll_rules", rules)
    fake.missing_polls = 3
    video = await relay_on.create()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed", done
    (task,) = fake.tasks
    assert len(fake.calls(f"/v1/videos/{task}", "GET")) >= 4  # three misses, then found


async def test_a_task_the_gateway_lost_expires(relay_on: Relay, fake: FakeCompatRelay):
    video = await relay_on.create()
    # past the grace period for a task the gateway has not stored yet
    await update_task(relay_on.store, video["id"], {"submitted_at": now() - 60})
    fake.tasks.clear()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "task_expired"


async def test_remix_needs_the_option(start_on: Callable[..., Any], fake: FakeCompatRelay):
    relay: Relay = await start_on(model_map={})  # sora-2 runs on the gateway's sora backend
    source = await relay.create()
    await relay.wait(source["id"])
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert not fake.calls("/remix")


async def test_remix_with_the_option(start_on: Callable[..., Any], fake: FakeCompatRelay):
    relay: Relay = await start_on(model_map={}, options={"remix": True})
    source = await relay.create()
    await relay.wait(source["id"])
    (upstream_source,) = fake.tasks
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 200
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    (call,) = fake.calls("/remix", "POST")
    assert call.path == f"/v1/videos/{upstream_source}/remix"
    assert (await relay.wait(remix["id"]))["status"] == "completed"


async def test_delete_never_calls_the_gateway(relay_on: Relay, fake: FakeCompatRelay):
    video = await relay_on.create()
    await relay_on.wait(video["id"])
    resp = await relay_on.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    assert not fake.calls(method="DELETE")
    await no_tasks(relay_on)


async def test_official_sdk_flow(relay_on: Relay, fake: FakeCompatRelay):
    fake.words = SYNONYMS
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
        assert video.status == "completed" and video.seconds == "8"
        assert (await sdk.videos.download_content(video.id)).content == VIDEO
        uploaded = await sdk.videos.create_and_poll(
            prompt="animate this",
            input_reference=("frame.png", png(), "image/png"),
            poll_interval_ms=20,
        )
        assert uploaded.status == "completed"
    assert fake.created[-1]["files"]["input_reference"].data == png()


async def test_credentials_never_leak(
    registered: None,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    canary = "sk-CANARY-gw-9d1c7e3a5b2f4068"
    upstream = FakeCompatRelay(token=canary)
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
        assert await download(relay, video["id"]) == (200, VIDEO)
        failed = await relay.create(prompt="x #moderation")
        bodies.append(json.dumps(await relay.wait(failed["id"])))
        echo = {"code": "invalid_request", "message": f"bad token {canary}", "data": None}
        upstream.fail_next("create", 400, echo)
        resp = await relay.client.post("/v1/videos", json={"prompt": "y"}, headers=auth())
        bodies.append(await resp.text())
        for knob in ("rate_limit_next", "quota_next", "auth_error_next"):
            ready(relay)
            getattr(upstream, knob)("create")
            resp = await relay.client.post("/v1/videos", json={"prompt": "y"}, headers=auth())
            bodies.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "z #reject"}, headers=auth())
        bodies.append(await resp.text())
        logged = logs.text + "".join(str(r.args) for r in logs.records)
        assert "credentials" in logged
        for body in bodies:
            assert canary not in body
        assert canary not in logged and "CANARY" not in logged
    finally:
        await upstream.close()
