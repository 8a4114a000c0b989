"""OpenRouter answers -> relay terms, as pure functions (spec/providers/openrouter.md, "Status
table" and "Error classification"): job objects to Updates, error envelopes to the error tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from relay.domain import Status
from relay.providers.base import TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    Unavailable,
    native_text,
)
from relay.providers.normalize import moderation_words, retry_after

Phase = Literal["create", "poll", "content"]

RUNNING: Mapping[str, Status] = {"pending": "queued", "in_progress": "in_progress"}
ENDED = {"failed": "generation_failed", "cancelled": "cancelled", "expired": "task_expired"}
ENDED_TEXT = {
    "failed": "the upstream gave no reason",
    "cancelled": "the job was cancelled upstream",
    "expired": "the job exceeded its time to live",
}
MODERATION_WORDS = ("content policy", "moderation", "safety", "sensitive", "flagged", "violat")
KEY_WORDS = ("key", "permission", "unauthori", "authenticat")


# --- job objects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """Where a completed job's file may be fetched besides `/content`."""

    unsigned_urls: tuple[str, ...]
    urls: tuple[str, ...]  # unconfirmed: pre-signed storage URLs, fetched without auth

    @property
    def empty(self) -> bool:
        return not self.unsigned_urls and not self.urls


def _urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(u for u in value if isinstance(u, str) and u.startswith(("https://", "http://")))


def result(job: Mapping[str, Any]) -> Result:
    return Result(_urls(job.get("unsigned_urls")), _urls(job.get("urls")))


def job_update(job: Mapping[str, Any]) -> Update:
    """One job object (create or poll answer) as an Update. A completed job without any URL is
    left to the adapter, which asks `/content` before believing it (status None here)."""
    word = job.get("status")
    state = _state(job)
    if isinstance(word, str) and word in RUNNING:
        status = RUNNING[word]
        return Update(status=status, progress=0 if status == "queued" else None, state=state)
    if word == "completed":
        found = result(job)
        if found.empty:
            return Update(status=None, state=state)
        return Update(
            status="completed",
            progress=100,
            state={
                **state,
                "unsigned_urls": list(found.unsigned_urls),
                "urls": list(found.urls),
            },
        )
    if isinstance(word, str) and word in ENDED:
        return Update(status="failed", error=job_error(word, job.get("error")), state=state)
    return Update(status=None, unknown_status=str(word), state=state)


def _state(job: Mapping[str, Any]) -> dict[str, Any]:
    generation = job.get("generation_id")
    return {"generation_id": generation} if isinstance(generation, str) and generation else {}


def job_error(word: str, error: Any) -> TaskError:
    """`{"code": <normalised>, "message": "<status>: <error>"}`; a failure's words may name
    moderation."""
    text = native_text(error) or ENDED_TEXT[word]
    code = ENDED[word]
    if word == "failed" and isinstance(error, str) and moderation_words(error, MODERATION_WORDS):
        code = "moderation_blocked"
    return TaskError(code, f"{word}: {text}")


def is_completed_without_urls(job: Mapping[str, Any]) -> bool:
    return job.get("status") == "completed" and result(job).empty


def no_file(status: int) -> TaskError:
    """A completed job that named no file, and whose `/content` did not answer with a video."""
    return TaskError(
        "generation_failed", f"completed: the job named no file (content answered HTTP {status})"
    )


def strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Native:
    message: str = ""
    metadata: Mapping[str, Any] | None = None


def native_error(body: Any) -> Native:
    """`{"error": {"code", "message", "metadata"}, "user_id"}`; the user id is never shown."""
    inner = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(inner, str):
        return Native(inner)
    if not isinstance(inner, Mapping):
        return Native()
    message = inner.get("message")
    metadata = inner.get("metadata")
    return Native(
        message if isinstance(message, str) else "",
        metadata if isinstance(metadata, Mapping) else None,
    )


def classify(
    status: int, body: Any, headers: Mapping[str, str], phase: Phase, detail: str
) -> ProviderError:
    """An error answer as the error tree (the page's classification table). The HTTP status is
    the class: OpenRouter's `error.code` always equals it."""
    native = native_error(body)
    text = native_text(native.message) or f"HTTP {status}"
    creating = phase == "create"
    if status == 401:
        return AuthFailed(f"the upstream refused the credentials: {text}", detail=detail)
    if status == 402:
        return QuotaExceeded(f"the upstream account cannot pay for this: {text}", detail=detail)
    if status == 403:
        if native.metadata is not None and "reasons" in native.metadata:
            return Rejected(text, moderation=True, detail=detail)
        if moderation_words(native.message, KEY_WORDS):
            return AuthFailed(f"the upstream refused the credentials: {text}", detail=detail)
        return Rejected(text, detail=detail)  # a guardrail on the request's parameters
    if status == 429 or (status == 503 and creating):
        # a 503 on create: no provider meets the routing constraints now; nothing was made
        return RateLimited(
            f"the upstream is rate limiting: {text}",
            retry_after=retry_after(headers),
            detail=detail,
        )
    if status == 404:
        if creating:
            return Rejected(text, param="model", detail=detail)  # an unknown model
        return TaskNotFound(f"the upstream no longer has this job: {text}", detail=detail)
    if status == 408 or status >= 500 or status < 400:
        # a timeout or 5xx on create may still have made a billed job: never resubmitted
        return Unavailable(f"the upstream failed: {text}", maybe_created=creating, detail=detail)
    return Rejected(text, detail=detail)
