"""Signing in and out through the pages: the form, where it sends you, what a wrong pair or a
throttle shows, and that signing out ends what the cookie could do."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.rig import Relay, User, Watch, expect, sign_in


def fill_sign_in(page: Any, name: str, password: str) -> None:
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_root_sends_a_stranger_to_sign_in_and_back_to_the_page_asked_for(
    page: Any, relay: Relay, user: User
):
    page.goto("/")
    expect(page).to_have_url(f"{relay.url}/login")
    page.goto("/dashboard/keys")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard/keys$"))
    fill_sign_in(page, user.name, user.password)
    expect(page).to_have_url(f"{relay.url}/dashboard/keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(f"{relay.url}/dashboard")
    page.goto("/login")  # signed in already: on to the videos
    expect(page).to_have_url(f"{relay.url}/dashboard")


def test_a_wrong_pair_shows_one_generic_message(page: Any, relay: Relay, user: User, watch: Watch):
    watch.allow(401, "/api/login")
    page.goto("/login")
    fill_sign_in(page, user.name, "not-the-password")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Wrong username or password.")
    fill_sign_in(page, "nobody-by-this-name", "whatever-password")
    expect(alert).to_have_text("Wrong username or password.")  # the same for an unknown name
    expect(page).to_have_url(f"{relay.url}/login")
    fill_sign_in(page, user.name, user.password)  # and the right pair works after
    expect(page).to_have_url(f"{relay.url}/dashboard")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_throttled_sign_in_says_how_long_to_wait(page: Any, watch: Watch):
    # five real failures would lock this address out for every later test: fake the answer
    watch.allow(429, "/api/login")
    page.route(
        "**/api/login",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "42"},
            content_type="application/json",
            body='{"error": {"message": "too many", "type": "rate_limit_error", "param": null,'
            ' "code": "rate_limit_exceeded"}}',
        ),
    )
    page.goto("/login")
    fill_sign_in(page, "anyone", "any-password")
    expect(page.get_by_role("alert")).to_have_text("Too many attempts. Try again in 42 seconds.")


def test_after_sign_out_the_content_url_answers_401(
    page: Any, relay: Relay, user: User, watch: Watch
):
    [video] = relay.finished(user, ["a kite over a beach"])
    content = f"/v1/videos/{video['id']}/content"
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    assert page.context.request.head(content).status == 200  # the cookie plays it
    cookie = next(c for c in page.context.cookies() if c["name"] == "relay_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{relay.url}/login")
    assert not [c for c in page.context.cookies() if c["name"] == "relay_session"]
    watch.allow(401, "/content")
    assert page.context.request.get(content).status == 401
    # and the old cookie, had someone kept it, is dead too
    stale = relay.api("GET", content, headers={"Cookie": f"relay_session={cookie['value']}"})
    assert stale.status == 401
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard$"))
