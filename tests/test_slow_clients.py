"""Slow clients over real sockets: a request head that never completes is closed after the header
timeout, a body that trickles in is cut with a 408, and everyone else is served meanwhile.

The timeouts are shortened through relay.web.timeouts' constants (read when an app is made and
when a body is read); the defaults are pinned at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from relay.config import Config
from relay.web import timeouts
from tests.conftest import ALICE, Relay, auth

HEADER_S = 1.0


@pytest.fixture
async def quick(
    monkeypatch: pytest.MonkeyPatch,
    start_relay: Callable[[Config], Any],
    make_config: Callable[..., Config],
) -> Relay:
    """A relay whose head timeout is 1 s and whose bodies must average 200 B/s after 0.5 s."""
    monkeypatch.setattr(timeouts, "HEADER_TIMEOUT_S", HEADER_S)
    monkeypatch.setattr(timeouts, "BODY_GRACE_S", 0.5)
    monkeypatch.setattr(timeouts, "BODY_MIN_RATE", 200)
    server = {"max_upload_mb": 0.01, "max_media_mb": 0.01}
    relay: Relay = await start_relay(make_config(server=server))
    return relay


async def connect(relay: Relay) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server = relay.client.server
    return await asyncio.open_connection(server.host, server.port)


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the relay closes the connection (reading whatever it sends first)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), limit)
        except ConnectionResetError:
            break
        if not chunk:
            break
    return loop.time() - start


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float, size: int = 1) -> None:
    """Send `data` `size` bytes at a time, one piece every `every` seconds, until cut off."""
    for i in range(0, len(data), size):
        try:
            writer.write(data[i : i + size])
            await writer.drain()
        except (ConnectionError, OSError):
            return
        await asyncio.sleep(every)


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read off a raw socket: status, headers (lower-case names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, body


def post_head(length: int, ctype: str = "application/json") -> bytes:
    return (
        f"POST /v1/videos HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {ALICE}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def served(relay: Relay) -> None:
    """A well-behaved client gets its answers, on a connection of its own."""
    close = {"Connection": "close"}  # no pooled connection the short head timeout could close
    resp = await relay.client.get("/healthz", headers=close)
    assert resp.status == 200
    resp = await relay.client.post(
        "/v1/videos", json={"prompt": "meanwhile"}, headers={**auth(), **close}
    )
    assert resp.status == 200, await resp.text()


# --- the request head -------------------------------------------------------------------------


async def test_a_head_sent_a_byte_now_and_then_is_closed_after_the_timeout(quick: Relay):
    sockets = [await connect(quick) for _ in range(50)]
    head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Slow: " + b"a" * 1000
    senders = [asyncio.create_task(trickle(w, head, 0.2)) for _, w in sockets]
    waits = [asyncio.create_task(closed_after(r, 10)) for r, _ in sockets]
    await asyncio.sleep(0.3)
    await served(quick)  # the others wait on their own timers, not on the relay
    took = await asyncio.gather(*waits)
    assert all(HEADER_S - 0.3 <= t <= HEADER_S + 1.5 for t in took), took
    for task in senders:
        task.cancel()
    for _, w in sockets:
        w.close()


async def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(quick: Relay):
    reader, writer = await connect(quick)
    took = await closed_after(reader, 10)
    writer.close()
    assert HEADER_S - 0.3 <= took <= HEADER_S + 1.5


async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(quick: Relay):
    reader, writer = await connect(quick)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
    status, headers, _ = await response(reader)
    assert status == 200 and headers.get("connection") != "close"
    took = await closed_after(reader, 10)
    writer.close()
    assert HEADER_S - 0.3 <= took <= HEADER_S + 1.5


async def test_a_head_completed_in_time_is_answered(quick: Relay):
    reader, writer = await connect(quick)
    head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"
    await trickle(writer, head, HEADER_S * 0.6 / len(head))  # slow, but done within the timeout
    status, _, body = await response(reader)
    writer.close()
    assert status == 200 and json.loads(body)["status"] == "ok"


# --- the request body -------------------------------------------------------------------------


async def expect_408(reader: asyncio.StreamReader) -> dict[str, Any]:
    status, headers, body = await response(reader)
    assert status == 408, body
    assert headers["connection"] == "close"
    assert headers["x-request-id"].startswith("req_")
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_timeout")
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", b'{"prompt": "' + b"a" * 500 + b'"}'),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'
            + b"a" * 500
            + b"\r\n--b--\r\n",
        ),
        ("application/x-www-form-urlencoded", b"prompt=" + b"a" * 500),
    ],
)
async def test_a_body_trickling_in_is_cut_with_408(quick: Relay, ctype: str, body: bytes):
    loop = asyncio.get_running_loop()
    reader, writer = await connect(quick)
    start = loop.time()
    writer.write(post_head(len(body), ctype))
    sender = asyncio.create_task(trickle(writer, body, 0.25))  # 4 bytes a second
    await served(quick)
    error = await expect_408(reader)
    took = loop.time() - start
    assert "too slowly" in error["message"]
    assert 0.5 <= took <= 3.0, took
    sender.cancel()
    writer.close()
    assert [
        t.request["prompt"]
        for t in await quick.store.list_tasks(owner="alice", after=None, limit=10, descending=True)
    ] == ["meanwhile"]  # the cut request made nothing


async def test_a_body_that_stops_arriving_is_cut_with_408(quick: Relay):
    reader, writer = await connect(quick)
    writer.write(post_head(100) + b'{"prompt": "')  # and then nothing
    await expect_408(reader)
    writer.close()


async def test_a_body_over_the_floor_but_past_the_deadline_is_cut_with_408(
    quick: Relay, monkeypatch: pytest.MonkeyPatch
):
    # the deadline for this relay's largest JSON body: 0.5 s + about 1 s
    monkeypatch.setattr(timeouts, "BODY_DEADLINE_RATE", 1_000_000)
    loop = asyncio.get_running_loop()
    body = b'{"prompt": "' + b"a" * 20_000 + b'"}'
    reader, writer = await connect(quick)
    start = loop.time()
    writer.write(post_head(len(body)))
    sender = asyncio.create_task(trickle(writer, body, 0.1, size=400))  # 4 KB/s: 5 s in all
    error = await expect_408(reader)
    took = loop.time() - start
    sender.cancel()
    writer.close()
    assert "did not arrive within" in error["message"]
    assert 1.3 <= took <= 3.5, took


async def test_a_slow_but_steady_body_is_served(quick: Relay):
    # longer than the head timeout and the grace, above the floor rate: nothing cuts it
    body = b'{"prompt": "' + b"a" * 1200 + b'"}'
    reader, writer = await connect(quick)
    writer.write(post_head(len(body)))
    await trickle(writer, body, 0.2, size=100)  # 500 B/s for about 2.5 s
    status, _, answer = await response(reader)
    writer.close()
    assert status == 200, answer
    assert json.loads(answer)["prompt"] == "a" * 1200


# --- the defaults -----------------------------------------------------------------------------


async def test_the_default_limits(relay: Relay):
    assert timeouts.HEADER_TIMEOUT_S == 30
    assert relay.client.server.runner.server is not None
    # every connection of a relay gets the head timeout (aiohttp's keepalive_timeout)
    reader, writer = await connect(relay)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
    await response(reader)
    handlers = relay.client.server.runner.server.connections
    assert handlers and {h.keepalive_timeout for h in handlers} == {30}
    writer.close()
    mb = 1024 * 1024
    # the deadline grows with max_upload_mb: minutes for the default 10 MB, never hours
    assert 60 <= timeouts.body_deadline_s(24 * mb) <= 600
    assert timeouts.body_deadline_s(48 * mb) > timeouts.body_deadline_s(24 * mb)
