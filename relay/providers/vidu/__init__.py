"""Vidu (Shengshu), `provider = "vidu"`: submit on one of four paths, poll the shared query
endpoint, hand out the signed CDN URLs exactly as received (spec/providers/vidu.md).

request.py builds the native body, response.py reads the answers, models.py holds the model
families' limits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.domain import TERMINAL, ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import Accepts, Provider, Submitted, Update, now, option
from relay.providers.errors import CancelRefused, NotReady, Rejected, VariantUnavailable
from relay.providers.vidu import models
from relay.providers.vidu.request import build, refusal
from relay.providers.vidu.response import error_from, parse_query, parse_submit

log = logging.getLogger("relay.providers.vidu")

DEFAULT_URL_TTL_S = 24 * 3600.0
# the cover is a JPEG, whatever the relay's variant table assumes for thumbnails
CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/jpeg"}
_URL_KEYS = {"video": "video_url", "thumbnail": "cover_url"}


@dataclass(frozen=True)
class ViduOptions:
    url_ttl_s: float = option(
        DEFAULT_URL_TTL_S,
        "how long Vidu's signed result URLs stay valid (current pages say 24 h, older 1 h)",
        kind=(int, float),
        minimum=60,
    )


class ViduProvider(Provider[ViduOptions]):
    name = "vidu"
    credentials = ("api_key",)
    default_base_url = "https://api.vidu.com"
    features = frozenset({"image_input", "last_frame", "reference_images", "cancel"})
    variants = frozenset({"video", "thumbnail"})
    Options = ViduOptions
    typical_run_s = 90.0
    result_ttl_s = DEFAULT_URL_TTL_S
    # refresh_content is the base class's: a new query signs the URLs afresh (unconfirmed)

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or refusal(request)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.channel.api_key}", "Accept": "application/json"}

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        native = build(request, model)
        if native.dropped:
            log.debug("vidu has no field for %s; dropped", ", ".join(native.dropped))
        url = f"{self.base_url}/ent/v2/{native.path}"
        reply = await self.http.request("POST", url, headers=self._headers(), json=native.body)
        body = reply.json()
        if reply.status != 200:
            raise error_from(reply.status, reply.headers, body, reply.text())
        accepted = parse_submit(body)
        return Submitted(
            upstream_id=accepted.task_id,
            seconds=str(native.seconds),
            size=native.size,
            status=accepted.status,
            # Submitted has no created_at: the upstream's own is kept for the record
            state={"endpoint": native.path, "upstream_created_at": accepted.created_at},
        )

    async def poll(self, task: TaskRef) -> Update:
        reply = await self.http.request(
            "GET",
            f"{self.base_url}/ent/v2/tasks/{task.upstream_id}/creations",
            headers=self._headers(),
        )
        body = reply.json()
        if reply.status != 200:
            raise error_from(reply.status, reply.headers, body, reply.text())
        return parse_query(body, now=now(), ttl_s=float(self.channel.options.url_ttl_s))

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        return _remote(task.state, variant)

    async def cancel(self, task: TaskRef) -> None:
        """The page names no state its cancel refuses, so a job's end is asked first: one that
        ended just now keeps its outcome rather than turning into UserCancelled."""
        update = await self.poll(task)
        if update.status in TERMINAL:
            raise CancelRefused(f"the task has already ended ({update.status})")
        reply = await self.http.request(
            "POST",
            f"{self.base_url}/ent/v2/tasks/{task.upstream_id}/cancel",
            headers=self._headers(),
            json={},
        )
        if reply.status == 200:
            return
        error = error_from(reply.status, reply.headers, reply.json(), reply.text())
        if isinstance(error, Rejected) and not error.moderation:
            raise CancelRefused(f"Vidu would not cancel the task ({error.message})")
        raise error


def _remote(state: Mapping[str, Any], variant: str) -> Remote:
    url = state.get(_URL_KEYS[variant])
    if not isinstance(url, str) or not url:
        if variant != "video" and state.get("video_url"):
            raise VariantUnavailable(f"vidu listed no {variant} for this video")
        raise NotReady("vidu has not listed a result for this task yet")
    # signed CDN URL: no upstream key, and the URL goes out byte for byte (content.py)
    return Remote(url, content_type=CONTENT_TYPES[variant])


__all__ = ["ViduOptions", "ViduProvider"]
