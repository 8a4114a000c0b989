"""xAI's Grok Imagine models (spec/providers/xai.md): what each takes, and the nominal pixel size
of a resolution tier in an aspect ratio.

The model list itself lives in the config; a model is known here by its name's prefix, and a name
this module does not know gets `grok-imagine-video`'s limits (the narrowest that still edits).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.providers.base import Accepts
from relay.providers.normalize import nominal_size

RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
RESOLUTIONS = ("480p", "720p", "1080p")
MIN_SECONDS, MAX_SECONDS = 1, 15
MAX_REFERENCE_SECONDS = 10
DEFAULT_SECONDS = 8  # the page's choice when nothing is given; xAI's own default is disputed
MAX_PROMPT = 4096
MAX_REFERENCE_IMAGES = 7
MAX_EDIT_SOURCE_S = 8.7  # the longest clip /v1/videos/edits takes
REFERENCE_RESOLUTION_CAP = "720p"

# a few sizes do not follow "short side x ratio, rounded to even": xAI's own 480p 16:9 is 848 wide
_NAMED_SIZES = {("16:9", "480p"): "848x480", ("9:16", "480p"): "480x848"}


@dataclass(frozen=True)
class Model:
    name: str
    text: bool  # takes a prompt with no image
    references: bool  # reference_images / reference_audios
    edits: bool  # /v1/videos/edits (the relay's remix)
    resolutions: tuple[str, ...]


BASE = Model("grok-imagine-video", text=True, references=False, edits=True,
             resolutions=("480p", "720p"))  # fmt: skip
# Text-only on 1.5 is unconfirmed (an early client refused it); it is sent, and xAI's 400 is
# the client's answer if it still refuses.
V15 = Model("grok-imagine-video-1.5", text=True, references=True, edits=False,
            resolutions=RESOLUTIONS)  # fmt: skip
PREVIEW = Model("grok-imagine-video-1.5-preview", text=False, references=False, edits=False,
                resolutions=("480p", "720p"))  # fmt: skip


def model_of(name: str) -> Model:
    lowered = name.lower()
    if lowered.startswith(PREVIEW.name):
        return PREVIEW
    if lowered.startswith(V15.name):
        return V15
    return BASE


def resolution(model: Model, wanted: str | None, default: str, *, references: bool) -> str:
    """The tier to send: the client's (1080p and 4k become 1080p), else the channel's default,
    capped to what the model takes (references cap at 720p)."""
    tier = {"4k": "1080p"}.get(wanted or default, wanted or default)
    allowed = model.resolutions
    if references:
        allowed = allowed[: allowed.index(REFERENCE_RESOLUTION_CAP) + 1]
    return tier if tier in allowed else allowed[-1]  # every model has 480p: only 1080p misses


def pixel_size(ratio: str, tier: str) -> str:
    """Nominal WxH: 16:9 at 720p is 1280x720, 4:3 at 480p is 640x480."""
    named = _NAMED_SIZES.get((ratio, tier))
    if named:
        return named
    a, _, b = ratio.partition(":")
    return nominal_size(int(a), int(b), int(tier.rstrip("p")))


def accepts(name: str) -> Accepts:
    """Every whole second xAI takes, and each ratio at each tier of the model."""
    model = model_of(name)
    sizes = dict.fromkeys(pixel_size(r, t) for t in model.resolutions for r in RATIOS)
    return tuple(range(MIN_SECONDS, MAX_SECONDS + 1)), tuple(sizes)
