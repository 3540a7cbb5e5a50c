"""Webhooks: subscriptions, their deliveries log, redeliver and ping."""

from __future__ import annotations

import builtins
from typing import Any

from scrapemaster._paths import seg
from scrapemaster.models import Delivery, Queued, Webhook
from scrapemaster.transport import Transport


class Webhooks:
    """`client.webhooks`: the `/webhooks` endpoints."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self,
        webhook_url: str,
        *,
        events: builtins.list[str] | None = None,
        secret: str | None = None,
    ) -> Webhook:
        """Subscribe a URL to job events; the answer holds the signing `secret`, shown once."""
        body: dict[str, Any] = {"webhook_url": webhook_url}
        if events is not None:
            body["events"] = list(events)
        if secret is not None:
            body["secret"] = secret
        return self._t.call("POST", "/webhooks", json=body)

    def list(self) -> builtins.list[Webhook]:
        """The caller's webhooks, without their secrets."""
        return self._t.call("GET", "/webhooks")

    def get(self, hook_id: str) -> Webhook:
        return self._t.call("GET", f"/webhooks/{seg(hook_id)}")

    def update(self, hook_id: str, **changes: Any) -> Webhook:
        """PATCH `webhook_url`, `events` or `enabled`."""
        return self._t.call("PATCH", f"/webhooks/{seg(hook_id)}", json=changes)

    def delete(self, hook_id: str) -> None:
        self._t.call("DELETE", f"/webhooks/{seg(hook_id)}")

    def deliveries(self, hook_id: str) -> builtins.list[Delivery]:
        """Every delivery attempt, newest first."""
        return self._t.call("GET", f"/webhooks/{seg(hook_id)}/deliveries")

    def redeliver(self, hook_id: str, delivery_id: str) -> Queued:
        """Send that delivery's event again."""
        path = f"/webhooks/{seg(hook_id)}/deliveries/{seg(delivery_id)}/redeliver"
        return self._t.call("POST", path)

    def ping(self, hook_id: str) -> Queued:
        """Send a `ping` event to the webhook."""
        return self._t.call("POST", f"/webhooks/{seg(hook_id)}/ping")
