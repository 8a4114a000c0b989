"""The client's images and media in a form Runway takes (spec/providers/runway.md, "Media
inputs"): an https URL Runway can fetch as it is, a data URI within its size limit, or, for bytes
too big for one, a `runway://` URI of Runway's own upload (upload.py).

Runway fetches URLs itself and is strict: https, a domain name (no IP), at most 2048 characters,
a HEAD answer with a real image Content-Type and a Content-Length, and no redirects. So an image
URL is looked at with HEAD first; one that would fail is fetched here (through the private-
network guard) and sent as bytes. A reference video or audio URL that would fail is refused with
a 400 naming it, since the page only asks the relay to rescue images.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from relay.domain import Image, Media, data_url
from relay.providers.base import Frames, Provider
from relay.providers.errors import Rejected
from relay.providers.runway.request import Inputs
from relay.upstream import BlockedAddress, UnusableUrl, check_literal_host, parse_url

data_uri = data_url  # Runway's word for it
MB = 1024 * 1024
IMAGE_DATA_URI_MAX = 5 * MB  # the whole encoded string, prefix included, stays under this
MEDIA_DATA_URI_MAX = 16 * MB
IMAGE_URL_MAX = 16 * MB  # what Runway fetches from a URL
MEDIA_URL_MAX = 32 * MB
URL_MAX_CHARS = 2048
HEAD_TIMEOUT_S = 10.0


def fits_data_uri(data: bytes, mime: str, limit: int) -> bool:
    """Whether the data URI of these bytes is under `limit` characters, without building it."""
    return len(f"data:{mime};base64,") + 4 * ((len(data) + 2) // 3) < limit


def url_problem(url: str) -> str | None:
    """Why Runway would refuse this URL before fetching it, or None."""
    if len(url) > URL_MAX_CHARS:
        return f"is longer than {URL_MAX_CHARS} characters"
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return "is not https"
    host = (parts.hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None if host else "has no host"
    return "names an IP address, not a domain name"


def head_problem(status: int, headers: Mapping[str, str], kind: str, limit: int) -> str | None:
    """Why Runway would refuse the file behind a URL, from its HEAD answer, or None."""
    if 300 <= status < 400:
        return "redirects (runway does not follow redirects)"
    if status != 200:
        return f"answers HEAD with HTTP {status}"
    lowered = {k.lower(): v for k, v in headers.items()}
    ctype = lowered.get("content-type", "").split(";")[0].strip().lower()
    if not ctype.startswith(f"{kind}/"):
        return f"is served as {ctype or 'no type'}, not as {kind}/*"
    length = lowered.get("content-length", "")
    if not length.isdigit():
        return "is served without a Content-Length"
    if int(length) > limit:
        return f"is larger than {limit // MB} MB"
    return None


@dataclass
class Resolver:
    """Turns one request's images and media into URIs, for one submit."""

    provider: Provider[Any]
    upload: Callable[[bytes, str], Awaitable[str]]  # bytes, type -> a runway:// URI

    async def inputs(self, frames: Frames, media: tuple[Media, ...]) -> Inputs:
        first = await self.image(frames.first) if frames.first else None
        last = await self.image(frames.last) if frames.last else None
        references = tuple([await self.image(i) for i in frames.references])
        videos = tuple([await self.media(m) for m in media if m.kind == "video"])
        audios = tuple([await self.media(m) for m in media if m.kind == "audio"])
        return Inputs(first, last, references, videos, audios)

    async def image(self, image: Image) -> str:
        if image.url is not None:
            problem = url_problem(image.url) or await self.head(image.url, "image", IMAGE_URL_MAX)
            if problem is None:
                return image.url
            image = await self.provider.image_bytes(image, IMAGE_URL_MAX)
        assert image.data is not None and image.mime is not None
        if fits_data_uri(image.data, image.mime, IMAGE_DATA_URI_MAX):
            return image.data_url()
        return await self.upload(image.data, image.mime)

    async def media(self, item: Media) -> str:
        if item.url is not None:
            problem = url_problem(item.url) or await self.head(item.url, item.kind, MEDIA_URL_MAX)
            if problem is not None:
                raise Rejected(
                    f"{item.param}: runway would refuse this {item.kind} URL: it {problem}; send "
                    "the file itself or an https URL that serves it directly",
                    param=item.param,
                )
            return item.url
        assert item.data is not None and item.mime is not None
        if fits_data_uri(item.data, item.mime, MEDIA_DATA_URI_MAX):
            return item.data_url()
        return await self.upload(item.data, item.mime)

    async def head(self, url: str, kind: str, limit: int) -> str | None:
        """What a HEAD of the URL shows Runway would refuse, or None; a URL the relay cannot
        reach at all is left to Runway, whose network is not the relay's."""
        http = self.provider.http.http
        try:
            target, _ = parse_url(url)
            check_literal_host(target.host or "", http.allow_private)
            timeout = aiohttp.ClientTimeout(total=HEAD_TIMEOUT_S)
            async with http.guarded.head(target, allow_redirects=False, timeout=timeout) as resp:
                return head_problem(resp.status, resp.headers, kind, limit)
        except (aiohttp.ClientError, TimeoutError, UnusableUrl, BlockedAddress, ValueError):
            return None
