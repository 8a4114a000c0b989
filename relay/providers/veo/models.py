"""What each Veo generation can do (spec/providers/veo.md): durations, resolutions, reference
images, the personGeneration default for image inputs, and the pixel size of each tier. The
model names themselves live in the config; a name is read by its prefix."""

from __future__ import annotations

from dataclasses import dataclass

from relay.providers.base import Accepts

MAX_REFERENCES = 3  # "up to 3 asset images" (Gemini API docs, Veo 3.1)
PIXELS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
RATIOS = ("16:9", "9:16")
EIGHT_ONLY = ("1080p", "4k")  # resolutions (like reference images) that take 8 seconds only


@dataclass(frozen=True)
class Family:
    """What one Veo generation accepts."""

    name: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]  # empty: the model takes no `resolution` at all
    reference_images: bool
    person_default: bool  # image inputs get personGeneration "allow_adult" unless told


VEO2 = Family("Veo 2", (5, 6, 8), (), reference_images=False, person_default=False)
VEO3 = Family("Veo 3", (4, 6, 8), ("720p", "1080p"), reference_images=False, person_default=True)
VEO31 = Family(
    "Veo 3.1", (4, 6, 8), ("720p", "1080p", "4k"), reference_images=True, person_default=True
)


def family(model: str) -> Family:
    """By the name's prefix; a name that is neither 2 nor 3.0 is taken as 3.1 or newer."""
    name = model.lower()
    if name.startswith("veo-2"):
        return VEO2
    if name.startswith("veo-3.0"):
        return VEO3
    return VEO31


def accepts(model: str) -> Accepts:
    """Its generation's durations, both ratios at each of its resolutions (720p on Veo 2)."""
    fam = family(model)
    return fam.durations, tuple(
        pixel_size(ratio, res) for res in fam.resolutions or ("720p",) for ratio in RATIOS
    )


def resolution(fam: Family, wanted: str | None) -> str | None:
    """The relay tier as Veo's; None leaves the field out (a bare ratio, or Veo 2)."""
    if wanted is None or not fam.resolutions:
        return None
    if wanted == "4k" and "4k" not in fam.resolutions:
        return "1080p"
    return wanted if wanted in fam.resolutions else "720p"


def pixel_size(ratio: str, res: str) -> str:
    long, short = PIXELS[res]
    return f"{short}x{long}" if ratio == "9:16" else f"{long}x{short}"
