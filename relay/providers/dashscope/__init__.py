"""The DashScope adapter: async Wan 2.1-2.6 video tasks on Alibaba Cloud Model Studio
(spec/providers/dashscope.md).

models.py    what each Wan model can do: kind, size tiers, durations
request.py   the client's request as a create body, and what a model refuses (pure)
response.py  task records and error bodies in relay terms (pure)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import (
    Accepts,
    ChannelView,
    PollRules,
    Provider,
    Submitted,
    Update,
    now,
    option,
)
from relay.providers.dashscope.models import RESULT_TTL_S, accepts
from relay.providers.dashscope.request import create_body, refusal
from relay.providers.dashscope.response import classify, native_error, task_update
from relay.providers.errors import (
    CancelRefused,
    NotReady,
    ProviderError,
    Rejected,
    TaskNotFound,
    Unavailable,
)
from relay.providers.normalize import created_id

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp, Reply

API = "/api/v1"
CREATE = "/services/aigc/video-generation/video-synthesis"
# A new task can answer UNKNOWN for a moment after its create: polls in its first minute come
# back quickly at first, then at the 15 s DashScope suggests; after that, UNKNOWN means gone.
UNKNOWN_WINDOW_S = 60.0
UNKNOWN_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0)


@dataclass(frozen=True)
class DashScopeOptions:
    prompt_extend: bool = option(
        True,
        "let DashScope rewrite prompts with an LLM (its default; adds latency); a request's "
        "enhance_prompt overrides it",
    )
    utc_offset_hours: float = option(
        8,
        "the UTC offset of the region's zone-less submit_time/end_time (8 for China and Singapore)",
        kind=(int, float),
        minimum=-12,
    )


class DashScopeProvider(Provider[DashScopeOptions]):
    name = "dashscope"
    credentials = ("api_key",)
    # International (Singapore). Others: https://dashscope.aliyuncs.com (China, Beijing),
    # https://dashscope-us.aliyuncs.com (US, Virginia; `-us` models), workspace hosts such as
    # https://{WorkspaceId}.eu-central-1.maas.aliyuncs.com (EU). Key, host and model names must
    # all belong to one region.
    default_base_url = "https://dashscope-intl.aliyuncs.com"
    # per model: refusal(); cancel stops a PENDING task only
    features = frozenset({"image_input", "last_frame", "reference_audio", "cancel"})
    variants = frozenset({"video"})
    Options = DashScopeOptions
    typical_run_s = 180.0
    result_ttl_s = float(RESULT_TTL_S)
    poll_rules = PollRules(not_found_window_s=UNKNOWN_WINDOW_S, not_found_backoff=UNKNOWN_BACKOFF_S)

    def __init__(self, channel: ChannelView[DashScopeOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        # the region root is the documented setting; a base_url that already ends in the API
        # root works the same
        self.api = self.base_url.removesuffix(API) + API

    def accepts(self, model: str) -> Accepts:
        return accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or refusal(request, model)

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        req = create_body(request, model, prompt_extend=self.channel.options.prompt_extend)
        headers = {**self._auth(), "X-DashScope-Async": "enable"}
        if req.oss:
            headers["X-DashScope-OssResourceResolve"] = "enable"
        reply = await self.http.request("POST", self.api + CREATE, headers=headers, json=req.body)
        body = reply.json()
        if reply.status != 200 or native_error(body) is not None:
            raise _error(reply, body, creating=True)
        output = body.get("output") if isinstance(body, Mapping) else None
        task_id = created_id(
            output.get("task_id") if isinstance(output, Mapping) else None,
            f"HTTP {reply.status}: {reply.text()}",
        )
        return Submitted(upstream_id=task_id, seconds=req.seconds, size=req.size)

    async def poll(self, task: TaskRef) -> Update:
        return task_update(
            await self._query(task.upstream_id),
            seen_at=now(),
            utc_offset_hours=float(self.channel.options.utc_offset_hours),
            requested_size=task.size,
        )

    async def _query(self, upstream_id: str) -> Mapping[str, Any]:
        url = f"{self.api}/tasks/{quote(upstream_id, safe='')}"
        reply = await self.http.request("GET", url, headers=self._auth())
        body = reply.json()
        # every task state answers 200; anything else is about the call (key, rate, outage)
        if reply.status != 200:
            raise _error(reply, body, creating=False)
        if not isinstance(body, Mapping) or not isinstance(body.get("output"), Mapping):
            if native_error(body) is not None:
                raise _error(reply, body, creating=False)
            raise Unavailable(
                "the upstream sent an unreadable task", detail=f"HTTP 200: {reply.text()}"
            )
        return body

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:  # recorded without its URL: ask again
            update = await self.poll(task)
            url = update.state.get("video_url")
            if update.status != "completed" or not isinstance(url, str):
                raise NotReady("the upstream task has no result yet")
        return _remote(url)

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Query again; only a URL different from the stored one is worth offering. Not the
        base class's state comparison: a URL without `Expires` gets its `expires_at` from the
        time it was seen, so the state changes on every query while the URL stays the same. The
        record lives as long as the URL (24 h), so this rarely finds one."""
        self.variant_check(variant)
        try:
            update = await self.poll(task)
        except TaskNotFound:
            return None
        url = update.state.get("video_url")
        if update.status != "completed" or not isinstance(url, str):
            return None
        return None if url == task.state.get("video_url") else _remote(url)

    async def cancel(self, task: TaskRef) -> None:
        url = f"{self.api}/tasks/{quote(task.upstream_id, safe='')}/cancel"
        reply = await self.http.request("POST", url, headers=self._auth())
        body = reply.json()
        if reply.status == 200 and native_error(body) is None:
            return
        error = _error(reply, body, creating=False)
        if isinstance(error, Rejected) and not error.moderation:
            # the page: only a PENDING task can be cancelled; running or ended, it says no
            raise CancelRefused(
                f"DashScope cancels only a pending task ({error.message})", detail=error.detail
            )
        raise error

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}"}


def _error(reply: Reply, body: Any, *, creating: bool) -> ProviderError:
    return classify(reply.status, reply.headers, body, reply.text(), creating=creating)


def _remote(url: str) -> Remote:
    # a signed OSS URL: fetched exactly as received, with no Authorization
    return Remote(url, content_type="video/mp4")
