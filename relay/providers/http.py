"""What an adapter uses to call its upstream: one request with the channel's timeout, the whole
answer read, transport failures classified as provider errors, and every call reported as an
`UpstreamCall` event (outcome and duration) for the operator's view of the channel.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from relay.events import Events, UpstreamCall
from relay.providers.errors import Rejected, Unavailable
from relay.upstream import BlockedAddress, Http, UnusableUrl

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a JSON answer larger than this is not a status answer


class ReplyTooLarge(Unavailable):
    """An answer over the read limit: policy treats it as any Unavailable, while an adapter
    whose answers may carry an inline result can tell the client why (providers/inline.py)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (error pages, empty bodies)."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None

    def text(self, limit: int = 500) -> str:
        return self.body[:limit].decode("utf-8", "replace")


async def _read_all(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body (StreamReader.read(n) returns only what has arrived so far), at most
    `limit` bytes: a status answer larger than that is not one."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge("the upstream answer was too large", maybe_created=True)
        chunks.append(chunk)
    return b"".join(chunks)


class ChannelHttp:
    """One channel's way to its upstream, with the channel's per-call timeout."""

    def __init__(
        self,
        http: Http,
        timeout_s: float,
        *,
        channel: str = "",
        provider: str = "",
        events: Events | None = None,
    ) -> None:
        self.http = http
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.channel = channel
        self.provider = provider
        self.events = events

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        limit: int = MAX_REPLY_BYTES,
    ) -> Reply:
        """One call to the channel's upstream; transport failures become Unavailable, an
        answer over `limit` bytes ReplyTooLarge.

        `maybe_created` is False only when the connection failed before anything was sent, the
        one case where a create may be retried elsewhere without risking a duplicate job.
        """
        body = data
        send_headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            send_headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        status: int | None = None
        outcome = "ok"
        try:
            async with self.http.trusted.request(
                method,
                URL(url, encoded=True),
                headers=send_headers,
                data=body,
                params=params,
                timeout=self.timeout,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                if status >= 400:
                    outcome = f"http_{status // 100}xx"
                raw = await _read_all(resp, limit)
                return Reply(resp.status, dict(resp.headers), raw)
        except aiohttp.ClientConnectorError as exc:
            outcome = type(exc).__name__
            raise Unavailable(
                "could not connect to the upstream", detail=f"{type(exc).__name__}: {exc.os_error}"
            ) from None
        except TimeoutError:
            outcome = "timeout"
            raise Unavailable("the upstream did not answer in time", maybe_created=True) from None
        except aiohttp.ClientError as exc:
            outcome = type(exc).__name__
            raise Unavailable(
                "the upstream connection failed",
                maybe_created=True,
                detail=type(exc).__name__,
            ) from None
        finally:
            if self.events is not None:
                self.events.emit(
                    UpstreamCall(
                        self.channel,
                        self.provider,
                        method,
                        status,
                        outcome,
                        time.monotonic() - started,
                    )
                )

    async def fetch_image(self, url: str, limit: int) -> bytes:
        """Download a client-supplied image URL through the guard, at most `limit` bytes.

        Every refusal is a Rejected naming input_reference: an address the guard refuses (also
        after a redirect or through DNS; nothing is fetched), a URL that cannot be fetched."""
        try:
            async with self.http.open(
                url, headers={}, trusted=False, connect_timeout=10, idle_timeout=30
            ) as resp:
                if resp.status != 200:
                    raise Rejected(
                        f"the image URL answered HTTP {resp.status}", param="input_reference"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise Rejected("the image at the URL is too large", param="input_reference")
                    chunks.append(chunk)
                return b"".join(chunks)
        except BlockedAddress:
            raise Rejected(
                "the image URL points to a private or local address", param="input_reference"
            ) from None
        except UnusableUrl:
            raise Rejected(
                "the image URL is not a usable http(s) URL", param="input_reference"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            blocked = isinstance(exc.os_error, BlockedAddress)
            raise Rejected(
                "the image URL points to a private or local address"
                if blocked
                else "the image URL could not be fetched",
                param="input_reference",
                detail=type(exc).__name__,
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Rejected(
                "the image URL could not be fetched",
                param="input_reference",
                detail=type(exc).__name__,
            ) from None
