"""Webhooks: signed video.completed / video.failed events, verified with the openai SDK's own
verifier, retried until the receiver takes them, and kept across a restart."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import Config
from relay.workers.webhooks import deliveries, signature
from tests.conftest import Relay
from tests.storetools import pending_deliveries

SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes....").decode()


class Receiver:
    def __init__(self) -> None:
        self.events: list[tuple[bytes, dict[str, str]]] = []
        self.fail_next = 0
        self.attempts = 0
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        self.server = TestServer(app, host="127.0.0.1")

    async def hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503)
        self.events.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    async def wait(self, count: int, timeout: float = 10) -> None:
        for _ in range(int(timeout / 0.02)):
            if len(self.events) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.events)} of {count} events arrived")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start_server()
    yield r
    await r.server.close()


@pytest.fixture
def hooked(make_config: Callable[..., Config], receiver: Receiver) -> Config:
    return make_config(webhooks=[{"url": receiver.url, "secret": SECRET}])


def test_signature_matches_the_standard_webhooks_scheme():
    sig = signature(SECRET, "evt_1", 1700000000, '{"a":1}')
    client = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": sig}
    with pytest.raises(openai.InvalidWebhookSignatureError, match="too old"):
        client.webhooks.verify_signature('{"a":1}', headers)  # right form, old timestamp
    assert sig.startswith("v1,")
    plain = signature("not-prefixed", "e", 1, "b")  # a secret without whsec_ is used as bytes
    assert plain != signature("not-prefixed", "e", 1, "c")


def test_only_terminal_statuses_make_events():
    from relay.config import Webhook

    hooks = [Webhook("https://a.test/h", "s"), Webhook("https://b.test/h", "s")]
    assert deliveries("video_1", "in_progress", hooks, 1.0) == []
    assert deliveries("video_1", "completed", [], 1.0) == []
    rows = deliveries("video_1", "failed", hooks, 1.0)
    assert [r.url for r in rows] == ["https://a.test/h", "https://b.test/h"]
    assert rows[0].event_id == rows[1].event_id  # one event, sent to each hook


async def test_completed_and_failed_events_verify_with_the_sdk(
    hooked: Config, start_relay: Callable[[Config], Any], receiver: Receiver
):
    relay: Relay = await start_relay(hooked)
    ok = await relay.create()
    bad = await relay.create(prompt="nope #fail")
    await receiver.wait(2)
    client = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    seen = {}
    for body, headers in receiver.events:
        event = client.webhooks.unwrap(body, headers)  # checks the signature and the timestamp
        seen[event.data.id] = event.type
        assert event.id.startswith("evt_") and headers["webhook-id"] == event.id
    assert seen == {ok["id"]: "video.completed", bad["id"]: "video.failed"}
    # the receiver records an event before it answers; the outbox row goes once the answer is in
    for _ in range(250):
        if await pending_deliveries(relay.store) == 0:
            break
        await asyncio.sleep(0.02)
    assert await pending_deliveries(relay.store) == 0


async def test_a_tampered_body_fails_verification(
    hooked: Config, start_relay: Callable[[Config], Any], receiver: Receiver
):
    relay: Relay = await start_relay(hooked)
    await relay.create()
    await receiver.wait(1)
    body, headers = receiver.events[0]
    client = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.verify_signature(body.replace(b"completed", b"failed"), headers)


async def test_a_failing_receiver_gets_retries(
    hooked: Config,
    start_relay: Callable[[Config], Any],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr("relay.workers.webhooks.FIRST_RETRY_S", 0.05)
    receiver.fail_next = 2
    relay: Relay = await start_relay(hooked)
    video = await relay.create()
    await receiver.wait(1)
    assert receiver.attempts == 3
    assert f'"id":"{video["id"]}"' in receiver.events[0][0].decode()


async def test_events_survive_a_restart(
    hooked: Config, start_relay: Callable[[Config], Any], receiver: Receiver
):
    receiver.fail_next = 1000  # the receiver is down
    first: Relay = await start_relay(hooked)
    video = await first.create()
    await first.wait(video["id"])
    for _ in range(100):
        if receiver.attempts:
            break
        await asyncio.sleep(0.02)
    assert await pending_deliveries(first.store) == 1
    await first.client.close()
    receiver.fail_next = 0  # back up
    second: Relay = await start_relay(hooked)
    # the retry is due in 5 s; nudge the sender instead of waiting for it
    await second.store.retry_delivery(1, 0.0, "test")
    second.sender.wake()
    await receiver.wait(1)
    assert video["id"] in receiver.events[0][0].decode()


async def test_secret_never_logged(
    hooked: Config, start_relay: Callable[[Config], Any], receiver: Receiver, logs: Any
):
    receiver.fail_next = 1
    relay: Relay = await start_relay(hooked)
    await relay.create()
    await asyncio.sleep(0.5)
    assert SECRET not in logs.text and SECRET[6:] not in logs.text
