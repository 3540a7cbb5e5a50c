"""The dashboard's screenshots in the docs, taken from a real stack (not shipped in the service).

    .venv/bin/python -m testing.docs_screenshots [--out docs/img/actions-editor.png]

Starts Redis, an in-memory SecantusDB and the API (testing.helpers.Stack, no worker: nothing
runs), registers a user, logs in through the dashboard in /usr/bin/chromium, fills the New job
form with a few browser actions (fill, press, wait, click, screenshot) and a next click, and
saves a clip of the form as a PNG (refused over 150 KB: clip it smaller).
Every request of the browser outside the API's host is aborted. Stops everything it started.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from deploy import embedded
from shared.settings import ROOT
from testing.helpers import Stack

PASSWORD = "correct-horse-battery"
DEFAULT_OUT = ROOT / "docs" / "img" / "actions-editor.png"
MAX_BYTES = 150 * 1024
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# the steps shown: (type, {field: value}); a search, a filter, a wait, a capture
STEPS: list[tuple[str, dict[str, str | bool]]] = [
    ("click", {"selector": "button#accept-cookies"}),
    ("fill", {"selector": "input[name=q]", "value": "running shoes"}),
    ("press", {"key": "Enter", "selector": "input[name=q]"}),
    ("wait", {"selector": "div.result"}),
    ("screenshot", {"full_page": True}),
]


def fill_form(page, stack: Stack) -> None:
    page.goto(stack.base + "/jobs/new")
    page.wait_for_selector("#add-step")
    page.fill("input[name=url]", "https://shop.example.com/search")
    page.select_option("select[name=engine]", "playwright")
    page.fill("textarea[name=selectors]", "title: h2.result-title::text\nprice: span.price::text")
    page.fill("input[name=item_selector]", "div.result")
    rows = page.locator("#actions > li")
    for i, (kind, values) in enumerate(STEPS):
        page.click("#add-step")
        row = rows.nth(i)
        row.locator("select").select_option(kind)
        for field, value in values.items():
            target = row.locator(f"[data-field={field}]")
            if value is True:
                target.check()
            else:
                target.fill(str(value))
    page.fill("input[name=next_click]", "button.next")


def take(out: Path) -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="docs-shots-") as tmp:
        work = Path(tmp)
        redis = embedded.start_redis(work / "redis")
        mongo = embedded.start_secantus(None)
        stack = Stack(redis.url, mongo.url, f"shots_{uuid.uuid4().hex[:8]}", work / "stack")
        (work / "stack").mkdir()
        try:
            stack.start(api=True, queues=())
            username = f"docs{uuid.uuid4().hex[:6]}"
            stack.register(username, PASSWORD)
            host = urlsplit(stack.base).netloc
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                try:
                    context = browser.new_context(viewport={"width": 1100, "height": 900})
                    context.route(
                        "**/*",
                        lambda route: (
                            route.continue_()
                            if urlsplit(route.request.url).netloc == host
                            else route.abort()
                        ),
                    )
                    page = context.new_page()
                    page.set_default_timeout(30_000)
                    page.goto(stack.base + "/login")
                    page.fill("#login-form input[name=username]", username)
                    page.fill("#login-form input[name=password]", PASSWORD)
                    page.click("#login-form button[type=submit]")
                    page.wait_for_url(stack.base + "/")
                    fill_form(page, stack)
                    # the form from the engine to the editor (selectors, actions, next click),
                    # in page coordinates (the page may have scrolled while filling it)
                    clip = page.evaluate(
                        """() => {
                          const form = document.getElementById("job-form").getBoundingClientRect();
                          const editor = document.getElementById("actions-editor")
                            .getBoundingClientRect();
                          const pad = 12;
                          return {x: form.left + scrollX - pad, y: form.top + scrollY - pad,
                                  width: form.width + 2 * pad,
                                  height: editor.bottom - form.top + 2 * pad};
                        }"""
                    )
                    png = page.screenshot(clip=clip, full_page=True)
                finally:
                    browser.close()
        finally:
            stack.stop()
            mongo.stop()
            redis.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return len(png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    size = take(args.out)
    print(f"{args.out}: {size} bytes")
    if size > MAX_BYTES:
        raise SystemExit(f"{args.out} is {size} bytes, more than {MAX_BYTES}: clip it smaller")


if __name__ == "__main__":
    main()
