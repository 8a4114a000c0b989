"""What each Wan model on DashScope can do: its kind, size tiers and durations.

Three kinds share one create URL: text-to-video (`t2v`, sized by `parameters.size` "W*H"),
first-frame image-to-video (`i2v`) and first+last frame (`kf2v`), both sized by
`parameters.resolution` ("720P"), the image setting the aspect. Names differ by region for 2.1
(`wanx2.1-…` in China, `wan2.1-…` elsewhere) and US models carry a `-us` suffix, so a model is
looked up by its name without the `x` and the suffix; an id this table does not know is read from
the words in it (`t2v`/`i2v`/`kf2v`) with the newest model's limits of that kind.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Protocol

from relay.domain import Size
from relay.providers.base import Accepts
from relay.providers.normalize import tier

Kind = Literal["t2v", "i2v", "kf2v"]

TIER_NAMES = ("480P", "720P", "1080P")
# The `size` values of each tier, landscape, portrait, square, then 4:3-ish both ways.
TIER_SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "480P": ((832, 480), (480, 832), (624, 624)),
    "720P": ((1280, 720), (720, 1280), (960, 960), (1088, 832), (832, 1088)),
    "1080P": ((1920, 1080), (1080, 1920), (1440, 1440), (1632, 1248), (1248, 1632)),
}
RESULT_TTL_S = 24 * 3600  # the signed OSS URL and the task record both live 24 h
FLEX = tuple(range(2, 16))  # 2.6: any whole number of seconds from 2 to 15


@dataclass(frozen=True)
class Spec:
    kind: Kind
    tiers: tuple[str, ...]  # from TIER_NAMES, lowest first
    default_tier: str
    durations: tuple[int, ...]
    generation: str  # "2.1", "2.2", "2.5", "2.6"
    audio_switch: bool = False  # takes `parameters.audio` (wan2.6-i2v-flash)

    @property
    def takes_audio_url(self) -> bool:
        return self.generation in ("2.5", "2.6")

    @property
    def fixed_duration(self) -> bool:
        return len(self.durations) == 1


_ALL = ("480P", "720P", "1080P")
_SPECS: dict[str, Spec] = {
    "wan2.6-t2v": Spec("t2v", ("720P", "1080P"), "1080P", FLEX, "2.6"),
    "wan2.5-t2v-preview": Spec("t2v", _ALL, "1080P", (5, 10), "2.5"),
    "wan2.2-t2v-plus": Spec("t2v", ("480P", "1080P"), "1080P", (5,), "2.2"),
    "wan2.1-t2v-turbo": Spec("t2v", ("480P", "720P"), "720P", (5,), "2.1"),
    "wan2.1-t2v-plus": Spec("t2v", ("720P",), "720P", (5,), "2.1"),
    "wan2.6-i2v": Spec("i2v", ("720P", "1080P"), "1080P", FLEX, "2.6"),
    "wan2.6-i2v-flash": Spec("i2v", ("720P", "1080P"), "1080P", FLEX, "2.6", audio_switch=True),
    "wan2.5-i2v-preview": Spec("i2v", _ALL, "1080P", (5, 10), "2.5"),
    "wan2.2-i2v-flash": Spec("i2v", _ALL, "720P", (5,), "2.2"),
    "wan2.2-i2v-plus": Spec("i2v", ("480P", "1080P"), "1080P", (5,), "2.2"),
    "wan2.1-i2v-turbo": Spec("i2v", ("480P", "720P"), "720P", (3, 4, 5), "2.1"),
    "wan2.1-i2v-plus": Spec("i2v", ("720P",), "720P", (5,), "2.1"),
    # the page names these two without their limits; Model Studio's first-and-last-frame reference
    # gives 480P-1080P (720P default) for 2.2 flash and 720P for 2.1 plus, 5 s for both
    "wan2.2-kf2v-flash": Spec("kf2v", _ALL, "720P", (5,), "2.2"),
    "wan2.1-kf2v-plus": Spec("kf2v", ("720P",), "720P", (5,), "2.1"),
}
# US-region models: the same tiers with their own durations
_US_DURATIONS: dict[str, tuple[int, ...]] = {"t2v": (5, 10), "i2v": (5, 10, 15)}
_KIND = re.compile(r"(?:^|-)(t2v|i2v|kf2v)(?:-|$)")


def canonical(model: str) -> tuple[str, bool]:
    """The table key of a model id, and whether it is a US-region (`-us`) model."""
    name = model.strip().lower()
    us = name.endswith("-us")
    if us:
        name = name[: -len("-us")]
    if name.startswith("wanx"):
        name = "wan" + name[len("wanx") :]
    return name, us


def spec_for(model: str) -> Spec:
    name, us = canonical(model)
    spec = _SPECS.get(name)
    if spec is None:
        match = _KIND.search(name)
        kind = match.group(1) if match else "t2v"
        spec = _SPECS["wan2.2-kf2v-flash" if kind == "kf2v" else f"wan2.6-{kind}"]
    if us and spec.kind in _US_DURATIONS and spec.generation == "2.6":
        spec = Spec(
            spec.kind,
            spec.tiers,
            spec.default_tier,
            _US_DURATIONS[spec.kind],
            spec.generation,
            spec.audio_switch,
        )
    return spec


def accepts(model: str) -> Accepts:
    """Its durations, and the sizes of each of its tiers (image jobs snap to them too) that
    read as that tier again (the 720P square is 960 px a side, which asks for 1080P)."""
    spec = spec_for(model)
    sizes = [
        f"{w}x{h}"
        for tier_name in spec.tiers
        for w, h in TIER_SIZES[tier_name]
        if pick_tier(Size(width=w, height=h), spec) == tier_name
    ]
    return spec.durations, tuple(sizes)


def known(model: str) -> bool:
    return canonical(model)[0] in _SPECS


class Tiered(Protocol):
    """A model with resolution tiers: a 2.6 Spec or a new-protocol one (wan27_models.py)."""

    @property
    def tiers(self) -> tuple[str, ...]: ...

    @property
    def default_tier(self) -> str: ...


def pick_tier(size: Size, spec: Tiered) -> str:
    """The model's tier for a size: the size's own (4k counts as 1080P), else the nearest one the
    model offers (a tie takes the higher); a bare ratio takes the model's default tier."""
    found = tier(size)
    if found is None:
        return spec.default_tier
    wanted = TIER_NAMES.index({"4k": "1080P"}.get(found, found.upper()))
    return min(spec.tiers, key=lambda t: (abs(TIER_NAMES.index(t) - wanted), -TIER_NAMES.index(t)))


def snap_size(size: Size, tier_name: str) -> tuple[int, int]:
    """The tier's size nearest in aspect (distance of logarithms)."""
    target = math.log(size.aspect)
    return min(TIER_SIZES[tier_name], key=lambda wh: abs(math.log(wh[0] / wh[1]) - target))


def parse_wh(text: object) -> tuple[int, int] | None:
    """(W, H) from "1280*720" or "1280x720"; None for anything else."""
    if not isinstance(text, str):
        return None
    for sep in ("*", "x"):
        left, found, right = text.strip().partition(sep)
        if found and left.isdigit() and right.isdigit() and int(left) and int(right):
            return int(left), int(right)
    return None


def tier_of_short_side(short: int) -> str | None:
    """A tier name from an output's short side or a usage `SR` (480, 720, 1080)."""
    return {480: "480P", 720: "720P", 1080: "1080P"}.get(short)
