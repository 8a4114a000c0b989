"""What each Seedance model family can do: durations, resolutions, inputs, output sizes.

Ids differ between the two sites (`doubao-seedance-…` on Volcengine Ark, `seedance-…` and
`dreamina-seedance-…` on BytePlus) and carry a date suffix that changes over time, so the family
is read from the version and the words in the id rather than from a list of ids. An endpoint id
(`ep-…`) says nothing about its model: the channel's `endpoint_family` option decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.normalize import snap_ratio, tier

FAMILIES = ("1.0-pro", "1.0-pro-fast", "1.0-lite-t2v", "1.0-lite-i2v", "1.5-pro", "2.0", "2.0-fast")
NEWEST = "2.0"
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
RESOLUTIONS = ("480p", "720p", "1080p")
URL_TTL_S = 86400  # content.video_url / last_frame_url: X-Tos-Expires=86400
FPS = 24

_VERSION = re.compile(r"seedance-(\d+)-(\d+)((?:-[a-z0-9]+)*)")

# Output W x H per tier and ratio. 1.0 rounds to multiples of 16 differently from 1.5 pro / 2.0.
_SIZES_1_0 = {
    "480p": {
        "16:9": (864, 480),
        "4:3": (736, 544),
        "1:1": (640, 640),
        "3:4": (544, 736),
        "9:16": (480, 864),
        "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1248, 704),
        "4:3": (1120, 832),
        "1:1": (960, 960),
        "3:4": (832, 1120),
        "9:16": (704, 1248),
        "21:9": (1504, 640),
    },
    "1080p": {
        "16:9": (1920, 1088),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1088, 1920),
        "21:9": (2176, 928),
    },
}
_SIZES_NEW = {
    "480p": {
        "16:9": (864, 496),
        "4:3": (752, 560),
        "1:1": (640, 640),
        "3:4": (560, 752),
        "9:16": (496, 864),
        "21:9": (992, 432),
    },
    "720p": {
        "16:9": (1280, 720),
        "4:3": (1112, 834),
        "1:1": (960, 960),
        "3:4": (834, 1112),
        "9:16": (720, 1280),
        "21:9": (1470, 630),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1080, 1920),
        "21:9": (2206, 946),
    },
}


@dataclass(frozen=True)
class Family:
    name: str  # one of FAMILIES

    @property
    def generation(self) -> str:
        return self.name[:3]  # "1.0", "1.5", "2.0"

    @property
    def durations(self) -> tuple[int, int]:
        return {"1.0": (2, 12), "1.5": (4, 12)}.get(self.generation, (4, 15))

    @property
    def has_audio(self) -> bool:
        return self.generation in ("1.5", "2.0")

    @property
    def takes_media(self) -> bool:
        """Reference video and audio items (and so remix) exist on 2.0 only."""
        return self.generation == "2.0"

    @property
    def takes_images(self) -> bool:
        return self.name != "1.0-lite-t2v"

    @property
    def max_reference_images(self) -> int:
        return {"2.0": 9, "2.0-fast": 9, "1.0-lite-i2v": 4}.get(self.name, 0)

    @property
    def default_resolution(self) -> str:
        return "1080p" if self.name in ("1.0-pro", "1.0-pro-fast") else "720p"

    def sends_resolution(self, reference_mode: bool) -> bool:
        if self.name == "2.0-fast":
            return False
        return not (reference_mode and self.name.startswith("1.0-lite"))


def family_of(model: str, fallback: str = NEWEST) -> Family:
    """The family a model id belongs to; `fallback` for endpoint ids and unrecognised ids."""
    match = _VERSION.search(model.lower())
    if match is None:
        return Family(fallback)
    version = (int(match.group(1)), int(match.group(2)))
    words = set(match.group(3).split("-"))
    if version >= (2, 0):
        return Family("2.0-fast" if "fast" in words else "2.0")
    if version >= (1, 5):
        return Family("1.5-pro")
    if "lite" in words:
        return Family("1.0-lite-t2v" if "t2v" in words else "1.0-lite-i2v")
    return Family("1.0-pro-fast" if "fast" in words else "1.0-pro")


def accepts(family: Family) -> Accepts:
    """Every whole second of the family's range, each ratio at each tier whose size reads as
    that tier again (a 480p square is 640 px a side, which asks for 720p)."""
    low, high = family.durations
    sizes = []
    for res in RESOLUTIONS:
        for ratio in RATIOS:
            found = pixel_size(family.generation, res, ratio)
            parsed = Size.parse(found) if found else None
            if parsed is not None and resolution_for(parsed) == res:
                sizes.append(found)
    return tuple(range(low, high + 1)), tuple(s for s in sizes if s is not None)


def ratio_for(size: Size) -> str:
    return snap_ratio(size, RATIOS)


def resolution_for(size: Size) -> str | None:
    """The tier of a WxH size; None for a bare ratio. 4k has no confirmed size here: 1080p."""
    found = tier(size)
    return "1080p" if found == "4k" else found


def pixel_size(generation: str, resolution: str, ratio: str) -> str | None:
    table = _SIZES_1_0 if generation == "1.0" else _SIZES_NEW
    found = table.get(resolution, {}).get(ratio)
    return f"{found[0]}x{found[1]}" if found else None
