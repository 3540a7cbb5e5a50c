"""The proxy pool as the admin sees it: list, add, change and remove proxies."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from api.services import db, settings
from shared.errors import Conflict, NotFound
from shared.proxies import NEVER, ProxyDoc, ProxyRepository, success_rate


def repo() -> ProxyRepository:
    return ProxyRepository.from_settings(db(), settings())


def _out(doc: ProxyDoc) -> dict[str, Any]:
    shown: dict[str, Any] = {**doc, "success_rate": success_rate(doc)}
    if shown.get("last_used_at") == NEVER:
        shown["last_used_at"] = None
    return shown


def list_proxies() -> list[dict[str, Any]]:
    return [_out(doc) for doc in repo().all()]


def get(proxy_id: str) -> dict[str, Any]:
    doc = repo().get(proxy_id)
    if doc is None:
        raise NotFound(f"Proxy {proxy_id} not found")
    return _out(doc)


def add(url: str) -> dict[str, Any]:
    try:
        doc = repo().add(url)
    except DuplicateKeyError:
        doc = None  # a concurrent add of the same URL won
    if doc is None:
        raise Conflict(f"Proxy {url} is already in the pool")
    return _out(doc)


def update(proxy_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    get(proxy_id)
    try:
        doc = repo().update(proxy_id, **changes)
    except DuplicateKeyError:
        raise Conflict(f"Proxy {changes.get('url')} is already in the pool") from None
    if doc is None:
        raise NotFound(f"Proxy {proxy_id} not found")
    return _out(doc)


def delete(proxy_id: str) -> None:
    if not repo().delete(proxy_id):
        raise NotFound(f"Proxy {proxy_id} not found")


def summary() -> dict[str, Any]:
    """GET /monitoring/proxies: counts and average success rate per status."""
    return repo().summary()
