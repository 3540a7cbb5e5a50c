"""Webhooks: subscriptions, their deliveries log, redeliver and ping."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas_webhooks as schemas
from api.json_guard import Blueprint
from api.security import auth_required, current_user
from api.services import webhooks

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Webhooks")


@blp.route("")
class Webhooks(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.WebhookOut(many=True))
    def get(self):
        """The caller's webhooks (without their secrets)."""
        return webhooks.list_of(current_user())

    @blp.arguments(schemas.WebhookCreate)
    @blp.response(201, schemas.WebhookCreated)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Subscribe a URL to job events; the signing secret is shown this once."""
        return webhooks.create(current_user(), body)


@blp.route("/<hook_id>")
class Webhook(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.WebhookOut)
    def get(self, hook_id):
        """One webhook."""
        return webhooks.get(hook_id, current_user())

    @blp.arguments(schemas.WebhookUpdate)
    @blp.response(200, schemas.WebhookOut)
    def patch(self, changes, hook_id):
        """Change its URL, events or enabled flag."""
        return webhooks.update(hook_id, current_user(), changes)

    @blp.response(204)
    def delete(self, hook_id):
        """Remove it (its deliveries log goes with it from the listing)."""
        webhooks.delete(hook_id, current_user())


@blp.route("/<hook_id>/deliveries")
class Deliveries(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.DeliveryOut(many=True))
    def get(self, hook_id):
        """Every attempt, newest first."""
        return webhooks.deliveries(hook_id, current_user())


@blp.route("/<hook_id>/deliveries/<delivery_id>/redeliver")
class Redeliver(MethodView):
    decorators = [auth_required]

    @blp.response(202, schemas.Queued)
    def post(self, hook_id, delivery_id):
        """Send that event again (same event id, a fresh count of attempts)."""
        return webhooks.redeliver(hook_id, delivery_id, current_user())


@blp.route("/<hook_id>/ping")
class Ping(MethodView):
    decorators = [auth_required]

    @blp.response(202, schemas.Queued)
    def post(self, hook_id):
        """Send a `ping` event."""
        return webhooks.ping(hook_id, current_user())
