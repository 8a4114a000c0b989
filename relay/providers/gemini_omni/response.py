"""Gemini Omni's answers as pure functions (spec/providers/gemini-omni.md): the two error
envelopes (the Interactions API's string codes, the Google front end's `google.rpc.Status`,
sometimes in a one-element array) to the error tree, and an interaction to an Update."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from relay.providers.base import TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    native_text,
)
from relay.providers.inline import INLINE_MAX_BYTES, encoded_size, too_large
from relay.providers.normalize import from_rfc3339, retry_after
from relay.providers.veo.response import google_error

FILE_TTL_S = 2 * 24 * 3600  # delivered files are deleted about 48 h after creation
SAFETY_TOKENS = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"}
_BLOCKED = re.compile(r"\bblocked\b.*\b(safety|policy)\b", re.IGNORECASE)
_BILLING = re.compile(r"\b(billing|plan|spend(ing)?|prepa(id|yment)|credits?)\b", re.IGNORECASE)
_GONE = re.compile(r"invalid interaction name", re.IGNORECASE)
_UNAVAILABLE = {"internal", "unavailable", "deadline_exceeded", "INTERNAL", "UNAVAILABLE"}
_PARAMS = (("duration", "seconds"), ("image", "input_reference"), ("resolution", "size"),
           ("aspect", "size"), ("model", "model"))  # fmt: skip


def _envelope(body: Any) -> Mapping[str, Any] | None:
    """The `error` object, the front end's one-element array unwrapped."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else None


def classify(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    raw: str = "",
    *,
    on_interaction: bool,
    remix: bool = False,
) -> ProviderError:
    """The exception for an error answer. `on_interaction`: the call named an interaction (a
    poll, a read, a delete), so "Invalid interaction name" or a 404 means it is gone, and any
    other 400 is a transient auth-layer hiccup seen on running jobs; `remix`: a 400 naming the
    previous interaction means the source is gone."""
    error = _envelope(body) or {}
    front = google_error(error, status)  # numeric code, `status` name, details
    code = error.get("code")
    native = code if isinstance(code, str) and code else front.name or f"HTTP {status}"
    message = front.message
    label = f"{native_text(native, 64) or 'error'}: {native_text(message) or 'no message'}"
    detail = f"HTTP {status}: {raw[:500]}" if raw else f"HTTP {status}"
    if (
        any(r.startswith("API_KEY_") for r in front.reasons)
        or status in (401, 403)
        or front.name in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    ):
        return AuthFailed(label, detail=detail)  # a bad key is a 400, not a 401
    if status == 429 or front.name == "RESOURCE_EXHAUSTED":
        if front.retry_delay is not None:
            return RateLimited(label, retry_after=front.retry_delay, detail=detail)
        if _BILLING.search(message):
            return QuotaExceeded(label, detail=detail)
        return RateLimited(label, retry_after=retry_after(headers), detail=detail)
    if on_interaction and (status == 404 or _GONE.search(message)):
        return TaskNotFound(label, detail=detail)
    if remix and status == 400 and re.search(r"interaction", message, re.IGNORECASE):
        return TaskNotFound(label, detail=detail)
    if status >= 500 or native in _UNAVAILABLE:
        # a 5xx on the POST may still have made (and billed) the interaction
        return Unavailable(label, maybe_created=not on_interaction, detail=detail)
    if status == 404:
        return Rejected(label, param="model", detail=detail)
    if safety(message, native, front.name):
        return Rejected(label, moderation=True, detail=detail)
    if on_interaction:
        return TransientError(label, detail=detail)
    return Rejected(label, param=_param(message), detail=detail)


def safety(message: str, *codes: Any) -> bool:
    """A safety block: the message says "blocked ... safety/policy", or an enum-like field is one
    of the safety words as a whole token (never a substring: API_KEY_SERVICE_BLOCKED)."""
    return bool(_BLOCKED.search(message)) or any(
        isinstance(c, str) and c.upper() in SAFETY_TOKENS for c in codes
    )


