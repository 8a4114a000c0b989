"""The Seedance adapter: Ark content-generation tasks over HTTP (spec/providers/seedance.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from relay.providers.base import (
    FEATURES,
    ContentSource,
    Job,
    Media,
    NotReady,
    Option,
    Provider,
    Rejected,
    Remote,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unavailable,
    Unsupported,
    Update,
    VariantUnavailable,
    now,
)
from relay.providers.seedance.models import FAMILIES, NEWEST, URL_TTL_S, Family, family_of
from relay.providers.seedance.request import CreateBody, create_body
from relay.providers.seedance.response import classify, native_error, task_update

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp, Reply

TASKS = "/contents/generations/tasks"
# variant: (state key, content type). The last frame is a PNG, whatever VARIANTS says.
RESULTS = {"video": ("video_url", "video/mp4"), "thumbnail": ("last_frame_url", "image/png")}


class SeedanceProvider(Provider):
    name = "seedance"
    credentials = ("api_key",)
    default_base_url = "https://ark.cn-beijing.volces.com/api/v3"
    features = FEATURES  # per model, check() narrows this down
    variants = frozenset(RESULTS)
    options: ClassVar[dict[str, Option]] = {
        "endpoint_family": Option(
            str,
            NEWEST,
            "the model family behind ep-… endpoint ids (and ids that name no Seedance version)",
            choices=FAMILIES,
        ),
        "last_frame_thumbnail": Option(
            bool,
            True,
            "send return_last_frame, so the last frame serves variant=thumbnail",
        ),
    }
    typical_run_s = 120.0
    result_ttl_s = float(URL_TTL_S)

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.endpoint_family = str(channel.options.get("endpoint_family", NEWEST))
        self.last_frame = bool(channel.options.get("last_frame_thumbnail", True))

    def family(self, model: str) -> Family:
        return family_of(model, self.endpoint_family)

    def check(self, job: Job) -> None:
        super().check(job)
        family = self.family(job.model)
        label = f"Seedance {family.name}"
        if job.images and not family.takes_images:
            raise Unsupported(f"{label} is text-to-video only: it takes no image input")
        references = sum(image.role == "reference_image" for image in job.images)
        if references > family.max_reference_images:
            if family.max_reference_images == 0:
                raise Unsupported(f"{label} does not support reference images")
            raise Unsupported(
                f"{label} takes at most {family.max_reference_images} reference images"
            )
        kinds = {f"{m.kind}_url" for m in job.media} | _metadata_kinds(job.metadata)
        for kind in sorted(kinds & {"video_url", "audio_url"}):
            if not family.takes_media:
                noun = kind.removesuffix("_url")
                raise Unsupported(f"{label} does not support a reference {noun} (2.0 models do)")

    # --- create ---------------------------------------------------------------------------

    async def submit(self, job: Job) -> Submitted:
        family = self.family(job.model)
        return await self._create(create_body(job, family, return_last_frame=self.last_frame))

    async def remix(self, source: TaskRef, job: Job) -> Submitted:
        """A new task whose reference video is the source's result (2.0 models only)."""
        family = self.family(job.model)
        if not family.takes_media:
            raise Unsupported(
                f"Seedance {family.name} cannot remix: only 2.0 models take a reference video"
            )
        url = source.state.get("video_url")
        if not isinstance(url, str) or not url:
            raise Rejected("the source video has no upstream URL to reference", param="video_id")
        expires = source.state.get("expires_at")
        if isinstance(expires, int | float) and now() >= expires:
            raise Rejected(
                "the source video's upstream URL expired (24 h after it was made), so it cannot "
                "be sent as a reference video",
                param="video_id",
            )
        plain = replace(job, images=(), media=())
        reference = Media(kind="video", url=url, role="reference_video")
        body = create_body(plain, family, return_last_frame=self.last_frame, media=(reference,))
        return await self._create(body)

    async def _create(self, req: CreateBody) -> Submitted:
        reply = await self.http.request(
            "POST", self.base_url + TASKS, headers=self._auth(), json=req.body
        )
        body = reply.json()
        if not 200 <= reply.status < 300 or native_error(body) is not None:
            raise self._error(reply, body, on_task=False)
        task_id = body.get("id") if isinstance(body, Mapping) else None
        if not isinstance(task_id, str) or not task_id:
            raise Unavailable(
                "the upstream answered without a task id",
                maybe_created=True,
                detail=f"HTTP {reply.status}: {reply.text()}",
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

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """The task can be queried for 7 days; a URL different from the stored one is fresh."""
        try:
            update = await self.poll(task)
        except TaskNotFound:
            return None
        source = _source(update.state, variant)
        key = RESULTS.get(variant, ("", ""))[0]
        if source is None or source.url == task.state.get(key):
            return None
        return source

    async def delete(self, task: TaskRef) -> None:
        """Best effort: a queued task is cancelled, a finished one's record is deleted; a
        running one is refused upstream (and the caller only logs that)."""
        reply = await self.http.request(
            "DELETE", self._task_url(task.upstream_id), headers=self._auth()
        )
        if 200 <= reply.status < 300 or reply.status == 404:
            return
        raise self._error(reply, reply.json(), on_task=True)

    # --- helpers ----------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.api_key}"}

    def _task_url(self, upstream_id: str) -> str:
        return f"{self.base_url}{TASKS}/{quote(upstream_id, safe='')}"

    @staticmethod
    def _error(reply: Reply, body: Any, *, on_task: bool) -> Exception:
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
