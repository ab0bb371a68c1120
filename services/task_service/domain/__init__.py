"""domain of the task service."""
