"""Create and remix: defaults, routing, idempotency, the rate budget, and the submit loop.

Defaults are applied once, here. The channel table maps the request to its routes once; each
route is tried in order, and what a failed submit means for the channel and the request is
policy (policy.py, phase submit). The task row is written before the upstream call, holding a
short submit lease: if the process dies before the upstream id is recorded, the lease runs out
and the task is failed, never submitted twice. When an upstream may have created the job without
confirming it, the relay does not try anywhere else either: it fails the task (a 200), because a
5xx would make SDKs retry and create a duplicate.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import Any

from relay import hosting
from relay.domain import Outcome, Principal, Size, Task, VideoRequest
from relay.errors import (
    InvalidRequest,
    NoAvailableChannel,
    NotFound,
    safe_message,
)
from relay.events import TaskCreated, TaskSubmitted, upstream_op
from relay.policy import ChannelEffect, Phase, TaskEffect, decide
from relay.providers.base import Provider, Submitted
from relay.providers.errors import ProviderError, RateLimited
from relay.routing import RATE_LIMIT_PAUSE_S, ChannelTable, Route
from relay.store import NewTask
from relay.tasks.context import Context
from relay.tasks.idempotency import IdempotencyKeys
from relay.tasks.refresh import Lifecycle
from relay.tasks.refusals import all_failed, capable, refused

log = logging.getLogger("relay.tasks.create")

SUBMIT_LEASE_MARGIN_S = 30.0
DISABLED_RETRY_AFTER_S = 60.0  # every channel of the model is disabled: the config must change


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)  # 192 random bits


def first_interval(adapter: Provider[Any], interval_s: float) -> float:
    """The first re-check: `interval_s`, sooner for jobs that typically take only seconds, and
    never before the upstream's own floor."""
    return max(min(interval_s, max(0.5, adapter.typical_run_s / 10)), adapter.min_poll_s)


