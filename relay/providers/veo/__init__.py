"""Google Veo on the Gemini API, `provider = "veo"` (spec/providers/veo.md): start a long-running
operation, GET it by name, stream the file it names with the API key. request.py and response.py
translate, models.py knows the generations; this class talks.

The key travels only in `x-goog-api-key` (never Bearer, never `?key=`, which would put it in
access logs). The file download answers a 302 to a signed storage URL on another host; the
relay's download drops the key at that hop (Remote headers go to the first host only).

A result that arrives inline (`encodedVideo`, base64 in the operation) rather than as a file URI
is served like any other: the task row keeps only a flag (it is no place for megabytes of
base64), and content() reads the operation again and returns the decoded bytes, which the content
proxy serves with Range and the copier stores (providers/inline.py). Every operation read may
hold such an answer, so it reads up to INLINE_REPLY_BYTES; a result over INLINE_MAX_BYTES
(32 MiB decoded) fails the task with a message saying so.

Vertex AI (`veo-vertex`) is not here: it needs OAuth2 service-account tokens (RS256 JWTs), and
the standard library cannot sign RSA.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from relay.domain import ContentSource, Image, Remote, TaskRef, VideoRequest
from relay.providers.base import (
    Accepts,
    ChannelView,
    NoOptions,
    Provider,
    Submitted,
    TaskError,
    Update,
    now,
    split_frames,
)
from relay.providers.http import Reply, ReplyTooLarge
from relay.providers.inline import INLINE_REPLY_BYTES, result_of_answer, too_large
from relay.providers.veo import models
from relay.providers.veo.request import Inline, build, inline
from relay.providers.veo.request import refusal as model_refusal
from relay.providers.veo.response import (
    FILE_TTL_S,
    classify,
    inline_video,
    operation_name,
    operation_update,
)

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

log = logging.getLogger("relay.providers.veo")

KEY_HEADER = "x-goog-api-key"
GEMINI_API = "https://generativelanguage.googleapis.com"
# a fetched image URL; base64 grows it by a third and the API caps a request at 20 MB
IMAGE_LIMIT = 12 * 1024 * 1024


class VeoProvider(Provider[NoOptions]):
    name = "veo"
    credentials = ("api_key",)
    default_base_url = GEMINI_API
    features = frozenset({"image_input", "last_frame", "reference_images"})
    variants = frozenset({"video"})  # no thumbnail: the API makes only the MP4
    Options = NoOptions
    typical_run_s = 150.0  # "typical 1-6 min"
    result_ttl_s = float(FILE_TTL_S)

    def __init__(self, channel: ChannelView[NoOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        # the paths carry the version; a base_url copied with it would double it
        self.base_url = self.base_url.removesuffix("/v1beta")

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or model_refusal(request, model)

    def _headers(self) -> dict[str, str]:
        return {KEY_HEADER: self.channel.api_key or ""}

    @property
    def _key_id(self) -> str:
        """Which key made an operation (its file needs the same one), without storing the key."""
        return hashlib.sha256((self.channel.api_key or "").encode()).hexdigest()[:12]

    # --- create -----------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        placed = split_frames(request.images)
        first = await self._inline(placed.first) if placed.first else None
        last = await self._inline(placed.last) if placed.last else None
        references = tuple([await self._inline(image) for image in placed.references])
        native = build(request, model, first, last, references)
        if native.dropped:
            log.debug("veo (Gemini API) is not sent %s", ", ".join(native.dropped))
        url = f"{self.base_url}/v1beta/models/{quote(model, safe='')}:predictLongRunning"
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
        try:
            reply = await self._operation(task)
        except ReplyTooLarge:
            # only an inline video makes an operation this large
            error = TaskError("generation_failed", too_large(self.name))
            return Update(status="failed", error=error, completed_at=now())
        return operation_update(reply.json(), now=now(), raw=reply.text())

    async def _operation(self, task: TaskRef) -> Reply:
        url = f"{self.base_url}/v1beta/{quote(task.upstream_id, safe='/')}"
        reply = await self.http.request(
            "GET", url, headers=self._headers(), limit=INLINE_REPLY_BYTES
        )
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise classify(reply.status, reply.headers, body, reply.text(), on_operation=True)
        return reply

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        if task.state.get("key_id") not in (None, self._key_id):
            log.info("task %s was made with another key than the channel's now", task.id)
        uri = task.state.get("video_uri")
        if isinstance(uri, str) and uri:
            return self._remote(uri)

        # inline, or finished before its result was kept: the operation holds the answer
        def inline(body: Any) -> tuple[str, str] | None:
            found = inline_video(body)
            return None if found is None else (found[0], found[1] or "video/mp4")

        return await result_of_answer(
            provider=self.name,
            what="operation",
            read=lambda: self._operation(task),
            parse=lambda r: operation_update(r.json(), now=now(), raw=r.text()),
            kept="video_uri",
            remote=self._remote,
            inline=inline,
        )

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
        """None, without the base class's second poll: a finished operation names the same file
        URI forever (each download signs a fresh storage URL behind it), and a 404 after the
        file's 2 days is final, so polling again could only cost a call."""
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a bad port or IPv6 literal: matches no origin (the fetch refuses it)
        return "", "", None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port
