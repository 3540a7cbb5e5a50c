"""The one rule both engines read a page's bytes by (scrapers/charsets.py), as pure logic."""

from __future__ import annotations

import pytest

from scrapers.charsets import is_plain, needs_label, page_encoding, page_text
from testing.sites.kinds import CHARSET_CASES, CHARSET_TITLE, PRICE

URL = "http://127.0.0.1:8080/page"


@pytest.mark.parametrize(
    ("case", "encoding"),
    [
        ("unlabelled", "UTF-8"),  # valid UTF-8 declared nowhere: UTF-8, not windows-1252
        ("bom", "UTF-8"),
        ("contradicting-meta", "UTF-8"),  # the header wins over the page's <meta>
        ("windows-1252", "windows-1252"),
        ("unlabelled-windows-1252", "windows-1252"),  # not UTF-8: what the bytes look like
        ("plain", "UTF-8"),
    ],
)
def test_every_test_page_is_read_with_the_encoding_its_bytes_call_for(case, encoding):
    content_type, body = CHARSET_CASES[case]
    assert page_encoding(body, content_type, URL) == encoding
    text = page_text(body, content_type, URL)
    assert PRICE in text and "brûlée" in text and "\ufeff" not in text


def test_the_order_is_bom_then_header_then_meta_then_the_bytes():
    utf8 = "é €".encode()
    assert page_encoding(b"\xef\xbb\xbf" + utf8, "text/html; charset=windows-1252", URL) == "UTF-8"
    assert page_encoding(utf8, "text/html; charset=windows-1252", URL) == "windows-1252"
    meta = b'<meta charset="iso-8859-2">' + utf8
    assert page_encoding(meta, "text/html", URL) == "ISO-8859-2"
    assert page_encoding(meta, "text/html; charset=utf-8", URL) == "UTF-8"
    # an unknown label in the header is ignored, as browsers do
    assert page_encoding(utf8, "text/html; charset=no-such-thing", URL) == "UTF-8"
    assert page_encoding(b"plain ascii", "text/html", URL) == "UTF-8"


def test_plain_text_becomes_the_page_a_browser_shows_with_its_markup_escaped():
    content_type, body = CHARSET_CASES["plain"]
    page = page_text(body, content_type, URL)
    assert page.startswith("<html><head></head><body><pre>")
    assert page.endswith("</pre></body></html>")
    assert CHARSET_TITLE in page and "&lt;b&gt;not markup&lt;/b&gt;" in page
    assert page_text(b"<p>x</p>", "text/html", URL) == "<p>x</p>"
    assert is_plain("text/plain; charset=utf-8") and is_plain("text/csv") and is_plain("text/css")
    assert not any(map(is_plain, ["text/html", "text/xml", "application/json", "text/json"]))


def test_only_successful_text_documents_without_a_known_charset_get_one_declared():
    assert needs_label(200, "text/html")
    assert needs_label(200, "text/plain")
    assert needs_label(200, "application/xhtml+xml")
    assert needs_label(203, "text/html; charset=no-such-thing")
    assert not needs_label(200, "text/html; charset=utf-8")
    assert not needs_label(200, 'text/html; charset="windows-1252"')
    assert not needs_label(404, "text/html")  # an error page is not read for items
    assert not needs_label(302, "text/html")
    assert not needs_label(None, "text/html")
    assert not needs_label(200, "application/pdf")
    assert not needs_label(200, "image/png")
    assert not needs_label(200, "")  # Chromium sniffs it: left alone
