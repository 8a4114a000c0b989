"""A URL that does not parse (an unclosed `[`, a bad IPv6 literal, a port out of range, not
http(s)) is an upstream error like any other unusable URL: 502 on content, never a 500; the
copier drops the copy at once with one log line; a client image URL is a 400."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from relay.config import Config
from relay.domain import ContentSource, TaskRef
from relay.providers.base import NoOptions
from relay.upstream import Http
from tests.conftest import Relay, auth
from tests.ssrf.rig import (
    Bouncer,
    Canary,
    EchoProvider,
    Network,
    finished,
    settled_copies,
    url,
)

MALFORMED = [
    ("an unclosed [", "http://[::1/v.mp4"),
    ("an unclosed [ with a port", "http://[fec0::1:8080/v.mp4"),
    ("a bad IPv6 literal", "http://[zz::1]/v.mp4"),
    ("a bad IPv6 literal, IPv4-ish", "http://[127.0.0.1]/v.mp4"),
    ("a port out of range", "http://cdn.example.com:99999/v.mp4"),
    ("a negative port", "http://cdn.example.com:-1/v.mp4"),
    ("a port that is no number", "http://cdn.example.com:8o/v.mp4"),
    ("port 0", "http://cdn.example.com:0/v.mp4"),
    ("no host", "http:///v.mp4"),
    ("not http", "ftp://cdn.example.com/v.mp4"),
    ("a file URL", "file:///etc/passwd"),
    ("not a URL", "just words"),
    ("a control character", "http://cdn.example.com/v\x01.mp4"),
]


@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_result_url_that_does_not_parse_is_an_upstream_error(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    logs: pytest.LogCaptureFixture,
    allow_private: bool,
):
    relay: Relay = await start_relay(echo(server={"allow_private_networks": allow_private}))
    ids = [await finished(relay, bad) for _, bad in MALFORMED]
    for (label, _), video_id in zip(MALFORMED, ids, strict=True):
        for variant in ("video", "thumbnail"):
            resp = await relay.client.get(
                f"/v1/videos/{video_id}/content", params={"variant": variant}, headers=auth()
            )
            body = await resp.json()
            assert resp.status == 502, (label, body)
            assert body["error"]["code"] == "upstream_error"
            assert "example" not in body["error"]["message"]
    assert network.connects == []
    assert not [r for r in logs.records if r.exc_info or r.levelno >= logging.ERROR]
    relay_lines = [r.getMessage() for r in logs.records if r.name.startswith("relay")]
    for _, bad in MALFORMED:
        assert not [line for line in relay_lines if bad in line]  # no URL in a log line


async def test_a_redirect_to_a_url_that_does_not_parse_is_an_upstream_error(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    bouncer: Bouncer,
    logs: pytest.LogCaptureFixture,
):
    relay: Relay = await start_relay(echo())
    for _, bad in MALFORMED:
        video_id = await finished(
            relay, url("8.8.4.4", bouncer.port, "/bounce?to=" + quote(bad, safe=""))
        )
        resp = await relay.client.get(f"/v1/videos/{video_id}/content", headers=auth())
        body = await resp.json()
        if bad in ("http:///v.mp4", "just words"):  # as a Location: a path on the same host
            assert resp.status == 404 and body["error"]["code"] == "not_found", body
        else:
            assert resp.status == 502 and body["error"]["code"] == "upstream_error", (bad, body)
    assert bouncer.hits == len(MALFORMED)
    assert not [r for r in logs.records if r.exc_info and r.name.startswith("relay")]


async def test_the_copier_drops_a_url_that_does_not_parse_at_once(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr("relay.workers.copier.FIRST_RETRY_S", 0.01)
    relay: Relay = await start_relay(echo(storage={"keep_videos": True}))
    ids = [await finished(relay, bad) for _, bad in MALFORMED]
    for video_id in ids:
        assert await settled_copies(relay, video_id) == []  # dropped
    await asyncio.sleep(0.2)  # a retry, were there one, would show by now
    copier = [r for r in logs.records if r.name == "relay.workers.copier"]
    for video_id in ids:
        lines = [r for r in copier if video_id in r.getMessage()]
        assert len(lines) == 2, [r.getMessage() for r in lines]  # one per variant
        assert all("giving up" in r.getMessage() and "unusable" in r.getMessage() for r in lines)
    assert not [r for r in logs.records if r.exc_info]
    assert not [r for r in logs.records if "round failed" in r.getMessage()]
    assert network.connects == []


async def test_an_image_url_that_does_not_parse_is_a_400(
    echo: Callable[..., Config],
    start_relay: Callable[[Config], Any],
    network: Network,
):
    relay: Relay = await start_relay(echo())
    for label, bad in MALFORMED:
        resp = await relay.client.post(
            "/v1/videos",
            json={"prompt": "a kite", "input_reference": {"image_url": bad}},
            headers=auth(),
        )
        body = await resp.json()
        assert resp.status == 400, (label, body)
        assert body["error"]["param"].startswith("input_reference"), (label, body)
    assert network.connects == []


@pytest.mark.parametrize(("label", "bad"), MALFORMED[:8])
async def test_adapters_hand_on_a_result_url_that_does_not_parse(label: str, bad: str):
    """Where an adapter reads a result URL itself (Veo's key check, the gateway's thumbnail
    type, DashScope's expiry), one that does not parse is handed on as is, to fail as an
    upstream error when fetched, not raise a ValueError (a 500, or a poller traceback)."""
    from relay.providers.base import ChannelView
    from relay.providers.compat_relay import CompatRelayOptions, CompatRelayProvider
    from relay.providers.dashscope.response import url_expiry
    from relay.providers.veo import VeoProvider
    from relay.upstream import UnusableUrl

    veo = VeoProvider(ChannelView("v", NoOptions(), api_key="k"), None)
    source = veo._remote(bad)
    assert source.url == bad and not source.trusted and not source.headers
    gateway = CompatRelayProvider(
        ChannelView("g", CompatRelayOptions(), base_url="https://gw.example", api_key="k"), None
    )
    assert gateway.thumbnail({"thumbnail_url": bad}).content_type is None
    assert url_expiry(bad) is None
    http = Http(allow_private_networks=False)
    try:
        with pytest.raises(UnusableUrl):
            async with http.open(bad, headers={}, trusted=False, connect_timeout=1, idle_timeout=1):
                pass
    finally:
        await http.close()


async def test_an_adapter_bug_on_one_copy_leaves_the_others_be(
    echo: Callable[..., Config],
    providers: dict[str, type[Any]],
    start_relay: Callable[[Config], Any],
    canary: Canary,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    """An adapter that raises something unexpected for one copy fails that copy's attempt (with
    its traceback: it is a bug), retried with backoff and given up in the end; the round and the
    other copies go on."""

    class Broken(EchoProvider):
        async def content(self, task: TaskRef, variant: str) -> ContentSource:
            if task.state["url"] == "broken":
                raise ValueError("an adapter bug")
            return await super().content(task, variant)

    monkeypatch.setattr("relay.workers.copier.FIRST_RETRY_S", 0.01)
    monkeypatch.setattr("relay.workers.copier.GIVE_UP_AFTER", 2)
    config = echo(server={"allow_private_networks": True}, storage={"keep_videos": True})
    providers["echo"] = Broken
    relay: Relay = await start_relay(config)
    broken = await finished(relay, "broken")
    good = await finished(relay, url("127.0.0.1", canary.port, "/good.mp4"))
    assert await settled_copies(relay, good) == ["stored", "stored"]
    assert await settled_copies(relay, broken) == []  # given up after GIVE_UP_AFTER attempts
    bugs = [r for r in logs.records if r.exc_info and broken in r.getMessage()]
    assert len(bugs) == 4  # two attempts for each of two variants
    assert not [r for r in logs.records if "round failed" in r.getMessage()]
