"""The one policy table: every provider error class in every phase, and what it does to the
channel, the task and the client."""

from __future__ import annotations

import pytest

from relay.policy import (
    AUTH_FAILURES_BEFORE_FAIL,
    TABLE,
    ChannelEffect,
    Decision,
    Phase,
    TaskEffect,
    decide,
)
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

C, T = ChannelEffect, TaskEffect

ERRORS: dict[str, ProviderError] = {
    "auth": AuthFailed("key refused"),
    "quota": QuotaExceeded("no balance"),
    "rate_limited": RateLimited("slow down", retry_after=7),
    "unavailable": Unavailable("503"),
    "unavailable_maybe_created": Unavailable("timeout after sending", maybe_created=True),
    "transient": TransientError("1001: timeout"),
    "rejected": Rejected("bad size", param="size"),
    "moderation": Rejected("blocked", moderation=True),
    "unsupported": Unsupported("no remix"),
    "not_found": TaskNotFound("gone"),
    "not_ready": NotReady("not yet"),
    "variant_unavailable": VariantUnavailable("no thumbnail"),
    "other": ProviderError("odd"),
    "cancel_refused": CancelRefused("only a queued task can be cancelled"),
}

SUBMIT = {
    "auth": Decision(C.REFUSED, T.NEXT_CHANNEL),
    "quota": Decision(C.QUOTA, T.NEXT_CHANNEL),
    "rate_limited": Decision(C.PAUSE, T.NEXT_CHANNEL),
    "unavailable": Decision(C.FAILURE, T.NEXT_CHANNEL),
    "unavailable_maybe_created": Decision(C.FAILURE, T.FAIL_UNCONFIRMED, "upstream_error"),
    "transient": Decision(C.FAILURE, T.NEXT_CHANNEL),
    "rejected": Decision(C.ALIVE, T.REJECT, "invalid_parameter", 400),
    "moderation": Decision(C.ALIVE, T.REJECT, "content_policy_violation", 400),
    "unsupported": Decision(C.ALIVE, T.REJECT, "unsupported_feature", 400),
    "not_found": Decision(C.ALIVE, T.NEXT_CHANNEL),
    "not_ready": Decision(C.FAILURE, T.NEXT_CHANNEL),
    "variant_unavailable": Decision(C.FAILURE, T.NEXT_CHANNEL),
    "other": Decision(C.FAILURE, T.NEXT_CHANNEL),
    "cancel_refused": Decision(C.FAILURE, T.NEXT_CHANNEL),
}

POLL = {
    "auth": Decision(C.REFUSED, T.COUNT, "upstream_auth_failed", limit=AUTH_FAILURES_BEFORE_FAIL),
    "quota": Decision(C.QUOTA, T.RESCHEDULE),
    "rate_limited": Decision(C.NONE, T.RESCHEDULE),
    "unavailable": Decision(C.NONE, T.RESCHEDULE),
    "unavailable_maybe_created": Decision(C.NONE, T.RESCHEDULE),
    "transient": Decision(C.NONE, T.COUNT, "upstream_error"),
    "rejected": Decision(C.NONE, T.RESCHEDULE),
    "moderation": Decision(C.NONE, T.RESCHEDULE),
    "unsupported": Decision(C.NONE, T.RESCHEDULE),
    "not_found": Decision(C.NONE, T.EXPIRE, "task_expired"),
    "not_ready": Decision(C.NONE, T.RESCHEDULE),
    "variant_unavailable": Decision(C.NONE, T.RESCHEDULE),
    "other": Decision(C.NONE, T.RESCHEDULE),
    "cancel_refused": Decision(C.NONE, T.RESCHEDULE),
}

_502 = Decision(C.NONE, T.KEEP, "upstream_error", 502)
CONTENT = {
    "auth": Decision(C.REFUSED, T.KEEP, "upstream_error", 502),
    "quota": _502,
    "rate_limited": _502,
    "unavailable": _502,
    "unavailable_maybe_created": _502,
    "transient": _502,
    "rejected": _502,
    "moderation": _502,
    "unsupported": _502,
    "not_found": Decision(C.NONE, T.KEEP, "not_found", 404),
    "not_ready": Decision(C.NONE, T.KEEP, "video_not_ready", 404),
    "variant_unavailable": Decision(C.NONE, T.KEEP, "variant_not_available", 404),
    "other": _502,
    "cancel_refused": _502,
}

_RETRY = Decision(C.NONE, T.KEEP)
COPY = {kind: _RETRY for kind in ERRORS} | {
    "not_found": Decision(C.NONE, T.DROP),
    "variant_unavailable": Decision(C.NONE, T.DROP),
}
DELETE = {kind: Decision(C.NONE, T.KEEP) for kind in ERRORS}

_SETTLE = Decision(C.ALIVE, T.SETTLE)
CANCEL = {kind: _502 for kind in ERRORS} | {
    "auth": Decision(C.REFUSED, T.KEEP, "upstream_error", 502),
    "unsupported": Decision(C.ALIVE, T.KEEP, "unsupported_feature", 400),
    "not_found": _SETTLE,
    "cancel_refused": Decision(C.ALIVE, T.SETTLE, "unsupported_feature", 400),
}

EXPECTED = {
    Phase.SUBMIT: SUBMIT,
    Phase.POLL: POLL,
    Phase.CONTENT: CONTENT,
    Phase.COPY: COPY,
    Phase.DELETE: DELETE,
    Phase.CANCEL: CANCEL,
}


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("kind", list(ERRORS))
def test_every_error_in_every_phase(kind: str, phase: Phase):
    assert decide(ERRORS[kind], phase) == EXPECTED[phase][kind]


def test_the_table_covers_every_phase_and_its_expectations_cover_every_error():
    assert set(EXPECTED) == set(Phase)
    for expected in EXPECTED.values():
        assert set(expected) == set(ERRORS)
    assert {phase for _, phase in TABLE} == {
        Phase.SUBMIT,
        Phase.POLL,
        Phase.CONTENT,
        Phase.COPY,
        Phase.CANCEL,
    }


def test_a_quota_error_pauses_the_channel_the_same_way_at_submit_and_poll():
    quota = ERRORS["quota"]
    assert decide(quota, Phase.SUBMIT).channel == decide(quota, Phase.POLL).channel == C.QUOTA


def test_refused_credentials_take_the_channel_out_at_submit_and_at_poll():
    auth = ERRORS["auth"]
    assert decide(auth, Phase.SUBMIT).channel == decide(auth, Phase.POLL).channel == C.REFUSED
