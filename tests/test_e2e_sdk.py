"""The official openai SDK, as a real client, against a running relay on the demo channel.

The client is strict (`_strict_response_validation=True`), so every answer must parse as the
SDK's own models, and it never retries, so every error surfaces as it was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from relay.providers.demo import ASSETS
from tests.conftest import ALICE, BOB, Relay
from tests.images import png

VIDEO = (ASSETS / "video.mp4").read_bytes()


@pytest.fixture
async def sdk(relay: Relay) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=relay.base_url, api_key=ALICE, max_retries=0, _strict_response_validation=True
    )
    yield client
    await client.close()


async def test_create_sends_multipart_and_returns_a_video(sdk: openai.AsyncOpenAI, relay: Relay):
    video = await sdk.videos.create(
        prompt="a paper boat", model="sora-2", seconds="8", size="1280x720"
    )
    assert video.object == "video"
    assert video.id.startswith("video_")
    assert video.status == "queued"
    assert video.seconds == "4"  # the demo's clip; the 8 asked for is kept in the row below
    assert video.size == "1280x720"
    row = await relay.store.get_task(video.id)
    assert row is not None and row.request["seconds"] == 8


async def test_create_with_uploaded_image(sdk: openai.AsyncOpenAI, relay: Relay):
    video = await sdk.videos.create(
        prompt="animate this", input_reference=("frame.png", png(), "image/png")
    )
    row = await relay.store.get_task(video.id)
    assert row is not None
    assert row.request["images"][0]["mime"] == "image/png"
    assert row.request["images"][0]["bytes"] == len(png())


async def test_create_with_image_url_object(sdk: openai.AsyncOpenAI, relay: Relay):
    # this SDK version refuses a dict for input_reference client-side; extra_body sends the same
    # bracket fields (input_reference[image_url]=...) that its typed parameter describes
    video = await sdk.videos.create(
        prompt="animate this",
        extra_body={"input_reference": {"image_url": "https://img.example.test/a.png"}},
    )
    row = await relay.store.get_task(video.id)
    assert row is not None
    assert row.request["images"] == [{"role": None, "url": "https://img.example.test/a.png"}]


async def test_create_and_poll_completes(sdk: openai.AsyncOpenAI):
    video = await sdk.videos.create_and_poll(prompt="a lighthouse at dusk")
    assert video.status == "completed"
    assert video.progress == 100
    assert video.completed_at is not None and video.completed_at >= video.created_at
    assert video.error is None


async def test_failed_task_carries_its_error(sdk: openai.AsyncOpenAI):
    video = await sdk.videos.create_and_poll(prompt="something #fail")
    assert video.status == "failed"
    assert video.error is not None
    assert video.error.code == "moderation_blocked"


async def test_retrieve_and_list_across_pages(sdk: openai.AsyncOpenAI):
    made = [(await sdk.videos.create(prompt=f"clip {i}")).id for i in range(5)]
    fetched = await sdk.videos.retrieve(made[0])
    assert fetched.id == made[0]
    seen = [video.id async for video in sdk.videos.list(limit=2)]
    assert seen == list(reversed(made))
    page = await sdk.videos.list(limit=2, order="asc")
    assert [v.id for v in page.data] == made[:2]
    assert page.has_more is True


async def test_download_content_is_the_mp4(sdk: openai.AsyncOpenAI):
    video = await sdk.videos.create_and_poll(prompt="waves")
    content = await sdk.videos.download_content(video.id)
    assert content.content == VIDEO
    thumb = await sdk.videos.download_content(video.id, variant="thumbnail")
    assert thumb.content == (ASSETS / "thumbnail.webp").read_bytes()
    sprites = await sdk.videos.download_content(video.id, variant="spritesheet")
    assert sprites.content == (ASSETS / "spritesheet.jpg").read_bytes()


async def test_streaming_download(sdk: openai.AsyncOpenAI):
    video = await sdk.videos.create_and_poll(prompt="rain")
    received = bytearray()
    async with sdk.videos.with_streaming_response.download_content(video.id) as response:
        assert response.headers["content-type"] == "video/mp4"
        async for chunk in response.iter_bytes(8192):
            received += chunk
    assert bytes(received) == VIDEO


async def test_remix(sdk: openai.AsyncOpenAI):
    source = await sdk.videos.create_and_poll(prompt="a cat")
    remix = await sdk.videos.remix(source.id, prompt="a cat, in the snow")
    assert remix.remixed_from_video_id == source.id
    assert remix.prompt == "a cat, in the snow"
    done = await sdk.videos.poll(remix.id)
    assert done.status == "completed"


async def test_delete(sdk: openai.AsyncOpenAI):
    video = await sdk.videos.create_and_poll(prompt="gone soon")
    deleted = await sdk.videos.delete(video.id)
    assert deleted.deleted is True and deleted.id == video.id and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        await sdk.videos.retrieve(video.id)


async def test_errors_arrive_as_sdk_exceptions(sdk: openai.AsyncOpenAI, relay: Relay):
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.videos.retrieve("video_nope")
    assert missing.value.code == "not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.videos.create(prompt="x", extra_body={"aspect_ratio": "16:9"})
    assert bad.value.param == "aspect_ratio"
    with pytest.raises(openai.NotFoundError) as no_model:
        await sdk.videos.create(prompt="x", model="no-such-model")
    assert no_model.value.code == "model_not_found"
    other = openai.AsyncOpenAI(base_url=relay.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await other.videos.list()
    await other.close()


async def test_another_users_video_is_not_found(sdk: openai.AsyncOpenAI, relay: Relay):
    video = await sdk.videos.create(prompt="mine")
    bob = openai.AsyncOpenAI(base_url=relay.base_url, api_key=BOB, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        await bob.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        await bob.videos.download_content(video.id)
    assert [v.id async for v in bob.videos.list()] == []
    await bob.close()


async def test_models(sdk: openai.AsyncOpenAI):
    models = await sdk.models.list()
    assert sorted(m.id for m in models.data) == ["demo", "sora-2"]
