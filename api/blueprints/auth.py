"""Authentication: register, login, refresh, me, API keys."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from api import schemas, schemas_webhooks
from api.security import auth_required, current_user
from api.services import auth
from shared.errors import ValidationFailed

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")


@blp.route("/register")
class Register(MethodView):
    @blp.arguments(schemas.Register)
    @blp.response(201, schemas.UserOut)
    def post(self, body):
        """Create an account."""
        return auth.register(body["username"], body["email"], body["password"])


@blp.route("/login")
class Login(MethodView):
    @blp.doc(
        requestBody={
            "content": {
                "application/json": {"schema": schemas.Login},
                "application/x-www-form-urlencoded": {"schema": schemas.Login},
            }
        }
    )
    @blp.response(200, schemas.TokenOut)
    def post(self):
        """Log in with JSON or form fields; returns access and refresh tokens."""
        raw = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        try:
            body = schemas.Login().load(raw or {})
        except ValidationError as exc:
            errors = {k: v for k, v in exc.messages.items()}  # type: ignore[union-attr]
            raise ValidationFailed("Invalid input: " + ", ".join(sorted(errors)), errors) from None
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
        return current_user()


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
