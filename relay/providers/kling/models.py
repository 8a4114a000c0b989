"""Kling's models: their durations, sound, modes and output tiers (spec/providers/kling.md,
"What each model supports" and "Output tier for each model and mode").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.normalize import tier

MAX_PROMPT = 2500
RATIOS = ("16:9", "9:16", "1:1")
MODES = ("std", "pro")

IMAGE_ONLY_MODELS = frozenset({"kling-v1-5", "kling-v2-1"})
# (std tier, pro tier); None where the model has no such mode. The v2-6 and v3 rows are
# unconfirmed, and a model the table does not know yet is assumed to look like them.
_TIERS: Mapping[str, tuple[str | None, str | None]] = {
    "kling-v1": ("720p", "720p"),
    "kling-v1-5": ("720p", "1080p"),
    "kling-v1-6": ("720p", "1080p"),
    "kling-v2-1": ("720p", "1080p"),
    "kling-v2-master": ("720p", None),
    "kling-v2-1-master": (None, "1080p"),
    "kling-v2-5-turbo": (None, "1080p"),
    "kling-v2-6": ("720p", "1080p"),
    "kling-v3": ("720p", "1080p"),
}
_DEFAULT_TIERS = ("720p", "1080p")
_PIXELS = {
    "720p": {"16:9": "1280x720", "9:16": "720x1280", "1:1": "720x720"},
    "1080p": {"16:9": "1920x1080", "9:16": "1080x1920", "1:1": "1080x1080"},
}
_VERSION = re.compile(r"^kling-v(\d+)(?:-(\d+))?(?:-|$)")


def version(model: str) -> tuple[int, int]:
    """(2, 6) for kling-v2-6, (3, 0) for kling-v3; (0, 0) for a name of another shape."""
    match = _VERSION.match(model)
    if match is None:
        return (0, 0)
    return int(match.group(1)), int(match.group(2) or 0)


def durations(model: str) -> range | tuple[int, ...]:
    return range(3, 16) if version(model) >= (3, 0) else (5, 10)


def accepts(model: str) -> Accepts:
    """Its durations, and each ratio at each tier one of its modes makes."""
    levels = [level for level in _TIERS.get(model, _DEFAULT_TIERS) if level is not None]
    sizes = dict.fromkeys(_PIXELS[level][ratio] for level in levels for ratio in RATIOS)
    return tuple(durations(model)), tuple(sizes)


def has_sound(model: str) -> bool:
    return version(model) >= (2, 6)


def choose_mode(model: str, size: Size, default: str) -> str:
    """pro when the client asked for 1080p and the model has it; the channel's mode otherwise.

    A model with a single mode always gets that mode, whatever the channel's default.
    """
    std, pro = _TIERS.get(model, _DEFAULT_TIERS)
    if tier(size) in ("1080p", "4k") and pro == "1080p":
        return "pro"
    if default == "pro" and pro is None:
        return "std"
    if default == "std" and std is None:
        return "pro"
    return default


def pixel_size(model: str, mode: str, ratio: str) -> str:
    std, pro = _TIERS.get(model, _DEFAULT_TIERS)
    level = (pro if mode == "pro" else std) or std or pro or "720p"
    return _PIXELS[level][ratio]
