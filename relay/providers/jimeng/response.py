"""Jimeng answers -> relay terms: the two envelopes, the task states, the error tree (pure).

Two envelopes come back. The Volcengine gateway answers auth and routing failures with
`{"ResponseMetadata": {..., "Error": {CodeN, Code, Message}}}`; the service itself answers
`{code, message, data, request_id, status, time_elapsed}`, where `code` 10000 is success. A task
that failed also reads `data.status: "done"`, so the outer code decides, whatever the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.providers.base import TaskError, Update
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    native_text,
)
from relay.providers.http import Reply
from relay.providers.normalize import created_id, error_of, explain, moderation_words, retry_after

SUCCESS = 10000
RESULT_TTL_S = 3600.0  # video_url is signed for one hour
RECORD_TTL_S = 12 * 3600.0  # then get-result reads not_found
SERVER_ERRORS_BEFORE_FAIL = 5  # internal errors in a row on get-result that fail the task

GATEWAY_AUTH = frozenset({100003, 100005, 100009, 100010, 100012, 100013})
GATEWAY_AUTH_NAMES = frozenset(
    {
        "MissingAuthenticationToken",
        "MissingSignature",
        "InvalidAccessKey",
        "SignatureDoesNotMatch",
        "LackPolicy",
        "AccessDenied",
    }
)
ACCESS_DENIED = 50400  # a key without Jimeng permission
RATE_CODES = frozenset({50429, 50430})
POLICY_CODES = frozenset({50411, 50412, 50413, 50511, 50512, 50516, 50517, 50518, 50519})
SERVER_CODES = frozenset({50500, 50501, 50520, 50521, 50522})
COUNTED_CODES = frozenset({50500, 50501})  # on get-result with no data.status: TransientError
MODERATION_WORDS = ("risk not pass", "copyright")


# --- reading the envelopes -------------------------------------------------------------------


def gateway_error(body: Any) -> tuple[int | None, str, str] | None:
    """(CodeN, Code, Message) of a gateway `ResponseMetadata.Error`, or None."""
    meta = body.get("ResponseMetadata") if isinstance(body, Mapping) else None
    error = meta.get("Error") if isinstance(meta, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    number = error.get("CodeN")
    code, message = error.get("Code"), error.get("Message")
    return (
        number if _int(number) else None,
        code if isinstance(code, str) else "",
        message if isinstance(message, str) else "",
    )


def business(body: Any) -> tuple[int, str, Any] | None:
    """(code, message, data) of the service's envelope, or None when the body is not one."""
    if not isinstance(body, Mapping) or not _int(body.get("code")):
        return None
    message = body.get("message")
    return body["code"], message if isinstance(message, str) else "", body.get("data")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- errors ---------------------------------------------------------------------------------


def classify(reply: Reply, *, submitting: bool) -> ProviderError:
    """The exception an answer stands for: gateway code, then business code, then HTTP status."""
    status, body = reply.status, reply.json()
    detail = f"HTTP {status}: {reply.text()}"
    # a gateway timeout may hide a job that was created all the same
    maybe = submitting and status == 504
    gateway = gateway_error(body)
    if gateway is not None:
        number, code, message = gateway
        text = f"{native_text(code, 64) or number}: {native_text(message)}"
        if number in GATEWAY_AUTH or code in GATEWAY_AUTH_NAMES:
            return AuthFailed(f"the upstream refused the credentials ({text})", detail=detail)
        if number == 100006 or code == "InvalidTimestamp":
            return Rejected(f"{text} (check the relay host's clock)", detail=detail)
        if status >= 500:
            return Unavailable(f"the upstream failed ({text})", maybe_created=maybe, detail=detail)
        return Rejected(text, detail=detail)
    found = business(body)
    if found is not None:
        number, text, _ = found
        return business_error(number, text, status, reply.headers, detail, maybe)
    if status in (401, 403):
        return AuthFailed(f"the upstream refused the credentials (HTTP {status})", detail=detail)
    if status == 429:
        return RateLimited(
            "the upstream is rate limiting (HTTP 429)",
            retry_after=retry_after(reply.headers),
            detail=detail,
        )
    if 400 <= status < 500:
        return Rejected(f"the upstream refused the request (HTTP {status})", detail=detail)
    # a 5xx page, or an unreadable 200: nothing says whether a job exists
    return Unavailable(
        f"the upstream answered HTTP {status}",
        maybe_created=submitting and (status == 504 or status < 400),
        detail=detail,
    )


