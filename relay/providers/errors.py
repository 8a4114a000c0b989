"""The error tree adapters raise. An adapter classifies; what each error then does to the
channel, the task and the client is decided in one place, relay/policy.py.

    ProviderError
    ├── AuthFailed          credentials refused                 -> upstream_auth_failed
    ├── QuotaExceeded       balance / plan exhausted            -> insufficient_quota
    ├── RateLimited         slow down (retry_after seconds)     -> rate_limit_exceeded
    ├── Unavailable         5xx, timeout, transport failure     -> upstream_error
    │   │                   (maybe_created: the upstream may have created the job: a timeout
    │   │                   after sending, a 504, or a 5xx where the provider's page says so)
    │   └── TransientError  a transient error code in an answer about one task (not a
    │                       transport failure): counted, and the adapter's PollRules may fail
    │                       the task after N in a row
    ├── Rejected            the upstream refused the request -> invalid_request, moderation_blocked
    ├── TaskNotFound        upstream id unknown or expired      -> task_expired
    ├── NotReady            content asked for before it exists
    ├── VariantUnavailable  the provider does not produce this variant
    ├── CancelRefused       the upstream will not stop the job in the state it is in (running
    │                       where only a queued job stops, or already finished)
    └── Unsupported         a feature this provider/model lacks (raised before any network call)

The message is what a client reads: it is cleaned when the error is made (relay/scrub.py: no
markup, traceback, path, URL or secret; at most 300 characters), so every path that shows it is
safe. `detail` holds the raw answer for the operator: `for_log` is what INFO and WARNING lines
print (the message, the HTTP status or the transport failure's class, never the body), and
`excerpt` a scrubbed, capped look at the body for DEBUG lines.
"""

from __future__ import annotations

import re
from typing import Any

from relay.scrub import client_text, log_excerpt

NATIVE_LIMIT = 200  # an upstream's own message inside one the relay writes
_STATUS = re.compile(r"\s*(HTTP \d{3})\b")
_CLASS_NAME = re.compile(r"\s*([A-Z][A-Za-z0-9]*)\s*(?::|$)")  # ClientPayloadError


def native_text(value: Any, limit: int = NATIVE_LIMIT) -> str:
    """An upstream's own code or message, as a message the relay builds may quote it: a string
    cleaned and capped; anything else (a number, an object, null) as ""."""
    return client_text(value, limit) if isinstance(value, str) else ""


class ProviderError(Exception):
    code: str = "upstream_error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        message = client_text(message) or "the upstream gave no readable reason"
        super().__init__(message)
        self.message = message
        self.detail = detail  # for the log only (raw native body, status); may hold upstream text

    @property
    def for_log(self) -> str:
        """The message and what kind of answer it came from (`HTTP 500`, `ClientPayloadError`),
        as an INFO or WARNING line may hold them; the body itself only in `excerpt`."""
        found = _STATUS.match(self.detail or "") or _CLASS_NAME.match(self.detail or "")
        kind = found[1] if found else ""
        return f"{self.message} ({kind})" if kind and kind not in self.message else self.message

    @property
    def excerpt(self) -> str:
        """The detail for a DEBUG line: markup stripped, URLs and secrets masked, one line,
        capped ("" without one)."""
        return log_excerpt(self.detail) if self.detail else ""


class AuthFailed(ProviderError):
    code = "upstream_auth_failed"


class QuotaExceeded(ProviderError):
    code = "insufficient_quota"


class RateLimited(ProviderError):
    code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after: float | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class Unavailable(ProviderError):
    code = "upstream_error"

    def __init__(
        self, message: str, *, maybe_created: bool = False, detail: str | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.maybe_created = maybe_created


class TransientError(Unavailable):
    """A transient error code about one task (MiniMax's 1000/1001/...): the answer arrived, so it
    is not an outage, but it says nothing about the job either."""


class Rejected(ProviderError):
    code: str = "invalid_request"  # per instance: moderation_blocked when moderation is set

    def __init__(
        self,
        message: str,
        *,
        moderation: bool = False,
        param: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.moderation = moderation
        self.param = param
        if moderation:
            self.code = "moderation_blocked"


class TaskNotFound(ProviderError):
    code = "task_expired"


class NotReady(ProviderError):
    code = "video_not_ready"


class VariantUnavailable(ProviderError):
    code = "variant_not_available"


class CancelRefused(ProviderError):
    code = "unsupported_feature"


class Unsupported(ProviderError):
    code = "unsupported_feature"
