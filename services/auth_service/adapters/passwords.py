"""Password hashing with argon2id (memory-hard); plain passwords are never stored or logged."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Passwords:
    """Hash and check passwords with argon2id."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        # Checked against when the username is unknown, so both failures take as long.
        self.decoy_hash = self.hasher.hash("taskstream-decoy-password")

    def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of a password."""
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True if `password` matches the hash."""
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True if the hash was made with weaker parameters than today's."""
        return self.hasher.check_needs_rehash(password_hash)

    def verify_decoy(self, password: str) -> None:
        """Spend the time of a real check, for a username that does not exist."""
        self.verify(self.decoy_hash, password)

