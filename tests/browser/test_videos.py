"""The videos page: the create form, the list (live, searched, paged), what an admin sees."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.browser.rig import Relay, User, Watch, expect, sign_in
from tests.images import png

STATUS_LOG = """
(id) => {
  window.__seen = [];
  const note = () => {
    const row = document.querySelector(`tr[data-video-id="${id}"]`);
    const status = row?.dataset.status;
    if (status && window.__seen.at(-1) !== status) window.__seen.push(status);
  };
  note();
  const all = { subtree: true, childList: true, attributes: true };
  new MutationObserver(note).observe(document.body, all);
  window.__sameDocument = true;
}
"""


def row_of(page: Any, video_id: str) -> Any:
    return page.locator(f'tr[data-video-id="{video_id}"]')


def test_create_shows_the_row_at_once_and_it_finishes_without_a_reload(page: Any, user: User):
    sign_in(page, user)
    page.goto("/dashboard")
    expect(page.get_by_label("Model")).to_have_value("sora-2")
    expect(page.get_by_label("Seconds")).to_have_value("4")
    sizes = page.get_by_label("Size").locator("option").all_inner_texts()
    assert sorted(sizes) == ["1280x720", "720x1280"]  # what the demo's clips are
    page.get_by_label("Size").select_option("1280x720")
    # a model whose videos run a few seconds, so in_progress is seen even on a busy machine
    page.get_by_label("Model").select_option("steady")
    expect(page.get_by_label("Size")).to_have_value("1280x720")
    page.get_by_label("Prompt", exact=True).fill("A paper airplane glides over a lake")
    with page.expect_response(
        lambda r: r.url.endswith("/api/videos") and r.request.method == "POST"
    ) as made:
        page.get_by_role("button", name="Create video").click()
    video_id = made.value.json()["id"]
    row = page.locator("tbody tr").first
    expect(row).to_have_attribute("data-video-id", video_id)
    page.evaluate(STATUS_LOG, video_id)
    expect(row_of(page, video_id)).to_have_attribute("data-status", "completed")
    seen = page.evaluate("window.__seen")
    assert page.evaluate("window.__sameDocument"), "the page was reloaded"
    # queued from the create answer, then live: in_progress (with a bar), then completed
    assert seen[0] == "queued" and seen[-1] == "completed" and "in_progress" in seen, seen
    assert page.get_by_label("Prompt", exact=True).input_value() == ""
    finished = row_of(page, video_id)
    expect(finished).to_contain_text("completed")
    expect(finished).to_contain_text("A paper airplane glides over a lake")
    expect(finished.locator("progress")).to_have_count(0)


def test_a_running_row_shows_its_status_word_and_a_progress_bar(
    page: Any, relay: Relay, user: User
):
    video = relay.create(user, "a slow sunrise", model="slow")
    sign_in(page, user)
    page.goto("/dashboard")
    row = row_of(page, video["id"])
    expect(row).to_have_attribute("data-status", "in_progress")
    expect(row).to_contain_text("in_progress")
    bar = row.locator("progress")
    expect(bar).to_be_visible()
    first = float(bar.get_attribute("value") or 0)
    # the demo's progress is its elapsed share: the bar moves on by itself, without a reload
    page.wait_for_function(
        "([id, first]) => document.querySelector(`tr[data-video-id='${id}'] progress`)"
        "?.value > first",
        arg=[video["id"], first],
    )


def test_a_running_row_offers_cancel_and_a_finished_one_does_not(
    page: Any, relay: Relay, user: User
):
    [done] = relay.finished(user, ["a finished harbour at dawn"])
    running = relay.create(user, "a slow tide coming in", model="slow")
    sign_in(page, user)
    page.goto("/dashboard")
    row = row_of(page, running["id"])
    expect(row).to_have_attribute("data-status", "in_progress")
    expect(row_of(page, done["id"]).get_by_role("button", name="Cancel video")).to_have_count(0)
    row.get_by_role("button", name="Cancel video").click()
    page.get_by_role("dialog").get_by_role("button", name="Keep it running").click()
    answer = relay.api("GET", f"/api/videos/{running['id']}", token=user.token)
    assert answer.body["status"] in ("queued", "in_progress")
    row.get_by_role("button", name="Cancel video").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel video").click()
    expect(row).to_have_attribute("data-status", "failed")  # redrawn from the answer
    expect(row).to_contain_text("cancelled")
    expect(row.get_by_role("button", name="Cancel video")).to_have_count(0)
    answer = relay.api("GET", f"/api/videos/{running['id']}", token=user.token)
    assert answer.body["status"] == "failed" and answer.body["error"]["code"] == "cancelled"


def test_a_refused_create_shows_the_error_by_its_field_and_keeps_the_input(
    page: Any, user: User, watch: Watch, tmp_path: Path
):
    watch.allow(400, "/api/videos")
    watch.allow(415, "/api/videos")
    sign_in(page, user)
    page.goto("/dashboard")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_bytes(b"these are words, not pixels\n" * 10)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse in the fog")
    page.get_by_label("Image").set_input_files(str(not_an_image))
    page.get_by_role("button", name="Create video").click()
    image_field = page.locator('.field[data-param="input_reference"]')
    error = image_field.locator(".field-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("image|JPEG|PNG|WebP", re.I))
    assert page.get_by_label("Prompt", exact=True).input_value() == "a lighthouse in the fog"
    expect(page.locator("tbody tr")).to_have_count(0)
    # a refusal under "More options" opens it and points at the field
    page.get_by_label("Image").set_input_files([])
    page.get_by_text("More options").click()
    page.get_by_label("Negative prompt").fill("x" * 50)
    page.get_by_label("Seed").fill("4294967296")
    page.get_by_role("button", name="Create video").click()
    seed_error = page.locator('.field[data-param="seed"] .field-error')
    expect(seed_error).to_have_text("seed must be between -1 and 4294967295")
    expect(error).to_be_hidden()  # the earlier error went with the new try
    expect(page.get_by_label("Seed")).to_be_focused()
    assert page.get_by_label("Prompt", exact=True).input_value() == "a lighthouse in the fog"


def test_an_image_is_previewed_and_sent(page: Any, relay: Relay, user: User, tmp_path: Path):
    picture = tmp_path / "first-frame.png"
    picture.write_bytes(png(64, 36))
    sign_in(page, user)
    page.goto("/dashboard")
    page.get_by_label("Prompt", exact=True).fill("the first frame comes to life")
    page.get_by_label("Image").set_input_files(str(picture))
    preview = page.locator("img.preview")
    expect(preview).to_be_visible()
    assert preview.get_attribute("src").startswith("blob:")
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 64
    with page.expect_request(
        lambda r: r.url.endswith("/api/videos") and r.method == "POST"
    ) as sent:
        page.get_by_role("button", name="Create video").click()
    headers = sent.value.all_headers()  # Playwright shows no multipart file body: its size
    assert headers["content-type"].startswith("multipart/form-data")
    assert int(headers["content-length"]) > len(picture.read_bytes())
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(preview).to_be_hidden()  # the form is ready for the next one


def test_finished_rows_show_a_thumbnail(page: Any, relay: Relay, user: User):
    [video] = relay.finished(user, ["a red balloon over rooftops"], size="1280x720")
    sign_in(page, user)
    page.goto("/dashboard")
    thumb = row_of(page, video["id"]).locator("img.thumb")
    expect(thumb).to_be_visible()
    expect(thumb).to_have_attribute("src", f"/v1/videos/{video['id']}/content?variant=thumbnail")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    assert thumb.evaluate("img => img.naturalWidth") > 0


def test_search_and_load_more(page: Any, relay: Relay, user: User):
    prompts = [f"harbour scene number {i}" for i in range(23)]
    prompts[5] = "sale: 50%_off\\today"  # %, _ and \ match themselves
    prompts[9] = "a 50 percent off sign"
    made = [relay.create(user, prompt)["id"] for prompt in prompts]
    sign_in(page, user)
    page.goto("/dashboard")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(20)
    assert rows.first.get_attribute("data-video-id") == made[-1]  # newest first
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(23)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert [r.get_attribute("data-video-id") for r in rows.all()] == made[::-1]
    search = page.get_by_label("Search prompts")
    search.fill("50%_OFF\\")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-video-id", made[5])
    search.fill("no prompt says this")
    expect(rows).to_have_count(0)
    expect(
        page.get_by_text(re.compile(r"No video.s prompt contains .no prompt says this"))
    ).to_be_visible()
    search.fill("")
    expect(rows).to_have_count(20)


def test_a_prompt_with_html_stays_text(page: Any, relay: Relay, user: User):
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, user)
    page.goto("/dashboard")
    page.get_by_label("Prompt", exact=True).fill(evil)
    page.get_by_role("button", name="Create video").click()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text(evil)
    assert row.locator("img[src='x'], script").count() == 0
    video_id = row.get_attribute("data-video-id")
    expect(row).to_have_attribute("data-status", "completed")
    page.goto(f"/dashboard/videos/{video_id}")
    expect(page.get_by_role("heading", name=evil)).to_be_visible()
    assert page.locator("main img[src='x'], main script").count() == 0
    page.goto("/dashboard")
    page.get_by_label("Search prompts").fill("<script>")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert dialogs == []


def test_an_admin_sees_everyones_videos_with_their_owner(new_page: Any, relay: Relay):
    other = relay.user("bob")
    [video] = relay.finished(other, ["bob's secret garden"])
    admin = relay.user("admin", role="admin")
    page = new_page()
    sign_in(page, admin)
    page.goto("/dashboard")
    row = row_of(page, video["id"])
    expect(row).to_contain_text("bob's secret garden")
    expect(row.locator('td[data-label="Owner"]')).to_have_text(other.name)
    page.get_by_label("Owner").select_option(admin.name)  # the filter: only the admin's own
    expect(row).to_have_count(0)
    page.get_by_label("Owner").select_option(other.name)
    expect(row).to_be_visible()
    page.goto(f"/dashboard/videos/{video['id']}")
    details = page.locator("dl.details")
    expect(details).to_contain_text(other.name)
    expect(details).to_contain_text("demo")  # the channel
    # the owner does not see the Owner column, and another user does not see the video
    mine = new_page()
    sign_in(mine, other)
    mine.goto("/dashboard")
    expect(row_of(mine, video["id"])).to_be_visible()
    expect(mine.locator('td[data-label="Owner"]')).to_have_count(0)
    stranger = new_page()
    sign_in(stranger, relay.user())
    stranger.goto("/dashboard")
    expect(stranger.get_by_text("No videos yet.", exact=False)).to_be_visible()


# every fetch the page makes, timed in the page, with the pace the answer named
LOG_FETCHES = """
window.__fetches = [];
const original = window.fetch;
window.fetch = async (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  const entry = { url, start: performance.now() };
  window.__fetches.push(entry);
  const response = await original(input, init);
  entry.end = performance.now();
  entry.pace = Number(response.headers.get("openai-poll-after-ms")) || null;
  return response;
};
"""


def test_live_updates_ask_only_about_running_videos_at_the_relays_pace(
    page: Any, relay: Relay, user: User
):
    """200 videos, 5 running: the page asks about the 5, each when the relay says to, and
    nothing about the finished ones."""
    finished = [relay.create(user, f"finished clip {i}")["id"] for i in range(195)]
    running = [relay.create(user, f"running clip {i}", model="slow")["id"] for i in range(5)]
    for video_id in finished[-20:]:  # every finished row of the first page is finished
        relay.wait(user, video_id)
    sign_in(page, user)
    page.add_init_script(LOG_FETCHES)
    page.goto("/dashboard")
    expect(page.locator("tbody tr")).to_have_count(20)
    loaded = page.evaluate("performance.now()")
    window_ms = 6000
    page.wait_for_timeout(window_ms)
    fetches = [f for f in page.evaluate("window.__fetches") if f["start"] >= loaded]
    polls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in fetches:
        match = re.search(r"/api/videos/(video_[\w-]+)$", f["url"])
        assert match, f"a request other than a running video's status: {f['url']}"
        polls[match.group(1)].append(f)
    assert set(polls) == set(running), "only the running videos are asked about, each of them"
    # after each answer the page waits what it says (at least 0.5 s) before asking again
    for video_id, asks in polls.items():
        for ask, nxt in itertools.pairwise(asks):
            assert ask["pace"], ask
            waited = nxt["start"] - ask["end"]
            assert waited >= max(500, ask["pace"]) - 20, (video_id, ask["pace"], waited)
    rate = len(fetches) / (window_ms / 1000)
    assert rate <= 5 / 0.5, f"{rate:.1f} requests/s for 5 running videos"
    paces = sorted({f["pace"] for f in fetches if f.get("pace")})
    print(f"\n200 videos, 5 running: {rate:.2f} requests/s; the relay's paces {paces} ms")
