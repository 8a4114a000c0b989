"""Outbound HTTP: the client sessions, the private-network guard, and transport-error mapping.

Two sessions share one process: `trusted` for a channel's own base_url (the operator chose that
host, LAN or not), and `guarded` for URLs that come from clients (image URLs) or from upstream
bodies (result URLs), which may not reach loopback, private or link-local addresses unless
`server.allow_private_networks` is on. The guard sits in the resolver, so it also holds for
every redirect hop and against DNS rebinding; IP-literal hosts are checked before connecting.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from relay.upstream_errors import Rejected, Unavailable

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a JSON answer larger than this is not a status answer
MAX_REDIRECTS = 5
USER_AGENT = "video-relay/0.1"


class BlockedAddress(OSError):
    """A guarded request resolved to an address the relay may not reach."""


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then drops every address that is not globally routable."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = [r for r in await self._inner.resolve(host, port, family) if _allowed(r["host"])]
        if not results:
            raise BlockedAddress(f"{host} resolves to a private or local address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_literal_host(url: str, allow_private: bool) -> None:
    """IP-literal hosts skip the resolver, so the guard checks them here."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower() in ("localhost",) or host.lower().endswith(".localhost"):
            raise BlockedAddress(f"{host} is a local address") from None
        return
    if not _allowed(host):
        raise BlockedAddress(f"{host} is a private or local address")


class Http:
    """The process's outbound sessions; opened and closed by the app's lifecycle."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        self.allow_private = allow_private_networks
        # No connection caps: a download holds its connection until it ends, so a per-host cap
        # would make the next client wait for a whole other download (both sessions carry them).
        self.trusted = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            headers={"User-Agent": USER_AGENT},
            json_serialize=lambda v: orjson.dumps(v).decode(),
            auto_decompress=True,
        )
        self.guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0,
                limit_per_host=0,
                resolver=None if allow_private_networks else GuardedResolver(),
            ),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def close(self) -> None:
        await self.trusted.close()
        await self.guarded.close()

    def for_channel(self, timeout_s: float) -> ChannelHttp:
        return ChannelHttp(self, timeout_s)

    @asynccontextmanager
    async def open(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        trusted: bool,
        connect_timeout: float,
        idle_timeout: float,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET a URL for streaming, following redirects by hand.

        Headers are sent to the first host only: a redirect to another origin drops them, so an
        upstream key never reaches a CDN. The response's body is read by the caller; there is no
        total timeout, only a connect timeout and an idle (between reads) timeout.
        """
        session = self.trusted if trusted else self.guarded
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=idle_timeout
        )
        send = dict(headers)
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            if not trusted or _origin(url) != origin:
                check_literal_host(url, self.allow_private)
            resp = await session.get(
                URL(url, encoded=True),
                headers=send,
                allow_redirects=False,
                timeout=timeout,
                auto_decompress=True,  # the bytes a client or a copy gets are the decoded ones
            )
            location = resp.headers.get("Location")
            if resp.status in (301, 302, 303, 307, 308) and location:
                resp.release()
                url = urljoin(url, location)
                if _origin(url) != origin:
                    send = {k: v for k, v in send.items() if k.lower() in _SAFE_ACROSS_ORIGINS}
                    # the redirect target was chosen by the upstream, not the operator
                    trusted = False
                    session = self.guarded
                continue
            try:
                yield resp
            finally:
                resp.release()
            return
        raise Unavailable("the upstream redirected too many times")


_SAFE_ACROSS_ORIGINS = frozenset({"range", "if-range", "accept"})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


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
            raise Unavailable("the upstream answer was too large", maybe_created=True)
        chunks.append(chunk)
    return b"".join(chunks)


class ChannelHttp:
    """What one adapter uses to talk to its upstream, with the channel's per-call timeout."""

    def __init__(self, http: Http, timeout_s: float) -> None:
        self.http = http
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """One call to the channel's upstream; transport failures become Unavailable.

        `maybe_created` is False only when the connection failed before anything was sent, the
        one case where a create may be retried elsewhere without risking a duplicate job.
        """
        body = data
        send_headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            send_headers.setdefault("Content-Type", "application/json")
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
                raw = await _read_all(resp, MAX_REPLY_BYTES)
                return Reply(resp.status, dict(resp.headers), raw)
        except aiohttp.ClientConnectorError as exc:
            raise Unavailable(
                "could not connect to the upstream", detail=f"{type(exc).__name__}: {exc.os_error}"
            ) from None
        except TimeoutError:
            raise Unavailable("the upstream did not answer in time", maybe_created=True) from None
        except aiohttp.ClientError as exc:
            raise Unavailable(
                "the upstream connection failed",
                maybe_created=True,
                detail=type(exc).__name__,
            ) from None

    async def fetch_image(self, url: str, limit: int) -> bytes:
        """Download a client-supplied image URL through the guard, at most `limit` bytes."""
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
