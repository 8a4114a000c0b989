"""The dashboard's pages: one small HTML shell per page, and the static files it loads.

    GET /                       -> /dashboard when signed in, else /login
    GET /login                  the sign-in form (signed in already: on to `next` or /dashboard)
    GET /dashboard              the create form and the video list      } signed in, else
    GET /dashboard/videos/{id}  one video                               } /login?next=<path>
    GET /dashboard/keys         the caller's API keys                   }
    GET /dashboard/channels     the channel table  (admins; others: 403 page)
    GET /dashboard/users        the users          (admins; others: 403 page)
    GET /static/{release}/...   relay/web/static: the CSS, the JavaScript modules, the
                                catalogues (one JSON file per language)

Everything a page shows is drawn by its JavaScript module (static/app.js) from the JSON routes
under /api/, with the session cookie; the shell carries only the page's name, the signed-in
user and the language. The language is the `relay_lang` cookie the switch sets, else the best
match of `Accept-Language`; the theme is the `relay_theme` cookie, else the system's.

Static URLs carry a hash of every static file (`release`), so a new release is a new URL: they
are cached for a year as immutable, and the HTML, which names the release, is never cached. A
request for another release (a page from before an upgrade) gets today's file, not cached.

Every answer here has the page headers: a Content-Security-Policy with no inline script,
`X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` and no framing.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import orjson
from aiohttp import web

from relay.domain import Principal
from relay.web.credentials import signed_in
from relay.web.middleware import public

STATIC = Path(__file__).parent / "static"
LANGUAGES = ("en", "zh-CN")  # a catalogue each: static/i18n/<lang>.json
THEMES = ("light", "dark")
LANG_COOKIE = "relay_lang"
THEME_COOKIE = "relay_theme"

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Assets:
    """The static files, read once, and the release hash over all of them."""

    files: dict[str, Asset]
    release: str
    titles: dict[str, str]  # language -> the product name as its catalogue spells it

    @classmethod
    def load(cls, root: Path = STATIC) -> Assets:
        files: dict[str, Asset] = {}
        whole = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            whole.update(f"{name}\0{digest}\0".encode())
            ctype = _TYPES.get(path.suffix) or mimetypes.guess_type(name)[0]
            files[name] = Asset(body, ctype or "application/octet-stream", f'"{digest[:32]}"')
        titles = {
            lang: str(orjson.loads(files[f"i18n/{lang}.json"].body).get("app.title", "relay"))
            for lang in LANGUAGES
        }
        return cls(files, whole.hexdigest()[:16], titles)


ASSETS = web.AppKey("dashboard_assets", Assets)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the pages --------------------------------------------------------------------------------


@public
async def root(request: web.Request) -> web.StreamResponse:
    """GET /: to the videos when signed in, else to the sign-in form."""
    who = await signed_in(request)
    return redirect("/dashboard" if who is not None else "/login")


@public
async def login(request: web.Request) -> web.StreamResponse:
    """GET /login: the form; someone signed in already goes on to `next`."""
    if await signed_in(request) is not None:
        return redirect(local_path(request.query.get("next")) or "/dashboard")
    return shell(request, "login", None)


def page(name: str, *, admin: bool = False) -> Handler:
    """A page for people signed in (`admin`: admins only, a 403 page for others)."""

    @public
    async def handler(request: web.Request) -> web.StreamResponse:
        who = await signed_in(request)
        if who is None:
            return redirect("/login?next=" + quote(request.path_qs, safe="/"))
        if admin and not who.admin:
            return shell(request, "forbidden", who, status=403)
        return shell(request, name, who)

    handler.__name__ = f"page_{name}"
    return handler


@public
async def static(request: web.Request) -> web.StreamResponse:
    """GET /static/{release}/{path}: a file of relay/web/static."""
    assets = request.app[ASSETS]
    asset = assets.files.get(request.match_info["path"])
    if asset is None:
        raise web.HTTPNotFound()
    current = request.match_info["release"] == assets.release
    headers = {
        **PAGE_HEADERS,
        "ETag": asset.etag,
        "Cache-Control": IMMUTABLE if current else "no-cache",
    }
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


# --- pieces -----------------------------------------------------------------------------------


def redirect(location: str) -> web.Response:
    return web.Response(
        status=302, headers={**PAGE_HEADERS, "Location": location, "Cache-Control": "no-store"}
    )


def local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site (for `next=`), else None: never another origin."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ch in value for ch in "\\\r\n\t") or not value.isprintable():
        return None
    return value


def language(request: web.Request) -> str:
    """The switch's cookie, else the first language of Accept-Language we have, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("Accept-Language", "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, i, tag.strip().lower()))
    for weight, _, tag in sorted(ranked):
        if weight >= 0:  # q=0: "not this one"
            continue
        if tag == "zh" or tag.startswith("zh-"):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-") or tag == "*":
            return "en"
    return "en"


def shell(
    request: web.Request, name: str, who: Principal | None, *, status: int = 200
) -> web.Response:
    """The HTML of one page: the stylesheet, the entry module, and what the script needs."""
    assets = request.app[ASSETS]
    lang = language(request)
    theme = request.cookies.get(THEME_COOKIE)
    base = f"/static/{assets.release}/"

    def attr(value: str) -> str:
        return html.escape(value, quote=True)

    data = [f'data-page="{attr(name)}"']
    if theme in THEMES:
        data.append(f'data-theme="{theme}"')
    if who is not None:
        data.append(f'data-user="{attr(who.user)}" data-role="{attr(who.role)}"')
    body = f"""<!doctype html>
<html lang="{lang}" {" ".join(data)}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{attr(assets.titles[lang])}</title>
<link rel="icon" href="{base}icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{base}style.css">
<script type="module" src="{base}app.js"></script>
</head>
<body>
<noscript><p class="noscript">relay: this page needs JavaScript.</p></noscript>
<div id="app"></div>
</body>
</html>
"""
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={**PAGE_HEADERS, "Cache-Control": "no-cache", "Vary": "Cookie, Accept-Language"},
    )
