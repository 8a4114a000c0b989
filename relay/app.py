"""create_app(config): the app's state, its resources and the route table.

Nothing happens at import time. Each resource is one `cleanup_ctx`, opened in this order and
closed in reverse: the store -> outbound HTTP -> the runtime (channels, keys, limits, the use
cases) -> sign-in (the token key in data_dir, sessions, throttles) -> the workers (poller,
webhook sender, copier). A failure while opening one leaves the
ones before it to be closed by the app's cleanup.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web

from relay import logs
from relay.config import Config
from relay.events import Events, TaskFinished, TaskSubmitted
from relay.providers import REGISTRY
from relay.providers.base import Provider
from relay.runtime import Runtime, build_parts
from relay.signin import SignIn
from relay.storage import LocalLibrary
from relay.store import open_store
from relay.tasks import Context, Videos
from relay.tokens import load_secret
from relay.upstream import Http
from relay.web import setup_routes
from relay.web.keys import (
    CONFIG,
    COPIER,
    EVENTS,
    HTTP,
    POLLER,
    RUNTIME,
    SENDER,
    SIGNIN,
    STARTED_AT,
    STORE,
    VIDEOS,
)
from relay.web.middleware import authenticate, envelope, stamp_request_id
from relay.workers.copier import Copier
from relay.workers.poller import Poller
from relay.workers.webhooks import Sender

log = logging.getLogger("relay.app")

Providers = Mapping[str, type[Provider[Any]]]


def create_app(
    config: Config,
    *,
    providers: Providers = REGISTRY,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    max_body = int(config.server.max_upload_bytes * 4 / 3) + 2 * 1024 * 1024
    app = web.Application(
        middlewares=[envelope, authenticate],
        client_max_size=max_body,
        handler_args={"max_field_size": 16 * 1024},
    )
    app[CONFIG] = config
    app[logs.TRUST_PROXY] = config.server.trust_proxy
    app[EVENTS] = Events()
    app[STARTED_AT] = clock()
    app.on_response_prepare.append(stamp_request_id)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_http)
    app.cleanup_ctx.append(_runtime(providers, clock))
    app.cleanup_ctx.append(_signin(clock))
    app.cleanup_ctx.append(_workers(clock))
    setup_routes(app)
    return app


async def reload(app: web.Application, config: Config, providers: Providers = REGISTRY) -> None:
    """Swap in a new channel table, keys and limits; running tasks and downloads go on."""
    runtime = app[RUNTIME]
    if config.server != runtime.config.server:
        log.warning("server settings changed in the config; they take effect at the next start")
    parts = build_parts(
        config,
        providers=providers,
        store=app[STORE],
        http=app[HTTP],
        events=app[EVENTS],
        clock=app[VIDEOS].ctx.clock,
    )
    parts.channels.set_in_flight(await app[STORE].count_active_by_channel())
    runtime.swap(parts)
    log.info("config reloaded: %d channels, %d static keys", len(config.channels), len(config.keys))


async def _store(app: web.Application) -> AsyncIterator[None]:
    data_dir = app[CONFIG].server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    app[STORE] = await open_store(app[CONFIG].store.url)
    try:
        yield
    finally:
        await app[STORE].close()


async def _http(app: web.Application) -> AsyncIterator[None]:
    app[HTTP] = Http(allow_private_networks=app[CONFIG].server.allow_private_networks)
    try:
        yield
    finally:
        await app[HTTP].close()


def _runtime(
    providers: Providers, clock: Callable[[], float]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def runtime(app: web.Application) -> AsyncIterator[None]:
        config, store, events = app[CONFIG], app[STORE], app[EVENTS]
        parts = build_parts(
            config, providers=providers, store=store, http=app[HTTP], events=events, clock=clock
        )
        parts.channels.set_in_flight(await store.count_active_by_channel())
        app[RUNTIME] = live = Runtime(parts)
        ctx = Context(
            store=store,
            runtime=live,
            events=events,
            clock=clock,
            instance=secrets.token_hex(8),
            library=LocalLibrary(config.server.data_dir),
        )
        app[VIDEOS] = Videos(ctx)
        # a finished task frees its channel's slot, in whichever table is current then
        events.subscribe(TaskFinished, lambda e: live.channels.release_by_name(e.channel))
        logs.watch(events)
        yield

    return runtime


def _signin(clock: Callable[[], float]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def signin(app: web.Application) -> AsyncIterator[None]:
        runtime = app[RUNTIME]
        app[SIGNIN] = SignIn(
            app[STORE],
            load_secret(app[CONFIG].server.data_dir),
            settings=lambda: runtime.config.dashboard,
            clock=clock,
        )
        yield

    return signin


def _workers(clock: Callable[[], float]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def workers(app: web.Application) -> AsyncIterator[None]:
        videos, store, http, events, runtime = (
            app[VIDEOS],
            app[STORE],
            app[HTTP],
            app[EVENTS],
            app[RUNTIME],
        )
        ctx = videos.ctx
        poller = Poller(videos.lifecycle, store, runtime, instance=ctx.instance, clock=clock)
        sender = Sender(
            store,
            http,
            lambda: runtime.config.webhooks,
            events=events,
            instance=ctx.instance,
            clock=clock,
        )
        assert ctx.library is not None
        copier = Copier(
            store,
            http,
            ctx.library,
            videos.contents,
            settings=lambda: runtime.config.storage,
            events=events,
            instance=ctx.instance,
            clock=clock,
        )
        app[POLLER], app[SENDER], app[COPIER] = poller, sender, copier

        def first_poll(event: TaskSubmitted) -> None:
            if event.next_poll_at is not None:
                poller.due_at(event.next_poll_at)

        def finished(_: TaskFinished) -> None:
            sender.wake()
            copier.wake()

        events.subscribe(TaskSubmitted, first_poll)
        events.subscribe(TaskFinished, finished)
        await poller.sweep()  # cut-off submits from a crash are failed before anything else
        poller.start()
        sender.start()
        copier.start()
        try:
            yield
        finally:
            await poller.stop()
            await copier.stop()
            await sender.stop()

    return workers
