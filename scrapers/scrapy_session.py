"""Scrapy's cookie middleware with its jar seeded from the job's session (a browser login's
cookies, config.cookies): the static engine crawls logged in, as the browser would."""

from __future__ import annotations

import time
from http.cookiejar import Cookie
from typing import Any

from scrapy.downloadermiddlewares.cookies import CookiesMiddleware

from scrapers.scrapy_engine import SESSION_COOKIES as SETTING  # storage-state cookies


def jar_cookie(found: dict[str, Any]) -> Cookie:
    """A storage-state cookie (Playwright's shape) as the standard library's jar holds it; a
    domain with a leading dot also matches its subdomains, as in a browser."""
    domain = str(found.get("domain") or "")
    expires = found.get("expires")
    return Cookie(
        version=0,
        name=str(found["name"]),
        value=str(found["value"]),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=domain.startswith("."),
        domain_initial_dot=domain.startswith("."),
        path=str(found.get("path") or "/"),
        path_specified=True,
        secure=bool(found.get("secure")),
        expires=int(expires) if isinstance(expires, int | float) and expires > 0 else None,
        discard=not (isinstance(expires, int | float) and expires > 0),
        comment=None,
        comment_url=None,
        rest={"HttpOnly": ""} if found.get("httpOnly") else {},
    )


class SessionCookiesMiddleware(CookiesMiddleware):
    """CookiesMiddleware whose default jar starts with the job's session cookies; the site's
    own Set-Cookie answers update it as usual."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> Any:
        middleware = super().from_crawler(crawler)
        now = int(time.time())
        for found in crawler.settings.getlist(SETTING):
            cookie = jar_cookie(found)
            if not cookie.is_expired(now):
                middleware.jars[None].set_cookie(cookie)
        return middleware
