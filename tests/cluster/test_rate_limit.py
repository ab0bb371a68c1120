"""The gateway's rate limit on a Redis Cluster: N per window across two gateway processes."""

from tests.integration.api_gateway.test_shared_rate_limit import (  # noqa: F401  (run here)
    test_exactly_the_limit_passes_across_two_processes,
    two_gateways,
)
