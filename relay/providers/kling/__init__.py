"""Kling (Kuaishou): text or image to video, one path per family (spec/providers/kling.md).

Every call carries a short-lived JWT made from the channel's AccessKey/SecretKey (auth.py). A task
is queried under the family path that created it, so the family goes into the task's state.
The result is a public CDN URL, fetched without any credentials; it never changes, so the base
class's refresh_content (poll again, offer a URL only when it differs) is all a refresh can do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import Accepts, ChannelView, Provider, Submitted, Update, option
from relay.providers.errors import NotReady
from relay.providers.kling.auth import TokenCache
from relay.providers.kling.models import IMAGE_ONLY_MODELS, MODES, accepts
from relay.providers.kling.request import TEXT2VIDEO, build_request
from relay.providers.kling.response import RESULT_TTL_S, parse_submitted, parse_task, unwrap

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

__all__ = ["KlingOptions", "KlingProvider"]


@dataclass(frozen=True)
class KlingOptions:
    mode: str = option(
        "std",
        "the mode sent when the client does not ask for 1080p (std or pro)",
        choices=MODES,
    )


class KlingProvider(Provider[KlingOptions]):
    name = "kling"
    credentials = ("access_key", "secret_key")
    default_base_url = "https://api-singapore.klingai.com"
    features = frozenset({"image_input", "last_frame"})
    variants = frozenset({"video"})
    Options = KlingOptions
    typical_run_s = 180.0
    result_ttl_s = RESULT_TTL_S

    def __init__(self, channel: ChannelView[KlingOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self._tokens = TokenCache(channel.access_key or "", channel.secret_key or "")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._tokens.token()}",
            "Content-Type": "application/json",
        }

    def accepts(self, model: str) -> Accepts:
        return accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        why = super().refusal(request, model)
        if why:
            return why
        given = request.images or any(request.metadata.get(k) for k in ("image", "image_tail"))
        if model in IMAGE_ONLY_MODELS and not given:
            return f"Kling model {model!r} only animates an image: it needs an input_reference"
        return None

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        native = build_request(request, model, self.channel.options.mode)
        reply = await self.http.request(
            "POST",
            f"{self.base_url}/v1/videos/{native.family}",
            headers=self._headers(),
            json=native.body,
        )
        return parse_submitted(reply, native)

    async def poll(self, task: TaskRef) -> Update:
        family = str(task.state.get("family") or TEXT2VIDEO)
        reply = await self.http.request(
            "GET",
            f"{self.base_url}/v1/videos/{family}/{quote(task.upstream_id, safe='')}",
            headers=self._headers(),
        )
        return parse_task(unwrap(reply, submitting=False))

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:
            raise NotReady("the Kling task has no video yet")
        return Remote(url, content_type="video/mp4")
