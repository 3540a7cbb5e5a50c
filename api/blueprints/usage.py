"""Usage and quotas: the caller's (GET /usage) and everyone's (GET /admin/usage)."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas_usage
from api.json_guard import Blueprint
from api.security import admin_required, auth_required, current_user
from api.services import usage

blp = Blueprint("usage", __name__, url_prefix="/api/v1", description="Usage and quotas")


@blp.route("/usage")
class Usage(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas_usage.UsageOut)
    def get(self):
        """The caller's usage this month (UTC) against its quotas (null: unlimited)."""
        return usage.mine(current_user())


@blp.route("/admin/usage")
class AdminUsage(MethodView):
    decorators = [admin_required]

    @blp.arguments(schemas_usage.AdminUsageArgs, location="query")
    @blp.response(200, schemas_usage.AdminUsageOut)
    def get(self, args):
        """Admin: everyone's usage per user (most pages first) or per day, over a range of days
        (default: this month)."""
        return usage.table(args["group_by"], args.get("date_from"), args.get("date_to"))
