"""The store survives the process: a running task finishes after a restart, and a submit cut off
by a crash is failed at start-up instead of being sent again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relay.config import Config
from tests.conftest import Relay
from tests.storetools import insert_task


async def test_task_survives_a_restart(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config(
        channels=[
            {
                "name": "demo",
                "provider": "demo",
                "models": ["sora-2"],
                "options": {"finish_after_s": 1.0},
            }
        ]
    )
    first: Relay = await start_relay(config)
    video = await first.create()
    assert (await first.get(video["id"]))["status"] in ("queued", "in_progress")
    await first.client.close()  # a clean stop: leases are released

    second: Relay = await start_relay(config)
    done = await second.wait(video["id"])
    assert done["status"] == "completed"
    assert done["created_at"] == video["created_at"]


async def test_cut_off_submit_is_failed_at_start(
    start_relay: Callable[[Config], Any], make_config: Callable[..., Config]
):
    config = make_config()
    first: Relay = await start_relay(config)
    now = time.time()
    # what a crash between "row written" and "upstream id recorded" leaves behind
    await insert_task(
        first.store,
        {
            "id": "video_cut",
            "owner": "alice",
            "channel": "demo",
            "provider": "demo",
            "model": "sora-2",
            "upstream_model": "sora-2",
            "request": {},
            "prompt": "p",
            "seconds": "4",
            "size": "720x1280",
            "status": "queued",
            "created_at": int(now) - 60,
            "updated_at": now - 60,
            "lease_owner": "crashed",
            "lease_until": now - 1,
        },
    )
    await first.client.close()
    second: Relay = await start_relay(config)
    body = await second.get("video_cut")
    assert body["status"] == "failed"
    assert body["error"]["code"] == "upstream_error"
    assert "not submitted again" in body["error"]["message"]
