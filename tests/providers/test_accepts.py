"""What a provider declares it accepts (`accepts(model)`, shown by /api/models for the
dashboard's form) is what it really requests upstream: every offered size and duration, sent
through a real relay to the provider's fake, comes back unchanged in the video object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.config import Config
from relay.providers import REGISTRY
from relay.providers.base import DEFAULT_SECONDS, DEFAULT_SIZES
from relay.routing import upstream_model
from tests.conftest import Relay
from tests.fakes import fake_class
from tests.fakes.base import FakeUpstream

PROVIDERS = sorted(REGISTRY)
MAX_SAMPLES = 8  # durations tried per model: the ends and what lies between, evenly


@pytest.fixture(params=PROVIDERS)
async def relay_for(
    request: pytest.FixtureRequest,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> AsyncIterator[tuple[str, Relay]]:
    provider: str = request.param
    fake: FakeUpstream | None = None
    if provider == "demo":
        channel: dict[str, Any] = {"name": "demo", "provider": "demo", "models": ["sora-2"]}
    else:
        fake = fake_class(provider)()
        channel = fake.channel(await fake.start())
    relay: Relay = await start_relay(make_config(channels=[channel]))
    yield provider, relay
    if fake is not None:
        await fake.close()


def sample(values: tuple[int, ...]) -> list[int]:
    if len(values) <= MAX_SAMPLES:
        return list(values)
    step = (len(values) - 1) / (MAX_SAMPLES - 1)
    return sorted({values[round(i * step)] for i in range(MAX_SAMPLES)})


async def test_offered_sizes_and_durations_are_requested_as_they_are(
    relay_for: tuple[str, Relay],
):
    provider, relay = relay_for
    [channel] = list(relay.runtime.channels)
    model = upstream_model(channel.config, "sora-2")
    seconds, sizes = channel.adapter.accepts(model)
    assert seconds and sizes, provider
    assert list(seconds) == sorted(set(seconds)) and len(set(sizes)) == len(sizes)
    for size in sizes:
        video = await relay.create(prompt=f"size {size}", size=size)
        assert video["size"] == size, (provider, model, size)
    for duration in sample(seconds):
        video = await relay.create(prompt=f"{duration} s", seconds=str(duration), size=sizes[0])
        assert video["seconds"] == str(duration), (provider, model, duration)


def test_a_provider_that_declares_nothing_offers_the_apis_basic_values():
    from relay.providers.openai.models import accepts

    assert (DEFAULT_SECONDS, DEFAULT_SIZES) == ((4, 8, 12), ("720x1280", "1280x720"))
    assert accepts("another-servers-model") == (DEFAULT_SECONDS, DEFAULT_SIZES)
    assert accepts("sora-2") == ((4, 8, 12, 16, 20), ("720x1280", "1280x720"))
    assert "1792x1024" in accepts("sora-2-pro")[1] and "1920x1080" in accepts("sora-2-pro")[1]


def test_remix_is_declared_per_model_where_it_differs():
    from relay.providers.base import ChannelView

    seedance = REGISTRY["seedance"]
    adapter = seedance(ChannelView("s", seedance.Options(), api_key="k"), None)
    assert adapter.can_remix("doubao-seedance-2-0-260128")
    assert not adapter.can_remix("doubao-seedance-1-0-pro-250528")
    kling = REGISTRY["kling"]
    assert not kling(
        ChannelView("k", kling.Options(), access_key="a", secret_key="s"), None
    ).can_remix("kling-v2-master")
