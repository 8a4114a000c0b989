"""The browser tests' own harness: without Chromium they skip, saying why, except in CI
(RELAY_TEST_REQUIRE_BROWSER set), where that fails them. Runs without a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.longclip import longer_mp4
from tests.browser.rig import ASSETS, CHROMIUM_ENV, REPO, REQUIRE_ENV


@pytest.mark.parametrize("ci", [False, True])
def test_without_chromium_the_browser_tests_skip_saying_why_or_fail_in_ci(ci: bool, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
    env[CHROMIUM_ENV] = str(tmp_path / "no-chromium-here")
    if ci:
        env[REQUIRE_ENV] = "1"
    one_test = "tests/browser/test_signin.py::test_a_throttled_sign_in_says_how_long_to_wait"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", one_test],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    reason = f"Chromium is not installed (no {tmp_path / 'no-chromium-here'}; apt-get install"
    if ci:
        assert run.returncode == 1, run.stdout
        assert f"{REQUIRE_ENV} is set, but {reason}" in run.stdout
        assert "1 error" in run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert reason in run.stdout and "1 skipped" in run.stdout


def test_the_long_clip_keeps_every_sample_and_moves_the_end_away():
    clip = (ASSETS / "video-landscape.mp4").read_bytes()
    longer = longer_mp4(clip, gap=1000, split=84)
    assert len(longer) == len(clip) + 1000 + 16
    # the media bytes are all there, in order, with the gap after the 84th sample
    assert longer.count(clip[-5000:]) == 1 and longer.endswith(clip[-5000:])
    assert longer[:4] == clip[:4] and b"moov" in longer[:64]
