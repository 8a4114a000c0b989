"""Content: the finished bytes, from a local file, an upstream URL or an upstream's inline
answer, to the client.

Local files (the demo's assets, later the stored copies) go out through aiohttp's FileResponse,
which uses the kernel's sendfile. Upstream bytes are piped chunk by chunk: each chunk is written
(and waits for the client to take it) before the next is read, so a slow client holds one chunk,
not the file; a client that leaves cancels the handler, which closes the upstream response.
Inline bytes (an `InlineBytes` the adapter decoded from its upstream's answer, at most
providers/inline.py's INLINE_MAX_BYTES) are already in memory: they go out in chunks the same
way, with a strong ETag from their digest, so If-Range works across requests although each
request decodes them anew.

Ranges follow RFC 9110 with one range per request (a multi-range request gets the whole 200).
The relay parses Range and If-Range itself, because aiohttp's FileResponse only understands
dates in If-Range, and so it can serve a range even when an upstream ignores Range.

Headers (api.md "Content"): the Content-Type is one of SERVED_TYPES, whatever a file or an
upstream claims (an upstream's `image/svg+xml` or `video/x-evil;charset=utf-7` goes out as
application/octet-stream; a missing or generic one is replaced by the type the adapter knows);
every answer carries `Cache-Control: private`, because each is one user's video; and no upstream
header reaches the client but a well-formed Content-Length and Content-Range (an upstream's ETag
and Last-Modified stay behind too, so a client's If-Range on proxied bytes simply gets the whole
200 from the upstream's point of view; a stored copy has the relay's own validators).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from relay.domain import EXTENSIONS, VARIANTS, ContentSource, InlineBytes, LocalFile, Remote
from relay.errors import NotFound, RangeNotSatisfiable, UpstreamFailed
from relay.events import DownloadEnded, DownloadStarted, Events
from relay.logs import count_body
from relay.upstream import BlockedAddress, Http, UnusableUrl

log = logging.getLogger("relay.content")

CONNECT_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 60.0  # between two reads of an upstream body; there is no total cap
INLINE_CHUNK = 256 * 1024  # what one write of inline bytes hands the transport
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,18})-(\d{1,18})/(\d{1,18}|\*)$")
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
SERVED_TYPES = frozenset({"video/mp4", "image/webp", "image/jpeg", "image/png"})
OCTET_STREAM = "application/octet-stream"
_TYPE_ALIASES = {"image/jpg": "image/jpeg"}  # a common misspelling, not another type
CACHE_CONTROL = "private"  # a shared cache must never keep one user's video for another


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int | None) -> ByteRange | None:
    """The one range of `bytes=a-b`, `bytes=a-` or `bytes=-n`, clipped to the size.

    None means "send it all": no header, a header this parser does not serve (several ranges,
    another unit, nonsense), or an unknown size. Raises Unsatisfiable when no byte is in range.
    """
    if not header or size is None:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: RFC 9110 says ignore the header
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(end, size - 1))


def if_range_allows(header: str | None, etag: str | None, last_modified: float | None) -> bool:
    """Whether an If-Range validator still matches, so the Range may be honoured."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        return etag is not None and not header.startswith("W/") and header == etag
    try:
        when = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return False
    return last_modified is not None and int(last_modified) <= when


def served_type(claimed: str | None, known: str | None, variant: str) -> str:
    """The Content-Type a client gets: one of SERVED_TYPES or application/octet-stream.

    `claimed` is what the file or upstream says; when it says nothing specific (missing or
    octet-stream), `known` (what the adapter knows of this source) or the variant's type stands
    in. Parameters are dropped: `video/mp4; codecs=...` is video/mp4."""
    media = (claimed or "").split(";", 1)[0].strip().lower()
    media = _TYPE_ALIASES.get(media, media)
    if media in SERVED_TYPES:
        return media
    if media not in _GENERIC_TYPES:
        return OCTET_STREAM
    if known is not None:
        return served_type(known, None, variant)
    return VARIANTS[variant][0]


def disposition(video_id: str, variant: str, content_type: str | None = None) -> str:
    """The file name follows the type actually served (a provider's JPEG thumbnail is .jpg)."""
    ext = EXTENSIONS.get(content_type or "", VARIANTS[variant][1])
    return f'attachment; filename="{video_id}.{ext}"'


