"""The built-in demo provider: no network, no account (spec/providers/demo.md).

A task runs for `finish_after_s` seconds, reckoned from its submit time (kept in the task's state,
so a restart does not reset it); the poller drives it like any upstream. A prompt containing
`#fail` ends as failed with `moderation_blocked`. The content is three small files shipped in the
package: a 4-second H.264 MP4, a WebP still and a JPEG grid of stills.
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

if TYPE_CHECKING:
    from relay.providers.http import ChannelHttp

ASSETS = Path(__file__).parent / "assets"
FAIL_MARKER = "#fail"
DEFAULT_SHORT_SIDE = 720
# It takes any duration and size; a form offers a short clip to a long one, in common sizes.
OFFERED_SECONDS = (4, 8, 12, 16, 20)
OFFERED_SIZES = ("720x1280", "1280x720", "1080x1920", "1920x1080", "720x720", "1080x1080")


@dataclass(frozen=True)
class DemoOptions:
    finish_after_s: float = option(
        5, "seconds a demo task runs before it completes", kind=(int, float), minimum=0
    )


class DemoProvider(Provider[DemoOptions]):
    name = "demo"
    credentials = ()
    needs_network = False
    features = FEATURES
    variants = frozenset(VARIANTS)
    Options = DemoOptions
    typical_run_s = 5.0

    def __init__(self, channel: ChannelView[DemoOptions], http: ChannelHttp | None) -> None:
        super().__init__(channel, http)
        self.typical_run_s = float(channel.options.finish_after_s)

    def accepts(self, model: str) -> Accepts:
        return OFFERED_SECONDS, OFFERED_SIZES

    async def submit(self, request: VideoRequest, model: str) -> Submitted:
        return self._start(request)

    async def remix(self, source: TaskRef, request: VideoRequest, model: str) -> Submitted:
        return self._start(request, source=source.upstream_id)

    def _start(self, request: VideoRequest, source: str | None = None) -> Submitted:
        state: dict[str, Any] = {
            "started_at": now(),
            "finish_after_s": float(self.channel.options.finish_after_s),
            "fail": FAIL_MARKER in request.prompt,
        }
        if source:
            state["remix_of"] = source
        return Submitted(
            upstream_id="demo_" + secrets.token_hex(12),
            seconds=str(request.duration),
            size=pixel_size(request.dimensions),
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

    async def content(self, task: TaskRef, variant: str) -> ContentSource:
        self.variant_check(variant)
        content_type, ext = VARIANTS[variant]
        return LocalFile(ASSETS / f"{variant}.{ext}", content_type)


def pixel_size(size: Size) -> str:
    """WxH as requested; a bare ratio becomes the 720p size of that shape (16:9 -> 1280x720)."""
    if size.width and size.height:
        return f"{size.width}x{size.height}"
    assert size.ratio is not None
    a, b = size.ratio
    if a >= b:
        return f"{_even(DEFAULT_SHORT_SIDE * a / b)}x{DEFAULT_SHORT_SIDE}"
    return f"{DEFAULT_SHORT_SIDE}x{_even(DEFAULT_SHORT_SIDE * b / a)}"


def _even(value: float) -> int:
    return int(round(value / 2) * 2)
