"""Accounts: registration, login, tokens, API keys, the admin bootstrap."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from werkzeug.security import check_password_hash, generate_password_hash

from api import security
from api.services import db, settings
from shared import accounts
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized
from shared.jobs import now
from shared.users import ApiKeyDoc, ApiKeyRepository, UserDoc, UserRepository

# A hash to compare against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def self_register(username: str, email: str, password: str) -> UserDoc:
    """POST /auth/register: only while REGISTRATION is open (else an admin creates accounts)."""
    if not settings().registration_open:
        raise Forbidden(
            "Self-registration is closed on this service; ask an administrator for an account"
        )
    return register(username, email, password)


def register(username: str, email: str, password: str, role: str = "user") -> UserDoc:
    """Store a new account; 409 when its username (in any case) or e-mail is taken."""
    user: UserDoc = {
        "_id": uuid.uuid4().hex,
        "username": username,
        "username_key": accounts.key_of(username),
        "email": accounts.key_of(email),
        "password_hash": generate_password_hash(password),
        "role": role,
        "active": True,
        "created_at": now(),
        "last_login": None,
    }
    try:
        UserRepository(db()).insert(user)
    except DuplicateKeyError as exc:
        taken = (exc.details or {}).get("keyPattern") or {}
        field = "email" if "email" in taken else "username"
        raise Conflict(f"That {field} is already registered", {field: ["already taken"]}) from None
    return user


def _tokens(user: UserDoc, refresh: bool = True) -> dict[str, Any]:
    minutes = settings().jwt_access_minutes
    claims = {"role": user.get("role", "user"), "username": user["username"]}
    out: dict[str, Any] = {
        "access_token": create_access_token(
            identity=user["_id"], additional_claims=claims, expires_delta=timedelta(minutes=minutes)
        ),
        "token_type": "bearer",
        "expires_in": minutes * 60,
    }
    if refresh:
        out["refresh_token"] = create_refresh_token(
            identity=user["_id"], expires_delta=timedelta(days=settings().jwt_refresh_days)
        )
        out["user"] = user
    return out


def login(username: str, password: str) -> dict[str, Any]:
    user = check_password(username, password)
    user["last_login"] = now()
    UserRepository(db()).set(user["_id"], {"last_login": user["last_login"]})
    return _tokens(user)


def check_password(username: str, password: str) -> UserDoc:
    """The active account `username` names, when `password` is its password; 401 otherwise,
    429 while the login guard locks the account or this client (api/login_guard.py)."""
    from api.login_guard import guard

    user = accounts.find_by_login(db(), username)
    # failures count against the account, whichever of its names was typed; an unknown name
    # is counted as itself
    account = f"id:{user['_id']}" if user is not None else f"name:{accounts.key_of(username)}"
    guard().check(account)  # 429 while this account, or this client, is locked out
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        guard().failed(account)
        raise Unauthorized("Incorrect username or password")
    if not check_password_hash(user["password_hash"], password) or not user.get("active", True):
        guard().failed(account)
        raise Unauthorized("Incorrect username or password")
    return user


def refresh(refresh_token: str) -> dict[str, Any]:
    try:
        claims = decode_token(refresh_token)
    except Exception:  # any decoding problem means the token is not usable
        raise Unauthorized("Invalid or expired refresh token") from None
    if claims.get("type") != "refresh":
        raise Unauthorized("A refresh token is required")
    user = UserRepository(db()).get(claims["sub"])
    if user is None or not user.get("active", True):
        raise Unauthorized("User no longer exists")
    return _tokens(user, refresh=False)


def create_api_key(user: UserDoc, name: str) -> dict[str, Any]:
    key = security.new_api_key()
    record: ApiKeyDoc = {
        "_id": uuid.uuid4().hex,
        "user_id": user["_id"],
        "name": name,
        "prefix": key[:10],
        "key_hash": security.hash_key(key),
        "created_at": now(),
        "last_used_at": None,
        "revoked": False,
    }
    ApiKeyRepository(db()).insert(record)
    return {**record, "key": key}


def list_api_keys(user: UserDoc) -> list[ApiKeyDoc]:
    return ApiKeyRepository(db()).of_user(user["_id"])


def fresh(user: UserDoc) -> UserDoc:
    """The user's document as stored now (authentication may use one up to USER_CACHE_TTL
    seconds old)."""
    return UserRepository(db()).get(user["_id"]) or user


def revoke_api_key(user: UserDoc, key_id: str) -> None:
    if not ApiKeyRepository(db()).delete(key_id, user["_id"]):
        raise NotFound("API key not found")


def ensure_admin(database: Database, username: str, password: str, email: str = "") -> None:
    """Create (or promote and reset) the admin account named in the settings."""
    email = accounts.key_of(email or f"{username}@admin.local")
    UserRepository(database).upsert_admin(
        accounts.key_of(username),
        {"role": "admin", "password_hash": generate_password_hash(password), "active": True},
        {
            "_id": uuid.uuid4().hex,
            "username": username,
            "email": email,
            "created_at": now(),
            "last_login": None,
        },
    )