Refresh = Callable[[], Awaitable[ContentSource | None]]
Sent = Callable[[str, int], None]  # (source: "upstream" or "local", bytes) once a body is out


class Expired(Exception):
    """The upstream URL answered 403/404/410 before any byte went to the client."""


@dataclass(frozen=True)
class _Download:
    """Who is told while a body goes out (DownloadStarted, then DownloadEnded however the body
    ends): the downloads in progress, for the operator."""

    events: Events | None
    video_id: str
    variant: str

    @contextmanager
    def streaming(self, source: str) -> Iterator[None]:
        if self.events is None:
            yield
            return
        self.events.emit(DownloadStarted(self.video_id, self.variant, source))
        try:
            yield
        finally:
            self.events.emit(DownloadEnded(self.video_id, self.variant, source))


async def serve(
    request: web.Request,
    source: ContentSource,
    *,
    video_id: str,
    variant: str,
    http: Http,
    refresh: Refresh | None = None,
    sent: Sent | None = None,
    events: Events | None = None,
) -> web.StreamResponse:
    """Serve a source; an expired upstream URL is replaced by a fresh one once, transparently."""
    count = sent or (lambda source, size: None)
    for attempt in range(2):
        if isinstance(source, LocalFile):
            return await serve_file(
                request, source, video_id=video_id, variant=variant, sent=count, events=events
            )
        if isinstance(source, InlineBytes):
            return await serve_inline(
                request, source, video_id=video_id, variant=variant, sent=count, events=events
            )
        try:
            return await serve_remote(
                request,
                source,
                video_id=video_id,
                variant=variant,
                http=http,
                sent=count,
                events=events,
            )
        except Expired:
            fresh = await refresh() if refresh is not None and attempt == 0 else None
            if fresh is None:
                break
            log.info("content of %s: the upstream URL expired; retrying with a fresh one", video_id)
            source = fresh
    raise NotFound(f"the content of {video_id!r} is no longer available upstream")


