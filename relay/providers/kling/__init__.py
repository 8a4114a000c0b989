"""Kling (Kuaishou): text or image to video, one path per family (spec/providers/kling.md).

Every call carries a short-lived JWT made from the channel's AccessKey/SecretKey (jwt.py). A task
is queried under the family path that created it, so the family goes into the task's state.
The result is a public CDN URL, fetched without any credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from relay.providers.base import (
    ContentSource,
    Job,
    NotReady,
    Option,
    Provider,
    Remote,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unavailable,
    Unsupported,
    Update,
)
from relay.providers.kling.jwt import TokenCache
from relay.providers.kling.native import (
    IMAGE_ONLY_MODELS,
    MODES,
    RESULT_TTL_S,
    TEXT2VIDEO,
    build_request,
    parse_task,
    unwrap,
)

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp

__all__ = ["KlingProvider"]


class KlingProvider(Provider):
    name = "kling"
    credentials = ("access_key", "secret_key")
    default_base_url = "https://api-singapore.klingai.com"
    features = frozenset({"image_input", "last_frame"})
    variants = frozenset({"video"})
    options: ClassVar[dict[str, Option]] = {
        "mode": Option(
            str,
            "std",
            "the mode sent when the client does not ask for 1080p (std or pro)",
            choices=MODES,
        ),
    }
    typical_run_s = 180.0
    result_ttl_s = RESULT_TTL_S

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self._tokens = TokenCache(channel.access_key or "", channel.secret_key or "")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._tokens.token()}",
            "Content-Type": "application/json",
        }

    def check(self, job: Job) -> None:
        super().check(job)
        given = job.images or any(job.metadata.get(k) for k in ("image", "image_tail"))
        if job.model in IMAGE_ONLY_MODELS and not given:
            raise Unsupported(
                f"Kling model {job.model!r} only animates an image: it needs an input_reference"
            )

    async def submit(self, job: Job) -> Submitted:
        request = build_request(job, str(self.channel.options.get("mode", "std")))
        reply = await self.http.request(
            "POST",
            f"{self.base_url}/v1/videos/{request.family}",
            headers=self._headers(),
            json=request.body,
        )
        data = unwrap(reply, submitting=True)
        task_id = data.get("task_id")
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise Unavailable(
                "Kling accepted the job without a task_id",
                maybe_created=True,
                detail=f"HTTP {reply.status}: {reply.text()}",
            )
        first = parse_task(data)
        return Submitted(
            upstream_id=str(task_id),
            seconds=request.seconds,
            size=request.size,
            state={"family": request.family},
            status=first.status if first.status in ("queued", "in_progress") else "queued",
        )

    async def _query(self, task: TaskRef) -> dict[str, Any]:
        family = str(task.state.get("family") or TEXT2VIDEO)
        reply = await self.http.request(
            "GET",
            f"{self.base_url}/v1/videos/{family}/{quote(task.upstream_id, safe='')}",
            headers=self._headers(),
        )
        return dict(unwrap(reply, submitting=False))

    async def poll(self, task: TaskRef) -> Update:
        return parse_task(await self._query(task))

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:
            raise NotReady("the Kling task has no video yet")
        return Remote(url, content_type="video/mp4")

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Query the task again; only a URL different from the stored one is worth a retry."""
        self.variant_check(variant)
        try:
            update = parse_task(await self._query(task))
        except TaskNotFound:
            return None
        url = update.state.get("video_url")
        if isinstance(url, str) and url and url != task.state.get("video_url"):
            return Remote(url, content_type="video/mp4")
        return None
