"""The API's side of job secrets: seal a body's secrets before it is stored or queued, and let
a client send `***` back for a secret it was answered (shared/vault.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.services import settings
from shared.errors import ValidationFailed
from shared.vault import Vault, keep_masked


def vault() -> Vault:
    return Vault.from_settings(settings())


def opened(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored config with its secrets in the clear (to merge a change into, then re-seal)."""
    return vault().open_config(config or {})


def with_kept(config: Mapping[str, Any] | None, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """`config` as sent, each `***` replaced by the secret stored at its place; 422 when there
    is none there."""
    kept, missing = keep_masked(config, stored)
    if missing:
        raise ValidationFailed("Invalid input: config", {"config": missing})
    return kept


def sealed(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """`config` with its secrets sealed, as it is stored."""
    return vault().seal_config(config or {})


def sealed_body(body: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A job body (POST /jobs, a schedule's job) with `***` resolved against `stored` (the
    stored body's config, or None) and its secrets sealed."""
    plain_stored = opened(stored) if stored else None
    config = with_kept(body.get("config"), plain_stored)
    return {**body, "config": sealed(config)}
