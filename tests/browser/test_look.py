"""How the pages look and speak: Simplified Chinese from Accept-Language or the switch (and
remembered), dark by the system or the switch, a phone's width, and the README's screenshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tests.browser.rig import REPO, Relay, User, expect, sign_in

SCREENSHOT = REPO / "docs" / "dashboard.png"
UPDATE_ENV = "RELAY_UPDATE_SCREENSHOT"  # set: the test writes docs/dashboard.png


def test_chinese_comes_from_accept_language(new_page: Any, relay: Relay, user: User):
    [video] = relay.finished(user, ["一只猫在窗台上晒太阳"])
    page = new_page(locale="zh-CN")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_label("用户名").fill(user.name)
    page.get_by_label("密码").fill(user.password)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{relay.url}/dashboard")
    for label in ("模型", "提示词", "时长（秒）", "尺寸", "图片"):  # noqa: RUF001
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    page.get_by_label("提示词", exact=True).fill("雨中的灯笼")
    page.get_by_role("button", name="生成视频").click()
    row = page.locator(f'tr[data-video-id="{video["id"]}"]')
    expect(row).to_have_attribute("data-status", "completed")  # data- attributes stay English
    expect(row).to_contain_text("已完成")
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    assert "Create video" not in page.locator("body").inner_text()
    page.goto(f"/dashboard/videos/{video['id']}")
    for name in ("下载",):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    for name in ("改编", "删除", "复制 curl 命令"):
        expect(page.get_by_role("button", name=name)).to_be_visible()


def test_the_language_switch_is_remembered(page: Any, relay: Relay, user: User):
    sign_in(page, user)
    page.goto("/dashboard/keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", name="API 密钥")).to_be_visible()
    page.goto("/dashboard")  # another page, a fresh load: still Chinese
    expect(page.get_by_role("button", name="生成视频")).to_be_visible()
    page.get_by_label("语言").select_option("en")
    expect(page.get_by_role("button", name="Create video")).to_be_visible()


def background(page: Any) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_dark_follows_the_system_and_the_switch_wins(new_page: Any, user: User):
    dark_system = new_page(color_scheme="dark")
    sign_in(dark_system, user)
    dark_system.goto("/dashboard")
    expect(dark_system.get_by_role("button", name="Create video")).to_be_visible()
    dark = background(dark_system)
    light_system = new_page(color_scheme="light")
    sign_in(light_system, user)
    light_system.goto("/dashboard")
    expect(light_system.get_by_role("button", name="Create video")).to_be_visible()
    light = background(light_system)
    assert dark != light
    assert sum(map(int, dark[4:-1].split(","))) < 150 < sum(map(int, light[4:-1].split(",")))
    # the switch overrides the system, at once and after a reload
    light_system.get_by_label("Theme").select_option("dark")
    assert background(light_system) == dark
    light_system.reload()
    expect(light_system.get_by_label("Theme")).to_have_value("dark")
    assert background(light_system) == dark
    light_system.get_by_label("Theme").select_option("auto")
    assert background(light_system) == light


def test_usable_on_a_phone(new_page: Any, relay: Relay, user: User):
    [video] = relay.finished(user, ["a very long prompt " * 20])
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page, user)
    for path in ("/dashboard", f"/dashboard/videos/{video['id']}", "/dashboard/keys"):
        page.goto(path)
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
    page.goto("/dashboard")
    row = page.locator(f'tr[data-video-id="{video["id"]}"]')
    box = row.bounding_box()
    assert box and box["width"] <= 375
    page.get_by_label("Prompt", exact=True).tap()
    expect(page.get_by_role("button", name="Create video")).to_be_visible()
    row.get_by_role("link").last.tap()
    expect(page.locator("video")).to_be_visible()
    assert page.locator("video").bounding_box()["width"] <= 375


def test_the_readme_screenshot(new_page: Any, relay: Relay, tmp_path: Path):
    """/dashboard with a few finished videos, as the README shows it. Set RELAY_UPDATE_SCREENSHOT=1
    to write docs/dashboard.png."""
    person = relay.user("maya")
    made = [
        relay.create(person, prompt, size=size)
        for prompt, size in (
            ("Lanterns drift down a quiet river at dusk", "1280x720"),
            ("A paper airplane glides over a mountain lake", "720x1280"),
            ("Rain on a neon-lit street, seen from a tram window", "1280x720"),
            ("A red fox walks through fresh snow #fail", "1280x720"),
            ("Time-lapse of clouds rolling over a harbour", "1280x720"),
        )
    ]
    for video in made:
        relay.wait(person, video["id"])
    relay.create(person, "A hot-air balloon rises at sunrise", model="slow")
    page = new_page(viewport={"width": 1180, "height": 900}, color_scheme="light")
    sign_in(page, person)
    page.goto("/dashboard")
    page.get_by_label("Prompt", exact=True).fill(
        "A lighthouse on a cliff, waves crashing, golden hour"
    )
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(6)
    expect(page.locator("img.thumb")).to_have_count(4)
    expect(page.locator('tr[data-status="in_progress"] progress')).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')].every((i) => i.naturalWidth > 0)"
    )
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get(UPDATE_ENV):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
