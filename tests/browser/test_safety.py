"""What keeps the pages safe, seen from a browser: the page headers, a CSP that really blocks
inline script (and that the watch reports it), and a cross-site POST carrying the session
cookie refused with nothing changed."""

from __future__ import annotations

from typing import Any

from tests.browser.rig import Relay, User, Watch, sign_in

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; frame-ancestors 'none'"
)


def test_pages_come_with_the_safety_headers(page: Any, relay: Relay, user: User):
    sign_in(page, user)
    for path in ("/login", "/dashboard", "/dashboard/keys"):
        answer = page.goto(path)
        headers = answer.headers
        assert headers["content-security-policy"].startswith(CSP), headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "access-control-allow-origin" not in headers
    # no inline script anywhere, and every script is the relay's own module
    scripts = page.locator("script")
    for i in range(scripts.count()):
        assert scripts.nth(i).get_attribute("type") == "module"
        assert scripts.nth(i).get_attribute("src").startswith("/static/")
        assert scripts.nth(i).inner_text() == ""
    handlers = page.evaluate(
        """() => [...document.querySelectorAll("*")].flatMap(
             (el) => [...el.attributes].map((a) => a.name).filter((n) => n.startsWith("on")))"""
    )
    assert handlers == []


def test_the_csp_blocks_inline_script_and_the_watch_reports_it(
    new_page: Any, relay: Relay, user: User, watch: Watch
):
    page = new_page()
    sign_in(page, user)
    page.goto("/dashboard")
    page.evaluate(
        """() => {
             const s = document.createElement("script");
             s.textContent = "window.__ran = true";
             document.body.append(s);
           }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None  # blocked
    assert any("script-src" in v for v in watch.csp), watch.csp
    watch.csp.clear()  # seen: the page's own code has none
    watch.console.clear()


def fulfil(html: str) -> Any:
    return lambda route: route.fulfill(body=html, content_type="text/html")


def test_a_cross_site_post_with_the_cookie_is_refused(
    new_page: Any, relay: Relay, user: User, watch: Watch
):
    """Another site on the same host (another port: same site, so SameSite=Lax still sends the
    cookie) posts forms to the relay: 403, and nothing is made."""
    page = new_page()
    sign_in(page, user)
    evil = "http://127.0.0.1:9/evil"  # answered by the test, never by a server
    forms = {
        "/api/keys": "<input name=name value=stolen>",
        "/api/videos": "<input name=prompt value=stolen>",
        "/api/logout": "",
    }
    sent: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.all_headers())
            if r.url.startswith(relay.url) and r.method == "POST"
            else None
        ),
    )
    for path, fields in forms.items():
        watch.allow(403, path)
        html = (
            f'<form method=post action="{relay.url}{path}">{fields}</form>'
            "<script>document.forms[0].submit()</script>"
        )
        page.route(evil, fulfil(html))
        with page.expect_response(lambda r, p=path: r.url == relay.url + p) as answered:
            page.goto(evil, wait_until="commit")
        assert answered.value.status == 403
        assert answered.value.json()["error"]["code"] == "cross_origin_request"
        page.unroute(evil)
    assert all("relay_session=" in h.get("cookie", "") for h in sent)  # the cookie went along
    assert all(h.get("origin") == "http://127.0.0.1:9" for h in sent)
    # nothing happened: no key, no video, still signed in
    assert relay.api("GET", "/api/keys", token=user.token).body["data"] == []
    assert relay.api("GET", "/api/videos", token=user.token).body["data"] == []
    assert page.context.request.get("/api/me").status == 200