async def serve_file(
    request: web.Request,
    source: LocalFile,
    *,
    video_id: str,
    variant: str,
    sent: Sent | None = None,
    events: Events | None = None,
) -> web.StreamResponse:
    try:
        st = source.path.stat()
    except OSError:
        log.error("content file of %s is missing", video_id)
        raise NotFound(f"the content of {video_id!r} is missing", code="not_found") from None
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    headers = CIMultiDict(request.headers)
    headers.pop("If-Range", None)
    rng_header = request.headers.get("Range")
    if not if_range_allows(request.headers.get("If-Range"), etag, st.st_mtime):
        rng_header = None
    try:
        rng = parse_range(rng_header, st.st_size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(st.st_size) from None
    headers.pop("Range", None)
    if rng is not None:
        headers["Range"] = f"bytes={rng.start}-{rng.end}"
    if sent is not None and request.method != "HEAD":  # sendfile, after the handler returns
        sent("local", rng.length if rng is not None else st.st_size)
    # the relay chose this type when it stored the file (a copy whose upstream claimed something
    # off the list was stored as octet-stream); a type off the list is from an older row
    ctype = source.content_type if source.content_type in SERVED_TYPES else OCTET_STREAM
    return _FileResponse(
        source.path,
        request.clone(headers=headers),
        headers={
            "Content-Type": ctype,
            "Content-Disposition": disposition(video_id, variant, ctype),
            "Cache-Control": CACHE_CONTROL,
        },
        download=_Download(events, video_id, variant),
    )


class _FileResponse(web.FileResponse):
    """FileResponse reads Range from the request it prepares with: give it the relay's decision
    (a request carrying only the range the relay chose to honour). What sendfile really sent
    goes into the access line (aiohttp's own count leaves it out)."""

    def __init__(
        self,
        path: Path,
        decided: web.BaseRequest,
        headers: dict[str, str],
        download: _Download | None = None,
    ) -> None:
        super().__init__(path, headers=headers)
        self._decided = decided
        self._download = download

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._download is None or request.method == "HEAD":
            return await super().prepare(self._decided)
        with self._download.streaming("local"):  # sendfile runs inside prepare
            return await super().prepare(self._decided)

    async def _sendfile(
        self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        try:
            return await super()._sendfile(request, fobj, offset, count)
        finally:
            # asyncio leaves the file at offset + bytes sent, also when the client went away
            count_body(max(0, min(count, fobj.tell() - offset)))


async def serve_inline(
    request: web.Request,
    source: InlineBytes,
    *,
    video_id: str,
    variant: str,
    sent: Sent | None = None,
    events: Events | None = None,
) -> web.StreamResponse:
    data = source.data
    size = len(data)
    # hashlib lets go of the GIL on large inputs: a 32 MiB digest does not stall the loop
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    etag = f'"{digest[:32]}"'
    rng_header = request.headers.get("Range")
    if not if_range_allows(request.headers.get("If-Range"), etag, None):
        rng_header = None
    try:
        rng = parse_range(rng_header, size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(size) from None
    ctype = served_type(source.content_type, None, variant)
    headers = {
        "Content-Type": ctype,
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition(video_id, variant, ctype),
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
    }
    start, length = 0, size
    if rng is not None:
        start, length = rng.start, rng.length
        headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{size}"
    response = web.StreamResponse(status=206 if rng is not None else 200, headers=headers)
    response.content_length = length
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    view = memoryview(data)[start : start + length]
    written = 0
    with _Download(events, video_id, variant).streaming("upstream"):
        try:
            while written < length:
                chunk = view[written : written + INLINE_CHUNK]
                await response.write(chunk)  # waits while the client's buffer is full
                written += len(chunk)
        except ConnectionResetError:
            log.info("client went away after %d bytes", written)
            return response
        finally:
            count_body(written)
            if sent is not None:
                sent("upstream", written)
    await response.write_eof()
    return response


async def serve_remote(
    request: web.Request,
    source: Remote,
    *,
    video_id: str,
    variant: str,
    http: Http,
    sent: Sent | None = None,
    events: Events | None = None,
    exact_type: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """`exact_type`: serve this Content-Type and no file name (a hosted input, whose type is
    what the client sent, not a video variant's), with `extra_headers` over the usual ones."""
    send = dict(source.headers)
    for name in ("Range", "If-Range"):
        if name in request.headers:
            send[name] = request.headers[name]
    try:
        async with http.open(
            source.url,
            headers=send,
            trusted=source.trusted,
            connect_timeout=CONNECT_TIMEOUT_S,
            idle_timeout=IDLE_TIMEOUT_S,
        ) as upstream:
            download = _Download(events, video_id, variant)
            return await _relay_body(
                request, upstream, source, download, sent, exact_type, extra_headers
            )
    except BlockedAddress:
        log.warning("content of %s points to a private address; refused", video_id)
        raise UpstreamFailed("the upstream result address is not allowed") from None
    except UnusableUrl as exc:
        log.warning("content of %s: the upstream result URL is unusable: %s", video_id, exc)
        raise UpstreamFailed("the upstream result URL is not usable") from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, BlockedAddress):
            log.warning("content of %s points to a private address; refused", video_id)
            raise UpstreamFailed("the upstream result address is not allowed") from None
        raise UpstreamFailed("could not reach the upstream for the content") from None
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning(
            "content of %s: upstream failed before the body: %s", video_id, type(exc).__name__
        )
        raise UpstreamFailed("the upstream failed to send the content") from None


async def _relay_body(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    source: Remote,
    download: _Download,
    sent_to: Sent | None,
    exact_type: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    video_id, variant = download.video_id, download.variant
    status = upstream.status
    if status in (403, 404, 410):
        raise Expired
    if status == 416:
        raise RangeNotSatisfiable(_total_from_content_range(upstream.headers.get("Content-Range")))
    if status not in (200, 206):
        log.warning("content of %s: upstream answered HTTP %d", video_id, status)
        raise UpstreamFailed("the upstream failed to send the content")
    ctype = upstream.headers.get("Content-Type", "").lower()
    if ctype.startswith(("application/json", "text/")):
        # an error page with a 200: never pass it off as a video
        log.warning("content of %s: upstream sent %.60r instead of media", video_id, ctype)
        raise UpstreamFailed("the upstream sent an error instead of the content")

    encoded = upstream.headers.get("Content-Encoding", "identity").lower() != "identity"
    # aiohttp decodes a Content-Encoding: the upstream's length is not what the client will get
    length = None if encoded else _int(upstream.headers.get("Content-Length"))
    skip, limit = 0, None
    headers = _out_headers(upstream.headers, source, video_id, variant)
    if exact_type is not None:
        headers["Content-Type"] = exact_type
        headers.pop("Content-Disposition")
    headers.update(extra_headers or {})
    if status == 206 and "Content-Range" not in headers and not encoded:
        log.warning("content of %s: upstream sent a partial body without a range", video_id)
        raise UpstreamFailed("the upstream failed to send the content")
    if encoded:
        headers.pop("Content-Length", None)
        headers.pop("Content-Range", None)
    if status == 200:
        headers.pop("Content-Range", None)  # a whole body has no range, whatever the upstream says
    out_status = status
    if status == 200 and "If-Range" not in request.headers:
        # The upstream ignored Range: serve the range anyway by skipping and stopping.
        try:
            rng = parse_range(request.headers.get("Range"), length)
        except Unsatisfiable:
            raise RangeNotSatisfiable(length) from None
        if rng is not None and length is not None:
            skip, limit = rng.start, rng.length
            out_status = 206
            headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{length}"
            headers["Content-Length"] = str(rng.length)
    response = web.StreamResponse(status=out_status, headers=headers)
    if "Content-Length" in headers:
        response.content_length = int(headers["Content-Length"])
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    expected = limit if limit is not None else (length - skip if length is not None else None)
    with download.streaming("upstream"):
        sent, broken = await _pipe(upstream, response, skip, limit, sent_to)
    if broken or (expected is not None and sent < expected):
        _abort(request, video_id, f"upstream body ended after {sent} of {expected or '?'} bytes")
        return response
    await response.write_eof()
    return response


async def _pipe(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    skip: int,
    limit: int | None,
    sent_to: Sent | None = None,
) -> tuple[int, bool]:
    """Copy the body chunk by chunk; returns the bytes written and whether the upstream broke.
    What went out is counted once, also when the client's leaving cancels the copy."""
    sent = 0
    try:
        async for chunk in upstream.content.iter_any():
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            if limit is not None:
                chunk = chunk[: limit - sent]
            try:
                await response.write(chunk)  # waits while the client's buffer is full
            except ConnectionResetError:
                log.info("client went away after %d bytes", sent)
                return sent, True
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
    except (aiohttp.ClientPayloadError, TimeoutError, aiohttp.ClientConnectionError) as exc:
        log.warning("upstream body broke after %d bytes: %s", sent, type(exc).__name__)
        return sent, True
    finally:
        count_body(sent)
        if sent_to is not None:
            sent_to("upstream", sent)
    return sent, False


def _abort(request: web.Request, video_id: str, why: str) -> None:
    """Cut the client's connection so a truncated body cannot pass for a complete one."""
    log.warning("content of %s aborted: %s", video_id, why)
    transport = request.transport
    if transport is not None:
        transport.abort()


def _out_headers(
    upstream: Mapping[str, str], source: Remote, video_id: str, variant: str
) -> dict[str, str]:
    """The client's headers: the relay's own, and of the upstream's only a well-formed length
    and range (a malformed one is left out rather than passed on)."""
    ctype = served_type(upstream.get("Content-Type"), source.content_type, variant)
    headers = {
        "Content-Type": ctype,
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition(video_id, variant, ctype),
        "Cache-Control": CACHE_CONTROL,
    }
    length = _int(upstream.get("Content-Length"))
    if length is not None:
        headers["Content-Length"] = str(length)
    content_range = (upstream.get("Content-Range") or "").strip()
    if _CONTENT_RANGE.match(content_range):
        headers["Content-Range"] = content_range
    return headers


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    # ASCII digits only: str.isdigit() is also true of "²", which int() refuses
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _total_from_content_range(value: str | None) -> int | None:
    if value and "/" in value:
        return _int(value.rsplit("/", 1)[1].strip())
    return None