def _param(message: str) -> str | None:
    lowered = message.lower()
    return next((param for word, param in _PARAMS if word in lowered), None)


def interaction_id(body: Any, raw: str = "") -> str:
    """The `id` of a just-created interaction (opaque and long: stored exactly)."""
    found = body.get("id") if isinstance(body, Mapping) else None
    if _envelope(body) is not None and not found:
        raise classify(200, {}, body, raw, on_interaction=False)
    if not isinstance(found, str) or not found or len(found) > 1024:
        raise Unavailable(
            "the upstream accepted the job without a usable interaction id",
            maybe_created=True,
            detail=f"HTTP 200: {raw[:500]}",
        )
    return found


# --- interactions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Video:
    uri: str | None
    data: str | None
    mime: str


def find_video(body: Mapping[str, Any]) -> Video | None:
    """The last video block of the last `model_output` step (the SDK's `output_video` only when
    it happens to be on the wire)."""
    steps = body.get("steps")
    outputs = [s for s in steps if isinstance(s, Mapping) and s.get("type") == "model_output"] if (
        isinstance(steps, list)) else []  # fmt: skip
    blocks: list[Any] = []
    if outputs and isinstance(outputs[-1].get("content"), list):
        blocks = outputs[-1]["content"]
    if not blocks and isinstance(body.get("output_video"), Mapping):
        blocks = [{"type": "video", **body["output_video"]}]
    for block in reversed(blocks):
        if not isinstance(block, Mapping):
            continue
        mime = block.get("mime_type")
        if block.get("type") != "video" and not (
            isinstance(mime, str) and mime.startswith("video/")
        ):
            continue
        uri, data = block.get("uri"), block.get("data")
        if (isinstance(uri, str) and uri) or (isinstance(data, str) and data):
            return Video(
                uri if isinstance(uri, str) and uri else None,
                data if isinstance(data, str) and data else None,
                mime if isinstance(mime, str) and mime.startswith("video/") else "video/mp4",
            )
    return None


def file_id(uri: str, base_url: str) -> str | None:
    """`{id}` of a Files URI in any of its three shapes, or None when it is not on the API's
    host (the key must never go elsewhere)."""
    on_host = bool(base_url) and uri.startswith(base_url.rstrip("/") + "/")
    if not uri.startswith("files/") and not on_host:
        return None
    tail = uri.rsplit("files/", 1)[-1]
    found = re.split(r"[:?#]", tail, maxsplit=1)[0]
    found = unquote(found)
    return found if re.fullmatch(r"[A-Za-z0-9._-]{1,200}", found) else None


def video_tokens(body: Mapping[str, Any]) -> int:
    usage = body.get("usage")
    listed = usage.get("output_tokens_by_modality") if isinstance(usage, Mapping) else None
    total = 0
    for item in listed if isinstance(listed, list) else ():
        if isinstance(item, Mapping) and str(item.get("modality", "")).lower() == "video":
            tokens = item.get("tokens")
            total += tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
    return total


def refusal_text(body: Mapping[str, Any]) -> str:
    steps = body.get("steps")
    for step in reversed(steps if isinstance(steps, list) else []):
        if not isinstance(step, Mapping) or step.get("type") != "model_output":
            continue
        for block in step.get("content") or []:
            text = native_text(block.get("text")) if isinstance(block, Mapping) else ""
            if text and block.get("type") == "text":
                return text
    return "the upstream made no video (a safety refusal)"


