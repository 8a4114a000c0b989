"""Google Gemini Omni Flash on the Gemini API, `provider = "gemini-omni"`
(spec/providers/gemini-omni.md): one Interactions API interaction per job, created in the
background (`POST /v1beta/interactions`) and polled (`GET /v1beta/interactions/{id}`). Omni
refuses Veo's predictLongRunning and generateContent, so the `veo` adapter cannot reach it.

The key travels only in `x-goog-api-key`, to the channel's host. A result comes as a Files API
URI (asked for) or inline base64 (still seen): for a URI the relay waits for the file to be
ACTIVE before calling the job completed, then streams `files/{id}:download?alt=media` with the
key (a redirect to storage is followed without it: Remote headers go to the first host only).
For inline base64 the task row keeps only a flag and content() reads the interaction again and
decodes it (providers/inline.py), so the copier stores it like any download; every read of an
interaction may hold such an answer, so it reads up to INLINE_REPLY_BYTES.

request.py and response.py translate, models.py knows the models; this class talks.
"""

from __future__ import annotations

import hashlib
import logging
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
    TaskError,
    Update,
    now,
    option,
    split_frames,
)
from relay.providers.errors import (
    AuthFailed,
    CancelRefused,
    TaskNotFound,
)
from relay.providers.gemini_omni import models
from relay.providers.gemini_omni.request import build
from relay.providers.gemini_omni.response import (
    FILE_TTL_S,
    classify,
    find_video,
    interaction_id,
    update,
)
from relay.providers.http import Reply, ReplyTooLarge
from relay.providers.inline import INLINE_REPLY_BYTES, result_of_answer, too_large
from relay.providers.normalize import from_rfc3339

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

FILE_PENDING = "file_pending"  # [completed_at, expires_at] of a done interaction
log = logging.getLogger("relay.providers.gemini_omni")

KEY_HEADER = "x-goog-api-key"
GEMINI_API = "https://generativelanguage.googleapis.com"
# a fetched image URL; base64 grows it by a third and a request stays near 20 MB
IMAGE_LIMIT = 12 * 1024 * 1024


@dataclass(frozen=True)
class GeminiOmniOptions:
    resolution: str = option(
        "720p",
        "the tier sent when a request gives only a ratio (never sent to the preview model)",
        choices=models.RESOLUTIONS,
    )
    fold_negative: bool = option(
        False, "append a negative_prompt to the prompt as 'Avoid: ...' (the API has no field)"
    )


