"""Who calls the Scrapyd-compatible API: HTTP basic auth, as scrapyd-client sends it.

The username is the account's (any case, or its e-mail); the password is one of the account's
API keys (`smk_…`) or its password. A password is checked as at POST /auth/login, under the
same login throttling (api/login_guard.py). Scrapyd clients send the credentials with every
request, and a password hash costs a few hundred milliseconds on purpose: a password that
checked out is remembered for PASSWORD_MEMO_SECONDS as a keyed digest (never the password), and
only while the account's stored hash is the same, so a changed password is asked for again.
The dashboard calls the same endpoints with its token (Bearer, X-API-Key): those work too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from cachetools import TTLCache
from flask import g, request

from api import security
from api.services import auth as auth_service
from api.services import db
from shared import accounts
from shared.errors import DomainError, Unauthorized
from shared.users import UserDoc

REALM = "ScrapeMaster"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
PASSWORD_MEMO_SECONDS = 60.0

_memo: TTLCache = TTLCache(maxsize=10_000, ttl=PASSWORD_MEMO_SECONDS)
_memo_lock = threading.Lock()
_memo_key = secrets.token_bytes(32)  # per process: the digests mean nothing elsewhere


def _digest(user: UserDoc, password: str) -> tuple[str, str, str, str]:
    mac = hmac.new(_memo_key, password.encode(), hashlib.sha256).hexdigest()
    return (db().name, str(user["_id"]), str(user.get("password_hash", "")), mac)


def _refused(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers=dict(CHALLENGE))


def _by_api_key(username: str, key: str) -> UserDoc:
    try:
        user = security.user_from_api_key(key)
    except Unauthorized:
        raise _refused("Invalid or revoked API key") from None
    if user.get("username_key", accounts.key_of(user["username"])) != accounts.key_of(username):
        raise _refused("This API key belongs to another user")
    return user


def _by_password(username: str, password: str) -> UserDoc:
    found = accounts.find_by_login(db(), username)
    if found is not None and found.get("active", True):
        digest = _digest(found, password)
        with _memo_lock:
            known = digest in _memo
        if known:
            return found
    try:
        user = auth_service.check_password(username, password)
    except Unauthorized as exc:
        raise _refused(exc.detail) from None
    with _memo_lock:
        _memo[_digest(user, password)] = True
    return user


def _authenticate() -> UserDoc:
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic":
        username, password = credentials.username or "", credentials.password or ""
        if not username or not password:
            raise _refused("Basic auth needs a username and an API key or password")
        if password.startswith(security.API_KEY_PREFIX):
            return _by_api_key(username, password)
        return _by_password(username, password)
    if request.headers.get("Authorization") or request.headers.get("X-API-Key"):
        # the dashboard's token, or an API key header; refused without a Basic challenge,
        # which would make a browser open its password dialog over the dashboard
        try:
            return security.authenticate()
        except Unauthorized:
            raise
        except Exception:  # flask-jwt-extended's own errors: a token that does not decode
            raise Unauthorized("Invalid or expired token") from None
    raise _refused(
        "Authentication required: HTTP basic auth with your username and an API key or password"
    )


def caller() -> UserDoc:
    """The calling user; Unauthorized (401 with a Basic challenge) or RateLimited otherwise.
    The outcome is kept for the request: the rate limiter asks before the view does, and a
    wrong password must count once."""
    if "user" in g:
        return g.user
    failed = g.get("scrapyd_auth_error")
    if failed is not None:
        raise failed
    try:
        user = _authenticate()
    except DomainError as exc:
        g.scrapyd_auth_error = exc
        raise
    g.user = user
    return user
