"""Kling: pure translation on the page's recorded bodies, then the relay against the fake."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import Image, Size, TaskRef, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import ChannelView
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from relay.providers.http import ChannelHttp, Reply
from relay.providers.kling import KlingOptions, KlingProvider
from relay.providers.kling.auth import TokenCache, encode
from relay.providers.kling.request import build_request
from relay.providers.kling.response import (
    RESULT_TTL_S,
    classify,
    parse_task,
    task_failure,
    unwrap,
)
from relay.upstream import Http
from tests.conftest import ALICE, Relay, auth, refused_upstream
from tests.fakes.base import VIDEO
from tests.fakes.kling import ACCESS_KEY, SECRET_KEY, FakeKling
from tests.images import data_url, png

FIXTURES = Path(__file__).parent / "fixtures" / "kling"
VECTOR = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJBS1RFU1QiLCJleHAiOjE3MDUzMjE4MDAsIm5iZiI6"
    "MTcwNTMxOTk5NX0.OF79vd6_d5oqQjAerr1ySSs648hiOlEAHkRmdJT-T_0"
)


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job(model: str = "kling-v2-6", **fields: Any) -> tuple[VideoRequest, str]:
    """A request and the upstream model it runs on (the relay maps the public one)."""
    fields.setdefault("prompt", "a paper boat")
    fields.setdefault("seconds", 4)
    fields.setdefault("size", Size(width=1280, height=720))
    return VideoRequest(model=model, **fields), model


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, headers or {}, raw)


def claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]

    return decode(head), decode(payload)


# --- the token ------------------------------------------------------------------------------


def test_jwt_reproduces_the_page_vector():
    assert encode("AKTEST", "SKTEST", exp=1705321800, nbf=1705319995) == VECTOR
    assert TokenCache("AKTEST", "SKTEST", clock=lambda: 1705320000.4).token() == VECTOR


def test_jwt_claims_are_exactly_iss_exp_nbf():
    head, payload = claims(TokenCache("AK", "SK", clock=lambda: 1000.0).token())
    assert head == {"alg": "HS256", "typ": "JWT"}
    assert payload == {"iss": "AK", "exp": 2800, "nbf": 995}


def test_jwt_is_cached_until_a_minute_before_exp():
    clock = [1000.0]
    cache = TokenCache("AK", "SK", clock=lambda: clock[0])
    first = cache.token()
    clock[0] = 1000 + 1800 - 61
    assert cache.token() == first
    clock[0] = 1000 + 1800 - 60
    renewed = cache.token()
    assert renewed != first
    assert claims(renewed)[1] == {"iss": "AK", "exp": 2740 + 1800, "nbf": 2735}
    assert "SK" not in repr(cache)


# --- create bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "seconds", "size", "duration", "mode", "ratio", "reported"),
    [
        ("kling-v2-6", 4, Size(width=1280, height=720), "5", "std", "16:9", "1280x720"),
        ("kling-v2-6", 8, Size(width=720, height=1280), "10", "std", "9:16", "720x1280"),
        ("kling-v2-6", 12, Size(width=720, height=720), "10", "std", "1:1", "720x720"),
        ("kling-v3", 12, Size(width=1280, height=720), "12", "std", "16:9", "1280x720"),
        ("kling-v3", 4, Size(width=720, height=1280), "4", "std", "9:16", "720x1280"),
        ("kling-v3", 60, Size(width=1280, height=720), "15", "std", "16:9", "1280x720"),
        ("kling-v3", 1, Size(width=1280, height=720), "3", "std", "16:9", "1280x720"),
        ("kling-v2-6", 4, Size(width=1920, height=1080), "5", "pro", "16:9", "1920x1080"),
        ("kling-v2-6", 4, Size(width=2160, height=3840), "5", "pro", "9:16", "1080x1920"),
        ("kling-v2-master", 4, Size(width=1920, height=1080), "5", "std", "16:9", "1280x720"),
        ("kling-v2-1-master", 4, Size(width=720, height=1280), "5", "pro", "9:16", "1080x1920"),
        ("kling-v2-5-turbo", 8, Size(width=1000, height=1000), "10", "pro", "1:1", "1080x1080"),
        ("kling-v1", 4, Size(width=1920, height=1080), "5", "std", "16:9", "1280x720"),
        ("kling-v1-6", 4, Size(ratio=(9, 16)), "5", "std", "9:16", "720x1280"),
        ("kling-v2-6", 4, Size(width=2000, height=900), "5", "pro", "16:9", "1920x1080"),
        ("kling-v2-6", 4, Size(width=854, height=480), "5", "std", "16:9", "1280x720"),
    ],
)
def test_text2video_body(
    model: str, seconds: int, size: Size, duration: str, mode: str, ratio: str, reported: str
):
    request = build_request(*job(model=model, seconds=seconds, size=size), "std")
    assert request.family == "text2video"
    assert request.body == {
        "model_name": model,
        "prompt": "a paper boat",
        "mode": mode,
        "duration": duration,
        "aspect_ratio": ratio,
    }
    assert request.seconds == duration
    assert request.size == reported


@pytest.mark.parametrize(
    ("model", "size", "mode", "reported"),
    [
        ("kling-v2-6", Size(ratio=(16, 9)), "pro", "1920x1080"),
        ("kling-v1", Size(ratio=(16, 9)), "pro", "1280x720"),  # v1's pro tier is 720p
        ("kling-v2-master", Size(ratio=(16, 9)), "std", "1280x720"),  # no pro mode at all
    ],
)
def test_the_channel_mode_is_the_default(model: str, size: Size, mode: str, reported: str):
    request = build_request(*job(model=model, size=size), "pro")
    assert request.body["mode"] == mode
    assert request.size == reported


def test_duration_is_a_string_and_nothing_unasked_is_sent():
    body = build_request(*job(seed=7, enhance_prompt=True, person_generation="allow"), "std").body
    assert isinstance(body["duration"], str)
    assert "model" not in body and "cfg_scale" not in body and "seed" not in body


@pytest.mark.parametrize(
    ("model", "audio", "sound"),
    [
        ("kling-v2-6", True, "on"),
        ("kling-v2-6", False, "off"),
        ("kling-v3", True, "on"),
        ("kling-v2-6", None, None),
        ("kling-v2-5-turbo", True, None),
        ("kling-v2-1-master", True, None),
        ("kling-v1", True, None),
    ],
)
def test_sound_only_on_v2_6_and_later(model: str, audio: bool | None, sound: str | None):
    body = build_request(*job(model=model, generate_audio=audio), "std").body
    assert body.get("sound") == sound


def test_negative_prompt_is_passed():
    body = build_request(*job(negative_prompt="blurry"), "std").body
    assert body["negative_prompt"] == "blurry"


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_long_prompts_are_refused(field: str):
    with pytest.raises(Rejected) as caught:
        build_request(*job(**{field: "x" * 2501}), "std")
    assert caught.value.param == field and not caught.value.moderation
    build_request(*job(**{field: "x" * 2500}), "std")


def test_image_url_goes_to_image2video_as_is():
    url = "https://img.example.test/a.png?sig=a%2Fb"
    request = build_request(
        *job(images=(Image(url=url),), size=Size(width=720, height=1280)), "std"
    )
    assert request.family == "image2video"
    assert request.body["image"] == url
    assert "aspect_ratio" not in request.body and "image_tail" not in request.body
    assert request.size == "720x1280"  # the requested shape stands for the image's


def test_image_bytes_become_raw_base64():
    data = png()
    request = build_request(*job(images=(Image(data=data, mime="image/png"),)), "std")
    assert request.body["image"] == base64.b64encode(data).decode()
    assert not request.body["image"].startswith("data:")


@pytest.mark.parametrize(
    "roles", [("first_frame", "last_frame"), (None, None), (None, "last_frame")]
)
def test_last_frame_is_image_tail(roles: tuple[str | None, str | None]):
    images = (
        Image(role=roles[0], url="https://a.test/1.png"),
        Image(role=roles[1], url="https://a.test/2.png"),
    )
    body = build_request(*job(images=images), "std").body
    assert body["image"] == "https://a.test/1.png"
    assert body["image_tail"] == "https://a.test/2.png"


def test_last_frame_alone():
    request = build_request(
        *job(images=(Image(role="last_frame", url="https://a.test/z.png"),)), "std"
    )
    assert request.family == "image2video"
    assert request.body["image_tail"] == "https://a.test/z.png" and "image" not in request.body


def test_metadata_deep_merges_without_controlled_keys():
    metadata = {
        "camera_control": {"type": "simple", "config": {"zoom": 5}},
        "watermark_info": {"enabled": True},
        "external_task_id": "order-17",
        "cfg_scale": 0.3,
        "model_name": "kling-v1",
        "model": "kling-v1",
        "callback_url": "https://evil.test/hook",
        "duration": "10",
        "mode": "pro",
    }
    request = build_request(*job(metadata=metadata), "std")
    body = request.body
    assert body["model_name"] == "kling-v2-6" and "model" not in body
    assert "callback_url" not in body
    assert body["camera_control"] == {"type": "simple", "config": {"zoom": 5}}
    assert body["watermark_info"] == {"enabled": True}
    assert body["external_task_id"] == "order-17"
    assert body["cfg_scale"] == 0.3  # the client's own choice; the relay never adds it
    assert request.seconds == "10" and request.size == "1920x1080"  # what was really sent


def test_metadata_image_tail_loses_its_data_prefix():
    tail = data_url(png())
    body = build_request(*job(metadata={"image_tail": tail}), "std").body
    assert body["image_tail"] == tail.split(",", 1)[1]


def test_image_tail_with_camera_control_is_refused():
    images = (Image(url="https://a.test/1.png"), Image(role="last_frame", url="https://a.test/2"))
    with pytest.raises(Rejected) as caught:
        build_request(
            *job(images=images, metadata={"camera_control": {"type": "down_back"}}), "std"
        )
    assert caught.value.param == "metadata"


def provider(mode: str = "std") -> KlingProvider:
    channel = ChannelView("k", KlingOptions(mode=mode), access_key="AK", secret_key="SK")
    return KlingProvider(channel, None)


def test_check_image_only_models_and_features():
    adapter = provider()
    assert adapter.refusal(*job(model="kling-v2-6")) is None
    adapter.check(*job(model="kling-v2-6"))
    adapter.check(*job(model="kling-v2-1", images=(Image(url="https://a.test/1.png"),)))
    adapter.check(*job(model="kling-v1-5", metadata={"image": "https://a.test/1.png"}))
    with pytest.raises(Unsupported, match="kling-v2-1"):
        adapter.check(*job(model="kling-v2-1"))
    with pytest.raises(Unsupported, match="reference images"):
        adapter.check(*job(images=(Image(role="reference_image", url="https://a.test/1.png"),)))


# --- query answers ----------------------------------------------------------------------------


def data_of(name: str) -> dict[str, Any]:
    return dict(unwrap(reply(200, load(name)), submitting=False))


def test_submitted_is_queued():
    update = parse_task(data_of("query_submitted"))
    assert update.status == "queued" and update.progress == 0 and update.error is None


@pytest.mark.parametrize("name", ["query_processing", "query_processing_empty_result"])
def test_processing_is_in_progress_with_a_time_estimate(name: str):
    update = parse_task(data_of(name))
    assert update.status == "in_progress"
    assert update.progress is None  # Kling gives no percentage: the policy estimates by time
    assert update.completed_at is None and not update.state


def test_succeed_is_completed():
    update = parse_task(data_of("query_succeed"))
    assert update.status == "completed" and update.progress == 100
    assert update.seconds == "5"  # "5.042"
    assert update.completed_at == 1774805159.0  # milliseconds -> seconds
    assert update.expires_at == 1774805159.0 + RESULT_TTL_S
    assert update.state == {
        "video_url": "https://cdn.example-kling.test/bs2/out/867284001234567890.mp4",
        "video_id": "867284001234567890",
    }


def test_failed_is_generation_failed():
    update = parse_task(data_of("query_failed"))
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "generation_failed"
    assert update.error.message == "generation failed, please try again"
    assert update.completed_at == 1774805120.0


def test_risk_control_is_moderation_blocked():
    update = parse_task(data_of("query_moderation"))
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "moderation_blocked"
    assert update.error.message == "content risk control triggered"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("content risk control triggered", "moderation_blocked"),
        ("Output failed the SAFETY check", "moderation_blocked"),
        ("security review failed", "moderation_blocked"),
        ("the image contains Sensitive content", "moderation_blocked"),
        ("violates the usage policy", "moderation_blocked"),
        ("generation failed, please try again", "generation_failed"),
        ("", "generation_failed"),
    ],
)
def test_moderation_keywords(message: str, code: str):
    assert task_failure(message).code == code


@pytest.mark.parametrize("status", ["pending_review", "", None, 3])
def test_unknown_status_keeps_the_previous_one(status: Any):
    data = {**data_of("query_processing"), "task_status": status}
    update = parse_task(data)
    assert update.status is None
    assert update.unknown_status  # the relay notes it once per channel
    if isinstance(status, str) and status:
        assert update.unknown_status == status


@pytest.mark.parametrize("result", [None, {}, {"videos": []}, {"videos": [{"url": ""}]}])
def test_succeed_without_a_url_waits(result: Any):
    data = {**data_of("query_succeed"), "task_result": result}
    update = parse_task(data)
    assert update.status is None
    assert update.unknown_status is None  # a known status: only the file is missing yet


# --- error answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "submitting", "kind", "code"),
    [
        ("not_found", False, TaskNotFound, "task_expired"),
        ("not_found", True, Rejected, "invalid_request"),
        ("token_expired", True, AuthFailed, "upstream_auth_failed"),
        ("bad_signature", False, AuthFailed, "upstream_auth_failed"),
        ("rate_limit", True, RateLimited, "rate_limit_exceeded"),
        ("concurrency", True, RateLimited, "rate_limit_exceeded"),
        ("no_balance", True, QuotaExceeded, "insufficient_quota"),
        ("bad_parameter", True, Rejected, "invalid_request"),
        ("content_policy", True, Rejected, "moderation_blocked"),
        ("internal", True, Unavailable, "upstream_error"),
        ("unavailable", False, Unavailable, "upstream_error"),
        ("timeout", True, Unavailable, "upstream_error"),
    ],
)
def test_page_error_bodies(case: str, submitting: bool, kind: type[ProviderError], code: str):
    recorded = load("errors")[case]
    with pytest.raises(kind) as caught:
        unwrap(reply(recorded["http"], recorded["body"]), submitting=submitting)
    assert caught.value.code == code
    native = recorded["body"]
    assert caught.value.message == f"{native['code']}: {native['message']}"


def test_error_details():
    errors = load("errors")
    bad = classify(
        reply(400, errors["bad_parameter"]["body"]),
        errors["bad_parameter"]["body"],
        submitting=True,
    )
    assert isinstance(bad, Rejected) and bad.param == "seconds"
    limited = classify(
        reply(429, errors["rate_limit"]["body"], {"Retry-After": "7"}),
        errors["rate_limit"]["body"],
        submitting=True,
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    late = classify(
        reply(504, errors["timeout"]["body"]), errors["timeout"]["body"], submitting=True
    )
    assert isinstance(late, Unavailable) and late.maybe_created  # the job may exist after all
    down = classify(
        reply(503, errors["unavailable"]["body"]), errors["unavailable"]["body"], submitting=True
    )
    assert isinstance(down, Unavailable) and not down.maybe_created


@pytest.mark.parametrize(
    ("http", "code", "kind"),
    [
        (401, 1001, AuthFailed),
        (401, 1002, AuthFailed),
        (401, 1003, AuthFailed),
        (429, 1100, AuthFailed),
        (429, 1101, QuotaExceeded),
        (403, 1103, AuthFailed),
        (400, 1200, Rejected),
        (404, 1202, Rejected),
        (400, 1300, Rejected),
        (429, 1304, AuthFailed),
        (200, 1302, RateLimited),  # an error inside an HTTP 200 envelope
        (200, 1201, Rejected),
        (200, 5001, Unavailable),
        (502, None, Unavailable),
        (429, None, RateLimited),
        (403, None, AuthFailed),
        (418, None, Rejected),
    ],
)
def test_every_code_of_the_page(http: int, code: int | None, kind: type[ProviderError]):
    body: Any = {"code": code, "message": "m", "request_id": "r"} if code else b"<html>gw</html>"
    with pytest.raises(kind) as caught:
        unwrap(reply(http, body), submitting=True)
    if code in (1300, 1301):
        assert isinstance(caught.value, Rejected) and caught.value.moderation


def test_a_success_envelope_without_data_is_unconfirmed():
    with pytest.raises(Unavailable) as caught:
        unwrap(reply(200, {"code": 0, "message": "SUCCEED", "request_id": "r"}), submitting=True)
    assert caught.value.maybe_created


def test_submit_answer_parses():
    data = unwrap(reply(200, load("submit")), submitting=True)
    assert data["task_id"] == "867283741759111202"
    assert parse_task(data).status == "queued"


# --- the adapter against the fake, without a relay --------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeKling]:
    upstream = FakeKling()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def adapter(fake: FakeKling) -> AsyncIterator[KlingProvider]:
    http = Http(allow_private_networks=True)
    channel = ChannelView(
        "k",
        KlingOptions(mode="std"),
        base_url=fake.base_url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    yield KlingProvider(channel, ChannelHttp(http, 10))
    await http.close()


def ref(submitted: Any, state: dict[str, Any] | None = None) -> TaskRef:
    return TaskRef(
        id="video_x",
        upstream_id=submitted.upstream_id,
        upstream_model="kling-v2-6",
        state=state or dict(submitted.state),
        submitted_at=0.0,
        seconds=submitted.seconds,
        size=submitted.size,
        status="queued",
    )


async def test_adapter_round_trip_reuses_its_token(fake: FakeKling, adapter: KlingProvider):
    submitted = await adapter.submit(*job())
    assert submitted.state == {"family": "text2video"} and submitted.status == "queued"
    statuses = [(await adapter.poll(ref(submitted))).status for _ in range(3)]
    assert statuses == ["queued", "in_progress", "completed"]
    assert len(set(fake.tokens)) == 1  # one token, reused
    assert fake.claims[0]["iss"] == ACCESS_KEY and set(fake.claims[0]) == {"iss", "exp", "nbf"}
    for recorded in fake.requests:
        assert recorded.headers["Content-Type"] == "application/json"
        assert recorded.headers["Authorization"].startswith("Bearer ey")


async def test_refresh_content_requeries(fake: FakeKling, adapter: KlingProvider):
    submitted = await adapter.submit(*job())
    for _ in range(3):
        done = await adapter.poll(ref(submitted))
    url = done.state["video_url"]
    same = ref(submitted, {**submitted.state, **done.state})
    assert await adapter.refresh_content(same, "video") is None  # nothing fresher to offer
    stale = ref(submitted, {**submitted.state, "video_url": "https://old.test/v.mp4"})
    fresh = await adapter.refresh_content(stale, "video")
    assert fresh is not None and getattr(fresh, "url", None) == url
    assert getattr(fresh, "headers", None) == {}
    fake.tasks.clear()
    assert await adapter.refresh_content(stale, "video") is None


async def test_a_task_is_only_found_under_its_family(fake: FakeKling, adapter: KlingProvider):
    submitted = await adapter.submit(*job(images=(Image(data=png(), mime="image/png"),)))
    assert submitted.state == {"family": "image2video"}
    with pytest.raises(TaskNotFound):
        await adapter.poll(ref(submitted, {"family": "text2video"}))
    assert (await adapter.poll(ref(submitted))).status == "queued"


async def test_fake_refuses_tokens_in_the_page_order(fake: FakeKling):
    import aiohttp

    async def status_of(header: str | None) -> tuple[int, int]:
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Authorization"] = header
        async with (
            aiohttp.ClientSession() as session,
            session.get(fake.url("/v1/videos/text2video/1"), headers=headers) as resp,
        ):
            return resp.status, (await resp.json())["code"]

    now = int(fake.clock())
    good = encode(ACCESS_KEY, SECRET_KEY, now + 1800, now - 5)
    assert await status_of(None) == (401, 1001)
    assert await status_of("") == (401, 1001)
    assert await status_of("Token " + good) == (401, 1002)
    assert await status_of("Bearer  " + good) == (401, 1002)
    assert await status_of("Bearer a.b") == (401, 1002)
    none_alg = encode(ACCESS_KEY, SECRET_KEY, now + 1800, now - 5).replace(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "eyJhbGciOiJub25lIn0"
    )
    assert await status_of("Bearer " + none_alg) == (401, 1002)
    assert await status_of("Bearer " + encode(ACCESS_KEY, SECRET_KEY, now + 1800, now + 60)) == (
        401,
        1003,
    )
    assert await status_of("Bearer " + encode(ACCESS_KEY, SECRET_KEY, now, now - 5)) == (401, 1004)
    # an expired token is reported before a wrong signature
    assert await status_of("Bearer " + encode(ACCESS_KEY, "wrong", now - 1, now - 5)) == (401, 1004)
    assert await status_of("Bearer " + encode(ACCESS_KEY, "wrong", now + 1800, now - 5)) == (
        401,
        1000,
    )
    assert await status_of("Bearer " + encode("AKNOBODY", SECRET_KEY, now + 1800, now - 5)) == (
        401,
        1000,
    )
    assert await status_of("Bearer " + good) == (404, 1203)  # authenticated: unknown task


# --- through the relay ------------------------------------------------------------------------


@pytest.fixture
def kling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "kling", KlingProvider)


@pytest.fixture
async def relay_on(
    kling: None,
    fake: FakeKling,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Relay:
    return await start_relay(make_config(channels=[fake.channel(fake.base_url)]))  # type: ignore[no-any-return]


async def no_tasks(relay: Relay) -> None:
    resp = await relay.client.get("/v1/videos", headers=auth())
    assert (await resp.json())["data"] == []


@pytest.mark.parametrize("pending", ["missing", "empty"])
async def test_create_poll_download(relay_on: Relay, fake: FakeKling, pending: str):
    fake.pending_result = pending
    video = await relay_on.create(model="sora-2")
    assert video["status"] == "queued"
    assert video["seconds"] == "5" and video["size"] == "1080x1920"
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["seconds"] == "5"  # "5.042" from Kling
    assert done["expires_at"] == done["completed_at"] + 30 * 86400
    (task,) = fake.tasks.values()
    assert done["completed_at"] == task.updated_ms // 1000  # Kling's milliseconds, as seconds
    (create,) = fake.creates()
    assert fake.calls(method="POST")[0].path == "/v1/videos/text2video"
    assert create == {
        "model_name": "kling-v2-1-master",
        "prompt": "a paper airplane over a lake",
        "mode": "pro",
        "duration": "5",
        "aspect_ratio": "9:16",
    }
    resp = await relay_on.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200 and await resp.read() == VIDEO
    assert fake.cdn_stats.auth_headers == [None]  # the CDN never sees the upstream token
    resp = await relay_on.client.get(
        f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=auth()
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "variant_not_available"


async def test_image_task_is_polled_under_image2video(relay_on: Relay, fake: FakeKling):
    image = png()
    video = await relay_on.create(
        model="kling-v2-6",
        image=data_url(image),
        seconds="8",
        size="1280x720",
        generate_audio=True,
        seed=3,
    )
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed" and done["seconds"] == "10"
    (create,) = fake.creates()
    assert create["image"] == base64.b64encode(image).decode()
    assert "aspect_ratio" not in create and "seed" not in create
    assert create["sound"] == "on" and create["duration"] == "10"
    assert fake.calls("/v1/videos/image2video", "POST")
    polls = fake.calls(method="GET")
    assert polls and all(p.path.startswith("/v1/videos/image2video/") for p in polls)


async def test_image_url_is_forwarded_not_fetched(relay_on: Relay, fake: FakeKling):
    url = "https://img.example.test/frame.png"
    video = await relay_on.create(model="kling-v2-1", input_reference={"image_url": url})
    assert (await relay_on.wait(video["id"]))["status"] == "completed"
    assert fake.creates()[0]["image"] == url


@pytest.mark.parametrize(
    ("marker", "code", "message"),
    [
        ("#fail", "generation_failed", "generation failed, please try again"),
        ("#moderation", "moderation_blocked", "content risk control triggered"),
    ],
)
async def test_failed_tasks(relay_on: Relay, marker: str, code: str, message: str):
    video = await relay_on.create(prompt=f"a storm {marker}")
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": code, "message": message}
    assert done["completed_at"] is not None and done["expires_at"] is None


async def test_reject_is_a_content_policy_400(relay_on: Relay):
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x #reject"}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    await no_tasks(relay_on)


async def test_bad_parameter_is_a_400_naming_the_field(relay_on: Relay, fake: FakeKling):
    fake.fail_next("submit", 400, 1201, "duration: invalid value")
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["param"] == "seconds" and error["message"] == "1201: duration: invalid value"
    await no_tasks(relay_on)


@pytest.mark.parametrize(
    ("status", "code", "message", "headers"),
    [
        (429, 1302, "request rate over limit", {"Retry-After": "3"}),
        (429, 1303, "parallel task over resource pack limit", {}),
        (429, 1102, "resource pack depleted or expired", {}),
        (500, 5000, "internal error", {}),
        (503, 5001, "service unavailable", {}),
        (401, 1004, "authorization expired", {}),
    ],
)
async def test_submit_errors_leave_no_task(
    relay_on: Relay,
    fake: FakeKling,
    status: int,
    code: int,
    message: str,
    headers: dict[str, str],
):
    fake.fail_next("submit", status, code, message, headers)
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    await refused_upstream(resp, rate_limited=code in (1302, 1303))
    await no_tasks(relay_on)
    assert fake.tasks == {}


async def test_wrong_secret_is_refused_with_no_task(relay_on: Relay, fake: FakeKling):
    fake.keys[ACCESS_KEY] = "rotated-secret"
    resp = await relay_on.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 502
    await no_tasks(relay_on)
    assert [r.path for r in fake.requests] == ["/v1/videos/text2video"]


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (429, 1302, "request rate over limit"),
        (500, 5000, "internal error"),
        (504, 5002, "gateway timeout"),
        (401, 1004, "authorization expired"),
    ],
)
async def test_poll_errors_leave_the_task_running(
    relay_on: Relay, fake: FakeKling, status: int, code: int, message: str
):
    video = await relay_on.create()
    fake.fail_next("query", status, code, message, {"Retry-After": "0"})
    fake.fail_next("query", status, code, message)
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    assert not fake.faults["query"]


async def test_unknown_status_keeps_the_task_going(relay_on: Relay, fake: FakeKling):
    fake.next_statuses = ["under_review", "under_review"]
    video = await relay_on.create()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "completed"
    assert not fake.next_statuses


async def test_lost_task_expires(relay_on: Relay, fake: FakeKling):
    video = await relay_on.create()
    fake.tasks.clear()
    done = await relay_on.wait(video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "task_expired"


async def test_unsupported_requests_never_reach_kling(relay_on: Relay, fake: FakeKling):
    source = await relay_on.create()
    await relay_on.wait(source["id"])
    creates = len(fake.creates())
    resp = await relay_on.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    resp = await relay_on.client.post(
        "/v1/videos", json={"prompt": "x", "model": "kling-v2-1"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    resp = await relay_on.client.post(
        "/v1/videos",
        json={
            "prompt": "x",
            "input_reference": {
                "content": [
                    {
                        "type": "image_url",
                        "role": "reference_image",
                        "image_url": {"url": "https://a.test/r.png"},
                    }
                ]
            },
        },
        headers=auth(),
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unsupported_feature"
    assert len(fake.creates()) == creates


async def test_official_sdk_flow(relay_on: Relay, fake: FakeKling):
    async with openai.AsyncOpenAI(
        base_url=relay_on.base_url,
        api_key=ALICE,
        max_retries=0,
        _strict_response_validation=True,
    ) as sdk:
        # kling-v3 takes 3..15 s, so the SDK's own seconds and sizes come back unchanged
        video = await sdk.videos.create_and_poll(
            prompt="a lighthouse at dusk",
            model="kling-v3",
            seconds="4",
            size="720x1280",
            poll_interval_ms=20,
        )
        assert video.status == "completed" and video.seconds == "4" and video.size == "720x1280"
        content = await sdk.videos.download_content(video.id)
        assert content.content == VIDEO
        uploaded = await sdk.videos.create_and_poll(
            prompt="animate this",
            model="kling-v3",
            seconds="8",
            size="1280x720",
            input_reference=("frame.png", png(), "image/png"),
            poll_interval_ms=20,
        )
        assert uploaded.status == "completed" and uploaded.seconds == "8"
    image_create = fake.creates()[-1]
    assert image_create["image"] == base64.b64encode(png()).decode()
    assert fake.calls("/v1/videos/image2video/", "GET")


async def test_credentials_never_leak(
    kling: None,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    logs: pytest.LogCaptureFixture,
):
    upstream = FakeKling()
    access, secret = "AKCANARY7f3a9c1e", "SKCANARY5d2b8e40-very-secret"
    upstream.keys = {access: secret}
    await upstream.start()
    try:
        channel = {
            **upstream.channel(upstream.base_url),
            "access_key": access,
            "secret_key": secret,
        }
        relay: Relay = await start_relay(make_config(channels=[channel]))
        bodies: list[str] = []
        video = await relay.create()
        upstream.fail_next("query", 500, 5000, "internal error")
        upstream.fail_next("query", 429, 1302, "request rate over limit")
        bodies.append(json.dumps(await relay.wait(video["id"])))
        resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
        assert await resp.read() == VIDEO
        failed = await relay.create(prompt="x #moderation")
        bodies.append(json.dumps(await relay.wait(failed["id"])))
        for status, code, message in (
            (400, 1201, "duration: invalid value"),
            (429, 1102, "resource pack depleted or expired"),
            (401, 1000, "authentication failed"),
        ):
            upstream.fail_next("submit", status, code, message)
            resp = await relay.client.post("/v1/videos", json={"prompt": "y"}, headers=auth())
            bodies.append(await resp.text())
        resp = await relay.client.post("/v1/videos", json={"prompt": "z #reject"}, headers=auth())
        bodies.append(await resp.text())
        assert upstream.tokens
        canaries = [access, secret, *set(upstream.tokens)]
        logged = logs.text + "".join(str(r.args) for r in logs.records)
        assert logs.records, "the canary run should have logged something"
        for canary in canaries:
            for body in bodies:
                assert canary not in body
            assert canary not in logged
    finally:
        await upstream.close()


def test_logs_name_dropped_hints(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, "relay.providers.kling")
    build_request(*job(model="kling-v2-1-master", seed=5, generate_audio=True), "std")
    assert "seed" in caplog.text and "generate_audio" in caplog.text
