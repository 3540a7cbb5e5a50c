"""One reading of a page's bytes in both engines: w3lib's choice of encoding, declared to Chromium.

The rule (w3lib >= 2.6 through frostwork, after the WHATWG Encoding Standard): a byte order mark,
else the Content-Type charset, else a `<meta charset>` / `<meta http-equiv>` / XML declaration
near the start, else UTF-8 when the bytes are valid UTF-8, else a guess from the bytes and the
domain (Firefox's detector). Up to the last two steps this is the HTML standard, which Chromium
follows too; on a page that declares nothing Chromium never takes UTF-8 (it falls back to
windows-1252), so a valid UTF-8 page without a charset read `â‚¬` in the browser and `€` in Scrapy.

The static engine decodes with `page_text`. In the browser, every tab pauses its documents when
their response headers arrive (`watch`, the DevTools Fetch domain at the response stage, which
sees the bytes before Chromium decodes them); a successful text document whose Content-Type names
no charset is handed on with the charset `page_encoding` determines. A labelled page goes on at
once, untouched.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import weakref
from typing import Any

from frostwork.encoding import detect_encoding
from w3lib.encoding import html_to_unicode, http_content_type_encoding

logger = logging.getLogger(__name__)

# Documents Chromium shows as themselves, whose text an encoding decides (not a PDF, an image…).
_TEXT_SUFFIXES = ("+xml", "+json", "/xml", "/json", "/javascript", "/ecmascript")
# Text that is markup or JSON, read as such by both engines (the rest of text/* is plain text).
_MARKUP = frozenset({"text/html", "text/xml", "text/xsl"})
_STRUCTURED = ("+xml", "+json", "/json")
# Response headers not passed on with the body we hand over: they described its transfer.
_TRANSFER = frozenset({"content-length", "content-encoding", "transfer-encoding"})
_watched: weakref.WeakSet[Any] = weakref.WeakSet()


def page_encoding(body: bytes, content_type: str, url: str) -> str:
    """The WHATWG name of the encoding both engines read `body` with (`"UTF-8"`,
    `"windows-1252"`, `"Shift_JIS"`…); `url` gives the detector its top-level-domain hint."""
    return detect_encoding(body, http_content_type_encoding(content_type), url=url)


def page_text(body: bytes, content_type: str, url: str) -> str:
    """`body` decoded as `page_encoding` says (a BOM dropped, invalid bytes as U+FFFD); plain
    text (`text/plain`, `text/csv`…) as the document Chromium makes of it, the text in a
    `<pre>`, so that selectors and `config.output` see one page in both engines."""
    text = html_to_unicode(content_type, body, url=url)[1]
    if not is_plain(content_type):
        return text
    return f"<html><head></head><body><pre>{html.escape(text, quote=False)}</pre></body></html>"


def is_plain(content_type: str) -> bool:
    """Text that is no markup and no JSON: a browser shows it as it is."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") and mime not in _MARKUP and not mime.endswith(_STRUCTURED)


def is_text(mime: str) -> bool:
    """Whether a document of this MIME type is text that an encoding decides."""
    mime = mime.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime.endswith(_TEXT_SUFFIXES)


def needs_label(status: int | None, content_type: str) -> bool:
    """Whether a document answered so is one whose charset we must declare to Chromium: a
    successful text document whose Content-Type names no charset (or one nobody knows)."""
    if status is None or not 200 <= status < 300 or not is_text(content_type):
        return False
    return http_content_type_encoding(content_type) is None


async def watch(page: Any, max_bytes: int) -> None:
    """From now on, `page` reads its documents as the static engine would (once per tab)."""
    if page in _watched:
        return
    session = await page.context.new_cdp_session(page)

    async def paused(event: dict[str, Any]) -> None:
        try:
            await _label(session, event, max_bytes)
        except Exception as exc:  # the tab or its session closed meanwhile, or a refusal
            logger.debug("charset of %s: %s", event.get("request", {}).get("url"), exc)
            with contextlib.suppress(Exception):  # never leave a document held
                await session.send("Fetch.continueRequest", {"requestId": event["requestId"]})

    session.on("Fetch.requestPaused", paused)
    pattern = {"resourceType": "Document", "requestStage": "Response"}
    await session.send("Fetch.enable", {"patterns": [pattern]})
    _watched.add(page)


async def _label(session: Any, event: dict[str, Any], max_bytes: int) -> None:
    """Hand a held document on: untouched, or with the charset of `page_encoding`."""
    request_id = event["requestId"]
    headers = event.get("responseHeaders") or []
    content_type = next((h["value"] for h in headers if h["name"].lower() == "content-type"), "")
    if event.get("responseErrorReason") or not needs_label(
        event.get("responseStatusCode"), content_type
    ):
        await session.send("Fetch.continueRequest", {"requestId": request_id})
        return
    declared = next((h["value"] for h in headers if h["name"].lower() == "content-length"), "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        # refused as too large by the engine, before anything is read
        await session.send("Fetch.continueRequest", {"requestId": request_id})
        return
    # the bytes as they came (a body stream would hand text on already decoded)
    got = await session.send("Fetch.getResponseBody", {"requestId": request_id})
    body = base64.b64decode(got["body"]) if got.get("base64Encoded") else got["body"].encode()
    wanted = page_encoding(body, content_type, event["request"]["url"])
    kept = [h for h in headers if h["name"].lower() not in _TRANSFER | {"content-type"}]
    mime = content_type.split(";", 1)[0].strip()
    kept.append({"name": "Content-Type", "value": f"{mime}; charset={wanted}"})
    await session.send(
        "Fetch.fulfillRequest",
        {
            "requestId": request_id,
            "responseCode": event["responseStatusCode"],
            "responseHeaders": kept,
            "body": got["body"] if got.get("base64Encoded") else base64.b64encode(body).decode(),
        },
    )
