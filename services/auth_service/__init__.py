"""auth_service: users, roles, password login, refresh sessions and signed access tokens."""
