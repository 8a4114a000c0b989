"""Results an upstream answers inline, as base64 inside its JSON (Veo's `encodedVideo`, Gemini
Omni's `data`), for any adapter to serve like a file.

There is no URL to come back to, so an adapter keeps only a flag in the task row (megabytes of
base64 do not belong there) and its content() reads the upstream's answer again, finds the
base64 and returns `decode(...)`: an `InlineBytes` the content proxy serves from memory with
Range and HEAD, and the copier writes to storage like any download (with `[storage]
keep_videos` on, at completion, so the video outlives the upstream's answer).

The bound: an inline result is at most INLINE_MAX_BYTES decoded. Reading it needs the whole
answer in memory, so one read holds at most about four times that for a moment (the answer,
its parsed JSON, the decoded bytes) and one download or copy holds the decoded bytes while it
runs. A larger result is refused with a message that says so, before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from relay.domain import ContentSource, InlineBytes
from relay.providers.errors import NotReady, VariantUnavailable
from relay.providers.http import Reply, ReplyTooLarge

if TYPE_CHECKING:
    from relay.providers.base import Update

INLINE_MAX_BYTES = 32 * 1024 * 1024
# an upstream answer holding an inline result: its base64 (4 characters per 3 bytes) plus room
# for the JSON around it; ChannelHttp.request(limit=...) reads no more
INLINE_REPLY_BYTES = INLINE_MAX_BYTES // 3 * 4 + 1024 * 1024
_WHITESPACE = re.compile(r"\s+")
_URL_SAFE = str.maketrans("-_", "+/")


def too_large(provider: str) -> str:
    """The message for a result over the bound: what the client reads, on the task or the 404."""
    return (
        f"{provider} returned the video inline (base64 in its answer) and it is larger than the "
        f"{INLINE_MAX_BYTES // (1024 * 1024)} MiB the relay takes inline; ask for a shorter or "
        "smaller video"
    )


def encoded_size(encoded: str) -> int:
    """The decoded size of base64 text, from its length alone (whitespace counted, so it may
    say a little more): the bound is checked before decoding."""
    return len(encoded.rstrip("=")) * 3 // 4


def decode(encoded: str, content_type: str | None, *, provider: str) -> InlineBytes:
    """Inline base64 (standard or URL-safe, padded or not) as a content source; raises
    VariantUnavailable when it is over INLINE_MAX_BYTES, empty or not base64 (asking again
    cannot change that answer)."""
    if encoded_size(encoded) > INLINE_MAX_BYTES:
        raise VariantUnavailable(too_large(provider))
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # protobuf's JSON mapping also accepts URL-safe and unpadded base64: only then is the
        # text copied to be cleaned
        text = _WHITESPACE.sub("", encoded).rstrip("=").translate(_URL_SAFE)
        try:
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            data = b""
    if not data:
        raise VariantUnavailable(f"{provider} returned an inline video that is not readable")
    if len(data) > INLINE_MAX_BYTES:
        raise VariantUnavailable(too_large(provider))
    return InlineBytes(data, content_type or "video/mp4")


async def result_of_answer(
    *,
    provider: str,
    what: str,
    read: Callable[[], Awaitable[Reply]],
    parse: Callable[[Reply], Update],
    kept: str,
    remote: Callable[[str], ContentSource],
    inline: Callable[[Any], tuple[str, str] | None],
) -> ContentSource:
    """Where a finished job's bytes are, read from the upstream's answer again (Veo's
    operation, Gemini Omni's interaction): the download its parsed state names under `kept`,
    else the inline base64 `inline` finds in the body, decoded."""
    try:
        reply = await read()
    except ReplyTooLarge:
        raise VariantUnavailable(too_large(provider)) from None
    found = parse(reply)
    if found.status == "failed" and found.error is not None:
        raise VariantUnavailable(found.error.message)
    if found.status != "completed":
        raise NotReady(f"the upstream {what} has no result yet")
    where = found.state.get(kept)
    if isinstance(where, str) and where:
        return remote(where)
    video = inline(reply.json())
    if video is None:  # a parser completes only with a download or inline bytes
        raise VariantUnavailable(f"the upstream {what} holds no video")
    return decode(video[0], video[1], provider=provider)
