"""The built-in demo provider: no network, no account (spec/providers/demo.md).

A task runs for `finish_after_s` seconds, reckoned from its submit time (kept in the task's state,
so a restart does not reset it); the poller drives it like any upstream. A prompt containing
`#fail` ends as failed with `moderation_blocked`. Cancel works like a real upstream's: a task
still running stops, one whose time is up is refused as finished (so the relay's "it finished just
now" path can be tried with no account).

The content is one of two real clips shipped in the package, each a 4-second H.264 MP4 with a
WebP still and a JPEG grid of stills: landscape 1280x720 and portrait 720x1280. The request's
shape picks the clip (wider than tall: landscape), and the video object says what the clip
really is: its size and its 4 seconds, whatever was asked. An honest demo beats one that reports
8 seconds at 1920x1080 and serves something else; generating clips to order would need a video
encoder the relay does not carry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay.domain import (
    FEATURES,
    VARIANTS,
    ContentSource,
    LocalFile,
    Size,
    TaskRef,
    VideoRequest,
)
from relay.providers.base import (
    Accepts,
    ChannelView,
    Provider,
    Submitted,
    TaskError,
    Update,
    now,
    option,
)
from relay.providers.errors import CancelRefused

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

ASSETS = Path(__file__).parent / "assets"
FAIL_MARKER = "#fail"


@dataclass(frozen=True)
class Clip:
    size: str  # WxH, as the files really are
    seconds: str
    files: dict[str, str]  # variant -> file name in ASSETS


CLIPS = {
    "portrait": Clip(
        "720x1280",
        "4",
        {"video": "video.mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"},
    ),
    "landscape": Clip(
        "1280x720",
        "4",
        {
            "video": "video-landscape.mp4",
            "thumbnail": "thumbnail-landscape.webp",
            "spritesheet": "spritesheet-landscape.jpg",
        },
    ),
}


def clip_for(size: Size) -> str:
    """The clip whose shape is nearest: wider than tall is landscape."""
    return "landscape" if size.aspect > 1 else "portrait"


@dataclass(frozen=True)
class DemoOptions:
    finish_after_s: float = option(
        5, "seconds a demo task runs before it completes", kind=(int, float), minimum=0
    )


class DemoProvider(Provider[DemoOptions]):
    name = "demo"
    credentials = ()
    needs_network = False
    features = FEATURES | {"cancel"}
    variants = frozenset(VARIANTS)
    Options = DemoOptions
    typical_run_s = 5.0

    def __init__(self, channel: ChannelView[DemoOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.typical_run_s = float(channel.options.finish_after_s)

    def accepts(self, model: str) -> Accepts:
        """What the clips really are: any request gets one of them."""
        seconds = sorted({int(clip.seconds) for clip in CLIPS.values()})
        return tuple(seconds), tuple(clip.size for clip in CLIPS.values())

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        return self._start(request)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        return self._start(request, source=source.upstream_id)

    def _start(self, request: VideoRequest, source: str | None = None) -> Submitted:
        shape = clip_for(request.dimensions)
        state: dict[str, Any] = {
            "started_at": now(),
            "finish_after_s": float(self.channel.options.finish_after_s),
            "fail": FAIL_MARKER in request.prompt,
            "clip": shape,
        }
        if source:
            state["remix_of"] = source
        clip = CLIPS[shape]
        return Submitted(
            upstream_id="demo_" + secrets.token_hex(12),
            seconds=clip.seconds,
            size=clip.size,
            state=state,
        )

    async def poll(self, task: TaskRef) -> Update:
        duration = float(task.state.get("finish_after_s", 5))
        elapsed = now() - float(task.state.get("started_at", task.submitted_at))
        if elapsed < duration:
            return Update(
                status="in_progress", progress=max(1, min(99, int(100 * elapsed / duration)))
            )
        if task.state.get("fail"):
            return Update(
                status="failed",
                error=TaskError(
                    "moderation_blocked",
                    "demo: the prompt contains #fail, so the demo provider blocked it",
                ),
            )
        return Update(status="completed", progress=100)

    async def cancel(self, task: TaskRef) -> None:
        duration = float(task.state.get("finish_after_s", 5))
        if now() - float(task.state.get("started_at", task.submitted_at)) >= duration:
            raise CancelRefused("demo: the task has already finished")

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        # tasks made before there were two clips have no "clip": the portrait set is the old one
        clip = CLIPS.get(str(task.state.get("clip", "portrait")), CLIPS["portrait"])
        return LocalFile(ASSETS / clip.files[variant], VARIANTS[variant][0])
