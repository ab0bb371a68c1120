"""The whole public API's OpenAPI document, merged from the upstreams' own and kept a minute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from services.api_gateway.adapters.upstreams import Upstream
from services.api_gateway.service_layer.openapi import merge_specs

log = logging.getLogger("taskstream.gateway.docs")
CACHE_SECONDS = 60.0


class ApiDocument:
    """The merged document, rebuilt from the upstreams at most once a minute."""

    def __init__(self, upstreams: Mapping[str, Upstream]) -> None:
        self.upstreams = upstreams
        self.spec: dict[str, Any] | None = None
        self.built_at = float("-inf")
        self.lock = threading.Lock()

    def get(self) -> dict[str, Any]:
        """Return the merged document, refetching stale or missing parts."""
        with self.lock:
            if self.spec is None or time.monotonic() - self.built_at > CACHE_SECONDS:
                self.spec = merge_specs(self._fetch())
                self.built_at = time.monotonic()
            return self.spec

    def _fetch(self) -> dict[str, Any]:
        """Each upstream's own document; one that cannot be read is left out (logged)."""
        specs = {}
        for name, upstream in self.upstreams.items():
            try:
                status, spec = upstream.get_json("/openapi.json")
            except Exception as exc:  # a missing upstream leaves a partial reference
                log.warning("could not fetch the OpenAPI document of %s: %s", name, exc)
                continue
            if status == 200:
                specs[name] = spec
        return specs
