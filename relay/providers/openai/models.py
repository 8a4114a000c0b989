"""What each Sora model takes (spec/providers/openai.md, "Request fields" and "Mapping").

Durations snap only for Sora models; another server's own models get the value as asked. Sizes
pass through as WxH (upstream decides what it accepts); a bare ratio carries no tier, so it takes
the default 720p size of its shape.
"""

from __future__ import annotations

from relay.domain import Size
from relay.providers.base import DEFAULT_SECONDS, DEFAULT_SIZES, Accepts
from relay.providers.normalize import snap_ratio, snap_seconds

# Sora's own durations; 16 and 20 are newer than the docs most clients were written against.
SORA_SECONDS = (4, 8, 12, 16, 20)
RATIO_SIZES = {"9:16": "720x1280", "16:9": "1280x720"}
PRO_SIZES = (*DEFAULT_SIZES, "1024x1792", "1792x1024", "1080x1920", "1920x1080")  # sora-2-pro


def pixel_size(size: Size) -> str:
    """WxH passes through (upstream decides what it accepts); a ratio becomes its 720p size."""
    if size.width and size.height:
        return f"{size.width}x{size.height}"
    return RATIO_SIZES[snap_ratio(size, tuple(RATIO_SIZES))]


def accepts(model: str) -> Accepts:
    """Sora's durations and sizes (more on sora-2-pro); another server's own models take what
    they are asked, so a form offers the API's basic values."""
    if not model.startswith("sora-"):
        return DEFAULT_SECONDS, DEFAULT_SIZES
    return SORA_SECONDS, PRO_SIZES if model.startswith("sora-2-pro") else DEFAULT_SIZES


def upstream_seconds(seconds: int, model: str) -> int:
    """Sora models snap to their durations; another server's own models get the value as asked."""
    if model.startswith("sora-"):
        return snap_seconds(seconds, SORA_SECONDS)
    return seconds
