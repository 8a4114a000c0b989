"""The error tree adapters raise (re-exported by relay.providers.base, where it is drawn).

It lives outside the providers package so outbound HTTP (relay.upstream) can raise it without
importing every adapter.
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
