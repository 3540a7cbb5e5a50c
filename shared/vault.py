"""The secrets of a job's config: sealed (Fernet) at rest, answered as "***", opened by the
worker just before use.

Secrets are the values of `login.fields`, `cookies[].value` and of the headers named
`Authorization` or `Cookie`; a kept browser session (shared/sessions.py) is sealed whole. A
sealed value is a string `sealed:v1:<Fernet token>`, so a stored config keeps its shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

MASK = "***"
PREFIX = "sealed:v1:"
SECRET_HEADERS = frozenset({"authorization", "cookie"})

# where a secret sits in a config: ("login", selector) | ("cookie", name, domain, path) |
# ("header", lower-cased name); a masked value sent back is matched to the stored one by it
Where = tuple[str, ...]


class VaultError(RuntimeError):
    """A sealed value cannot be opened (SECRETS_KEY changed or lost)."""


def _fernet_key(secret: str) -> bytes:
    """A Fernet key from a secret of any length (SECRETS_KEY need not be Fernet's format)."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


class Vault:
    """Seals and opens values with the install's keys (the first seals, each one opens)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("a vault needs at least one key")
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    @classmethod
    def from_settings(cls, settings: Any) -> Vault:
        return _vault(tuple(settings.secrets_keys()))

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        """The plain value of a sealed one (a value stored before sealing comes back as is)."""
        if not is_sealed(value):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise VaultError(
                "a secret of this job cannot be decrypted: SECRETS_KEY is not the key it was "
                "stored with (keep the old key after the new one in SECRETS_KEY to rotate)"
            ) from None

    def seal_json(self, value: Any) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")))

    def open_json(self, sealed: str) -> Any:
        return json.loads(self.open(sealed))

    def seal_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` with each secret sealed (sealed ones stay as they are)."""
        return map_secrets(config, lambda value, _: value if is_sealed(value) else self.seal(value))

    def open_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` with each secret in the clear: for the engines only, never stored."""
        return map_secrets(config, lambda value, _: self.open(value))


@lru_cache(maxsize=4)
def _vault(keys: tuple[str, ...]) -> Vault:
    return Vault(list(keys))


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def secrets_of(config: Mapping[str, Any] | None) -> Iterator[tuple[Where, str]]:
    """(where, value) of each secret in `config`."""
    config = config or {}
    login = config.get("login")
    if isinstance(login, Mapping):
        for selector, value in (login.get("fields") or {}).items():
            if isinstance(value, str):
                yield ("login", selector), value
    for cookie in config.get("cookies") or []:
        if isinstance(cookie, Mapping) and isinstance(cookie.get("value"), str):
            where = ("cookie", str(cookie.get("name")), *_place(cookie))
            yield where, cookie["value"]
    for name, value in (config.get("headers") or {}).items():
        if str(name).lower() in SECRET_HEADERS and isinstance(value, str):
            yield ("header", str(name).lower()), value


def _place(cookie: Mapping[str, Any]) -> tuple[str, str]:
    return str(cookie.get("domain") or ""), str(cookie.get("path") or "/")


def map_secrets(
    config: Mapping[str, Any] | None, change: Callable[[str, Where], str]
) -> dict[str, Any]:
    """A copy of `config` with `change(value, where)` in place of each secret."""
    result: dict[str, Any] = dict(config or {})
    login = result.get("login")
    if isinstance(login, Mapping) and isinstance(login.get("fields"), Mapping):
        fields = {
            selector: change(value, ("login", selector)) if isinstance(value, str) else value
            for selector, value in login["fields"].items()
        }
        result["login"] = {**login, "fields": fields}
    if isinstance(result.get("cookies"), list):
        cookies = []
        for cookie in result["cookies"]:
            if isinstance(cookie, Mapping) and isinstance(cookie.get("value"), str):
                where = ("cookie", str(cookie.get("name")), *_place(cookie))
                cookie = {**cookie, "value": change(cookie["value"], where)}
            cookies.append(cookie)
        result["cookies"] = cookies
    if isinstance(result.get("headers"), Mapping):
        result["headers"] = {
            name: change(value, ("header", str(name).lower()))
            if str(name).lower() in SECRET_HEADERS and isinstance(value, str)
            else value
            for name, value in result["headers"].items()
        }
    return result


def mask_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """`config` as answered and logged: each secret is "***"."""
    return map_secrets(config, lambda _value, _where: MASK)


def describe(where: Where) -> str:
    """The field a secret is in, as a validation error names it."""
    if where[0] == "login":
        return f"config.login.fields[{where[1]!r}]"
    if where[0] == "cookie":
        return f"config.cookies[name={where[1]!r}].value"
    return f"config.headers[{where[1]!r}]"


def keep_masked(
    config: Mapping[str, Any] | None, stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """`config` (sent by a client) with each "***" replaced by the secret stored at the same
    place in `stored` (sealed or not), so an answer sent back unchanged keeps the secrets;
    and the places where "***" stands for nothing stored (an error for the client)."""
    kept = dict(secrets_of(stored))
    missing: list[str] = []

    def restore(value: str, where: Where) -> str:
        if value != MASK:
            return value
        if where in kept:
            return kept[where]
        missing.append(
            f"{describe(where)}: {MASK} stands for a stored secret, and none is stored there; "
            "send the value"
        )
        return value

    return map_secrets(config, restore), missing
