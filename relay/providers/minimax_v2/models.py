"""MiniMax H3 on the V2 API (spec/providers/minimax-v2.md): the two models, their tiers, the
ratios and durations they take, and the nominal pixel size of a tier in a ratio.

A model is known by its name: `MiniMax-H3-Max` (third-party reports: 480P/768P, frames only)
and anything else gets `MiniMax-H3`'s limits, the only model in the official reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.normalize import snap_ratio

RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
RESOLUTIONS = ("480P", "768P", "2K")
MIN_SECONDS, MAX_SECONDS = 4, 15
MAX_PROMPT = 7000
# reference mode (page, "Rules")
MAX_REFERENCE_IMAGES = 9
MAX_REFERENCE_MEDIA = 3  # videos, and separately audio clips
MAX_MEDIA_ITEMS = 12
# byte limits per input, and for the whole create body (MiniMax answers 413 past it)
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MAX_VIDEO_BYTES = 50 * 1024 * 1024
MAX_AUDIO_BYTES = 15 * 1024 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

# the short side of each tier; 2K is 2560x1440 at 16:9
_SHORT = {"480P": 480, "768P": 768, "2K": 1440}
_GRID = 32  # the open-weight pipeline's note: sides are multiples of 32 (1344 at 768P 16:9)


@dataclass(frozen=True)
class Model:
    name: str
    resolutions: tuple[str, ...]  # lowest first
    split: int  # the short side from which the higher tier is chosen
    references: bool  # reference_image / reference_video / reference_audio items


H3 = Model("MiniMax-H3", ("768P", "2K"), split=900, references=True)
H3_MAX = Model("MiniMax-H3-Max", ("480P", "768P"), split=600, references=False)


def model_of(name: str) -> Model:
    return H3_MAX if name.lower().startswith("minimax-h3-max") else H3


def resolution(model: Model, size: Size, default: str) -> str:
    """The tier for a size: its short side against the model's split; a bare ratio takes the
    channel's default, brought onto the model's tiers (2K on H3-Max is its 768P)."""
    short = size.short_side
    if short is None:
        if default in model.resolutions:
            return default
        return model.resolutions[0] if default == "480P" else model.resolutions[-1]
    low, high = model.resolutions
    return high if short >= model.split else low


def ratio(size: Size) -> str:
    return snap_ratio(size, RATIOS)


def pixel_size(tier: str, ratio_: str) -> str:
    """Nominal WxH: the tier's short side, the long side from the ratio rounded down to the
    grid (768P 16:9 is 1344x768, 2K 16:9 2560x1440)."""
    short = _SHORT[tier]
    a, _, b = ratio_.partition(":")
    w, h = int(a), int(b)
    long = short * max(w, h) // min(w, h) // _GRID * _GRID
    return f"{long}x{short}" if w >= h else f"{short}x{long}"


def accepts(name: str) -> Accepts:
    """Every whole second from 4 to 15, and each ratio at each of the model's tiers."""
    model = model_of(name)
    sizes = dict.fromkeys(pixel_size(t, r) for t in model.resolutions for r in RATIOS)
    return tuple(range(MIN_SECONDS, MAX_SECONDS + 1)), tuple(sizes)
