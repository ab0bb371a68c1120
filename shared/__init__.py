"""Taskstream's small common library: config, database, events, bus, JWT, errors, logging."""
