"""Pages of the demo site under /act/ that need a person (browser actions): a list paginated
by a button with a JavaScript click handler and no href, a search form answered by a slow
API, an infinite scroll fed by a deliberately slow API, and a button that navigates away.

Query parameters: `delay` (milliseconds each API answer waits), `pages` (of the list),
`stuck=1` (the list's button does nothing), `same=1` (it renders the same page again),
`split` (milliseconds between emptying the list and filling it after a click: a render in two
steps with no request between them), `to` (where /act/jump's button goes).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIST_PAGES = 5
LIST_PER_PAGE = 10
SEARCH_RESULTS = 7
FEED_TOTAL = 50
FEED_BATCH = 10
SORTS = ("asc", "desc")

_LIST_SCRIPT = """\
(function () {
  var PAGES = __PAGES__, DELAY = __DELAY__, STUCK = __STUCK__, SAME = __SAME__, SPLIT = __SPLIT__;
  var page = 0;
  var list = document.getElementById("items");
  var button = document.getElementById("next");
  function fill(data) {
    data.items.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "item";
      li.setAttribute("data-id", item.id);
      li.textContent = item.title;
      list.appendChild(li);
    });
    page = data.page;
    document.getElementById("where").textContent = "Page " + page + " of " + PAGES;
    if (page >= PAGES) { button.remove(); }
  }
  function show(n, split) {
    return fetch("/act/api/list?page=" + n + "&delay=" + DELAY)
      .then(function (r) { return r.json(); })
      .then(function (data) {
        list.innerHTML = "";
        if (split) { setTimeout(function () { fill(data); }, split); } else { fill(data); }
      });
  }
  button.addEventListener("click", function () {
    if (STUCK) { return; }
    show(SAME ? page : page + 1, SPLIT);
  });
  show(1);
})();"""

_SEARCH_SCRIPT = """\
(function () {
  var DELAY = __DELAY__;
  var form = document.getElementById("search");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = form.elements.q.value, sort = document.getElementById("sort").value;
    fetch("/act/api/search?q=" + encodeURIComponent(q) + "&sort=" + sort + "&delay=" + DELAY)
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var box = document.getElementById("results");
        box.innerHTML = "";
        data.results.forEach(function (text) {
          var div = document.createElement("div");
          div.className = "result";
          div.textContent = text;
          box.appendChild(div);
        });
      });
  });
})();"""

_FEED_SCRIPT = """\
(function () {
  var TOTAL = __TOTAL__, DELAY = __DELAY__;
  var feed = document.getElementById("feed");
  var loading = false;  // a scroll while a batch is on its way is ignored, as on real sites
  function count() { return feed.querySelectorAll("article.post").length; }
  function nearBottom() {
    var height = Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);
    return window.innerHeight + window.scrollY >= height - 200;
  }
  function loadMore() {
    if (loading || count() >= TOTAL) { return; }
    loading = true;
    fetch("/act/api/feed?offset=" + count() + "&delay=" + DELAY)
      .then(function (r) { return r.json(); })
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
      })
      .finally(function () { loading = false; });
  }
  window.addEventListener("scroll", function () { if (nearBottom()) { loadMore(); } });
})();"""


def _number(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = (query.get(name) or [""])[0]
    return int(raw) if raw.isdigit() else default


def _page(handler: Any, title: str, body: str, script: str) -> None:
    text = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n"
        f"<script>\n{script}\n</script>\n</body></html>\n"
    )
    handler._send(200, text.encode())


def _json(handler: Any, payload: Any) -> None:
    handler._send(200, json.dumps(payload).encode(), "application/json")


def list_item(index: int) -> dict[str, Any]:
    """The index-th (1-based) item of the button-paginated list."""
    return {"id": index, "title": f"Item {index}"}


def search_results(q: str, sort: str = "asc") -> list[str]:
    """What the search form shows for `q`."""
    found = [f"{q} result {k}" for k in range(1, SEARCH_RESULTS + 1)]
    return found[::-1] if sort == "desc" else found


def route(handler: Any, rest: list[str]) -> None:
    """Serve /act/<rest> on `handler` (testing.sites.server._Handler)."""
    query = parse_qs(urlsplit(handler.path).query)
    delay = _number(query, "delay", 0)
    wait = handler.site._wait
    if rest == ["list"]:
        pages = _number(query, "pages", LIST_PAGES)
        stuck = "true" if query.get("stuck") == ["1"] else "false"
        same = "true" if query.get("same") == ["1"] else "false"
        script = (
            _LIST_SCRIPT.replace("__PAGES__", str(pages))
            .replace("__DELAY__", str(delay))
            .replace("__STUCK__", stuck)
            .replace("__SAME__", same)
            .replace("__SPLIT__", str(_number(query, "split", 0)))
        )
        body = (
            '<h1>List</h1>\n<p id="where"></p>\n<ul id="items"></ul>\n'
            '<button id="next" type="button">Next</button>'
        )
        _page(handler, "List", body, script)
    elif rest == ["api", "list"]:
        wait(delay / 1000)
        page = max(1, _number(query, "page", 1))
        first = (page - 1) * LIST_PER_PAGE + 1
        items = [list_item(i) for i in range(first, first + LIST_PER_PAGE)]
        _json(handler, {"page": page, "items": items})
    elif rest == ["search"]:
        options = "".join(f'<option value="{s}">{s}</option>' for s in SORTS)
        body = (
            '<h1>Search</h1>\n<form id="search"><input name="q" type="text">'
            f'<select id="sort">{options}</select>'
            '<button type="submit">Search</button></form>\n<div id="results"></div>'
        )
        _page(handler, "Search", body, _SEARCH_SCRIPT.replace("__DELAY__", str(delay)))
    elif rest == ["api", "search"]:
        wait(delay / 1000)
        q = (query.get("q") or [""])[0]
        sort = (query.get("sort") or ["asc"])[0]
        _json(handler, {"q": q, "results": search_results(q, sort)})
    elif rest == ["feed"]:
        posts = "\n".join(
            f'<article class="post" style="height:300px"><h3>Post {k}</h3></article>'
            for k in range(1, FEED_BATCH + 1)
        )
        script = _FEED_SCRIPT.replace("__TOTAL__", str(FEED_TOTAL)).replace("__DELAY__", str(delay))
        _page(handler, "Slow feed", f'<h1>Feed</h1>\n<div id="feed">\n{posts}\n</div>', script)
    elif rest == ["api", "feed"]:
        wait(delay / 1000)
        offset = _number(query, "offset", 0)
        end = min(offset + FEED_BATCH, FEED_TOTAL)
        batch = [{"id": k, "title": f"Post {k}"} for k in range(offset + 1, end + 1)]
        _json(handler, {"offset": offset, "posts": batch})
    elif rest == ["jump"]:
        target = json.dumps((query.get("to") or ["/"])[0])
        body = '<h1 class="title">Jump</h1>\n<button id="go" type="button">Go</button>'
        script = (
            f'document.getElementById("go").onclick = function () {{ location.href = {target}; }};'
        )
        _page(handler, "Jump", body, script)
    else:
        handler._not_found()
