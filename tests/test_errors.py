"""One error envelope everywhere, an x-request-id on every response, and the submit policy's
statuses (502 / 503 / 500) as clients see them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from relay.config import Config
from relay.domain import TaskRef, VideoRequest
from relay.providers.base import Provider, Submitted, Update
from relay.providers.errors import Unavailable
from tests.conftest import Relay, auth

ENVELOPE_KEYS = {"message", "type", "param", "code"}


async def assert_error(resp: Any, status: int, etype: str, code: str) -> dict[str, Any]:
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["x-request-id"].startswith("req_")
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ENVELOPE_KEYS
    assert body["error"]["type"] == etype
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def test_request_ids_are_unique_and_on_every_response(relay: Relay):
    video = await relay.create()
    await relay.wait(video["id"])
    responses = [
        await relay.client.get("/healthz"),
        await relay.client.get("/v1/models", headers=auth()),
        await relay.client.get(f"/v1/videos/{video['id']}", headers=auth()),
        await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth()),
        await relay.client.head(f"/v1/videos/{video['id']}/content", headers=auth()),
        await relay.client.get("/nowhere"),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)


async def test_routing_errors_use_the_envelope(relay: Relay):
    await assert_error(
        await relay.client.get("/v2/videos"), 404, "invalid_request_error", "not_found"
    )
    err = await assert_error(
        await relay.client.put("/v1/videos", headers=auth()),
        405,
        "invalid_request_error",
        "method_not_allowed",
    )
    assert "PUT" in err["message"]
    resp = await relay.client.patch("/v1/videos/video_x", headers=auth())
    await assert_error(resp, 405, "invalid_request_error", "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


async def test_400_names_the_field(relay: Relay):
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "x", "duration": 5}, headers=auth()
    )
    err = await assert_error(resp, 400, "invalid_request_error", "unsupported_parameter")
    assert err["param"] == "duration" and "seconds" in err["message"]


async def test_401_403_404_415(relay: Relay):
    await assert_error(
        await relay.client.get("/v1/videos"), 401, "authentication_error", "invalid_api_key"
    )
    await assert_error(
        await relay.client.get("/v1/videos", params={"owner": "all"}, headers=auth()),
        403,
        "permission_error",
        "insufficient_permissions",
    )
    await assert_error(
        await relay.client.get("/v1/videos/video_x", headers=auth()),
        404,
        "invalid_request_error",
        "not_found",
    )
    resp = await relay.client.post(
        "/v1/videos", data=b"<xml/>", headers={**auth(), "Content-Type": "application/xml"}
    )
    await assert_error(resp, 415, "invalid_request_error", "unsupported_media_type")


async def test_413(relay: Relay):
    big = b"x" * (30 * 1024 * 1024)  # past the JSON limit: 4/3 of max_media_mb (20) and more
    resp = await relay.client.post(
        "/v1/videos", data=big, headers={**auth(), "Content-Type": "application/json"}
    )
    await assert_error(resp, 413, "invalid_request_error", "request_too_large")


# --- the submit policy as clients see it -----------------------------------------------------


class Broken(Provider[Any]):
    name = "broken"
    credentials = ()
    needs_network = False
    mode: ClassVar[str] = "down"
    submits: ClassVar[int] = 0
    gate: ClassVar[asyncio.Event | None] = None

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        type(self).submits += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.mode == "bug":
            raise RuntimeError("secret-internal-detail")
        if self.mode == "timeout":
            raise Unavailable("the upstream did not answer in time", maybe_created=True)
        raise Unavailable(
            "could not connect to the upstream",
            detail='HTTP 503: {"retry": "https://signed.example/v.mp4?sig=SECRET-SIG"}',
        )

    async def poll(self, task: TaskRef) -> Update:
        return Update(status="in_progress")


@pytest.fixture
async def broken(
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
) -> Relay:
    providers["broken"] = Broken
    Broken.submits = 0
    Broken.gate = None
    config = make_config(channels=[{"name": "b", "provider": "broken", "models": ["sora-2"]}])
    return await start_relay(config)  # type: ignore[no-any-return]


async def test_502_when_every_channel_failed_and_nothing_was_created(
    broken: Relay, logs: pytest.LogCaptureFixture
):
    Broken.mode = "down"
    resp = await broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    error = await assert_error(resp, 502, "server_error", "upstream_error")
    assert "SECRET-SIG" not in error["message"]
    assert "SECRET-SIG" not in logs.text and "signed.example" not in logs.text
    assert "HTTP 503" in logs.text  # the detail is logged, its URL is not
    listing = await (await broken.client.get("/v1/videos", headers=auth())).json()
    assert listing["data"] == []  # the client got an error, not a task


async def test_503_while_the_only_channel_cools_down(broken: Relay):
    Broken.mode = "down"
    for _ in range(3):  # three failures in a row open the channel's breaker
        resp = await broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
        await assert_error(resp, 502, "server_error", "upstream_error")
    Broken.gate = asyncio.Event()
    probe = asyncio.create_task(
        broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    )
    while Broken.submits < 4:  # one request at a time still probes the cooling channel
        await asyncio.sleep(0.01)
    resp = await broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    await assert_error(resp, 503, "server_error", "no_available_channel")
    assert int(resp.headers["Retry-After"]) >= 1
    assert Broken.submits == 4  # the cooling channel was not called again meanwhile
    Broken.gate.set()
    await assert_error(await probe, 502, "server_error", "upstream_error")


async def test_503_when_the_model_has_only_disabled_channels(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {"name": "on", "provider": "demo", "models": ["sora-2"]},
            {"name": "off", "provider": "demo", "models": ["old"], "enabled": False},
        ]
    )
    relay: Relay = await start_relay(config)
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "x", "model": "old"}, headers=auth()
    )
    await assert_error(resp, 503, "server_error", "no_available_channel")


async def test_no_retryable_status_once_a_job_may_exist(broken: Relay):
    Broken.mode = "timeout"
    resp = await broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    assert resp.status == 200  # not 5xx: the SDK would retry and create a second job
    body = await resp.json()
    assert body["status"] == "failed" and body["error"]["code"] == "upstream_error"
    assert Broken.submits == 1


async def test_500_hides_the_bug(broken: Relay, logs: pytest.LogCaptureFixture):
    Broken.mode = "bug"
    resp = await broken.client.post("/v1/videos", json={"prompt": "x"}, headers=auth())
    err = await assert_error(resp, 500, "server_error", "internal_error")
    assert "secret-internal-detail" not in err["message"]
    assert "secret-internal-detail" in logs.text  # the detail is in the log
    assert (await broken.client.get("/v1/videos", headers=auth())).status == 200
