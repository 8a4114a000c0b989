"""The Jimeng adapter: two signed actions on the Volcengine visual API (providers/jimeng.md).

Submit and get-result are both `POST /?Action=...&Version=2022-08-31` with a JSON body, signed
with the channel's AccessKey/SecretKey (sign.py). The body is serialized once and those exact
bytes are both hashed and sent. get-result must repeat the submit's req_key, so the key lives in
the task state. The result URL is signed for one hour; the task record lives 12 h, and asking
again within that time gives a URL that works again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from relay.providers.base import (
    ContentSource,
    Image,
    Job,
    NotReady,
    Option,
    Provider,
    Remote,
    Submitted,
    TaskNotFound,
    TaskRef,
    Update,
    now,
)
from relay.providers.jimeng.answers import (
    RECORD_TTL_S,
    RESULT_TTL_S,
    parse_result,
    parse_submit,
)
from relay.providers.jimeng.request import (
    MAX_IMAGE_BYTES,
    TIERS,
    build_submit,
    choose_key,
    frames,
    image_count,
    wanted_tier,
)
from relay.providers.jimeng.sign import canonical_host, canonical_query, sign

if TYPE_CHECKING:
    from relay.config import ChannelConfig
    from relay.upstream import ChannelHttp, Reply

VERSION = "2022-08-31"
SUBMIT = "CVSync2AsyncSubmitTask"
GET_RESULT = "CVSync2AsyncGetResult"
URL_MARGIN_S = 60.0  # a URL this close to its end may die during the download


class JimengProvider(Provider):
    name = "jimeng"
    credentials = ("access_key", "secret_key")
    default_base_url = "https://visual.volcengineapi.com"
    features = frozenset({"image_input", "last_frame"})
    variants = frozenset({"video"})
    options: ClassVar[dict[str, Option]] = {
        "default_tier": Option(
            str,
            "720p",
            "the tier of a family with both 720P and 1080P keys when the size is a bare ratio",
            choices=TIERS,
        ),
        "req_json": Option(
            str,
            "",
            "sent as req_json on every get-result (a JSON string: implicit-watermark settings)",
        ),
    }
    typical_run_s = 90.0
    result_ttl_s = RESULT_TTL_S

    def __init__(self, channel: ChannelConfig, http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.default_tier = str(channel.options.get("default_tier", "720p"))
        self.req_json = str(channel.options.get("req_json", ""))
        self.clock: Callable[[], float] = now

    def check(self, job: Job) -> None:
        super().check(job)
        choose_key(job.model, image_count(job), wanted_tier(job.size, self.default_tier))

    # --- the two actions --------------------------------------------------------------------

    async def submit(self, job: Job) -> Submitted:
        native = build_submit(job, await self._images(job), self.default_tier)
        task_id = parse_submit(await self._call(SUBMIT, native.body))
        return Submitted(
            upstream_id=task_id,
            seconds=native.seconds,
            size=native.size,
            state={"req_key": native.req_key},
        )

    async def poll(self, task: TaskRef) -> Update:
        body: dict[str, Any] = {"req_key": self._req_key(task), "task_id": task.upstream_id}
        if self.req_json:
            body["req_json"] = self.req_json
        errors = task.state.get("server_errors")
        reply = await self._call(GET_RESULT, body)
        count = errors if isinstance(errors, int) else 0
        return parse_result(reply, errors=count, now=self.clock())

    async def _images(self, job: Job) -> list[Image]:
        """The frames in one form: Jimeng refuses URLs and base64 in the same request, so when
        the client mixed them the URLs are fetched (through the private-network guard)."""
        chosen = frames(job.images)
        if len({image.url is None for image in chosen}) < 2:
            return chosen
        resolved = []
        for image in chosen:
            resolved.append(await self.image_bytes(image, MAX_IMAGE_BYTES))
        return resolved

    async def _call(self, action: str, body: Mapping[str, Any]) -> Reply:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        parts = urlsplit(self.base_url)
        path = parts.path.rstrip("/") + "/"
        query = (("Action", action), ("Version", VERSION))
        signature = sign(
            method="POST",
            path=path,
            query=query,
            headers={"Content-Type": "application/json", "Host": canonical_host(parts.netloc)},
            body=payload,
            access_key=self.channel.access_key or "",
            secret_key=self.channel.secret_key or "",
            when=datetime.fromtimestamp(self.clock(), UTC),
        )
        url = f"{parts.scheme}://{parts.netloc}{path}?{canonical_query(query)}"
        # the signed bytes themselves: a second serialization could differ and break the hash
        return await self.http.request("POST", url, headers=signature.headers, data=payload)

    def _req_key(self, task: TaskRef) -> str:
        key = task.state.get("req_key")
        return key if isinstance(key, str) and key else task.upstream_model

    # --- results ----------------------------------------------------------------------------

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        """The stored URL while it lives; after its hour, a new one from get-result."""
        self.variant_check(variant)
        url, done_at = task.state.get("video_url"), task.state.get("done_at")
        seen = float(done_at) if isinstance(done_at, int | float) else None
        if isinstance(url, str) and url and (seen is None or self.clock() < seen + _url_life()):
            return _remote(url)
        if seen is not None and self.clock() >= seen + RECORD_TTL_S:
            raise TaskNotFound("the Jimeng task record is past its 12 h lifetime")
        update = await self.poll(task)
        fresh = update.state.get("video_url")
        if update.status == "completed" and isinstance(fresh, str):
            return _remote(fresh)
        if update.error is not None and update.error.code == "task_expired":
            raise TaskNotFound(update.error.message)
        raise NotReady("the Jimeng task has no video yet")

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        """Ask get-result again (the record lives 12 h); only a different URL is worth a retry."""
        self.variant_check(variant)
        try:
            update = await self.poll(task)
        except TaskNotFound:
            return None
        fresh = update.state.get("video_url")
        if update.status != "completed" or not isinstance(fresh, str):
            return None
        return None if fresh == task.state.get("video_url") else _remote(fresh)


def _url_life() -> float:
    return RESULT_TTL_S - URL_MARGIN_S


def _remote(url: str) -> Remote:
    # a signed CDN URL: fetched exactly as received, with no credentials
    return Remote(url, content_type="video/mp4")
