"""A test-only provider whose content lives on a fake CDN: it exercises the relay's remote
streaming path (content.py) without any real provider's protocol in the way. With
`options.inline` its video is answered inline instead (an InlineBytes of tests.fakes.base.VIDEO),
as Veo's encodedVideo and Gemini Omni's data are, and `gone` makes the upstream forget it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import ClassVar

from relay.domain import ContentSource, InlineBytes, Remote, TaskRef, VideoRequest
from relay.providers.base import Provider, Submitted, Update, option
from relay.providers.errors import TaskNotFound
from tests.fakes.base import VIDEO


@dataclass(frozen=True)
class ScriptedOptions:
    cdn_url: str = option("", "where the finished video is")
    thumbnail_url: str = option("", "where the thumbnail is (empty: no thumbnail)")
    refresh_url: str = option("", "a fresh URL for an expired one (empty: none)")
    inline: bool = option(False, "the video comes inline (decoded bytes), not from cdn_url")


class ScriptedProvider(Provider[ScriptedOptions]):
    name = "scripted"
    credentials = ()
    needs_network = False  # its content goes through the relay's own HTTP, like every provider's
    Options = ScriptedOptions
    refreshes: ClassVar[int] = 0
    inline_reads: ClassVar[int] = 0  # how often the inline answer was read again
    gone: ClassVar[bool] = False  # the upstream forgot every task: content() is TaskNotFound
    variants = frozenset({"video", "thumbnail"})
    typical_run_s = 1.0

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        return Submitted(
            upstream_id="s_" + secrets.token_hex(4),
            seconds=str(request.duration),
            size=str(request.dimensions),
        )

    async def poll(self, task: TaskRef) -> Update:
        return Update(status="completed")

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        if variant == "thumbnail":
            return Remote(self.channel.options.thumbnail_url, content_type="image/webp")
        if self.channel.options.inline:
            if type(self).gone:
                raise TaskNotFound("the upstream no longer knows this task")
            type(self).inline_reads += 1
            return InlineBytes(VIDEO, "video/mp4")
        return Remote(self.channel.options.cdn_url, headers={"Authorization": "Bearer up-key"})

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        type(self).refreshes += 1
        url = self.channel.options.refresh_url
        return Remote(url) if url else None
