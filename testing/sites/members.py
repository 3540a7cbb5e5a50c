"""A members area under /members/ for login tests: a form login with a CSRF token (a hidden
input bound to a pre-session cookie, posted back) and a server-side session cookie; pages that
show more to a logged-in member; a cookie-gated page. It counts logins, and can end every
session on the server's side (`invalidate`)."""

from __future__ import annotations

import html
import secrets
import threading
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

USERNAME = "alice"
PASSWORD = "wonderland-pass-7Q"  # noqa: S105 - the demo site's own account
GATE_COOKIE = "gate"
PUBLIC_ITEMS = 2
MEMBER_ITEMS = 3  # more on each page for a logged-in member
LOGIN_ACTION = "/members/login"


class Members:
    """The members area's server-side state: sessions, CSRF tokens, counts."""

    def __init__(self) -> None:
        self.gate_value = "gate-" + secrets.token_hex(8)
        self.logins = 0
        self.failed_logins = 0
        self._sessions: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """End every session (a server restart, a timeout): members must log in again."""
        with self._lock:
            self._sessions.clear()

    def member(self, cookies: dict[str, str]) -> str | None:
        with self._lock:
            return self._sessions.get(cookies.get("sid", ""))

    def token(self, pre: str) -> str:
        with self._lock:
            return self._tokens.setdefault(pre, secrets.token_hex(16))

    def log_in(self, pre: str, form: dict[str, str]) -> str | None:
        """A new session id, or None (bad token or credentials)."""
        with self._lock:
            good_token = bool(pre) and self._tokens.get(pre) == form.get("csrf")
            if (
                not good_token
                or form.get("username") != USERNAME
                or form.get("password") != PASSWORD
            ):
                self.failed_logins += 1
                return None
            self.logins += 1
            sid = secrets.token_hex(16)
            self._sessions[sid] = USERNAME
            return sid


def item_names(page: str, member: bool) -> list[str]:
    """The items /members/<page> shows (to a member, or to anyone)."""
    names = [f"{page} public {k}" for k in range(1, PUBLIC_ITEMS + 1)]
    if member:
        names += [f"{page} members-only {k}" for k in range(1, MEMBER_ITEMS + 1)]
    return names


def _cookies(handler: Any) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(handler.headers.get("Cookie") or "")
    except Exception:  # a malformed header: no cookies
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _page(handler: Any, title: str, body: str, headers: dict[str, str] | None = None) -> None:
    from testing.sites.server import _document

    handler._send(200, _document(title, body), headers=headers)


def route_get(handler: Any, rest: list[str]) -> None:
    """GET /members/<rest>."""
    members: Members = handler.site.members
    cookies = _cookies(handler)
    member = members.member(cookies)
    if rest == ["login"]:
        if member:
            _page(handler, "Account", f"<p>Logged in as {member}</p>{_logout()}")
            return
        pre = cookies.get("pre") or secrets.token_hex(8)
        # ?action=URL: the form posts there (a login whose submit leaves the site)
        action = (parse_qs(urlsplit(handler.path).query).get("action") or [LOGIN_ACTION])[0]
        _page(
            handler,
            "Log in",
            _form(members.token(pre), action),
            headers={"Set-Cookie": f"pre={pre}; Path=/; HttpOnly"},
        )
    elif rest in ([], ["more"]):
        page = "more" if rest else "home"
        items = "".join(
            f'<li class="item">{html.escape(n)}</li>' for n in item_names(page, bool(member))
        )
        nav = '<a class="next" href="/members/more">more</a>' if not rest else ""
        who = _logout() if member else '<a class="login" href="/members/login">log in</a>'
        _page(handler, "Members", f"<ul>{items}</ul>{nav}{who}")
    elif rest == ["gated"]:
        if cookies.get(GATE_COOKIE) != members.gate_value:
            handler._send(403, b"<html><body><h1>Forbidden</h1></body></html>")
            return
        items = "".join(f'<li class="item">gated {k}</li>' for k in range(1, 4))
        _page(handler, "Gated", f"<ul>{items}</ul>")
    else:
        handler._not_found()


def route_post(handler: Any, rest: list[str], body: bytes) -> None:
    """POST /members/login."""
    if rest != ["login"]:
        handler._not_found()
        return
    members: Members = handler.site.members
    cookies = _cookies(handler)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    sid = members.log_in(cookies.get("pre", ""), form)
    if sid is None:
        token = members.token(cookies.get("pre") or "")
        _page(handler, "Log in", '<p class="error">Wrong username or password</p>' + _form(token))
        return
    handler._send(
        303, b"", headers={"Location": "/members/", "Set-Cookie": f"sid={sid}; Path=/; HttpOnly"}
    )


def _logout() -> str:
    return '<a class="logout" href="/members/logout">log out</a>'


def _form(token: str, action: str = "/members/login") -> str:
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="csrf" value="{token}">'
        '<input id="username" name="username">'
        '<input id="password" name="password" type="password">'
        '<button type="submit">Log in</button>'
        "</form>"
    )
