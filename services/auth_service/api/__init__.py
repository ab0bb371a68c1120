"""HTTP edge of the auth service: blueprints and schemas."""
