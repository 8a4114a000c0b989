"""One contract suite over every registered provider: each runs against its fake (the demo needs
none) through a real relay, and must behave the same to a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port

from relay.app import create_app
from relay.config import Config
from relay.domain import FEATURES
from relay.providers import REGISTRY
from tests.conftest import Relay, auth
from tests.fakes import fake_class
from tests.fakes.base import VIDEO, FakeUpstream
from tests.images import png

FAKES: dict[str, type[FakeUpstream]] = {
    name: fake_class(name) for name, cls in REGISTRY.items() if cls.needs_network
}
# servers a registered provider reaches with an option: {fake name: its registry name}
FLAVOURS: dict[str, str] = {"vllm-omni": "openai", "dashscope-wan27": "dashscope"}
NORMALIZED_CODES = {
    "upstream_auth_failed",
    "insufficient_quota",
    "rate_limit_exceeded",
    "invalid_request",
    "moderation_blocked",
    "task_expired",
    "cancelled",
    "upstream_error",
    "generation_failed",
    "upstream_timeout",
}


def test_every_registered_provider_is_in_the_suite():
    assert set(REGISTRY) == {"demo", *FAKES}
    assert all(fake.name == name for name, fake in FAKES.items())


class Upstream:
    def __init__(self, provider: str, relay: Relay, fake: FakeUpstream | None) -> None:
        self.provider = FLAVOURS.get(provider, provider)  # the registry name
        self.relay = relay
        self.fake = fake
        (channel,) = relay.runtime.channels
        self.features = channel.adapter.features  # as the channel's options made them

    def upstream_calls(self) -> int:
        return len(self.fake.requests) if self.fake else 0


@pytest.fixture(params=sorted(["demo", *FAKES, *FLAVOURS]))
async def upstream(
    request: pytest.FixtureRequest,
    aiohttp_client: Callable[..., Any],
    providers: dict[str, Any],
    make_config: Callable[..., Config],
) -> AsyncIterator[Upstream]:
    provider: str = request.param
    fake = None
    if provider == "demo":
        channel: dict[str, Any] = {
            "name": "demo",
            "provider": "demo",
            "models": ["sora-2"],
            "options": {"finish_after_s": 0.2},
        }
    else:
        fake = fake_class(provider)()
        channel = fake.channel(await fake.start())
    # public_url is the relay's own address: a fake that fetches inputs by URL (as DashScope's
    # Wan 2.7 media) gets what the relay hosts from there
    port = unused_port()
    server = {"public_url": f"http://127.0.0.1:{port}"}
    config = make_config(server=server, storage={"keep_videos": False}, channels=[channel])
    app = create_app(config, providers=providers)
    relay = Relay(await aiohttp_client(TestServer(app, host="127.0.0.1", port=port)))
    yield Upstream(provider, relay, fake)
    if fake is not None:
        await fake.close()


async def test_create_poll_complete_content(upstream: Upstream):
    relay = upstream.relay
    video = await relay.create(prompt="a quiet harbour at dawn")
    assert video["status"] == "queued" and video["model"] == "sora-2"
    done = await relay.wait(video["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100 and done["error"] is None
    assert done["completed_at"] is not None
    assert done["seconds"].isdigit() and "x" in done["size"]
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert await resp.read() == VIDEO


async def test_failed_task_has_a_normalized_code(upstream: Upstream):
    relay = upstream.relay
    marker = "#fail" if upstream.provider == "demo" else "#moderation"
    video = await relay.create(prompt=f"something blocked {marker}")
    done = await relay.wait(video["id"])
    assert done["status"] == "failed"
    moderates = upstream.fake is None or getattr(upstream.fake, "moderates", True)
    assert done["error"]["code"] == ("moderation_blocked" if moderates else "generation_failed")
    assert done["error"]["message"]
    if upstream.provider != "demo":
        generic = await relay.create(prompt="this breaks #fail")
        done = await relay.wait(generic["id"])
        assert done["status"] == "failed"
        assert done["error"]["code"] in NORMALIZED_CODES
    resp = await relay.client.get(f"/v1/videos/{video['id']}/content", headers=auth())
    assert resp.status == 404


async def test_unsupported_feature_is_400_before_any_upstream_call(upstream: Upstream):
    relay = upstream.relay
    missing = sorted(FEATURES - upstream.features)
    if not missing:
        pytest.skip(f"{upstream.provider} supports every feature")
    requests = {
        "image_input": {"input_reference": {"image_url": "https://img.example.test/a.png"}},
        "last_frame": {
            "input_reference": {
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.example.test/a.png"},
                        "role": "first_frame",
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.example.test/b.png"},
                        "role": "last_frame",
                    },
                ]
            }
        },
        "reference_images": {
            "input_reference": {
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.example.test/a.png"},
                        "role": "reference_image",
                    }
                ]
            }
        },
        "reference_video": {
            "input_reference": {
                "content": [
                    {"type": "video_url", "video_url": {"url": "https://v.example.test/a.mp4"}}
                ]
            }
        },
        "reference_audio": {
            "input_reference": {
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://img.example.test/a.png"}},
                    {"type": "audio_url", "audio_url": {"url": "https://v.example.test/a.mp3"}},
                ]
            }
        },
    }
    for feature in missing:
        before = upstream.upstream_calls()
        if feature == "remix":
            source = await relay.create(prompt="source")
            assert (await relay.wait(source["id"]))["status"] == "completed"
            before = upstream.upstream_calls()
            resp = await relay.client.post(
                f"/v1/videos/{source['id']}/remix", json={"prompt": "again"}, headers=auth()
            )
        else:
            resp = await relay.client.post(
                "/v1/videos", json={"prompt": "x", **requests[feature]}, headers=auth()
            )
        body = await resp.json()
        assert resp.status == 400, (feature, body)
        assert body["error"]["code"] == "unsupported_feature", feature
        assert upstream.provider in body["error"]["message"]
        assert upstream.upstream_calls() == before, f"{feature}: the upstream was called"


async def test_image_upload_reaches_the_provider(upstream: Upstream):
    if "image_input" not in upstream.features:
        pytest.skip(f"{upstream.provider} takes no image")
    relay = upstream.relay
    form = aiohttp.FormData()
    form.add_field("prompt", "animate this")
    # the default size: OpenAI wants the image exactly that size
    form.add_field("input_reference", png(720, 1280), filename="f.png", content_type="image/png")
    resp = await relay.client.post("/v1/videos", data=form, headers=auth())
    body = await resp.json()
    assert resp.status == 200, body
    assert (await relay.wait(body["id"]))["status"] == "completed"
