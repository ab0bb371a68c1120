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


class CredentialsSchema(Schema):
    """A username and password, as given to login."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(min=1, max=1024))


class RegistrationSchema(Schema):
    """A new account's username and password."""

    username = fields.String(required=True, validate=USERNAME_RULES)
    password = fields.String(required=True, load_only=True, validate=PASSWORD_RULES)


def credential_problems(username: str, password: str | None) -> dict[str, str]:
    """What the account rules find wrong with a username and (if given) password, by field."""
    given = {"username": username} if password is None else {"username": username,
                                                              "password": password}
    problems = RegistrationSchema().validate(given, partial=password is None)
    return {field: " ".join(map(str, text)) for field, text in problems.items()}


class NewUserSchema(RegistrationSchema):
    """A user created by an administrator."""

    role = fields.String(load_default="member", validate=validate.OneOf(ROLES))


class UserPatchSchema(Schema):
    """A change to a user: a new role, or disabling / enabling the account."""

    role = fields.String(validate=validate.OneOf(ROLES))
    disabled = fields.Boolean()

    @validates_schema
    def not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Refuse a patch that changes nothing."""
        if not data:
            raise ValidationError("Give 'role' or 'disabled'.")


class RefreshTokenSchema(Schema):
    """A refresh token, as given to refresh and logout."""

    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=256))


class LogoutSchema(RefreshTokenSchema):
    """A refresh token to log out with; `all` ends every session of its user."""

    all = fields.Boolean(load_default=False, metadata={
        "description": "End every session of the user and revoke their access tokens"})


class TokenPairSchema(Schema):
    """Tokens returned by login and refresh."""

    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds"})


class RegisteredUserSchema(Schema):
    """A freshly registered account."""

    id = fields.Integer(dump_only=True)
    username = fields.String(dump_only=True)
    role = fields.String(dump_only=True)


class UserSchema(RegisteredUserSchema):
    """A user as administrators see it."""

    disabled = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class MeSchema(RegisteredUserSchema):
    """The caller, with what their role allows."""

    permissions = fields.List(fields.String(), dump_only=True)


class JwksSchema(Schema):
    """A JSON Web Key Set of public Ed25519 keys."""

    keys = fields.List(fields.Dict(), required=True)
