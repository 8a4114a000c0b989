"""The use cases: create, remix, refresh, delete, find content. No aiohttp.web in here.

This is where policy lives: which channel a job goes to, what happens when an upstream fails at
submit (failover, cooldown, the client's HTTP error) or at poll (back off, or fail the task), and
how progress moves. Adapters only translate and classify.

A task row is written before the upstream call and holds a short "submit lease". If the process
dies before the upstream id is recorded, the lease runs out and the task is failed (never
submitted a second time: the first attempt may have created a job upstream).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from relay import storage, webhooks
from relay.auth import Authenticator, Principal, RateLimiter
from relay.channels import Channel, ChannelTable
from relay.config import Config
from relay.errors import (
    InvalidRequest,
    NoAvailableChannel,
    NotFound,
    PermissionDenied,
    RateLimitExceeded,
    RelayError,
    UpstreamFailed,
)
from relay.providers import base
from relay.providers.base import (
    AuthFailed,
    ContentSource,
    Job,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    Rejected,
    Size,
    Submitted,
    TaskNotFound,
    TaskRef,
    Unavailable,
    Unsupported,
    Update,
)
from relay.store import Store, TaskRow
from relay.video import CreateRequest, RemixRequest

log = logging.getLogger("relay.tasks")

IDEMPOTENCY_TTL_S = 24 * 3600
SUBMIT_LEASE_MARGIN_S = 30.0
AUTH_FAILURES_BEFORE_FAIL = 5
POLL_BACKOFF = 1.5
_URL = re.compile(r"\b(?:https?|wss?|gs|s3|oss)://\S+", re.IGNORECASE)


def safe_message(text: str, limit: int = 500) -> str:
    """Upstream text made fit for a client: URLs removed, length bounded."""
    cleaned = _URL.sub("<url>", text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)  # 192 random bits


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


def next_progress(
    old: int, status: str, reported: int | None, elapsed: float, typical_s: float
) -> int:
    """Progress never goes down; without an upstream figure, time decides, within 1..95."""
    if status == "completed":
        return 100
    if status != "in_progress":
        return old
    if reported is None:
        value = max(1, min(95, int(100 * elapsed / max(typical_s, 1.0))))
    else:
        value = max(1, min(99, reported))
    return max(old, value)


def job_shape(req: CreateRequest) -> str:
    """text, image, frames or reference: which upstream model of a model_map table runs it."""
    roles = [image.role for image in req.images]
    if not roles:
        return "text"
    if "reference_image" in roles:
        return "reference"
    return "frames" if len(roles) > 1 or "last_frame" in roles else "image"


FinishedListener = Callable[[TaskRow], Awaitable[None]]


class Videos:
    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        *,
        instance: str,
        library: storage.Library | None = None,
        clock: Callable[[], float] = base.now,
    ) -> None:
        self.store = store
        self.library = library
        self._runtime = runtime
        self.instance = instance
        self.clock = clock
        self.finished_listeners: list[FinishedListener] = []

    @property
    def rt(self) -> Runtime:
        return self._runtime()

    # --- reading ----------------------------------------------------------------------

    async def get(self, who: Principal, video_id: str) -> TaskRow:
        """A task the caller may see; another user's task is as unknown as a missing one."""
        row = await self.store.get_task(video_id, None if who.admin else who.user)
        if row is None:
            raise NotFound(f"no video with id {video_id!r}", param="video_id")
        return row

    async def list_page(
        self, who: Principal, *, after: str | None, limit: int, order: str, owner: str | None
    ) -> tuple[list[TaskRow], bool]:
        if owner is not None and not who.admin and owner != who.user:
            raise PermissionDenied("only an admin may list another user's videos")
        scope = None if owner == "all" else (owner or who.user)
        cursor = None
        if after is not None:
            cursor = await self.store.get_task(after, None if who.admin else who.user)
            if cursor is None or (scope is not None and cursor.owner != scope):
                raise InvalidRequest(
                    f"after: no video with id {after!r} in this list", param="after"
                )
        rows = await self.store.list_tasks(
            owner=scope, after=cursor, limit=limit + 1, descending=order == "desc"
        )
        return rows[:limit], len(rows) > limit

    # --- create and remix -------------------------------------------------------------

    async def create(
        self, who: Principal, req: CreateRequest, idempotency_key: str | None = None
    ) -> tuple[TaskRow, bool]:
        """Create a task; returns it and whether it is an idempotent replay."""
        if req.remix_video_id is not None:
            remix = RemixRequest(
                prompt=req.prompt,
                model=req.model if req.model_given else None,
                seconds=req.seconds if "seconds" in req.given else None,
                size=req.size if "size" in req.given else None,
                metadata=req.metadata,
            )
            return await self.remix(who, req.remix_video_id, remix, idempotency_key, req)
        rt = self.rt
        if not rt.channels.knows(req.model):
            raise NotFound(
                f"model {req.model!r} is not served here (see GET /v1/models)",
                code="model_not_found",
                param="model",
            )
        serving = rt.channels.serving(req.model)
        if not serving:
            raise NoAvailableChannel(f"every channel serving {req.model!r} is disabled")
        capable = self._capable(serving, req)
        return await self._submit_new(who, req, capable, idempotency_key, remix_of=None)

    def _capable(self, channels: list[Channel], req: CreateRequest) -> list[Channel]:
        capable, refusal = [], None
        for channel in channels:
            try:
                channel.adapter.check(self._job(req, channel))
            except Unsupported as exc:
                refusal = refusal or exc
                continue
            capable.append(channel)
        if not capable:
            assert refusal is not None
            raise InvalidRequest(safe_message(refusal.message), code="unsupported_feature")
        return capable

    def _job(self, req: CreateRequest, channel: Channel) -> Job:
        return Job(
            model=channel.config.upstream_model(req.model, job_shape(req)),
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

    async def remix(
        self,
        who: Principal,
        source_id: str,
        req: RemixRequest,
        idempotency_key: str | None = None,
        original: CreateRequest | None = None,
    ) -> tuple[TaskRow, bool]:
        rt = self.rt
        source = await self.get(who, source_id)
        if source.status != "completed":
            raise InvalidRequest(
                f"video {source_id!r} is {source.status}: only a completed video can be remixed",
                code="video_not_ready",
                param="video_id",
            )
        channel = rt.channels.get(source.channel)
        if channel is None:
            raise NoAvailableChannel(f"the channel that made {source_id!r} is no longer configured")
        if "remix" not in channel.adapter.features:
            raise InvalidRequest(
                f"provider {channel.config.provider!r} does not support remix",
                code="unsupported_feature",
            )
        model = req.model or source.model
        if model not in channel.config.models:
            raise InvalidRequest(
                f"a remix runs on the channel of its source, which does not serve {model!r}",
                param="model",
            )
        seconds = req.seconds or int(source.seconds)
        size = req.size or Size.parse(source.size) or Size(ratio=(16, 9))
        create = replace(
            original or CreateRequest(prompt=req.prompt, model=model, seconds=seconds, size=size),
            prompt=req.prompt,
            model=model,
            seconds=seconds,
            size=size,
            images=(),
            media=(),
            metadata=req.metadata,
            remix_video_id=source.id,
        )
        channel.adapter.check(replace(self._job(create, channel), images=(), media=()))
        return await self._submit_new(who, create, [channel], idempotency_key, remix_of=source)

    async def _submit_new(
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
                "upstream_model": first.config.upstream_model(req.model, job_shape(req)),
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
        for channel in channels:
            job = self._job(req, channel)
            await self.store.update_task(
                video_id,
                {
                    "channel": channel.name,
                    "provider": channel.config.provider,
                    "upstream_model": job.model,
                },
            )
            try:
                if remix_of is not None:
                    submitted = await channel.adapter.remix(task_ref(remix_of), job)
                else:
                    submitted = await channel.adapter.submit(job)
            except Rejected as exc:
                log.info("channel %s rejected the request: %s", channel.name, exc.detail or exc)
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
                rt.channels.refuse_auth(channel, exc.detail or exc.message)
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
        self.rt.channels.cool_down(channel, self.clock(), retry_after, exc.detail or exc.message)
        return f"{channel.name}: {exc.message}"

    async def _fail_unconfirmed(self, video_id: str, channel: Channel, exc: Unavailable) -> TaskRow:
        """The request may have reached the upstream, so retrying could bill twice: fail the task
        (an answer a client will not blindly retry) instead of trying another channel."""
        log.warning(
            "channel %s did not confirm %s (%s); not retried, to avoid a duplicate job",
            channel.name,
            video_id,
            exc.detail or exc.message,
        )
        now = self.clock()
        await self.store.update_task(
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
        row = await self.store.get_task(video_id)
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
        await self.store.update_task(
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
        row = await self.store.get_task(video_id)
        assert row is not None
        return row

    # --- refresh (driven by the poller) ---------------------------------------------------

    async def refresh(self, row: TaskRow, lease: str) -> None:
        """Poll one leased task upstream and record what changed."""
        channel = self.rt.channels.get(row.channel)
        now = self.clock()
        if channel is None:
            log.warning("task %s: channel %s is no longer configured", row.id, row.channel)
            await self._reschedule(row, lease, self.rt.config.polling.max_interval_s)
            return
        try:
            update = await channel.adapter.poll(task_ref(row))
        except TaskNotFound as exc:
            await self._finish(row, lease, "failed", "task_expired", safe_message(exc.message))
            return
        except AuthFailed as exc:
            if row.poll_errors + 1 >= AUTH_FAILURES_BEFORE_FAIL:
                await self._finish(
                    row, lease, "failed", "upstream_auth_failed", safe_message(exc.message)
                )
            else:
                await self._reschedule(row, lease, None, errors=row.poll_errors + 1)
            return
        except RateLimited as exc:
            await self._reschedule(row, lease, exc.retry_after)
            return
        except ProviderError as exc:
            log.info("task %s: poll failed, will retry: %s", row.id, exc.detail or exc.message)
            await self._reschedule(row, lease, None)
            return
        await self._apply(row, lease, update, channel, now)

    async def _apply(
        self, row: TaskRow, lease: str, update: Update, channel: Channel, now: float
    ) -> None:
        status = update.status or row.status
        elapsed = now - (row.submitted_at or row.created_at)
        progress = next_progress(
            row.progress, status, update.progress, elapsed, channel.adapter.typical_run_s
        )
        values: dict[str, Any] = {"progress": progress, "updated_at": now, "poll_errors": 0}
        if update.state:
            values["upstream_state"] = {**row.upstream_state, **update.state}
        if update.seconds:
            values["seconds"] = update.seconds
        if update.size:
            values["size"] = update.size
        if status in base.TERMINAL:
            error = update.error
            await self._finish(
                row,
                lease,
                status,
                (error.code if error else "generation_failed") if status == "failed" else None,
                safe_message(error.message) if error else None,
                extra=values,
                completed_at=update.completed_at,
                expires_at=update.expires_at,
            )
            return
        values["status"] = status
        interval = min(
            (row.poll_interval or self.rt.config.polling.interval_s) * POLL_BACKOFF,
            self.rt.config.polling.max_interval_s,
        )
        if update.poll_after_s:
            interval = max(interval, update.poll_after_s)
        values.update(
            next_poll_at=now + interval, poll_interval=interval, lease_owner=None, lease_until=None
        )
        await self.store.update_task(row.id, values, only_active=True, lease_owner=lease)

    async def _reschedule(
        self, row: TaskRow, lease: str, at_least: float | None, *, errors: int | None = None
    ) -> None:
        polling = self.rt.config.polling
        interval = min((row.poll_interval or polling.interval_s) * 2, polling.max_interval_s)
        if at_least:
            interval = max(interval, at_least)
        now = self.clock()
        values: dict[str, Any] = {
            "next_poll_at": now + interval,
            "poll_interval": interval,
            "lease_owner": None,
            "lease_until": None,
        }
        if errors is not None:
            values["poll_errors"] = errors
        await self.store.update_task(row.id, values, only_active=True, lease_owner=lease)

    async def _finish(
        self,
        row: TaskRow,
        lease: str | None,
        status: str,
        code: str | None,
        message: str | None,
        *,
        extra: dict[str, Any] | None = None,
        completed_at: float | None = None,
        expires_at: float | None = None,
    ) -> bool:
        """The one transition out of a running state; it succeeds once, whoever tries."""
        now = self.clock()
        values: dict[str, Any] = {
            **(extra or {}),
            "status": status,
            "error_code": code,
            "error_message": message,
            "completed_at": completed_at or now,
            "expires_at": expires_at if status == "completed" else None,
            "updated_at": now,
            "next_poll_at": None,
            "lease_owner": None,
            "lease_until": None,
        }
        if status == "completed":
            values["progress"] = 100
        events = webhooks.deliveries(row.id, status, self.rt.config.webhooks, now)
        channel = self.rt.channels.get(row.channel)
        copies: list[str] = []
        if status == "completed" and channel is not None and self.rt.config.storage.keep_videos:
            copies = storage.copy_variants(channel.adapter.variants)
        done = await self.store.finish_task(
            row.id, values, lease_owner=lease, deliveries=events, copies=copies, now=now
        )
        if not done:
            return False
        if channel is not None and row.upstream_id is not None:
            channel.in_flight = max(0, channel.in_flight - 1)
        log.info("task %s %s%s", row.id, status, f" ({code})" if code else "")
        finished = await self.store.get_task(row.id)
        if finished is not None:
            for listener in self.finished_listeners:
                try:
                    await listener(finished)
                except Exception:
                    log.exception("a listener failed for task %s", row.id)
        return True

    async def fail_stale_submissions(self) -> int:
        """Fail tasks whose submit was cut off (a crash between row and upstream id)."""
        count = 0
        for row in await self.store.stale_submissions(self.clock()):
            if await self._finish(
                row,
                None,
                "failed",
                "upstream_error",
                "the relay stopped while submitting this task; it was not submitted again, "
                "because the first attempt may have reached the upstream",
            ):
                count += 1
        return count

    async def fail_overdue(self) -> int:
        hours = self.rt.config.polling.timeout_h
        count = 0
        for row in await self.store.overdue(self.clock() - hours * 3600):
            if await self._finish(
                row,
                None,
                "failed",
                "upstream_timeout",
                f"the task did not finish within {hours:g} h",
            ):
                count += 1
        return count

    # --- delete and content ----------------------------------------------------------------

    async def delete(self, who: Principal, video_id: str) -> None:
        row = await self.get(who, video_id)
        if row.active:
            raise InvalidRequest(
                f"video {video_id!r} is {row.status}: only a completed or failed video can be "
                "deleted",
                code="video_not_finished",
                param="video_id",
            )
        channel = self.rt.channels.get(row.channel)
        if channel is not None and row.upstream_id is not None:
            try:
                await channel.adapter.delete(task_ref(row))
            except ProviderError as exc:  # best effort: the local record goes either way
                log.info("upstream delete of %s failed: %s", row.id, exc.detail or exc.message)
        await self.store.delete_task(row.id)
        if self.library is not None:
            self.library.remove(row.id)

    async def content(self, who: Principal, video_id: str, variant: str) -> ContentSource:
        """The stored copy when the relay has one, else the provider's source."""
        row = await self.get(who, video_id)
        if row.status == "completed" and self.library is not None:
            copy = await self.store.stored_copy(row.id, variant)
            local = self.library.local(copy) if copy is not None else None
            if local is not None:
                return local
        row, channel = await self._finished(who, video_id, variant)
        try:
            return await channel.adapter.content(task_ref(row), variant)
        except ProviderError as exc:
            raise _content_error(video_id, exc) from None

    async def refresh_content(
        self, who: Principal, video_id: str, variant: str
    ) -> ContentSource | None:
        """A fresh source after the upstream URL expired, when the provider has a way."""
        row, channel = await self._finished(who, video_id, variant)
        try:
            return await channel.adapter.refresh_content(task_ref(row), variant)
        except ProviderError as exc:
            log.info("refresh of %s failed: %s", video_id, exc.detail or exc.message)
            return None

    async def source_for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        """Where the copier reads a finished task's variant from; None if there is no such task
        any more. Provider errors pass through: the copier decides what they mean."""
        row = await self.store.get_task(video_id)
        channel = self.rt.channels.get(row.channel) if row is not None else None
        if row is None or row.status != "completed" or channel is None:
            return None
        return await channel.adapter.content(task_ref(row), variant)

    async def refresh_for_copy(self, video_id: str, variant: str) -> ContentSource | None:
        row = await self.store.get_task(video_id)
        channel = self.rt.channels.get(row.channel) if row is not None else None
        if row is None or channel is None:
            return None
        try:
            return await channel.adapter.refresh_content(task_ref(row), variant)
        except ProviderError:
            return None

    async def _finished(
        self, who: Principal, video_id: str, variant: str
    ) -> tuple[TaskRow, Channel]:
        row = await self.get(who, video_id)
        if row.status == "failed":
            raise NotFound(f"video {video_id!r} failed: it has no content", code="video_failed")
        if row.status != "completed":
            raise NotFound(f"video {video_id!r} is not ready yet", code="video_not_ready")
        channel = self.rt.channels.get(row.channel)
        if channel is None:
            raise NotFound(
                f"the channel that made {video_id!r} is no longer configured",
                code="variant_not_available",
            )
        if variant not in channel.adapter.variants:
            raise NotFound(
                f"provider {channel.config.provider!r} does not produce a {variant}",
                code="variant_not_available",
                param="variant",
            )
        return row, channel


def _content_error(video_id: str, exc: ProviderError) -> RelayError:
    if isinstance(exc, base.VariantUnavailable):
        return NotFound(safe_message(exc.message), code="variant_not_available")
    if isinstance(exc, base.NotReady):
        return NotFound(f"video {video_id!r} is not ready yet", code="video_not_ready")
    if isinstance(exc, TaskNotFound):
        return NotFound(f"the content of {video_id!r} has expired upstream", code="not_found")
    return UpstreamFailed(safe_message(exc.message))
