"""The CLI's stored logins: `$XDG_CONFIG_HOME/scrapemaster/credentials.json`, mode 0600."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/scrapemaster`, or `~/.config/scrapemaster` (the XDG default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "scrapemaster"


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def _load() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(data: dict[str, Any]) -> None:
    """Write atomically, readable by the user only (the file holds tokens)."""
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".credentials-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
        os.replace(tmp, credentials_path())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def default_api() -> str | None:
    """The API of the last `scrapemaster login`."""
    value = _load().get("default_api")
    return value if isinstance(value, str) else None


def login_for(api_root: str) -> dict[str, Any] | None:
    """The stored tokens for this API root (`…/api/v1`), if any."""
    found = (_load().get("servers") or {}).get(api_root)
    return found if isinstance(found, dict) and found.get("access_token") else None


def save_login(
    api_root: str,
    access_token: str,
    refresh_token: str | None,
    username: str | None = None,
    make_default: bool = False,
) -> None:
    """Store (or update) the tokens for `api_root`."""
    data = _load()
    servers = data.setdefault("servers", {})
    entry = servers.setdefault(api_root, {})
    entry["access_token"] = access_token
    if refresh_token:
        entry["refresh_token"] = refresh_token
    if username:
        entry["username"] = username
    if make_default:
        data["default_api"] = api_root
    _store(data)


def forget(api_root: str) -> bool:
    """Remove the login for `api_root`; whether there was one."""
    data = _load()
    servers = data.get("servers") or {}
    if api_root not in servers:
        return False
    del servers[api_root]
    if data.get("default_api") == api_root:
        data.pop("default_api")
    _store(data)
    return True
