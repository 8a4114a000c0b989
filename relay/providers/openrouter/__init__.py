"""OpenRouter's video generation API: one asynchronous job API in front of many video models
(spec/providers/openrouter.md).

Not the OpenAI Videos shape: create answers 202 with a `polling_url`, the length is an integer
`duration`, what a model takes is published by `/videos/models` (values outside it are a 400,
not a snap), and the file comes from `/videos/{id}/content` with the key.

__init__.py  the adapter: the models cache, submit, poll, content
models.py    a model's capabilities from the list; durations and sizes snapped against them
request.py   the client's request as a create body (pure)
response.py  job objects and error envelopes in relay terms (pure)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from relay.domain import FEATURES, ContentSource, Remote, Status, TaskRef, VideoRequest
from relay.providers.base import Accepts, Provider, Submitted, Update, now, option
from relay.providers.errors import TaskNotFound, Unavailable, VariantUnavailable
from relay.providers.http import Reply
from relay.providers.normalize import created_id
from relay.providers.openai.response import redact
from relay.providers.openrouter.models import Capabilities, accepts, model_table
from relay.providers.openrouter.request import create_body
from relay.providers.openrouter.response import (
    Phase,
    classify,
    is_completed_without_urls,
    job_update,
    no_file,
    strings,
)
from relay.upstream import BlockedAddress, UnusableUrl

log = logging.getLogger("relay.providers.openrouter")

RESULT_TTL_S = 3600.0  # retention is undocumented ("retained briefly"): a deliberately short guess
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OpenRouterOptions:
    models_cache_ttl: float = option(
        300.0, "seconds the /videos/models capability list is kept", kind=(int, float), minimum=0
    )
    inline_images: bool = option(
        True,
        "send uploaded and data-URL images as data URLs (false: the relay hosts them at its "
        "public_url and sends that URL)",
    )
    provider_slug: str = option(
        "", "the provider whose passthrough options carry negative_prompt (e.g. google-vertex)"
    )


class OpenRouterProvider(Provider[OpenRouterOptions]):
    name = "openrouter"
    credentials = ("api_key",)
    default_base_url = "https://openrouter.ai/api/v1"
    features = FEATURES - {"remix"}  # frames and references per model; no remix upstream
    Options = OpenRouterOptions
    typical_run_s = 120.0  # 30 s to several minutes, by model and tier
    result_ttl_s = RESULT_TTL_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._models: dict[str, Capabilities] = {}
        self._models_at: float | None = None  # monotonic time of the last good list
        self._models_lock = asyncio.Lock()
        self._list_failure_noted = False

    # --- capabilities -----------------------------------------------------------------------

    def accepts(self, model: str) -> Accepts:
        return accepts(self._models.get(model))

    async def capabilities(self, model: str) -> Capabilities | None:
        """The model's row, from a list at most `models_cache_ttl` old; a list that cannot be
        fetched leaves the last one in use (or none: the values go unsnapped)."""
        ttl = float(self.channel.options.models_cache_ttl)
        async with self._models_lock:
            fresh = self._models_at is not None and time.monotonic() - self._models_at < ttl
            if not fresh:
                await self._refresh_models()
        return self._models.get(model)

    async def _refresh_models(self) -> None:
        try:
            # public; the key does no harm and it is the configured origin
            reply = await self.http.request(
                "GET", f"{self.base_url}/videos/models", headers=self._auth()
            )
        except Unavailable as exc:
            self._note_list_failure(exc.for_log)
            return
        table = model_table(reply.json()) if reply.status == 200 else {}
        if not table:
            self._note_list_failure(f"HTTP {reply.status}")
            return
        self._models, self._models_at = table, time.monotonic()
        self._list_failure_noted = False

    def _note_list_failure(self, why: str) -> None:
        if not self._list_failure_noted:
            log.info(
                "%s (openrouter): no model list (%s); values go unsnapped", self.channel.name, why
            )
            self._list_failure_noted = True

    # --- create ---------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        # references by URL, the documented form (and images too unless inline_images): bytes
        # the client sent are hosted by the relay
        request = await self.hosted_inputs(request, images=not self.channel.options.inline_images)
        caps = await self.capabilities(model)
        made = create_body(request, model, caps, provider_slug=self.channel.options.provider_slug)
        reply = await self._send("POST", f"{self.base_url}/videos", "create", made.body)
        body = reply.json()
        job = body if isinstance(body, Mapping) else {}
        upstream_id = created_id(job.get("id"), self._detail(reply))
        update = job_update(job)
        # a terminal status this early is left for the first poll to report
        running: Status = "in_progress" if update.status == "in_progress" else "queued"
        return Submitted(
            upstream_id=upstream_id,
            seconds=made.seconds,
            size=made.size,
            state=dict(update.state),
            status=running,
        )

    # --- poll -------------------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        # built from the id: a relative polling_url joined to base_url would double /api/v1
        reply = await self._send("GET", self._job_url(task.upstream_id), "poll")
        body = reply.json()
        if not isinstance(body, Mapping) or "status" not in body:
            raise Unavailable("the upstream sent an unreadable job", detail=self._detail(reply))
        update = job_update(body)
        if is_completed_without_urls(body):
            update = await self._probe_content(task, update)
        if update.status == "completed":
            stamp = now()
            return Update(
                status="completed",
                progress=100,
                completed_at=stamp,
                expires_at=stamp + RESULT_TTL_S,
                state=update.state,
            )
        if update.status == "failed":
            return Update(
                status="failed", error=update.error, completed_at=now(), state=update.state
            )
        return update

    async def _probe_content(self, task: TaskRef, update: Update) -> Update:
        """A completed job that names no file is believed only when `/content` answers with
        a video; an outage is asked about again at the next poll."""
        headers = {**self._auth(), "Range": "bytes=0-0"}
        try:
            async with self.http.http.open(
                self._content_url(task.upstream_id),
                headers=headers,
                trusted=True,
                connect_timeout=PROBE_TIMEOUT_S,
                idle_timeout=PROBE_TIMEOUT_S,
            ) as resp:
                status = resp.status
                ctype = resp.headers.get("Content-Type", "").lower()
        except (aiohttp.ClientError, TimeoutError, BlockedAddress, UnusableUrl) as exc:
            raise Unavailable(
                "the upstream content check failed", detail=type(exc).__name__
            ) from None
        if status == 429 or status == 408 or status >= 500:
            raise Unavailable(f"the upstream content check answered HTTP {status}")
        if status in (200, 206) and ctype.startswith("video/"):
            return Update(status="completed", progress=100, state=update.state)
        return Update(
            status="failed",
            error=no_file(status),
            state=update.state,
        )

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        """The preferred download: `/content?index=0` with the key, on the API's own origin."""
        self.variant_check(variant)
        return Remote(
            self._content_url(task.upstream_id),
            headers=self._auth(),
            content_type="video/mp4",
            trusted=True,
        )

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """After `/content` failed: a result URL the job named elsewhere, if any. Storage hosts get
        no key and the URL exactly as received; the API origin gets the key."""
        self.variant_check(variant)
        state: Mapping[str, Any] = task.state
        try:
            update = await self.poll(task)
        except (TaskNotFound, VariantUnavailable):
            return None
        if update.status == "completed":
            state = {**state, **update.state}
        own = self._content_url(task.upstream_id)
        for url in strings(state.get("unsigned_urls")):
            if url == own:
                continue
            if self._same_origin(url):
                return Remote(url, headers=self._auth(), content_type="video/mp4", trusted=True)
            return Remote(url, content_type="video/mp4")
        if not strings(state.get("unsigned_urls")):
            for url in strings(state.get("urls")):
                return Remote(url, content_type="video/mp4")
        return None

    # --- helpers ----------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}"}

    def _job_url(self, upstream_id: str) -> str:
        return f"{self.base_url}/videos/{quote(upstream_id, safe='')}"

    def _content_url(self, upstream_id: str) -> str:
        return self._job_url(upstream_id) + "/content?index=0"

    def _same_origin(self, url: str) -> bool:
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme, mine.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())

    async def _send(self, method: str, url: str, phase: Phase, body: Any = None) -> Reply:
        reply = await self.http.request(method, url, headers=self._auth(), json=body)
        if not 200 <= reply.status < 300:
            # an error message may echo the key: masked before anything reads it
            masked = Reply(reply.status, reply.headers, self._masked(reply.body))
            raise classify(
                masked.status, masked.json(), masked.headers, phase, self._detail(masked)
            )
        return reply

    def _masked(self, raw: bytes) -> bytes:
        # the channel's key, and anything shaped like one, as the OpenAI-style adapters mask
        return redact(raw.decode("utf-8", "replace"), (self.channel.api_key,)).encode()

    def _detail(self, reply: Reply) -> str:
        return f"HTTP {reply.status}: " + self._masked(reply.body[:500]).decode("utf-8", "replace")


__all__ = ["OpenRouterOptions", "OpenRouterProvider"]
