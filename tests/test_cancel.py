"""POST /v1/videos/{id}/cancel through the relay, on the demo provider: every answer of api.md's
Cancel section, the race with a job that just finished, /v1/models' flag, the SDK, the dashboard
route, events, webhooks and the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import openai
import pytest

from relay.config import Config
from relay.domain import VideoRequest
from relay.events import TaskFinished, UpstreamOp
from relay.providers.base import Provider, Submitted
from relay.providers.demo import DemoProvider
from relay.web.keys import EVENTS
from tests.conftest import ALICE, BOB, ROOT, Relay, auth
from tests.dashboard import cookie, start_dash, token
from tests.test_webhooks import SECRET, Receiver

# a poll interval that keeps the poller away for the length of a test: what the task is upstream
# is then only what cancel itself finds out
IDLE_POLLER = {"interval_s": 60, "max_interval_s": 60}


class NoCancelDemo(DemoProvider):
    """The demo, as a provider without a cancel."""

    name = "nocancel"
    features = DemoProvider.features - {"cancel"}


class SlowSubmitDemo(DemoProvider):
    """The demo with a submit that waits for the test, so the task has no upstream id yet."""

    name = "slowsubmit"
    gate: asyncio.Event

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        await type(self).gate.wait()
        return await super().submit(request, model)


@pytest.fixture
def providers(providers: dict[str, type[Provider[Any]]]) -> dict[str, type[Provider[Any]]]:
    return {**providers, "nocancel": NoCancelDemo, "slowsubmit": SlowSubmitDemo}


@pytest.fixture
async def idle(start_relay: Callable[[Config], Any], make_config: Callable[..., Config]) -> Relay:
    """A relay whose demo tasks run 30 s and are not polled during the test."""
    config = make_config(
        polling=IDLE_POLLER,
        channels=[
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2", "demo"],
                "options": {"finish_after_s": 30},
            }
        ],
    )
    return await start_relay(config)  # type: ignore[no-any-return]


async def cancel(relay: Relay, video_id: str, key: str = ALICE) -> tuple[int, dict[str, Any]]:
    resp = await relay.client.post(f"/v1/videos/{video_id}/cancel", headers=auth(key))
    return resp.status, await resp.json()


async def test_cancel_stops_a_running_video(idle: Relay):
    video = await idle.create()
    status, body = await cancel(idle, video["id"])
    assert status == 200, body
    assert body["id"] == video["id"] and body["object"] == "video"
    assert body["status"] == "failed"
    assert body["error"]["code"] == "cancelled"
    assert body["completed_at"] is not None
    assert body["video_url"] is None
    again = await idle.get(video["id"])
    assert again["status"] == "failed" and again["error"]["code"] == "cancelled"
    assert (
        "openai-poll-after-ms"
        not in (await idle.client.get(f"/v1/videos/{video['id']}", headers=auth())).headers
    )


async def test_a_cancelled_video_can_then_be_deleted(idle: Relay):
    video = await idle.create()
    refused = await idle.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    message = (await refused.json())["error"]["message"]
    assert refused.status == 400 and f"/v1/videos/{video['id']}/cancel" in message
    assert (await cancel(idle, video["id"]))[0] == 200
    resp = await idle.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200


async def test_a_finished_video_is_not_active(relay: Relay):
    video = await relay.create()
    done = await relay.wait(video["id"])
    status, body = await cancel(relay, video["id"])
    assert status == 400
    assert body["error"]["code"] == "video_not_active"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "video_id"
    assert await relay.get(video["id"]) == done  # untouched


async def test_a_cancelled_video_is_not_active_any_more(idle: Relay):
    video = await idle.create()
    assert (await cancel(idle, video["id"]))[0] == 200
    status, body = await cancel(idle, video["id"])
    assert status == 400 and body["error"]["code"] == "video_not_active"


async def test_another_users_video_is_not_found(idle: Relay):
    video = await idle.create()
    status, body = await cancel(idle, video["id"], key=BOB)
    assert status == 404 and body["error"]["code"] == "not_found"
    assert (await idle.get(video["id"]))["status"] == "queued"  # untouched
    status, body = await cancel(idle, "video_nope")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_an_admin_may_cancel_anyones_video(idle: Relay):
    video = await idle.create()
    status, body = await cancel(idle, video["id"], key=ROOT)
    assert status == 200 and body["error"]["code"] == "cancelled"


async def test_without_a_key_it_is_401(idle: Relay):
    video = await idle.create()
    resp = await idle.client.post(f"/v1/videos/{video['id']}/cancel")
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "authentication_error"


async def test_a_provider_without_cancel_is_unsupported_and_the_task_runs_on(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    channel = {"name": "plain", "provider": "nocancel", "models": ["sora-2"]}
    relay: Relay = await start_relay(
        make_config(channels=[{**channel, "options": {"finish_after_s": 0.3}}])
    )
    video = await relay.create()
    status, body = await cancel(relay, video["id"])
    assert status == 400
    assert body["error"]["code"] == "unsupported_feature"
    assert "nocancel" in body["error"]["message"]
    assert (await relay.wait(video["id"]))["status"] == "completed"  # it ran on


async def test_the_race_with_a_job_that_just_finished_takes_its_real_outcome(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    # the job ends upstream after 0.2 s, but the relay would poll only a minute later
    relay: Relay = await start_relay(make_config(polling=IDLE_POLLER))
    video = await relay.create()
    failing = await relay.create(prompt="a crash #fail")
    await asyncio.sleep(0.4)
    assert (await relay.get(video["id"]))["status"] != "completed"  # not polled yet
    status, body = await cancel(relay, video["id"])
    assert status == 200, body
    assert body["status"] == "completed" and body["error"] is None
    assert body["progress"] == 100 and body["video_url"]
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200
    status, body = await cancel(relay, failing["id"])
    assert status == 200 and body["status"] == "failed"
    assert body["error"]["code"] == "moderation_blocked"  # its own outcome, not "cancelled"


async def test_a_video_not_yet_submitted_is_refused_until_it_is(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    SlowSubmitDemo.gate = asyncio.Event()
    channel = {"name": "slow", "provider": "slowsubmit", "models": ["sora-2"]}
    relay: Relay = await start_relay(make_config(polling=IDLE_POLLER, channels=[channel]))
    creating = asyncio.ensure_future(relay.create())
    for _ in range(200):
        page = await relay.client.get("/v1/videos", headers=auth())
        listed = (await page.json())["data"]
        if listed:
            break
        await asyncio.sleep(0.01)
    [row] = listed
    status, body = await cancel(relay, row["id"])
    assert status == 400
    assert body["error"]["code"] == "video_not_submitted"
    assert "again" in body["error"]["message"]
    SlowSubmitDemo.gate.set()
    await creating
    status, body = await cancel(relay, row["id"])
    assert status == 200 and body["error"]["code"] == "cancelled"


async def test_models_say_which_can_cancel(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {"name": "demo", "provider": "demo", "models": ["sora-2", "both"]},
            {"name": "plain", "provider": "nocancel", "models": ["plain", "both"]},
        ]
    )
    relay: Relay = await start_relay(config)
    resp = await relay.client.get("/v1/models", headers=auth())
    flags = {m["id"]: m["cancel"] for m in (await resp.json())["data"]}
    # "both" may land on a channel that cannot cancel, so it does not promise one
    assert flags == {"sora-2": True, "plain": False, "both": False}


async def test_dashboard_models_and_cancel_route(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(
        polling=IDLE_POLLER,
        dashboard={"enabled": True},
        channels=[
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2"],
                "options": {"finish_after_s": 30},
            },
            {"name": "plain", "provider": "nocancel", "models": ["plain"]},
        ],
    )
    dash = await start_dash(aiohttp_client, config, providers)
    jwt, session = await dash.signed_in("alice")
    models = await (await dash.client.get("/api/models", headers=token(jwt))).json()
    by_id = {m["id"]: m for m in models["data"]}
    assert by_id["sora-2"]["cancel"] is True and by_id["plain"]["cancel"] is False
    assert "cancel" not in by_id["sora-2"]["features"]
    made = await dash.client.post("/api/videos", json={"prompt": "a kite"}, headers=token(jwt))
    video = await made.json()
    resp = await dash.client.post(f"/api/videos/{video['id']}/cancel", headers=cookie(session))
    body = await resp.json()
    assert resp.status == 200 and body["error"]["code"] == "cancelled"
    # a cookie from another site changes nothing
    other = await dash.client.post("/api/videos", json={"prompt": "a kite"}, headers=token(jwt))
    second = (await other.json())["id"]
    resp = await dash.client.post(
        f"/api/videos/{second}/cancel", headers=cookie(session, "https://evil.test")
    )
    assert resp.status == 403
    resp = await dash.client.post(f"/api/videos/{second}/cancel", headers=token(jwt))
    assert (await resp.json())["error"]["code"] == "cancelled"


async def test_events_metrics_and_log(idle: Relay, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    finished: list[TaskFinished] = []
    ops: list[UpstreamOp] = []
    idle.app[EVENTS].subscribe(TaskFinished, finished.append)
    idle.app[EVENTS].subscribe(UpstreamOp, ops.append)
    video = await idle.create()
    await cancel(idle, video["id"])
    [event] = finished
    assert (event.task_id, event.status, event.error_code) == (video["id"], "failed", "cancelled")
    assert [(o.op, o.error) for o in ops if o.op == "cancel"] == [("cancel", None)]
    resp = await idle.client.get("/metrics", headers=auth(ROOT))
    text = await resp.text()
    assert 'op="cancel"' in text
    assert f"task {video['id']}: cancelled upstream" in caplog.text
    assert ALICE not in caplog.text


async def test_the_sdk_cancels_with_a_raw_post(idle: Relay):
    client = openai.AsyncOpenAI(base_url=idle.base_url, api_key=ALICE, max_retries=0)
    try:
        video = await client.videos.create(prompt="a paper boat")
        cancelled = await client.post(
            f"/videos/{video.id}/cancel", cast_to=openai.types.Video, body={}
        )
        assert cancelled.status == "failed"
        assert cancelled.error is not None and cancelled.error.code == "cancelled"
        fetched = await client.videos.retrieve(video.id)
        assert fetched.status == "failed"
        with pytest.raises(openai.BadRequestError) as refused:
            await client.post(f"/videos/{video.id}/cancel", cast_to=openai.types.Video)
        assert refused.value.code == "video_not_active"
    finally:
        await client.close()


async def test_a_cancelled_video_sends_the_failed_webhook(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    receiver = Receiver()
    await receiver.server.start_server()
    try:
        config = make_config(
            polling=IDLE_POLLER, webhooks=[{"url": receiver.url, "secret": SECRET}]
        )
        relay: Relay = await start_relay(config)
        video = await relay.create()
        await cancel(relay, video["id"])
        await receiver.wait(1)
        [(body, headers)] = receiver.events
        event = openai.OpenAI(api_key="x", webhook_secret=SECRET).webhooks.unwrap(body, headers)
        assert (event.type, event.data.id) == ("video.failed", video["id"])
    finally:
        await receiver.server.close()
