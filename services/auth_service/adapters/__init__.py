"""Adapters of the auth service: database models, repositories, keys, passwords, tokens."""
