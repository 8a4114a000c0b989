"""The operator's routes: liveness with a database check, the models the channel table serves,
and the Prometheus metrics."""

from __future__ import annotations

import logging

from aiohttp import web

from relay.errors import PermissionDenied, ServiceUnavailable, StorageUnavailable
from relay.metrics import METRICS, from_loopback
from relay.web import credentials
from relay.web.keys import CONFIG, RUNTIME, STARTED_AT, STORE
from relay.web.middleware import json_response, public

log = logging.getLogger("relay.web")


@public
async def healthz(request: web.Request) -> web.Response:
    """A read of the database that never waits for a write (the store's ping), so it answers at
    once while another process holds the write lock; a 503 when the database cannot be read."""
    try:
        await request.app[STORE].ping()
    except StorageUnavailable:
        raise  # the store has logged it (once)
    except Exception as exc:
        log.error("health check: database unavailable: %s", exc)
        raise ServiceUnavailable("database unavailable") from None
    return json_response({"status": "ok", "database": "ok"})


async def models(request: web.Request) -> web.Response:
    created = int(request.app[STARTED_AT])
    channels = request.app[RUNTIME].channels
    # `cancel` is the relay's own addition: whether POST /v1/videos/{id}/cancel can stop this
    # model's videos upstream
    data = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "relay",
            "cancel": channels.cancels(name),
        }
        for name in channels.models()
    ]
    return json_response({"object": "list", "data": data})


@public  # it checks its own key: an admin's, or none from loopback with metrics_loopback
async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text exposition. A key sent from loopback is checked all the same."""
    header = request.headers.get("Authorization")
    keyless = header is None and request.app[CONFIG].server.metrics_loopback
    if not (keyless and from_loopback(request)):
        who = await credentials.principal(request)  # failed keys count, as on every route
        if not who.admin:
            raise PermissionDenied("the metrics are for an admin key")
    registry = request.app[METRICS]
    await registry.read_store(request.app[STORE])
    return await registry.expose(request)
