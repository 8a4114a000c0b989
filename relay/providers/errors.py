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
    └── Unsupported         a feature this provider/model lacks (raised before any network call)

The message is safe to show a client; `detail` is for the log only.
"""

from __future__ import annotations

from relay.errors import safe_message


class ProviderError(Exception):
    code: str = "upstream_error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # for the log only (raw native body, status); may hold upstream text

    @property
    def for_log(self) -> str:
        """The detail (else the message) as a log line may hold it: URLs removed, bounded."""
        return safe_message(self.detail or self.message, limit=1000)


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


class Unsupported(ProviderError):
    code = "unsupported_feature"
