"""The `compat-relay` adapter: another gateway (a new-api or one-api fork) that imitates the
Videos API in front of providers of its own.

It is the `openai` adapter with lenient parsing (compat_wire.py) and a few different habits:
create goes as JSON unless there are image bytes; a poll may meet `task_not_exist` for a moment
right after create; results come from `/content` when the gateway serves it, else from a direct
URL of the backing provider; remix only when the operator says the backend is OpenAI; delete and
list never call upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

import aiohttp

from relay.providers.base import (
    ContentSource,
    Job,
    Option,
    ProviderError,
    Remote,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unsupported,
    Update,
    VariantUnavailable,
    now,
)
from relay.providers.openai import compat_wire as wire
from relay.providers.openai.adapter import OpenAIProvider, form
from relay.providers.openai.wire import Phase, image_part, poll_after
from relay.upstream import Reply

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp

log = logging.getLogger("relay.providers.compat_relay")

# A brand-new task may not be stored yet when the first poll comes (spec: grace period).
GRACE_S = 30.0
GRACE_BACKOFF_S = (2.0, 3.0, 5.0, 5.0)
PROBE_TIMEOUT_S = 15.0
IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class CompatRelayProvider(OpenAIProvider):
    name = "compat-relay"
    default_base_url = None
    features = frozenset({"image_input", "remix"})
    variants = frozenset({"video", "thumbnail"})
    options: ClassVar[dict[str, Option]] = {
        "remix": Option(
            bool, False, "forward remix (only when the gateway's jobs run on an OpenAI backend)"
        ),
    }

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        if not channel.options.get("remix"):
            # per channel, so the relay refuses a remix before it stores anything
            self.features = self.features - {"remix"}

    # --- the adapter contract ---------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        route = task.state.get("route")
        try:
            if route == "generations":
                reply = await self.get(self.generations_url(task.upstream_id))
            else:
                reply = await self.get(self.video_url(task.upstream_id))
                if wire.route_missing(reply.status, reply.json()):
                    # an older gateway: only the /video/generations route exists
                    route = "generations"
                    reply = await self.get(self.generations_url(task.upstream_id))
            if self.failed(reply):
                raise self.error(reply, "poll")
        except TaskNotFound as exc:
            return self.missing(task, exc)
        update = self.parse(self.video_object(reply), reply.headers)
        state: dict[str, Any] = dict(update.state)
        if route == "generations" and task.state.get("route") != route:
            state["route"] = route
        if task.state.get("missing_polls"):
            state["missing_polls"] = 0
        return replace(update, state=state) if state != update.state else update

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
        """A fresh direct URL from a new retrieve, when the gateway gives one."""
        try:
            update = await self.poll(task)
        except ProviderError:
            return None
        if variant == "thumbnail":
            return self.thumbnail(update.state) if update.state.get("thumbnail_url") else None
        url = update.state.get("url")
        return Remote(url, content_type="video/mp4") if isinstance(url, str) else None

    async def remix(self, source: TaskRef, job: Job) -> Submitted:
        if not self.channel.options.get("remix"):
            raise Unsupported(
                "provider 'compat-relay' forwards remix only with options = { remix = true }"
            )
        return await super().remix(source, job)

    async def delete(self, task: TaskRef) -> None:
        """Local only: these gateways have no DELETE route."""

    # --- hooks of the openai adapter --------------------------------------------------------

    async def create_body(self, job: Job, seconds: int, size: str) -> Any:
        """JSON is what these gateways take best; multipart only to carry image bytes."""
        image = job.images[0] if job.images else None
        if image is None or image.data is None or image.mime is None:
            return wire.json_create(job, seconds, size)
        return form(wire.form_create(job, seconds, size), image_part(image.data, image.mime))

    def failed(self, reply: Reply) -> bool:
        return super().failed(reply) or wire.embedded_error(reply.json())

    def error(self, reply: Reply, phase: Phase) -> ProviderError:
        body, detail = self.scrubbed(reply)
        return wire.classify(reply.status, body, reply.headers, phase, detail)

    def created_id(self, body: Mapping[str, Any]) -> str | None:
        return wire.task_id(body)

    def parse(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Update:
        return wire.gateway_update(body, poll_after(headers))

    # --- helpers ----------------------------------------------------------------------------

    def generations_url(self, upstream_id: str) -> str:
        return f"{self.base_url}/video/generations/{quote(upstream_id, safe='')}"

    async def get(self, url: str) -> Reply:
        return await self.http.request("GET", url, headers=self.auth_headers())

    def missing(self, task: TaskRef, exc: TaskNotFound) -> Update:
        """Keep a young task while the gateway has not stored it yet; then it is gone."""
        misses = task.state.get("missing_polls")
        misses = misses if isinstance(misses, int) else 0
        if now() - task.submitted_at < GRACE_S and misses < len(GRACE_BACKOFF_S):
            return Update(
                status=None,
                state={"missing_polls": misses + 1},
                poll_after_s=GRACE_BACKOFF_S[misses],
            )
        raise exc

    def thumbnail(self, state: Mapping[str, Any]) -> Remote:
        url = state.get("thumbnail_url")
        if not isinstance(url, str):
            raise VariantUnavailable("the gateway gave no thumbnail for this video")
        extension = urlsplit(url).path.rsplit(".", 1)[-1].lower()
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
