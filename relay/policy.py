"""The one policy table: which provider error, in which phase, does what to the channel, the task
and the client. Adapters only classify (relay/providers/errors.py); the use cases and workers ask
`decide(error, phase)` and do what the answer says.

    error               submit                       poll                      content / copy
    AuthFailed          out (creds), next channel    out (creds), count: 5     out, 502 / retry
    QuotaExceeded       out (quota), next channel    out (quota), reschedule   502 / retry
    RateLimited         pause, next channel          reschedule >= Retry-After 502 / retry
    Unavailable         failure, next channel        reschedule                502 / retry
      maybe_created     failure, fail the task (200)
    TransientError      failure, next channel        count: adapter's limit    502 / retry
    Rejected            alive, 400 to the client     reschedule                502 / retry
    Unsupported         alive, 400 unsupported       reschedule                502 / retry
    TaskNotFound        alive, next channel          fail task_expired         404 / drop the copy
                                                     (after the adapter's grace window)
    NotReady            failure, next channel        reschedule                404 video_not_ready
    VariantUnavailable  failure, next channel        reschedule                404 / drop the copy
    other               failure, next channel        reschedule                502 / retry

Delete is best effort in every case: logged, and the local record goes.

Cancel (POST /v1/videos/{id}/cancel; the call itself succeeding finishes the task as failed
with `cancelled`):

    error               cancel
    CancelRefused       settle: poll once and take the upstream's real outcome; a job still
                        running runs on (400 unsupported_feature)
    TaskNotFound        settle: the upstream no longer has the job, so nothing runs on
    Unsupported         alive, 400 unsupported_feature (the task runs on)
    AuthFailed          out (creds), 502 (the task runs on)
    other               502 (the task runs on; a retry is safe, nothing changed upstream)

Channel effects: `failure` counts toward the breaker (3 in a row open it), `pause` honours the
upstream's Retry-After, `out` takes the channel out with a probe every 15 minutes, `alive` closes
the breaker (the upstream answered). The pauses themselves are in routing.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from relay.providers.errors import (
    AuthFailed,
    CancelRefused,
    NotReady,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    TaskNotFound,
    TransientError,
    Unavailable,
    Unsupported,
    VariantUnavailable,
)

AUTH_FAILURES_BEFORE_FAIL = 5  # polls in a row refused: the task fails, the account is broken


class Phase(enum.Enum):
    SUBMIT = "submit"
    POLL = "poll"
    CONTENT = "content"
    COPY = "copy"
    DELETE = "delete"
    CANCEL = "cancel"


class ChannelEffect(enum.Enum):
    NONE = "none"
    ALIVE = "alive"  # the upstream answered: the breaker closes
    FAILURE = "failure"  # counts toward the breaker
    PAUSE = "pause"  # a rate limit: pause for Retry-After
    REFUSED = "refused"  # credentials refused: out, probed every 15 min
    QUOTA = "quota"  # quota exhausted: out, probed every 15 min


class TaskEffect(enum.Enum):
    # submit
    NEXT_CHANNEL = "next_channel"  # nothing was created: try the next channel
    REJECT = "reject"  # the request itself was refused: the client gets a 400
    FAIL_UNCONFIRMED = "fail_unconfirmed"  # the job may exist: fail the task, never retry
    # poll
    RESCHEDULE = "reschedule"  # poll again later (never fails the task on its own)
    COUNT = "count"  # poll again, counting; the task fails at the limit
    EXPIRE = "expire"  # the upstream has no such task (after the adapter's grace window)
    # content, copy, delete
    KEEP = "keep"  # the task stays as it is (a copy is retried later)
    DROP = "drop"  # a copy can never succeed: drop the copy job
    # cancel
    SETTLE = "settle"  # the upstream would not stop it: poll once, take the real outcome


@dataclass(frozen=True)
class Decision:
    channel: ChannelEffect
    task: TaskEffect
    code: str | None = None  # the task's error.code when it fails, or the client's error code
    status: int | None = None  # the client's HTTP status (submit: reject; content)
    limit: int | None = None  # COUNT: errors in a row that fail the task (None: the adapter's)


def _kind(error: ProviderError) -> str:
    if isinstance(error, Unavailable) and not isinstance(error, TransientError):
        return "unavailable_maybe_created" if error.maybe_created else "unavailable"
    for cls in _CLASSES:
        if isinstance(error, cls):
            return _CLASSES[cls]
    return "other"


_CLASSES: dict[type[ProviderError], str] = {
    AuthFailed: "auth",
    QuotaExceeded: "quota",
    RateLimited: "rate_limited",
    TransientError: "transient",
    Rejected: "rejected",
    Unsupported: "unsupported",
    TaskNotFound: "not_found",
    NotReady: "not_ready",
    VariantUnavailable: "variant_unavailable",
    CancelRefused: "cancel_refused",
}

_C, _T = ChannelEffect, TaskEffect
_NEXT_AFTER_FAILURE = Decision(_C.FAILURE, _T.NEXT_CHANNEL)
_UPSTREAM_502 = Decision(_C.NONE, _T.KEEP, "upstream_error", 502)

TABLE: dict[tuple[str, Phase], Decision] = {
    # submit
    ("auth", Phase.SUBMIT): Decision(_C.REFUSED, _T.NEXT_CHANNEL),
    ("quota", Phase.SUBMIT): Decision(_C.QUOTA, _T.NEXT_CHANNEL),
    ("rate_limited", Phase.SUBMIT): Decision(_C.PAUSE, _T.NEXT_CHANNEL),
    ("unavailable", Phase.SUBMIT): _NEXT_AFTER_FAILURE,
    ("unavailable_maybe_created", Phase.SUBMIT): Decision(
        _C.FAILURE, _T.FAIL_UNCONFIRMED, "upstream_error"
    ),
    ("transient", Phase.SUBMIT): _NEXT_AFTER_FAILURE,
    ("rejected", Phase.SUBMIT): Decision(_C.ALIVE, _T.REJECT, "invalid_parameter", 400),
    ("unsupported", Phase.SUBMIT): Decision(_C.ALIVE, _T.REJECT, "unsupported_feature", 400),
    ("not_found", Phase.SUBMIT): Decision(_C.ALIVE, _T.NEXT_CHANNEL),  # a remix's source is gone
    ("not_ready", Phase.SUBMIT): _NEXT_AFTER_FAILURE,
    ("variant_unavailable", Phase.SUBMIT): _NEXT_AFTER_FAILURE,
    ("other", Phase.SUBMIT): _NEXT_AFTER_FAILURE,
    # poll
    ("auth", Phase.POLL): Decision(
        _C.REFUSED, _T.COUNT, "upstream_auth_failed", limit=AUTH_FAILURES_BEFORE_FAIL
    ),
    ("quota", Phase.POLL): Decision(_C.QUOTA, _T.RESCHEDULE),
    ("rate_limited", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("unavailable", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("unavailable_maybe_created", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("transient", Phase.POLL): Decision(_C.NONE, _T.COUNT, "upstream_error"),
    ("rejected", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("unsupported", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("not_found", Phase.POLL): Decision(_C.NONE, _T.EXPIRE, "task_expired"),
    ("not_ready", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("variant_unavailable", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    ("other", Phase.POLL): Decision(_C.NONE, _T.RESCHEDULE),
    # content: what the client downloading gets
    ("auth", Phase.CONTENT): Decision(_C.REFUSED, _T.KEEP, "upstream_error", 502),
    ("not_found", Phase.CONTENT): Decision(_C.NONE, _T.KEEP, "not_found", 404),
    ("not_ready", Phase.CONTENT): Decision(_C.NONE, _T.KEEP, "video_not_ready", 404),
    ("variant_unavailable", Phase.CONTENT): Decision(
        _C.NONE, _T.KEEP, "variant_not_available", 404
    ),
    # copy: a stored copy is retried later, or dropped when it can never succeed
    ("not_found", Phase.COPY): Decision(_C.NONE, _T.DROP),
    ("variant_unavailable", Phase.COPY): Decision(_C.NONE, _T.DROP),
    # cancel: what the client asking to stop a running task gets
    ("cancel_refused", Phase.CANCEL): Decision(_C.ALIVE, _T.SETTLE, "unsupported_feature", 400),
    ("not_found", Phase.CANCEL): Decision(_C.ALIVE, _T.SETTLE),
    ("unsupported", Phase.CANCEL): Decision(_C.ALIVE, _T.KEEP, "unsupported_feature", 400),
    ("auth", Phase.CANCEL): Decision(_C.REFUSED, _T.KEEP, "upstream_error", 502),
}


def decide(error: ProviderError, phase: Phase) -> Decision:
    kind = _kind(error)
    if kind == "cancel_refused" and phase is not Phase.CANCEL:
        kind = "other"  # only a cancel is refused this way; anywhere else it is a stray answer
    found = TABLE.get((kind, phase))
    if found is not None:
        if kind == "rejected" and phase is Phase.SUBMIT and getattr(error, "moderation", False):
            return Decision(_C.ALIVE, _T.REJECT, "content_policy_violation", 400)
        return found
    if phase in (Phase.CONTENT, Phase.CANCEL):
        return _UPSTREAM_502
    return Decision(_C.NONE, _T.KEEP)  # copy: retry later; delete: logged, the record goes
