"""Local demo website (static and JavaScript catalog, feed, robots.txt, pages that need
browser actions under /act/) for tests and benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testing.sites import interactive, kinds, members

HOST = "127.0.0.1"
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
FEED_TOTAL = 50
FEED_BATCH = 10
DELAYED_QUOTES = 5
DELAYED_MS = 1500
EXTERNAL_URL = "http://example.invalid/x"


# --------------------------------------------------------------------------- content helpers


def sku_for(index: int) -> str:
    """Return the SKU of the product with this global index (``SKU-00001``)."""
    return f"SKU-{index:05d}"


def price_for(index: int) -> str:
    """Return the displayed price of the product with this global index (``$1.50``)."""
    return f"${index * 1.5:.2f}"


def stock_for(index: int) -> str | None:
    """Return the stock text (even indexes only) or None."""
    return "in stock" if index % 2 == 0 else None


def _document(title: str, body: str, script: str = "") -> bytes:
    script_tag = f"<script>\n{script}\n</script>\n" if script else ""
    text = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "</head>\n"
        "<body>\n"
        f"{body}\n"
        f"{script_tag}"
        "</body>\n"
        "</html>\n"
    )
    return text.encode("utf-8")


def _footer() -> str:
    return f'<footer><a href="/about">About us</a> | <a href="{EXTERNAL_URL}">ext</a></footer>'


def _product_html(index: int) -> str:
    stock = stock_for(index)
    stock_html = f'<p class="stock">{stock}</p>' if stock is not None else ""
    return (
        f'<div class="product" data-sku="{sku_for(index)}">'
        f'<h2 class="product-title">Product {index}</h2>'
        f'<span class="price">{price_for(index)}</span>'
        f"{stock_html}"
        f'<a class="detail" href="/catalog/item/{index}">details</a>'
        '<ul class="tags"><li>tag-a</li><li>tag-b</li></ul>'
        "</div>"
    )


def _pager_html(page: int, pages: int, prefix: str) -> str:
    parts = ['<ul class="pager">']
    if page > 1:
        parts.append(f'<li class="previous"><a href="{prefix}/page/{page - 1}">prev</a></li>')
    if page < pages:
        parts.append(f'<li class="next"><a href="{prefix}/page/{page + 1}">next</a></li>')
    parts.append("</ul>")
    return "".join(parts)


_CATALOG_SCRIPT = """\
(function () {
  var PAGE = __PAGE__;
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function product(item) {
    var index = parseInt(item.sku.slice(4), 10);
    var box = el("div", {"class": "product", "data-sku": item.sku});
    box.appendChild(el("h2", {"class": "product-title"}, item.title));
    box.appendChild(el("span", {"class": "price"}, item.price));
    if (item.stock !== null && item.stock !== undefined) {
      box.appendChild(el("p", {"class": "stock"}, item.stock));
    }
    box.appendChild(el("a", {"class": "detail", "href": "/catalog/item/" + index}, "details"));
    var tags = el("ul", {"class": "tags"});
    tags.appendChild(el("li", {}, "tag-a"));
    tags.appendChild(el("li", {}, "tag-b"));
    box.appendChild(tags);
    return box;
  }
  function pagerItem(cls, page, label) {
    var item = el("li", {"class": cls});
    item.appendChild(el("a", {"href": "/js/catalog/page/" + page}, label));
    return item;
  }
  function pager(page, pages) {
    var list = el("ul", {"class": "pager"});
    if (page > 1) { list.appendChild(pagerItem("previous", page - 1, "prev")); }
    if (page < pages) { list.appendChild(pagerItem("next", page + 1, "next")); }
    return list;
  }
  var app = document.getElementById("app");
  fetch("/api/catalog?page=" + PAGE)
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(function (data) {
      var fragment = document.createDocumentFragment();
      fragment.appendChild(el("h1", {"class": "page-title"}, "Catalog page " + data.page));
      data.items.forEach(function (item) { fragment.appendChild(product(item)); });
      fragment.appendChild(pager(data.page, data.pages));
      app.appendChild(fragment);
    })
    .catch(function (error) {
      app.appendChild(el("p", {"class": "error"}, String(error)));
    });
})();"""

_DELAYED_SCRIPT = """\
setTimeout(function () {
  var box = document.getElementById("quotes");
  for (var k = 1; k <= __COUNT__; k++) {
    var quote = document.createElement("div");
    quote.className = "quote";
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = "Quote " + k;
    var author = document.createElement("small");
    author.className = "author";
    author.textContent = "Author " + k;
    quote.appendChild(text);
    quote.appendChild(author);
    box.appendChild(quote);
  }
}, __DELAY_MS__);"""

_FEED_SCRIPT = """\
(function () {
  var TOTAL = __TOTAL__;
  var feed = document.getElementById("feed");
  var loading = false;
  function count() { return feed.querySelectorAll("article.post").length; }
  function nearBottom() {
    var height = Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);
    return window.innerHeight + window.scrollY >= height - 200;
  }
  function finish() {
    if (!document.getElementById("feed-end")) {
      var end = document.createElement("p");
      end.id = "feed-end";
      end.textContent = "No more posts";
      document.body.appendChild(end);
    }
  }
  function loadMore() {
    if (loading) { return; }
    if (count() >= TOTAL) { finish(); return; }
    loading = true;
    fetch("/api/feed?offset=" + count())
      .then(function (response) { return response.json(); })
      .then(function (data) {
        data.posts.forEach(function (post) {
          var article = document.createElement("article");
          article.className = "post";
          article.style.height = "300px";
          var title = document.createElement("h3");
          title.textContent = post.title;
          article.appendChild(title);
          feed.appendChild(article);
        });
        if (count() >= TOTAL) { finish(); }
      })
      .finally(function () { loading = false; });
  }
  window.addEventListener("scroll", function () { if (nearBottom()) { loadMore(); } });
})();"""

_COOKIE_SCRIPT = """\
(function () {
  var visited = document.cookie.split(";").some(function (part) {
    return part.trim().indexOf("visited=") === 0;
  });
  var state = document.createElement("p");
  state.id = "state";
  if (visited) {
    state.textContent = "returning";
  } else {
    document.cookie = "visited=1; path=/";
    state.textContent = "new";
  }
  document.getElementById("app").appendChild(state);
})();"""


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], site: SiteServer) -> None:
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alives, /slow waiters)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError) or self.site.stopping:
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "ScrapeMasterDemo/1.0"
    timeout = 30  # idle keep-alive connections are dropped after this many seconds
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive connections
    wbufsize = 64 * 1024  # headers and body leave in one write; flushed after each request

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    # ------------------------------------------------------------------ plumbing

    @property
    def site(self) -> SiteServer:
        return self.server.site

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self.site._record(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 65536))
        segments = [s for s in urlsplit(self.path).path.split("/") if s]
        try:
            if segments[:1] == ["members"]:
                members.route_post(self, segments[1:], body)
            else:
                self._not_found()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _dispatch(self) -> None:
        self.site._record(self.path)
        self.site._enter()
        try:
            self._route()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            self.site._leave()

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = HTML_TYPE,
        headers: dict[str, str] | None = None,
    ) -> None:
        if self.site.stopping:
            self.close_connection = True
        self.send_response(status)
        no_body = status in (204, 304)
        if not no_body:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(body)

    def _html(self, status: int, title: str, body: str, script: str = "") -> None:
        self._send(status, _document(title, body, script))

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), JSON_TYPE)

    def _not_found(self) -> None:
        self._html(404, "Not Found", "<h1>Not Found</h1>\n<p>No such page.</p>")

    # ------------------------------------------------------------------ routing

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query)
        segments = [s for s in path.split("/") if s]

        if path == "/robots.txt":
            self._send(200, self.site.robots_txt().encode("utf-8"), TEXT_TYPE)
        elif segments == ["about"]:
            self._about()
        elif segments == ["slow"]:
            self._slow()
        elif len(segments) == 2 and segments[0] == "status":
            self._status(segments[1])
        elif segments[:1] == ["catalog"]:
            self._catalog(segments[1:])
        elif segments[:2] == ["js", "catalog"]:
            self._js_catalog(segments[2:])
        elif segments == ["js", "delayed"]:
            self._delayed()
        elif segments == ["js", "feed"]:
            self._feed()
        elif segments == ["js", "cookie"]:
            self._cookie()
        elif segments == ["api", "catalog"]:
            self._api_catalog(query)
        elif segments == ["api", "feed"]:
            self._api_feed(query)
        elif segments == ["set-cookie"]:
            page = _document("Cookie", '<h1>Cookie</h1>\n<a href="/catalog/">catalog</a>')
            self._send(200, page, headers={"Set-Cookie": "session=abc123; Path=/"})
        elif segments == ["redirect"]:
            self._send(302, b"", headers={"Location": (query.get("to") or ["/"])[0]})
        elif segments == ["trap"]:
            self._trap((query.get("to") or ["/"])[0])
        elif segments[:1] == ["kinds"]:
            kinds.route(self, segments[1:])
        elif segments[:1] == ["act"]:
            interactive.route(self, segments[1:])
        elif segments[:1] == ["members"]:
            members.route_get(self, segments[1:])
        else:
            self._not_found()

    @staticmethod
    def _page_number(rest: list[str]) -> int | None:
        """Map ``[]`` to 1 and ``["page", "N"]`` to N; anything else to None."""
        if not rest:
            return 1
        if len(rest) == 2 and rest[0] == "page" and rest[1].isdigit():
            return int(rest[1])
        return None

    # ------------------------------------------------------------------ static pages

    def _trap(self, target: str) -> None:
        """A page whose links and every kind of sub-resource point at `target` (policy tests)."""
        quoted = html.escape(target, quote=True)
        ws = target.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        body = (
            '<h1 class="title">Trap</h1>\n'
            f'<p class="ok">reachable</p>\n<a href="{quoted}">link</a>\n'
            f'<img src="{quoted}img.png">\n<iframe src="{quoted}frame"></iframe>\n'
            f'<link rel="stylesheet" href="{quoted}style.css">\n'
            f'<script src="{quoted}script.js"></script>\n'
            f'<video src="{quoted}video.mp4"></video>'
        )
        script = (
            f"fetch({json.dumps(target + 'fetch')}).catch(() => {{}});\n"
            f"try {{ new WebSocket({json.dumps(ws + 'ws')}); }} catch (e) {{}}\n"
            "const x = new XMLHttpRequest();\n"
            f"x.open('GET', {json.dumps(target + 'xhr')}); x.send();\n"
            f"navigator.sendBeacon && navigator.sendBeacon({json.dumps(target + 'beacon')});"
        )
        self._html(200, "Trap", body, script)

    def _about(self) -> None:
        body = (
            "<h1>About</h1>\n"
            "<p>ScrapeMaster demo site used by the test-suite.</p>\n"
            '<p><a href="/catalog/">Back to the catalog</a></p>'
        )
        self._html(200, "About", body)

    def _slow(self) -> None:
        self.site._wait(self.site.slow_seconds)
        self._html(200, "Slow", '<h1>Slow</h1>\n<p class="slow">finally here</p>')

    def _status(self, raw: str) -> None:
        code = int(raw) if raw.isdigit() else 0
        if not 200 <= code <= 599:
            self._not_found()
            return
        self._html(code, f"Status {code}", f'<h1>Status {code}</h1>\n<p class="code">{code}</p>')

    def _catalog(self, rest: list[str]) -> None:
        site = self.site
        if len(rest) == 2 and rest[0] == "item":
            index = int(rest[1]) if rest[1].isdigit() else 0
            if not 1 <= index <= site.total_items:
                self._not_found()
                return
            site._wait(site.delay)
            self._item(index)
            return
        page = self._page_number(rest)
        if page is None or not 1 <= page <= site.pages:
            self._not_found()
            return
        site._wait(site.delay)
        first = (page - 1) * site.items_per_page + 1
        products = "\n".join(_product_html(i) for i in range(first, first + site.items_per_page))
        body = (
            "<main>\n"
            f'<h1 class="page-title">Catalog page {page}</h1>\n'
            f'<div class="products">\n{products}\n</div>\n'
            f"{_pager_html(page, site.pages, '/catalog')}\n"
            "</main>\n"
            f"{_footer()}"
        )
        self._html(200, f"Catalog page {page}", body)

    def _item(self, index: int) -> None:
        stock = stock_for(index)
        stock_html = f'<p class="stock">{stock}</p>\n' if stock is not None else ""
        body = (
            f'<div class="product-detail" data-sku="{sku_for(index)}">\n'
            f'<h1 class="product-title">Product {index}</h1>\n'
            f'<span class="price">{price_for(index)}</span>\n'
            f'<p class="sku">{sku_for(index)}</p>\n'
            f"{stock_html}"
            f'<p class="description">Detailed description of product {index}.</p>\n'
            "</div>\n"
            '<p><a class="back" href="/catalog/">Back to the catalog</a></p>\n'
            f"{_footer()}"
        )
        self._html(200, f"Product {index}", body)

    # ------------------------------------------------------------------ JavaScript pages

    def _js_catalog(self, rest: list[str]) -> None:
        page = self._page_number(rest)
        if page is None or not 1 <= page <= self.site.pages:
            self._not_found()
            return
        body = (
            '<div id="app"></div>\n'
            "<noscript>You need to enable JavaScript to run this app.</noscript>\n"
            f"{_footer()}"
        )
        script = _CATALOG_SCRIPT.replace("__PAGE__", str(page))
        self._html(200, f"JS catalog page {page}", body, script)

    def _delayed(self) -> None:
        body = '<h1>Delayed quotes</h1>\n<div id="quotes"></div>'
        script = _DELAYED_SCRIPT.replace("__COUNT__", str(DELAYED_QUOTES)).replace(
            "__DELAY_MS__", str(DELAYED_MS)
        )
        self._html(200, "Delayed quotes", body, script)

    def _feed(self) -> None:
        posts = "\n".join(
            f'<article class="post" style="height:300px"><h3>Post {k}</h3></article>'
            for k in range(1, FEED_BATCH + 1)
        )
        body = f'<h1>Feed</h1>\n<div id="feed">\n{posts}\n</div>'
        script = _FEED_SCRIPT.replace("__TOTAL__", str(FEED_TOTAL))
        self._html(200, "Feed", body, script)

    def _cookie(self) -> None:
        body = '<h1>Cookie</h1>\n<div id="app"></div>'
        self._html(200, "Cookie", body, _COOKIE_SCRIPT)

    # ------------------------------------------------------------------ JSON API

    def _api_catalog(self, query: dict[str, list[str]]) -> None:
        raw = query.get("page", ["1"])[0]
        page = int(raw) if raw.isdigit() else 0
        if not 1 <= page <= self.site.pages:
            self._json(404, {"error": "no such page", "page": raw})
            return
        self._json(200, self.site.catalog_payload(page))

    def _api_feed(self, query: dict[str, list[str]]) -> None:
        raw = query.get("offset", ["0"])[0]
        if not raw.isdigit():
            self._json(400, {"error": "offset must be a non-negative integer"})
            return
        offset = int(raw)
        end = min(offset + FEED_BATCH, FEED_TOTAL)
        posts = [{"id": k, "title": f"Post {k}"} for k in range(offset + 1, end + 1)]
        payload = {
            "offset": offset,
            "total": FEED_TOTAL,
            "posts": posts,
            "has_more": end < FEED_TOTAL,
        }
        self._json(200, payload)


class SiteServer:
    """A demo website on 127.0.0.1 served from a daemon thread; use it as a context manager."""

    def __init__(
        self,
        pages: int = 5,
        items_per_page: int = 10,
        delay: float = 0.0,
        disallow: Sequence[str] | None = None,
        slow_seconds: float = 30.0,
        port: int = 0,
        allow: Sequence[str] | None = None,
        host: str = HOST,
        crawl_delay: float | None = None,
    ) -> None:
        if pages < 1 or items_per_page < 1:
            raise ValueError("pages and items_per_page must be at least 1")
        self.pages = pages
        self.items_per_page = items_per_page
        self.delay = delay
        self.disallow = list(disallow or [])
        self.allow = list(allow or [])  # written after the Disallow lines
        self.slow_seconds = slow_seconds
        self._requested_port = port
        self.host = host
        self.crawl_delay = crawl_delay  # a `Crawl-delay:` line in robots.txt
        self._requests: list[str] = []
        self._starts: list[float] = []  # time.monotonic() of each request's arrival
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once since the last reset
        self.members = members.Members()  # /members/: logins, sessions (testing/sites/members.py)
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SiteServer:
        """Bind the port and start serving in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stop_event.clear()
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"SiteServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and free the port (idempotent)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ attributes

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError("SiteServer is not running; call start() or use 'with'")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        """Absolute URL of a path on this site (``url_for("/catalog/")``)."""
        return self.url + ("" if path.startswith("/") else "/") + path

    @property
    def requests(self) -> list[str]:
        """Snapshot of the request paths (with query string) received so far, in order."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        """Forget the recorded requests (and the arrival times and peak concurrency)."""
        with self._lock:
            self._requests.clear()
            self._starts.clear()
            self.max_in_flight = self.in_flight

    @property
    def arrivals(self) -> list[float]:
        """time.monotonic() of each request's arrival, in order."""
        with self._lock:
            return list(self._starts)

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    @property
    def total_items(self) -> int:
        return self.pages * self.items_per_page

    # ------------------------------------------------------------------ content

    def robots_txt(self) -> str:
        """The robots.txt body: ``User-agent: *`` and one ``Disallow:`` line per prefix."""
        lines = ["User-agent: *"]
        lines += [f"Disallow: {prefix}" for prefix in self.disallow] or ["Disallow:"]
        lines += [f"Allow: {prefix}" for prefix in self.allow]
        if self.crawl_delay is not None:
            lines.append(f"Crawl-delay: {self.crawl_delay:g}")
        return "\n".join(lines) + "\n"

    def catalog_payload(self, page: int) -> dict[str, Any]:
        """The /api/catalog JSON document for one page."""
        first = (page - 1) * self.items_per_page + 1
        items = [
            {
                "sku": sku_for(i),
                "title": f"Product {i}",
                "price": price_for(i),
                "stock": stock_for(i),
            }
            for i in range(first, first + self.items_per_page)
        ]
        following = f"/api/catalog?page={page + 1}" if page < self.pages else None
        return {"page": page, "pages": self.pages, "items": items, "next": following}

    # ------------------------------------------------------------------ internals

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)
            self._starts.append(time.monotonic())

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when the server is stopping."""
        if seconds > 0:
            self._stop_event.wait(seconds)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo site in the foreground until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m testing.sites.server", description=__doc__)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--items-per-page", type=int, default=10)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default=HOST, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument(
        "--disallow", action="append", default=[], help="robots.txt Disallow prefix (repeatable)"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    site = SiteServer(
        pages=args.pages,
        items_per_page=args.items_per_page,
        delay=args.delay,
        disallow=args.disallow,
        slow_seconds=args.slow_seconds,
        port=args.port,
        host=args.host,
    )
    with site:
        print(f"READY {site.url}", flush=True)
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
