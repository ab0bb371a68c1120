"""Use cases of the auth service: accounts and sessions."""