class GeminiOmniProvider(Provider[GeminiOmniOptions]):
    name = "gemini-omni"
    credentials = ("api_key",)
    default_base_url = GEMINI_API
    features = frozenset({"image_input", "remix", "cancel"})
    variants = frozenset({"video"})  # no thumbnail
    Options = GeminiOmniOptions
    typical_run_s = 60.0  # "typical 25-90 s for 10 s at 720p"
    result_ttl_s = float(FILE_TTL_S)
    # a 400 on a poll of a running job has been a passing auth-layer error: not on the first
    poll_rules = PollRules(fail_after_errors=5)

    def __init__(self, channel: ChannelView[GeminiOmniOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        # the paths carry the version; a base_url copied with it would double it
        self.base_url = self.base_url.removesuffix("/v1beta")

    def accepts(self, model: str) -> Accepts:
        return models.accepts(model)

    def _headers(self) -> dict[str, str]:
        return {KEY_HEADER: self.channel.api_key or ""}

    @property
    def _key_id(self) -> str:
        """Which key made an interaction (its file and a remix need the same one)."""
        return hashlib.sha256((self.channel.api_key or "").encode()).hexdigest()[:12]

    # --- create -----------------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        first = split_frames(request.images).first
        image = None
        if first is not None:
            fetched = await self.image_bytes(first, IMAGE_LIMIT)
            assert fetched.data is not None and fetched.mime is not None
            image = (fetched.data, fetched.mime)
        return await self._create(request, model, image, None)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        """Omni's own conversational edit: a new interaction continuing the source's."""
        return await self._create(request, source.upstream_model, None, source.upstream_id)

    async def _create(
        self,
        request: VideoRequest,
        model: str,
        image: tuple[bytes, str] | None,
        previous: str | None,
    ) -> Submitted:
        opts = self.channel.options
        native = build(
            request,
            model,
            image,
            resolution=opts.resolution,
            fold_negative=opts.fold_negative,
            previous=previous,
        )
        if native.dropped:
            log.debug("gemini-omni has no field for %s; dropped", ", ".join(native.dropped))
        url = f"{self.base_url}/v1beta/interactions"
        reply = await self.http.request("POST", url, headers=self._headers(), json=native.body)
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise classify(
                reply.status,
                reply.headers,
                body,
                reply.text(),
                on_interaction=False,
                remix=previous is not None,
            )
        return Submitted(
            upstream_id=interaction_id(body, reply.text()),
            seconds=str(native.seconds),
            size=native.size,
            state={"key_id": self._key_id},
        )

    # --- poll -------------------------------------------------------------------------------

    async def poll(self, task: TaskRef) -> Update:
        pending = task.state.get(FILE_PENDING)
        file = task.state.get("video_file")
        if isinstance(pending, list) and len(pending) == 2 and isinstance(file, str):
            # the interaction is done and its answer kept: only the file is still processing
            done = Update(status="completed", completed_at=pending[0], expires_at=pending[1])
            return await self._file_ready(file, done)
        try:
            reply = await self._interaction(task)
        except ReplyTooLarge:
            # only an inline video makes an interaction this large
            error = TaskError("generation_failed", too_large(self.name))
            return Update(status="failed", error=error, completed_at=now())
        found = update(reply.json(), now=now(), base_url=self.base_url, raw=reply.text())
        if found.state.get("unparsed"):
            log.warning(
                "%s (gemini-omni): interaction %s completed with video tokens but no video the "
                "relay can read; the answer's shape may have changed",
                self.channel.name,
                task.id,
            )
        file = found.state.get("video_file")
        if found.status == "completed" and isinstance(file, str):
            return await self._file_ready(file, found)
        return found

    async def _file_ready(self, file: str, done: Update) -> Update:
        """Completed only once the delivered file is ACTIVE; a download before then fails."""
        url = f"{self.base_url}/v1beta/files/{quote(file, safe='')}"
        reply = await self.http.request("GET", url, headers=self._headers())
        body = reply.json()
        if not 200 <= reply.status < 300:
            raise classify(reply.status, reply.headers, body, reply.text(), on_interaction=True)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "FAILED":
            error = TaskError("generation_failed", "FAILED: the delivered video file failed")
            return Update(status="failed", error=error, completed_at=done.completed_at)
        if state != "ACTIVE":  # asked again at the relay's poll interval (5 s by default)
            waiting = [done.completed_at, done.expires_at]
            return Update(status="in_progress", state={**done.state, FILE_PENDING: waiting})
        expires = from_rfc3339(body.get("expirationTime")) if isinstance(body, dict) else None
        return Update(
            status="completed",
            progress=100,
            completed_at=done.completed_at,
            expires_at=expires or done.expires_at,
            state=done.state,
        )

    async def _interaction(self, task: TaskRef) -> Reply:
        url = f"{self.base_url}/v1beta/interactions/{quote(task.upstream_id, safe='')}"
        reply = await self.http.request(
            "GET", url, headers=self._headers(), limit=INLINE_REPLY_BYTES
        )
        if not 200 <= reply.status < 300:
            raise classify(
                reply.status, reply.headers, reply.json(), reply.text(), on_interaction=True
            )
        return reply

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        if task.state.get("key_id") not in (None, self._key_id):
            log.info("task %s was made with another key than the channel's now", task.id)
        file = task.state.get("video_file")
        if isinstance(file, str) and file:
            return self._remote(file)

        # inline, or finished before its result was kept: the interaction holds the answer
        def inline(body: Any) -> tuple[str, str] | None:
            video = find_video(body) if isinstance(body, dict) else None
            return None if video is None or video.data is None else (video.data, video.mime)

        return await result_of_answer(
            provider=self.name,
            what="interaction",
            read=lambda: self._interaction(task),
            parse=lambda r: update(r.json(), now=now(), base_url=self.base_url, raw=r.text()),
            kept="video_file",
            remote=self._remote,
            inline=inline,
        )

    def _remote(self, file: str) -> Remote:
        """Built from the file id on the channel's own host: the key goes nowhere else."""
        url = f"{self.base_url}/v1beta/files/{quote(file, safe='')}:download?alt=media"
        return Remote(url, headers=self._headers(), content_type="video/mp4", trusted=True)

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """None, without a second poll: a finished interaction names the same file forever,
        and a 404 or 410 after its 48 hours is final."""
        return None

    async def cancel(self, task: TaskRef) -> None:
        """`POST .../cancel` with an empty body. Google takes it only while a background
        interaction runs; its 400 for any other state becomes a refusal, and the relay then
        polls once and keeps whatever the job ended as."""
        url = f"{self.base_url}/v1beta/interactions/{quote(task.upstream_id, safe='')}/cancel"
        reply = await self.http.request("POST", url, headers=self._headers(), json={})
        if 200 <= reply.status < 300:
            return
        error = classify(
            reply.status, reply.headers, reply.json(), reply.text(), on_interaction=True
        )
        # a 400 here that is not a gone id or a bad key is the refusal (a poll would call it a
        # passing hiccup)
        if reply.status == 400 and not isinstance(error, (TaskNotFound, AuthFailed)):
            raise CancelRefused(f"gemini-omni would not cancel the interaction ({error.message})")
        raise error

    async def delete(self, task: TaskRef) -> None:
        """Delete the stored interaction (best effort; one already gone is fine)."""
        url = f"{self.base_url}/v1beta/interactions/{quote(task.upstream_id, safe='')}"
        reply = await self.http.request("DELETE", url, headers=self._headers())
        if 200 <= reply.status < 300:
            return
        error = classify(
            reply.status, reply.headers, reply.json(), reply.text(), on_interaction=True
        )
        if not isinstance(error, TaskNotFound):
            raise error
