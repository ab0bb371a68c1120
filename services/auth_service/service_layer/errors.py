"""What can go wrong in the auth use cases; mapped to HTTP only at the edge (api/errors.py)."""


class AuthError(Exception):
    """Base of the auth service's domain errors."""


class InvalidCredentials(AuthError):
    """Unknown user, wrong password or disabled account (indistinguishable on purpose)."""


class InvalidRefreshToken(AuthError):
    """Unknown, expired, revoked or reused refresh token."""


class UsernameTaken(AuthError):
    """Another user already has this username."""


class RegistrationClosed(AuthError):
    """Self-registration is switched off."""


class UserNotFound(AuthError):
    """No user has this id."""


class AccountUnavailable(AuthError):
    """The token's user no longer exists or is disabled."""


class LastAdmin(AuthError):
    """The change would leave no active admin."""


class NotPermitted(AuthError):
    """The caller's account, as it is now, lacks the permission."""
