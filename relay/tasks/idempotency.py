"""Idempotency-Key: the same key from the same caller within 24 h returns the same task (its
current state) and creates nothing; the same key with another request is a 400. A replay compares
the normalized request, so JSON and multipart forms of one request match."""

from __future__ import annotations

from relay.domain import Principal, Task, VideoRequest
from relay.errors import InvalidRequest
from relay.tasks.context import Context

IDEMPOTENCY_TTL_S = 24 * 3600


class IdempotencyKeys:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def replay(self, who: Principal, key: str, request: VideoRequest) -> Task | None:
        """The task an earlier request with this key made, if it is still there."""
        store = self.ctx.store
        found = await store.find_idempotency_key(
            who.user, key, self.ctx.clock() - IDEMPOTENCY_TTL_S
        )
        if found is None:
            return None
        request_hash, task_id = found
        if request_hash != request.fingerprint():
            raise InvalidRequest(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        task = await store.get_task(task_id, who.user)
        if task is None:  # the task was deleted since: the key is free again
            await store.forget_idempotency_key(who.user, key)
        return task

    async def claim(self, who: Principal, key: str, request: VideoRequest, video_id: str) -> bool:
        """Bind the key to a new task; False when a concurrent request holds it already."""
        return await self.ctx.store.claim_idempotency_key(
            who.user, key, request.fingerprint(), video_id, self.ctx.clock(), IDEMPOTENCY_TTL_S
        )
