"""One video's page: the player plays and seeks by Range, download, copy curl, remix, cancel,
delete, the details, and a deep link that survives a reload."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser.rig import ASSETS, Relay, User, Watch, expect, sign_in

LANDSCAPE = (ASSETS / "video-landscape.mp4").read_bytes()
SEEK_TO = 3.7  # past the gap


def test_the_player_plays_and_seeks_with_range_requests(page: Any, relay: Relay, user: User):
    # model "long": the demo clip with 4 MiB inside before its last half second (longclip.py)
    [video] = relay.finished(user, ["waves on a pebble beach"], model="long", size="1280x720")
    ranges: list[tuple[str | None, int, str | None]] = []

    def seen(response: Any) -> None:
        if response.url.endswith(f"/v1/videos/{video['id']}/content"):
            asked = response.request.all_headers().get("range")
            ranges.append((asked, response.status, response.headers.get("content-range")))

    page.on("response", seen)
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    player = page.locator("video")
    expect(player).to_have_count(1)  # the page's only <video>
    expect(player).to_have_attribute("src", f"/v1/videos/{video['id']}/content")
    expect(player).to_have_attribute("preload", "metadata")
    assert player.evaluate("v => v.controls")
    handle = player.element_handle()
    page.wait_for_function("(v) => v.readyState >= 2", arg=handle)
    assert abs(player.evaluate("v => v.duration") - 4.0) < 0.1  # the clip's 4 seconds
    loaded = list(ranges)
    assert loaded and loaded[0][:2] == ("bytes=0-", 206), loaded  # the cookie, and a Range
    # past the 4 MiB the player has not loaded: the seek asks for a Range from there
    player.evaluate(
        """(v, to) => new Promise((done) => {
             v.addEventListener("seeked", done, { once: true });
             v.currentTime = to;
           })""",
        SEEK_TO,
    )
    page.wait_for_function("(v) => v.readyState >= 2", arg=handle)
    assert abs(player.evaluate("v => v.currentTime") - SEEK_TO) < 0.05
    starts = {}
    for asked, status, answered in ranges[len(loaded) :]:
        match = re.fullmatch(r"bytes=(\d+)-\d*", asked or "")
        assert match and status == 206 and answered, (asked, status, answered)
        assert answered.startswith(f"bytes {match.group(1)}-"), (asked, answered)
        starts[int(match.group(1))] = answered
    assert any(start > 4 * 1024 * 1024 for start in starts), f"the seek fetched no range: {ranges}"
    # and it plays on from there to the end
    assert player.evaluate("v => { v.muted = true; return v.play().then(() => true) }")
    page.wait_for_function("(v) => v.ended", arg=handle)
    assert all(r[0] and r[1] == 206 for r in ranges), ranges  # every fetch was a Range


def test_download_gives_the_mp4(page: Any, relay: Relay, user: User, tmp_path: Path):
    [video] = relay.finished(user, ["a cat chasing light"], size="1280x720")
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == f"{video['id']}.mp4"
    saved = tmp_path / "got.mp4"
    download.value.save_as(saved)
    assert saved.read_bytes() == LANDSCAPE


def test_copy_curl_copies_a_command_without_a_real_key(page: Any, relay: Relay, user: User):
    relay.key(user)  # the user has a key; it must not show up
    [video] = relay.finished(user, ["a windmill at dusk"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    page.get_by_role("button", name="Copy curl").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f"{relay.url}/v1/videos/{video['id']}/content" in copied
    assert "Authorization: Bearer $RELAY_KEY" in copied and "sk-" not in copied
    assert page.locator("pre.curl").inner_text() == copied


def test_remix_makes_a_new_video_from_this_one(page: Any, relay: Relay, user: User):
    [source] = relay.finished(user, ["a fox in the snow"])
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{source['id']}")
    page.get_by_role("button", name="Remix").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Prompt").fill("the same fox, at night")
    dialog.get_by_role("button", name="Remix").click()
    page.wait_for_url(lambda url: "/dashboard/videos/video_" in url and source["id"] not in url)
    expect(page.locator(".stage")).to_have_attribute("data-status", "completed")
    expect(page.get_by_role("heading", name="the same fox, at night")).to_be_visible()
    link = page.locator("dl.details").get_by_role("link", name=source["id"])
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(f"{relay.url}/dashboard/videos/{source['id']}")


def test_remix_is_offered_only_where_the_provider_can(page: Any, relay: Relay, user: User):
    running = relay.create(user, "still rendering", model="slow")
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{running['id']}")
    expect(page.locator(".stage progress")).to_be_visible()
    expect(page.get_by_role("button", name="Copy curl")).to_be_visible()
    for name in ("Remix", "Delete"):  # not finished: neither remix nor delete
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("link", name="Download")).to_have_count(0)


def test_delete_asks_first_then_removes(page: Any, relay: Relay, user: User, watch: Watch):
    [video] = relay.finished(user, ["a sandcastle before the tide"])
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete this video?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert relay.api("GET", f"/api/videos/{video['id']}", token=user.token).status == 200
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{relay.url}/dashboard")
    expect(page.locator(f'tr[data-video-id="{video["id"]}"]')).to_have_count(0)
    assert relay.api("GET", f"/api/videos/{video['id']}", token=user.token).status == 404
    watch.allow(404, f"/api/videos/{video['id']}")
    page.goto(f"/dashboard/videos/{video['id']}")  # its old link
    expect(page.get_by_role("heading", name="No such video")).to_be_visible()


def test_a_deep_link_survives_a_reload_and_shows_the_details(
    page: Any, relay: Relay, user: User, watch: Watch
):
    video, failed = relay.finished(user, ["lanterns on a river", "a storm at sea #fail"])
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    page.reload()
    details = page.locator("dl.details")
    for word in (video["id"], "sora-2", "4", video["size"], "completed"):
        expect(details).to_contain_text(word)
    expect(details).not_to_contain_text("Owner")  # an admin's detail
    page.goto(f"/dashboard/videos/{failed['id']}")
    expect(page.locator(".stage")).to_contain_text("moderation_blocked")
    expect(details).to_contain_text("the demo provider blocked it")
    expect(page.locator("video")).to_have_count(0)
    # someone else's video is just not there
    other = relay.user()
    sign_in(page, other)
    watch.allow(404, f"/api/videos/{video['id']}")
    page.goto(f"/dashboard/videos/{video['id']}")
    expect(page.get_by_role("heading", name="No such video")).to_be_visible()


def test_cancel_asks_first_then_stops_the_running_video(page: Any, relay: Relay, user: User):
    running = relay.create(user, "a glacier calving, slowly", model="slow")
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{running['id']}")
    expect(page.locator(".stage progress")).to_be_visible()
    page.get_by_role("button", name="Cancel video").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel this video?")
    dialog.get_by_role("button", name="Keep it running").click()
    expect(dialog).to_have_count(0)
    answer = relay.api("GET", f"/api/videos/{running['id']}", token=user.token)
    assert answer.body["status"] in ("queued", "in_progress")
    page.get_by_role("button", name="Cancel video").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel video").click()
    expect(page.locator(".stage")).to_have_attribute("data-status", "failed")
    expect(page.locator(".stage .failure code")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel video")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_be_visible()  # finished: it can go
    answer = relay.api("GET", f"/api/videos/{running['id']}", token=user.token)
    assert answer.body["status"] == "failed" and answer.body["error"]["code"] == "cancelled"


def test_a_finished_video_offers_no_cancel(page: Any, relay: Relay, user: User):
    [video] = relay.finished(user, ["a lighthouse in fog"])
    sign_in(page, user)
    page.goto(f"/dashboard/videos/{video['id']}")
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel video")).to_have_count(0)
