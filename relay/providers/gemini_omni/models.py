"""What each Gemini Omni model takes (spec/providers/gemini-omni.md): 3-10 s, two ratios, four
resolution tiers on 1.1 and 720p only on the preview. Model names live in the config."""

from __future__ import annotations

from relay.providers.base import Accepts

SECONDS = (3, 10)  # the API's bounds; a request outside them is clamped
RATIOS = ("16:9", "9:16")
# only 360p was measured (640x360); the others are taken as the usual 16:9 sizes (unconfirmed)
PIXELS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
RESOLUTIONS = tuple(PIXELS)


def preview(model: str) -> bool:
    """The preview model takes 720p only and must not be sent `resolution` at all."""
    return model.lower().startswith("gemini-omni-flash-preview")


def resolutions(model: str) -> tuple[str, ...]:
    return ("720p",) if preview(model) else RESOLUTIONS


def accepts(model: str) -> Accepts:
    low, high = SECONDS
    return tuple(range(low, high + 1)), tuple(
        pixel_size(ratio, res) for res in resolutions(model) for ratio in RATIOS
    )


def pixel_size(ratio: str, res: str) -> str:
    long, short = PIXELS[res]
    return f"{short}x{long}" if ratio == "9:16" else f"{long}x{short}"
