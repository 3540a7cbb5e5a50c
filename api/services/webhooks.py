"""Webhooks for the API: CRUD, the deliveries log, redeliver and ping; sending is queued."""

from __future__ import annotations

from typing import Any

from flask import current_app

from api.services import db, settings
from shared import tasks
from shared.errors import Conflict, NotFound
from shared.events import stamp
from shared.webhooks import PING, WebhookRepository


def repo() -> WebhookRepository:
    return WebhookRepository(db())


def send(attempt_id: str) -> None:
    current_app.extensions["scrapemaster_celery"].send_task(
        tasks.DELIVER_WEBHOOK, **tasks.webhook_options(attempt_id)
    )


def _own(hook_id: str, user: dict[str, Any]) -> dict[str, Any]:
    hook = repo().get(hook_id, user["_id"])
    if hook is None:
        raise NotFound("Webhook not found")
    return hook


def create(user: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    limit = settings().max_webhooks_per_user
    if repo().count(user["_id"]) >= limit:
        raise Conflict(f"At most {limit} webhooks per user (MAX_WEBHOOKS_PER_USER)")
    return repo().create(user["_id"], body["webhook_url"], body.get("events") or [], body["secret"])


def list_of(user: dict[str, Any]) -> list[dict[str, Any]]:
    return repo().of_owner(user["_id"])


def get(hook_id: str, user: dict[str, Any]) -> dict[str, Any]:
    return _own(hook_id, user)


def update(hook_id: str, user: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    _own(hook_id, user)
    if not changes:
        return _own(hook_id, user)
    return repo().update(hook_id, user["_id"], changes) or _own(hook_id, user)


def delete(hook_id: str, user: dict[str, Any]) -> None:
    if not repo().delete(hook_id, user["_id"]):
        raise NotFound("Webhook not found")


def deliveries(hook_id: str, user: dict[str, Any]) -> list[dict[str, Any]]:
    return repo().log(_own(hook_id, user))


def redeliver(hook_id: str, delivery_id: str, user: dict[str, Any]) -> dict[str, str]:
    _own(hook_id, user)
    previous = repo().deliveries.find_one(
        {
            "webhook_id": hook_id,
            "owner_id": user["_id"],
            "$or": [{"_id": delivery_id}, {"delivery_id": delivery_id}],
        }
    )
    if previous is None:
        raise NotFound("Delivery not found")
    attempt_id = repo().redeliver(previous)
    send(attempt_id)
    return {"id": attempt_id, "state": "pending"}


def ping(hook_id: str, user: dict[str, Any]) -> dict[str, str]:
    hook = _own(hook_id, user)
    event: dict[str, Any] = {
        "id": f"ping-{stamp()}",
        "type": PING,
        "job_id": None,
        "timestamp": stamp(),
        "data": {},
    }
    attempt_id = repo().first_attempt(hook["_id"], hook["webhook_url"], user["_id"], event)
    send(attempt_id)
    return {"id": attempt_id, "state": "pending"}


def rotate_account_secret(user: dict[str, Any]) -> dict[str, str]:
    return {"secret": repo().account_secret(user["_id"], rotate=True)}
