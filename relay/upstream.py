"""Outbound HTTP: the client sessions and the private-network guard.

Two sessions share one process: `trusted` for a channel's own base_url (the operator chose that
host, LAN or not), and `guarded` for URLs that come from clients (image URLs) or from upstream
bodies (result URLs, thumbnails, redirects), which may reach only plainly global unicast
addresses unless `server.allow_private_networks` is on. The guard sits in the resolver, so it
also holds for every redirect hop and against DNS rebinding; IP-literal hosts are checked before
connecting.

What "plainly global unicast" means (`address_allowed`), an allow-list rather than
`ipaddress.is_global`, which calls site-local, 6to4, NAT64 and IPv4-compatible addresses global:

- IPv4: anything but this network (0/8, where 0.0.0.0 reaches the local host), private,
  carrier-grade NAT, loopback, link-local, IETF protocol, documentation, benchmarking, the old
  6to4 relay anycast, multicast and reserved ranges.
- IPv6: only 2000::/3, minus 2001::/23 (Teredo, benchmarking, ORCHID), documentation
  (2001:db8::/32, 3fff::/20) and 6to4 (2002::/16). 6to4 and Teredo are tunnels to an IPv4
  address (Teredo's obfuscated) that no CDN serves from any more, so they are refused whole
  rather than judged by what they wrap. The local-use NAT64 prefix 64:ff9b:1::/48 is refused
  too: only its operator knows where it leads.
- Forms that carry an IPv4 address which is where the packets really go are judged by that
  address: IPv4-mapped (::ffff:a.b.c.d) and the well-known NAT64 prefix (64:ff9b::a.b.c.d, what
  DNS64 hands an IPv6-only host for a public IPv4 name). IPv4-compatible (::a.b.c.d, deprecated)
  and everything else outside 2000::/3 (::, ::1, fc00::/7, fe80::/10, site-local fec0::/10,
  multicast ff00::/8, discard 100::/64, ...) is refused.

A URL that does not parse (an unclosed `[`, a bad IPv6 literal, a port out of range) or is not
http(s) is an `UnusableUrl`, an aiohttp.ClientError like any other failure to fetch, never a
ValueError that would surface as a 500.

What an adapter uses to call its upstream (one request, errors classified) is in
relay/providers/http.py; this module knows nothing of providers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urljoin

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


class UnusableUrl(aiohttp.ClientError):
    """A URL that cannot be fetched: it does not parse, or it is not http(s) with a host.

    The message says why and never holds the URL (result URLs carry signatures)."""


_V4_REFUSED = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 connects to the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata lives here
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # the 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_allowed(address: str) -> bool:
    """Whether a guarded request may connect to this IP address (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _v4_allowed(ip.ipv4_mapped)
        if ip in _NAT64:
            return _v4_allowed(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip not in _V6_GLOBAL_UNICAST or any(ip in net for net in _V6_REFUSED):
            return False
        return ip.is_global
    return _v4_allowed(ip)


def _v4_allowed(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _V4_REFUSED)


def system_resolver() -> AbstractResolver:
    """The resolver the guard filters: the system's, as aiohttp's default is (tests swap it)."""
    return aiohttp.ThreadedResolver()


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then drops every address that is not plainly global unicast."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else system_resolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        results = [r for r in found if address_allowed(r["host"])]
        if not results:
            raise BlockedAddress("the host resolves to a private or local address")
        return results

    async def close(self) -> None:
        await self._inner.close()


Origin = tuple[str, str, int | None]


def parse_url(url: str) -> tuple[URL, Origin]:
    """The URL as aiohttp will send it, and its origin; UnusableUrl when it cannot be fetched.

    The guard and the origin check read the same parsed URL the request goes to, so no two
    parsers can disagree about the host."""
    if any(c <= " " or c == "\x7f" for c in url):
        raise UnusableUrl("the URL holds spaces or control characters")
    try:
        parsed = URL(url, encoded=True)
        scheme, host, port = parsed.scheme.lower(), (parsed.host or "").lower(), parsed.port
    except (ValueError, TypeError):
        raise UnusableUrl("the URL does not parse") from None
    if scheme not in ("http", "https") or not host:
        raise UnusableUrl("not an http(s) URL with a host")
    if port == 0:
        raise UnusableUrl("the URL names port 0")
    if ":" in host:
        # aiohttp takes any host with a colon for an IPv6 literal and skips the resolver, so
        # one that is not a valid address must not pass the guard as a host name
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UnusableUrl("the URL's IPv6 address is not valid") from None
    return parsed, (scheme, host, port)


def check_literal_host(host: str, allow_private: bool) -> None:
    """IP-literal hosts skip the resolver, so the guard checks them here."""
    if allow_private:
        return
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise BlockedAddress("the host is a local name") from None
        return
    if not address_allowed(host):
        raise BlockedAddress("the host is a private or local address")


class Http:
    """The process's outbound sessions; opened and closed by the app's lifecycle."""

    def __init__(
        self,
        *,
        allow_private_networks: bool,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """`resolver` is the one the guard filters (default: `system_resolver()`)."""
        self.allow_private = allow_private_networks
        # No connection caps: a download holds its connection until it ends, so a per-host cap
        # would make the next client wait for a whole other download (both sessions carry them).
        self.trusted = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            headers={"User-Agent": USER_AGENT},
            json_serialize=lambda v: orjson.dumps(v).decode(),
            auto_decompress=True,
        )
        guard = None if allow_private_networks else GuardedResolver(resolver)
        self.guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, resolver=guard),
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
        total timeout, only a connect timeout and an idle (between reads) timeout. Raises
        UnusableUrl for a URL (or a redirect's Location) that cannot be fetched, BlockedAddress
        (or a ClientConnectorError wrapping it) for one the guard refuses.
        """
        session = self.trusted if trusted else self.guarded
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=idle_timeout
        )
        send = dict(headers)
        target, first = parse_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            if not trusted:
                check_literal_host(target.host or "", self.allow_private)
            try:
                resp = await session.get(
                    target,
                    headers=send,
                    allow_redirects=False,
                    timeout=timeout,
                    auto_decompress=True,  # the bytes a client or a copy gets are the decoded ones
                )
            except aiohttp.ClientError:
                raise
            except ValueError:
                raise UnusableUrl("the request to the URL could not be made") from None
            location = resp.headers.get("Location")
            if resp.status in (301, 302, 303, 307, 308) and location:
                resp.release()
                try:
                    joined = urljoin(str(target), location)
                except ValueError:
                    raise UnusableUrl("the redirect's Location does not parse") from None
                target, origin = parse_url(joined)
                if origin != first:
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
