"""What the gateways and their backing providers are known to say (spec/providers/compat-relay.md):
the status synonyms, where a result URL may be, the backing providers' moderation and quota
signals, and how long a result lives when the gateway does not say.

The gateway hides which provider runs a job, so these tables hold every backend's words at once;
sizes and durations are OpenAI's (relay/providers/openai/models.py), and the gateway checks its
own limits per model.
"""

from __future__ import annotations

from collections.abc import Mapping

from relay.domain import Status

STATUS_WORDS: Mapping[Status, tuple[str, ...]] = {
    "queued": (
        "queued",
        "pending",
        "submitted",
        "not_start",
        "preparing",
        "created",
        "starting",
        "notstarted",
    ),
    "in_progress": ("in_progress", "processing", "running", "generating"),
    "completed": ("completed", "complete", "success", "succeeded", "finished"),
    "failed": ("failed", "failure", "fail", "error", "cancelled", "canceled", "expired"),
}
STATUSES: Mapping[str, Status] = {w: s for s, words in STATUS_WORDS.items() for w in words}
KEEP_WORDS = frozenset({"unknown", ""})  # the gateway has not polled its backend yet
ENDED_CODES = {"cancelled": "cancelled", "canceled": "cancelled", "expired": "task_expired"}

RESULT_PATHS = (
    ("metadata", "url"),
    ("video_url",),
    ("url",),
    ("output", "video_url"),
    ("data", "url"),
)
DEFAULT_TTL_S = 3600.0  # no expires_at from the gateway: assume 1 h

# The backing providers' moderation signals (DashScope, MiniMax 1026/1027, Jimeng, Kling, ...).
MODERATION_WORDS = (
    "sensitive",
    "datainspectionfailed",
    "risk not pass",
    "moderation",
    "content policy",
    "content_policy",
    "inappropriate",
    "敏感",
    "违规",
)
MODERATION_CODES = frozenset({"1026", "1027"})
QUOTA_WORDS = ("quota", "balance", "额度", "余额")
