"""Gateway overhead: a cached `GET /tasks?date=` direct and through the gateway, two ceilings,
and the gateway path with the token revocation check switched off (its cost, same run)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import redis

from bench.core import answers, result, serve_gunicorn, servers
from bench.load import requests_per_second, tool_name
from shared.revocation import RedisRevocations, RevocationList
from testbed.polling import wait_for
from testbed.stack import running_stack
from testbed.tokens import TokenFactory

COMMAND = "make bench BENCH=gateway"
DAY = "2031-01-01"
SECONDS = 5
# gunicorn's workers race to accept connections: in some runs one worker takes all of the
# load tool's connections and the other idles, which costs the bare endpoint up to two
# thirds of its rate. Each target is measured in several interleaved rounds on fresh
# connections and its best round is reported, the same rule for every target.
ROUNDS = 5


def _serve_gateway(env: dict[str, str], check: bool) -> list[tuple[subprocess.Popen[bytes], str]]:
    """A logger and a gateway in front of it, with the token revocation check on or off (all
    else equal, so that the two pairs differ in nothing else); the gateway comes last."""
    pair_env = {**env, "TOKEN_REVOCATION_CHECK": "true" if check else "false"}
    logger = serve_gunicorn(pair_env, "services.logger_service.entrypoints.app:create_app()")
    gateway = serve_gunicorn({**pair_env, "LOGGER_SERVICE_URL": logger[1]},
                     "services.api_gateway.entrypoints.app:create_app()")
    return [logger, gateway]


def _prime(stack: Any, headers: dict[str, str]) -> str:
    session, base = stack.session, stack.base_url
    session.post(f"{base}/task", headers=headers, json={"title": "cached"}).raise_for_status()
    session.post(f"{base}/admin/transfer", headers=headers, json={"date": DAY}).raise_for_status()
    path = f"/tasks?date={DAY}"

    def cached() -> bool:
        response = session.get(base + path, headers=headers)
        return bool(response.json()) and response.headers.get("X-Cache") == "HIT"

    wait_for(cached, timeout=30, what="the transferred task, served from the cache")
    return path


def run() -> list[dict[str, Any]]:
    """Requests/s of the bare endpoint, the logger directly and the gateway, in one run."""
    extra = {"WEB_CONCURRENCY": "2", "RATE_LIMIT_DEFAULT": "100000000/minute",
             "LOG_LEVEL": "WARNING"}
    with servers() as (pg, rds), running_stack(pg, rds, extra_env=extra) as stack:
        headers = stack.login()
        path = _prime(stack, headers)
        env = {**stack.env, **extra}
        bare = serve_gunicorn(env, "bench.bare_app:create_app()")
        hop = serve_gunicorn({**env, "BARE_UPSTREAM_URL": bare[1]}, "bench.bare_app:create_hop()")
        checked, unchecked = _serve_gateway(env, True), _serve_gateway(env, False)
        # The same bare hop in front of the checked pair's logger: the gateway's own upstream.
        logger_hop = serve_gunicorn({**env, "BARE_UPSTREAM_URL": checked[0][1]},
                            "bench.bare_app:create_hop()")
        started = [bare, hop, logger_hop, *checked, *unchecked]
        try:
            probes = [bare[1] + "/tasks", hop[1] + "/tasks", logger_hop[1] + "/tasks",
                      *(url + "/healthz" for _, url in started[3:])]
            wait_for(lambda: all(answers(probe) for probe in probes), timeout=30,
                     what="the bare endpoint, the hop and both gateways")
            targets = {"bare": (bare[1] + "/tasks", {}),
                       "hop": (hop[1] + "/tasks", {}),
                       "logger hop": (logger_hop[1] + path, headers),
                       "logger": (stack.url("logger") + path, headers),
                       "gateway": (checked[-1][1] + path, headers),
                       "unchecked": (unchecked[-1][1] + path, headers)}
            rounds = _measure(targets)
        finally:
            for process, _ in started:
                process.terminate()
                process.wait(10)
        per_check = _verify_cost(stack.env["REDIS_URL"], stack.env["REDIS_NAMESPACE"])
    return _results(rounds) + per_check


def _verify_cost(redis_url: str, namespace: str) -> list[dict[str, Any]]:
    """Microseconds of one `TokenVerifier.verify` of a cached token, without and with the
    revocation check (its marks read from Redis once a second, as in the services)."""
    tokens = TokenFactory()
    marks = RedisRevocations(redis.Redis.from_url(redis_url), f"{namespace}:bench-revoked",
                             lifetime=930)
    token, calls, costs = tokens.token(), 200_000, {}
    for name, verifier in (("off", tokens.verifier()),
                           ("on", tokens.verifier(RevocationList(marks)))):
        verifier.verify(token)
        started = time.perf_counter()
        for _ in range(calls):
            verifier.verify(token)
        costs[name] = (time.perf_counter() - started) / calls * 1e6
    notes = f"in-process, {calls:,} calls of verify() on one cached token, best effort timing"
    return [result(f"verify a cached token, revocation check {name}", cost, "us", COMMAND,
                   notes) for name, cost in costs.items()]


def _measure(targets: dict[str, tuple[str, dict[str, str]]]) -> dict[str, list[float]]:
    """Requests/s of every target in each round; every other round in reverse order, so that
    no target always follows the same one."""
    rounds: dict[str, list[float]] = {name: [] for name in targets}
    for number in range(ROUNDS):
        order = list(targets) if number % 2 == 0 else list(reversed(targets))
        for name in order:
            url, url_headers = targets[name]
            rounds[name].append(requests_per_second(url, url_headers, SECONDS))
    return rounds


def _results(rounds: dict[str, list[float]]) -> list[dict[str, Any]]:
    rates = {name: max(values) for name, values in rounds.items()}
    spread = "; ".join(f"{name} {min(values):.0f}-{max(values):.0f}"
                       for name, values in rounds.items())
    notes = (f"{tool_name()}, 16 connections, best of {ROUNDS} interleaved {SECONDS} s rounds "
             f"(all rounds: {spread} req/s); gunicorn 2 workers x 4 threads per service; "
             "cached date page (X-Cache: HIT); all on this one machine")
    unchecked = ("; gateway and unchecked: two logger+gateway pairs started alike, the second "
                 "with TOKEN_REVOCATION_CHECK=false")
    return [
        result("bare Flask JSON endpoint", rates["bare"], "req/s", COMMAND, notes),
        result("bare Flask hop in front of it (forward only)", rates["hop"], "req/s", COMMAND,
               notes),
        result("GET /tasks?date= direct to logger", rates["logger"], "req/s", COMMAND, notes),
        result("GET /tasks?date= through gateway", rates["gateway"], "req/s", COMMAND, notes),
        result("GET /tasks?date= through gateway, revocation check off", rates["unchecked"],
               "req/s", COMMAND, notes + unchecked),
        result("revocation check on / off ratio", rates["gateway"] / rates["unchecked"], "x",
               COMMAND, notes + unchecked + "; target >= 0.9"),
        result("bare Flask hop in front of the logger (forward only)", rates["logger hop"],
               "req/s", COMMAND, notes + "; the same hop, forwarding the gateway's request to "
               "the gateway's logger: two hops with the logger's own work and nothing else"),
        result("gateway / bare hop ratio", rates["gateway"] / rates["hop"], "x", COMMAND,
               notes + "; target >= 0.7"),
        result("gateway / bare hop in front of the logger ratio",
               rates["gateway"] / rates["logger hop"], "x", COMMAND,
               notes + "; what the gateway's own work (token, revocation, rate limit in "
               "Redis, request id) costs beside forwarding alone"),
        result("gateway / bare ratio", rates["gateway"] / rates["bare"], "x", COMMAND, notes),
        result("gateway / direct ratio", rates["gateway"] / rates["logger"], "x", COMMAND, notes),
        result("bare hop / bare ratio", rates["hop"] / rates["bare"], "x", COMMAND, notes),
    ]
