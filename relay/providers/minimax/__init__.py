"""MiniMax Hailuo, `provider = "minimax"` (spec/providers/minimax.md): create, poll the task until
it names a file, then trade the file id for a signed URL through files/retrieve, again on every
read. models.py knows the models, request.py builds the create body, response.py reads answers.
"""

from __future__ import annotations

import logging
from typing import Any

from relay.domain import ContentSource, Remote, TaskRef, VideoRequest
from relay.providers.base import Accepts, NoOptions, Provider, Submitted, Update, now
from relay.providers.errors import NotReady, ProviderError, Unavailable
from relay.providers.http import Reply
from relay.providers.minimax import models
from relay.providers.minimax.request import build
from relay.providers.minimax.response import (
    POLL_RULES,
    URL_TTL_S,
    Succeeded,
    completed,
    http_error,
    read_confirmation,
    read_file,
    read_query,
    task_id,
)

log = logging.getLogger("relay.providers.minimax")


class MinimaxProvider(Provider[NoOptions]):
    name = "minimax"
    credentials = ("api_key",)
    default_base_url = "https://api.minimax.io"
    features = frozenset({"image_input", "last_frame", "reference_images"})
    variants = frozenset({"video"})  # MiniMax makes no thumbnail
    Options = NoOptions
    typical_run_s = 180.0
    result_ttl_s = URL_TTL_S
    poll_rules = POLL_RULES

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or models.refusal(request, model)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}", "Accept": "application/json"}

    async def _get(self, path: str, params: dict[str, str]) -> Reply:
        return await self.http.request(
            "GET", f"{self.base_url}{path}", headers=self._headers(), params=params
        )

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        native = build(request, model)
        if native.dropped:
            log.debug("minimax has no field for %s; dropped", ", ".join(native.dropped))
        reply = await self.http.request(
            "POST",
            f"{self.base_url}/v1/video_generation",
            headers=self._headers(),
            json=native.body,
        )
        body = reply.json()
        error = http_error(reply.status, reply.headers, body, reply.text(), creating=True)
        if error is not None:
            raise error
        return Submitted(upstream_id=task_id(body), seconds=str(native.seconds), size=native.size)

    async def poll(self, task: TaskRef) -> Update:
        reply = await self._get("/v1/query/video_generation", {"task_id": task.upstream_id})
        body = reply.json()
        if reply.status != 200:
            raise _gateway(reply, body)
        result = read_query(body, reply.headers, raw=reply.text())
        if not isinstance(result, Succeeded):
            return result
        # `Success` counts once files/retrieve has a URL; a gateway failure leaves the task as is
        reply = await self._get("/v1/files/retrieve", {"file_id": result.file_id})
        body = reply.json()
        if reply.status != 200:
            raise _gateway(reply, body)
        read_confirmation(body, reply.headers, reply.text())
        return completed(result, now=now())

    async def _retrieve(self, file_id: str) -> tuple[str, ...]:
        """The file's URLs, freshly signed; raises what an error answer stands for."""
        reply = await self._get("/v1/files/retrieve", {"file_id": file_id})
        body = reply.json()
        if reply.status != 200:
            raise _gateway(reply, body)
        return read_file(body, reply.headers, reply.text())

    def _file_id(self, task: TaskRef) -> str:
        file_id = task.state.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise NotReady("minimax has not named a file for this task yet")
        return file_id

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        # never a stored URL: it expires after ~9 h, the file id does not
        self.variant_check(variant)
        urls = await self._retrieve(self._file_id(task))
        return Remote(urls[0], content_type="video/mp4")

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Retrieve again. Not the base class's poll-and-compare: the state (a file id) never
        changes, only the signed URLs do. content() signed its URL a moment ago, so a refusal
        means that host is failing, not that the URL expired: the backup host is the better
        choice."""
        self.variant_check(variant)
        try:
            urls = await self._retrieve(self._file_id(task))
        except ProviderError:
            return None
        return Remote(urls[-1], content_type="video/mp4")


def _gateway(reply: Reply, body: Any) -> ProviderError:
    """A non-200 answer: MiniMax itself answers 200, so this is a gateway in front of it."""
    error = http_error(reply.status, reply.headers, body, reply.text())
    return error or Unavailable(f"HTTP {reply.status}: the upstream failed")


__all__ = ["MinimaxProvider"]
