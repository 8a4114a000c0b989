"""What each Wan 2.7 / Wan 3.0 "new protocol" model can do (spec/providers/dashscope-wan27.md).

The protocol is chosen by name: `wan2.7…`, `wan3…` and `happyhorse…` ids use `input.media[]`,
`parameters.resolution` + `ratio`; every other id keeps the 2.6 body (models.py). Wan 2.7 has one
model per family (t2v, i2v, r2v, videoedit), found by the word in the id so dated snapshots such
as `wan2.7-i2v-2026-04-25` work; Wan 3.0 is one all-in-one model. HappyHorse ids, tiers and
durations are unconfirmed: they follow the 2.7 family their id names, the i2v one taking a first
frame only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.dashscope.models import TIER_SIZES, pick_tier

Family = Literal["t2v", "i2v", "r2v", "videoedit", "aio"]

RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
FRAMES = frozenset({"first_frame", "last_frame", "first_clip"})  # they set the aspect
REFERENCES = frozenset({"reference_image", "reference_video", "reference_audio", "file", "link"})
# The six wan2.7-i2v combinations the page allows; anything else is refused upstream.
I2V_COMBINATIONS = frozenset(
    frozenset(c)
    for c in (
        {"first_frame"},
        {"first_frame", "driving_audio"},
        {"first_frame", "last_frame"},
        {"first_frame", "last_frame", "driving_audio"},
        {"first_clip"},
        {"first_clip", "last_frame"},
    )
)
_FAMILY_WORD = re.compile(r"(?:^|-)(t2v|i2v|r2v|videoedit)(?:-|$)")


@dataclass(frozen=True)
class Spec:
    family: Family
    label: str  # how a refusal names the model's kind
    media: tuple[str, ...]  # the `media[].type` values it accepts
    tiers: tuple[str, ...]  # upper-case resolution names, lowest first
    default_tier: str  # what DashScope renders when no resolution is sent
    ratio: bool  # takes `parameters.ratio` when no frame image is sent
    seconds: tuple[int, int] | None  # (lowest, highest); None: follows the source video
    seconds_with_video: tuple[int, int] | None = None  # when a reference video is given
    max_items: dict[str, int] | None = None  # per media type, where the page caps it
    happyhorse: bool = False

    @property
    def durations(self) -> tuple[int, ...]:
        low, high = self.seconds or (5, 5)
        return tuple(range(low, high + 1))


_2_7 = ("720P", "1080P")
_SPECS: dict[Family, Spec] = {
    "t2v": Spec("t2v", "text-to-video", (), _2_7, "1080P", True, (2, 15)),
    "i2v": Spec(
        "i2v",
        "image-to-video",
        ("first_frame", "last_frame", "driving_audio", "first_clip"),
        _2_7,
        "1080P",
        False,
        (2, 15),
    ),
    # the page gives r2v and videoedit no default resolution; 1080P, as the other 2.7 models,
    # only names the size shown until the finished task reports its own
    "r2v": Spec(
        "r2v",
        "reference-to-video",
        ("reference_image", "reference_video", "first_frame"),
        _2_7,
        "1080P",
        True,
        (2, 15),
        seconds_with_video=(2, 10),
        max_items={"first_frame": 1},
    ),
    "videoedit": Spec(
        "videoedit", "video edit", ("video", "reference_image"), _2_7, "1080P", False, None
    ),
    "aio": Spec(
        "aio",
        "all-in-one",
        (
            "first_frame",
            "last_frame",
            "reference_image",
            "reference_video",
            "reference_audio",
            "file",
            "link",
        ),
        ("480P", "720P", "1080P"),
        "1080P",
        True,
        (2, 30),
        max_items={
            "first_frame": 1,
            "last_frame": 1,
            "reference_image": 10,
            "reference_video": 5,
            "reference_audio": 5,
            "file": 1,
            "link": 1,
        },
    ),
}
R2V_REFERENCES = (1, 5)  # reference_image + reference_video items on wan2.7-r2v


def is_new_protocol(model: str) -> bool:
    return model.strip().lower().startswith(("wan2.7", "wan3", "happyhorse"))


def spec_for(model: str) -> Spec:
    name = model.strip().lower()
    if name.startswith("wan3"):
        return _SPECS["aio"]
    match = _FAMILY_WORD.search(name)
    family: Family = match.group(1) if match else "t2v"  # type: ignore[assignment]
    spec = _SPECS[family]
    if name.startswith("happyhorse"):
        media = ("first_frame",) if family == "i2v" else spec.media
        spec = Spec(
            spec.family,
            spec.label,
            media,
            spec.tiers,
            spec.default_tier,
            spec.ratio,
            spec.seconds,
            spec.seconds_with_video,
            spec.max_items,
            happyhorse=True,
        )
    return spec


def accepts(model: str) -> Accepts:
    """Its durations, and the sizes of its tiers that read as that tier again."""
    spec = spec_for(model)
    sizes = [
        f"{w}x{h}"
        for tier_name in spec.tiers
        for w, h in TIER_SIZES[tier_name]
        if pick_tier(Size(width=w, height=h), spec) == tier_name
    ]
    return spec.durations, tuple(sizes)
