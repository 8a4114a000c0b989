"""A NUL character (U+0000) anywhere a client can put text: PostgreSQL's text columns cannot
hold one, so every backend answers 400 naming the field where there is one, never 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.config import Config
from tests.conftest import ALICE, Relay, auth


@pytest.fixture
async def relay_on(
    store_url: str, start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
) -> Relay:
    return await start_relay(make_config(store={"url": store_url}))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a\u0000b"}, "prompt"),
        ({"prompt": "ok", "negative_prompt": "x\u0000"}, "negative_prompt"),
        ({"prompt": "ok", "size": "720x1280\u0000"}, "size"),
    ],
)
async def test_a_nul_in_a_create_field_is_a_400_naming_it(
    relay_on: Relay, body: dict[str, Any], param: str
):
    resp = await relay_on.client.post("/v1/videos", json=body, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400, error
    assert error["param"] == param
    assert "NUL" in error["message"] or param == "size"  # not a size at all, it says


async def test_a_nul_in_a_multipart_prompt_is_a_400(relay_on: Relay):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("prompt", "a\u0000b")
    resp = await relay_on.client.post("/v1/videos", data=form, headers=auth())
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["param"] == "prompt"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/videos?q=a%00b",
        "/v1/videos?after=video_%00",
        "/v1/videos/video_abc%00",
        "/v1/videos/video_abc%00/content",
    ],
)
async def test_a_nul_in_a_query_or_path_is_never_a_500(relay_on: Relay, path: str):
    resp = await relay_on.client.get(path, headers=auth(ALICE))
    assert resp.status in (400, 404), await resp.text()


async def test_a_nul_in_a_sign_in_name_is_never_a_500(relay_on: Relay):
    resp = await relay_on.client.post(
        "/api/login", json={"username": "al\u0000ice", "password": "whatever-password"}
    )
    assert resp.status in (400, 401), await resp.text()


async def test_the_postgresql_store_refuses_a_nul_as_a_bad_request(postgres_url: str):
    from relay.errors import InvalidRequest
    from relay.store import open_store

    store = await open_store(postgres_url)
    try:
        with pytest.raises(InvalidRequest, match="NUL"):
            await store.get_user("al\x00ice")
        assert await store.get_user("alice") is None  # the pool is fine afterwards
    finally:
        await store.close()
