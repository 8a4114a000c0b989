"""create_app(config): the app's state, its resources and the route table.

Nothing happens at import time. Each resource is one `cleanup_ctx`, opened in this order and
closed in reverse: the store -> outbound HTTP -> the runtime (channels, keys, limits, the use
cases) -> sign-in (the token key in data_dir, sessions, throttles) -> the workers (poller,
webhook sender, copier). A failure while opening one leaves the
ones before it to be closed by the app's cleanup.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from relay import logs
from relay.config import Config
from relay.events import Events, TaskFinished, TaskSubmitted
from relay.hosting import Hosting
from relay.metrics import METRICS, Metrics
from relay.providers import REGISTRY
from relay.providers.base import Provider
from relay.runtime import Runtime, build_parts
from relay.signin import SignIn
from relay.storage import open_library
from relay.store import open_store
from relay.tasks import Context, Videos
from relay.tokens import signing_key
from relay.upstream import Http
from relay.web import setup_routes, timeouts
from relay.web.keys import (
    CONFIG,
    COPIER,
    EVENTS,
    HEALTH,
    HTTP,
    POLLER,
    RUNTIME,
    SENDER,
    SIGNIN,
    STARTED_AT,
    STORE,
    VIDEOS,
)
from relay.web.middleware import front, on_prepare
from relay.workers.copier import Copier
from relay.workers.health import HealthSync
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
        middlewares=[front],
        client_max_size=max_body,
        handler_args={"max_field_size": 16 * 1024, **timeouts.handler_args()},
    )
    app[CONFIG] = config
    app[logs.TRUST_PROXY] = config.server.trust_proxy
    app[EVENTS] = Events()
    app[METRICS] = Metrics()  # a registry per app, so several apps in one process never clash
    app[METRICS].watch(app[EVENTS])
    app[STARTED_AT] = clock()
    app.on_response_prepare.append(on_prepare)
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
    await app[HEALTH].announce()
    log.info("config reloaded: %d channels, %d static keys", len(config.channels), len(config.keys))


async def _store(app: web.Application) -> AsyncIterator[None]:
    private_data(app[CONFIG])
    app[STORE] = await open_store(app[CONFIG].store.url, pool_size=app[CONFIG].store.pool_size)
    try:
        yield
    finally:
        await app[STORE].close()


def private_data(config: Config) -> None:
    """data_dir is made 0700, and the SQLite database 0600 before SQLite creates it (its WAL
    and SHM files take the database's mode), whatever the umask of whoever starts the relay.
    A database or admin.key left readable by others (by an older relay) is made 0600 again."""
    data_dir = config.server.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o007:
        log.warning(
            "data_dir %s is open to other users (mode %04o); `chmod 700 %s` makes it private",
            data_dir,
            mode,
            data_dir,
        )
    private = [data_dir / "admin.key"]
    if config.store.url.startswith("sqlite:///"):
        db = Path(config.store.url.removeprefix("sqlite:///"))
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        private += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    for path in private:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
                log.warning("%s was readable by other users; made it 0600", path)


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
        library = open_library(config, app[HTTP].trusted)
        ctx = Context(
            store=store,
            runtime=live,
            events=events,
            clock=clock,
            instance=secrets.token_hex(8),
            library=library,
            hosting=Hosting(
                library,
                await store.shared_secret("hosted", secrets.token_bytes(32), clock()),
                public_url=lambda: live.config.server.public_url,
                allow_private=lambda: live.config.server.allow_private_networks,
                clock=clock,
                store=store,
            ),
        )
        app[VIDEOS] = Videos(ctx)
        # a finished task frees its channel's slot, in whichever table is current then
        events.subscribe(TaskFinished, lambda e: live.channels.release_by_name(e.channel))
        logs.watch(events)
        app[METRICS].watch_channels(lambda: live.channels, clock)
        yield

    return runtime


def _signin(clock: Callable[[], float]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def signin(app: web.Application) -> AsyncIterator[None]:
        runtime = app[RUNTIME]
        app[SIGNIN] = SignIn(
            app[STORE],
            await signing_key(app[STORE], app[CONFIG].server.data_dir, clock()),
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
        health = HealthSync(store, runtime, events, instance=ctx.instance, clock=clock)
        app[POLLER], app[SENDER], app[COPIER], app[HEALTH] = poller, sender, copier, health

        def first_poll(event: TaskSubmitted) -> None:
            if event.next_poll_at is not None:
                poller.due_at(event.next_poll_at)

        def finished(_: TaskFinished) -> None:
            sender.wake()
            copier.wake()

        def heard(notice: str) -> None:  # from another relay on the same store
            if notice == "due":
                poller.wake()
            elif notice == "finished":
                sender.wake()
                copier.wake()

        events.subscribe(TaskSubmitted, first_poll)
        events.subscribe(TaskFinished, finished)
        await store.listen(heard)
        await health.announce()
        await poller.sweep()  # cut-off submits from a crash are failed before anything else
        await copier.clean()
        poller.start()
        sender.start()
        copier.start()
        health.start()
        try:
            yield
        finally:
            await poller.stop()
            await copier.stop()
            await sender.stop()
            await health.stop()

    return workers
