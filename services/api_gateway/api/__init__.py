"""The gateway's HTTP edge: forwarded routes, docs, health."""
