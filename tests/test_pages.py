"""The dashboard's pages over plain HTTP (the browser tests are tests/browser/): where each
path sends whom, the page headers, the static files and their caching, the language, the
switch when the dashboard is off, and the static set itself (packaged, small, no HTML from
data, one catalogue per language with every word the scripts ask for)."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from relay.config import Config
from relay.providers.base import Provider
from relay.web import pages
from tests.dashboard import Dash, start_dash

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "relay" / "web" / "static"
CONTRACT_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; frame-ancestors 'none'"
)
PAGES = ["/dashboard", "/dashboard/videos/video_abc", "/dashboard/keys"]
ADMIN_PAGES = ["/dashboard/channels", "/dashboard/users"]


@pytest.fixture
async def dash(
    aiohttp_client: Callable[..., Any],
    config: Config,
    providers: dict[str, type[Provider[Any]]],
) -> Dash:
    return await start_dash(aiohttp_client, config, providers)


async def session(dash: Dash, name: str = "alice") -> dict[str, str]:
    _, value = await dash.signed_in(name)
    return {"Cookie": f"relay_session={value}"}


async def get(dash: Dash, path: str, **headers: str) -> Any:
    return await dash.client.get(path, headers=headers, allow_redirects=False)


def assert_page_headers(resp: Any) -> None:
    assert resp.headers["Content-Security-Policy"].startswith(CONTRACT_CSP)
    assert "script-src" not in resp.headers["Content-Security-Policy"]  # 'self' only
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert "Access-Control-Allow-Origin" not in resp.headers


# --- where each path sends whom ---------------------------------------------------------------


async def test_root_sends_to_sign_in_or_to_the_videos(dash: Dash):
    resp = await get(dash, "/")
    assert resp.status == 302 and resp.headers["Location"] == "/login"
    assert_page_headers(resp)
    resp = await get(dash, "/", **await session(dash))
    assert resp.status == 302 and resp.headers["Location"] == "/dashboard"
    resp = await get(dash, "/", Cookie="relay_session=not-a-session")
    assert resp.headers["Location"] == "/login"


@pytest.mark.parametrize("path", [*PAGES, *ADMIN_PAGES, "/dashboard/keys?x=1&y=2"])
async def test_a_page_sends_a_stranger_to_sign_in_and_back(dash: Dash, path: str):
    resp = await get(dash, path)
    assert resp.status == 302
    assert resp.headers["Location"] == "/login?next=" + path.replace("?", "%3F").replace(
        "&", "%26"
    ).replace("=", "%3D")
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", PAGES)
async def test_pages_for_the_signed_in(dash: Dash, path: str):
    resp = await get(dash, path, **await session(dash))
    html = await resp.text()
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert_page_headers(resp)
    assert 'data-user="alice" data-role="user"' in html


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_admin_pages_are_403_for_users(dash: Dash, path: str):
    resp = await get(dash, path, **await session(dash, "alice"))
    assert resp.status == 403
    assert 'data-page="forbidden"' in await resp.text()
    resp = await get(dash, path, **await session(dash, "root"))
    assert resp.status == 200
    assert f'data-page="{path.rsplit("/", 1)[1]}"' in await resp.text()


@pytest.mark.parametrize(
    ("wanted", "goes_to"),
    [
        ("/dashboard/keys", "/dashboard/keys"),
        ("/dashboard/videos/video_1?x=1", "/dashboard/videos/video_1?x=1"),
        ("//evil.example/x", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
        ("javascript:alert(1)", "/dashboard"),
        ("", "/dashboard"),
    ],
)
async def test_sign_in_page_sends_the_signed_in_on_never_off_site(
    dash: Dash, wanted: str, goes_to: str
):
    resp = await dash.client.get(
        "/login", params={"next": wanted}, headers=await session(dash), allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == goes_to


async def test_the_sign_in_page(dash: Dash):
    resp = await get(dash, "/login")
    html = await resp.text()
    assert resp.status == 200 and 'data-page="login"' in html
    assert_page_headers(resp)
    assert "data-user" not in html


# --- the HTML carries no inline script --------------------------------------------------------


async def test_the_html_has_no_inline_script_and_names_this_release(dash: Dash):
    html = await (await get(dash, "/login")).text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts == [""]
    assert re.search(r'<script type="module" src="/static/[0-9a-f]{16}/app.js">', html)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline handlers
    assert "style=" not in html


# --- static files and caching -----------------------------------------------------------------


def static_url(html: str, name: str) -> str:
    match = re.search(rf'"(/static/[0-9a-f]+/{re.escape(name)})"', html)
    assert match, name
    return match.group(1)


async def test_static_files_are_immutable_under_their_release(dash: Dash):
    html = await (await get(dash, "/login")).text()
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        resp = await get(dash, static_url(html, name))
        assert resp.status == 200
        assert resp.content_type == kind
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert await resp.read() == (STATIC / name).read_bytes()
        again = await get(dash, static_url(html, name), **{"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304
    catalogue = await get(dash, static_url(html, "app.js").replace("app.js", "i18n/zh-CN.json"))
    assert catalogue.content_type == "application/json"
    assert (await catalogue.json())["login.submit"] == "登录"


async def test_another_release_gets_todays_file_uncached(dash: Dash):
    resp = await get(dash, "/static/0000000000000000/app.js")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    assert await resp.read() == (STATIC / "app.js").read_bytes()


@pytest.mark.parametrize(
    "path", ["/static/x/nothing.js", "/static/x/../pages.py", "/static/x/%2e%2e/pages.py"]
)
async def test_only_the_static_files_are_served(dash: Dash, path: str):
    resp = await get(dash, path)
    assert resp.status == 404


def test_a_changed_file_is_a_new_release(tmp_path: Path):
    copy = tmp_path / "static"
    shutil.copytree(STATIC, copy)
    before = pages.Assets.load(copy).release
    assert pages.Assets.load(copy).release == before  # stable
    (copy / "style.css").write_text((copy / "style.css").read_text() + "\n/* next */\n")
    assert pages.Assets.load(copy).release != before


# --- language and theme -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "cookie", "lang"),
    [
        ("", None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh-CN"),
        ("zh-TW", None, "zh-CN"),
        ("zh-Hans-CN", None, "zh-CN"),
        ("fr-FR, en;q=0.5, zh;q=0.4", None, "en"),
        ("de, zh;q=0.3", None, "zh-CN"),
        ("zh;q=0, en", None, "en"),
        ("en-US,en;q=0.9", "zh-CN", "zh-CN"),  # the switch wins
        ("zh-CN", "en", "en"),
        ("zh-CN", "klingon", "zh-CN"),  # a bad cookie is ignored
    ],
)
async def test_the_language_from_the_switch_else_accept_language(
    dash: Dash, accept: str, cookie: str | None, lang: str
):
    headers = {"Accept-Language": accept}
    if cookie:
        headers["Cookie"] = f"relay_lang={cookie}"
    html = await (await get(dash, "/login", **headers)).text()
    assert f'<html lang="{lang}"' in html


async def test_the_theme_switch_is_read_back(dash: Dash):
    dark = await (await get(dash, "/login", Cookie="relay_theme=dark")).text()
    assert 'data-theme="dark"' in dark
    odd = await (await get(dash, "/login", Cookie='relay_theme="><script>')).text()
    assert "data-theme" not in odd and "<script>" not in odd.replace('<script type="module"', "")


# --- the dashboard turned off -----------------------------------------------------------------


async def test_with_the_dashboard_off_there_are_no_pages(
    aiohttp_client: Callable[..., Any],
    make_config: Callable[..., Config],
    providers: dict[str, type[Provider[Any]]],
):
    config = make_config(dashboard={"enabled": False})
    dash = await start_dash(aiohttp_client, config, providers)
    for path in ("/", "/login", "/dashboard", "/dashboard/keys", "/static/x/app.js"):
        resp = await get(dash, path)
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] == "not_found"


# --- the static set ---------------------------------------------------------------------------


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


def test_every_static_file_is_in_the_package_data():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["relay.web"]
    web = ROOT / "relay" / "web"
    for path in static_files():
        name = path.relative_to(web).as_posix()
        assert any(fnmatch(name, g) and name.count("/") == g.count("/") for g in globs), name


def test_the_asset_set_is_small():
    total = sum(p.stat().st_size for p in static_files())
    assert total < 100 * 1024, f"{total} bytes"


def scripts() -> dict[str, str]:
    return {p.name: p.read_text() for p in STATIC.glob("*.js")}


def test_scripts_never_turn_data_into_html():
    for name, text in scripts().items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{name} uses {sink}"
        assert "new Function" not in text
        assert "localStorage" not in text and "sessionStorage" not in text, name


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text())  # type: ignore[no-any-return]


def test_one_catalogue_per_language_with_the_same_words():
    assert sorted(p.stem for p in (STATIC / "i18n").glob("*.json")) == sorted(pages.LANGUAGES)
    english, chinese = catalogue("en"), catalogue("zh-CN")
    assert set(english) == set(chinese)
    for key, text in english.items():
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", chinese[key])), key
    # the element names the tests rely on
    for key, text in {
        "login.username": "Username",
        "login.password": "Password",
        "login.submit": "Sign in",
        "create.prompt": "Prompt",
        "create.model": "Model",
        "create.seconds": "Seconds",
        "create.size": "Size",
        "create.image": "Image",
        "create.submit": "Create video",
        "nav.signout": "Sign out",
        "list.more": "Load more",
        "video.delete": "Delete",
        "video.remix": "Remix",
        "video.download": "Download",
    }.items():
        assert english[key] == text
    for status in ("queued", "in_progress", "completed", "failed"):
        assert english[f"status.{status}"] == status  # the status words, as the API spells them


def test_every_word_the_scripts_ask_for_is_in_the_catalogues():
    english = catalogue("en")
    asked: set[str] = set()
    for text in scripts().values():
        asked |= set(re.findall(r"""\bt\(\s*["']([\w.-]+)["']""", text))
    missing = sorted(asked - set(english))
    assert not missing, missing
    # and the words asked for by a computed key
    computed = {
        "status": ["queued", "in_progress", "completed", "failed"],
        "state": ["ready", "cooling", "rate_limited", "credentials", "quota", "disabled", "full"],
        "role": ["user", "admin"],
        "theme": ["auto", "light", "dark"],
        "lang": list(pages.LANGUAGES),
        "title": ["login", "videos", "video", "keys", "channels", "users", "forbidden"],
        "nav": ["videos", "keys", "channels", "users"],
        "detail": ["id", "model", "seconds", "size", "status", "created", "completed"],
    }
    for prefix, names in computed.items():
        for name in names:
            assert f"{prefix}.{name}" in english, f"{prefix}.{name}"
    unused = sorted(k for k in english if k not in asked and k.split(".")[0] not in computed)
    assert not unused, f"words no script asks for: {unused}"


# --- the README's dashboard section -----------------------------------------------------------


def test_the_readme_shows_the_dashboard():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Dashboard\n", 1)[1].split("\n## ", 1)[0]
    assert "relay users add" in section and "relay users passwd" in section
    assert "docs/dashboard.png" in section
    shot = ROOT / "docs" / "dashboard.png"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 200 * 1024
