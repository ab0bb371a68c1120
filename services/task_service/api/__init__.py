"""api of the task service."""
