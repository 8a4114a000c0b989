"""The `compat-relay` adapter: another gateway (a new-api or one-api fork) that imitates the
Videos API in front of providers of its own (spec/providers/compat-relay.md).

It is the Videos API adapter of relay/providers/openai with lenient parsing and a few different
habits: create goes as JSON unless there are image bytes; a poll may meet `task_not_exist` for a
moment right after create (TaskNotFound; the relay waits it out by `poll_rules`); results come
from `/content` when the gateway serves it, else from a direct URL of the backing provider; remix
only when the operator says the backend is OpenAI; delete and list never call upstream.

request.py   the create body: metadata as the gateway's own field
response.py  ids, status synonyms, both error envelopes, result URLs, the older envelope
models.py    the tables: status words, result URL places, the backends' moderation signals
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import aiohttp

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import ChannelView, PollRules, Submitted, Update, option, split_frames
from relay.providers.compat_relay import response
from relay.providers.compat_relay.request import form_create, json_create
from relay.providers.errors import (
    ProviderError,
    TaskNotFound,
    Unsupported,
    VariantUnavailable,
)
from relay.providers.openai.request import form, image_part
from relay.providers.openai.response import Phase, poll_after
from relay.providers.openai.videos_api import VideosApiProvider

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp, Reply

log = logging.getLogger("relay.providers.compat_relay")

PROBE_TIMEOUT_S = 15.0
IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True)
class CompatRelayOptions:
    remix: bool = option(
        False, "forward remix (only when the gateway's jobs run on an OpenAI backend)"
    )


class CompatRelayProvider(VideosApiProvider[CompatRelayOptions]):
    name = "compat-relay"
    default_base_url = None
    variants = frozenset({"video", "thumbnail"})
    Options = CompatRelayOptions
    # A brand-new task may not be stored yet when the first poll comes (the page's grace period).
    poll_rules = PollRules(not_found_window_s=30.0, not_found_backoff=(2.0, 3.0, 5.0, 5.0))

    def __init__(self, channel: ChannelView[CompatRelayOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        if not channel.options.remix:
            # per channel, so the relay refuses a remix before it stores anything
            self.features = self.features - {"remix"}

    # --- the adapter contract ---------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        route = task.state.get("route")
        if route == "generations":
            reply = await self.get(self.generations_url(task.upstream_id))
        else:
            reply = await self.get(self.video_url(task.upstream_id))
            if response.route_missing(reply.status, reply.json()):
                # an older gateway: only the /video/generations route exists
                route = "generations"
                reply = await self.get(self.generations_url(task.upstream_id))
        if self.failed(reply):
            raise self.error(reply, "poll")
        update = self.parse(self.video_object(reply), reply.headers)
        if route == "generations" and task.state.get("route") != route:
            return replace(update, state={**update.state, "route": route})
        return update

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        if variant == "thumbnail":
            return self.thumbnail(task.state)
        proxied = Remote(
            self.video_url(task.upstream_id, "/content"),
            headers=self.auth_headers(),
            content_type="video/mp4",
            trusted=True,
        )
        direct = task.state.get("url")
        if not isinstance(direct, str) or await self.serves(proxied):
            return proxied
        return Remote(direct, content_type="video/mp4")  # a signed URL: no auth, as received

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """A fresh direct URL from a new retrieve. Not the base class's way: content() would
        probe /content again and offer it, while the one thing a retrieve renews is the backing
        provider's signed URL, which is what a failed source is replaced with here."""
        self.variant_check(variant)
        try:
            update = await self.poll(task)
        except TaskNotFound:
            return None
        if variant == "thumbnail":
            return self.thumbnail(update.state) if update.state.get("thumbnail_url") else None
        url = update.state.get("url")
        return Remote(url, content_type="video/mp4") if isinstance(url, str) else None

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        if not self.channel.options.remix:
            raise Unsupported(
                "provider 'compat-relay' forwards remix only with options = { remix = true }"
            )
        return await super().remix(source, request, model)

    async def delete(self, task: TaskRef) -> None:
        """Local only: these gateways have no DELETE route."""

    # --- hooks of the Videos API adapter ----------------------------------------------------

    async def create_body(self, request: VideoRequest, model: str, seconds: int, size: str) -> Any:
        """JSON is what these gateways take best; multipart only to carry image bytes."""
        image = split_frames(request.images).first
        if image is None or image.data is None or image.mime is None:
            return json_create(request, model, seconds, size)
        return form(form_create(request, model, seconds, size), image_part(image.data, image.mime))

    def failed(self, reply: Reply) -> bool:
        return super().failed(reply) or response.embedded_error(reply.json())

    def error(self, reply: Reply, phase: Phase) -> ProviderError:
        body, detail = self.scrubbed(reply)
        return response.classify(reply.status, body, reply.headers, phase, detail)

    def created_id(self, body: Mapping[str, Any]) -> str | None:
        return response.task_id(body)

    def parse(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Update:
        return response.gateway_update(body, poll_after(headers))

    # --- helpers ----------------------------------------------------------------------------

    def generations_url(self, upstream_id: str) -> str:
        return f"{self.base_url}/video/generations/{quote(upstream_id, safe='')}"

    async def get(self, url: str) -> Reply:
        return await self.http.request("GET", url, headers=self.auth_headers())

    def thumbnail(self, state: Mapping[str, Any]) -> Remote:
        url = state.get("thumbnail_url")
        if not isinstance(url, str):
            raise VariantUnavailable("the gateway gave no thumbnail for this video")
        try:
            extension = urlsplit(url).path.rsplit(".", 1)[-1].lower()
        except ValueError:  # a URL that does not parse: fetching it is an upstream error
            extension = ""
        return Remote(url, content_type=IMAGE_TYPES.get(extension))

    async def serves(self, source: Remote) -> bool:
        """Whether the gateway's /content answers with media now (it says 400 or 404 when it
        cannot proxy this job); only its headers are read."""
        try:
            async with self.http.http.open(
                source.url,
                headers={**source.headers, "Range": "bytes=0-0"},
                trusted=True,
                connect_timeout=PROBE_TIMEOUT_S,
                idle_timeout=PROBE_TIMEOUT_S,
            ) as resp:
                kind = resp.headers.get("Content-Type", "").lower()
                media = not kind.startswith(("application/json", "text/"))
                ok = resp.status in (200, 206) and media
        except (OSError, TimeoutError, aiohttp.ClientError, ProviderError) as exc:
            log.debug("%s: /content probe failed (%s)", self.channel.name, type(exc).__name__)
            return False
        if not ok:
            log.debug(
                "%s: /content answered HTTP %d; using the direct URL",
                self.channel.name,
                resp.status,
            )
        return ok
