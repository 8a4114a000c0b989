"""xAI Grok Imagine video, `provider = "xai"` (spec/providers/xai.md): a deferred request
(`POST /v1/videos/generations` answers only a `request_id`), polled at `GET /v1/videos/{id}`
until `done`, `failed` or `expired`; the clip is a temporary public URL on vidgen.x.ai. A remix
is xAI's own edit (`POST /v1/videos/edits`) of the source clip.

models.py holds the models' limits, request.py builds the bodies, response.py reads answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest, data_url
from relay.providers.base import Accepts, Provider, Submitted, Update, now, option
from relay.providers.errors import NotReady, ProviderError, Rejected
from relay.providers.inline import INLINE_MAX_BYTES
from relay.providers.xai import models
from relay.providers.xai.request import build, edit_body, refusal
from relay.providers.xai.response import classify, request_id, update

if TYPE_CHECKING:
    from relay.providers.http import Reply

log = logging.getLogger("relay.providers.xai")

# xAI does not publish how long vidgen.x.ai URLs live; an hour is the page's guess
DEFAULT_URL_TTL_S = 3600.0


@dataclass(frozen=True)
class XaiOptions:
    resolution: str = option(
        "720p",
        "the tier sent when a request gives only a ratio (1080p only on grok-imagine-video-1.5)",
        choices=models.RESOLUTIONS,
    )
    url_ttl_s: float = option(
        DEFAULT_URL_TTL_S,
        "how long xAI's result URLs are assumed to live (unpublished), for expires_at",
        kind=(int, float),
        minimum=60,
    )


class XaiProvider(Provider[XaiOptions]):
    name = "xai"
    credentials = ("api_key",)
    default_base_url = "https://api.x.ai"
    features = frozenset({"image_input", "reference_images", "remix"})
    Options = XaiOptions
    typical_run_s = 150.0  # "typically up to several minutes"; runs of 1-4 min are usual
    result_ttl_s = DEFAULT_URL_TTL_S
    # refresh_content is the base class's: a new poll gives the same URL or `expired`, so it
    # offers nothing new, which is the truth (xAI cannot re-sign a result)

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def can_remix(self, model: str) -> bool:
        return models.model_of(model).edits

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or refusal(request, model)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}", "Accept": "application/json"}

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        native = build(request, model, self.channel.options.resolution)
        if native.dropped:
            log.debug("xai has no field for %s; dropped", ", ".join(native.dropped))
        upstream_id = await self._create("/v1/videos/generations", native.body)
        return Submitted(upstream_id=upstream_id, seconds=str(native.seconds), size=native.size)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        """xAI's edit of the source clip; the result keeps the source's length and size."""
        if not models.model_of(source.upstream_model).edits or _longer_than_edits(source.seconds):
            raise Rejected(
                "remix is not supported for this model or clip length (xai edits clips of "
                f"grok-imagine-video up to {models.MAX_EDIT_SOURCE_S:g} s)",
                param="video_id",
            )
        url = self.live_result_url(source)
        if url is None:
            # the page: a data URL of the relay's stored copy (an edit source is at most 8.7 s)
            kept = await self.stored_copy_bytes(source, INLINE_MAX_BYTES)
            if kept is None:
                raise Rejected(
                    "the source video's upstream URL has expired and the relay keeps no copy "
                    "of it ([storage] keep_videos), so xai cannot edit it",
                    param="video_id",
                )
            data, content_type = kept
            url = data_url(data, content_type)
        upstream_id = await self._create(
            "/v1/videos/edits", edit_body(request.prompt, url, request.metadata)
        )
        return Submitted(upstream_id=upstream_id, seconds=source.seconds, size=source.size)

    async def _create(self, path: str, body: dict[str, Any]) -> str:
        reply = await self.http.request(
            "POST", self.base_url + path, headers=self._headers(), json=body
        )
        answer = reply.json()
        if reply.status != 200:
            raise self._error(reply, answer, on_create=True)
        return request_id(answer, f"HTTP {reply.status}: {reply.text()}")

    async def poll(self, task: TaskRef) -> Update:
        reply = await self.http.request(
            "GET",
            f"{self.base_url}/v1/videos/{quote(task.upstream_id, safe='')}",
            headers=self._headers(),
        )
        body = reply.json()
        if reply.status != 200:
            raise self._error(reply, body, on_create=False)
        ttl = float(self.channel.options.url_ttl_s)
        return update(body, now=now(), submitted_at=task.submitted_at, ttl_s=ttl)

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:
            raise NotReady("xai has not listed a result for this task yet")
        # a public vidgen.x.ai URL: used as given, and never with the xAI key
        return Remote(url, content_type="video/mp4")

    @staticmethod
    def _error(reply: Reply, body: Any, *, on_create: bool) -> ProviderError:
        return classify(reply.status, reply.headers, body, reply.text(), on_create=on_create)


def _longer_than_edits(seconds: str) -> bool:
    try:
        return float(seconds) > models.MAX_EDIT_SOURCE_S
    except ValueError:
        return False


__all__ = ["XaiOptions", "XaiProvider"]
