"""The API gateway: authenticates, rate-limits and forwards to the services."""
