"""The Videos API as OpenAI defines it (spec/providers/openai.md): what every server imitating
it shares. `openai` and `compat-relay` build on `VideosApiProvider`.

The upstream already speaks the relay's API, so the adapter mostly passes things through: the
create goes out as multipart (every compatible server takes it), the poll reads the video object,
and content is the upstream's own `/content` endpoint with the key, which may redirect to a
signed URL on another host (the relay drops the key across origins).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson

from relay.domain import VARIANTS, ContentSource, Image, Remote, Status, TaskRef, VideoRequest
from relay.providers.base import Accepts, Provider, Submitted, Update, split_frames
from relay.providers.errors import ProviderError, TaskNotFound, Unavailable
from relay.providers.normalize import merge_metadata
from relay.providers.openai.models import accepts, pixel_size, upstream_seconds
from relay.providers.openai.request import FilePart, dropped_hints, form, form_create, image_part
from relay.providers.openai.response import (
    Phase,
    classify,
    is_failed_video,
    poll_after,
    redact,
    video_update,
)

if TYPE_CHECKING:
    from relay.providers.http import Reply

log = logging.getLogger("relay.providers.openai")

IMAGE_LIMIT = 20 * 1024 * 1024  # a fetched image URL: a generous cap, upstream has its own

OptionsT = TypeVar("OptionsT")


class VideosApiProvider(Provider[OptionsT]):
    """The Videos API as OpenAI defines it; subclasses name themselves and add their options."""

    credentials = ("api_key",)
    features = frozenset({"image_input", "remix"})
    variants = frozenset(VARIANTS)
    typical_run_s = 180.0
    result_ttl_s = 3600.0

    # --- the adapter contract ---------------------------------------------------------------

    def accepts(self, model: str) -> Accepts:
        return accepts(model)

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        seconds = upstream_seconds(request.duration, model)
        size = pixel_size(request.dimensions)
        dropped = dropped_hints(request)
        if dropped:
            log.debug("%s: dropped %s (no such upstream field)", self.name, ", ".join(dropped))
        body = await self.create_body(request, model, seconds, size)
        reply = await self.send("POST", f"{self.base_url}/videos", "create", body)
        return self.submitted(reply, str(seconds), size)

    async def poll(self, task: TaskRef) -> Update:
        reply = await self.call("GET", self.video_url(task.upstream_id))
        # a failed job may come with an error status and its video object (vLLM-Omni): that is
        # the job's outcome, not a failed poll to retry
        if self.failed(reply) and not is_failed_video(reply.json()):
            raise self.error(reply, "poll")
        return self.parse(self.video_object(reply), reply.headers)

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        return Remote(
            self.video_url(task.upstream_id, "/content") + f"?variant={variant}",
            headers=self.auth_headers(),
            content_type=VARIANTS[variant][0],
            trusted=True,  # base_url's own origin; a redirect elsewhere is guarded again
        )

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        # ids belong to one project: the source's upstream id, on the channel that made it
        body = merge_metadata({"prompt": request.prompt}, request.metadata)
        reply = await self.send("POST", self.video_url(source.upstream_id, "/remix"), "remix", body)
        return self.submitted(reply, source.seconds, source.size)

    async def delete(self, task: TaskRef) -> None:
        with contextlib.suppress(TaskNotFound):  # already gone upstream: expired or deleted there
            await self.send("DELETE", self.video_url(task.upstream_id), "delete")

    # --- requests ---------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        # a local server without a key ignores the header, but an empty Bearer is not worth sending
        key = self.channel.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def video_url(self, upstream_id: str, suffix: str = "") -> str:
        return f"{self.base_url}/videos/{quote(upstream_id, safe='')}{suffix}"

    async def create_body(self, request: VideoRequest, model: str, seconds: int, size: str) -> Any:
        """Multipart, with URL and data-URL images as file parts."""
        image = split_frames(request.images).first
        part = await self.image_file(image) if image is not None else None
        return form(form_create(request, model, seconds, size, part is not None), part)

    async def image_file(self, image: Image) -> FilePart:
        image = await self.image_bytes(image, IMAGE_LIMIT)
        assert image.data is not None and image.mime is not None
        return image_part(image.data, image.mime)

    async def send(self, method: str, url: str, phase: Phase, body: Any = None) -> Reply:
        """One upstream call; an error answer raises as its class in the error tree."""
        reply = await self.call(method, url, body)
        if self.failed(reply):
            raise self.error(reply, phase)
        return reply

    async def call(self, method: str, url: str, body: Any = None) -> Reply:
        """One upstream call, whatever it answers."""
        return await self.http.request(
            method,
            url,
            headers=self.auth_headers(),
            json=body if isinstance(body, dict) else None,
            data=body if isinstance(body, aiohttp.FormData) else None,
        )

    # --- answers ----------------------------------------------------------------------------

    def failed(self, reply: Reply) -> bool:
        return not 200 <= reply.status < 300

    def error(self, reply: Reply, phase: Phase) -> ProviderError:
        body, detail = self.scrubbed(reply)
        return classify(reply.status, body, reply.headers, phase, detail)

    def scrubbed(self, reply: Reply) -> tuple[Any, str]:
        """The answer's JSON and a log line, with the channel's key masked out of both."""
        text = redact(reply.body[:4096].decode("utf-8", "replace"), (self.channel.api_key,))
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            body = None
        return body, f"HTTP {reply.status}: {text[:500]}"

    def video_object(self, reply: Reply) -> Mapping[str, Any]:
        body = reply.json()
        if not isinstance(body, dict):
            raise Unavailable("the upstream sent no video object", detail=self.scrubbed(reply)[1])
        return body

    def created_id(self, body: Mapping[str, Any]) -> str | None:
        value = body.get("id")
        return value if isinstance(value, str) and value else None

    def parse(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Update:
        return video_update(body, poll_after(headers))

    def submitted(self, reply: Reply, seconds: str, size: str) -> Submitted:
        body = reply.json()
        upstream_id = self.created_id(body) if isinstance(body, dict) else None
        if upstream_id is None:
            raise Unavailable(
                "the upstream accepted the job but sent no id",
                maybe_created=True,
                detail=self.scrubbed(reply)[1],
            )
        assert isinstance(body, dict)
        update = self.parse(body, reply.headers)
        # a terminal status this early is left for the first poll to report
        running: Status = "in_progress" if update.status == "in_progress" else "queued"
        return Submitted(
            upstream_id=upstream_id,
            seconds=update.seconds or seconds,
            size=update.size or size,
            status=running,
            progress=(update.progress or 0) if running == "in_progress" else 0,
        )