def failure(body: Mapping[str, Any]) -> TaskError:
    """A failed interaction's reason, from wherever it sits: top-level `error`, `errors[]`, a
    step's `error` (google.rpc.Status) or `finish_reason`."""
    found: list[tuple[Any, str]] = []  # (code, message)
    top = body.get("error")
    if isinstance(top, Mapping):
        found.append((top.get("code"), str(top.get("message") or "")))
    listed = body.get("errors")
    for item in listed if isinstance(listed, list) else ():
        if isinstance(item, Mapping):
            found.append((item.get("code"), str(item.get("message") or "")))
    steps = body.get("steps")
    for step in steps if isinstance(steps, list) else ():
        error = step.get("error") if isinstance(step, Mapping) else None
        if isinstance(error, Mapping):
            found.append((error.get("code"), str(error.get("message") or "")))
    reasons = [body.get("finish_reason")] + [
        s.get("finish_reason") for s in (steps if isinstance(steps, list) else [])
        if isinstance(s, Mapping)
    ]  # fmt: skip
    reasons = [r for r in reasons if isinstance(r, str) and r]
    if not found and not reasons:
        return TaskError("generation_failed", "failed: the upstream gave no reason")
    codes = [c for c, _ in found] + reasons
    first_code, first_message = found[0] if found else (reasons[0], "")
    readable = isinstance(first_code, str | int) and not isinstance(first_code, bool)
    shown = (native_text(str(first_code), 64) if readable else "") or "failed"
    message = f"{shown}: {native_text(first_message) or 'the upstream gave no message'}"
    if any(safety(m, c) for c, m in found) or safety("", *reasons):
        return TaskError("moderation_blocked", message)
    if any(c in (13, 14) or (isinstance(c, str) and c in _UNAVAILABLE) for c in codes):
        return TaskError("upstream_error", message)
    return TaskError("generation_failed", message)


def update(body: Any, *, now: float, base_url: str, raw: str = "") -> Update:
    """One poll's interaction. A URI result is `completed` here; the adapter still waits for
    the file to be ACTIVE before it says so."""
    if not isinstance(body, Mapping):
        raise Unavailable("the upstream's interaction answer was unreadable", detail=raw[:500])
    status = body.get("status")
    if _envelope(body) is not None and status is None:
        raise classify(200, {}, body, raw, on_interaction=True)
    ended = from_rfc3339(body.get("updated")) or now
    if status == "queued":
        return Update(status="queued", progress=0)
    if status == "in_progress":
        return Update(status="in_progress")
    if status == "completed":
        return _completed(body, ended, base_url)
    if status == "failed":
        return Update(status="failed", error=failure(body), completed_at=ended)
    code, message = {
        "cancelled": ("cancelled", "the interaction was cancelled"),
        "incomplete": ("generation_failed", "the interaction ended incomplete"),
        "budget_exceeded": ("generation_failed", "the interaction ran over its budget"),
        "requires_action": ("invalid_request", "the interaction asks for a tool result"),
    }.get(str(status), (None, None))
    if (
        code is None
        and isinstance(status, str)
        and re.search(r"fail|error|cancel|expire", status, re.IGNORECASE)
    ):
        code, message = "generation_failed", "the interaction ended"
    if code is not None:
        shown = f"{native_text(str(status), 40)}: {message}"
        return Update(status="failed", error=TaskError(code, shown), completed_at=ended)
    return Update(status=None, unknown_status=str(status)[:40])


def _completed(body: Mapping[str, Any], ended: float, base_url: str) -> Update:
    video = find_video(body)
    if video is None:
        if video_tokens(body) > 0:  # billed video the parser cannot see: the shape changed
            error = TaskError("generation_failed", "completed: video unparsed")
            return Update(status="failed", error=error, completed_at=ended,
                          state={"unparsed": True})  # fmt: skip
        error = TaskError("moderation_blocked", refusal_text(body))
        return Update(status="failed", error=error, completed_at=ended)
    if video.uri is not None:
        found = file_id(video.uri, base_url)
        if found is None:
            error = TaskError("generation_failed", "the upstream named its video on another host")
            return Update(status="failed", error=error, completed_at=ended)
        state: dict[str, Any] = {"video_file": found, "inline_video": False}
    elif video.data is not None and encoded_size(video.data) > INLINE_MAX_BYTES:
        error = TaskError("generation_failed", too_large("gemini-omni"))
        return Update(status="failed", error=error, completed_at=ended)
    else:
        # only a flag: content() reads the interaction again for the bytes
        state = {"video_file": None, "inline_video": True}
    return Update(
        status="completed",
        progress=100,
        completed_at=ended,
        expires_at=ended + FILE_TTL_S,
        state=state,
    )
