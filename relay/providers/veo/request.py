"""Veo's create request as pure functions (spec/providers/veo.md): the model families' limits,
where each input image goes, and the predictLongRunning body."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from relay.providers.base import Image, Job
from relay.providers.normalize import merge_metadata, snap_seconds, tier

Inline = dict[str, str]  # {"bytesBase64Encoded", "mimeType"}: the only image form the API takes

MAX_REFERENCES = 3  # "up to 3 asset images" (Gemini API docs, Veo 3.1)
PIXELS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
RATIOS = ("16:9", "9:16")
# Vertex AI takes these; the Gemini API is not to be sent them (whether it refuses is unconfirmed)
VERTEX_ONLY = (
    "seed",
    "generateAudio",
    "fps",
    "storageUri",
    "compressionQuality",
    "resizeMode",
    "pubsubTopic",
    "mask",
)


@dataclass(frozen=True)
class Family:
    """What one Veo generation accepts; the model names themselves live in the config."""

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


# --- images -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frames:
    first: Image | None
    last: Image | None
    references: tuple[Image, ...]


def frames(job: Job) -> Frames:
    """Where each image goes: an unlabelled second frame is the last one, as the relay reads it."""
    firsts = [i for i in job.images if i.role == "first_frame"]
    firsts += [i for i in job.images if i.role is None]
    lasts = [i for i in job.images if i.role == "last_frame"] + firsts[1:]
    references = tuple(i for i in job.images if i.role == "reference_image")
    return Frames(firsts[0] if firsts else None, lasts[0] if lasts else None, references)


def refusal(job: Job) -> str | None:
    """Why Veo cannot take these images on this model, or None."""
    fam = family(job.model)
    roles = [image.role for image in job.images]
    frame_count = sum(r in (None, "first_frame", "last_frame") for r in roles)
    if roles.count("first_frame") > 1 or roles.count("last_frame") > 1 or frame_count > 2:
        return "veo takes one first frame and one last frame"
    placed = frames(job)
    if placed.last is not None and placed.first is None:
        return "veo needs a first frame to go with a last frame"
    if placed.references and not fam.reference_images:
        return f"{fam.name} ({job.model}) does not take reference images; Veo 3.1 does"
    if len(placed.references) > MAX_REFERENCES:
        return f"veo takes at most {MAX_REFERENCES} reference images"
    return None


def inline(data: bytes, mime: str) -> Inline:
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}


# --- the body ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Native:
    body: dict[str, Any]
    seconds: int  # durationSeconds as it went upstream, metadata included
    size: str
    dropped: tuple[str, ...]  # relay hints and metadata keys the Gemini API is not sent


def build(
    job: Job,
    first: Inline | None = None,
    last: Inline | None = None,
    references: tuple[Inline, ...] = (),
) -> Native:
    fam = family(job.model)
    ratio = "9:16" if job.size.aspect < 1 else "16:9"
    res = resolution(fam, tier(job.size))
    if res in ("1080p", "4k") or references:
        duration = 8  # the API refuses anything else with these
    else:
        duration = snap_seconds(job.seconds, fam.durations)
    instance: dict[str, Any] = {"prompt": job.prompt}
    if first is not None:
        instance["image"] = first
    if last is not None:
        instance["lastFrame"] = last
    if references:
        instance["referenceImages"] = [{"image": r, "referenceType": "asset"} for r in references]
    parameters: dict[str, Any] = {"aspectRatio": ratio, "durationSeconds": duration}
    if res is not None:
        parameters["resolution"] = res
    if job.negative_prompt is not None:
        parameters["negativePrompt"] = job.negative_prompt
    if job.enhance_prompt is not None:
        parameters["enhancePrompt"] = job.enhance_prompt
    if job.person_generation is not None:
        parameters["personGeneration"] = job.person_generation
    elif fam.person_default and (first or last or references):
        parameters["personGeneration"] = "allow_adult"
    parameters["sampleCount"] = 1
    hints = (("seed", job.seed), ("generate_audio", job.generate_audio))
    dropped = [name for name, value in hints if value is not None]  # Vertex AI only

    # a list would replace the whole instance (prompt and images with it): ignored
    extra = {k: v for k, v in job.metadata.items() if k != "instances"}
    body = merge_metadata({"instances": [instance], "parameters": parameters}, extra)
    sent = body.get("parameters")
    if not isinstance(sent, dict):
        sent = body["parameters"] = parameters
    sent["sampleCount"] = 1  # one task is one video
    for key in VERTEX_ONLY + (("resolution",) if not fam.resolutions else ()):
        if key in sent:
            sent.pop(key)
            dropped.append(f"parameters.{key}")
    return Native(body, *_reported(sent, duration, ratio, res), tuple(dropped))


def _reported(sent: dict[str, Any], duration: int, ratio: str, res: str | None) -> tuple[int, str]:
    """Seconds and WxH of what actually went upstream, after metadata had its say."""
    value = sent.get("durationSeconds")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    seconds = value if isinstance(value, int) and not isinstance(value, bool) else duration
    sent_ratio = sent.get("aspectRatio")
    sent_res = sent.get("resolution", res)
    return seconds, pixel_size(
        sent_ratio if sent_ratio in RATIOS else ratio,
        sent_res if sent_res in PIXELS else (res or "720p"),
    )
