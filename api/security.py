"""Who is calling: a JWT access token or an API key, resolved to a user document."""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from flask import current_app, g, request
from flask_jwt_extended import decode_token, get_jwt, verify_jwt_in_request
from pymongo.errors import PyMongoError

from shared.errors import Forbidden, Unauthorized
from shared.users import ApiKeyRepository, UserDoc, UserRepository

API_KEY_PREFIX = "smk_"


def hash_key(key: str) -> str:
    """API keys are stored as their SHA-256: high-entropy secrets need no slow hash."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def _db():
    return current_app.extensions["scrapemaster_db"]


def user_from_api_key(key: str) -> UserDoc:
    """The active user owning this API key; Unauthorized otherwise."""
    return _user_from_api_key(key)


def _user_from_api_key(key: str) -> UserDoc:
    record = ApiKeyRepository(_db()).usable(hash_key(key))
    if record is None:
        raise Unauthorized("Invalid or revoked API key")
    user = _user_by_id(record["user_id"])
    if user is None or not user.get("active", True):
        raise Unauthorized("Invalid or revoked API key")
    return user


def authenticate() -> UserDoc:
    """The calling user, from X-API-Key, a Bearer API key, or a Bearer JWT; 401 otherwise."""
    if "user" in g:
        return g.user
    api_key = request.headers.get("X-API-Key")
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not api_key and bearer.startswith(API_KEY_PREFIX):
        api_key = bearer
    if api_key:
        user = _user_from_api_key(api_key)
    else:
        verify_jwt_in_request()
        user = _user_from_claims(get_jwt())
    g.user = user
    return user


# user documents by id for a few seconds: a token's every request would otherwise read its
# user again (a round trip of each GET). A deactivated user is refused within USER_CACHE_TTL.
USER_CACHE_TTL = 5.0
_users: TTLCache = TTLCache(maxsize=10_000, ttl=USER_CACHE_TTL)
_users_lock = threading.Lock()


def _user_by_id(user_id: Any) -> UserDoc | None:
    key = (_db().name, user_id)
    with _users_lock:
        found = _users.get(key)
    if found is None:
        found = UserRepository(_db()).get(user_id)
        if found is not None:
            with _users_lock:
                _users[key] = found
    return None if found is None else UserDoc(**found)  # a copy: callers may change theirs


def forget_user(user_id: Any) -> None:
    """Drop a user from this process's cache (after an admin changed it)."""
    with _users_lock:
        _users.pop((_db().name, user_id), None)


# an open stream (SSE, WebSocket) reads its user afresh this often, and ends when the user was
# deactivated or its role changed: a deactivated or demoted user keeps no stream past 5 s
STREAM_RECHECK_SECONDS = 2.0


class StreamUser:
    """The user of an open stream, re-read from the store every STREAM_RECHECK_SECONDS."""

    def __init__(self, user: UserDoc) -> None:
        self.user_id = user["_id"]
        self.role = user.get("role")
        self.checked = time.monotonic()

    def still_allowed(self) -> bool:
        """False once the user is gone, deactivated, or has another role than at the start."""
        if time.monotonic() - self.checked < STREAM_RECHECK_SECONDS:
            return True
        self.checked = time.monotonic()
        try:
            found = UserRepository(_db()).get(self.user_id, ["active", "role"])
        except PyMongoError:  # the store is down: keep the stream; a reconnect is checked
            return True
        return found is not None and found.get("active", True) and found.get("role") == self.role


def _user_from_claims(claims: dict[str, Any]) -> UserDoc:
    """The active user an access token's claims name; 401 otherwise."""
    if claims.get("type") != "access":
        raise Unauthorized("An access token is required")
    user = _user_by_id(claims.get("sub"))
    if user is None or not user.get("active", True):
        raise Unauthorized("User no longer exists")
    return user


def authenticate_stream() -> UserDoc:
    """As `authenticate`, and also `?token=` (an access token or API key): browsers cannot
    set headers on EventSource or WebSocket, nor on a download they start from a link. For
    streaming endpoints only (the access log redacts the token: api/access_log.py)."""
    token = request.args.get("token", "")
    if "user" in g or not token or request.headers.get("Authorization"):
        return authenticate()
    if request.headers.get("X-API-Key"):
        return authenticate()
    if token.startswith(API_KEY_PREFIX):
        user = _user_from_api_key(token)
    else:
        try:
            claims = decode_token(token)
        except Exception:  # expired, forged, malformed: all mean "not authenticated"
            raise Unauthorized("Invalid or expired token") from None
        user = _user_from_claims(claims)
    g.user = user
    return user


def current_user() -> UserDoc:
    """The authenticated user of this request (authenticate() must have run)."""
    return authenticate()


def is_admin(user: UserDoc) -> bool:
    return user.get("role") == "admin"


def _requiring(check: Callable[[], Any]) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check()
            return fn(*args, **kwargs)

        return wrapper

    return decorator


# an authenticated user for a view
auth_required = _requiring(authenticate)
# the same, who may also come as `?token=` (downloads a browser starts itself)
stream_auth_required = _requiring(authenticate_stream)


def admin_required(fn: Callable) -> Callable:
    """Require an admin for a view."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_admin(authenticate()):
            raise Forbidden("Administrator role required")
        return fn(*args, **kwargs)

    return wrapper
