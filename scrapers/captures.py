"""Screenshots (PNG) and PDFs of a rendered page in Chromium, each within MAX_FILE_BYTES.

A screenshot over the limit is clipped: taken again from the top of the page with a shorter
height, estimated from how many bytes a pixel row took, until it fits (a few tries). A PDF
cannot be cut the same way without losing what it is (the print layout of the whole page): one
over the limit raises CaptureTooLarge and the caller stores no file and warns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page

CONTENT_TYPES = {"screenshot": "image/png", "pdf": "application/pdf"}

# A full page taller than this is captured down to here only: Chromium holds the whole bitmap
# in memory (a 1280 x 20000 PNG is ~100 MB raw), and such pages are endless feeds anyway.
MAX_CAPTURE_HEIGHT = 20_000
CLIP_TRIES = 6
SHRINK_MARGIN = 0.9  # aim a bit under the limit: PNG bytes per row are not uniform
CAPTURE_TIMEOUT_MS = 30_000

_SIZE = """() => {
  const d = document.documentElement, b = document.body;
  const w = Math.max(d ? d.scrollWidth : 0, b ? b.scrollWidth : 0, window.innerWidth || 0);
  const h = Math.max(d ? d.scrollHeight : 0, b ? b.scrollHeight : 0, window.innerHeight || 0);
  return [w, h];
}"""


class CaptureTooLarge(Exception):
    """A capture that cannot be brought under the byte limit."""


def next_height(height: int, size: int, max_bytes: int) -> int:
    """The clip height to try after a capture of `height` pixel rows took `size` bytes, to
    come under `max_bytes`: proportional, with a margin, and always shorter than before."""
    if size <= 0 or height <= 1:
        return max(1, height - 1)
    guess = int(height * max_bytes / size * SHRINK_MARGIN)
    return max(1, min(guess, height - 1))


async def screenshot(
    page: Page, *, full_page: bool, max_bytes: int, notes: list[str] | None = None
) -> bytes:
    """A PNG of the page (the viewport, or the whole page with `full_page`) of at most
    `max_bytes`: a larger one is clipped from the top to fit, and a note says so in `notes`.
    CaptureTooLarge when not even a shallow strip fits."""
    width, height = await page.evaluate(_SIZE)
    viewport = page.viewport_size or {"width": int(width), "height": int(height)}
    if full_page:
        width, height = int(width), int(height)
    else:
        width, height = int(viewport["width"]), int(viewport["height"])
    width, height = max(1, width), max(1, height)
    clip_height = min(height, MAX_CAPTURE_HEIGHT)
    data = await _shot(page, full_page, width, clip_height, clipped=clip_height < height)
    tries = 0
    while len(data) > max_bytes:
        tries += 1
        if tries > CLIP_TRIES or clip_height <= 1:
            raise CaptureTooLarge(
                f"screenshot of {page.url} does not fit in {max_bytes} bytes (MAX_FILE_BYTES)"
            )
        clip_height = next_height(clip_height, len(data), max_bytes)
        data = await _shot(page, full_page, width, clip_height, clipped=True)
    if clip_height < min(height, MAX_CAPTURE_HEIGHT):
        why = f"to fit MAX_FILE_BYTES ({max_bytes} bytes)"
    else:
        why = f"(screenshots stop at {MAX_CAPTURE_HEIGHT} px)"
    if clip_height < height:
        _note(
            notes, f"{page.url}: screenshot clipped to the first {clip_height} of {height} px {why}"
        )
    return data


async def _shot(page: Page, full_page: bool, width: int, height: int, clipped: bool) -> bytes:
    if not clipped:
        return await page.screenshot(type="png", full_page=full_page, timeout=CAPTURE_TIMEOUT_MS)
    clip = {"x": 0, "y": 0, "width": width, "height": height}
    return await page.screenshot(type="png", full_page=True, clip=clip, timeout=CAPTURE_TIMEOUT_MS)  # type: ignore[arg-type]


async def pdf(page: Page, *, max_bytes: int) -> bytes:
    """The page printed to PDF by headless Chromium (A4-independent: the page's own print
    layout, backgrounds included); CaptureTooLarge when over `max_bytes`."""
    data = await page.pdf(print_background=True)
    if len(data) > max_bytes:
        raise CaptureTooLarge(
            f"PDF of {page.url} is {len(data)} bytes, over MAX_FILE_BYTES ({max_bytes}); not stored"
        )
    return data


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)
