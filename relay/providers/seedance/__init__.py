"""Seedance (ByteDance): Volcengine Ark and BytePlus ModelArk video tasks
(spec/providers/seedance.md).

__init__.py  the adapter: refusal, submit, poll, content, remix, delete, cancel
models.py    what each model family can do, and the output-size table by generation
request.py   the client's request as an Ark create body (pure)
response.py  task objects and error envelopes in relay terms (pure)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.domain import FEATURES, ContentSource, Media, Remote, TaskRef, VideoRequest
from relay.providers.base import Accepts, Provider, Submitted, Update, option
from relay.providers.errors import (
    CancelRefused,
    NotReady,
    ProviderError,
    Rejected,
    Unavailable,
    Unsupported,
    VariantUnavailable,
    native_text,
)
from relay.providers.normalize import created_id
from relay.providers.seedance.models import (
    FAMILIES,
    NEWEST,
    URL_TTL_S,
    Family,
    accepts,
    family_of,
)
from relay.providers.seedance.request import CreateBody, create_body
from relay.providers.seedance.response import classify, native_error, task_update

if TYPE_CHECKING:
    from relay.providers.http import Reply

TASKS = "/contents/generations/tasks"
# variant: (state key, content type). The last frame is a PNG, whatever VARIANTS says.
RESULTS = {"video": ("video_url", "video/mp4"), "thumbnail": ("last_frame_url", "image/png")}


@dataclass(frozen=True)
class SeedanceOptions:
    endpoint_family: str = option(
        NEWEST,
        "the model family behind ep-… endpoint ids (and ids that name no Seedance version)",
        kind=str,
        choices=FAMILIES,
    )
    last_frame_thumbnail: bool = option(
        True,
        "send return_last_frame, so the last frame serves variant=thumbnail",
        kind=bool,
    )


class SeedanceProvider(Provider[SeedanceOptions]):
    name = "seedance"
    credentials = ("api_key",)
    default_base_url = "https://ark.cn-beijing.volces.com/api/v3"
    features = FEATURES | {"cancel"}  # per model, refusal() narrows this down
    variants = frozenset(RESULTS)
    Options = SeedanceOptions
    typical_run_s = 120.0
    result_ttl_s = float(URL_TTL_S)

    def family(self, model: str) -> Family:
        return family_of(model, self.channel.options.endpoint_family)

    def accepts(self, model: str) -> Accepts:
        return accepts(self.family(model))

    def can_remix(self, model: str) -> bool:
        return self.family(model).takes_media  # a remix references the source video: 2.0 only

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        why = super().refusal(request, model)
        if why:
            return why
        family = self.family(model)
        label = f"Seedance {family.name}"
        if request.images and not family.takes_images:
            return f"{label} is text-to-video only: it takes no image input"
        references = sum(image.role == "reference_image" for image in request.images)
        if references > family.max_reference_images:
            if family.max_reference_images == 0:
                return f"{label} does not support reference images"
            return f"{label} takes at most {family.max_reference_images} reference images"
        kinds = {f"{m.kind}_url" for m in request.media} | _metadata_kinds(request.metadata)
        for kind in sorted(kinds & {"video_url", "audio_url"}):
            if not family.takes_media:
                noun = kind.removesuffix("_url")
                return f"{label} does not support a reference {noun} (2.0 models do)"
        return None

    # --- create ---------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        family = self.family(model)
        last_frame = self.channel.options.last_frame_thumbnail
        # reference videos and audio are fetched by URL only: bytes are hosted by the relay
        request = await self.hosted_inputs(request)
        return await self._create(create_body(request, model, family, return_last_frame=last_frame))

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        """A new task whose reference video is the source's result (2.0 models only)."""
        family = self.family(model)
        # Here rather than in refusal(): the relay's remix path does not turn a refusal into a
        # 400 yet (relay/tasks.py calls check() outside its Unsupported handling).
        if not family.takes_media:
            raise Unsupported(
                f"Seedance {family.name} cannot remix: only 2.0 models take a reference video"
            )
        url = self.live_result_url(source)
        if url is None:
            # past the upstream URL's 24 h: the relay's stored copy, served at its public_url
            url = await self.stored_copy_url(source)
            if url is None:
                raise Rejected(
                    "the source video's upstream URL expired (24 h after it was made) and the "
                    "relay keeps no copy of it ([storage] keep_videos), so it cannot be sent as a "
                    "reference video",
                    param="video_id",
                )
        plain = replace(request, images=(), media=())
        reference = Media(kind="video", url=url, role="reference_video")
        body = create_body(
            plain,
            model,
            family,
            return_last_frame=self.channel.options.last_frame_thumbnail,
            media=(reference,),
        )
        return await self._create(body)

    async def _create(self, req: CreateBody) -> Submitted:
        reply = await self.http.request(
            "POST", self.base_url + TASKS, headers=self._auth(), json=req.body
        )
        body = reply.json()
        if not 200 <= reply.status < 300 or native_error(body) is not None:
            raise self._error(reply, body, on_task=False)
        task_id = created_id(
            body.get("id") if isinstance(body, Mapping) else None,
            f"HTTP {reply.status}: {reply.text()}",
        )
        return Submitted(upstream_id=task_id, seconds=req.seconds, size=req.size)

    # --- query ------------------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        found = await self._query(task.upstream_id)
        model = found.get("model")
        if isinstance(model, str) and not model.startswith("ep-"):
            family = self.family(model)  # an endpoint's task names the real model
        else:
            family = self.family(task.upstream_model)
        return task_update(found, family)

    async def _query(self, upstream_id: str) -> Mapping[str, Any]:
        reply = await self.http.request("GET", self._task_url(upstream_id), headers=self._auth())
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise self._error(reply, body, on_task=True)
        if not isinstance(body, Mapping) or "status" not in body:
            if native_error(body) is not None:
                raise self._error(reply, body, on_task=True)
            raise Unavailable(
                "the upstream sent an unreadable task", detail=f"HTTP 200: {reply.text()}"
            )
        return body

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        state: Mapping[str, Any] = task.state
        if not state.get("video_url"):  # recorded before this adapter kept it: ask again
            update = await self.poll(task)
            if update.status != "completed":
                raise NotReady("the upstream task has no result yet")
            state = update.state
        source = _source(state, variant)
        if source is None:
            raise VariantUnavailable(
                "this task has no last frame (it was created without return_last_frame)"
            )
        return source

    # refresh_content: the base class's. A new query is worth a try for 7 days, and the base
    # offers its URL only when it differs from the stored one.

    async def delete(self, task: TaskRef) -> None:
        """Best effort: a queued task is cancelled, a finished one's record is deleted; a
        running one is refused upstream (and the caller only logs that)."""
        reply = await self.http.request(
            "DELETE", self._task_url(task.upstream_id), headers=self._auth()
        )
        if 200 <= reply.status < 300 or reply.status == 404:
            return
        raise self._error(reply, reply.json(), on_task=True)

    async def cancel(self, task: TaskRef) -> None:
        """Ark's DELETE cancels a queued task, refuses a running one, and deletes a finished
        one's record: asked first, so a job that ended just now keeps its result."""
        status = (await self._query(task.upstream_id)).get("status")
        if status != "queued":
            raise CancelRefused(
                f"Seedance cancels only a queued task; this one is {native_text(status, 20)}"
            )
        reply = await self.http.request(
            "DELETE", self._task_url(task.upstream_id), headers=self._auth()
        )
        if 200 <= reply.status < 300:
            return
        error = self._error(reply, reply.json(), on_task=True)
        if isinstance(error, Rejected) and not error.moderation:
            # it left the queue between the two calls: the page's refusal of a running task
            raise CancelRefused(
                f"Seedance cancels only a queued task ({error.message})", detail=error.detail
            )
        raise error

    # --- helpers ----------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}"}

    def _task_url(self, upstream_id: str) -> str:
        return f"{self.base_url}{TASKS}/{quote(upstream_id, safe='')}"

    @staticmethod
    def _error(reply: Reply, body: Any, *, on_task: bool) -> ProviderError:
        return classify(reply.status, reply.headers, body, reply.text(), on_task=on_task)


def _source(state: Mapping[str, Any], variant: str) -> Remote | None:
    key, content_type = RESULTS[variant]
    url = state.get(key)
    if not isinstance(url, str) or not url:
        return None
    # a pre-signed object-store URL: fetched exactly as received, with no Authorization
    return Remote(url, content_type=content_type)


def _metadata_kinds(metadata: Mapping[str, Any]) -> set[str]:
    items = metadata.get("content")
    if not isinstance(items, list):
        return set()
    return {str(item.get("type")) for item in items if isinstance(item, Mapping)}


__all__ = ["SeedanceOptions", "SeedanceProvider"]
