"""Which credential a request may use, by path, and the rules around the session cookie.

    path                                   credentials taken
    /v1/...                                `Authorization: Bearer <API key>`
    GET/HEAD /v1/videos/{id}/content       the same, or the session cookie (so <video src> plays)
    /api/...                               `token: <jwt>`, `Authorization: Bearer <jwt>`, or the
                                           session cookie (in this order: the first one present
                                           decides, a bad one is not passed over)

A state-changing request (not GET/HEAD/OPTIONS) authenticated by the cookie must come from the
relay's own page: `Origin` equal to `public_url`'s origin, or `Sec-Fetch-Site: same-origin`;
otherwise 403 before anything happens. No CORS headers are ever sent, so other sites cannot read
answers either.

A request that presents a credential that fails counts against its client address (20 a
minute, then 429); one that presents none is a plain 401 and counts nothing. With `[dashboard]
enabled = false` no token or cookie is taken anywhere (sessions made before stay unused).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from relay.auth import bearer_token
from relay.domain import Principal
from relay.errors import AuthenticationFailed, PermissionDenied, RateLimitExceeded
from relay.logs import client_address
from relay.web.keys import CONFIG, RUNTIME, SESSION, SIGNIN

COOKIE = "relay_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_ROUTE = "/v1/videos/{video_id}/content"
_DEFAULT_PORTS = {"http": 80, "https": 443}


async def principal(request: web.Request) -> Principal:
    """Who is calling a route that needs a caller, by the rules above."""
    try:
        return await _principal(request)
    except AuthenticationFailed:
        if _presented(request):
            wait = request.app[SIGNIN].failed(client_address(request))
            if wait is not None:
                raise RateLimitExceeded(
                    "too many failed authentications from this address; try again later",
                    retry_after=wait,
                ) from None
        raise


async def signed_in(request: web.Request) -> Principal | None:
    """The session cookie's user, or None: for pages that only decide where to send someone."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        who, _ = await request.app[SIGNIN].from_cookie(cookie)
    except AuthenticationFailed:
        return None
    return who


def dashboard_path(request: web.Request) -> bool:
    return request.path.startswith("/api/")


async def _principal(request: web.Request) -> Principal:
    app = request.app
    if dashboard_path(request):
        signin = app[SIGNIN]
        if not app[CONFIG].dashboard.enabled:
            raise AuthenticationFailed(
                "the dashboard is turned off here ([dashboard] enabled = false): use an API key "
                "on /v1",
                code="dashboard_disabled",
            )
        token = request.headers.get("token")
        if token is None and "Authorization" in request.headers:
            token = bearer_token(request.headers["Authorization"])
        if token is not None:
            who, request[SESSION] = await signin.from_token(token.strip())
            return who
        cookie = request.cookies.get(COOKIE)
        if cookie is None:
            raise AuthenticationFailed(
                "sign in first: POST /api/login, then send its token as a 'token' header or "
                "'Authorization: Bearer <token>' (API keys go to /v1)",
                code="invalid_token",
            )
        return await _from_cookie(request, cookie)
    header = request.headers.get("Authorization")
    if header is None and _cookie_allowed(request) and app[CONFIG].dashboard.enabled:
        cookie = request.cookies.get(COOKIE)
        if cookie is not None:
            return await _from_cookie(request, cookie)
    return await app[RUNTIME].auth.authenticate(header)


async def _from_cookie(request: web.Request, cookie: str) -> Principal:
    if request.method not in SAFE_METHODS:
        check_origin(request)
    who, request[SESSION] = await request.app[SIGNIN].from_cookie(cookie)
    return who


def _cookie_allowed(request: web.Request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    route = request.match_info.route
    return route.resource is not None and route.resource.canonical == CONTENT_ROUTE


def _presented(request: web.Request) -> bool:
    if "Authorization" in request.headers:
        return True
    if dashboard_path(request):
        return "token" in request.headers or COOKIE in request.cookies
    return COOKIE in request.cookies and _cookie_allowed(request)


def check_origin(request: web.Request) -> None:
    """403 unless the request comes from the relay's own origin."""
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    own = origin_of(request.app[CONFIG].server.public_url)
    given = request.headers.get("Origin")
    if given is not None and own is not None and origin_of(given) == own:
        return
    raise PermissionDenied(
        "a request signed in by the session cookie must come from the relay's own pages",
        code="cross_origin_request",
    )


def check_not_cross_site(request: web.Request) -> None:
    """For a sign-in, which carries no cookie yet: refuse only what a browser marks as coming
    from another site (a script or curl sends neither header and may sign in)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site == "same-origin" or ("Origin" not in request.headers and site in (None, "none")):
        return
    check_origin(request)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or an Origin header, default ports filled in."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    config = request.app[RUNTIME].config
    response.set_cookie(
        COOKIE,
        value,
        max_age=max(1, int(config.dashboard.session_hours * 3600)),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Lax", secure=_secure(request))


def _secure(request: web.Request) -> bool:
    return request.app[CONFIG].server.public_url.lower().startswith("https:")
