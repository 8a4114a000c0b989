"""The `openai` adapter: OpenAI's Videos API (Sora) and servers that follow it closely
(spec/providers/openai.md), among them a local vLLM-Omni server (spec/providers/vllm-omni.md).

Most of it is the Videos API every imitator shares (videos_api.py). OpenAI adds its options:
JSON creates, organization and project headers. `vllm_omni = true` marks a local vLLM-Omni
server: no key needed, flat extension fields, no remix and no thumbnail, a failed job answered
with an error status and its video object, upstream progress ignored (it stays 0), an unknown id
meaning the server restarted, a delete that may need a second try, and a cancel (the same DELETE,
on a job still queued or running; OpenAI itself has none).

videos_api.py  the shared adapter: submit, poll, content, remix, delete, errors
request.py     the create body: JSON, or multipart fields and a typed file part
response.py    the video object as an Update; error envelopes as the error tree
models.py      Sora's durations and the sizes a bare ratio becomes
vllm_omni.py   vLLM-Omni's create fields, durations and extra error rules
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from relay.domain import TERMINAL, ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import ChannelView, Submitted, Update, option, split_frames
from relay.providers.errors import CancelRefused, ProviderError, Unsupported
from relay.providers.openai.models import pixel_size, upstream_seconds
from relay.providers.openai.request import dropped_hints, form, json_create
from relay.providers.openai.response import Phase
from relay.providers.openai.videos_api import VideosApiProvider
from relay.providers.openai.vllm_omni import (
    SENT_HINTS,
    create_fields,
    duration,
    form_pairs,
    frame_size,
    is_model_mismatch,
    vllm_classify,
)

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp, Reply

__all__ = ["OpenAIOptions", "OpenAIProvider", "VideosApiProvider"]

log = logging.getLogger("relay.providers.openai")


@dataclass(frozen=True)
class OpenAIOptions:
    json_create: bool = option(
        False, "send create as JSON (the image as input_reference.image_url)"
    )
    organization: str = option("", "sent as the OpenAI-Organization header when set")
    project: str = option("", "sent as the OpenAI-Project header when set")
    vllm_omni: bool = option(
        False, "the server is a local vLLM-Omni (api_key optional, extension fields, no remix)"
    )
    fields: dict[str, Any] = option(
        {}, "vllm_omni: form fields pinned on every create (e.g. fps, num_frames)", kind=dict
    )


class OpenAIProvider(VideosApiProvider[OpenAIOptions]):
    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    Options = OpenAIOptions
    delete_retry_s = 3.0  # vLLM-Omni: a 409 on delete is worth one more try after this

    def __init__(self, channel: ChannelView[OpenAIOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.vllm = channel.options.vllm_omni
        if self.vllm:
            # per channel, so the relay refuses a remix or a thumbnail before any upstream call
            self.features = (self.features - {"remix"}) | {"cancel"}
            self.variants = frozenset({"video"})
            self.typical_run_s = 300.0  # 2-15 min on a home GPU; upstream progress stays 0

    @classmethod
    def credentials_needed(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        # a vLLM-Omni server started without --api-key takes no key at all
        return () if options.get("vllm_omni") else cls.credentials

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        options = self.channel.options
        if options.organization:
            headers["OpenAI-Organization"] = options.organization
        if options.project:
            headers["OpenAI-Project"] = options.project
        return headers

    async def create_body(self, request: VideoRequest, model: str, seconds: int, size: str) -> Any:
        """JSON with `json_create` (the image passes through as a URL); else multipart."""
        if self.channel.options.json_create:
            return json_create(request, model, seconds, size)
        return await super().create_body(request, model, seconds, size)

    # --- vLLM-Omni --------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        if not self.vllm:
            return await super().submit(request, model)
        dropped = [hint for hint in dropped_hints(request) if hint not in SENT_HINTS]
        if dropped:
            log.debug("%s: dropped %s (no such upstream field)", self.name, ", ".join(dropped))
        image = split_frames(request.images).first
        part = await self.image_file(image) if image is not None else None
        # one model per server: `model` goes only when model_map names the served model, so an
        # unmapped public name cannot fail the job with a model mismatch
        fields = create_fields(
            request,
            model if model != request.model else None,
            upstream_seconds(request.duration, model),
            pixel_size(request.dimensions),
            self.channel.options.fields,
            part is not None,
        )
        body = form(form_pairs(fields), part)  # multipart only: the server refuses JSON
        reply = await self.send("POST", f"{self.base_url}/videos", "create", body)
        return self.submitted(reply, duration(fields), frame_size(fields))

    def parse(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Update:
        update = super().parse(body, headers)
        if not self.vllm:
            return update
        # progress stays 0 until done (the relay's time-based estimate stands in), and the echoed
        # seconds may be wrong (frames are seconds x fps): what submit worked out stays
        return replace(update, progress=100 if update.status == "completed" else None, seconds=None)

    def error(self, reply: Reply, phase: Phase) -> ProviderError:
        if not self.vllm:
            return super().error(reply, phase)
        body, detail = self.scrubbed(reply)
        error = vllm_classify(reply.status, body, reply.headers, phase, detail)
        if is_model_mismatch(reply.status, body):
            # the classified message only: a WARNING line never carries the raw body
            log.warning(
                "%s: the vLLM-Omni server runs another model than model_map names: %s",
                self.channel.name,
                error.for_log,
            )
        return error

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        if not self.vllm:
            return await super().content(task, variant)
        self.variant_check(variant)
        # no ?variant=: the server ignores it and would answer the MP4 under the asked-for type
        return Remote(
            self.video_url(task.upstream_id, "/content"),
            headers=self.auth_headers(),
            content_type="video/mp4",
            trusted=True,
        )

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        if self.vllm:
            raise Unsupported("provider 'openai' does not support remix on a vLLM-Omni server")
        return await super().remix(source, request, model)

    async def delete(self, task: TaskRef) -> None:
        if not self.vllm:
            return await super().delete(task)
        url = self.video_url(task.upstream_id)
        reply = await self.call("DELETE", url)
        if reply.status == 409:
            # cancelling, or the file is still being saved: the page's one retry
            await asyncio.sleep(self.delete_retry_s)
            reply = await self.call("DELETE", url)
        if reply.status != 404 and self.failed(reply):
            raise self.error(reply, "delete")

    async def cancel(self, task: TaskRef) -> None:
        """vLLM-Omni's DELETE stops a queued or running job, and deletes a finished one with
        its file: asked first, so a job that ended just now keeps its result."""
        if not self.vllm:
            return await super().cancel(task)
        update = await self.poll(task)
        if update.status in TERMINAL:
            raise CancelRefused(f"the job has already ended ({update.status})")
        url = self.video_url(task.upstream_id)
        reply = await self.call("DELETE", url)
        if reply.status == 409 and not _cancelling(reply):
            await asyncio.sleep(self.delete_retry_s)  # the output is being saved: one retry
            reply = await self.call("DELETE", url)
        if not self.failed(reply) or _cancelling(reply):
            return  # "Cancellation in progress": the server is stopping it
        if reply.status == 409:
            raise CancelRefused("the job finished and its output is being saved")
        raise self.error(reply, "delete")


def _cancelling(reply: Reply) -> bool:
    """The page's 409 "Cancellation in progress": the stop was taken and takes over 2 s."""
    return reply.status == 409 and b"cancellation in progress" in reply.body[:4096].lower()
