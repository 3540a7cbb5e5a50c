"""Pages of the demo site under /kinds/: quotes built in several ways (static, written by an
inline script while loading, delayed innerHTML, fetch + template, a framework-style empty
root), JSON, a too-deep DOM, a dropped connection, sitemaps, articles (content output) and
the same article in several encodings, declared or not (/kinds/charset/<case>)."""

from __future__ import annotations

import html
import json
from typing import Any

QUOTE_PAGES = 3
QUOTES_PER_PAGE = 10
KINDS = ("static", "inline", "delayed", "template", "framework")
ARTICLES = 4


def quote(page: int, k: int) -> dict[str, str]:
    """The k-th quote (0-based) of a page: the same on every kind of page."""
    n = (page - 1) * QUOTES_PER_PAGE + k + 1
    return {"text": f"Quote number {n}", "author": f"Author {n % 7}"}


def expected_quotes(pages: int = QUOTE_PAGES) -> list[dict[str, str]]:
    return [quote(p, k) for p in range(1, pages + 1) for k in range(QUOTES_PER_PAGE)]


def _quotes_json(page: int) -> str:
    return json.dumps([quote(page, k) for k in range(QUOTES_PER_PAGE)])


def _quote_html(q: dict[str, str]) -> str:
    return (
        f'<div class="quote"><span class="text">{html.escape(q["text"])}</span>'
        f'<small class="author">{html.escape(q["author"])}</small></div>'
    )


def _pager(kind: str, page: int) -> str:
    if page >= QUOTE_PAGES:
        return '<ul class="pager"></ul>'
    link = f'<a href="/kinds/{kind}/page/{page + 1}">next</a>'
    return f'<ul class="pager"><li class="next">{link}</li></ul>'


_INLINE = """<script>
var data = __DATA__;
for (var i in data) {
  document.write('<div class="quote"><span class="text">' + data[i].text +
                 '</span><small class="author">' + data[i].author + '</small></div>');
}
</script>"""

_DELAYED = """<div id="quotes"></div><script>
setTimeout(function () {
  var out = "";
  __DATA__.forEach(function (q) {
    out += '<div class="quote"><span class="text">' + q.text + '</span>' +
           '<small class="author">' + q.author + '</small></div>';
  });
  document.getElementById("quotes").innerHTML = out;
}, 300);
</script>"""

_TEMPLATE = """<template id="quote-tpl"><div class="quote"><span class="text"></span>
<small class="author"></small></div></template><section id="list"></section><script>
fetch("/kinds/api/quotes?page=__PAGE__").then(function (r) { return r.json(); })
  .then(function (quotes) {
    var tpl = document.getElementById("quote-tpl"), list = document.getElementById("list");
    quotes.forEach(function (q) {
      var node = tpl.content.cloneNode(true);
      node.querySelector(".text").textContent = q.text;
      node.querySelector(".author").textContent = q.author;
      list.appendChild(node);
    });
  });
</script>"""

_FRAMEWORK_APP = """(function () {
  function h(tag, cls, text) {
    var el = document.createElement(tag); if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text; return el;
  }
  var root = document.getElementById("root");
  var state = JSON.parse(document.getElementById("__STATE__").textContent);
  requestAnimationFrame(function () {
    state.quotes.forEach(function (q) {
      var box = h("div", "quote"); box.appendChild(h("span", "text", q.text));
      box.appendChild(h("small", "author", q.author)); root.appendChild(box);
    });
  });
})();"""


def _quotes_page(kind: str, page: int) -> str:
    data = _quotes_json(page)
    quotes = [quote(page, k) for k in range(QUOTES_PER_PAGE)]
    if kind == "static":
        body = "".join(_quote_html(q) for q in quotes)
    elif kind == "inline":
        body = _INLINE.replace("__DATA__", data)
    elif kind == "delayed":
        body = _DELAYED.replace("__DATA__", data)
    elif kind == "template":
        body = _TEMPLATE.replace("__PAGE__", str(page))
    else:  # framework: an empty root, a state blob and a bundle that renders it
        state = json.dumps({"quotes": quotes})
        body = (
            '<div id="root"></div>'
            f'<script id="__STATE__" type="application/json">{state}</script>'
            '<script src="/kinds/app.js" defer></script>'
        )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Quotes {kind} {page}</title>"
        f"</head><body><h1>Quotes</h1>{body}{_pager(kind, page)}</body></html>"
    )


def _article(n: int) -> str:
    links = "".join(
        f'<li><a href="/kinds/article/{k}?utm_source=nav#top">Article {k}</a></li>'
        for k in range(1, ARTICLES + 1)
    )
    return (
        f"<!DOCTYPE html><html><head><title>Article {n}</title></head><body>"
        f"<nav><ul>{links}</ul><a href='/kinds/about'>About</a></nav>"
        f"<main><article><h1>Article {n} heading</h1>"
        f"<p>The first paragraph of article {n} talks about <b>web scraping</b> at length, "
        "with enough words in it to be the main content of the page.</p>"
        f"<p>A second paragraph of article {n}, with <a href='/kinds/article/{n % ARTICLES + 1}'>"
        "the next article</a>, and more words for readers.</p></article></main>"
        "<footer>Copyright 2026 Demo footer text</footer></body></html>"
    )


