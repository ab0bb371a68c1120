"""What crosses the edge of the auth service: request and response bodies."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.auth import ROLES

USERNAME_RULES = [
    validate.Length(min=3, max=64),
    validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                    error="Use letters, digits, '.', '_' or '-', starting with a letter or digit."),
]
PASSWORD_RULES = validate.Length(min=8, max=1024)
REFRESH_TOKEN_EXAMPLE = "n7Yq0o7mH1s2mIuJX1yq8g0y5kq3CwBfTz9eW1Lp4aQ"


class CredentialsSchema(Schema):
    """A username and password, as given to login."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"example": "ann"})
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=1024),
                             metadata={"example": "correct-horse-battery"})


class RegistrationSchema(Schema):
    """A new account's username and password."""

    username = fields.String(required=True, validate=USERNAME_RULES,
                             metadata={"example": "ann"})
    password = fields.String(required=True, load_only=True, validate=PASSWORD_RULES,
                             metadata={"description": "8 to 1024 characters",
                                       "example": "correct-horse-battery"})


def credential_problems(username: str, password: str | None) -> dict[str, str]:
    """What the account rules find wrong with a username and (if given) password, by field."""
    given = {"username": username} if password is None else {"username": username,
                                                              "password": password}
    problems = RegistrationSchema().validate(given, partial=password is None)
    return {field: " ".join(map(str, text)) for field, text in problems.items()}


class NewUserSchema(RegistrationSchema):
    """A user created by an administrator."""

    role = fields.String(load_default="member", validate=validate.OneOf(ROLES),
                         metadata={"example": "manager"})


class UserPatchSchema(Schema):
    """A change to a user: a new role, or disabling / enabling the account."""

    role = fields.String(validate=validate.OneOf(ROLES), metadata={"example": "manager"})
    disabled = fields.Boolean(metadata={"example": False})

    @validates_schema
    def not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Refuse a patch that changes nothing."""
        if not data:
            raise ValidationError("Give 'role' or 'disabled'.")


class RefreshTokenSchema(Schema):
    """A refresh token, as given to refresh and logout."""

    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=256),
                                  metadata={"example": REFRESH_TOKEN_EXAMPLE})


class LogoutSchema(RefreshTokenSchema):
    """A refresh token to log out with; `all` ends every session of its user."""

    all = fields.Boolean(load_default=False, metadata={
        "description": "End every session of the user and revoke their access tokens",
        "example": False})


class TokenPairSchema(Schema):
    """Tokens returned by login and refresh."""

    access_token = fields.String(required=True, metadata={
        "description": "Send as `Authorization: Bearer <access_token>`",
        "example": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiI3In0.c2ln"})
    refresh_token = fields.String(required=True, metadata={"example": REFRESH_TOKEN_EXAMPLE})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds",
                                                         "example": 900})


class RegisteredUserSchema(Schema):
    """A freshly registered account."""

    id = fields.Integer(dump_only=True, metadata={"format": "int64", "example": 7})
    username = fields.String(dump_only=True, metadata={"example": "ann"})
    role = fields.String(dump_only=True, metadata={"example": "member"})


class UserSchema(RegisteredUserSchema):
    """A user as administrators see it."""

    disabled = fields.Boolean(dump_only=True, metadata={"example": False})
    created_at = fields.DateTime(dump_only=True,
                                 metadata={"example": "2025-04-05T09:12:03.120000+00:00"})


class MeSchema(RegisteredUserSchema):
    """The caller, with what their role allows."""

    permissions = fields.List(fields.String(), dump_only=True,
                              metadata={"example": ["task:read", "task:create"]})


class JwksSchema(Schema):
    """A JSON Web Key Set of public Ed25519 keys."""

    keys = fields.List(fields.Dict(), required=True, metadata={"example": [{
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "kid": "k1", "alg": "EdDSA", "use": "sig"}]})
