"""A test-only provider whose content lives on a fake CDN: it exercises the relay's remote
streaming path (content.py) without any real provider's protocol in the way."""

from __future__ import annotations

import secrets
from typing import ClassVar

from relay.providers.base import (
    ContentSource,
    Job,
    Option,
    Provider,
    Remote,
    Submitted,
    TaskRef,
    Update,
)


class ScriptedProvider(Provider):
    name = "scripted"
    credentials = ()
    needs_network = False  # its content goes through the relay's own HTTP, like every provider's
    options: ClassVar[dict[str, Option]] = {
        "cdn_url": Option(str, "", "where the finished video is"),
        "thumbnail_url": Option(str, "", "where the thumbnail is (empty: no thumbnail)"),
        "refresh_url": Option(str, "", "a fresh URL for an expired one (empty: none)"),
    }
    refreshes: ClassVar[int] = 0
    variants = frozenset({"video", "thumbnail"})
    typical_run_s = 1.0

    async def submit(self, job: Job) -> Submitted:
        return Submitted(
            upstream_id="s_" + secrets.token_hex(4), seconds=str(job.seconds), size=str(job.size)
        )

    async def poll(self, task: TaskRef) -> Update:
        return Update(status="completed")

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        if variant == "thumbnail":
            return Remote(self.channel.options["thumbnail_url"], content_type="image/webp")
        return Remote(self.channel.options["cdn_url"], headers={"Authorization": "Bearer up-key"})

    async def refresh_content(self, task: TaskRef, variant: str) -> ContentSource | None:
        type(self).refreshes += 1
        url = self.channel.options["refresh_url"]
        return Remote(url) if url else None
