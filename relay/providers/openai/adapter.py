"""The `openai` adapter: OpenAI's Videos API (Sora) and servers that follow it closely.

The upstream already speaks the relay's API, so the adapter mostly passes things through: the
create goes out as multipart (every compatible server takes it; JSON with `json_create`), the
poll reads the video object, and content is the upstream's own `/content` endpoint with the key,
which may redirect to a signed URL on another host (the relay drops the key across origins).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import orjson

from relay.providers.base import (
    VARIANTS,
    ContentSource,
    Image,
    Job,
    Option,
    Provider,
    ProviderError,
    Remote,
    Status,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unavailable,
    Update,
)
from relay.providers.normalize import merge_metadata
from relay.providers.openai.wire import (
    FilePart,
    Phase,
    classify,
    dropped_hints,
    form_create,
    image_part,
    json_create,
    pixel_size,
    poll_after,
    redact,
    upstream_seconds,
    video_update,
)
from relay.upstream import Reply

log = logging.getLogger("relay.providers.openai")

OPTIONAL_HEADERS = (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project"))
IMAGE_LIMIT = 20 * 1024 * 1024  # a fetched image URL: a generous cap, upstream has its own


class OpenAIProvider(Provider):
    name = "openai"
    credentials = ("api_key",)
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    features = frozenset({"image_input", "remix"})
    variants = frozenset(VARIANTS)
    options: ClassVar[dict[str, Option]] = {
        "json_create": Option(
            bool, False, "send create as JSON (the image as input_reference.image_url)"
        ),
        "organization": Option(str, "", "sent as the OpenAI-Organization header when set"),
        "project": Option(str, "", "sent as the OpenAI-Project header when set"),
    }
    typical_run_s = 180.0
    result_ttl_s = 3600.0

    # --- the adapter contract ---------------------------------------------------------------

    async def submit(self, job: Job) -> Submitted:
        seconds, size = upstream_seconds(job.seconds, job.model), pixel_size(job.size)
        dropped = dropped_hints(job)
        if dropped:
            log.debug("%s: dropped %s (no such upstream field)", self.name, ", ".join(dropped))
        body = await self.create_body(job, seconds, size)
        reply = await self.send("POST", f"{self.base_url}/videos", "create", body)
        return self.submitted(reply, str(seconds), size)

    async def poll(self, task: TaskRef) -> Update:
        reply = await self.send("GET", self.video_url(task.upstream_id), "poll")
        return self.parse(self.video_object(reply), reply.headers)

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        return Remote(
            self.video_url(task.upstream_id, "/content") + f"?variant={variant}",
            headers=self.auth_headers(),
            content_type=VARIANTS[variant][0],
            trusted=True,  # base_url's own origin; a redirect elsewhere is guarded again
        )

    async def remix(self, source: TaskRef, job: Job) -> Submitted:
        # ids belong to one project: the source's upstream id, on the channel that made it
        body = merge_metadata({"prompt": job.prompt}, job.metadata)
        reply = await self.send("POST", self.video_url(source.upstream_id, "/remix"), "remix", body)
        return self.submitted(reply, source.seconds, source.size)

    async def delete(self, task: TaskRef) -> None:
        with contextlib.suppress(TaskNotFound):  # already gone upstream: expired or deleted there
            await self.send("DELETE", self.video_url(task.upstream_id), "delete")

    # --- requests ---------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.channel.api_key}"}
        for option, header in OPTIONAL_HEADERS:
            value = self.channel.options.get(option)
            if value:
                headers[header] = str(value)
        return headers

    def video_url(self, upstream_id: str, suffix: str = "") -> str:
        return f"{self.base_url}/videos/{quote(upstream_id, safe='')}{suffix}"

    async def create_body(self, job: Job, seconds: int, size: str) -> Any:
        """JSON with `json_create`; else multipart, with URL and data-URL images as file parts."""
        if self.channel.options.get("json_create"):
            return json_create(job, seconds, size)
        part = await self.image_file(job.images[0]) if job.images else None
        return form(form_create(job, seconds, size, part is not None), part)

    async def image_file(self, image: Image) -> FilePart:
        image = await self.image_bytes(image, IMAGE_LIMIT)
        assert image.data is not None and image.mime is not None
        return image_part(image.data, image.mime)

    async def send(self, method: str, url: str, phase: Phase, body: Any = None) -> Reply:
        """One upstream call; an error answer raises as its class in the error tree."""
        reply = await self.http.request(
            method,
            url,
            headers=self.auth_headers(),
            json=body if isinstance(body, dict) else None,
            data=body if isinstance(body, aiohttp.FormData) else None,
        )
        if self.failed(reply):
            raise self.error(reply, phase)
        return reply

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


def form(pairs: list[tuple[str, str]], part: FilePart | None) -> aiohttp.FormData:
    """A multipart body; aiohttp writes the boundary into the Content-Type."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in pairs:
        data.add_field(name, value)
    if part is not None:
        data.add_field(part.name, part.data, filename=part.filename, content_type=part.content_type)
    return data
