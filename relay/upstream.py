"""Outbound HTTP: the client sessions and the private-network guard.

Two sessions share one process: `trusted` for a channel's own base_url (the operator chose that
host, LAN or not), and `guarded` for URLs that come from clients (image URLs) or from upstream
bodies (result URLs), which may not reach loopback, private or link-local addresses unless
`server.allow_private_networks` is on. The guard sits in the resolver, so it also holds for
every redirect hop and against DNS rebinding; IP-literal hosts are checked before connecting.

What an adapter uses to call its upstream (one request, errors classified) is in
relay/providers/http.py; this module knows nothing of providers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

MAX_REDIRECTS = 5
USER_AGENT = "video-relay/0.1"


class BlockedAddress(OSError):
    """A guarded request resolved to an address the relay may not reach."""


class TooManyRedirects(aiohttp.ClientError):
    """More than MAX_REDIRECTS hops: a loop, or an upstream not worth following."""


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
        raise TooManyRedirects("the upstream redirected too many times")


_SAFE_ACROSS_ORIGINS = frozenset({"range", "if-range", "accept"})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
