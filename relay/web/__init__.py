"""The HTTP layer: the whole route table in one place (`setup_routes`), the middleware, and the
handlers by subject. Nothing here decides policy; handlers read a request, call a use case and
render its answer.

The dashboard's JSON routes (relay/web/account.py, manage.py; credentials in credentials.py):

    Method  Path                  Who           Body -> answer
    POST    /api/login            anyone        {username, password} (JSON or form) ->
                                                {token, expires_at, session_expires_at,
                                                user: {name, role}} + cookie relay_session
    POST    /api/logout           anyone        -> {object: "logout", signed_out}; clears the cookie
    GET     /api/me               signed in     -> {name, role}
    *       /api/videos...        signed in     exactly the /v1/videos routes (same handlers);
                                                GET /api/videos also takes q= (prompt search) and,
                                                for an admin, owner=NAME|all
    GET     /api/models           signed in     -> {data: [{id, seconds, sizes, remix, cancel,
                                                image_input, features, variants}], defaults:
                                                {model, seconds, size}}
    GET     /api/keys             signed in     -> {data: [{id, name, prefix, created_at,
                                                revoked_at, active}]} (the caller's own)
    POST    /api/keys             signed in     {name?} -> the key's fields + key (shown once)
    DELETE  /api/keys/{id}        signed in     -> {id, object: "api_key.revoked", revoked: true}
    GET     /api/channels         admin         -> {data: [{name, provider, models, enabled, state,
                                                until, in_flight, limit, priority, weight,
                                                last_error: {class, at} | null}]}
    GET     /api/owners?ids=a,b   admin         -> {data: [{id, owner, channel}]}: who made each
                                                video and where it ran (unknown ids left out)
    GET     /api/users            admin         -> {data: [{name, role, disabled, has_password,
                                                created_at}]}
    POST    /api/users            admin         {name, password?, role?} -> the user
    POST    /api/users/{name}     admin         {password?, role?, disabled?} -> the user

The pages (relay/web/pages.py: `/`, `/login`, `/dashboard...`, `/static/...`) are there
only with `[dashboard] enabled = true`, as are sign-in and sign-out.

"Signed in": a `token: <jwt>` header, `Authorization: Bearer <jwt>`, or the session cookie
(state changes by cookie only from the relay's own origin). Errors are the API's envelope:
401 `authentication_error`, 403 `permission_error`, 429 with `Retry-After`.
"""

from __future__ import annotations

from aiohttp import web

from relay.web import account, admin, files, manage, pages, videos
from relay.web.keys import CONFIG


def setup_routes(app: web.Application) -> None:
    add = app.router
    add.add_post("/v1/videos", videos.create)
    add.add_get("/v1/videos", videos.list_videos)
    add.add_get("/v1/videos/{video_id}", videos.retrieve)
    add.add_delete("/v1/videos/{video_id}", videos.delete)
    add.add_post("/v1/videos/{video_id}/remix", videos.remix)
    add.add_post("/v1/videos/{video_id}/cancel", videos.cancel)
    add.add_get("/v1/videos/{video_id}/content", videos.content)  # HEAD too
    add.add_get("/v1/files/{token}", files.hosted)  # HEAD too; no auth (relay/hosting.py)
    add.add_get("/v1/models", admin.models)
    add.add_get("/healthz", admin.healthz)
    add.add_get("/metrics", admin.metrics)

    _mirror(add, "/v1/videos", "/api/videos")  # the same handlers, dashboard credentials
    if app[CONFIG].dashboard.enabled:  # no sign-in, so no new sessions or tokens, when off
        add.add_post("/api/login", account.login)
        add.add_post("/api/logout", account.logout)
        app[pages.ASSETS] = pages.Assets.load()
        add.add_get("/", pages.root)
        add.add_get("/login", pages.login)
        add.add_get("/dashboard", pages.page("videos"))
        add.add_get("/dashboard/videos/{video_id}", pages.page("video"))
        add.add_get("/dashboard/keys", pages.page("keys"))
        add.add_get("/dashboard/channels", pages.page("channels", admin=True))
        add.add_get("/dashboard/users", pages.page("users", admin=True))
        add.add_get("/static/{release}/{path:.+}", pages.static)
    add.add_get("/api/me", account.me)
    add.add_get("/api/models", manage.models)
    add.add_get("/api/keys", account.list_keys)
    add.add_post("/api/keys", account.create_key)
    add.add_delete("/api/keys/{key_id}", account.revoke_key)
    add.add_get("/api/channels", manage.channels)
    add.add_get("/api/owners", manage.owners)
    add.add_get("/api/users", manage.list_users)
    add.add_post("/api/users", manage.create_user)
    add.add_post("/api/users/{name}", manage.change_user)


def _mirror(add: web.UrlDispatcher, source: str, target: str) -> None:
    """Every route under `source` again under `target`, with the same handler."""
    for route in list(add.routes()):
        path = route.resource.canonical if route.resource is not None else ""
        if (path == source or path.startswith(source + "/")) and route.method != "HEAD":
            twin = target + path[len(source) :]
            if route.method == "GET":
                add.add_get(twin, route.handler)  # HEAD too, as for the original
            else:
                add.add_route(route.method, twin, route.handler)
