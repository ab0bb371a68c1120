"""adapters of the task service."""
