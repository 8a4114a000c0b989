"""How long a client may take to send a request: its head, then its body.

A client that sends slowly holds a socket, a parser and (for a body) memory for as long as the
server lets it; a few hundred of them (slowloris) starve a small relay. Two limits bound that:

**The head: `HEADER_TIMEOUT_S` (30 s).** aiohttp 3.x has no timeout of its own for reading a
request's head (its old `slow_request_timeout` was removed); the one timer it runs on a connection
waiting for a request is `keepalive_timeout`. That timer starts when the connection opens and again
when a response ends, bytes arriving do not push it back, and when it fires it closes the
connection only while no complete request head has arrived. So `keepalive_timeout` is a header
timeout as well: a client that sends a header byte now and then, or nothing at all, is closed 30 s
after it connected (or after its last response), while a request being handled is never cut by
it. The price is that idle keep-alive connections are closed after 30 s too, instead of aiohttp's
3,630 s; clients reconnect, and a reverse proxy that pools connections to the relay should idle
them out sooner than that (nginx `keepalive_timeout` in the upstream block, Caddy `keepalive`).
It is passed as an aiohttp `handler_args` entry by create_app, so every way of running the app
(`relay serve`, the test server) gets it.

**The body: a floor rate and a deadline** (`paced`, used by `web.forms.read_body`, the only reader
of request bodies). After a grace of `BODY_GRACE_S` (10 s: a slow start, a phone waking its radio)
the body must keep up an average of `BODY_MIN_RATE` (4 KiB/s, slower than any link one would upload
an image over) counted from when the handler started reading, and it must be complete within
`BODY_GRACE_S` plus the largest body allowed (scaled from `max_upload_mb`) at `BODY_DEADLINE_RATE`
(64 KiB/s): about 6.6 minutes for the default 10 MB uploads. This is Apache mod_reqtimeout's
`MinRate` rule, plus a cap so a client keeping exactly to the floor cannot hold a connection for
hours. A body that falls behind is answered 408 `request_timeout` in the error envelope, with
`Connection: close`; the bytes counted are the ones received on the socket
(`StreamReader.total_bytes`), so a part that the multipart parser has not handed over yet still
counts. Other clients are unaffected: each limit is a timer on its own connection.

Tests shorten these through the module constants (read when an app is made or a body is read).
`relay serve`'s stop (SIGTERM: up to 10 s for requests in flight) lives in `relay/cli/serve.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import StreamReader, web

from relay.errors import RequestTimeout

HEADER_TIMEOUT_S = 30.0
BODY_GRACE_S = 10.0
BODY_MIN_RATE = 4 * 1024  # bytes a second, averaged from the start of the body
BODY_DEADLINE_RATE = 64 * 1024  # the whole body at its largest, at this rate, after the grace


def handler_args() -> dict[str, Any]:
    """aiohttp's per-connection settings (web.Application(handler_args=...))."""
    return {"keepalive_timeout": HEADER_TIMEOUT_S}


def body_deadline_s(limit: int) -> float:
    """The most time a body of at most `limit` bytes may take to arrive."""
    return BODY_GRACE_S + limit / BODY_DEADLINE_RATE


@contextlib.asynccontextmanager
async def paced(request: web.Request, limit: int) -> AsyncIterator[None]:
    """Reading the body inside this block is cut with a 408 once it falls under the floor rate
    or passes the deadline for a body of at most `limit` bytes."""
    pace = _Pace(request.content, body_deadline_s(limit))
    try:
        async with asyncio.timeout(None) as timer:
            pace.watch(timer)
            try:
                yield
            finally:
                pace.stop()
    except TimeoutError:
        if pace.cause is None:
            raise
        raise RequestTimeout(pace.message()) from None


class _Pace:
    """One timer per body, moved on as bytes arrive (nothing runs per chunk); when the body has
    fallen behind, it expires the read's timeout."""

    def __init__(self, content: StreamReader, deadline_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._content = content
        self._start = self._loop.time()
        self._deadline = self._start + deadline_s
        self._grace, self._floor = BODY_GRACE_S, BODY_MIN_RATE
        self._handle: asyncio.TimerHandle | None = None
        self._timer: asyncio.Timeout | None = None
        self.cause: str | None = None

    def watch(self, timer: asyncio.Timeout) -> None:
        self._timer = timer
        self._handle = self._loop.call_at(self._allowed(), self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _allowed(self) -> float:
        received = self._content.total_bytes
        return min(self._deadline, self._start + self._grace + received / self._floor)

    def _check(self) -> None:
        if self._content.is_eof():
            return
        now, until = self._loop.time(), self._allowed()
        if now < until:
            self._handle = self._loop.call_at(until, self._check)
            return
        self.cause = "deadline" if until >= self._deadline else "rate"
        assert self._timer is not None
        self._timer.reschedule(now)

    def message(self) -> str:
        if self.cause == "deadline":
            return f"the request body did not arrive within {self._deadline - self._start:.0f} s"
        return f"the request body arrived too slowly (under {self._floor / 1024:.4g} KiB/s)"