class Creator:
    def __init__(self, ctx: Context, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.keys = IdempotencyKeys(ctx)

    async def create(
        self, who: Principal, request: VideoRequest, idempotency_key: str | None = None
    ) -> tuple[Task, bool]:
        """Create a task; returns it and whether it is an idempotent replay."""
        if request.remix_of is not None:
            return await self.remix(who, request.remix_of, request, idempotency_key)
        runtime = self.ctx.runtime
        defaults = runtime.config.defaults
        request = request.with_defaults(
            model=defaults.model,
            seconds=int(defaults.seconds),
            size=Size.parse(defaults.size) or Size(ratio=(9, 16)),
        )
        channels, model = runtime.channels, request.public_model
        if not channels.knows(model):
            raise NotFound(
                f"model {model!r} is not served here (see GET /v1/models)",
                code="model_not_found",
                param="model",
            )
        if not channels.serving(model):
            raise NoAvailableChannel(
                f"every channel serving {model!r} is disabled", retry_after=DISABLED_RETRY_AFTER_S
            )
        routes = capable(request, channels.routes(request))
        return await self._submit_new(who, request, channels, routes, idempotency_key, None)

    async def remix(
        self,
        who: Principal,
        source_id: str,
        request: VideoRequest,
        idempotency_key: str | None = None,
    ) -> tuple[Task, bool]:
        """A new task from a completed one, on the source's channel, with its upstream id."""
        channels = self.ctx.runtime.channels
        source = await self.ctx.find(who, source_id)
        if source.status != "completed":
            raise InvalidRequest(
                f"video {source_id!r} is {source.status}: only a completed video can be remixed",
                code="video_not_ready",
                param="video_id",
            )
        channel = channels.get(source.channel)
        if channel is None:
            raise NoAvailableChannel(
                f"the channel that made {source_id!r} is no longer configured",
                retry_after=DISABLED_RETRY_AFTER_S,
            )
        if "remix" not in channel.adapter.features:
            raise InvalidRequest(
                f"provider {channel.provider!r} does not support remix",
                code="unsupported_feature",
            )
        request = replace(
            request.with_defaults(
                model=source.model,
                seconds=int(source.seconds),
                size=Size.parse(source.size) or Size(ratio=(16, 9)),
            ),
            images=(),
            media=(),
            remix_of=source.id,
        )
        if request.public_model not in channel.config.models:
            raise InvalidRequest(
                "a remix runs on the channel of its source, which does not serve "
                f"{request.public_model!r}",
                param="model",
            )
        routes = capable(request, channels.routes(request, [channel]))
        return await self._submit_new(who, request, channels, routes, idempotency_key, source)

    # --- idempotency and the rate budget -------------------------------------------------

    async def _submit_new(
        self,
        who: Principal,
        request: VideoRequest,
        channels: ChannelTable,
        routes: list[Route],
        key: str | None,
        source: Task | None,
    ) -> tuple[Task, bool]:
        limiter = self.ctx.runtime.limiter
        if key is not None:
            earlier = await self.keys.replay(who, key, request)
            if earlier is not None:
                return earlier, True  # a replay creates nothing, so it costs no rate budget
        await limiter.take(who.key_id, self.ctx.clock())  # now, so a burst cannot all pass
        try:
            return await self._submit_taken(who, request, channels, routes, key, source)
        except BaseException:
            await limiter.give_back(who.key_id)  # rejected requests do not count
            raise

    async def _submit_taken(
        self,
        who: Principal,
        request: VideoRequest,
        channels: ChannelTable,
        routes: list[Route],
        key: str | None,
        source: Task | None,
    ) -> tuple[Task, bool]:
        ctx = self.ctx
        video_id = new_video_id()
        full: set[str] = set()  # channels the store found at max_in_flight (any relay's tasks)
        while True:
            admission = channels.admit(r for r in routes if r.channel.name not in full)
            if admission.route is None:
                interval = ctx.runtime.config.polling.interval_s
                raise refused(request, channels, admission, interval, full=bool(full))
            route = admission.route
            now = ctx.clock()
            task = NewTask(
                id=video_id,
                owner=who.user,
                channel=route.channel.name,
                provider=route.channel.provider,
                model=request.public_model,
                upstream_model=route.upstream_model,
                request=request.stored(),
                prompt=request.prompt,
                seconds=str(request.duration),
                size=str(request.dimensions),
                remixed_from=source.id if source else None,
                created_at=now,
                lease_owner=ctx.instance,
                lease_until=now
                + sum(r.channel.config.timeout_s for r in routes)
                + SUBMIT_LEASE_MARGIN_S,
            )
            try:
                async with channels.placing(route.channel):
                    placed = await ctx.store.create_task(
                        task, limit=route.channel.config.max_in_flight
                    )
            except BaseException:
                channels.release(route.channel)
                raise
            if placed:
                break
            channels.release(route.channel)
            full.add(route.channel.name)
        ctx.events.emit(TaskCreated(video_id, who.user, request.public_model, route.channel.name))
        owns_key = False
        try:
            if key is not None:
                owns_key = await self.keys.claim(who, key, request, video_id)
                if not owns_key:  # a concurrent request with this key got there first
                    earlier = await self.keys.replay(who, key, request)
                    if earlier is not None:
                        raise _Replayed(earlier)
                    owns_key = await self.keys.claim(who, key, request, video_id)
            return await self._submit(video_id, request, channels, route, routes, source), False
        except _Replayed as replayed:
            channels.release(route.channel)
            await ctx.store.delete_task(video_id)
            return replayed.task, True
        except BaseException:
            await ctx.store.delete_task(video_id)  # the client gets an error, not this task
            if owns_key and key is not None:
                await ctx.store.forget_idempotency_key(who.user, key)
            raise

    # --- the submit loop ---------------------------------------------------------------------

    async def _submit(
        self,
        video_id: str,
        request: VideoRequest,
        channels: ChannelTable,
        route: Route,
        routes: list[Route],
        source: Task | None,
    ) -> Task:
        """Submit with a hosting scope open, so an adapter can serve the client's bytes to a
        provider that fetches inputs by URL; what it hosted goes when no channel takes the job
        (or the task finishes, see Lifecycle.finish)."""
        scope = self.ctx.hosting.scope(video_id) if self.ctx.hosting is not None else None
        token = hosting.SCOPE.set(scope)
        try:
            return await self._try_routes(video_id, request, channels, route, routes, source)
        except BaseException:
            if scope is not None:
                await scope.drop()
            raise
        finally:
            hosting.SCOPE.reset(token)

    async def _try_routes(
        self,
        video_id: str,
        request: VideoRequest,
        channels: ChannelTable,
        route: Route,
        routes: list[Route],
        source: Task | None,
    ) -> Task:
        """Try each route until one accepts the job; the slot of the route trying is held."""
        failures: list[str] = []
        limited: list[float] = []  # the wait each 429 asked for
        tried = {route.channel.name}
        while True:
            channel = route.channel
            try:
                if source is not None:
                    call = channel.adapter.remix(source.ref(), request, route.upstream_model)
                else:
                    call = channel.adapter.submit(request, route.upstream_model)
                submitted = await upstream_op(self.ctx.events, channel, "submit", call)
            except ProviderError as exc:
                if exc.excerpt:  # INFO and WARNING lines below carry exc.for_log, never a body
                    log.debug("channel %s answered for %s: %s", channel.name, video_id, exc.excerpt)
                decision = decide(exc, Phase.SUBMIT)
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                channels.record(
                    channel,
                    decision.channel,
                    error=type(exc).__name__,
                    retry_after=retry_after,
                    why=exc.for_log,
                )
                if decision.task is TaskEffect.FAIL_UNCONFIRMED:
                    return await self._fail_unconfirmed(video_id, route, exc)
                channels.release(channel)
                if decision.task is TaskEffect.REJECT:
                    log.info("channel %s refused the request: %s", channel.name, exc.for_log)
                    raise InvalidRequest(
                        safe_message(exc.message),
                        code=decision.code,
                        param=getattr(exc, "param", None),
                    ) from None
                failures.append(f"{channel.name}: {exc.for_log}")
                if isinstance(exc, RateLimited):
                    limited.append(RATE_LIMIT_PAUSE_S if retry_after is None else retry_after)
            except BaseException:
                channels.release(channel)
                raise
            else:
                channels.record(channel, ChannelEffect.ALIVE)
                return await self._record_submitted(video_id, route, submitted)
            next_route = await self._fail_over(video_id, channels, routes, tried)
            if next_route is None:
                log.warning("no channel accepted %s: %s", video_id, "; ".join(failures))
                raise all_failed(len(failures), limited)
            route = next_route

    async def _fail_over(
        self, video_id: str, channels: ChannelTable, routes: list[Route], tried: set[str]
    ) -> Route | None:
        """Move the task to the next route that may take it (holding its slot), or None."""
        while True:
            admission = channels.admit(
                (r for r in routes if r.channel.name not in tried), early_probe=False
            )
            route = admission.route
            if route is None:
                return None
            tried.add(route.channel.name)
            try:
                async with channels.placing(route.channel):
                    moved = await self.ctx.store.move_to_channel(
                        video_id,
                        channel=route.channel.name,
                        provider=route.channel.provider,
                        upstream_model=route.upstream_model,
                        limit=route.channel.config.max_in_flight,
                    )
            except BaseException:
                channels.release(route.channel)
                raise
            if moved:
                return route
            channels.release(route.channel)  # full, counting every relay's tasks

    async def _record_submitted(self, video_id: str, route: Route, submitted: Submitted) -> Task:
        ctx = self.ctx
        now = ctx.clock()
        interval = first_interval(route.channel.adapter, ctx.runtime.config.polling.interval_s)
        state = submitted.state
        scope = hosting.SCOPE.get()
        if scope is not None and scope.paths:  # removed when the task finishes
            state = {**state, hosting.STATE_KEY: list(scope.paths)}
        task = await ctx.store.record_submitted(
            video_id,
            upstream_id=submitted.upstream_id,
            upstream_state=state,
            seconds=submitted.seconds,
            size=submitted.size,
            status=submitted.status,
            progress=submitted.progress,
            now=now,
            next_poll_at=now + interval,
            interval=interval,
        )
        if task is None:  # the submit lease ran out meanwhile and the task was failed
            if scope is not None:
                await scope.drop()  # nothing will fetch them now
            found = await ctx.store.get_task(video_id)
            assert found is not None
            return found
        ctx.events.emit(
            TaskSubmitted(
                video_id, route.channel.name, route.channel.provider, task.next_poll_at, task.model
            )
        )
        return task

    async def _fail_unconfirmed(self, video_id: str, route: Route, exc: ProviderError) -> Task:
        """The request may have reached the upstream, so retrying could bill twice: fail the task
        (an answer a client will not blindly retry) instead of trying another channel."""
        log.warning(
            "channel %s did not confirm %s (%s); not retried, to avoid a duplicate job",
            route.channel.name,
            video_id,
            exc.for_log,
        )
        outcome = Outcome.failed(
            "upstream_error",
            "the upstream did not confirm the job ("
            + safe_message(exc.message)
            + "); it was not retried, to avoid creating it twice",
        )
        task = await self.lifecycle.finish(video_id, route.channel.name, self.ctx.instance, outcome)
        assert task is not None
        scope = hosting.SCOPE.get()
        if scope is not None:
            await scope.drop()
        return task


class _Replayed(Exception):
    def __init__(self, task: Task) -> None:
        self.task = task
