"""create_app(config): the app's state, lifecycle, middlewares and route table.

Nothing happens at import time. Resources open in `cleanup_ctx` order and close in reverse:
store -> outbound HTTP -> runtime (channels, keys, limits) -> poller -> webhook sender -> copier.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from relay import api
from relay.auth import Authenticator, RateLimiter
from relay.channels import Channel, ChannelTable
from relay.config import Config
from relay.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    RelayError,
    RequestTooLarge,
)
from relay.lifecycle import Lifecycle
from relay.poller import Poller
from relay.providers import REGISTRY
from relay.routing import build_adapter
from relay.runtime import Runtime
from relay.storage import Copier, Library
from relay.store import Store
from relay.tasks import Videos
from relay.upstream import Http
from relay.webhooks import Sender

log = logging.getLogger("relay.app")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@dataclass
class State:
    store: Store
    http: Http
    runtime: Runtime
    videos: Videos
    lifecycle: Lifecycle
    poller: Poller
    webhooks: Sender
    copier: Copier
    started_at: float


STATE = web.AppKey("state", State)
CONFIG = web.AppKey("config", Config)
REQUEST_ID = web.RequestKey("request_id", str)


def build_runtime(config: Config, store: Store, http: Http) -> Runtime:
    channels = []
    for cfg in config.channels:
        channels.append(Channel(cfg, build_adapter(cfg, REGISTRY[cfg.provider], http)))
    return Runtime(
        config=config,
        channels=ChannelTable(channels),
        auth=Authenticator(store, config.keys),
        limiter=RateLimiter(config.limits.requests_per_minute),
    )


async def reload(app: web.Application, config: Config) -> None:
    """Swap in a new channel table, keys and limits; running tasks and downloads go on."""
    state = app[STATE]
    old = state.runtime.config.server
    if config.server != old:
        log.warning("server settings changed in the config; they take effect at the next start")
    runtime = build_runtime(config, state.store, state.http)
    runtime.channels.set_in_flight(await state.store.count_active_by_channel())
    state.runtime = runtime
    log.info("config reloaded: %d channels, %d static keys", len(config.channels), len(config.keys))


def create_app(config: Config, *, clock: Callable[[], float] = time.time) -> web.Application:
    max_body = int(config.server.max_upload_bytes * 4 / 3) + 2 * 1024 * 1024
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=max_body,
        handler_args={"max_field_size": 16 * 1024},
    )
    app[CONFIG] = config
    app.on_response_prepare.append(_stamp_request_id)
    app.cleanup_ctx.append(_lifecycle(config, clock))
    routes(app)
    return app


def routes(app: web.Application) -> None:
    app.router.add_post("/v1/videos", api.create)
    app.router.add_get("/v1/videos", api.list_videos)
    app.router.add_get("/v1/videos/{video_id}", api.retrieve)
    app.router.add_delete("/v1/videos/{video_id}", api.delete)
    app.router.add_post("/v1/videos/{video_id}/remix", api.remix)
    app.router.add_get("/v1/videos/{video_id}/content", api.content)  # HEAD too
    app.router.add_get("/v1/models", api.models)
    app.router.add_get("/healthz", api.healthz)


def _lifecycle(
    config: Config, clock: Callable[[], float]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config.server.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(config.server.data_dir / "relay.db")
        http = Http(allow_private_networks=config.server.allow_private_networks)
        runtime = build_runtime(config, store, http)
        runtime.channels.set_in_flight(await store.count_active_by_channel())
        state_box: list[State] = []
        library = Library(config.server.data_dir)
        videos = Videos(
            store,
            lambda: state_box[0].runtime,
            instance=secrets.token_hex(8),
            library=library,
            clock=clock,
        )
        life = Lifecycle(store, lambda: state_box[0].runtime, instance=videos.instance, clock=clock)
        poller = Poller(life, store, clock=clock)
        sender = Sender(
            store,
            http,
            lambda: state_box[0].runtime.config.webhooks,
            instance=videos.instance,
            clock=clock,
        )
        copier = Copier(
            store,
            http,
            library,
            source_of=videos.source_for_copy,
            refresh_of=videos.refresh_for_copy,
            settings=lambda: state_box[0].runtime.config.storage,
            instance=videos.instance,
            clock=clock,
        )
        state = State(store, http, runtime, videos, life, poller, sender, copier, clock())
        state_box.append(state)
        app[STATE] = state

        async def wake_workers(_: object) -> None:
            sender.wake()
            copier.wake()

        life.finished_listeners.append(wake_workers)
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
            await http.close()
            await store.close()

    return lifecycle


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-request-id"] = request.get(REQUEST_ID) or _new_request_id(request)


def client_address(request: web.BaseRequest) -> str:
    """Who is calling: the peer, or with `server.trust_proxy` the first X-Forwarded-For entry
    (the client as the reverse proxy saw it). Used in the access log."""
    config = request.app.get(CONFIG) if isinstance(request, web.Request) else None
    if config is not None and config.server.trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote or "-"


def _new_request_id(request: web.Request) -> str:
    rid = "req_" + secrets.token_hex(12)
    request[REQUEST_ID] = rid
    request_id.set(rid)
    return rid


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    _new_request_id(request)
    try:
        return await handler(request)
    except RelayError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        return error_response(_from_http_exception(request, exc))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(InternalError("internal error; see the relay's log"))


def error_response(exc: RelayError) -> web.Response:
    response = web.json_response(exc.body(), status=exc.status, dumps=api.dumps)
    response.headers.update(exc.headers)
    return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> RelayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
            headers={"Allow": allowed},
        )
    if isinstance(exc, web.HTTPNotFound):
        return NotFound(f"no route for {request.method} {request.path}")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RequestTooLarge("the request body is too large")
    error = RelayError(exc.reason or "request failed", code=exc.reason.lower().replace(" ", "_"))
    error.status = exc.status
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"
    return error
