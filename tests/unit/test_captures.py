"""Screenshots and PDFs: the clip arithmetic, which outputs need the browser, the file names."""

from __future__ import annotations

import pytest

from scrapers.captures import next_height
from shared.files import download_name
from shared.jobs import queue_for
from shared.jobspec import browser_reasons, content_formats, file_outputs


def test_each_clip_is_shorter_and_aims_under_the_limit():
    # 2000 rows took 200 kB: 1000 rows would take 100 kB; aim 10 % under a 100 kB limit
    assert next_height(2000, 200_000, 100_000) == 900
    # a guess that would not shrink still shrinks by a row, and never below one row
    assert next_height(2000, 100_001, 100_000) == 1799
    assert next_height(10, 101, 100) == 8
    assert next_height(1, 10_000, 100) == 1
    assert next_height(500, 0, 100) == 499
    height, size = 20_000, 9_000_000
    for _ in range(6):  # bytes proportional to rows: the loop's tries converge at once
        height = next_height(height, size, 1_000_000)
        size = height * 450
    assert size <= 1_000_000 and height > 1000


def test_files_in_output_send_auto_to_the_browser_and_content_formats_stay_items():
    config = {"output": ["markdown", "screenshot", "pdf"]}
    assert content_formats(config) == ["markdown"]
    assert file_outputs(config) == ["screenshot", "pdf"]
    assert browser_reasons(config) == ["screenshot and pdf output"]
    assert browser_reasons({"output": ["text"]}) == [] == browser_reasons({})
    assert queue_for("auto", config) == "playwright"
    assert queue_for("auto", {"output": ["html"]}) == "scrapy"
    assert queue_for("scrapy", None) == "scrapy"


@pytest.mark.parametrize(
    ("url", "kind", "name"),
    [
        ("http://shop.example.com/a/b?c=1", "screenshot", "shop.example.com-3.png"),
        ("http://[::1]:8080/", "pdf", "__1-3.pdf"),
        ("not a url", "pdf", "page-3.pdf"),
    ],
)
def test_download_names_are_readable_and_safe(url, kind, name):
    assert download_name(url, kind, 3) == name
