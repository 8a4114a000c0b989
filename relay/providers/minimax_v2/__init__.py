"""MiniMax Hailuo H3 on the V2 API, `provider = "minimax-v2"` (spec/providers/minimax-v2.md):
create at `POST /v2/video_generation`, query at `GET /v2/query/video_generation/{task_id}` until
`succeeded`, then download the signed `content.url` as it is, without the key. `DELETE` on the
task cancels it while `queued` (and deletes a finished task's record, which cancel never asks
for). With `options.context_ir` the job starts as MiniMax's prompt expansion, and the poll that
sees it succeed sends the generation with the expanded prompt.

models.py knows the models, request.py builds the bodies, response.py reads answers,
expansion.py holds the optional context-IR step. Of the V1 adapter (relay/providers/minimax)
only its reading of a V1-style `base_resp` is shared: the rest of V1 differs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
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
)
from relay.providers.errors import (
    CancelRefused,
    NotReady,
    ProviderError,
    Rejected,
    TaskNotFound,
)
from relay.providers.http import ChannelHttp, Reply
from relay.providers.minimax_v2 import models
from relay.providers.minimax_v2.expansion import (
    after_expansion,
    current,
    expanding,
    generation_update,
)
from relay.providers.minimax_v2.request import (
    Input,
    build,
    check_prompt,
    check_sizes,
    context_ir_body,
    inputs,
    refusal,
    to_host,
)
from relay.providers.minimax_v2.response import (
    URL_TTL_S,
    classify,
    failed_answer,
    status_of,
    task_id,
    task_of,
)

log = logging.getLogger("relay.providers.minimax_v2")

GENERATION = "/v2/video_generation"
QUERY = "/v2/query/video_generation/"
CONTEXT_IR = "/v2/h3_context_ir"


@dataclass(frozen=True)
class MinimaxV2Options:
    resolution: str = option(
        "768P",
        "the tier sent when a request gives only a ratio (2K on MiniMax-H3 only; "
        "480P on MiniMax-H3-Max only)",
        choices=models.RESOLUTIONS,
    )
    context_ir: bool = option(
        False,
        "run MiniMax's prompt expansion (POST /v2/h3_context_ir: billed, a few minutes) first "
        "and generate from its prompt",
    )
    poll_interval_s: float = option(
        10.0,
        "the shortest wait between two status checks of a task (MiniMax asks for 10 s or more)",
        kind=(int, float),
        minimum=0,
    )


class MinimaxV2Provider(Provider[MinimaxV2Options]):
    name = "minimax-v2"
    credentials = ("api_key",)
    default_base_url = "https://api.minimax.io"
    features = frozenset(
        {"image_input", "last_frame", "reference_images", "reference_video", "reference_audio",
         "cancel"}
    )  # fmt: skip
    variants = frozenset({"video"})  # no thumbnail
    Options = MinimaxV2Options
    typical_run_s = 300.0  # several minutes at 768P
    result_ttl_s = URL_TTL_S

    @property
    def min_poll_s(self) -> float:
        return float(self.channel.options.poll_interval_s)

    def __init__(self, channel: ChannelView[MinimaxV2Options], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        options = channel.options
        # 5-15 min is reported at 2K; the prompt expansion adds a few minutes more
        self.typical_run_s = (600.0 if options.resolution == "2K" else 300.0) + (
            120.0 if options.context_ir else 0.0
        )

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        return super().refusal(request, model) or refusal(request, model)

    # --- create -----------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        options = self.channel.options
        check_prompt(request.prompt)  # before any input is hosted
        found = inputs(request)
        check_sizes(found)
        # a body waiting in the task's state for the expansion must hold URLs, not bytes
        urls = await self._urls(found, everything=options.context_ir)
        native = build(request, model, options.resolution, urls)
        if native.dropped:
            log.debug("minimax-v2 has no field for %s; dropped", ", ".join(native.dropped))
        seconds, size = str(native.seconds), native.size
        if not options.context_ir:
            return Submitted(await self._create(GENERATION, native.body), seconds, size)
        expansion = await self._create(CONTEXT_IR, context_ir_body(native.body))
        state = {"context_ir": expansion, "pending": native.body}
        return Submitted(expansion, seconds, size, state=state)

    async def _urls(self, found: Sequence[Input], *, everything: bool) -> list[str]:
        hosted = to_host(found, everything=everything)
        return [
            await self.input_url(i.source, param=i.param)
            if n in hosted
            else i.source.url_or_data_url()
            for n, i in enumerate(found)
        ]

    async def _create(self, path: str, body: Mapping[str, Any]) -> str:
        reply = await self.http.request(
            "POST", self.base_url + path, headers=self._headers(), json=body
        )
        answer = reply.json()
        if failed_answer(reply.status, answer):
            raise classify(reply.status, reply.headers, answer, reply.text(), creating=True)
        return task_id(answer, f"HTTP {reply.status}: {reply.text()}")

    # --- query ------------------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        found = await self._query(current(task))
        if not expanding(task.state):
            return self._paced(generation_update(task, found, now=now()))

        async def create(body: Mapping[str, Any]) -> str:
            return await self._create(GENERATION, body)

        return self._paced(await after_expansion(task, found, create, now=now()))

    def _paced(self, update: Update) -> Update:
        wait = float(self.channel.options.poll_interval_s)
        if update.status in ("completed", "failed") or not wait:
            return update
        return replace(update, poll_after_s=wait)

    async def _query(self, upstream_id: str) -> Mapping[str, Any]:
        reply = await self.http.request(
            "GET", self._url(QUERY, upstream_id), headers=self._headers()
        )
        body = reply.json()
        if failed_answer(reply.status, body):
            raise classify(reply.status, reply.headers, body, reply.text(), about_task=True)
        return task_of(body, reply.text())

    # --- results, delete, cancel ----------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        url = task.state.get("video_url")
        if not isinstance(url, str) or not url:
            raise NotReady("minimax-v2 has not listed a result for this task yet")
        # a signed CDN URL: used exactly as received, and never with the key
        return Remote(url, content_type="video/mp4")

    # refresh_content: the base class's. A new query signs a fresh content.url for 7 days.

    async def delete(self, task: TaskRef) -> None:
        """Best effort: removes a finished task's record (a queued one would be cancelled)."""
        reply = await self._delete(current(task))
        if not failed_answer(reply.status, reply.json()):
            return
        error = self._delete_error(reply)
        if isinstance(error, TaskNotFound):
            return
        if isinstance(error, Rejected) and not error.moderation:
            log.info(
                "%s: MiniMax refused to delete the task (%s)", self.channel.name, error.for_log
            )
            return
        raise error

    async def cancel(self, task: TaskRef) -> None:
        """DELETE cancels a queued task, is refused while it runs, and deletes a finished one's
        record: the status is asked first, so a job that ended just now keeps its result."""
        upstream_id = current(task)
        status = status_of(await self._query(upstream_id))
        if expanding(task.state) and status != "queued":
            # the expansion runs out on its own; the generation is simply never sent
            log.info("%s: cancelled before the generation was sent", self.channel.name)
            return
        if status != "queued":
            raise CancelRefused(f"MiniMax cancels only a queued task; this one is {status or '?'}")
        reply = await self._delete(upstream_id)
        body = reply.json()
        if expanding(task.state):
            # whatever MiniMax says of the expansion, the generation is never sent once the
            # relay has ended the task; a refusal here must not lead to the poll that sends it
            return
        if not failed_answer(reply.status, body):
            if isinstance(body, Mapping) and body.get("action") == "deleted":
                log.warning("%s: the task ended as it was cancelled; MiniMax deleted its record",
                            self.channel.name)  # fmt: skip
            return
        error = self._delete_error(reply)
        if isinstance(error, Rejected) and not error.moderation:
            # it left the queue between the two calls: refused while running (400 or 409)
            raise CancelRefused(
                f"MiniMax cancels only a queued task ({error.message})", detail=error.detail
            )
        raise error

    async def _delete(self, upstream_id: str) -> Reply:
        return await self.http.request(
            "DELETE", self._url(GENERATION + "/", upstream_id), headers=self._headers()
        )

    @staticmethod
    def _delete_error(reply: Reply) -> ProviderError:
        return classify(reply.status, reply.headers, reply.json(), reply.text(), about_task=True)

    # --- helpers ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}", "Accept": "application/json"}

    def _url(self, prefix: str, upstream_id: str) -> str:
        return f"{self.base_url}{prefix}{quote(upstream_id, safe='')}"  # a path segment


__all__ = ["MinimaxV2Options", "MinimaxV2Provider"]
