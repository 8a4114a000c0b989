"""Per-method contract cases over every provider with a fake: each adapter, driven directly
against its fake, classifies the same situations the same way (the fake answers in the
provider's native form, see tests/fakes/base.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from relay.config import ChannelConfig, Config
from relay.domain import Remote, Size, TaskRef, VideoRequest
from relay.providers import REGISTRY
from relay.providers.base import Provider
from relay.providers.errors import (
    AuthFailed,
    CancelRefused,
    RateLimited,
    TaskNotFound,
    Unsupported,
)
from relay.routing import build_adapter, upstream_model
from relay.upstream import Http
from tests.fakes import fake_class
from tests.fakes.base import VIDEO, FakeUpstream

NETWORK = sorted(name for name, cls in REGISTRY.items() if cls.needs_network)
FLAVOURS = ["vllm-omni", "dashscope-wan27"]  # servers a registered provider reaches with an option


@dataclass
class Kit:
    fake: FakeUpstream
    adapter: Provider[Any]
    channel: ChannelConfig
    http: Http

    async def submit(self) -> TaskRef:
        public = self.channel.models[0]
        request = VideoRequest(
            prompt="a quiet harbour at dawn", model=public, seconds=5, size=Size(1280, 720)
        )
        model = upstream_model(self.channel, public, request.shape)
        submitted = await self.adapter.submit(request, model)
        return TaskRef(
            id="video_contract",
            upstream_id=submitted.upstream_id,
            upstream_model=model,
            state=dict(submitted.state),
            submitted_at=time.time(),
            seconds=submitted.seconds,
            size=submitted.size,
            status=submitted.status,
        )

    async def finish(self, task: TaskRef) -> TaskRef:
        for _ in range(20):
            update = await self.adapter.poll(task)
            task = replace(task, state={**task.state, **update.state})
            if update.status == "completed":
                return replace(task, status="completed")
            assert update.status != "failed", update
        raise AssertionError("the fake never completed the task")

    async def download(self, source: Remote) -> tuple[int, bytes]:
        async with self.http.open(
            source.url,
            headers=dict(source.headers),
            trusted=source.trusted,
            connect_timeout=5,
            idle_timeout=5,
        ) as resp:
            return resp.status, await resp.read()


@pytest.fixture(params=NETWORK + FLAVOURS)
async def kit(
    request: pytest.FixtureRequest, make_config: Callable[..., Config]
) -> AsyncIterator[Kit]:
    fake = fake_class(request.param)()
    channel = fake.channel(await fake.start())
    config = make_config(channels=[channel])
    http = Http(allow_private_networks=True)
    cfg = config.channels[0]
    yield Kit(fake, build_adapter(cfg, REGISTRY[cfg.provider], http), cfg, http)
    await http.close()
    await fake.close()


def test_every_provider_with_a_network_has_a_fake():
    for name in NETWORK:
        assert fake_class(name).name == name


async def test_an_unknown_id_is_not_found(kit: Kit):
    task = await kit.submit()
    kit.fake.forget_tasks()
    with pytest.raises(TaskNotFound):
        await kit.adapter.poll(task)


async def test_refused_credentials_at_submit(kit: Kit):
    kit.fake.contract_error("submit", "auth")
    with pytest.raises(AuthFailed):
        await kit.submit()


async def test_refused_credentials_at_poll(kit: Kit):
    task = await kit.submit()
    kit.fake.contract_error("poll", "auth")
    with pytest.raises(AuthFailed):
        await kit.adapter.poll(task)


@pytest.mark.parametrize("op", ["submit", "poll"])
async def test_a_rate_limit_carries_its_retry_after(kit: Kit, op: str):
    task = await kit.submit() if op == "poll" else None
    kit.fake.contract_error(op, "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as caught:
        if task is None:
            await kit.submit()
        else:
            await kit.adapter.poll(task)
    if kit.fake.retry_after_header:
        assert caught.value.retry_after == pytest.approx(7, abs=1)


async def test_refresh_of_an_expired_url(kit: Kit):
    task = await kit.finish(await kit.submit())
    source = await kit.adapter.content(task, "video")
    assert isinstance(source, Remote)
    assert await kit.download(source) == (200, VIDEO)
    kit.fake.expire_urls()
    fresh = await kit.adapter.refresh_content(task, "video")
    if not kit.fake.renews_urls:
        assert fresh is None
        return
    source = fresh or await kit.adapter.content(task, "video")
    assert isinstance(source, Remote)
    assert await kit.download(source) == (200, VIDEO)


async def test_delete_where_supported(kit: Kit):
    task = await kit.finish(await kit.submit())
    await kit.adapter.delete(task)
    if kit.fake.supports_delete:
        with pytest.raises(TaskNotFound):
            await kit.adapter.poll(task)
    else:
        assert (await kit.adapter.poll(task)).status in (None, "completed")


async def test_cancel_where_supported(kit: Kit):
    kit.fake.polls_to_finish = 5  # still queued (or running, where that can be cancelled)
    task = await kit.submit()
    assert kit.adapter.can_cancel(task.upstream_model) == kit.fake.supports_cancel
    if not kit.fake.supports_cancel:
        with pytest.raises(Unsupported):
            await kit.adapter.cancel(task)
        return
    await kit.adapter.cancel(task)
    try:
        update = await kit.adapter.poll(task)
    except TaskNotFound:  # a cancelled job that disappears (vLLM-Omni)
        return
    assert update.status == "failed"
    assert update.error is not None and update.error.code == "cancelled"


async def test_cancel_of_a_finished_job_is_refused_and_keeps_the_result(kit: Kit):
    task = await kit.finish(await kit.submit())
    # a provider without cancel refuses it as unsupported, finished or not
    with pytest.raises(CancelRefused if kit.fake.supports_cancel else Unsupported):
        await kit.adapter.cancel(task)
    assert (await kit.adapter.poll(task)).status == "completed"