def _sitemap(base: str, locs: list[str], index: bool = False) -> bytes:
    tag, entry = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    rows = "".join(f"<{entry}><loc>{base}{loc}</loc></{entry}>" for loc in locs)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<{tag} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</{tag}>'
    ).encode()


# One article, written with characters outside ASCII, as the bytes of each /kinds/charset/ case.
PRICE = "€1.25"
CHARSET_TITLE = "Café price list — €1.25"


def _charset_article(meta: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>{CHARSET_TITLE}</title></head><body>"
        f"<main><article><h1>Crème brûlée at the café</h1>"
        f'<p>The crème brûlée costs <span class="price">{PRICE}</span> today, and the naïve '
        "visitor pays it gladly; the œuvre of the chef is praised in every guide.</p>"
        "<p>A second paragraph with “quotes”, a dash — and an ellipsis… so that the article has "
        "enough words to be the main content of the page.</p></article></main></body></html>"
    )


def _charset_text() -> str:
    return f"{CHARSET_TITLE}\nThe crème brûlée costs {PRICE} today.\n<b>not markup</b>\n"


# case -> (Content-Type, body): what /kinds/charset/<case> serves
CHARSET_CASES: dict[str, tuple[str, bytes]] = {
    # no charset anywhere, UTF-8 bytes: the HTML standard leaves it to the browser's default
    "unlabelled": ("text/html", _charset_article().encode()),
    # a UTF-8 byte order mark, no charset in the header or the page
    "bom": ("text/html", b"\xef\xbb\xbf" + _charset_article().encode()),
    # the header says UTF-8 (and is right), the page's <meta> says windows-1252
    "contradicting-meta": (
        "text/html; charset=utf-8",
        _charset_article('<meta charset="windows-1252">').encode(),
    ),
    # windows-1252 bytes with a proper header
    "windows-1252": ("text/html; charset=windows-1252", _charset_article().encode("cp1252")),
    # windows-1252 bytes declared nowhere: not UTF-8, so read as what the bytes look like
    "unlabelled-windows-1252": ("text/html", _charset_article().encode("cp1252")),
    # plain text, UTF-8 bytes, no charset
    "plain": ("text/plain", _charset_text().encode()),
}


def route(handler: Any, rest: list[str]) -> None:
    """Serve /kinds/<rest> on `handler` (testing.sites.server._Handler)."""
    base = f"http://{handler.headers.get('Host', '127.0.0.1')}"
    if len(rest) >= 1 and rest[0] in KINDS:
        page = int(rest[2]) if len(rest) == 3 and rest[1] == "page" and rest[2].isdigit() else 1
        if len(rest) in (1, 3) and 1 <= page <= QUOTE_PAGES:
            handler._send(200, _quotes_page(rest[0], page).encode())
            return
    elif rest == ["app.js"]:
        handler._send(200, _FRAMEWORK_APP.encode(), "application/javascript")
        return
    elif rest == ["api", "quotes"]:
        raw = handler.path.rsplit("page=", 1)[-1]
        page = int(raw) if raw.isdigit() else 1
        handler._send(200, _quotes_json(page).encode(), "application/json")
        return
    elif rest == ["json"]:
        handler._send(200, b'{"quotes": [{"text": "a"}]}', "application/json")
        return
    elif len(rest) == 2 and rest[0] == "charset" and rest[1] in CHARSET_CASES:
        content_type, body = CHARSET_CASES[rest[1]]
        handler._send(200, body, content_type)
        return
    elif rest == ["deep"]:
        deep = "<div>" * 5000 + _quote_html(quote(1, 0)) + "</div>" * 5000
        handler._send(200, f"<html><body>{deep}</body></html>".encode())
        return
    elif rest == ["drop"]:
        handler.close_connection = True  # read the request, answer nothing, hang up
        return
    elif len(rest) == 2 and rest[0] == "article" and rest[1].isdigit():
        if 1 <= int(rest[1]) <= ARTICLES:
            handler._send(200, _article(int(rest[1])).encode())
            return
    elif rest == ["sitemap.xml"]:
        locs = [f"/kinds/article/{k}" for k in range(1, ARTICLES + 1)]
        handler._send(200, _sitemap(base, locs), "application/xml")
        return
    elif rest == ["sitemap-index.xml"]:
        locs = ["/kinds/sitemap-static.xml", "/kinds/sitemap.xml"]
        handler._send(200, _sitemap(base, locs, index=True), "application/xml")
        return
    elif rest == ["sitemap-static.xml"]:
        locs = [f"/kinds/static/page/{p}" for p in range(1, QUOTE_PAGES + 1)]
        handler._send(200, _sitemap(base, locs), "application/xml")
        return
    handler._not_found()
