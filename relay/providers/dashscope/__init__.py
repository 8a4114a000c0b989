"""The DashScope adapter: async Wan video tasks on Alibaba Cloud Model Studio, the 2.1-2.6
body (spec/providers/dashscope.md) and, chosen by the model's name, the Wan 2.7 / 3.0 "new
protocol" (spec/providers/dashscope-wan27.md) on the same URLs.

models.py         what each Wan 2.1-2.6 model can do: kind, size tiers, durations
request.py        the 2.6 create body, and what a 2.6 model refuses (pure)
wan27/            the new protocol: its models, which inputs they take, the create and remix
                  bodies
response.py       task records and error bodies in relay terms, both protocols (pure)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.domain import FEATURES, ContentSource, Remote, TaskRef, VideoRequest
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
from relay.providers.dashscope.request import CreateBody, create_body, refusal
from relay.providers.dashscope.response import classify, native_error, task_update
from relay.providers.dashscope.wan27 import models as wan27_models
from relay.providers.dashscope.wan27 import request as wan27
from relay.providers.dashscope.wan27 import rules as wan27_rules
from relay.providers.errors import (
    CancelRefused,
    NotReady,
    ProviderError,
    Rejected,
    TaskNotFound,
    Unavailable,
    Unsupported,
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
    wan27_image_model: str = option(
        "",
        "the Wan 2.7/3.0 model that runs a job sent to a new-protocol t2v model with an image "
        '(e.g. "wan2.7-i2v"); empty: such a job is refused',
    )
    remix_model: str = option(
        "",
        'the video edit model that remixes ("wan2.7-videoedit"), from the source\'s result URL '
        "while it lives (24 h); empty: no remix",
    )


class DashScopeProvider(Provider[DashScopeOptions]):
    name = "dashscope"
    credentials = ("api_key",)
    # International (Singapore). Others: https://dashscope.aliyuncs.com (China, Beijing),
    # https://dashscope-us.aliyuncs.com (US, Virginia; `-us` models), workspace hosts such as
    # https://{WorkspaceId}.eu-central-1.maas.aliyuncs.com (EU). Key, host and model names must
    # all belong to one region.
    default_base_url = "https://dashscope-intl.aliyuncs.com"
    # per model: refusal(); cancel stops a PENDING task only; remix with options.remix_model
    features = (FEATURES - {"remix"}) | {"cancel"}
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
        if channel.options.remix_model:
            self.features = self.features | {"remix"}

    def accepts(self, model: str) -> Accepts:
        if wan27_models.is_new_protocol(model):
            return wan27_models.accepts(model)
        return accepts(model)

    def can_remix(self, model: str) -> bool:
        return bool(self.channel.options.remix_model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        why = super().refusal(request, model)
        if why or request.remix_of is not None:  # a remix runs on remix_model, whatever the route
            return why or wan27_rules.remix_refusal(self.channel.options.remix_model)
        if wan27_models.is_new_protocol(model):
            options = self.channel.options
            return wan27_rules.refusal(request, model, image_model=options.wan27_image_model)
        return refusal(request, model)

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        options = self.channel.options
        extend = options.prompt_extend
        if wan27_models.is_new_protocol(model):
            target = wan27_rules.target_model(request, model, options.wan27_image_model)
            req = await wan27.create_body(
                request, target, url_of=self.input_url, prompt_extend=extend
            )
        else:
            # the 2.5/2.6 audio_url is a URL (data URLs are documented for img_url only): audio
            # bytes are hosted by the relay
            request = await self.hosted_inputs(request)
            req = create_body(request, model, prompt_extend=extend)
        return await self._create(req)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        """A video edit of the source's result, on options.remix_model: DashScope's result URL
        while it lives (24 h), then the relay's stored copy at a hosted URL (the page's
        "temporary upload of the stored copy"), else a refusal."""
        remix_model = self.channel.options.remix_model
        why = wan27_rules.remix_refusal(remix_model)
        if why:
            raise Unsupported(why)
        url = self.live_result_url(source)
        if url is None:
            url = await self.stored_copy_url(source)
            if url is None:
                raise Rejected(
                    "the source video's upstream result expired (DashScope keeps it 24 h) and "
                    f"the relay keeps no copy of it ([storage] keep_videos), so {remix_model} "
                    "cannot fetch it: remix a video made in the last 24 hours",
                    param="video_id",
                )
        req = wan27.remix_body(
            request,
            remix_model,
            url,
            source.size,
            source.seconds,
            prompt_extend=self.channel.options.prompt_extend,
        )
        return await self._create(req)

    async def _create(self, req: CreateBody) -> Submitted:
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
