"""Vidu's per-model tables (spec/providers/vidu.md): durations, resolution tiers and aspect
ratios of each model family, and the nominal pixel size of a tier in a ratio.

The model names themselves change often upstream, so they live in the config; a model is known
here only by the family its name starts with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from relay.providers.base import Accepts
from relay.providers.normalize import nominal_size

NARROW_RATIOS = ("16:9", "9:16", "1:1")
WIDE_RATIOS = ("16:9", "9:16", "1:1", "3:4", "4:3")
RESOLUTION_ORDER = ("360p", "540p", "720p", "1080p")


@dataclass(frozen=True)
class Family:
    """What one model family accepts."""

    name: str
    durations: tuple[int, ...]
    start_end_durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    default_resolution: str
    ratios: tuple[str, ...]
    audio: bool = False
    # vidu2.0 narrows its resolutions for long clips
    by_duration: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def resolutions_for(self, duration: int) -> tuple[str, ...]:
        return self.by_duration.get(duration, self.resolutions)

    def default_for(self, duration: int) -> str:
        allowed = self.resolutions_for(duration)
        return self.default_resolution if self.default_resolution in allowed else allowed[0]


ONE_TO_TEN = tuple(range(1, 11))
ONE_TO_EIGHT = tuple(range(1, 9))
Q3 = Family(
    "viduq3",
    durations=tuple(range(1, 17)),
    start_end_durations=tuple(range(1, 17)),
    resolutions=("540p", "720p", "1080p"),
    default_resolution="720p",
    ratios=WIDE_RATIOS,
    audio=True,
)
Q2 = Family("viduq2", ONE_TO_TEN, ONE_TO_EIGHT, ("540p", "720p", "1080p"), "720p", WIDE_RATIOS)
Q2_FAST = Family(
    "viduq2-pro-fast", ONE_TO_TEN, ONE_TO_EIGHT, ("720p", "1080p"), "720p", WIDE_RATIOS
)
Q1 = Family("viduq1", (5,), (5,), ("1080p",), "1080p", NARROW_RATIOS)
V20 = Family(
    "vidu2.0",
    durations=(4, 8),
    start_end_durations=(4, 8),
    resolutions=("360p", "720p", "1080p"),
    default_resolution="360p",
    ratios=NARROW_RATIOS,
    by_duration={8: ("720p",)},
)


def family(model: str) -> Family:
    """The limits of a model, by its name's prefix; an unknown name gets viduq2's."""
    name = model.lower()
    if name.startswith("vidu2.0"):
        return V20
    if name.startswith("viduq1"):
        return Q1
    if name.startswith("viduq2-pro-fast"):
        return Q2_FAST
    if name.startswith("viduq3"):
        return Q3
    return Q2


def accepts(model: str) -> Accepts:
    """Its family's durations, and each of its ratios at each of its tiers."""
    fam = family(model)
    sizes = dict.fromkeys(pixel_size(r, res) for res in fam.resolutions for r in fam.ratios)
    return fam.durations, tuple(sizes)


def resolution(fam: Family, wanted_tier: str | None, duration: int) -> str:
    """The relay tier as Vidu's tier string, limited to what the model offers at this length."""
    allowed = fam.resolutions_for(duration)
    if wanted_tier is None:
        return fam.default_for(duration)
    wanted = {"480p": "360p" if fam is V20 else "540p", "4k": "1080p"}.get(wanted_tier, wanted_tier)
    if wanted in allowed:
        return wanted
    rank = RESOLUTION_ORDER.index(wanted)
    # the nearest tier the model has; between two, the higher
    return min(
        allowed, key=lambda r: (abs(RESOLUTION_ORDER.index(r) - rank), -RESOLUTION_ORDER.index(r))
    )


def pixel_size(ratio: str, tier_name: str) -> str:
    """Nominal WxH of a tier in a ratio: 16:9 at 720p is 1280x720, 4:3 at 720p is 960x720."""
    a, _, b = ratio.partition(":")
    return nominal_size(int(a), int(b), int(tier_name.rstrip("p")))
