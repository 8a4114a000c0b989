"""Runway's models (spec/providers/runway.md): which create endpoints each has, its `ratio` pixel
sizes per endpoint, how `duration` is snapped, and which optional fields it takes.

The model list itself lives in the config. Names are matched exactly (Runway's own spellings);
a name this module does not know is sent as it is, with the client's duration unchanged and
gen4.5's sizes, and Runway's 400 is the client's answer if it refuses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from relay.domain import Size
from relay.providers.base import Accepts

I2V, T2V, V2V = "image_to_video", "text_to_video", "video_to_video"
SEED_MAX = 4_294_967_295
DEFAULT_PROMPT_LIMIT = 1000  # UTF-16 code units, gen4.5 / gen4_turbo / veo*
MAX_REFERENCE_IMAGES = 9
SAME_ASPECT = math.log(1.03)

GEN45_I2V = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
WIDE_OR_TALL = ("1280:720", "720:1280")
TURBO = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO = ("1280:720", "720:1280", "1080:1920", "1920:1080")
HAPPYHORSE_T2V = ("1280:720", "720:1280", "960:960", "1108:832", "832:1108", "1920:1080",
                  "1080:1920", "1440:1440", "1662:1248", "1248:1662")  # fmt: skip
# Seedance 2.0's sizes per tier (seedance.md's 2.0 column, which Runway's "992:432 … 720:1280"
# matches). The page counts 24 up to 3840:3840 without naming the 4k six, so a 4k request
# snaps to 1080p here; metadata's `ratio` can still send any size Runway takes.
SEEDANCE_480P = ("992:432", "864:496", "752:560", "640:640", "560:752", "496:864")
SEEDANCE_720P = ("1470:630", "1280:720", "1112:834", "960:960", "834:1112", "720:1280")
SEEDANCE_1080P = ("2206:946", "1920:1080", "1664:1248", "1440:1440", "1248:1664", "1080:1920")
SEEDANCE_FAST = SEEDANCE_480P + SEEDANCE_720P
SEEDANCE = SEEDANCE_FAST + SEEDANCE_1080P
# the form's offer for a model whose duration range the page does not give (sent unchanged)
FREE_OFFER = (5, 10)


@dataclass(frozen=True)
class Model:
    name: str
    ratios: Mapping[str, tuple[str, ...]]  # endpoint -> pixel sizes; () = no `ratio` field
    durations: tuple[int, ...] = ()  # what the model takes (the form's offer)
    snap: str = "free"  # "clamp" to the range, "nearest" value, "free" (sent unchanged)
    prompt_limit: int | None = DEFAULT_PROMPT_LIMIT
    prompt_required: frozenset[str] = frozenset({T2V})
    seed: bool = False
    audio: bool = False  # `audio` (bool) takes generate_audio
    negative: bool = False  # `negativePrompt`
    last_frame: bool = False  # promptImage array with a `last` item
    references: bool = False  # position-less promptImage items, referenceVideos/Audio
    resolution: bool = False  # happyhorse i2v: `resolution` instead of `ratio`

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(self.ratios)


def _seedance(name: str, sizes: tuple[str, ...]) -> Model:
    return Model(name, {I2V: sizes, T2V: sizes, V2V: sizes}, FREE_OFFER, prompt_limit=3500,
                 audio=True, last_frame=True, references=True)  # fmt: skip


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("gen4.5", {I2V: GEN45_I2V, T2V: WIDE_OR_TALL}, tuple(range(2, 11)), "clamp",
              prompt_required=frozenset({I2V, T2V}), seed=True),
        Model("gen4_turbo", {I2V: TURBO}, (5, 10), "nearest", seed=True),
        Model("veo3.1", {I2V: VEO, T2V: VEO}, (4, 6, 8), "nearest", audio=True,
              negative=True, last_frame=True),
        Model("veo3.1_fast", {I2V: VEO, T2V: VEO}, (4, 6, 8), "nearest", audio=True,
              negative=True, last_frame=True),
        Model("veo3", {I2V: VEO, T2V: VEO}, (8,), "nearest", negative=True),
        Model("gemini_omni_flash", {I2V: WIDE_OR_TALL, T2V: WIDE_OR_TALL, V2V: WIDE_OR_TALL},
              tuple(range(3, 11)), "clamp", prompt_limit=None),
        Model("happyhorse_1_0", {I2V: (), T2V: HAPPYHORSE_T2V}, FREE_OFFER, prompt_limit=2500,
              resolution=True),
        _seedance("seedance2", SEEDANCE),
        _seedance("seedance2_fast", SEEDANCE_FAST),
        _seedance("seedance2_mini", SEEDANCE_FAST),
        Model("aleph2", {V2V: ()}, prompt_limit=None, seed=True),
    )
}  # fmt: skip


def model_of(name: str) -> Model:
    found = MODELS.get(name)
    if found is not None:
        return found
    return Model(name, {I2V: GEN45_I2V, T2V: WIDE_OR_TALL}, FREE_OFFER, prompt_limit=None)


def duration(model: Model, seconds: int) -> int:
    """The integer `duration` sent for the client's seconds (the page's snapping per model)."""
    if model.snap == "clamp":
        return max(model.durations[0], min(model.durations[-1], seconds))
    if model.snap == "nearest":
        return min(model.durations, key=lambda a: (abs(a - seconds), -a))  # a tie: the longer
    return seconds


def _wh(ratio: str) -> tuple[int, int]:
    w, _, h = ratio.partition(":")
    return int(w), int(h)


def pick_ratio(size: Size, allowed: tuple[str, ...]) -> str:
    """Among the pixel sizes, the nearest aspect (landscape wins a tie), then the short side
    nearest the requested one (the larger on a tie); a bare ratio takes the smallest size of
    its aspect. Sizes within 3 % of that aspect count as it: 864:496 and 1280:720 are both
    Seedance's 16:9."""
    target = math.log(size.aspect)

    def aspect(ratio: str) -> float:
        w, h = _wh(ratio)
        return math.log(w / h)

    nearest = min(allowed, key=lambda r: (round(abs(aspect(r) - target), 9), aspect(r) < 0))
    family = [r for r in allowed if abs(aspect(r) - aspect(nearest)) < SAME_ASPECT]
    wanted = size.short_side
    if wanted is None:
        return min(family, key=lambda r: min(_wh(r)))
    return min(family, key=lambda r: (abs(min(_wh(r)) - wanted), -min(_wh(r))))


def accepts(name: str) -> Accepts:
    """The durations the model takes and its text-to-video sizes (its image-to-video ones for a
    model without text-to-video), as WxH."""
    model = model_of(name)
    sizes = model.ratios.get(T2V) or model.ratios.get(I2V) or WIDE_OR_TALL
    return model.durations or FREE_OFFER, tuple(r.replace(":", "x") for r in sizes)
