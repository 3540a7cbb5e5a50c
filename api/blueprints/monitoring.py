"""Health and monitoring endpoints."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from prometheus_client import CONTENT_TYPE_LATEST

from api import errors, schemas
from api.json_guard import Blueprint
from api.schemas_ops import METRICS_DOC, doc_json
from api.security import admin_required, auth_required, current_user
from api.services import monitoring, proxies

blp = Blueprint("monitoring", __name__, url_prefix="/api/v1", description="Health and monitoring")


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, schemas.Health)
    def get(self):
        """Liveness of the API process; no authentication."""
        return {"status": "ok"}


@blp.route("/health/ready")
class Ready(MethodView):
    @blp.response(200, schemas.Health)
    @blp.alt_response(503, description="a dependency is down")
    def get(self):
        """Readiness for orchestrators: the API and its Redis and MongoDB; no authentication."""
        return monitoring.ready()


@blp.route("/monitoring/stats")
class Stats(MethodView):
    decorators = [auth_required]

    @blp.response(200)
    @blp.doc(**doc_json("MonitoringStats"))
    def get(self):
        """Job counts, items scraped and success rate (all jobs for an admin)."""
        return monitoring.stats(current_user())


@blp.route("/monitoring/system")
class System(MethodView):
    decorators = [admin_required]

    @blp.response(200)
    @blp.doc(**doc_json("SystemHealth"))
    @blp.alt_response(503, schema="SystemHealth", description="a dependency is down")
    def get(self):
        """Admin: Redis, MongoDB and worker health from real pings; 503 names what is down."""
        state, status = monitoring.system()
        if status == 503:  # the health figures, and the error shape's fields too
            state = {**state, "type": "unavailable", "request_id": errors.request_id()}
        return state, status


@blp.route("/monitoring/queues")
class Queues(MethodView):
    decorators = [admin_required]

    @blp.response(200)
    @blp.doc(**doc_json("QueuesOut"))
    def get(self):
        """Admin: waiting messages per queue; active and reserved tasks per worker."""
        return monitoring.queues()


@blp.route("/monitoring/proxies")
class ProxyHealth(MethodView):
    decorators = [admin_required]

    @blp.response(200)
    @blp.doc(**doc_json("ProxySummary"))
    def get(self):
        """Admin: proxies per status (active, cooldown, banned) with their average success rate."""
        return proxies.summary()


@blp.route("/monitoring/auto")
class AutoSites(MethodView):
    decorators = [admin_required]

    @blp.arguments(schemas.AutoSitesArgs, location="query")
    @blp.response(200, schemas.AutoSitesOut)
    def get(self, args):
        """Admin: the engine `auto` learned per site (host and path pattern), newest first."""
        return monitoring.auto_sites(args["skip"], args["limit"])


@blp.route("/metrics")
class Metrics(MethodView):
    decorators = [admin_required]

    @blp.response(200, content_type=CONTENT_TYPE_LATEST)
    @blp.doc(**METRICS_DOC)
    def get(self):
        """Admin: Prometheus metrics: jobs by status, items, pages, queue depth, job durations,
        this month's usage per user (the METRICS_TOP_USERS busiest, the rest as `other`)."""
        return Response(monitoring.metrics(), content_type=CONTENT_TYPE_LATEST)
