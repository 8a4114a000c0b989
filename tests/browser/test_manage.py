"""Keys, channels and users: a key shown once and revoked; an admin's channel table and user
management; everyone else gets 403 there."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.rig import Relay, User, Watch, expect, sign_in


def test_a_key_is_shown_once_works_and_stops_when_revoked(
    page: Any, relay: Relay, user: User, watch: Watch
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, user)
    page.goto("/dashboard")
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(f"{relay.url}/dashboard/keys")
    page.get_by_label("Label").fill("my laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator(".fresh-key code")
    expect(secret).to_have_text(re.compile(r"^sk-\S{30,}$"))
    key = secret.inner_text()
    page.locator(".fresh-key").get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    row = page.locator("tbody tr", has_text="my laptop")
    expect(row).to_contain_text("active")
    assert key not in row.inner_text()  # the list shows a prefix only
    # the key is the user's on /v1
    assert relay.api("GET", "/v1/videos", key=key).status == 200
    # and it is never shown again, nor kept by the page
    page.reload()
    expect(page.locator("tbody tr", has_text="my laptop")).to_be_visible()
    assert key not in page.content()
    storage = page.evaluate(
        "JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert key not in storage
    page.locator("tbody tr", has_text="my laptop").get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("tbody tr", has_text="my laptop")).to_contain_text("revoked")
    expect(page.locator("tbody tr", has_text="my laptop").get_by_role("button")).to_have_count(0)
    refused = relay.api("GET", "/v1/videos", key=key)
    assert refused.status == 401 and refused.body["error"]["code"] == "invalid_api_key"


def test_an_admin_sees_a_cooling_channel_and_never_a_credential(
    new_page: Any, relay: Relay, watch: Watch
):
    admin = relay.user("admin", role="admin")
    for _ in range(3):  # three failed submits in a row open the breaker
        assert (
            relay.api(
                "POST", "/api/videos", token=admin.token, body={"prompt": "x", "model": "broken"}
            ).status
            == 502
        )
    page = new_page()
    sign_in(page, admin)
    page.goto("/dashboard")
    page.get_by_role("link", name="Channels").click()
    broken = page.locator('tr[data-channel="broken"]')
    expect(broken).to_have_attribute("data-state", "cooling")
    expect(broken).to_contain_text("openai")
    expect(broken).to_contain_text(re.compile(r"cooling( until \d|, next request probes it)"))
    expect(broken).to_contain_text("Unavailable")  # the last error's class, and when
    demo = page.locator('tr[data-channel="demo"]')
    expect(demo).to_contain_text("ready")
    expect(demo).to_contain_text(re.compile(r"\d+ / 500"))
    html = page.content()
    assert (
        "sk-upstream-secret-never-shown" not in html
        and "127.0.0.1:" not in page.locator("main").inner_text()
    )


def test_a_user_gets_403_on_the_admin_pages(page: Any, relay: Relay, user: User, watch: Watch):
    sign_in(page, user)
    page.goto("/dashboard")
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="Videos")).to_be_visible()
    expect(nav.get_by_role("link", name="Channels")).to_have_count(0)
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    for path in ("/dashboard/channels", "/dashboard/users"):
        watch.allow(403, path)
        answer = page.goto(path)
        assert answer.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.locator("table")).to_have_count(0)
    for path in ("/api/channels", "/api/users"):
        watch.allow(403, path)
        answer = page.context.request.get(path)
        assert answer.status == 403 and answer.json()["error"]["type"] == "permission_error"


def test_an_admin_manages_users(new_page: Any, relay: Relay, watch: Watch):
    admin = relay.user("admin", role="admin")
    page = new_page()
    sign_in(page, admin)
    page.goto("/dashboard/users")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password", exact=True).fill("carol-first-password")
    page.get_by_role("button", name="Create user").click()
    carol = page.locator('tr[data-user="carol"]')
    expect(carol).to_contain_text("user")
    # a name taken already: the API's message, next to the name
    watch.allow(400, "/api/users")
    page.get_by_label("Username").fill("carol")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator('.field[data-param="name"] .field-error')).to_contain_text("exists already")
    # reset her password
    carol.get_by_role("button", name="Reset password").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New password").fill("carol-second-password")
    dialog.get_by_role("button", name="Reset password").click()
    expect(dialog).to_have_count(0)
    assert relay.login("carol", "carol-second-password")
    # make her admin, then take it back
    carol.get_by_role("button", name="Make admin").click()
    expect(carol).to_have_attribute("data-role", "admin")
    assert (
        relay.api(
            "GET", "/api/channels", token=relay.login("carol", "carol-second-password")
        ).status
        == 200
    )
    carol.get_by_role("button", name="Revoke admin").click()
    expect(carol).to_have_attribute("data-role", "user")
    # disable her: she cannot sign in any more
    signed_in = relay.login("carol", "carol-second-password")
    carol.get_by_role("button", name="Disable").click()
    expect(carol).to_have_attribute("data-disabled", "true")
    expect(carol).to_contain_text("disabled")
    assert relay.api("GET", "/api/me", token=signed_in).status == 401
    carol.get_by_role("button", name="Enable").click()
    expect(carol).to_have_attribute("data-disabled", "false")
    # an admin cannot lock themselves out from here
    me = page.locator(f'tr[data-user="{admin.name}"]')
    expect(me.get_by_role("button", name="Disable")).to_be_disabled()
    expect(me.get_by_role("button", name="Revoke admin")).to_be_disabled()
