"""Authentication: register, login, refresh, me, API keys."""

from __future__ import annotations

from flask.views import MethodView

from api import schemas, schemas_webhooks
from api.json_guard import Blueprint
from api.security import auth_required, current_user
from api.services import auth

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")
# json_or_form is documented by hand below (both content types)
blp.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
    **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
    "json_or_form": "application/json",
}


@blp.route("/register")
class Register(MethodView):
    @blp.arguments(schemas.Register)
    @blp.response(201, schemas.UserOut)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body):
        """Create an account (403 while REGISTRATION is closed: an admin creates them)."""
        return auth.self_register(body["username"], body["email"], body["password"])


@blp.route("/login")
class Login(MethodView):
    # webargs' json_or_form: a JSON body, else form fields (curl -d username=… -d password=…)
    @blp.arguments(schemas.Login, location="json_or_form")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": "Login"},
                "application/x-www-form-urlencoded": {"schema": "Login"},
            },
        }
    )
    @blp.response(200, schemas.TokenOut)
    def post(self, body):
        """Log in with JSON or form fields; returns access and refresh tokens."""
        return auth.login(body["username"], body["password"])


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.arguments(schemas.Refresh)
    @blp.response(200, schemas.AccessTokenOut)
    def post(self, body):
        """Trade a refresh token for a new access token."""
        return auth.refresh(body["refresh_token"])


@blp.route("/me")
class Me(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas.UserOut)
    def get(self):
        """The calling user."""
        return auth.fresh(current_user())


@blp.route("/api-keys")
class ApiKeys(MethodView):
    decorators = [auth_required]

    @blp.arguments(schemas.ApiKeyCreate)
    @blp.response(201, schemas.ApiKeyCreated)
    def post(self, body):
        """Create an API key; the key is shown only in this answer."""
        return auth.create_api_key(current_user(), body["name"])

    @blp.response(200, schemas.ApiKeyOut(many=True))
    def get(self):
        """The caller's API keys, without their secrets."""
        return auth.list_api_keys(current_user())


@blp.route("/api-keys/<key_id>")
class ApiKey(MethodView):
    decorators = [auth_required]

    @blp.response(204)
    def delete(self, key_id):
        """Revoke an API key; it stops working at once."""
        auth.revoke_api_key(current_user(), key_id)


@blp.route("/webhook-secret")
class WebhookSecret(MethodView):
    decorators = [auth_required]

    @blp.response(200, schemas_webhooks.WebhookSecret)
    def post(self):
        """Create or rotate the secret that signs deliveries to jobs' own webhook_url."""
        from api.services import webhooks

        return webhooks.rotate_account_secret(current_user())
