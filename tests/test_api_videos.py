"""List, retrieve, delete, remix, models and healthz over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.config import Config
from tests.conftest import ALICE, BOB, Relay, auth

# --- list ----------------------------------------------------------------------------------


async def test_list_shape_and_pages(relay: Relay):
    ids = [(await relay.create(prompt=f"clip {i}"))["id"] for i in range(5)]
    resp = await relay.client.get("/v1/videos", params={"limit": "2"}, headers=auth())
    page = await resp.json()
    assert page["object"] == "list"
    assert [v["id"] for v in page["data"]] == [ids[4], ids[3]]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    resp = await relay.client.get(
        "/v1/videos", params={"limit": "2", "after": page["last_id"]}, headers=auth()
    )
    page = await resp.json()
    assert [v["id"] for v in page["data"]] == [ids[2], ids[1]]
    resp = await relay.client.get(
        "/v1/videos", params={"limit": "2", "after": ids[1]}, headers=auth()
    )
    page = await resp.json()
    assert [v["id"] for v in page["data"]] == [ids[0]] and page["has_more"] is False
    asc = await (
        await relay.client.get("/v1/videos", params={"order": "asc"}, headers=auth())
    ).json()
    assert [v["id"] for v in asc["data"]] == ids


async def test_empty_list(relay: Relay):
    page = await (await relay.client.get("/v1/videos", headers=auth())).json()
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


async def test_limit_zero_means_default_of_20(relay: Relay):
    for i in range(21):
        await relay.create(prompt=f"n{i}")
    page = await (
        await relay.client.get("/v1/videos", params={"limit": "0"}, headers=auth())
    ).json()
    assert len(page["data"]) == 20 and page["has_more"] is True
    page = await (
        await relay.client.get("/v1/videos", params={"limit": "100"}, headers=auth())
    ).json()
    assert len(page["data"]) == 21


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": "video_unknown"}, "after"),
    ],
)
async def test_bad_list_parameters(relay: Relay, params: dict[str, str], param: str):
    resp = await relay.client.get("/v1/videos", params=params, headers=auth())
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"


async def test_after_another_users_video_is_400(relay: Relay):
    theirs = await relay.create(BOB)
    resp = await relay.client.get("/v1/videos", params={"after": theirs["id"]}, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "after"


# --- retrieve ----------------------------------------------------------------------------


async def test_retrieve_running_sends_poll_hint(relay: Relay):
    video = await relay.create()
    resp = await relay.client.get(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 200
    wait = int(resp.headers["openai-poll-after-ms"])
    assert 100 <= wait <= 200  # max_interval_s is 0.2 in the test config
    body = await resp.json()
    assert set(body) == {
        "id",
        "object",
        "model",
        "status",
        "progress",
        "created_at",
        "completed_at",
        "expires_at",
        "prompt",
        "size",
        "seconds",
        "quality",
        "remixed_from_video_id",
        "error",
        "task_id",
        "video_url",
        "url",
    }
    assert body["video_url"] is None and body["url"] is None


async def test_completed_video_points_at_relay_content(relay: Relay):
    video = await relay.create()
    done = await relay.wait(video["id"])
    public = relay.runtime.config.server.public_url
    assert done["video_url"] == done["url"] == f"{public}/v1/videos/{video['id']}/content"
    assert done["task_id"] == video["id"]
    assert done["expires_at"] is None  # the demo's content is local: it does not expire


async def test_ratio_size_is_answered_as_pixels(relay: Relay):
    video = await relay.create(size="16:9", seconds=8)
    assert video["size"] == "1280x720"
    assert video["seconds"] == "4"  # the demo says what its clip really is


# --- delete --------------------------------------------------------------------------------


async def test_delete_running_video_is_refused_without_409(relay: Relay):
    video = await relay.create()
    resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "video_not_finished"


async def test_delete_finished_videos(relay: Relay):
    done = await relay.create()
    failed = await relay.create(prompt="x #fail")
    for video in (done, failed):
        await relay.wait(video["id"])
        resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
        assert resp.status == 200
        assert await resp.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
        assert await relay.store.get_task(video["id"]) is None
        resp = await relay.client.delete(f"/v1/videos/{video['id']}", headers=auth())
        assert resp.status == 404


# --- remix ---------------------------------------------------------------------------------


async def test_remix_pins_channel_and_links_source(relay: Relay):
    source = await relay.create(size="1280x720", seconds=8)
    await relay.wait(source["id"])
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "again, at night"}, headers=auth()
    )
    assert resp.status == 200
    remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["size"], remix["seconds"]) == ("1280x720", "4")  # from the source
    row = await relay.store.get_task(remix["id"])
    src = await relay.store.get_task(source["id"])
    assert row is not None and src is not None
    assert row.channel == src.channel
    assert row.upstream_state["remix_of"] == src.upstream_id  # the source's upstream id
    assert (await relay.wait(remix["id"]))["status"] == "completed"


async def test_remix_as_multipart_and_via_create(relay: Relay):
    source = await relay.create()
    await relay.wait(source["id"])
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", data={"prompt": "form"}, headers=auth()
    )
    assert resp.status == 200
    via_create = await relay.create(prompt="via create", remix_video_id=source["id"], size="16:9")
    assert via_create["remixed_from_video_id"] == source["id"]
    assert via_create["size"] == "1280x720"


async def test_remix_of_unfinished_or_failed_source(relay: Relay):
    running = await relay.create()
    resp = await relay.client.post(
        f"/v1/videos/{running['id']}/remix", json={"prompt": "x"}, headers=auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "video_not_ready"
    failed = await relay.create(prompt="x #fail")
    await relay.wait(failed["id"])
    resp = await relay.client.post(
        f"/v1/videos/{failed['id']}/remix", json={"prompt": "x"}, headers=auth()
    )
    assert (await resp.json())["error"]["code"] == "video_not_ready"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"prompt": "x", "foo": 1}, "foo"),
        ({"prompt": "x", "model": "not-here"}, "model"),
    ],
)
async def test_bad_remix_requests(relay: Relay, body: dict[str, Any], param: str):
    source = await relay.create()
    await relay.wait(source["id"])
    resp = await relay.client.post(f"/v1/videos/{source['id']}/remix", json=body, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


async def test_remix_of_another_users_video(relay: Relay):
    source = await relay.create(BOB)
    await relay.wait(source["id"], BOB)
    resp = await relay.client.post(
        f"/v1/videos/{source['id']}/remix", json={"prompt": "x"}, headers=auth(ALICE)
    )
    assert resp.status == 404


# --- models and health -----------------------------------------------------------------------


async def test_models_lists_enabled_channels_only(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {"name": "a", "provider": "demo", "models": ["sora-2", "demo"]},
            {"name": "b", "provider": "demo", "models": ["hidden"], "enabled": False},
        ]
    )
    relay: Relay = await start_relay(config)
    body = await (await relay.client.get("/v1/models", headers=auth())).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["demo", "sora-2"]
    assert all(
        m["object"] == "model" and isinstance(m["created"], int) and m["owned_by"]
        for m in body["data"]
    )


async def test_healthz_reports_a_broken_database(relay: Relay, monkeypatch: pytest.MonkeyPatch):
    async def broken() -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(relay.store, "ping", broken)
    resp = await relay.client.get("/healthz")
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["type"] == "server_error"
    assert "disk" not in body["error"]["message"]
