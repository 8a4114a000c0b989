"""What each Sora model takes (spec/providers/openai.md, "Request fields" and "Mapping").

Durations snap only for Sora models; another server's own models get the value as asked. Sizes
pass through as WxH (upstream decides what it accepts); a bare ratio carries no tier, so it takes
the default 720p size of its shape.
"""

from __future__ import annotations

from relay.domain import Size
from relay.providers.normalize import snap_ratio, snap_seconds

# Sora's own durations; 16 and 20 are newer than the docs most clients were written against.
SORA_SECONDS = (4, 8, 12, 16, 20)
RATIO_SIZES = {"9:16": "720x1280", "16:9": "1280x720"}


def pixel_size(size: Size) -> str:
    """WxH passes through (upstream decides what it accepts); a ratio becomes its 720p size."""
    if size.width and size.height:
        return f"{size.width}x{size.height}"
    return RATIO_SIZES[snap_ratio(size, tuple(RATIO_SIZES))]


def upstream_seconds(seconds: int, model: str) -> int:
    """Sora models snap to their durations; another server's own models get the value as asked."""
    if model.startswith("sora-"):
        return snap_seconds(seconds, SORA_SECONDS)
    return seconds
