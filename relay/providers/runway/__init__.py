"""Runway's developer API, `provider = "runway"` (spec/providers/runway.md): a task created on a
per-kind path (`/v1/image_to_video`, `/v1/text_to_video`, `/v1/video_to_video` for an opt-in
remix) answers only `{"id"}`, and `GET /v1/tasks/{id}` polls it, with `X-Runway-Version` on every
call. The clip is a signed CloudFront URL, fetched without Runway's headers and signed afresh by
every poll. `DELETE /v1/tasks/{id}` cancels a running task, and deletes a finished one.

models.py holds the models' limits, request.py builds the bodies, inputs.py turns images and
media into URIs Runway takes, response.py reads answers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import (
    Accepts,
    ChannelView,
    Provider,
    Submitted,
    Update,
    now,
    option,
    split_frames,
)
from relay.providers.errors import (
    CancelRefused,
    NotReady,
    ProviderError,
    Rejected,
    TaskNotFound,
    Unavailable,
)
from relay.providers.runway import models
from relay.providers.runway.inputs import (
    MEDIA_DATA_URI_MAX,
    MEDIA_URL_MAX,
    Resolver,
    data_uri,
    fits_data_uri,
)
from relay.providers.runway.request import build, refusal, remix_body
from relay.providers.runway.response import ACTIVE, CANCELLED, classify, task_id, update
from relay.providers.runway.upload import upload

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp, Reply

log = logging.getLogger("relay.providers.runway")

API_VERSION = "2024-11-06"  # the only version the page knows
DEFAULT_URL_TTL_S = 86400.0  # the safe end of the output URL's 24-48 h
MIN_POLL_S = 5.0  # Runway refreshes a task no faster than this
CANCELLED_KEPT = 1000  # ids this adapter cancelled, remembered to read a later 404 as done


@dataclass(frozen=True)
class RunwayOptions:
    api_version: str = option(API_VERSION, "the X-Runway-Version header sent on every call")
    remix_model: str = option(
        "",
        "the model a remix runs on through /v1/video_to_video (aleph2, gemini_omni_flash, "
        "seedance2*); empty: no remix",
    )
    url_ttl_s: float = option(
        DEFAULT_URL_TTL_S,
        "how long an output URL is taken to live after the poll that signed it, for expires_at",
        kind=(int, float),
        minimum=60,
    )
    min_poll_s: float = option(
        MIN_POLL_S,
        "the shortest wait between two polls of a task (Runway asks for 5 s)",
        kind=(int, float),
        minimum=0,
    )


class RunwayProvider(Provider[RunwayOptions]):
    name = "runway"
    credentials = ("api_key",)
    default_base_url = "https://api.dev.runwayml.com"
    features = frozenset(
        {"image_input", "last_frame", "reference_images", "reference_video", "reference_audio",
         "cancel", "remix"}
    )  # fmt: skip
    Options = RunwayOptions
    typical_run_s = 90.0  # "typical run 30 s - 3 min"
    result_ttl_s = DEFAULT_URL_TTL_S
    # refresh_content is the base class's: a new poll signs a fresh output URL, which differs
    # from the stored one; a task gone upstream (404) offers nothing

    @property
    def min_poll_s(self) -> float:
        return float(self.channel.options.min_poll_s)

    def __init__(self, channel: ChannelView[RunwayOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        if not channel.options.remix_model:
            self.features = self.features - {"remix"}  # per channel: refused before anything
        self._cancelled: OrderedDict[str, None] = OrderedDict()

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or refusal(request, model)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.channel.api_key}",
            "X-Runway-Version": self.channel.options.api_version,
            "Accept": "application/json",
        }

    async def upload(self, data: bytes, mime: str) -> str:
        """A runway:// URI of bytes too big for a data URI (Runway's own upload flow)."""
        return await upload(
            self.http,
            self.base_url,
            self._headers(),
            data,
            mime,
            error=lambda reply, body: self._error(reply, body, on_create=False),
        )

    def _task_url(self, upstream_id: str) -> str:
        return f"{self.base_url}/v1/tasks/{quote(upstream_id, safe='')}"

    # --- create -----------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        resolver = Resolver(self, self.upload)
        inputs = await resolver.inputs(split_frames(request.images), request.media)
        native = build(request, model, inputs)
        if native.dropped:
            log.debug("runway %s has no field for %s; dropped", model, ", ".join(native.dropped))
        upstream_id, state = await self._create(native.endpoint, native.body)
        return Submitted(upstream_id, native.seconds, native.size, state=state)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        """The remix model's video_to_video over a freshly signed output URL of the source; if
        Runway will not take its own output URL, over the clip's bytes; once Runway no longer
        has the source, over the relay's stored copy (a data URI, or hosted when larger)."""
        remix_model = self.channel.options.remix_model
        url = await self._fresh_output(source)
        if url is None:
            kept = await self._stored_source(source)
            upstream_id, state = await self._create(
                models.V2V, remix_body(request, remix_model, kept)
            )
            return Submitted(upstream_id, source.seconds, source.size, state=state)
        try:
            upstream_id, state = await self._create(
                models.V2V, remix_body(request, remix_model, url)
            )
        except Rejected as refused:
            if refused.moderation or refused.param != "video_id":
                raise
            log.info("runway refused its own output URL as videoUri; sending the clip's bytes")
            body = remix_body(request, remix_model, await self._clip(url))
            upstream_id, state = await self._create(models.V2V, body)
        return Submitted(upstream_id, source.seconds, source.size, state=state)

    async def _fresh_output(self, source: TaskRef) -> str | None:
        """A freshly signed output URL of the source; None when Runway no longer has it."""
        try:
            found = await self.poll(source)
        except TaskNotFound:
            return None
        url = found.state.get("video_url")
        if found.status != "completed" or not isinstance(url, str):
            raise Rejected("runway lists no output for the source video", param="video_id")
        return url

    async def _stored_source(self, source: TaskRef) -> str:
        """The relay's stored copy of the source: a data URI, else Runway's upload, else (over
        what Runway fetches) a relay-hosted URL."""
        kept = await self.stored_copy_bytes(source, MEDIA_URL_MAX)
        if kept is not None:
            data, mime = kept
            if fits_data_uri(data, mime, MEDIA_DATA_URI_MAX):
                return data_uri(data, mime)
            return await self.upload(data, mime)
        url = await self.stored_copy_url(source)
        if url is None:
            raise Rejected(
                "runway no longer has the source video and the relay keeps no copy of it "
                "([storage] keep_videos), so it cannot be remixed",
                param="video_id",
            )
        return url

    async def _clip(self, url: str) -> str:
        """The clip at a (public) output URL as a data URI, or hosted when too big for one."""
        try:
            data = await self.http.fetch_image(url, MEDIA_URL_MAX)
        except Rejected:
            raise Rejected(
                "the source video could not be read back from runway", param="video_id"
            ) from None
        if fits_data_uri(data, "video/mp4", MEDIA_DATA_URI_MAX):
            return data_uri(data, "video/mp4")
        return await self.upload(data, "video/mp4")

    async def _create(self, endpoint: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        reply = await self.http.request(
            "POST", f"{self.base_url}/v1/{endpoint}", headers=self._headers(), json=body
        )
        answer = reply.json()
        if not 200 <= reply.status < 300:  # 200 in every capture; 201 would do as well
            raise self._error(reply, answer, on_create=True)
        state: dict[str, Any] = {"endpoint": endpoint}
        estimate = answer.get("estimatedCost") if isinstance(answer, dict) else None
        if isinstance(estimate, dict) and isinstance(estimate.get("credits"), int | float):
            state["estimated_credits"] = estimate["credits"]
        return task_id(answer, f"HTTP {reply.status}: {reply.text()}"), state

    # --- poll, content ----------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        try:
            body = await self._task(task.upstream_id)
        except TaskNotFound:
            if task.upstream_id in self._cancelled:
                # the page leaves open whether a cancelled task answers once more or is gone
                return Update(status="failed", error=CANCELLED, completed_at=now())
            raise
        options = self.channel.options
        return update(
            body, now=now(), ttl_s=float(options.url_ttl_s), poll_after_s=float(options.min_poll_s)
        )

    async def _task(self, upstream_id: str) -> Any:
        reply = await self.http.request("GET", self._task_url(upstream_id), headers=self._headers())
        body = reply.json()
        if reply.status != 200:
            raise self._error(reply, body, on_create=False)
        return body

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:
            found = await self.poll(task)  # recorded before a URL was kept: ask again
            url = found.state.get("video_url")
            if found.status != "completed" or not isinstance(url, str):
                raise NotReady("runway has no output for this task yet")
        # a signed CloudFront URL: byte for byte, and never with Runway's headers
        return Remote(url, content_type="video/mp4")

    # --- cancel, delete ---------------------------------------------------------------------

    async def cancel(self, task: TaskRef) -> None:
        """DELETE stops a pending, throttled or running task, but deletes a finished one with
        its output: the task's state is asked first, so a job that ended just now keeps what
        it made."""
        found = await self._task(task.upstream_id)
        if not isinstance(found, Mapping):
            raise Unavailable("runway's answer about the task was unreadable")
        status = found.get("status")
        if status not in ACTIVE:
            shown = status if isinstance(status, str) else "unreadable"
            raise CancelRefused(f"the runway task has already ended ({shown[:20]})")
        # marked before the DELETE: a poll already on its way may meet the 404 first
        self._cancelled[task.upstream_id] = None
        while len(self._cancelled) > CANCELLED_KEPT:
            self._cancelled.popitem(last=False)
        try:
            await self._delete(task.upstream_id)
        except BaseException:
            self._cancelled.pop(task.upstream_id, None)
            raise

    async def delete(self, task: TaskRef) -> None:
        """Best effort, and only when the client deletes the video: for a finished task this
        removes Runway's copy too."""
        await self._delete(task.upstream_id)

    async def _delete(self, upstream_id: str) -> None:
        reply = await self.http.request(
            "DELETE", self._task_url(upstream_id), headers=self._headers()
        )
        if not (200 <= reply.status < 300 or reply.status == 404):  # 404: gone already
            raise self._error(reply, reply.json(), on_create=False)

    @staticmethod
    def _error(reply: Reply, body: Any, *, on_create: bool) -> ProviderError:
        return classify(reply.status, reply.headers, body, reply.text(), on_create=on_create)


__all__ = ["RunwayOptions", "RunwayProvider"]