def business_error(
    code: int,
    message: str,
    status: int,
    headers: Mapping[str, str],
    detail: str,
    maybe_created: bool = False,
) -> ProviderError:
    text = f"{code}: {native_text(message)}"
    kind = code_class(code, status, message)
    return error_of(
        kind,
        explain(kind, text),
        detail=detail,
        retry_after=retry_after(headers),
        maybe_created=maybe_created and kind == "upstream_error",
    )


def code_class(code: int, status: int, message: str = "") -> str:
    """The normalized error code of a business code; unlisted ones go by the HTTP status."""
    if code == ACCESS_DENIED:
        return "upstream_auth_failed"
    if code in RATE_CODES:
        return "rate_limit_exceeded"
    if code in POLICY_CODES:
        return "moderation_blocked"
    if code in SERVER_CODES:
        return "upstream_error"
    if moderation_words(message, MODERATION_WORDS):  # a risk code this table does not list yet
        return "moderation_blocked"
    if status >= 500:
        return "upstream_error"
    return "invalid_request"


# --- submit ---------------------------------------------------------------------------------


def parse_submit(reply: Reply) -> str:
    """The task id of an accepted submit; anything else raised as the error it stands for."""
    found = business(reply.json())
    if found is None or found[0] != SUCCESS:
        raise classify(reply, submitting=True)
    data = found[2]
    task_id = data.get("task_id") if isinstance(data, Mapping) else None
    return created_id(task_id, f"HTTP {reply.status}: {reply.text()}")


# --- get-result -----------------------------------------------------------------------------


def parse_result(reply: Reply, *, now: float) -> Update:
    """One get-result answer as an Update.

    Rate limits and answers that say nothing about the task are raised, leaving it as it is; an
    internal error (50500/50501 without a task status) is a TransientError, which the relay
    counts (the class's PollRules fail the task at the fifth in a row). A task the upstream does
    not know (`not_found`, `expired`) raises TaskNotFound.
    """
    found = business(reply.json())
    if found is None:
        raise classify(reply, submitting=False)
    code, message, data = found
    state = data.get("status") if isinstance(data, Mapping) else None
    if code in RATE_CODES:
        raise business_error(code, message, reply.status, reply.headers, _detail(reply))
    if code == SUCCESS:
        return _task_state(state, data if isinstance(data, Mapping) else {}, now)
    if state == "done" or code in POLICY_CODES:
        # the task ended: with data null (unconfirmed) a blocked result is still final
        kind = code_class(code, reply.status, message)
        if kind == "rate_limit_exceeded":
            kind = "upstream_error"
        return Update(status="failed", error=TaskError(kind, f"{code}: {native_text(message)}"))
    if code in COUNTED_CODES:
        raise TransientError(f"{code}: {native_text(message)}", detail=_detail(reply))
    raise business_error(code, message, reply.status, reply.headers, _detail(reply))


def _task_state(state: Any, data: Mapping[str, Any], now: float) -> Update:
    if state == "in_queue":
        return Update(status="queued", progress=0)
    if state == "generating":
        return Update(status="in_progress")
    if state == "done":
        url = data.get("video_url")
        if not isinstance(url, str) or not url:
            error = TaskError("upstream_error", f"{SUCCESS}: the task is done but has no video_url")
            return Update(status="failed", error=error)
        return Update(
            status="completed",
            progress=100,
            expires_at=now + RESULT_TTL_S,
            state={"video_url": url, "done_at": now},
        )
    if state in ("not_found", "expired"):
        raise TaskNotFound(f"{state}: the task is unknown or past its 12 h record lifetime")
    return Update(status=None, unknown_status=str(state))


def _detail(reply: Reply) -> str:
    return f"HTTP {reply.status}: {reply.text()}"
