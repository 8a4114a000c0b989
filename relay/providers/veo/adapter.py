"""The Veo adapter on the Gemini API: start a long-running operation, GET it by name, stream the
file it names with the API key (spec/providers/veo.md).

The key travels only in `x-goog-api-key` (never Bearer, never `?key=`, which would put it in
access logs). The file download answers a 302 to a signed storage URL on another host;
relay/upstream.py drops the key at that hop.

Results that arrive inline (`encodedVideo`) rather than as a file URI are recorded as completed,
but not served: the relay has nowhere to keep those bytes (a task row is no place for megabytes
of base64), so their content answers variant_not_available with a message that says why.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from relay.providers.base import (
    ContentSource,
    Image,
    Job,
    NotReady,
    Provider,
    Remote,
    Submitted,
    TaskRef,
    Unsupported,
    Update,
    VariantUnavailable,
    now,
)
from relay.providers.veo.answers import FILE_TTL_S, classify, operation_name, operation_update
from relay.providers.veo.request import Inline, build, frames, inline, refusal

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp

log = logging.getLogger("relay.providers.veo")

KEY_HEADER = "x-goog-api-key"
GEMINI_API = "https://generativelanguage.googleapis.com"
# a fetched image URL; base64 grows it by a third and the API caps a request at 20 MB
IMAGE_LIMIT = 12 * 1024 * 1024
INLINE_MESSAGE = (
    "veo returned this video inline (encodedVideo) instead of as a file; "
    "the relay only serves file results, so there is nothing to download"
)


class VeoProvider(Provider):
    name = "veo"
    credentials = ("api_key",)
    default_base_url = GEMINI_API
    features = frozenset({"image_input", "last_frame", "reference_images"})
    variants = frozenset({"video"})  # no thumbnail: the API makes only the MP4
    typical_run_s = 150.0  # "typical 1-6 min"
    result_ttl_s = float(FILE_TTL_S)

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        # the paths carry the version; a base_url copied with it would double it
        self.base_url = self.base_url.removesuffix("/v1beta")

    def check(self, job: Job) -> None:
        super().check(job)
        why = refusal(job)
        if why:
            raise Unsupported(why)

    def _headers(self) -> dict[str, str]:
        return {KEY_HEADER: self.channel.api_key or ""}

    @property
    def _key_id(self) -> str:
        """Which key made an operation (its file needs the same one), without storing the key."""
        return hashlib.sha256((self.channel.api_key or "").encode()).hexdigest()[:12]

    # --- create -----------------------------------------------------------------------------

    async def submit(self, job: Job) -> Submitted:
        placed = frames(job)
        first = await self._inline(placed.first) if placed.first else None
        last = await self._inline(placed.last) if placed.last else None
        references = tuple([await self._inline(image) for image in placed.references])
        native = build(job, first, last, references)
        if native.dropped:
            log.debug("veo (Gemini API) is not sent %s", ", ".join(native.dropped))
        url = f"{self.base_url}/v1beta/models/{quote(job.model, safe='')}:predictLongRunning"
        reply = await self.http.request("POST", url, headers=self._headers(), json=native.body)
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise classify(reply.status, reply.headers, body, reply.text(), on_operation=False)
        return Submitted(
            upstream_id=operation_name(body, reply.text()),
            seconds=str(native.seconds),
            size=native.size,
            state={"key_id": self._key_id},
        )

    async def _inline(self, image: Image) -> Inline:
        """The API takes inline bytes only: a URL image is fetched here, through the guard."""
        image = await self.image_bytes(image, IMAGE_LIMIT)
        assert image.data is not None and image.mime is not None
        return inline(image.data, image.mime)

    # --- poll -------------------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        url = f"{self.base_url}/v1beta/{quote(task.upstream_id, safe='/')}"
        reply = await self.http.request("GET", url, headers=self._headers())
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise classify(reply.status, reply.headers, body, reply.text(), on_operation=True)
        return operation_update(body, now=now(), raw=reply.text())

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        state: Mapping[str, Any] = task.state
        if not state.get("video_uri") and not state.get("inline_video"):
            update = await self.poll(task)  # finished before its result was kept: ask again
            if update.status != "completed":
                raise NotReady("the upstream operation has no result yet")
            state = update.state
        if task.state.get("key_id") not in (None, self._key_id):
            log.info("task %s was made with another key than the channel's now", task.id)
        uri = state.get("video_uri")
        if isinstance(uri, str) and uri:
            return self._remote(uri)
        raise VariantUnavailable(INLINE_MESSAGE)

    def _remote(self, uri: str) -> Remote:
        """The file URI needs the key; the key goes to the channel's host or Google's only."""
        origin = _origin(uri)
        trusted = origin == _origin(self.base_url)
        keyed = trusted or origin == _origin(GEMINI_API)
        if not keyed:
            log.info("veo named a result on an unexpected host; fetching it without the key")
        return Remote(
            uri,
            headers=self._headers() if keyed else {},
            content_type="video/mp4",
            trusted=trusted,
        )

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """None: a file URI never changes, and a 404 after its 2 days is final."""
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number: matches no origin
        return "", "", None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port
