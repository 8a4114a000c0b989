"""Fixtures of the browser tests: one relay and one Chromium for the package, and a fresh
browser context (its own cookies) with a watch for each test.

Without Chromium (or the playwright package) the browser tests skip with the reason; CI sets
RELAY_TEST_REQUIRE_BROWSER=1, which makes that an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.rig import (
    REQUIRE_ENV,
    Relay,
    User,
    Watch,
    chromium,
    missing,
    start_relay,
    stop_relay,
)

DESKTOP = {"width": 1280, "height": 900}
# generous: a loaded 2-core CI machine is slow, and only a failing test waits this long
TIMEOUT_MS = 30_000


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    why = missing()
    if why:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set, but {why}", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=chromium(),
            # as root (a container, CI) Chromium's sandbox cannot start
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def relay(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    started = start_relay(tmp_path_factory.mktemp("relay"))
    try:
        yield started
    finally:
        stop_relay(started)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def new_page(browser: Any, relay: Relay, watch: Watch) -> Iterator[Callable[..., Any]]:
    """new_page(**context options) -> a page in a fresh context, watched. At the end every
    page must have had no console error, page error, CSP violation or unexpected HTTP error."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(base_url=relay.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        watch.attach(context)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


@pytest.fixture
def user(relay: Relay) -> User:
    return relay.user()
