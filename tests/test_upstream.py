"""Outbound HTTP helpers: client image URLs fetched whole, within limits, through the guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from relay.domain import Image
from relay.providers.base import ChannelView, NoOptions, Provider
from relay.providers.errors import Rejected
from relay.providers.http import ChannelHttp
from relay.upstream import Http
from tests.fakes.base import FakeUpstream
from tests.images import png

BIG = png(4, 4)[:16] + b"\x00" * (3 * 1024 * 1024)  # a PNG's magic, then 3 MiB


@pytest.fixture
async def cdn() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.files.update({"big.png": BIG, "note.txt": b"not an image at all"})
    fake.cdn.chunk = 16 * 1024  # arrives in many small reads
    await fake.start()
    yield fake
    await fake.close()


async def adapter(allow_private: bool) -> tuple[Provider[Any], Http]:
    http = Http(allow_private_networks=allow_private)
    return Provider(ChannelView("t", NoOptions()), ChannelHttp(http, 10)), http


async def test_a_large_image_arrives_whole(cdn: FakeUpstream):
    provider, http = await adapter(True)
    try:
        image = await provider.image_bytes(Image(url=cdn.cdn_url("big.png")), 4 * 1024 * 1024)
        assert image.data == BIG and image.mime == "image/png"
        with pytest.raises(Rejected, match="too large"):
            await provider.image_bytes(Image(url=cdn.cdn_url("big.png")), 1024 * 1024)
        with pytest.raises(Rejected, match="not a JPEG, PNG or WebP"):
            await provider.image_bytes(Image(url=cdn.cdn_url("note.txt")), 1024 * 1024)
        given = Image(data=b"\x89PNG", mime="image/png")
        assert await provider.image_bytes(given, 10) is given  # bytes already: no fetch
    finally:
        await http.close()


async def test_a_private_image_url_is_refused(cdn: FakeUpstream):
    provider, http = await adapter(False)
    try:
        with pytest.raises(Rejected, match="private or local address") as exc:
            await provider.image_bytes(Image(url=cdn.cdn_url("big.png")), 4 * 1024 * 1024)
        assert exc.value.param == "input_reference"
        assert cdn.cdn_stats.requests == 0
    finally:
        await http.close()
