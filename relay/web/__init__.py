"""The HTTP layer: the whole route table in one place (`setup_routes`), the middleware, and the
handlers by subject. Nothing here decides policy; handlers read a request, call a use case and
render its answer."""

from __future__ import annotations

from aiohttp import web

from relay.web import admin, videos


def setup_routes(app: web.Application) -> None:
    add = app.router
    add.add_post("/v1/videos", videos.create)
    add.add_get("/v1/videos", videos.list_videos)
    add.add_get("/v1/videos/{video_id}", videos.retrieve)
    add.add_delete("/v1/videos/{video_id}", videos.delete)
    add.add_post("/v1/videos/{video_id}/remix", videos.remix)
    add.add_get("/v1/videos/{video_id}/content", videos.content)  # HEAD too
    add.add_get("/v1/models", admin.models)
    add.add_get("/healthz", admin.healthz)
    add.add_get("/metrics", admin.metrics)
