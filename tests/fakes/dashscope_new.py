"""The Wan 2.7 / Wan 3.0 "new protocol" as the DashScope fake checks it
(spec/providers/dashscope-wan27.md), kept apart from the fake's routes: the models it knows, a
create body's fields, and the usage of a finished task.

A problem is `(HTTP status, code, message)`, as the page describes the new protocol's refusals:
400 `InvalidParameter` for a 2.6 field (`size`, `img_url`, ...), a lower-case resolution, a
string duration, a `ratio` on i2v or videoedit, a media type or combination the model does not
take, a missing frame ("must provide an image"); 400 `InvalidURL` for a URL it cannot use.
`data:` URLs in `media[].url` are undocumented: refused by default, accepted with
`accept_data_urls`.

HappyHorse ids are unconfirmed: the fake knows `happyhorse-1.0-` and `happyhorse-1.1-` with
`t2v`, `i2v`, `r2v` or `videoedit`, each as the 2.7 family (i2v: a first frame only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Problem = tuple[int, str, str]

RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
SEED_MAX = 2147483647
LEGACY_INPUTS = ("img_url", "first_frame_url", "last_frame_url", "reference_video_urls")
ITEM_KEYS = frozenset({"type", "url", "reference_voice", "reference_description"})
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
AIO_FRAMES = frozenset({"first_frame", "last_frame"})
AIO_REFERENCES = frozenset(
    {"reference_image", "reference_video", "reference_audio", "file", "link"}
)


@dataclass(frozen=True)
class NewModel:
    family: str  # t2v, i2v, r2v, videoedit, aio
    media: frozenset[str]
    tiers: tuple[str, ...]
    default_tier: str
    ratio: bool
    caps: dict[str, int] = field(default_factory=dict)


_2_7 = ("720P", "1080P")
FAMILIES: dict[str, NewModel] = {
    "t2v": NewModel("t2v", frozenset(), _2_7, "1080P", True),
    "i2v": NewModel(
        "i2v",
        frozenset({"first_frame", "last_frame", "driving_audio", "first_clip"}),
        _2_7,
        "1080P",
        False,
    ),
    "r2v": NewModel(
        "r2v",
        frozenset({"reference_image", "reference_video", "first_frame"}),
        _2_7,
        "1080P",
        True,
        {"first_frame": 1},
    ),
    "videoedit": NewModel(
        "videoedit", frozenset({"video", "reference_image"}), _2_7, "1080P", False
    ),
    "aio": NewModel(
        "aio",
        AIO_FRAMES | AIO_REFERENCES,
        ("480P", "720P", "1080P"),
        "1080P",
        True,
        {
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
NEW_MODELS: dict[str, NewModel] = {
    "wan2.7-t2v": FAMILIES["t2v"],
    "wan2.7-i2v": FAMILIES["i2v"],
    "wan2.7-i2v-2026-04-25": FAMILIES["i2v"],
    "wan2.7-r2v": FAMILIES["r2v"],
    "wan2.7-videoedit": FAMILIES["videoedit"],
    "wan3.0-video": FAMILIES["aio"],
    "wan3.0-video-prime": FAMILIES["aio"],
}
for _version in ("1.0", "1.1"):
    for _family in ("t2v", "r2v", "videoedit"):
        NEW_MODELS[f"happyhorse-{_version}-{_family}"] = FAMILIES[_family]
    NEW_MODELS[f"happyhorse-{_version}-i2v"] = NewModel(
        "i2v", frozenset({"first_frame"}), _2_7, "1080P", False
    )


def is_new(model: str) -> bool:
    return model.startswith(("wan2.7", "wan3", "happyhorse"))


def _bad(message: str, code: str = "InvalidParameter") -> Problem:
    return (400, code, message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(
    body: dict[str, Any], model: str, spec: NewModel, headers: Any, *, accept_data_urls: bool
) -> Problem | list[str]:
    """The problem with a new-protocol create body, or the http(s) URLs the upstream fetches."""
    inputs = body.get("input")
    if not isinstance(inputs, dict) or not inputs:
        return _bad("Required input can't be empty", "BadRequest.EmptyInput")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        return _bad("parameters must be an object")
    for key in LEGACY_INPUTS:
        if key in inputs:
            return _bad(f"input.{key} is not supported by {model}; use input.media")
    prompt = inputs.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return _bad("input.prompt must be a string")
    if not prompt and spec.family != "i2v":
        return _bad("Required parameter(s) missing or invalid: input.prompt")
    negative = inputs.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > 500):
        return _bad("input.negative_prompt must be a string of at most 500 characters")
    fetch: list[str] = []
    if "audio_url" in inputs:
        if spec.family != "t2v":
            return _bad(f"input.audio_url is not supported by {model}; use a media item")
        problem = _check_url(inputs["audio_url"], "input.audio_url", headers, accept_data_urls)
        if problem is not None:
            return problem
        fetch.append(inputs["audio_url"])
    media = inputs.get("media", [])
    if not isinstance(media, list):
        return _bad("input.media must be an array")
    types: list[str] = []
    for n, item in enumerate(media):
        where = f"input.media[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return _bad(f"{where} must be an object with a type")
        extra = sorted(set(item) - ITEM_KEYS)
        if extra:
            return _bad(f"{where}.{extra[0]} is not a valid media field")
        if item["type"] not in spec.media:
            return _bad(f"media type {item['type']} is not supported by {model}")
        for key in ("url", "reference_voice"):
            if key == "url" or key in item:
                problem = _check_url(item.get(key), f"{where}.{key}", headers, accept_data_urls)
                if problem is not None:
                    return problem
                fetch.append(item[key])
        description = item.get("reference_description")
        if description is not None and not isinstance(description, str):
            return _bad(f"{where}.reference_description must be a string")
        types.append(item["type"])
    problem = _combination(types, model, spec) or _check_parameters(params, model, spec, types)
    if problem is not None:
        return problem
    return [url for url in fetch if url.startswith(("http://", "https://"))]


def _check_url(value: Any, where: str, headers: Any, accept_data_urls: bool) -> Problem | None:
    if not isinstance(value, str) or not value:
        return _bad(f"{where} must be a string")
    if value.startswith("oss://"):
        if headers.get("X-DashScope-OssResourceResolve") != "enable":
            return _bad(f"{where}: oss:// URLs need X-DashScope-OssResourceResolve: enable")
        return None
    if value.startswith(("https://", "http://")):
        return None
    if value.startswith("data:"):
        if accept_data_urls:
            return None
        return _bad(f"{where}: data URLs are not supported; use a public URL or an oss:// URL")
    return (400, "InvalidURL", f"The provided URL in {where} is invalid")


def _combination(types: list[str], model: str, spec: NewModel) -> Problem | None:
    counts = Counter(types)
    for kind, cap in spec.caps.items():
        if counts[kind] > cap:
            return _bad(f"at most {cap} media of type {kind} are allowed for {model}")
    if spec.family == "i2v":
        if not counts:
            return _bad(f"image-to-video model {model} must provide an image")
        if any(n > 1 for n in counts.values()) or frozenset(counts) not in I2V_COMBINATIONS:
            return _bad(f"the media combination {' + '.join(types)} is not supported by {model}")
    if spec.family == "r2v":
        references = counts["reference_image"] + counts["reference_video"]
        if not 1 <= references <= 5:
            return _bad(f"{model} takes 1 to 5 reference media, got {references}")
    if spec.family == "videoedit" and counts["video"] != 1:
        return _bad(f"{model} needs exactly one media of type video")
    if spec.family == "aio" and AIO_FRAMES & set(counts) and AIO_REFERENCES & set(counts):
        return _bad(f"reference media cannot be mixed with first_frame/last_frame on {model}")
    return None


def _check_parameters(
    params: dict[str, Any], model: str, spec: NewModel, types: list[str]
) -> Problem | None:
    if "size" in params:
        return _bad(f"parameters.size is not supported by {model}; use resolution and ratio")
    for key in ("prompt_extend", "watermark", "audio"):
        if key in params and not isinstance(params[key], bool):
            return _bad(f"parameters.{key} must be a boolean")
    if "resolution" in params and params["resolution"] not in spec.tiers:
        return _bad(f"parameters.resolution must be one of {', '.join(spec.tiers)}")
    if "ratio" in params:
        if not spec.ratio:
            return _bad(f"parameters.ratio is not supported by {model}: the input sets the aspect")
        if params["ratio"] not in RATIOS:
            return _bad(f"parameters.ratio must be one of {', '.join(RATIOS)}")
    if "duration" in params:
        duration = params["duration"]
        if not _is_int(duration):
            return _bad("parameters.duration must be an integer")
        low, high = (2, 30) if spec.family == "aio" else (2, 15)
        if spec.family == "r2v" and "reference_video" in types:
            high = 10
        if not (low <= duration <= high or (spec.family == "aio" and duration == -1)):
            return _bad(f"parameters.duration {duration} is out of range for {model}")
    if "audio_setting" in params and (
        spec.family != "videoedit" or params["audio_setting"] not in ("auto", "origin")
    ):
        return _bad("parameters.audio_setting is invalid for this model")
    if "shot_type" in params and params["shot_type"] not in ("single", "multi"):
        return _bad("parameters.shot_type must be single or multi")
    if "seed" in params and (not _is_int(params["seed"]) or not 0 <= params["seed"] <= SEED_MAX):
        return _bad("parameters.seed must be an integer from 0 to 2147483647")
    return None


def usage(spec: NewModel, params: dict[str, Any], extra: str | None) -> dict[str, Any]:
    """2.6-style usage (the page expects it); `extra` adds `ratio` or `size`, which the page
    says may appear."""
    resolution = params.get("resolution", spec.default_tier)
    duration = params.get("duration", 5)
    if spec.family == "videoedit" or duration == -1:
        duration = 5  # the source's length / the model's choice
    found: dict[str, Any] = {
        "duration": duration,
        "input_video_duration": 5 if spec.family == "videoedit" else 0,
        "output_video_duration": duration,
        "SR": int(resolution.removesuffix("P")),
        "video_count": 1,
    }
    ratio = params.get("ratio", "16:9")
    if extra == "ratio":
        found["ratio"] = ratio
    elif extra == "size":
        found["size"] = SIZES[resolution][RATIOS.index(ratio)] if ratio in RATIOS else None
    return found


SIZES = {  # per tier, in RATIOS order (480P has no 4:3 or 3:4: the nearest listed)
    "480P": ("832*480", "480*832", "624*624", "832*480", "480*832"),
    "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
    "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
}
