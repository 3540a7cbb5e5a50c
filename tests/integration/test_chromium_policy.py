"""The browser's own defences against file: URLs, with a real Chromium: the job context's route
aborts any navigation the engine itself would make to one (and logs it), and the managed policy
the image installs (deploy/chromium-policy.json) makes Chromium refuse file: URLs outright.

The policy is read from /etc/chromium/policies/managed, so that test mounts a private
/etc/chromium in a mount namespace of its own (root and unshare needed): the machine's Chromium
is untouched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, sys
from playwright.async_api import async_playwright

async def main():
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=sys.argv[2], args=["--no-sandbox"])
        page = await browser.new_page()
        try:
            await page.goto(sys.argv[1], timeout=20000)
            print("READ" if "CANARY" in await page.content() else "EMPTY")
        except Exception as exc:
            print("REFUSED", str(exc).splitlines()[0])
        await browser.close()

asyncio.run(main())
"""

# a private /etc/chromium holding only the image's policy, then the probe
SETUP = """
set -e
mount -t tmpfs none /etc/chromium
mkdir -p /etc/chromium/policies/managed
cp "$1" /etc/chromium/policies/managed/scrapemaster.json
shift
exec "$@"
"""


def test_chromium_with_the_images_policy_refuses_file_urls(tmp_path):
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if os.geteuid() != 0 or not shutil.which("unshare") or not Path("/etc/chromium").is_dir():
        pytest.skip("needs root, unshare and Debian's /etc/chromium to mount a private policy")
    canary = tmp_path / "secret"
    canary.write_text("CANARY-policy")
    probe = [sys.executable, "-c", PROBE, canary.as_uri(), chromium]
    policy = str(ROOT / "deploy" / "chromium-policy.json")
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh", policy, *probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()[:200]}")
    assert done.stdout.startswith("REFUSED"), done.stdout + done.stderr
    assert "ERR_BLOCKED_BY_ADMINISTRATOR" in done.stdout
    # and without the policy the same probe reads it: the test can fail
    bare = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    assert bare.stdout.startswith("READ"), bare.stdout + bare.stderr


class Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, level: str, message: str) -> None:
        self.lines.append(f"{level} {message}")


def test_the_job_contexts_route_aborts_a_file_navigation_and_logs_it(tmp_path, settings):
    from playwright.async_api import Error, async_playwright

    from scrapers.playwright_engine import _web_only

    canary = tmp_path / "secret"
    canary.write_text("CANARY-route")
    sink = Sink()

    async def scenario() -> list[str]:
        seen = []
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=settings.chromium_path, args=["--no-sandbox"]
            )
            try:
                context = await browser.new_context()
                await context.route("**/*", _web_only(sink))
                page = await context.new_page()
                for url in (canary.as_uri(), canary.as_uri().replace("file:", "FILE:")):
                    try:
                        await page.goto(url, timeout=20000)
                        seen.append(await page.content())
                    except Error as exc:
                        seen.append(str(exc).splitlines()[0])
            finally:
                await browser.close()
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) == 2 and all("ERR_BLOCKED_BY_CLIENT" in text for text in seen), seen
    assert not any("CANARY" in text for text in seen)
    assert (
        sum("skipped navigation to" in line and "file: is refused" in line for line in sink.lines)
        == 2
    )


def test_the_image_installs_the_policy():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert (
        "COPY deploy/chromium-policy.json /etc/chromium/policies/managed/scrapemaster.json"
        in dockerfile
    )
