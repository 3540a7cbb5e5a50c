"""Admin endpoints of the proxy pool."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas
from api.json_guard import Blueprint
from api.security import admin_required
from api.services import proxies

blp = Blueprint("proxies", __name__, url_prefix="/api/v1/proxies", description="Proxy pool")


@blp.route("")
class Proxies(MethodView):
    decorators = [admin_required]

    @blp.response(200, schemas.ProxyOut(many=True))
    def get(self):
        """Every proxy of the pool with its counters and status."""
        return proxies.list_proxies()

    @blp.arguments(schemas.ProxyCreate)
    @blp.response(201, schemas.ProxyOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Add a proxy to the pool; 409 when its URL is already there."""
        return proxies.add(body["url"])


@blp.route("/<proxy_id>")
class Proxy(MethodView):
    decorators = [admin_required]

    @blp.response(200, schemas.ProxyOut)
    def get(self, proxy_id):
        """One proxy."""
        return proxies.get(proxy_id)

    @blp.arguments(schemas.ProxyUpdate)
    @blp.response(200, schemas.ProxyOut)
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, changes, proxy_id):
        """Change a proxy's URL or status (active clears its cool-down)."""
        return proxies.update(proxy_id, changes)

    @blp.response(204)
    def delete(self, proxy_id):
        """Remove a proxy from the pool."""
        proxies.delete(proxy_id)
