"""The submit policy: where a new job goes and what a failed submit means.

Channels are tried in the table's order. An outage or a rate limit cools the channel down and
the next one is tried; refused credentials take it out until a reload; a rejected request goes
back to the client at once. The task row is written before the upstream call, holding a short
"submit lease": if the process dies before the upstream id is recorded, the lease runs out and the
task is failed, never submitted twice. When an upstream may have created the job without
confirming it, the relay does not try anywhere else either: it fails the task (a 200), because a
5xx would make SDKs retry and create a duplicate. Idempotency keys and the rate budget are
settled here too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from relay.auth import Principal
from relay.channels import Channel
from relay.errors import (
    InvalidRequest,
    NoAvailableChannel,
    RateLimitExceeded,
    UpstreamFailed,
    safe_message,
)
from relay.providers.base import now
from relay.domain import VideoRequest
from relay.routing import upstream_model
from relay.providers.base import Submitted
from relay.providers.errors import (
    AuthFailed,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    Unavailable,
    Unsupported,
)
from relay.runtime import Runtime, task_ref
from relay.store import Store, TaskRow
from relay.video import CreateRequest

log = logging.getLogger("relay.submit")

IDEMPOTENCY_TTL_S = 24 * 3600
SUBMIT_LEASE_MARGIN_S = 30.0


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)  # 192 random bits


def job_for(req: CreateRequest, channel: Channel) -> tuple[VideoRequest, str]:
    request = VideoRequest(
        model=req.model,
        prompt=req.prompt,
        seconds=req.seconds,
        size=req.size,
        images=req.images,
        media=req.media,
        negative_prompt=req.negative_prompt,
        seed=req.seed,
        generate_audio=req.generate_audio,
        enhance_prompt=req.enhance_prompt,
        person_generation=req.person_generation,
        metadata=req.metadata,
    )
    return request, upstream_model(channel.config, req.model, request.shape)


class Submitter:
    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        *,
        instance: str,
        clock: Callable[[], float] = now,
    ) -> None:
        self.store = store
        self._runtime = runtime
        self.instance = instance
        self.clock = clock

    @property
    def rt(self) -> Runtime:
        return self._runtime()

    async def submit_new(
        self,
        who: Principal,
        req: CreateRequest,
        channels: list[Channel],
        idempotency_key: str | None,
        remix_of: TaskRow | None,
    ) -> tuple[TaskRow, bool]:
        rt = self.rt
        now = self.clock()
        if idempotency_key is not None:
            earlier = await self._replay(who, idempotency_key, req)
            if earlier is not None:
                return earlier, True  # a replay creates nothing, so it costs no rate budget
        rt.limiter.take(who.key_id, now)  # a token now, so a burst cannot pass all at once
        try:
            return await self._submit_taken(who, req, channels, idempotency_key, remix_of, now)
        except BaseException:
            rt.limiter.give_back(who.key_id)  # rejected requests do not count
            raise

    async def _submit_taken(
        self,
        who: Principal,
        req: CreateRequest,
        channels: list[Channel],
        idempotency_key: str | None,
        remix_of: TaskRow | None,
        now: float,
    ) -> tuple[TaskRow, bool]:
        rt = self.rt
        selection = rt.channels.order(channels, now)
        if not selection.channels:
            if selection.full and not selection.cooling:
                raise RateLimitExceeded(
                    "every channel for this model is running as many tasks as it may; retry soon",
                    retry_after=rt.config.polling.interval_s,
                )
            raise NoAvailableChannel(f"no channel can take {req.model!r} right now; retry later")
        first = selection.channels[0]
        video_id = new_video_id()
        lease = sum(c.config.timeout_s for c in selection.channels) + SUBMIT_LEASE_MARGIN_S
        await self.store.insert_task(
            {
                "id": video_id,
                "owner": who.user,
                "channel": first.name,
                "provider": first.config.provider,
                "model": req.model,
                "upstream_model": job_for(req, first)[1],
                "request": req.stored(),
                "prompt": req.prompt,
                "seconds": str(req.seconds),
                "size": str(req.size),
                "status": "queued",
                "progress": 0,
                "remixed_from": remix_of.id if remix_of else None,
                "created_at": int(now),
                "updated_at": now,
                "lease_owner": self.instance,
                "lease_until": now + lease,
            }
        )
        owns_key = False
        if idempotency_key is not None:
            owns_key = await self._claim(who, idempotency_key, req, video_id, now)
            if not owns_key:  # a concurrent request with this key got there first
                try:
                    earlier = await self._replay(who, idempotency_key, req)
                except BaseException:
                    await self.store.delete_task(video_id)
                    raise
                if earlier is not None:
                    await self.store.delete_task(video_id)
                    return earlier, True
                owns_key = await self._claim(who, idempotency_key, req, video_id, now)
        try:
            row = await self._submit(video_id, req, selection.channels, remix_of)
        except BaseException:
            await self.store.delete_task(video_id)  # the client gets an error, not this task
            if owns_key and idempotency_key is not None:
                await self.store.forget_idempotency_key(who.user, idempotency_key)
            raise
        return row, False

    async def _claim(
        self, who: Principal, key: str, req: CreateRequest, video_id: str, now: float
    ) -> bool:
        return await self.store.claim_idempotency_key(
            who.user, key, req.fingerprint(), video_id, now, IDEMPOTENCY_TTL_S
        )

    async def _replay(self, who: Principal, key: str, req: CreateRequest) -> TaskRow | None:
        """The task an earlier request with this key made, if it is still there."""
        found = await self.store.find_idempotency_key(
            who.user, key, self.clock() - IDEMPOTENCY_TTL_S
        )
        if found is None:
            return None
        request_hash, task_id = found
        if request_hash != req.fingerprint():
            raise InvalidRequest(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        row = await self.store.get_task(task_id, who.user)
        if row is None:  # the task was deleted since: the key is free again
            await self.store.forget_idempotency_key(who.user, key)
        return row

    async def _submit(
        self, video_id: str, req: CreateRequest, channels: list[Channel], remix_of: TaskRow | None
    ) -> TaskRow:
        """Try each channel in order until one accepts the job; the policy of submit failures."""
        rt = self.rt
        failures: list[str] = []
        for attempt, channel in enumerate(channels):
            request, model = job_for(req, channel)
            if attempt:  # the row was written with the first channel already
                await self.store.update_task(
                    video_id,
                    {
                        "channel": channel.name,
                        "provider": channel.config.provider,
                        "upstream_model": model,
                    },
                )
            try:
                if remix_of is not None:
                    submitted = await channel.adapter.remix(task_ref(remix_of), request, model)
                else:
                    submitted = await channel.adapter.submit(request, model)
            except Rejected as exc:
                log.info("channel %s rejected the request: %s", channel.name, exc.for_log)
                raise InvalidRequest(
                    safe_message(exc.message),
                    code="content_policy_violation" if exc.moderation else "invalid_parameter",
                    param=exc.param,
                ) from None
            except Unsupported as exc:
                raise InvalidRequest(
                    safe_message(exc.message), code="unsupported_feature"
                ) from None
            except Unavailable as exc:
                if exc.maybe_created:
                    return await self._fail_unconfirmed(video_id, channel, exc)
                failures.append(self._failed_submit(channel, exc, None))
            except RateLimited as exc:
                failures.append(self._failed_submit(channel, exc, exc.retry_after))
            except QuotaExceeded as exc:
                failures.append(self._failed_submit(channel, exc, 3600.0))
            except AuthFailed as exc:
                rt.channels.refuse_auth(channel, exc.for_log)
                failures.append(f"{channel.name}: credentials refused")
            except ProviderError as exc:  # nothing a submit should raise: treat as an outage
                log.warning("channel %s: unexpected %s at submit", channel.name, type(exc).__name__)
                failures.append(self._failed_submit(channel, exc, None))
            else:
                rt.channels.succeeded(channel)
                channel.in_flight += 1
                return await self._record_submitted(video_id, channel, submitted)
        log.warning("no channel accepted %s: %s", video_id, "; ".join(failures))
        raise UpstreamFailed("every upstream channel for this model failed; nothing was created")

    def _failed_submit(
        self, channel: Channel, exc: ProviderError, retry_after: float | None
    ) -> str:
        self.rt.channels.cool_down(channel, self.clock(), retry_after, exc.for_log)
        return f"{channel.name}: {exc.message}"

    async def _fail_unconfirmed(self, video_id: str, channel: Channel, exc: Unavailable) -> TaskRow:
        """The request may have reached the upstream, so retrying could bill twice: fail the task
        (an answer a client will not blindly retry) instead of trying another channel."""
        log.warning(
            "channel %s did not confirm %s (%s); not retried, to avoid a duplicate job",
            channel.name,
            video_id,
            exc.for_log,
        )
        now = self.clock()
        row = await self.store.update_and_get(
            video_id,
            {
                "status": "failed",
                "error_code": "upstream_error",
                "error_message": "the upstream did not confirm the job ("
                + safe_message(exc.message)
                + "); it was not retried, to avoid creating it twice",
                "completed_at": now,
                "updated_at": now,
                "lease_owner": None,
                "lease_until": None,
            },
        )
        assert row is not None
        return row

    def first_interval(self, channel: Channel) -> float:
        """The first re-check: `interval_s`, sooner for jobs that typically take only seconds."""
        return min(self.rt.config.polling.interval_s, max(0.5, channel.adapter.typical_run_s / 10))

    async def _record_submitted(
        self, video_id: str, channel: Channel, submitted: Submitted
    ) -> TaskRow:
        now = self.clock()
        interval = self.first_interval(channel)
        row = await self.store.update_and_get(
            video_id,
            {
                "upstream_id": submitted.upstream_id,
                "upstream_state": dict(submitted.state),
                "seconds": submitted.seconds,
                "size": submitted.size,
                "status": submitted.status,
                "progress": submitted.progress,
                "submitted_at": now,
                "updated_at": now,
                "next_poll_at": now + interval,
                "poll_interval": interval,
                "lease_owner": None,
                "lease_until": None,
            },
        )
        assert row is not None
        return row
