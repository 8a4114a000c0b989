"""Where a local vLLM-Omni server departs from the Videos API (spec/providers/vllm-omni.md), as
pure functions the `openai` adapter uses on a channel with `options = { vllm_omni = true }`.

The create is multipart only, with flat form fields: the relay's hints and the client's metadata
become the server's own extension fields (objects as JSON text, never bracket notation, which
the server drops silently). The server turns `seconds` into `seconds x fps` frames and lets
`num_frames` win, so the duration the relay reports is worked out from what was sent rather than
read from the echo. Errors come as FastAPI's `{"detail"}`, vLLM's envelope, or the auth
middleware's `{"error": "Unauthorized"}` (response.native_error reads all three).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relay.domain import VideoRequest
from relay.providers.errors import ProviderError, RateLimited, TaskNotFound
from relay.providers.normalize import clean_metadata
from relay.providers.openai.response import Phase, classify, native_error

DEFAULT_FPS = 24  # the server's own default when no fps is sent
SENT_HINTS = ("negative_prompt", "seed", "generate_audio")  # the relay hints it has a field for


def create_fields(
    request: VideoRequest,
    model: str | None,
    seconds: int,
    size: str,
    pinned: Mapping[str, Any],
    has_file: bool,
) -> dict[str, Any]:
    """The create's form fields before encoding. The channel's pinned fields win over the
    client's metadata: they are how an operator keeps a model at its tuned fps and frames."""
    fields: dict[str, Any] = {"prompt": request.prompt, "seconds": str(seconds), "size": size}
    if model:
        fields = {"model": model, **fields}
    if request.negative_prompt is not None:
        fields["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        fields["seed"] = request.seed
    if request.generate_audio is not None:
        fields["generate_sound"] = request.generate_audio
    fields.update(clean_metadata(request.metadata))
    fields.update(clean_metadata(pinned))
    if has_file:
        # the file part is the input_reference; a text field of the same name would clash with it
        fields.pop("input_reference", None)
    return fields


def form_pairs(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flat text fields: booleans as true/false, objects and lists as JSON text."""
    pairs = []
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Mapping | list | tuple):
            text = orjson.dumps(value).decode()
        else:
            text = str(value)
        pairs.append((str(name), text))
    return pairs


def duration(fields: Mapping[str, Any]) -> str:
    """Whole seconds the job will run: `num_frames / fps` when frames were sent, else `seconds`."""
    frames = _positive(fields.get("num_frames"))
    if frames is None:
        return str(fields["seconds"])
    fps = _positive(fields.get("fps")) or DEFAULT_FPS
    return str(max(1, round(frames / fps)))


def frame_size(fields: Mapping[str, Any]) -> str:
    """`width` and `height` override `size` on the server."""
    width, height = _positive(fields.get("width")), _positive(fields.get("height"))
    if width and height:
        return f"{int(width)}x{int(height)}"
    return str(fields["size"])


def _positive(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def is_model_mismatch(status: int, body: Any) -> bool:
    return status == 400 and "model mismatch" in native_error(body).message.lower()


def vllm_classify(
    status: int, body: Any, headers: Mapping[str, str], phase: Phase, detail: str
) -> ProviderError:
    """The page's classification table, on top of the Videos API's."""
    native = native_error(body)
    if status == 503 and "not initialized" in native.message.lower():
        # the server is still loading its model: nothing was created, come back later
        return RateLimited(native.message, detail=detail)
    if status == 404 and phase == "poll":
        return TaskNotFound(
            "the vLLM-Omni server no longer knows this job "
            "(it was restarted, or the job was deleted there)",
            detail=detail,
        )
    return classify(status, body, headers, phase, detail)
