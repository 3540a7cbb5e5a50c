"""Admin endpoints of user accounts: list, create, change role or active."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas_users
from api.json_guard import Blueprint
from api.security import admin_required, current_user
from api.services import users

blp = Blueprint("users", __name__, url_prefix="/api/v1/admin", description="User accounts (admin)")


@blp.route("/users")
class Users(MethodView):
    decorators = [admin_required]

    @blp.arguments(schemas_users.UserListArgs, location="query")
    @blp.response(200, schemas_users.AdminUserPage)
    def get(self, args):
        """Admin: users, newest first, with role and active; `q` searches names and e-mails."""
        return users.list_users(args["skip"], args["limit"], args.get("q"))

    @blp.arguments(schemas_users.AdminUserCreate)
    @blp.response(201, schemas_users.AdminUserOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Admin: create an account (the way in while REGISTRATION is closed)."""
        return users.create(body, current_user())


@blp.route("/users/<user_id>")
class User(MethodView):
    decorators = [admin_required]

    @blp.arguments(schemas_users.AdminUserUpdate)
    @blp.response(200, schemas_users.AdminUserOut)
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, changes, user_id):
        """Admin: change a user's role or active flag; a deactivated user is cut off within 5 s."""
        return users.update(user_id, changes, current_user())
