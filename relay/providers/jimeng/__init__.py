"""Jimeng (ByteDance) video models on the Volcengine visual API (spec/providers/jimeng.md).

Submit and get-result are both `POST /?Action=...&Version=2022-08-31` with a JSON body, signed
with the channel's AccessKey/SecretKey (auth.py). The body is serialized once and those exact
bytes are both hashed and sent. get-result must repeat the submit's req_key, so the key lives in
the task state. The result URL is signed for one hour; the task record lives 12 h, and asking
again within that time gives a URL that works again.

auth.py      Volcengine HMAC-SHA256 V4 request signing (standard library only)
models.py    req_keys, families, ratios, frames and output sizes
request.py   the submit body (pure)
response.py  the gateway and business envelopes, task states, error classes (pure)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relay.domain import ContentSource, Image, Remote, TaskRef, VideoRequest
from relay.providers.base import (
    Accepts,
    ChannelView,
    PollRules,
    Provider,
    Submitted,
    Update,
    now,
    option,
)
from relay.providers.errors import NotReady, TaskNotFound, Unsupported
from relay.providers.jimeng.auth import canonical_host, canonical_query, sign
from relay.providers.jimeng.models import MAX_IMAGE_BYTES, TIERS, accepts
from relay.providers.jimeng.request import build_submit, frames, req_key_for
from relay.providers.jimeng.response import (
    RECORD_TTL_S,
    RESULT_TTL_S,
    SERVER_ERRORS_BEFORE_FAIL,
    parse_result,
    parse_submit,
)

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp, Reply

VERSION = "2022-08-31"
SUBMIT = "CVSync2AsyncSubmitTask"
GET_RESULT = "CVSync2AsyncGetResult"
URL_MARGIN_S = 60.0  # a URL this close to its end may die during the download


@dataclass(frozen=True)
class JimengOptions:
    default_tier: str = option(
        "720p",
        "the tier of a family with both 720P and 1080P keys when the size is a bare ratio",
        choices=TIERS,
    )
    req_json: str = option(
        "", "sent as req_json on every get-result (a JSON string: implicit-watermark settings)"
    )


class JimengProvider(Provider[JimengOptions]):
    name = "jimeng"
    credentials = ("access_key", "secret_key")
    default_base_url = "https://visual.volcengineapi.com"
    features = frozenset({"image_input", "last_frame"})
    variants = frozenset({"video"})
    Options = JimengOptions
    typical_run_s = 90.0
    result_ttl_s = RESULT_TTL_S
    # 50500/50501 on get-result say nothing about the task: five in a row fail it
    poll_rules = PollRules(fail_after_errors=SERVER_ERRORS_BEFORE_FAIL)

    def __init__(self, channel: ChannelView[JimengOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.clock: Callable[[], float] = now

    def accepts(self, model: str) -> Accepts:
        return accepts(model)

    def refusal(self, request: VideoRequest, model: str) -> str | None:
        why = super().refusal(request, model)
        if why:
            return why
        try:
            req_key_for(request, model, self.channel.options.default_tier)
        except Unsupported as exc:
            return exc.message
        return None

    # --- the two actions --------------------------------------------------------------------

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        images = await self._images(request)
        native = build_submit(request, model, images, self.channel.options.default_tier)
        task_id = parse_submit(await self._call(SUBMIT, native.body))
        return Submitted(
            upstream_id=task_id,
            seconds=native.seconds,
            size=native.size,
            state={"req_key": native.req_key},
        )

    async def poll(self, task: TaskRef) -> Update:
        body: dict[str, Any] = {"req_key": self._req_key(task), "task_id": task.upstream_id}
        if self.channel.options.req_json:
            body["req_json"] = self.channel.options.req_json
        update = parse_result(await self._call(GET_RESULT, body), now=self.clock())
        if update.state.get("video_url") == task.state.get("video_url") and update.state:
            # the URL seen before: its hour runs from when it was first seen
            return replace(update, state={})
        return update

    async def _images(self, request: VideoRequest) -> list[Image]:
        """The frames in one form: Jimeng refuses URLs and base64 in the same request, so when
        the client mixed them the URLs are fetched (through the private-network guard)."""
        chosen = frames(request.images)
        if len({image.url is None for image in chosen}) < 2:
            return chosen
        return [await self.image_bytes(image, MAX_IMAGE_BYTES) for image in chosen]

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
        fresh = update.state.get("video_url", url)
        if update.status == "completed" and isinstance(fresh, str) and fresh:
            return _remote(fresh)
        raise NotReady("the Jimeng task has no video yet")


def _url_life() -> float:
    return RESULT_TTL_S - URL_MARGIN_S


def _remote(url: str) -> Remote:
    # a signed CDN URL: fetched exactly as received, with no credentials
    return Remote(url, content_type="video/mp4")


__all__ = ["JimengOptions", "JimengProvider"]
