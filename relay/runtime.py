"""What the use cases share: the runtime a config reload swaps in one piece, and the adapter's
view of a stored task."""

from __future__ import annotations

from dataclasses import dataclass

from relay.auth import Authenticator, RateLimiter
from relay.channels import ChannelTable
from relay.config import Config
from relay.domain import TaskRef
from relay.store import TaskRow


@dataclass
class Runtime:
    """What a config reload replaces as one piece: the config, channels, keys and limits."""

    config: Config
    channels: ChannelTable
    auth: Authenticator
    limiter: RateLimiter


def task_ref(row: TaskRow) -> TaskRef:
    assert row.upstream_id is not None
    return TaskRef(
        id=row.id,
        upstream_id=row.upstream_id,
        upstream_model=row.upstream_model,
        state=row.upstream_state,
        submitted_at=row.submitted_at or float(row.created_at),
        seconds=row.seconds,
        size=row.size,
        status=row.status,  # type: ignore[arg-type]
    )
